"""Flow maps for game engines and shaders: a motion field as an 8-bit PNG or a float EXR, with its scale.

The field is in pixels per frame of the photo (row 0 top, +dy down). A flow map stores it per texel:

- PNG (8 bits, RGB): R = 128 + round(127 dx / scale), G = 128 + round(127 dy' / scale), B = 128 (unused), where
  dy' = dy with ``y="down"`` (+G down the picture: Unreal, Godot, DirectX-style UVs with v down) or -dy with
  ``y="up"`` (+G up: Unity, Blender, OpenGL-style UVs with v up). 128 is "still" (128/255 = 0.502, the "0.5"
  of the usual ``flow = tex * 2 - 1``); decode exactly with ``(value - 128) / 127 * scale``. ``scale`` is the
  largest |component| in px/frame, so the map uses its full range; it is written in the PNG's text chunk
  ``stillflow:flowmap`` and in a sidecar ``<map>.json``.
- EXR (32-bit float, RGB): R = dx, G = dy' in px/frame, B = 0; scale 1.
In a shader the UV offset per frame is ``flow / texture_size`` (in UV units), times the frame count: see
README "Flow material" for the two-phase loop that uses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import InputError
from .field import validate_field
from .staging import atomic_file

ZERO = 128
STEP = 127
Y_CONVENTIONS = ("down", "up")
META_KEY = "stillflow:flowmap"


def metadata(field: np.ndarray, fmt: str, y: str, scale: float) -> dict:
    h, w = field.shape[:2]
    decode = (f"(value - {ZERO}) / {STEP} * scale" if fmt == "png" else "value")
    return {"stillflow_flowmap": 1, "format": fmt, "width": w, "height": h, "units": "pixels per frame",
            "scale": scale, "y": y, "channels": {"R": "dx (+ right)", "G": f"dy (+ {y})"},
            "decode": decode, "still": ZERO if fmt == "png" else 0.0,
            "uv_offset_per_frame": "flow / (width, height)"}


def _check_y(y: str) -> None:
    if y not in Y_CONVENTIONS:
        raise InputError(f"--y must be down or up, got {y!r}")


def _oriented(a: np.ndarray, y: str) -> np.ndarray:
    """(dx, dy) (+dy down) <-> the map's (R, G) for the convention ``y``: G negated for "up" (its own
    inverse, so it serves writing and reading)."""
    out = np.array(a[..., :2], np.float32, copy=True)
    if y == "up":
        out[..., 1] = -out[..., 1]
    return out


def encode_png(field: np.ndarray, y: str = "down") -> tuple[np.ndarray, float]:
    """(uint8 (H, W, 3), scale): the 8-bit flow map of ``field``."""
    _check_y(y)
    field = validate_field(field)
    comp = _oriented(field, y)
    scale = float(np.abs(comp).max())
    scale = scale if scale > 0 else 1.0
    q = np.clip(np.rint(comp / scale * STEP) + ZERO, 1, 255).astype(np.uint8)
    out = np.full(field.shape[:2] + (3,), ZERO, np.uint8)
    out[..., :2] = q
    return out, scale


def decode_png(rgb: np.ndarray, scale: float, y: str = "down") -> np.ndarray:
    return _oriented((rgb[..., :2].astype(np.float32) - ZERO) / STEP * np.float32(scale), y)


def write_flowmap(path: str | Path, field: np.ndarray, y: str = "down") -> tuple[Path, Path]:
    """Write the flow map (.png or .exr) and its sidecar ``.json``, each atomically. Returns both paths."""
    from PIL import Image, PngImagePlugin

    from .imageio import save_exr_rgb

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "exr"):
        raise InputError(f"a flow map ends in .png or .exr, not {path.suffix or 'nothing'}")
    _check_y(y)
    field = validate_field(field)
    sidecar = path.with_suffix(".json")
    if fmt == "png":
        rgb, scale = encode_png(field, y)
        meta = metadata(field, fmt, y, scale)
        info = PngImagePlugin.PngInfo()
        info.add_text(META_KEY, json.dumps(meta, sort_keys=True))
        with atomic_file(path) as tmp:
            Image.fromarray(rgb, "RGB").save(tmp, format="PNG", pnginfo=info)
    else:
        meta = metadata(field, fmt, y, 1.0)
        rgb = np.zeros(field.shape[:2] + (3,), np.float32)
        rgb[..., :2] = _oriented(field, y)
        with atomic_file(path) as tmp:
            save_exr_rgb(tmp, rgb)
    with atomic_file(sidecar) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path, sidecar


def read_flowmap(path: str | Path) -> np.ndarray:
    """A flow map written by `write_flowmap` -> the field (H, W, 2), px/frame, row 0 top, +dy down."""
    from PIL import Image

    path = Path(path)
    sidecar = path.with_suffix(".json")
    meta = None
    if path.suffix.lower() == ".png":
        with Image.open(path) as im:
            text = im.text.get(META_KEY) if hasattr(im, "text") else None
            rgb = np.asarray(im.convert("RGB"))
        meta = json.loads(text) if text else None
    if meta is None:
        if not sidecar.is_file():
            raise InputError(f"{path.name} has no Stillflow flow map metadata and no {sidecar.name}")
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    y = meta.get("y", "down")
    if meta.get("format") == "png":
        return decode_png(rgb, float(meta["scale"]), y)
    from .imageio import load_field

    channels = load_field(path)  # read as a field file, whose G is -dy: back to the map's own G
    channels[..., 1] = -channels[..., 1]
    return _oriented(channels, y)
