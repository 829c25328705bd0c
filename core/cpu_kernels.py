"""Compiled CPU kernels (numba): bilinear softmax splatting and one Euler step, multi-threaded.

Threads own bands of *destination* rows: each thread scans only the source rows whose splat footprint can
reach its band (known from a per-row min/max of the target row) and writes only inside its band, so no two
threads ever write the same pixel, at any displacement, without atomics or private accumulators.
Flows hold NaN for particles that left the image; they are skipped.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

# Fast-math without "nnan"/"ninf": NaN marks particles that left the image and must stay testable.
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, parallel=True, nogil=True)
def row_reach(flow):  # pragma: no cover - compiled
    """For each source row: the lowest and highest destination row its bilinear taps touch."""
    h, w = flow.shape[0], flow.shape[1]
    lo = np.full(h, h, np.int64)
    hi = np.full(h, -1, np.int64)
    for y in prange(h):
        mn = h
        mx = -1
        for x in range(w):
            fy = flow[y, x, 1]
            if math.isnan(fy) or math.isnan(flow[y, x, 0]):
                continue
            t = int(math.floor(y + fy))
            if t < mn:
                mn = t
            if t + 1 > mx:
                mx = t + 1
        lo[y] = mn
        hi[y] = mx
    return lo, hi


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def splat_accumulate(acc, src, flow, weight, scale, lo, hi, nbands):  # pragma: no cover - compiled
    """acc[..., :C] += scale * w * src and acc[..., C] += scale * w, splatted bilinearly along flow."""
    h, w, c = src.shape
    band = (h + nbands - 1) // nbands
    for b in prange(nbands):
        y0 = b * band
        y1 = min(h, y0 + band)
        for sy in range(h):
            if hi[sy] < y0 or lo[sy] >= y1:
                continue
            for sx in range(w):
                fx = flow[sy, sx, 0]
                fy = flow[sy, sx, 1]
                if math.isnan(fx) or math.isnan(fy):
                    continue
                tx = sx + fx
                ty = sy + fy
                ix = int(math.floor(tx))
                iy = int(math.floor(ty))
                ax = tx - ix
                ay = ty - iy
                ww = weight[sy, sx] * scale
                for dy in range(2):
                    yy = iy + dy
                    if yy < y0 or yy >= y1:
                        continue
                    wy = ay if dy == 1 else 1.0 - ay
                    for dx in range(2):
                        xx = ix + dx
                        if xx < 0 or xx >= w:
                            continue
                        k = ww * wy * (ax if dx == 1 else 1.0 - ax)
                        for ch in range(c):
                            acc[yy, xx, ch] += k * src[sy, sx, ch]
                        acc[yy, xx, c] += k


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def euler_step(motion, flow, out):  # pragma: no cover - compiled
    """out = flow + motion(x + flow), motion sampled bilinearly; particles leaving the image become NaN."""
    h, w = motion.shape[0], motion.shape[1]
    for y in prange(h):
        for x in range(w):
            fx = flow[y, x, 0]
            fy = flow[y, x, 1]
            px = x + fx
            py = y + fy
            if not (px >= 0.0 and py >= 0.0 and px <= w - 1 and py <= h - 1):
                out[y, x, 0] = np.nan
                out[y, x, 1] = np.nan
                continue
            ix = min(int(px), w - 2) if w > 1 else 0
            iy = min(int(py), h - 2) if h > 1 else 0
            ax = px - ix
            ay = py - iy
            for ch in range(2):
                v00 = motion[iy, ix, ch]
                v01 = motion[iy, min(ix + 1, w - 1), ch]
                v10 = motion[min(iy + 1, h - 1), ix, ch]
                v11 = motion[min(iy + 1, h - 1), min(ix + 1, w - 1), ch]
                top = v00 + (v01 - v00) * ax
                bot = v10 + (v11 - v10) * ax
                out[y, x, ch] = flow[y, x, ch] + top + (bot - top) * ay


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def normalise(acc, out, eps):  # pragma: no cover - compiled
    """out = acc[..., :C] / acc[..., C] where the weight exceeds eps; returns the number of holes."""
    h, w = acc.shape[0], acc.shape[1]
    c = out.shape[2]
    holes = np.zeros(h, np.int64)
    for y in prange(h):
        n = 0
        for x in range(w):
            den = acc[y, x, c]
            if den > eps:
                inv = 1.0 / den
                for ch in range(c):
                    out[y, x, ch] = acc[y, x, ch] * inv
            else:
                n += 1
                for ch in range(c):
                    out[y, x, ch] = np.nan
        holes[y] = n
    return holes.sum()


def threads() -> int:
    return numba.get_num_threads()
