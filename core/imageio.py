"""Files in and out: photos (Pillow), motion fields (.npy, .exr) and frames (staging: core.staging).

Field files: ``.npy`` holds the array as the engine uses it, float32 (H, W, 2), row 0 top, +dy down.
``.exr`` holds the same field the way the Blender field image does, so either opens in the other:
R = dx, G = -dy (+ up on screen), B = 0, 32-bit float.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, StillflowError
from .field import resize_bilinear, validate_field

log = logging.getLogger(__name__)

# Larger than this (long side) is refused unless --max-size asks for a downscale: a 16K photo needs about
# 6 GB of float buffers before the first frame.
MAX_PIXELS = 80_000_000
MAX_DECODE_JPEG = 16 * MAX_PIXELS  # JPEG decodes at 1/2, 1/4 or 1/8 scale (draft) when --max-size asks
MAX_DECODE = 5 * MAX_PIXELS  # other formats decode whole (8-bit, then reduced): at most about 1.2 GB


@dataclass
class LoadedImage:
    rgb: np.ndarray  # float32 (H, W, 3) sRGB values in [0, 1], row 0 top
    alpha: np.ndarray | None = None  # float32 (H, W) in [0, 1] when the file had an alpha channel
    original_size: tuple[int, int] = (0, 0)  # (width, height) in the file
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return (self.rgb.shape[1], self.rgb.shape[0])


def pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is bundled/required
        raise StillflowError("Pillow is not installed: it is needed to read photos outside Blender") from None
    return Image


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Scene-linear values (clipped to [0, 1]) to sRGB-encoded ones, float32 (the sRGB transfer curve)."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055).astype(np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values to scene-linear ones, float32 (the inverse of ``linear_to_srgb`` on [0, 1])."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def load_image(path: str | Path, max_size: int | None = None) -> LoadedImage:
    """Read a photo as float32 sRGB. 16-bit, grayscale, palette and RGBA files are accepted (alpha is
    returned separately); a photo larger than ``max_size`` on its long side is downscaled to it; one over
    MAX_PIXELS with no ``max_size`` is refused, naming its size."""
    Image = pil()
    path = Path(path)
    if not path.exists():
        raise InputError(f"image not found: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    Image.MAX_IMAGE_PIXELS = None  # we check the size ourselves, before decoding
    try:
        im = Image.open(path)
    except Exception:
        raise InputError(f"{path.name} is not an image Stillflow can read (PNG, JPEG, TIFF, WebP, BMP)") from None
    w, h = im.size
    notes: list[str] = []
    if w < 2 or h < 2:
        raise InputError(f"{path.name} is {w}x{h}: too small to animate")
    if max_size is None and w * h > MAX_PIXELS:
        raise InputError(
            f"{path.name} is {w}x{h} ({w * h / 1e6:.0f} MP), too large to animate in memory: "
            "pass --max-size 3840 (or smaller) to downscale it"
        )
    # Checked before decoding, --max-size or not: only JPEG decodes at a reduced scale (draft); anything
    # else is decoded whole first (a 74-byte PNG can declare 100000x100000), so it is bounded too.
    limit = MAX_DECODE_JPEG if im.format == "JPEG" else (MAX_DECODE if max_size is not None else MAX_PIXELS)
    if w * h > limit:
        raise InputError(
            f"{path.name} declares {w}x{h} ({w * h / 1e6:.0f} MP), more than Stillflow decodes "
            f"({limit / 1e6:.0f} MP{' for ' + im.format if im.format else ''}): downscale it first"
        )
    try:
        if max_size is not None and max(w, h) > max_size:
            # Decode at a reduced scale where the codec can (JPEG draft), then resize exactly.
            scale = max_size / max(w, h)
            target = (max(2, round(w * scale)), max(2, round(h * scale)))
            im.draft(im.mode if im.mode in ("RGB", "L") else None, target)
            factor = min(im.size[0] // target[0], im.size[1] // target[1])
            if factor >= 2 and im.mode in ("RGB", "RGBA", "L", "LA"):
                im = im.reduce(factor)  # 8-bit box reduction first: no full-size float copy
            arr, alpha = _to_float(im)
            arr = resize_bilinear(arr, (target[1], target[0]))
            if alpha is not None:
                alpha = resize_bilinear(alpha, (target[1], target[0]))
            notes.append(f"downscaled from {w}x{h} to {target[0]}x{target[1]} (--max-size {max_size})")
        else:
            arr, alpha = _to_float(im)
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path.name} could not be decoded ({err}): the file may be truncated or damaged") from None
    if alpha is not None:
        notes.append("the image has an alpha channel: transparent pixels are kept still (freeze mask)")
    return LoadedImage(np.clip(arr, 0.0, 1.0).astype(np.float32), alpha, (w, h), notes)


def _to_float(im) -> tuple[np.ndarray, np.ndarray | None]:
    im.load()
    mode = im.mode
    alpha = None
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        a = np.asarray(im, dtype=np.uint16).astype(np.float32) / 65535.0
        return np.repeat(a[..., None], 3, axis=2), None
    if mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float32)
        peak = 65535.0 if mode == "I" and a.max() > 255 else (255.0 if mode == "I" else max(1.0, float(a.max())))
        return np.repeat((a / peak)[..., None], 3, axis=2), None
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        a = np.asarray(im, dtype=np.float32) / 255.0
        alpha = a[..., 3].copy()
        return np.ascontiguousarray(a[..., :3]), alpha
    if mode == "RGB;16" or mode.startswith("RGB") and mode != "RGB":
        im = im.convert("RGB")
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.float32) / 255.0, None


def load_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A painted motion mask (white = moves): float32 (H, W) in [0, 1], resized to ``shape``."""
    img = load_image(path)
    m = img.rgb.mean(axis=2)
    if img.alpha is not None:
        m = m * img.alpha
    if m.shape != tuple(shape):
        m = resize_bilinear(m, shape)
    return np.clip(m, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------- writing


def check_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` if needed and check that files can be written there."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # An unnamed file (O_TMPFILE on Linux; elsewhere unlinked at once): nothing is left behind even
        # when the process is killed during the check.
        with tempfile.TemporaryFile(dir=folder, prefix=".stillflow-probe-"):
            pass
    except OSError as err:
        raise InputError(
            f"cannot write to the output folder {folder} ({err.strerror or err}): choose another folder"
        ) from None
    return folder


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an 8-bit sRGB PNG (float input is clipped to [0, 1] and rounded)."""
    Image = pil()
    arr = rgb if rgb.dtype == np.uint8 else (np.clip(rgb, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(path, format="PNG", compress_level=1)


def save_exr_rgb(path: str | Path, rgb: np.ndarray) -> None:
    """Write a 32-bit float RGB EXR with the values as given (frames: scene-linear; fields: R = dx, G = -dy)."""
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"RGB": np.ascontiguousarray(rgb, dtype=np.float32)}) as f:
        f.write(str(path))


def save_field(path: str | Path, motion: np.ndarray) -> None:
    """Write a motion field to .npy (engine convention) or .exr (Blender field-image convention)."""
    path = Path(path)
    motion = validate_field(motion)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with open(path, "wb") as f:
            np.save(f, motion)
    elif suffix == ".exr":
        rgb = np.zeros(motion.shape[:2] + (3,), np.float32)
        rgb[..., 0] = motion[..., 0]
        rgb[..., 1] = -motion[..., 1]
        save_exr_rgb(path, rgb)
    else:
        raise InputError(f"motion field files end in .exr or .npy, not {path.suffix or 'nothing'}")


def load_field(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a .npy or .exr motion field; with ``shape`` check that it matches the image."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"motion field file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".exr":
            import OpenEXR

            with OpenEXR.File(str(path)) as f:
                ch = f.channels()
                if "RGB" in ch or "RGBA" in ch:
                    px = ch.get("RGB", ch.get("RGBA")).pixels
                    r, g = px[..., 0], px[..., 1]
                elif "R" in ch and "G" in ch:
                    r, g = ch["R"].pixels, ch["G"].pixels
                else:
                    raise InputError(f"{path.name} has no R and G channels (found {', '.join(ch)})")
            arr = np.stack([r, -np.asarray(g)], axis=-1).astype(np.float32)
        else:
            raise InputError(f"motion field files end in .exr or .npy, not {path.suffix or 'nothing'}")
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"could not read the motion field {path.name}: {err}") from None
    return validate_field(arr, shape, what=f"motion field {path.name}")
