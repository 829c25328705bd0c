"""Splatting engines: one plain numpy reference, a compiled CPU engine (numba), a torch engine (CUDA/CPU).

Every engine offers the same few operations on its own array type, so :mod:`core.render` is written once:

- ``asarray(np_array)`` / ``to_numpy(x)``; ``zeros(shape)``
- ``step(motion, flow) -> flow'``: one Euler step, flow' = flow + motion(x + flow), bilinear; particles
  that leave the image become NaN (dropped, not clamped)
- ``accumulate(acc, src, flow, weight, scale)``: bilinear forward splat of ``scale * weight * src`` into
  ``acc[..., :C]`` and of ``scale * weight`` into ``acc[..., C]``
- ``normalise(acc) -> (rgb numpy (H, W, C), holes bool (H, W))``: one normalisation of one accumulator
- ``blend(acc_f, acc_b, alpha) -> (rgb, holes)``: the two streams (each (H, W, C + 2), with a coverage
  count) blended by alpha times their smoothed coverage (see ``cpu_kernels.blend_streams``)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .errors import StillflowError

log = logging.getLogger(__name__)
EPS = 1e-6
DENSE = 0.98  # see cpu_kernels.DENSE


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


# ------------------------------------------------------------------------------------ compiled CPU path


KERNELS_MODULE = "_stillflow_cpu_kernels"


def load_cpu_kernels():
    """Import ``cpu_kernels.py`` under one fixed module name.

    numba's on-disk cache (``__pycache__`` beside the file) pickles the module name of each kernel and
    re-imports it on load. The same file is imported as ``stillflow.core.cpu_kernels`` by the command line
    and as ``bl_ext.<repo>.stillflow.core.cpu_kernels`` inside Blender; under a fixed name each process
    can load what another compiled. The file has no relative imports, so it loads standalone.
    """
    import importlib.util
    import sys

    mod = sys.modules.get(KERNELS_MODULE)
    if mod is None:
        import numba  # noqa: F401  (ImportError here means: no compiled CPU path)

        path = Path(__file__).with_name("cpu_kernels.py")
        spec = importlib.util.spec_from_file_location(KERNELS_MODULE, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[KERNELS_MODULE] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            del sys.modules[KERNELS_MODULE]
            raise
    return mod


class NumbaEngine(NumpyEngine):
    """Compiled, multi-threaded CPU engine; no torch needed (the path Blender uses by default)."""

    name = "cpu-numba"

    def __init__(self):
        self.k = load_cpu_kernels()
        self.nbands = max(1, self.k.threads())

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

    def blend(self, acc_f, acc_b, alpha):
        h, w, k = acc_f.shape
        if getattr(self, "_box", None) is None or self._box[0].shape != acc_f.shape:
            self._box = tuple(np.empty((h, w, k), np.float32) for _ in range(3))  # reused every frame
        tmp, sums_f, sums_b = self._box
        self.k.box3(acc_f, tmp, sums_f)
        self.k.box3(acc_b, tmp, sums_b)
        out = np.empty((h, w, k - 2), np.float32)
        self.k.blend_streams(acc_f, sums_f, acc_b, sums_b, np.float32(alpha), out, np.float32(EPS))
        return out, np.isnan(out[..., 0])


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
        cols = [src * weight.unsqueeze(-1), weight.unsqueeze(-1)]
        if acc.shape[2] > c + 1:
            cols.append(t.ones_like(weight).unsqueeze(-1))
        k = len(cols) + c - 1
        vals = t.cat(cols, dim=-1).reshape(-1, k) * scale
        tx, ty, vals = tx[ok], ty[ok], vals[ok]
        ix = tx.floor()
        iy = ty.floor()
        ax = tx - ix
        ay = ty - iy
        ix = ix.long()
        iy = iy.long()
        flat = acc.view(-1, k)
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

    def blend(self, acc_f, acc_b, alpha):
        t = self.torch
        fn = t.nn.functional

        def sum3(a):  # (H, W, K) -> 3x3 sums inside the image
            x = a.permute(2, 0, 1)[None]
            return (fn.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True) * 9.0)[0].permute(1, 2, 0)

        def stream(acc):
            c = acc.shape[2] - 2
            ones = t.ones_like(acc[..., :1])
            sums = sum3(t.cat([acc, ones], dim=-1))
            cov = sums[..., c + 1] / sums[..., c + 2]
            d = acc[..., c]
            has = d > EPS
            own_rgb = acc[..., :c] / t.where(has, d, t.ones_like(d)).unsqueeze(-1)
            d3 = sums[..., c]
            rgb3 = sums[..., :c] / t.where(d3 > EPS, d3, t.ones_like(d3)).unsqueeze(-1)
            share = t.clamp(cov / DENSE, max=1.0)
            own = t.where(has, share, t.zeros_like(cov)).unsqueeze(-1)
            dense = (cov >= DENSE) & has
            rgb = t.where(dense.unsqueeze(-1), own_rgb, (1.0 - own) * rgb3 + own * own_rgb)
            weight = t.where(dense, t.ones_like(cov), t.where(d3 > EPS, share, t.zeros_like(cov)))
            return weight, rgb

        wf, rgb_f = stream(acc_f)
        wb, rgb_b = stream(acc_b)
        af, ab = alpha * wf, (1.0 - alpha) * wb
        tot = af + ab
        holes = tot <= 0
        rgb = (af.unsqueeze(-1) * rgb_f + ab.unsqueeze(-1) * rgb_b) / t.where(holes, t.ones_like(tot), tot).unsqueeze(-1)
        rgb[holes] = float("nan")
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
