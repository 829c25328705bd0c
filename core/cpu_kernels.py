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
    """acc[..., :C] += scale * w * src and acc[..., C] += scale * w, splatted bilinearly along flow.

    When acc has a channel more (C + 2), it also counts coverage: acc[..., C + 1] += scale * bilinear tap.
    """
    h, w, c = src.shape
    count = acc.shape[2] > c + 1
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
                        tap = wy * (ax if dx == 1 else 1.0 - ax)
                        k = ww * tap
                        for ch in range(c):
                            acc[yy, xx, ch] += k * src[sy, sx, ch]
                        acc[yy, xx, c] += k
                        if count:
                            acc[yy, xx, c + 1] += scale * tap


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


@njit(cache=True, nogil=True, fastmath=_FAST)
def _stream_colour(acc, y, x, c, eps, rgb):  # pragma: no cover - compiled
    """One stream at one pixel: its blend coverage (3x3 mean tap count, capped at 1) and colour in rgb.

    Where the stream is dense (coverage >= 1) the colour is the pixel's own normalised splat; where it is
    stretched thin it leans on the 3x3 normalised neighbourhood, so sparse pixels between its particles get
    a colour instead of flickering between "some" and "none". Returns 0 when the 3x3 neighbourhood is empty.
    """
    h, w = acc.shape[0], acc.shape[1]
    cnt = 0.0
    m = 0
    for yy in range(max(0, y - 1), min(h, y + 2)):
        for xx in range(max(0, x - 1), min(w, x + 2)):
            cnt += acc[yy, xx, c + 1]
            m += 1
    cov = cnt / m
    d = acc[y, x, c]
    if cov >= 1.0 and d > eps:
        for ch in range(c):
            rgb[ch] = acc[y, x, ch] / d
        return 1.0
    d3 = 0.0
    for ch in range(c):
        rgb[ch] = 0.0
    for yy in range(max(0, y - 1), min(h, y + 2)):
        for xx in range(max(0, x - 1), min(w, x + 2)):
            d3 += acc[yy, xx, c]
            for ch in range(c):
                rgb[ch] += acc[yy, xx, ch]
    if d3 <= eps:
        return 0.0
    own = min(1.0, cov) if d > eps else 0.0
    for ch in range(c):
        rgb[ch] = (1.0 - own) * rgb[ch] / d3 + (own * acc[y, x, ch] / d if d > eps else 0.0)
    return min(1.0, cov)


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def blend_streams(acc_f, acc_b, alpha, out, eps):  # pragma: no cover - compiled
    """Blend the forward and backward streams by alpha times their local coverage.

    acc_* are (H, W, C + 2): [sum w D, sum w, sum taps]. Each stream gets a colour and a coverage from
    ``_stream_colour``; the blend weight is alpha (1 - alpha for the backward stream) times the coverage.
    Where one stream is stretched thin by the flow its per-pixel density flickers between 0 and 1; the
    joint normalisation of the paper turns that flicker into dotted patterns, this blend does not.
    Returns the number of holes (no weight from either stream); holes get NaN.
    """
    h, w = acc_f.shape[0], acc_f.shape[1]
    c = out.shape[2]
    holes = np.zeros(h, np.int64)
    for y in prange(h):
        n = 0
        cf = np.empty(c, np.float32)
        cb = np.empty(c, np.float32)
        for x in range(w):
            af = alpha * _stream_colour(acc_f, y, x, c, eps, cf) if alpha > 0.0 else 0.0
            ab = (1.0 - alpha) * _stream_colour(acc_b, y, x, c, eps, cb) if alpha < 1.0 else 0.0
            tot = af + ab
            if tot <= 0.0:
                n += 1
                for ch in range(c):
                    out[y, x, ch] = np.nan
                continue
            for ch in range(c):
                out[y, x, ch] = (af * cf[ch] + ab * cb[ch]) / tot
        holes[y] = n
    return holes.sum()


def threads() -> int:
    return numba.get_num_threads()
