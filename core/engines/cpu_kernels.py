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
# A stream whose 3x3 mean tap count reaches this is dense at a pixel (an unstretched stream has exactly 1,
# give or take rounding): its own normalised splat is the colour there.
DENSE = 0.98
OFFSET = 1 << 20  # splat targets are never this far outside the image


@njit(cache=True, parallel=True, nogil=True)
def row_reach(flow, lo, hi):  # pragma: no cover - compiled
    """For each source row: the lowest and highest destination row its bilinear taps touch (into lo, hi).

    The rows come back in arrays the caller made: a kernel that returned new arrays would call back into
    Python to box them, and a Ctrl-C raised there, inside numba's code, crashed or hung the process."""
    h, w = flow.shape[0], flow.shape[1]
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


@njit(inline="always", fastmath=_FAST)
def _tap(acc, y, x, tap, ww, r, g, b, src, sy, sx, c, scale, count):  # pragma: no cover - compiled
    """Add one bilinear tap. For RGB sources r, g, b hold w * colour, premultiplied once per source pixel."""
    k = tap * ww
    if c == 3:
        acc[y, x, 0] += tap * r
        acc[y, x, 1] += tap * g
        acc[y, x, 2] += tap * b
    else:
        for ch in range(c):
            acc[y, x, ch] += k * src[sy, sx, ch]
    acc[y, x, c] += k
    if count:
        acc[y, x, c + 1] += tap * scale


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def splat_accumulate(acc, src, flow, weight, scale, lo, hi, nbands):  # pragma: no cover - compiled
    """acc[..., :C] += scale * w * src and acc[..., C] += scale * w, splatted bilinearly along flow.

    When acc has a channel more (C + 2), it also counts coverage: acc[..., C + 1] += scale * bilinear tap.
    RGB sources take an unrolled path (about a third faster than the channel loop).
    """
    h, w, c = src.shape
    count = acc.shape[2] > c + 1
    band = (h + nbands - 1) // nbands
    for bnd in prange(nbands):
        y0 = bnd * band
        y1 = min(h, y0 + band)
        for sy in range(h):
            if hi[sy] < y0 or lo[sy] >= y1:
                continue
            for sx in range(w):
                fx = flow[sy, sx, 0]
                fy = flow[sy, sx, 1]
                if fx != fx or fy != fy:  # NaN: the particle left the image
                    continue
                tx = sx + fx
                ty = sy + fy
                # floor without a libm call: targets stay within one step of the image, far above -OFFSET
                ix = int(tx + OFFSET) - OFFSET
                iy = int(ty + OFFSET) - OFFSET
                ax = tx - ix
                ay = ty - iy
                ww = weight[sy, sx] * scale
                r = g = b = 0.0
                if c == 3:
                    r = src[sy, sx, 0] * ww
                    g = src[sy, sx, 1] * ww
                    b = src[sy, sx, 2] * ww
                in0 = 0 <= ix < w
                in1 = -1 <= ix < w - 1
                if y0 <= iy < y1:
                    if in0:
                        _tap(acc, iy, ix, (1.0 - ay) * (1.0 - ax), ww, r, g, b, src, sy, sx, c, scale, count)
                    if in1:
                        _tap(acc, iy, ix + 1, (1.0 - ay) * ax, ww, r, g, b, src, sy, sx, c, scale, count)
                if y0 <= iy + 1 < y1:
                    if in0:
                        _tap(acc, iy + 1, ix, ay * (1.0 - ax), ww, r, g, b, src, sy, sx, c, scale, count)
                    if in1:
                        _tap(acc, iy + 1, ix + 1, ay * ax, ww, r, g, b, src, sy, sx, c, scale, count)


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


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def box3(acc, tmp, out):  # pragma: no cover - compiled
    """out = 3x3 sums of every channel of acc (pixels outside the image count as 0); tmp: scratch."""
    h, w, k = acc.shape
    for y in prange(h):
        for x in range(w):
            for ch in range(k):
                s = acc[y, x, ch]
                if x > 0:
                    s += acc[y, x - 1, ch]
                if x + 1 < w:
                    s += acc[y, x + 1, ch]
                tmp[y, x, ch] = s
    for y in prange(h):
        for x in range(w):
            for ch in range(k):
                s = tmp[y, x, ch]
                if y > 0:
                    s += tmp[y - 1, x, ch]
                if y + 1 < h:
                    s += tmp[y + 1, x, ch]
                out[y, x, ch] = s


