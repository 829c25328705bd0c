"""The plain numpy reference: the Euler step, the bilinear splat and the coverage blend, written for
clarity (seconds per 1080p frame). Every other engine is tested against it."""

from __future__ import annotations

import numpy as np

from .base import DENSE, EPS


def euler_step_reference(motion: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """One Euler step in plain numpy (the reference the engines are tested against)."""
    h, w = motion.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    px = gx + flow[..., 0]
    py = gy + flow[..., 1]
    valid = (px >= 0) & (py >= 0) & (px <= w - 1) & (py <= h - 1)
    pxc = np.where(valid, px, 0.0)
    pyc = np.where(valid, py, 0.0)
    ix = np.minimum(np.floor(pxc).astype(np.int64), max(w - 2, 0))
    iy = np.minimum(np.floor(pyc).astype(np.int64), max(h - 2, 0))
    ax = (pxc - ix)[..., None]
    ay = (pyc - iy)[..., None]
    ix1 = np.minimum(ix + 1, w - 1)
    iy1 = np.minimum(iy + 1, h - 1)
    m = motion.astype(np.float64)
    top = m[iy, ix] * (1 - ax) + m[iy, ix1] * ax
    bot = m[iy1, ix] * (1 - ax) + m[iy1, ix1] * ax
    out = flow + top * (1 - ay) + bot * ay
    out[~valid] = np.nan
    return out.astype(np.float32)


def splat_reference(
    src: np.ndarray, flow: np.ndarray, weight: np.ndarray, scale: float = 1.0, count: bool = False
) -> np.ndarray:
    """Bilinear forward splat with ``np.add.at``: returns acc (H, W, C + 1) = [sum b w D, sum b w],
    with ``count`` (H, W, C + 2) = [..., sum b] (coverage)."""
    h, w, c = src.shape
    acc = np.zeros((h, w, c + 1 + int(count)), np.float64)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    tx = gx + flow[..., 0]
    ty = gy + flow[..., 1]
    ok = np.isfinite(tx) & np.isfinite(ty)
    tx, ty = tx[ok], ty[ok]
    cols = [src[ok] * weight[ok][:, None], weight[ok][:, None]] + ([np.ones((int(ok.sum()), 1))] if count else [])
    vals = np.concatenate(cols, axis=1) * scale
    ix = np.floor(tx).astype(np.int64)
    iy = np.floor(ty).astype(np.int64)
    ax = tx - ix
    ay = ty - iy
    for dy, wy in ((0, 1 - ay), (1, ay)):
        for dx, wx in ((0, 1 - ax), (1, ax)):
            xx, yy = ix + dx, iy + dy
            inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            np.add.at(acc, (yy[inside], xx[inside]), vals[inside] * (wy * wx)[inside][:, None])
    return acc.astype(np.float32)


def _sum3x3(a: np.ndarray) -> np.ndarray:
    """3x3 sum over the pixels inside the image, of (H, W) or (H, W, C)."""
    h, w = a.shape[:2]
    p = np.pad(a.astype(np.float64), ((1, 1), (1, 1)) + ((0, 0),) * (a.ndim - 2))
    return sum(p[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))


def _stream_reference(acc: np.ndarray):
    """Plain numpy version of ``cpu_kernels._stream_colour`` for a whole frame: (coverage, colour)."""
    c = acc.shape[2] - 2
    h, w = acc.shape[:2]
    cov = _sum3x3(acc[..., c + 1]) / _sum3x3(np.ones((h, w)))
    d = acc[..., c].astype(np.float64)
    has = d > EPS
    own_rgb = acc[..., :c] / np.where(has, d, 1.0)[..., None]
    d3 = _sum3x3(d)
    rgb3 = _sum3x3(acc[..., :c]) / np.where(d3 > EPS, d3, 1.0)[..., None]
    share = np.minimum(1.0, cov / DENSE)
    own = np.where(has, share, 0.0)[..., None]
    dense = (cov >= DENSE) & has
    rgb = np.where(dense[..., None], own_rgb, (1.0 - own) * rgb3 + own * own_rgb)
    weight = np.where(dense, 1.0, np.where(d3 > EPS, share, 0.0))
    return weight, rgb


def blend_reference(acc_f: np.ndarray, acc_b: np.ndarray, alpha: float):
    """Plain numpy version of ``cpu_kernels.blend_streams``: (rgb with NaN holes, holes)."""
    wf, rgb_f = _stream_reference(acc_f)
    wb, rgb_b = _stream_reference(acc_b)
    af, ab = alpha * wf, (1.0 - alpha) * wb
    tot = af + ab
    holes = tot <= 0
    safe = np.where(holes, 1.0, tot)[..., None]
    rgb = (af[..., None] * rgb_f + ab[..., None] * rgb_b) / safe
    rgb[holes] = np.nan
    return rgb.astype(np.float32), holes


class NumpyEngine:
    """The plain reference: slow (seconds per 1080p frame), no dependency beyond numpy."""

    name = "numpy"
    device = "cpu"

    def asarray(self, a):
        return np.ascontiguousarray(a, dtype=np.float32)

    def to_numpy(self, a):
        return np.asarray(a)

    def zeros(self, shape):
        return np.zeros(shape, np.float32)

    def step(self, motion, flow):
        return euler_step_reference(motion, flow)

    def accumulate(self, acc, src, flow, weight, scale):
        acc += splat_reference(src, flow, weight, scale, count=acc.shape[2] > src.shape[2] + 1)

    def blend(self, acc_f, acc_b, alpha):
        return blend_reference(acc_f, acc_b, alpha)

    def normalise(self, acc):
        den = acc[..., -1]
        holes = den <= EPS
        rgb = acc[..., :-1] / np.where(holes, 1.0, den)[..., None]
        return rgb.astype(np.float32), holes
