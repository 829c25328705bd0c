"""Arrow glyphs that make a motion field readable: line segments to draw over the photo (no bpy).

`field_arrows` samples the field on a grid and gives each sample an arrow along its motion, scaled so the
fastest one spans about one grid step; `arrow_segments` gives any arrow its shaft and a two-stroke head.
Segments are (K, 2, 2) float32: K segments of (start, end) points, pixels of the photo, x right, y down.
"""

from __future__ import annotations

import numpy as np


def arrow_segments(starts: np.ndarray, ends: np.ndarray, head: float = 0.3, spread_deg: float = 25.0) -> np.ndarray:
    """Shaft plus two head strokes per arrow: (3 K, 2, 2). Zero-length arrows give nothing."""
    starts = np.asarray(starts, np.float32).reshape(-1, 2)
    ends = np.asarray(ends, np.float32).reshape(-1, 2)
    d = ends - starts
    length = np.hypot(d[:, 0], d[:, 1])
    keep = length > 1e-6
    starts, ends, d, length = starts[keep], ends[keep], d[keep], length[keep]
    if not len(starts):
        return np.zeros((0, 2, 2), np.float32)
    back = -d / length[:, None] * (head * length)[:, None]
    out = [np.stack([starts, ends], 1)]
    for sign in (1.0, -1.0):
        a = np.radians(spread_deg) * sign
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
        out.append(np.stack([ends, ends + back @ rot.T], 1))
    return np.concatenate(out).astype(np.float32)


def field_arrows(field: np.ndarray, step: int = 24, min_speed: float = 1e-3) -> tuple[np.ndarray, float]:
    """(segments, pixels of arrow per px/frame): one arrow per grid cell centre where the field moves,
    the fastest one ``step`` pixels long."""
    h, w = field.shape[:2]
    ys = np.arange(step // 2, h, step)
    xs = np.arange(step // 2, w, step)
    if not len(ys) or not len(xs):
        return np.zeros((0, 2, 2), np.float32), 0.0
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    v = field[gy, gx].reshape(-1, 2).astype(np.float32)
    speed = np.hypot(v[:, 0], v[:, 1])
    top = float(speed.max()) if speed.size else 0.0
    if top <= min_speed:
        return np.zeros((0, 2, 2), np.float32), 0.0
    scale = step / top
    moving = speed > min_speed
    starts = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)[moving] + 0.5
    return arrow_segments(starts, starts + v[moving] * scale), scale