@njit(inline="always", fastmath=_FAST)
def _stream_colour(acc, sums, npix, y, x, c, eps, rgb):  # pragma: no cover - compiled
    """One stream at one pixel: its blend weight and its colour (written into rgb).

    The stream's coverage is the 3x3 mean of its tap count. Where it is dense (coverage >= DENSE) the colour
    is the pixel's own normalised splat and the weight 1; where it is stretched thin the colour leans on the
    3x3 normalised neighbourhood (sparse pixels between its particles get a colour instead of flickering
    between "some" and "none") and the weight is coverage / DENSE. Weight 0 when the neighbourhood is empty.
    """
    cov = sums[y, x, c + 1] / npix
    d = acc[y, x, c]
    if cov >= DENSE and d > eps:
        inv = 1.0 / d
        for ch in range(c):
            rgb[ch] = acc[y, x, ch] * inv
        return 1.0
    d3 = sums[y, x, c]
    if d3 <= eps:
        return 0.0
    share = cov / DENSE
    own = share if d > eps else 0.0
    inv3 = (1.0 - own) / d3
    invd = own / d if d > eps else 0.0
    for ch in range(c):
        rgb[ch] = sums[y, x, ch] * inv3 + acc[y, x, ch] * invd
    return share


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def blend_streams(acc_f, sums_f, acc_b, sums_b, alpha, out, eps):  # pragma: no cover - compiled
    """Blend the forward and backward streams by alpha times their local coverage.

    acc_* are (H, W, C + 2): [sum w D, sum w, sum taps]; sums_* their ``box3``. Each stream gets a colour
    and a weight from ``_stream_colour``; the blend weight is alpha (1 - alpha for the backward stream) times
    that. Where one stream is stretched thin its per-pixel density flickers between 0 and 1; the paper's
    joint normalisation turns that flicker into dotted patterns, this blend does not.
    Returns the number of holes (no weight from either stream); holes get NaN.
    """
    h, w = acc_f.shape[0], acc_f.shape[1]
    c = out.shape[2]
    holes = np.zeros(h, np.int64)
    for y in prange(h):
        n = 0
        cf = np.empty(c, np.float32)
        cb = np.empty(c, np.float32)
        ny = min(h, y + 2) - max(0, y - 1)
        for x in range(w):
            npix = ny * (min(w, x + 2) - max(0, x - 1))
            af = alpha * _stream_colour(acc_f, sums_f, npix, y, x, c, eps, cf) if alpha > 0.0 else 0.0
            ab = (1.0 - alpha) * _stream_colour(acc_b, sums_b, npix, y, x, c, eps, cb) if alpha < 1.0 else 0.0
            tot = af + ab
            if tot <= 0.0:
                n += 1
                for ch in range(c):
                    out[y, x, ch] = np.nan
                continue
            inv = 1.0 / tot
            for ch in range(c):
                out[y, x, ch] = (af * cf[ch] + ab * cb[ch]) * inv
        holes[y] = n
    return holes.sum()


def threads() -> int:
    return numba.get_num_threads()


