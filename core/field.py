"""Motion-field conventions, validation, resizing and smooth masks.

Convention (the only place it is defined): arrays are row 0 = top; ``M[..., 0] = dx`` (+ right) and
``M[..., 1] = dy`` (+ down), in pixels per frame. Blender images are stored bottom row first with +y up, so
the field image datablock holds R = dx, G = -dy (+ up on screen), B = 0, A = 1.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

FIELD_SUFFIX = "_motion"  # a photo's field image in Blender is "<photo name>_motion"
MOTION_THRESHOLD = 0.2161635  # px/frame: |M| above this counts as moving (the reference method's data)


def validate_field(field: np.ndarray, shape: tuple[int, int] | None = None, what: str = "motion field") -> np.ndarray:
    """Return ``field`` as float32 (H, W, 2), or raise InputError saying what is wrong with it."""
    arr = np.asarray(field)
    if arr.ndim != 3 or arr.shape[2] < 2:
        raise InputError(f"{what} must have shape (height, width, 2), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"{what} holds {arr.dtype} values: it must hold real numbers (float32)")
    with np.errstate(over="ignore", invalid="ignore"):  # too large for float32: inf, refused just below
        arr = np.ascontiguousarray(arr[..., :2], dtype=np.float32)
    if shape is not None and arr.shape[:2] != tuple(shape):
        raise InputError(
            f"{what} is {arr.shape[1]}x{arr.shape[0]} but the image is {shape[1]}x{shape[0]}: "
            "predict the field again or resize it to the image"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(f"{what} has {int(bad.any(axis=2).sum())} pixels with NaN or infinite values")
    return arr


def check_finite(arr: np.ndarray, what: str) -> None:
    """Raise InputError when ``arr`` holds NaN or infinity."""
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what} contains NaN or infinite values")


# ----------------------------------------------------------------------------------------------- Blender


def to_blender_rgba(field: np.ndarray) -> np.ndarray:
    """Field (H, W, 2), row 0 top, +dy down -> flat RGBA float32 for ``image.pixels`` (bottom row first)."""
    h, w = field.shape[:2]
    rgba = np.zeros((h, w, 4), np.float32)
    rgba[..., 0] = field[..., 0]
    rgba[..., 1] = -field[..., 1]
    rgba[..., 3] = 1.0
    return rgba[::-1].ravel()


def from_blender_rgba(flat: np.ndarray, width: int, height: int) -> np.ndarray:
    """Inverse of :func:`to_blender_rgba`: flat RGBA pixels of a field image -> (H, W, 2), row 0 top."""
    rgba = np.asarray(flat, np.float32).reshape(height, width, -1)[::-1]
    field = np.empty((height, width, 2), np.float32)
    field[..., 0] = rgba[..., 0]
    field[..., 1] = -rgba[..., 1]
    return field


def image_to_blender_rgba(rgb: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """Image (H, W, 3) row 0 top -> flat RGBA float32, bottom row first."""
    h, w = rgb.shape[:2]
    rgba = np.ones((h, w, 4), np.float32)
    rgba[..., :3] = rgb[..., :3]
    if alpha is not None:
        rgba[..., 3] = alpha
    return rgba[::-1].ravel()


def image_from_blender_rgba(flat: np.ndarray, width: int, height: int, channels: int = 4) -> np.ndarray:
    """Flat pixels of a Blender image (bottom row first) -> float32 (H, W, 3), row 0 top."""
    pix = np.asarray(flat, np.float32).reshape(height, width, channels)[::-1]
    if channels == 1:
        return np.ascontiguousarray(np.repeat(pix, 3, axis=2))
    return np.ascontiguousarray(pix[..., :3])


# ----------------------------------------------------------------------------------------- resampling


def resize_bilinear(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize (H, W[, C]) to ``shape`` with bilinear interpolation (pixel centres aligned)."""
    h, w = arr.shape[:2]
    oh, ow = shape
    if (h, w) == (oh, ow):
        return arr.astype(np.float32, copy=True)
    ys = np.clip((np.arange(oh, dtype=np.float32) + 0.5) * (h / oh) - 0.5, 0, h - 1)
    xs = np.clip((np.arange(ow, dtype=np.float32) + 0.5) * (w / ow) - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0).astype(np.float32)
    wx = (xs - x0).astype(np.float32)
    a = arr.astype(np.float32, copy=False)
    if a.ndim == 3:
        wy = wy[:, None, None]
        wx = wx[None, :, None]
    else:
        wy = wy[:, None]
        wx = wx[None, :]
    cols = a[:, x0] * (1 - wx) + a[:, x1] * wx  # one axis at a time: the columns once, on the input's rows
    return (cols[y0] * (1 - wy) + cols[y1] * wy).astype(np.float32)


