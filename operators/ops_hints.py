"""Operators for hints: a new hints Mask, hints files into a Mask and back out."""

import os

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..core import hints as chints
from ..core.errors import InputError
from . import mask_hints
from .common import get_photo, reports_errors, safe_stem, unique_datablock_name


def show_mask(context, mask) -> None:
    """Show ``mask`` in the Image Editor's Mask mode, when the operator runs from one."""
    space = getattr(context, "space_data", None)
    if space is not None and space.type == "IMAGE_EDITOR":
        space.mode = "MASK"
        space.mask = mask


def add_photo_hints(context, photo, hints=None, base: str | None = None):
    """A new hints Mask for ``photo`` (filled from ``hints``; named ``base`` or after the photo, made unique),
    set as the scene's hints and shown."""
    name = unique_datablock_name(bpy.data.masks, base or f"{photo.name}_hints")
    mask = mask_hints.new_hints_mask(name, hints, *photo.size)
    context.scene.stillflow.hints = mask
    show_mask(context, mask)
    return mask


class STILLFLOW_OT_new_hints(bpy.types.Operator):
    """Add a hints Mask for the photo: draw arrows, motion and freeze shapes in the Image Editor's Mask mode"""

    bl_idname = "stillflow.new_hints"
    bl_label = "New Hints Mask"
    bl_options = {"REGISTER", "UNDO"}

    @reports_errors
    def execute(self, context):
        add_photo_hints(context, get_photo(context))
        return {"FINISHED"}


class STILLFLOW_OT_import_hints(bpy.types.Operator, ImportHelper):
    """Read a hints file (Stillflow JSON or LabelMe) into a new hints Mask"""

    bl_idname = "stillflow.import_hints"
    bl_label = "Import Hints"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    @reports_errors
    def execute(self, context):
        photo = get_photo(context)
        hints = chints.load_hints(self.filepath)
        width, height = photo.size
        if hints.image_size is None:
            hints.image_size = (width, height)
        hints.for_size(width, height).validate(width, height)
        base = safe_stem(os.path.splitext(os.path.basename(self.filepath))[0])
        mask = add_photo_hints(context, photo, hints, base)
        self.report(
            {"INFO"},
            f"Imported {len(hints.arrows)} arrows and "
            f"{len(hints.motion_polygons)} motion regions into mask '{mask.name}'",
        )
        return {"FINISHED"}


class STILLFLOW_OT_export_hints(bpy.types.Operator, ExportHelper):
    """Write the hints Mask (and annotation arrows) to a Stillflow JSON hints file"""

    bl_idname = "stillflow.export_hints"
    bl_label = "Export Hints"

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})
    overwrite: BoolProperty(name="Overwrite", default=False, description="Replace an existing file")

    def invoke(self, context, event):
        self.overwrite = True  # the file browser asks before replacing a file
        return ExportHelper.invoke(self, context, event)

    @reports_errors
    def execute(self, context):
        photo = get_photo(context)
        hints = mask_hints.gather_hints(context, *photo.size)
        if hints is None:
            raise InputError("No hints to export: add a hints Mask and draw arrows or shapes in it")
        if os.path.exists(self.filepath) and not self.overwrite:
            raise InputError(f"{self.filepath} exists: enable Overwrite or choose another name")
        try:
            chints.save_hints(hints, self.filepath)
        except OSError as err:
            raise InputError(f"Cannot write {self.filepath} ({err.strerror or err})") from None
        self.report({"INFO"}, f"Saved {self.filepath}")
        return {"FINISHED"}


classes = (STILLFLOW_OT_new_hints, STILLFLOW_OT_import_hints, STILLFLOW_OT_export_hints)
register, unregister = bpy.utils.register_classes_factory(classes)
