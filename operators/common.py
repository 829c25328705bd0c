"""Small helpers shared by the operators: finding the photo and its field, output folders, error reports."""

from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
from pathlib import Path

import bpy

from ..core.errors import InputError, StillflowError
from .blender_io import field_name
from .properties import is_field_name

log = logging.getLogger(__name__)


def reports_errors(method):
    """Wrap execute()/invoke(): a StillflowError becomes an ERROR report and CANCELLED, never a traceback.

    Blender checks the argument count of these methods, so the wrapper keeps the exact signature."""

    def report(self, err):
        if isinstance(err, ImportError):
            err = (
                f"Stillflow is missing the Python package '{err.name}': install the extension zip built "
                "for your platform (it bundles its packages)"
            )
        self.report({"ERROR"}, str(err))
        return {"CANCELLED"}

    if method.__code__.co_argcount == 3:  # invoke(self, context, event)

        @functools.wraps(method)
        def wrapper(self, context, event):
            try:
                return method(self, context, event)
            except (StillflowError, ImportError) as err:
                return report(self, err)

    else:  # execute(self, context)

        @functools.wraps(method)
        def wrapper(self, context):
            try:
                return method(self, context)
            except (StillflowError, ImportError) as err:
                return report(self, err)

    return wrapper


def get_photo(context):
    """The photo to animate: the panel's choice, else the image shown in the Image Editor."""
    image = context.scene.stillflow.image
    if image is None:
        space = getattr(context, "space_data", None)
        image = getattr(space, "image", None) if space and space.type == "IMAGE_EDITOR" else None
        if image is not None and is_field_name(image.name):
            image = None
    if image is None:
        raise InputError("No photo: open an image in the Image Editor or pick one in the Stillflow panel")
    return image


def get_field_image(context, photo):
    settings = context.scene.stillflow
    image = settings.field_image or bpy.data.images.get(field_name(photo.name))
    if image is None:
        raise InputError(f"No motion field for '{photo.name}': press Predict Motion first")
    return image


def safe_stem(name: str) -> str:
    stem = os.path.splitext(name)[0] if re.search(r"\.(jpe?g|png|exr|tiff?|webp|bmp)$", name, re.I) else name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "stillflow"


def output_base(settings) -> tuple[Path, str]:
    """The folder outputs go into and, in words, why that one."""
    if settings.output_dir:
        return Path(bpy.path.abspath(settings.output_dir)), "the chosen folder"
    if bpy.data.filepath:
        return Path(bpy.path.abspath("//")) / "stillflow", "next to the .blend file"
    return temp_output_base(), "a temporary folder (saving the .blend moves them beside it)"


def temp_output_base() -> Path:
    """Where an unsaved file's renders go until its first save carries them next to it."""
    return Path(tempfile.gettempdir()) / "stillflow"


def unique_datablock_name(collection, base: str) -> str:
    """`base`, or `base.001`, ... : the first name not used in `collection` (never reuse an existing one)."""
    if base not in collection:
        return base
    i = 1
    while f"{base}.{i:03d}" in collection:
        i += 1
    return f"{base}.{i:03d}"