# ------------------------------------------------------------------ the detail-keeping ("sharp") path


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def displacement_sums(acc, tmp):  # pragma: no cover - compiled
    """tmp = [sum w dx, sum w dy, sum w, sum taps] per pixel from acc = [sum w x_src, sum w y_src, ...]."""
    h, w = acc.shape[0], acc.shape[1]
    for y in prange(h):
        for x in range(w):
            ws = acc[y, x, 2]
            tmp[y, x, 0] = acc[y, x, 0] - x * ws
            tmp[y, x, 1] = acc[y, x, 1] - y * ws
            tmp[y, x, 2] = ws
            tmp[y, x, 3] = acc[y, x, 3]


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def stream_displacement(own, sums, disp, share, eps):  # pragma: no cover - compiled
    """disp = own mean displacement (else the 3x3 one, else NaN), share = min(1, 3x3 coverage / DENSE)."""
    h, w = own.shape[0], own.shape[1]
    for y in prange(h):
        ny = min(h, y + 2) - max(0, y - 1)
        for x in range(w):
            npix = ny * (min(w, x + 2) - max(0, x - 1))
            s = sums[y, x, 2]
            if s <= eps:
                disp[y, x, 0] = np.nan
                disp[y, x, 1] = np.nan
                share[y, x] = 0.0
                continue
            ws = own[y, x, 2]
            if ws > eps:
                disp[y, x, 0] = own[y, x, 0] / ws
                disp[y, x, 1] = own[y, x, 1] / ws
            else:
                disp[y, x, 0] = sums[y, x, 0] / s
                disp[y, x, 1] = sums[y, x, 1] / s
            share[y, x] = min(1.0, sums[y, x, 3] / npix / DENSE)


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def stretch(disp, out):  # pragma: no cover - compiled
    """out = det(I + grad disp) clipped to [0, 1], central differences (one-sided at the border)."""
    h, w = disp.shape[0], disp.shape[1]
    for y in prange(h):
        y0 = max(0, y - 1)
        y1 = min(h - 1, y + 1)
        for x in range(w):
            x0 = max(0, x - 1)
            x1 = min(w - 1, x + 1)
            sx = 1.0 / max(1, x1 - x0)
            sy = 1.0 / max(1, y1 - y0)
            dxx = (disp[y, x1, 0] - disp[y, x0, 0]) * sx
            dyx = (disp[y, x1, 1] - disp[y, x0, 1]) * sx
            dxy = (disp[y1, x, 0] - disp[y0, x, 0]) * sy
            dyy = (disp[y1, x, 1] - disp[y0, x, 1]) * sy
            det = (1.0 + dxx) * (1.0 + dyy) - dxy * dyx
            out[y, x] = min(1.0, max(0.0, det))


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def sample_sharp(base, detail, dither, disp, keep, out):  # pragma: no cover - compiled
    """out = base (bilinear) + keep x detail (source pixel floor(position + dither)) at (x + dx, y + dy),
    clamped to the image (reference.sample_sharp)."""
    h, w, c = base.shape
    for y in prange(h):
        for x in range(w):
            px = min(max(x + disp[y, x, 0], 0.0), w - 1.0)
            py = min(max(y + disp[y, x, 1], 0.0), h - 1.0)
            ix = min(int(px), max(w - 2, 0))
            iy = min(int(py), max(h - 2, 0))
            tx = px - ix
            ty = py - iy
            ix1 = min(ix + 1, w - 1)
            iy1 = min(iy + 1, h - 1)
            # positions to 1/256 px first (reference.sample_sharp): rounding errors never move the detail
            nx = min(w - 1, int(math.floor(px * 256.0 + 0.5) / 256.0 + dither[y, x, 0]))
            ny = min(h - 1, int(math.floor(py * 256.0 + 0.5) / 256.0 + dither[y, x, 1]))
            for ch in range(c):
                top = base[iy, ix, ch] + (base[iy, ix1, ch] - base[iy, ix, ch]) * tx
                bot = base[iy1, ix, ch] + (base[iy1, ix1, ch] - base[iy1, ix, ch]) * tx
                out[y, x, ch] = top + (bot - top) * ty + keep[y, x] * detail[ny, nx, ch]


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def _box_rows(src, out, r):  # pragma: no cover - compiled
    """Box blur of radius r along each row, edges renormalised."""
    h, w, c = src.shape
    for y in prange(h):
        s = np.zeros(c, np.float64)
        for x in range(min(r, w - 1) + 1):
            for ch in range(c):
                s[ch] += src[y, x, ch]
        for x in range(w):
            inv = 1.0 / (min(w - 1, x + r) - max(0, x - r) + 1)
            for ch in range(c):
                out[y, x, ch] = s[ch] * inv
            if x + r + 1 < w:
                for ch in range(c):
                    s[ch] += src[y, x + r + 1, ch]
            if x - r >= 0:
                for ch in range(c):
                    s[ch] -= src[y, x - r, ch]


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def _box_cols(src, out, r):  # pragma: no cover - compiled
    """Box blur of radius r down each column, edges renormalised; threads own blocks of columns and walk
    down the rows (contiguous reads)."""
    h, w, c = src.shape
    block = 64
    nblocks = (w + block - 1) // block
    for bk in prange(nblocks):
        x0 = bk * block
        x1 = min(w, x0 + block)
        s = np.zeros((x1 - x0, c), np.float64)
        for y in range(min(r, h - 1) + 1):
            for x in range(x0, x1):
                for ch in range(c):
                    s[x - x0, ch] += src[y, x, ch]
        for y in range(h):
            inv = 1.0 / (min(h - 1, y + r) - max(0, y - r) + 1)
            for x in range(x0, x1):
                for ch in range(c):
                    out[y, x, ch] = s[x - x0, ch] * inv
            if y + r + 1 < h:
                for x in range(x0, x1):
                    for ch in range(c):
                        s[x - x0, ch] += src[y + r + 1, x, ch]
            if y - r >= 0:
                for x in range(x0, x1):
                    for ch in range(c):
                        s[x - x0, ch] -= src[y - r, x, ch]