def downsize(arr: np.ndarray, long_side: int) -> np.ndarray:
    """(H, W[, C]) resized bilinearly so that its long side is at most ``long_side`` (never enlarged; at
    least 8 px a side): the working size of the photo cues (core.sky, core.reflection)."""
    h, w = arr.shape[:2]
    s = min(1.0, long_side / max(h, w))
    return resize_bilinear(np.asarray(arr, np.float32), (max(8, round(h * s)), max(8, round(w * s))))


def resize_field(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a motion field and scale its vectors so they stay in pixels per frame of the new size."""
    h, w = field.shape[:2]
    out = resize_bilinear(field, shape)
    out[..., 0] *= shape[1] / w
    out[..., 1] *= shape[0] / h
    return out


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of (H, W, 3), float32 (H, W)."""
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)


def laplacian(gray: np.ndarray) -> np.ndarray:
    """The 5-point Laplacian of (H, W), 0 on the border rows and columns: a picture's finest detail."""
    lap = np.zeros_like(gray)
    lap[1:-1, 1:-1] = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4.0 * gray[1:-1, 1:-1]
    return lap


def gradient_magnitude(gray: np.ndarray) -> np.ndarray:
    """|central-difference gradient| of (H, W) (its x part 0 in the first and last columns, its y part in the
    first and last rows)."""
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, 1:-1] = (gray[:, 2:] - gray[:, :-2]) * 0.5
    gy[1:-1] = (gray[2:] - gray[:-2]) * 0.5
    return np.sqrt(gx * gx + gy * gy)


def box_blur(arr: np.ndarray, radius: int, passes: int = 3) -> np.ndarray:
    """Separable box blur of (H, W) with edge renormalisation; three passes approximate a Gaussian."""
    if radius < 1:
        return arr.astype(np.float32, copy=True)
    out = arr.astype(np.float64)
    for _ in range(passes):
        for axis in (0, 1):
            out = _box1d(out, radius, axis)
    return out.astype(np.float32)


def _box1d(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    n = a.shape[axis]
    c = np.cumsum(a, axis=axis)
    c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
    idx = np.arange(n)
    hi = np.minimum(idx + r + 1, n)
    lo = np.maximum(idx - r, 0)
    s = np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)
    count = (hi - lo).astype(np.float64)
    shape = [1] * a.ndim
    shape[axis] = n
    return s / count.reshape(shape)


def even_spread(u: np.ndarray, region: np.ndarray | None = None, bins: int = 1 << 16) -> np.ndarray:
    """Each value of ``u`` replaced by the fraction of ``u[region]`` (all of u when None) below it: values
    spread evenly over [0, 1] by rank (clipped there outside the region's range), float32.

    The ranks come from a fine histogram, interpolated within each bin: O(n), where exact ranks need a sort
    (0.5-1.6 s for a 1080p picture, against some 50 ms); they differ from the exact ones by at most a bin's
    share of the pixels (1e-4 on smooth noise)."""
    vals = u[region] if region is not None else u.ravel()
    lo, hi = float(vals.min()), float(vals.max())
    if not hi > lo:
        return np.zeros(u.shape, np.float32)
    scale = bins / (hi - lo)
    counts = np.bincount(np.minimum(((vals - lo) * scale).astype(np.int64), bins - 1), minlength=bins)
    below = np.concatenate([[0], np.cumsum(counts)])
    pos = np.clip((u - lo) * scale, 0.0, bins)
    b = np.minimum(pos.astype(np.int64), bins - 1)
    rank = below[b] + (pos - b) * counts[b]
    return (rank / vals.size).astype(np.float32)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def feather_inside(mask: np.ndarray, px: float) -> np.ndarray:
    """A weight that is 0 outside ``mask`` and at its edge and rises smoothly to 1 about ``px`` inside."""
    m = (np.asarray(mask, np.float32) > 0.5).astype(np.float32)
    if px <= 0:
        return m
    return _fade_inside(m, _edge_blur(m, px))


