"""The compiled CPU engine (numba kernels in `cpu_kernels.py`): the path Blender and the command line use
by default; no torch needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..interrupts import call_held
from .base import EPS
from .reference import NumpyEngine

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


class HeldKernels:
    """The kernels module, each kernel called with Ctrl-C and SIGTERM held (core.interrupts): a kernel
    runs native code that an interrupt cannot stop anyway, but its first call compiles or loads it, and a
    KeyboardInterrupt raised in llvmlite's callbacks there was dropped (the batch ran on)."""

    def __init__(self, mod):
        self.mod = mod

    def __getattr__(self, name):
        fn = getattr(self.mod, name)
        if not callable(fn):
            return fn

        def call(*args):
            return call_held(fn, *args)

        call.__name__ = name
        setattr(self, name, call)  # found directly from now on
        return call


class NumbaEngine(NumpyEngine):
    """Compiled, multi-threaded CPU engine; no torch needed (the path Blender uses by default)."""

    name = "cpu-numba"

    def __init__(self):
        self.k = HeldKernels(load_cpu_kernels())
        self.nbands = max(1, self.k.threads())

    def step(self, motion, flow):
        motion, flow = np.ascontiguousarray(motion), np.ascontiguousarray(flow)  # the kernel reads them flat
        out = np.empty_like(flow)
        self.k.euler_step(motion, flow, out)
        return out

    def accumulate(self, acc, src, flow, weight, scale, coords=False):
        lo = np.empty(flow.shape[0], np.int64)
        hi = np.empty(flow.shape[0], np.int64)
        self.k.row_reach(flow, lo, hi)
        self.k.splat_accumulate(acc, src, flow, weight, np.float32(scale), lo, hi, self.nbands, coords)

    def accumulate_coords(self, acc, flow, weight):
        self.accumulate(acc, flow, flow, weight, 1.0, coords=True)  # flow stands in for the unread source

    def normalise(self, acc):
        out = np.empty(acc.shape[:2] + (acc.shape[2] - 1,), np.float32)
        self.k.normalise(acc, out, np.float32(EPS))
        holes = np.isnan(out[..., 0])
        return out, holes

    def sharp_stream(self, acc, source, still):
        base, detail, dither = source
        h, w = acc.shape[:2]
        out = np.empty((h, w, base.shape[2]), np.float32)
        share = np.empty((h, w), np.float32)
        self.k.sharp_stream(acc, base, detail, dither, np.float32(EPS), out, share, still)
        return out, share

    def blend_detail(self, a_img, b_img, wa, wb, still=None, photo=None, radius: int = 2):
        shape = a_img.shape
        wa = np.ascontiguousarray(np.broadcast_to(wa, shape[:2]), dtype=np.float32)
        wb = np.ascontiguousarray(np.broadcast_to(wb, shape[:2]), dtype=np.float32)
        a_img, b_img = np.ascontiguousarray(a_img), np.ascontiguousarray(b_img)
        out = np.empty(shape, np.float32)
        finish = still is not None
        if not finish:
            still, photo = np.zeros((1, 1), bool), a_img
        self.k.blend_detail_bands(a_img, b_img, wa, wb, radius, still, photo, finish, out)
        return out

    def detail_blocks(self, rgb, where, k: int):
        h, w = rgb.shape[:2]
        out = np.empty((-(-h // k), -(-w // k)), np.float32)
        self.k.detail_blocks(np.ascontiguousarray(rgb, dtype=np.float32), where, k, out)
        return out

    def detail_apply(self, rgb, gain, where, k: int):
        lum = np.empty(rgb.shape[:2], np.float32)
        self.k.luma_of(rgb, lum)  # read whole before any row of rgb changes
        self.k.detail_apply(rgb, lum, gain, where, k)

    def box_blur(self, arr, radius: int):
        """Three compiled box passes (core.field.box_blur's Gaussian-like blur) of (H, W, C) float32."""
        a = np.ascontiguousarray(arr, dtype=np.float32)
        if radius < 1:
            return a.copy()
        tmp, out = np.empty_like(a), np.empty_like(a)
        self.k.box_blur(a, tmp, out, radius)
        for _ in range(2):
            self.k.box_blur(out, tmp, out, radius)  # rows read `out` into tmp, columns write `out` from tmp
        return out

    def blend(self, acc_f, acc_b, alpha):
        h, w, k = acc_f.shape
        out = np.empty((h, w, k - 2), np.float32)
        self.k.blend_streams(acc_f, acc_b, np.float32(alpha), out, np.float32(EPS))
        return out, np.isnan(out[..., 0])