def box_blur(src, tmp, out, r):
    """One box pass of radius r each way, edges renormalised (as core.field.box_blur(..., passes=1))."""
    _box_rows(src, tmp, r)
    _box_cols(tmp, out, r)


@njit(inline="always")
def _first_share(wa, wb):  # pragma: no cover - compiled
    """The first picture's share of the blend (even where neither has weight)."""
    tot = wa + wb
    return wa / tot if tot > 0.0 else 0.5


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def detail_energies(a_img, b_img, la, lb, wa, wb, mix, energy):  # pragma: no cover - compiled
    """mix = a (A - lowA) + b (B - lowB); energy = [luma of a hA^2 + b hB^2, luma of mix^2]."""
    h, w, c = a_img.shape
    for y in prange(h):
        for x in range(w):
            a = _first_share(wa[y, x], wb[y, x])
            b = 1.0 - a
            e_in = 0.0
            e_mix = 0.0
            for ch in range(c):
                ha = a_img[y, x, ch] - la[y, x, ch]
                hb = b_img[y, x, ch] - lb[y, x, ch]
                m = a * ha + b * hb
                mix[y, x, ch] = m
                lum = 0.299 if ch == 0 else (0.587 if ch == 1 else 0.114)
                e_in += lum * (a * ha * ha + b * hb * hb)
                e_mix += lum * m * m
            energy[y, x, 0] = e_in
            energy[y, x, 1] = e_mix


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def blend_detail(la, lb, wa, wb, mix, energy, out):  # pragma: no cover - compiled
    """out = a lowA + b lowB + gain mix, gain = clip(sqrt(E_in / E_mix), 1, 1 / sqrt(a^2 + b^2))."""
    h, w, c = la.shape
    for y in prange(h):
        for x in range(w):
            a = _first_share(wa[y, x], wb[y, x])
            b = 1.0 - a
            e_mix = energy[y, x, 1]
            gain = 1.0
            if e_mix > 1e-12:
                gain = math.sqrt(energy[y, x, 0] / e_mix)
                limit = 1.0 / math.sqrt(a * a + b * b)
                gain = min(max(gain, 1.0), limit)
            for ch in range(c):
                out[y, x, ch] = a * la[y, x, ch] + b * lb[y, x, ch] + gain * mix[y, x, ch]