def _edge_blur(m: np.ndarray, px: float) -> np.ndarray:
    # Three box passes of radius r spread an edge over about 3 r pixels each side.
    return box_blur(m, max(1, int(round(px / 3.0))))


def _fade_inside(m: np.ndarray, soft: np.ndarray) -> np.ndarray:
    return (smoothstep(2.0 * soft - 1.0) * m).astype(np.float32)


EDGE_WORK = 960  # px on the long side: the photo's edges are measured at this size
EDGE_GRADIENT = 0.03  # mean luma gradient (per pixel at EDGE_WORK, over about 19 px) of a photo edge


def photo_edges(photo: np.ndarray) -> np.ndarray:
    """float32 (H, W) in [0, 1]: how much the photo (H, W, 3) has an edge or texture of its own near each
    pixel (its mean luma gradient at ``EDGE_WORK`` px over about 19 px, 1 from ``EDGE_GRADIENT`` on)."""
    h, w = photo.shape[:2]
    gray = box_blur(downsize(luma(photo)[..., None], EDGE_WORK)[..., 0], 1)
    strength = np.clip(box_blur(gradient_magnitude(gray), 3) / EDGE_GRADIENT, 0.0, 1.0)
    return np.clip(resize_bilinear(strength, (h, w)), 0.0, 1.0).astype(np.float32)


def directional_feather(mask: np.ndarray, field: np.ndarray, px: float, edges: np.ndarray | None = None,
                        ) -> np.ndarray:
    """Feather weight that fades motion only where it crosses the mask edge.

    Where motion runs into or out of the edge (a wave onto the beach, the top and foot of a waterfall) the
    moving region would slide over the still one and tear: there the weight is ``feather_inside``. Where it
    runs along the edge (the sides of a waterfall, a river between its banks) the edge stays where it is,
    and fading would only shear thin regions into jagged streaks: there the weight stays 1. In between it
    follows |cos| of the angle between the motion and the edge normal.

    With ``edges`` (the photo's ``photo_edges``), that holds only where the photo has an edge or texture of
    its own at the mask's edge: where the mask cuts through smooth content (a plume of steam in haze, a calm sky) a
    region that slides along it opens a straight cut that the photo never had (on the street-steam photo of
    models/realset: edge tear 0.23 -> 0.01/255), so there the motion fades as where it crosses the edge.
    """
    m = (np.asarray(mask, np.float32) > 0.5).astype(np.float32)
    soft = _edge_blur(m, px)
    fade = _fade_inside(m, soft)
    gy, gx = np.gradient(soft)
    speed = np.hypot(field[..., 0], field[..., 1])
    # |cos| between the motion and the edge normal; the small constants keep it continuous where either the
    # gradient (deep inside or far outside the mask, where the fade is 1 or the mask 0) or the motion vanishes
    across = np.abs(gx * field[..., 0] + gy * field[..., 1]) / ((np.hypot(gx, gy) + 1e-3) * (speed + 1e-6))
    if edges is not None:
        across = np.maximum(across, 1.0 - edges)
    return ((1.0 - (1.0 - fade) * across) * m).astype(np.float32)


def shape_motion(
    field: np.ndarray,
    mask: np.ndarray | None = None,
    freeze: np.ndarray | None = None,
    feather_px: float = 12.0,
    edges: np.ndarray | None = None,
) -> np.ndarray:
    """Apply the motion mask (faded smoothly to zero where motion crosses its edge, and with ``edges``, the
    photo's ``photo_edges``, where it runs along an edge that is not the photo's: see
    ``directional_feather``) and the freeze multiplier."""
    out = np.array(field, np.float32, copy=True)
    if mask is not None:
        if feather_px > 0:
            weight = directional_feather(mask, out, feather_px, edges)
        else:
            weight = (np.asarray(mask) > 0.5).astype(np.float32)
        out *= weight[..., None]
    if freeze is not None:
        out *= np.asarray(freeze, np.float32)[..., None]
    return out
