"""Splatting engines: one plain numpy reference, a compiled CPU engine (numba), a torch engine (CUDA/CPU).

Every engine offers the same few operations on its own array type, so :mod:`core.render` is written once:

- ``asarray(np_array)`` / ``to_numpy(x)``; ``zeros(shape)``
- ``step(motion, flow) -> flow'``: one Euler step, flow' = flow + motion(x + flow), bilinear; particles
  that leave the image become NaN (dropped, not clamped)
- ``accumulate(acc, src, flow, weight, scale)``: bilinear forward splat of ``scale * weight * src`` into
  ``acc[..., :C]`` and of ``scale * weight`` into ``acc[..., C]``
- ``normalise(acc) -> (rgb numpy (H, W, C), holes bool (H, W))``
"""

from __future__ import annotations

import logging

import numpy as np

from .errors import StillflowError

log = logging.getLogger(__name__)
EPS = 1e-6


# ------------------------------------------------------------------------------------- plain reference


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


def splat_reference(src: np.ndarray, flow: np.ndarray, weight: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Bilinear forward splat with ``np.add.at``: returns acc (H, W, C + 1) = [sum b w D, sum b w]."""
    h, w, c = src.shape
    acc = np.zeros((h, w, c + 1), np.float64)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    tx = gx + flow[..., 0]
    ty = gy + flow[..., 1]
    ok = np.isfinite(tx) & np.isfinite(ty)
    tx, ty = tx[ok], ty[ok]
    vals = np.concatenate([src[ok] * weight[ok][:, None], weight[ok][:, None]], axis=1) * scale
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
        acc += splat_reference(src, flow, weight, scale)

    def normalise(self, acc):
        den = acc[..., -1]
        holes = den <= EPS
        rgb = acc[..., :-1] / np.where(holes, 1.0, den)[..., None]
        return rgb.astype(np.float32), holes


# ------------------------------------------------------------------------------------ compiled CPU path


class NumbaEngine(NumpyEngine):
    """Compiled, multi-threaded CPU engine; no torch needed (the path Blender uses by default)."""

    name = "cpu-numba"

    def __init__(self):
        from . import cpu_kernels

        self.k = cpu_kernels
        self.nbands = max(1, cpu_kernels.threads())

    def step(self, motion, flow):
        out = np.empty_like(flow)
        self.k.euler_step(motion, flow, out)
        return out

    def accumulate(self, acc, src, flow, weight, scale):
        lo, hi = self.k.row_reach(flow)
        self.k.splat_accumulate(acc, src, flow, weight, np.float32(scale), lo, hi, self.nbands)

    def normalise(self, acc):
        out = np.empty(acc.shape[:2] + (acc.shape[2] - 1,), np.float32)
        self.k.normalise(acc, out, np.float32(EPS))
        holes = np.isnan(out[..., 0])
        return out, holes


# ----------------------------------------------------------------------------------------- torch path


class TorchEngine:
    """torch on CUDA (or CPU, for tests): Euler steps by gather, splats by ``index_add_`` (atomics)."""

    def __init__(self, device: str = "cuda"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.name = f"torch-{self.device.type}"

    def asarray(self, a):
        return self.torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=self.device)

    def to_numpy(self, a):
        return a.detach().cpu().numpy()

    def zeros(self, shape):
        return self.torch.zeros(shape, dtype=self.torch.float32, device=self.device)

    def _grid(self, h, w):
        t = self.torch
        gy, gx = t.meshgrid(
            t.arange(h, device=self.device, dtype=t.float32),
            t.arange(w, device=self.device, dtype=t.float32),
            indexing="ij",
        )
        return gx, gy

    def step(self, motion, flow):
        t = self.torch
        h, w = motion.shape[:2]
        gx, gy = self._grid(h, w)
        px = gx + flow[..., 0]
        py = gy + flow[..., 1]
        valid = (px >= 0) & (py >= 0) & (px <= w - 1) & (py <= h - 1)
        pxc = t.where(valid, px, t.zeros_like(px))
        pyc = t.where(valid, py, t.zeros_like(py))
        ix = t.clamp(pxc.floor().long(), max=max(w - 2, 0))
        iy = t.clamp(pyc.floor().long(), max=max(h - 2, 0))
        ax = (pxc - ix).unsqueeze(-1)
        ay = (pyc - iy).unsqueeze(-1)
        ix1 = t.clamp(ix + 1, max=w - 1)
        iy1 = t.clamp(iy + 1, max=h - 1)
        top = motion[iy, ix] * (1 - ax) + motion[iy, ix1] * ax
        bot = motion[iy1, ix] * (1 - ax) + motion[iy1, ix1] * ax
        out = flow + top * (1 - ay) + bot * ay
        return t.where(valid.unsqueeze(-1), out, t.full_like(out, float("nan")))

    def accumulate(self, acc, src, flow, weight, scale):
        t = self.torch
        h, w, c = src.shape
        gx, gy = self._grid(h, w)
        tx = (gx + flow[..., 0]).reshape(-1)
        ty = (gy + flow[..., 1]).reshape(-1)
        ok = t.isfinite(tx) & t.isfinite(ty)
        vals = t.cat([src * weight.unsqueeze(-1), weight.unsqueeze(-1)], dim=-1).reshape(-1, c + 1) * scale
        tx, ty, vals = tx[ok], ty[ok], vals[ok]
        ix = tx.floor()
        iy = ty.floor()
        ax = tx - ix
        ay = ty - iy
        ix = ix.long()
        iy = iy.long()
        flat = acc.view(-1, c + 1)
        for dy, wy in ((0, 1 - ay), (1, ay)):
            for dx, wx in ((0, 1 - ax), (1, ax)):
                xx, yy = ix + dx, iy + dy
                inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
                idx = (yy * w + xx)[inside]
                flat.index_add_(0, idx, vals[inside] * (wy * wx)[inside].unsqueeze(-1))

    def normalise(self, acc):
        den = acc[..., -1]
        holes = den <= EPS
        rgb = acc[..., :-1] / self.torch.where(holes, self.torch.ones_like(den), den).unsqueeze(-1)
        return self.to_numpy(rgb), self.to_numpy(holes)


# ------------------------------------------------------------------------------------------ selection


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def get_engine(device: str = "auto"):
    """The engine for ``device``: "auto" (CUDA when torch sees a GPU, else the compiled CPU engine),
    "cuda", "cpu" (compiled, falling back to numpy without numba), "numpy" (the reference), "torch-cpu"."""
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    if device == "cuda":
        if not cuda_available():
            raise StillflowError(
                "CUDA was asked for but torch with a CUDA GPU is not available: use --device cpu, or install "
                "GPU acceleration (Stillflow preferences in Blender)"
            )
        return TorchEngine("cuda")
    if device == "torch-cpu":
        return TorchEngine("cpu")
    if device == "numpy":
        return NumpyEngine()
    if device == "cpu":
        try:
            return NumbaEngine()
        except ImportError:
            log.warning("numba is not installed: using the slow numpy splatting reference")
            return NumpyEngine()
    raise StillflowError(f"unknown device {device!r}: use auto, cpu or cuda")
