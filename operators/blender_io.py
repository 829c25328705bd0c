"""Blender images <-> numpy arrays. Row order and the sign of dy are defined only in `core.field`.

All functions raise `core.errors.InputError` with a message that says what to do; operators report it.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..core import field as cfield
from ..core.errors import InputError
from ..core.field import FIELD_SUFFIX
from ..core.imageio import linear_to_srgb


def field_name(image_name: str) -> str:
    return f"{image_name}{FIELD_SUFFIX}"


def _pixels(image) -> np.ndarray:
    """Flat float32 pixels of `image`, loading them if needed; InputError when it has none."""
    if image is None:
        raise InputError("No photo: open an image in the Image Editor or pick one in the Stillflow panel")
    try:
        n = len(image.pixels)  # loads the file on first access
    except (RuntimeError, ReferenceError) as err:
        raise InputError(f"Image '{image.name}' cannot be read ({err})") from None
    w, h = image.size
    if n == 0 or w == 0 or h == 0 or not image.has_data:
        where = bpy.path.abspath(image.filepath) if image.filepath else "no file"
        raise InputError(
            f"Image '{image.name}' has no pixels ({where}): reload it, fix its file path or pick another image"
        )
    flat = np.empty(n, np.float32)
    image.pixels.foreach_get(flat)
    return flat


def read_photo(image) -> np.ndarray:
    """The photo as float32 (H, W, 3) sRGB-encoded values in [0, 1], row 0 top (core's convention)."""
    return read_photo_alpha(image)[0]


def read_photo_alpha(image) -> tuple[np.ndarray, np.ndarray | None]:
    """The photo (as `read_photo`) and its alpha (H, W) when it has transparent pixels, else None: like the
    command line, transparent pixels stay still."""
    flat = _pixels(image)
    w, h = image.size
    rgb = cfield.image_from_blender_rgba(flat, w, h, image.channels)
    alpha = None
    if image.channels == 4 and image.alpha_mode != "NONE":
        a = np.ascontiguousarray(flat.reshape(h, w, 4)[::-1, :, 3])
        if float(a.min()) < 1.0:
            alpha = np.clip(a, 0.0, 1.0).astype(np.float32)
    # Byte images hold their (sRGB) file values; float images hold scene-linear values unless non-color.
    if image.is_float and image.colorspace_settings.name not in ("sRGB", "Non-Color"):
        rgb = linear_to_srgb(rgb)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32), alpha


def read_gray(image, shape: tuple[int, int]) -> np.ndarray:
    """A painted mask image as float32 (H, W) in [0, 1], resized to `shape` (H, W) when needed."""
    flat = _pixels(image)
    w, h = image.size
    rgb = cfield.image_from_blender_rgba(flat, w, h, image.channels)
    gray = np.clip(rgb.mean(axis=2), 0.0, 1.0).astype(np.float32)
    if gray.shape != tuple(shape):
        gray = cfield.resize_bilinear(gray[..., None], shape)[..., 0]
    return gray


def read_field(image, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The motion field stored in a field image -> (H, W, 2) px/frame, row 0 top, +dy down."""
    flat = _pixels(image)
    w, h = image.size
    if image.channels != 4:
        raise InputError(
            f"Field image '{image.name}' must be RGBA (R = dx, G = dy); it has {image.channels} channels"
        )
    field = cfield.from_blender_rgba(flat, w, h)
    return cfield.validate_field(field, shape, what=f"field image '{image.name}'")


def new_float_image(name: str, width: int, height: int):
    image = bpy.data.images.new(name, width, height, alpha=True, float_buffer=True)
    image.colorspace_settings.name = "Non-Color"
    image.use_half_precision = False
    return image


def write_field(image, field: np.ndarray) -> None:
    """Store `field` (H, W, 2) in the float image `image` (same size) and pack it into the .blend."""
    h, w = field.shape[:2]
    if tuple(image.size) != (w, h):
        image.scale(w, h)
    image.pixels.foreach_set(cfield.to_blender_rgba(field))
    image.update()
    image.pack()  # a generated image is otherwise lost on save; re-pack after painting it
    image.use_fake_user = True


def write_photo(image, rgb: np.ndarray) -> None:
    image.pixels.foreach_set(cfield.image_to_blender_rgba(rgb))
    image.update()
