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
BAND = 32  # rows per band of the banded kernels: their halos of 1-4 rows cost about a tenth


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
def _tap(af, i, tap, ww, r, g, b, src, sy, sx, c, scale, count):  # pragma: no cover - compiled
    """Add one bilinear tap at flat index i of the accumulator (unsigned: no wrap-around checks, which
    cost a fifth of the splat). For RGB and coordinate sources r, g, b hold w * value, premultiplied once
    per source pixel."""
    k = tap * ww
    if c == 3:
        af[i] += tap * r
        af[i + 1] += tap * g
        af[i + 2] += tap * b
    elif c == 2:
        af[i] += tap * r
        af[i + 1] += tap * g
    else:
        for ch in range(c):
            af[i + ch] += k * src[sy, sx, ch]
    af[i + c] += k
    if count:
        af[i + c + 1] += tap * scale


@njit(inline="always", fastmath=_FAST)
def _premultiplied(src, sy, sx, c, coords, ww):  # pragma: no cover - compiled
    """(r, g, b) = ww x the source pixel for RGB and coordinate sources (the unrolled taps), else zeros."""
    if c == 3:
        return src[sy, sx, 0] * ww, src[sy, sx, 1] * ww, src[sy, sx, 2] * ww
    if coords:
        return sx * ww, sy * ww, 0.0
    if c == 2:
        return src[sy, sx, 0] * ww, src[sy, sx, 1] * ww, 0.0
    return 0.0, 0.0, 0.0


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def splat_accumulate(acc, src, flow, weight, scale, lo, hi, nbands, coords):  # pragma: no cover - compiled
    """acc[..., :C] += scale * w * src and acc[..., C] += scale * w, splatted bilinearly along flow.

    When acc has a channel more (C + 2), it also counts coverage: acc[..., C + 1] += scale * bilinear tap.
    With ``coords`` the source is each pixel's own coordinates (x, y), not read from src (give any array
    of 2 channels). RGB and coordinate sources take an unrolled path (a third faster than the channel loop).
    """
    h, w, c = src.shape
    nk = acc.shape[2]
    count = nk > c + 1
    af = acc.reshape(acc.size)
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
                if fx == 0.0 and fy == 0.0:  # a particle at rest (still land): one tap of 1 on its own pixel
                    if y0 <= sy < y1:
                        ww = weight[sy, sx] * scale
                        r, g, b = _premultiplied(src, sy, sx, c, coords, ww)
                        _tap(af, np.uint64((sy * w + sx) * nk), 1.0, ww, r, g, b, src, sy, sx, c, scale, count)
                    continue
                tx = sx + fx
                ty = sy + fy
                # floor without a libm call: targets stay within one step of the image, far above -OFFSET
                ix = int(tx + OFFSET) - OFFSET
                iy = int(ty + OFFSET) - OFFSET
                ax = tx - ix
                ay = ty - iy
                ww = weight[sy, sx] * scale
                r, g, b = _premultiplied(src, sy, sx, c, coords, ww)
                in0 = 0 <= ix < w
                in1 = -1 <= ix < w - 1
                if y0 <= iy < y1:
                    row = iy * w
                    if in0:
                        i = np.uint64((row + ix) * nk)
                        _tap(af, i, (1.0 - ay) * (1.0 - ax), ww, r, g, b, src, sy, sx, c, scale, count)
                    if in1:
                        i = np.uint64((row + ix + 1) * nk)
                        _tap(af, i, (1.0 - ay) * ax, ww, r, g, b, src, sy, sx, c, scale, count)
                if y0 <= iy + 1 < y1:
                    row = (iy + 1) * w
                    if in0:
                        i = np.uint64((row + ix) * nk)
                        _tap(af, i, ay * (1.0 - ax), ww, r, g, b, src, sy, sx, c, scale, count)
                    if in1:
                        i = np.uint64((row + ix + 1) * nk)
                        _tap(af, i, ay * ax, ww, r, g, b, src, sy, sx, c, scale, count)


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def euler_step(motion, flow, out):  # pragma: no cover - compiled
    """out = flow + motion(x + flow), motion sampled bilinearly; particles leaving the image become NaN.
    C-contiguous arrays, read through flat unsigned indices: numba checks every signed index for
    wrap-around (a quarter of the step's time). The arithmetic is float32 throughout and the two channels
    written out (a pixel index plus a float32 flow is float64 in numba: with it and a loop over the
    channels the step took twice as long)."""
    h, w = motion.shape[0], motion.shape[1]
    m = motion.reshape(-1)
    f = flow.reshape(-1)
    o = out.reshape(-1)
    one = np.uint64(1)
    dx = np.uint64(2) if w > 1 else np.uint64(0)  # the next column's offset (none in a one-column image)
    dy = np.uint64(2 * w) if h > 1 else np.uint64(0)
    wm1 = np.float32(w - 1)
    hm1 = np.float32(h - 1)
    xmax = max(w - 2, 0)
    ymax = max(h - 2, 0)
    for y in prange(h):
        yf = np.float32(y)
        row = np.uint64(y) * np.uint64(w)
        for x in range(w):
            i = np.uint64(2) * (row + np.uint64(x))
            fx = f[i]
            fy = f[i + one]
            if fx == 0.0 and fy == 0.0:  # at its own pixel (still land, every particle's first step): exact
                o[i] = m[i]
                o[i + one] = m[i + one]
                continue
            px = np.float32(x) + fx
            py = yf + fy
            if not (px >= 0.0 and py >= 0.0 and px <= wm1 and py <= hm1):
                o[i] = np.nan
                o[i + one] = np.nan
                continue
            ix = min(int(px), xmax)
            iy = min(int(py), ymax)
            ax = px - np.float32(ix)
            ay = py - np.float32(iy)
            b = np.uint64(2) * (np.uint64(iy) * np.uint64(w) + np.uint64(ix))
            u00, v00 = m[b], m[b + one]
            u01, v01 = m[b + dx], m[b + dx + one]
            u10, v10 = m[b + dy], m[b + dy + one]
            u11, v11 = m[b + dy + dx], m[b + dy + dx + one]
            top_u = u00 + (u01 - u00) * ax
            bot_u = u10 + (u11 - u10) * ax
            top_v = v00 + (v01 - v00) * ax
            bot_v = v10 + (v11 - v10) * ax
            o[i] = fx + top_u + (bot_u - top_u) * ay
            o[i + one] = fy + top_v + (bot_v - top_v) * ay


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


@njit(nogil=True, fastmath=_FAST)  # called once a row: not inlined (halves the compile time)
def _sum3(v, c, out):  # pragma: no cover - compiled
    """out (W * C) = the 3-wide sums along a flattened row v of W pixels of C values (zeros outside)."""
    n = v.size
    if n <= c:  # one pixel
        for i in range(n):
            out[i] = v[i]
        return
    m = n - 2 * c
    o = out[c : c + m]
    b = v[c : c + m]
    d = v[2 * c : 2 * c + m]
    for i in range(m):
        o[i] = v[i] + b[i] + d[i]
    for i in range(c):
        out[i] = v[i] + v[c + i]
        out[n - c + i] = v[n - 2 * c + i] + v[n - c + i]


@njit(nogil=True, fastmath=_FAST)  # called once a row: not inlined (halves the compile time)
def _add_rows(img, ya, yb, vs):  # pragma: no cover - compiled
    """vs = the sum of img's rows ya .. yb (inclusive), each flattened to vs's size (W * C)."""
    n = vs.size
    first = img[ya].reshape(n)
    for i in range(n):
        vs[i] = first[i]
    for yy in range(ya + 1, yb + 1):
        nxt = img[yy].reshape(n)
        for i in range(n):
            vs[i] += nxt[i]


@njit(inline="always", fastmath=_FAST)
def _stream_colour(acc, sums, npix, y, x, c, eps, rgb):  # pragma: no cover - compiled
    """One stream at one pixel: its blend weight and its colour (written into rgb). ``sums``: row y of the
    stream's 3x3 sums, (W, C + 2).

    The stream's coverage is the 3x3 mean of its tap count. Where it is dense (coverage >= DENSE) the colour
    is the pixel's own normalised splat and the weight 1; where it is stretched thin the colour leans on the
    3x3 normalised neighbourhood (sparse pixels between its particles get a colour instead of flickering
    between "some" and "none") and the weight is coverage / DENSE. Weight 0 when the neighbourhood is empty.
    """
    cov = sums[x, c + 1] / npix
    d = acc[y, x, c]
    if cov >= DENSE and d > eps:
        inv = 1.0 / d
        for ch in range(c):
            rgb[ch] = acc[y, x, ch] * inv
        return 1.0
    d3 = sums[x, c]
    if d3 <= eps:
        return 0.0
    share = cov / DENSE
    own = share if d > eps else 0.0
    inv3 = (1.0 - own) / d3
    invd = own / d if d > eps else 0.0
    for ch in range(c):
        rgb[ch] = sums[x, ch] * inv3 + acc[y, x, ch] * invd
    return share


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def blend_streams(acc_f, acc_b, alpha, out, eps):  # pragma: no cover - compiled
    """Blend the forward and backward streams by alpha times their local coverage.

    acc_* are (H, W, C + 2): [sum w D, sum w, sum taps]. Each stream gets a colour and a weight from
    ``_stream_colour`` (its 3x3 sums made band by band, a row of halo each side: no full-size scratch);
    the blend weight is alpha (1 - alpha for the backward stream) times that. Where one stream is stretched
    thin its per-pixel density flickers between 0 and 1; the paper's joint normalisation turns that
    flicker into dotted patterns, this blend does not.
    Returns the number of holes (no weight from either stream); holes get NaN.
    """
    h, w, k = acc_f.shape
    c = out.shape[2]
    n = w * k
    nbands = (h + BAND - 1) // BAND
    holes = np.zeros(nbands, np.int64)
    for bnd in prange(nbands):
        y0 = bnd * BAND
        y1 = min(h, y0 + BAND)
        o0 = max(0, y0 - 1)
        o1 = min(h, y1 + 1)
        row_f = np.empty((o1 - o0, n), np.float32)  # 3-wide row sums
        row_b = np.empty((o1 - o0, n), np.float32)
        for y in range(o0, o1):
            _sum3(acc_f[y].reshape(n), k, row_f[y - o0])
            _sum3(acc_b[y].reshape(n), k, row_b[y - o0])
        sums_f = np.empty(n, np.float32)
        sums_b = np.empty(n, np.float32)
        # a stream of weight 0 leaves its colour as it was (the last pixel's), read times 0: zeros, never
        # np.empty's leftovers, whose NaN times 0 is NaN (a pixel or two of NaN now and then, once in a test)
        cf = np.zeros(c, np.float32)
        cb = np.zeros(c, np.float32)
        count = 0
        for y in range(y0, y1):
            ya, yb = max(0, y - 1) - o0, min(h - 1, y + 1) - o0
            _add_rows(row_f, ya, yb, sums_f)
            _add_rows(row_b, ya, yb, sums_b)
            sf = sums_f.reshape(w, k)
            sb = sums_b.reshape(w, k)
            ny = min(h, y + 2) - max(0, y - 1)
            for x in range(w):
                npix = ny * (min(w, x + 2) - max(0, x - 1))
                af = alpha * _stream_colour(acc_f, sf, npix, y, x, c, eps, cf) if alpha > 0.0 else 0.0
                ab = (1.0 - alpha) * _stream_colour(acc_b, sb, npix, y, x, c, eps, cb) if alpha < 1.0 else 0.0
                tot = af + ab
                if tot <= 0.0:
                    count += 1
                    for ch in range(c):
                        out[y, x, ch] = np.nan
                    continue
                inv = 1.0 / tot
                for ch in range(c):
                    out[y, x, ch] = (af * cf[ch] + ab * cb[ch]) * inv
        holes[bnd] = count
    return holes.sum()


def threads() -> int:
    return numba.get_num_threads()


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


# ------------------------------------------------------------------ the detail-keeping ("sharp") path
#
# Its steps (reference.py: stream_displacement, stretch, sample_sharp, blend_detail), each a full-frame
# numpy pass, are fused into two kernels that walk bands of rows: one per stream (its displacement, share,
# stretch and the photo sampled there) and one for the blend. Each band computes the few rows of halo it
# needs from the step before into scratch of its own, so no intermediate picture exists at full size, and
# each pixel is read from memory a few times, not dozens (tests/test_loop_quality.py compares them with
# the reference).






@njit(inline="always")
def _first_share(wa, wb):  # pragma: no cover - compiled
    """The first picture's share of the blend (even where neither has weight)."""
    tot = wa + wb
    return wa / tot if tot > 0.0 else 0.5


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def sharp_stream(acc, base, detail, dither, eps, out, share, still):  # pragma: no cover - compiled
    """One coordinate stream acc (H, W, 4) -> out (H, W, 3), the photo sampled at the stream's displacement
    (reference.stream_displacement, NaN read as 0, reference.stretch, reference.sample_sharp), and share (H, W);
    still[y, x] is cleared where the displacement is 1e-3 px or more."""
    h, w = acc.shape[0], acc.shape[1]
    nbands = (h + BAND - 1) // BAND
    for bnd in prange(nbands):
        y0 = bnd * BAND
        y1 = min(h, y0 + BAND)
        d0 = max(0, y0 - 1)  # displacement rows: the band and one more each side (stretch)
        d1 = min(h, y1 + 1)
        o0 = max(0, d0 - 1)  # 3-wide row sums of [sum w dx, sum w dy, sum w, sum taps]: one more again
        o1 = min(h, d1 + 1)
        n = w * 4
        hs = np.empty((o1 - o0, n), np.float32)
        own = np.empty(n, np.float32)
        for y in range(o0, o1):
            row = acc[y].reshape(n)
            for i in range(n):
                own[i] = row[i]
            for x in range(w):
                ws = own[4 * x + 2]
                own[4 * x] -= x * ws
                own[4 * x + 1] -= y * ws
            _sum3(own, 4, hs[y - o0])
        vs = np.empty(n, np.float32)
        disp = np.empty((d1 - d0, w, 2), np.float32)
        for y in range(d0, d1):
            i = y - o0
            ny = min(h, y + 2) - max(0, y - 1)
            _add_rows(hs, max(0, y - 1) - o0, min(h - 1, y + 1) - o0, vs)
            for x in range(w):
                s0 = vs[4 * x]
                s1 = vs[4 * x + 1]
                s2 = vs[4 * x + 2]
                s3 = vs[4 * x + 3]
                dx = 0.0
                dy = 0.0
                sh = 0.0
                if s2 > eps:
                    ws = acc[y, x, 2]
                    if ws > eps:
                        dx = np.float32(acc[y, x, 0] - x * ws) / ws  # rounded to float32 first, as the reference
                        dy = np.float32(acc[y, x, 1] - y * ws) / ws
                    else:
                        dx = s0 / s2
                        dy = s1 / s2
                    npix = ny * (min(w, x + 2) - max(0, x - 1))
                    sh = min(1.0, s3 / npix / DENSE)
                disp[y - d0, x, 0] = dx
                disp[y - d0, x, 1] = dy
                if y0 <= y < y1:
                    share[y, x] = sh
        c = base.shape[2]
        bf = base.reshape(base.size)
        df = detail.reshape(detail.size)
        for y in range(y0, y1):
            ya = max(0, y - 1) - d0
            yb = min(h - 1, y + 1) - d0
            sy = 1.0 / max(1, yb - ya)
            for x in range(w):
                xa = max(0, x - 1)
                xb = min(w - 1, x + 1)
                sx = 1.0 / max(1, xb - xa)
                dxx = (disp[y - d0, xb, 0] - disp[y - d0, xa, 0]) * sx
                dyx = (disp[y - d0, xb, 1] - disp[y - d0, xa, 1]) * sx
                dxy = (disp[yb, x, 0] - disp[ya, x, 0]) * sy
                dyy = (disp[yb, x, 1] - disp[ya, x, 1]) * sy
                keep = min(1.0, max(0.0, (1.0 + dxx) * (1.0 + dyy) - dxy * dyx))
                dx = disp[y - d0, x, 0]
                dy = disp[y - d0, x, 1]
                if abs(dx) >= 1e-3 or abs(dy) >= 1e-3:
                    still[y, x] = False
                px = min(max(x + dx, 0.0), w - 1.0)
                py = min(max(y + dy, 0.0), h - 1.0)
                ix = min(int(px), max(w - 2, 0))
                iy = min(int(py), max(h - 2, 0))
                tx = px - ix
                ty = py - iy
                ix1 = min(ix + 1, w - 1)
                iy1 = min(iy + 1, h - 1)
                nx = min(w - 1, int(math.floor(px * 256.0 + 0.5) / 256.0 + dither[y, x, 0]))
                nyy = min(h - 1, int(math.floor(py * 256.0 + 0.5) / 256.0 + dither[y, x, 1]))
                # flat unsigned indices: no wrap-around checks (a fifth of this kernel's time)
                i00 = np.uint64((iy * w + ix) * c)
                i01 = np.uint64((iy * w + ix1) * c)
                i10 = np.uint64((iy1 * w + ix) * c)
                i11 = np.uint64((iy1 * w + ix1) * c)
                idd = np.uint64((nyy * w + nx) * c)
                for ch in range(np.uint64(c)):
                    top = bf[i00 + ch] + (bf[i01 + ch] - bf[i00 + ch]) * tx
                    bot = bf[i10 + ch] + (bf[i11 + ch] - bf[i10 + ch]) * tx
                    out[y, x, ch] = top + (bot - top) * ty + keep * df[idd + ch]


@njit(nogil=True, fastmath=_FAST)  # called once a row: not inlined (halves the compile time)
def _box_row(img, ya, yb, r, vs, row):  # pragma: no cover - compiled
    """row (W, C) = the mean of img over rows ya .. yb (inclusive) and columns x - r .. x + r, edges
    renormalised; vs (W * C) scratch.

    Rows are flattened (a neighbour is C floats away) and every inner loop runs over plain slices from
    index 0: numba checks a computed index such as i - C for wrap-around, and that check stops LLVM from
    vectorising the loop (3-4x slower)."""
    w, c = img.shape[1], img.shape[2]
    n = w * c
    _add_rows(img, ya, yb, vs)
    ny = yb - ya + 1
    out = row.reshape(n)
    m = n - 2 * r * c
    if m > 0:
        o = out[r * c : r * c + m]
        for i in range(m):
            o[i] = vs[i]
        for k in range(1, 2 * r + 1):
            v = vs[k * c : k * c + m]
            for i in range(m):
                o[i] += v[i]
        inv = 1.0 / (ny * (2 * r + 1))
        for i in range(m):
            o[i] *= inv
    lo = min(r, w)
    hi = max(lo, w - r)
    for e in range(lo + w - hi):  # the columns within r of either edge: 0 .. lo - 1, then hi .. w - 1
        x = e if e < lo else e - lo + hi
        xa = max(0, x - r)
        xb = min(w - 1, x + r)
        inv_e = 1.0 / (ny * (xb - xa + 1))
        for ch in range(c):
            s = 0.0
            for xx in range(xa, xb + 1):
                s += vs[xx * c + ch]
            out[x * c + ch] = s * inv_e


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def blend_detail_bands(a_img, b_img, wa, wb, r, still, photo, finish, out):  # pragma: no cover - compiled
    """reference.blend_detail (its three box blurs of radius r, the detail energies, the gain), in bands of
    rows.
    With ``finish``: the photo where ``still`` (H, W), and everything clipped to [0, 1]."""
    h, w, c = a_img.shape
    nbands = (h + BAND - 1) // BAND
    for bnd in prange(nbands):
        y0 = bnd * BAND
        y1 = min(h, y0 + BAND)
        l0 = max(0, y0 - r)  # local means and energies: the band and r rows each side
        l1 = min(h, y1 + r)
        la = np.empty((l1 - l0, w, c), np.float32)
        lb = np.empty((l1 - l0, w, c), np.float32)
        en = np.empty((l1 - l0, w, 2), np.float32)
        vs = np.empty(w * c, np.float32)
        for y in range(l0, l1):
            ya = max(0, y - r)
            yb = min(h - 1, y + r)
            _box_row(a_img, ya, yb, r, vs, la[y - l0])
            _box_row(b_img, ya, yb, r, vs, lb[y - l0])
            for x in range(w):
                a = _first_share(wa[y, x], wb[y, x])
                b = 1.0 - a
                e_in = 0.0
                e_mix = 0.0
                for ch in range(c):
                    ha = a_img[y, x, ch] - la[y - l0, x, ch]
                    hb = b_img[y, x, ch] - lb[y - l0, x, ch]
                    m = a * ha + b * hb
                    lum = 0.299 if ch == 0 else (0.587 if ch == 1 else 0.114)
                    e_in += lum * (a * ha * ha + b * hb * hb)
                    e_mix += lum * m * m
                en[y - l0, x, 0] = e_in
                en[y - l0, x, 1] = e_mix
        eb = np.empty((w, 2), np.float32)
        ve = np.empty(w * 2, np.float32)
        for y in range(y0, y1):
            # the energies' box mean around row y: rows y - r .. y + r all lie in [l0, l1)
            _box_row(en, max(0, y - r) - l0, min(h - 1, y + r) - l0, r, ve, eb)
            i = y - l0
            for x in range(w):
                a = _first_share(wa[y, x], wb[y, x])
                b = 1.0 - a
                gain = 1.0
                e_mix = eb[x, 1]
                if e_mix > 1e-12:
                    gain = math.sqrt(eb[x, 0] / e_mix)
                    limit = 1.0 / math.sqrt(a * a + b * b)
                    gain = min(max(gain, 1.0), limit)
                if finish and still[y, x]:
                    for ch in range(c):
                        out[y, x, ch] = photo[y, x, ch]
                    continue
                for ch in range(c):
                    lo_a = la[i, x, ch]
                    lo_b = lb[i, x, ch]
                    m = a * (a_img[y, x, ch] - lo_a) + b * (b_img[y, x, ch] - lo_b)
                    v = a * lo_a + b * lo_b + gain * m
                    out[y, x, ch] = min(1.0, max(0.0, v)) if finish else v


@njit(inline="always", fastmath=_FAST)
def _luma(rgb, y, x):  # pragma: no cover - compiled
    return 0.299 * rgb[y, x, 0] + 0.587 * rgb[y, x, 1] + 0.114 * rgb[y, x, 2]


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def detail_blocks(rgb, where, k, out):  # pragma: no cover - compiled
    """reference.detail_blocks: the squared 5-point Laplacian of rgb's luma (0 on the border) times where,
    averaged over k x k blocks into out (ceil(H / k), ceil(W / k)), the last row and column repeated."""
    h, w = rgb.shape[0], rgb.shape[1]
    hb, wb = out.shape
    inv = 1.0 / (k * k)
    for bi in prange(hb):
        row = np.zeros(wb, np.float64)
        for yy in range(bi * k, bi * k + k):
            y = min(yy, h - 1)
            if y == 0 or y == h - 1:
                continue
            for xx in range(wb * k):
                x = min(xx, w - 1)
                wt = where[y, x]
                if x == 0 or x == w - 1 or wt == 0.0:
                    continue
                lap = (_luma(rgb, y - 1, x) + _luma(rgb, y + 1, x) + _luma(rgb, y, x - 1) + _luma(rgb, y, x + 1)
                       - 4.0 * _luma(rgb, y, x))
                row[xx // k] += lap * lap * wt
        for j in range(wb):
            out[bi, j] = row[j] * inv


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def luma_of(rgb, out):  # pragma: no cover - compiled
    h, w = rgb.shape[0], rgb.shape[1]
    for y in prange(h):
        for x in range(w):
            out[y, x] = _luma(rgb, y, x)


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def detail_apply(rgb, lum, gain, where, k):  # pragma: no cover - compiled
    """reference.detail_apply, in place: gain (the block grid's, minus 1) bilinearly at each pixel (as
    core.field.resize_bilinear to k times its size), times where, scales the 3x3 high-pass of lum (rgb's
    luma, edges repeated), added to each channel and clipped to [0, 1]."""
    h, w, c = rgb.shape
    hb, wb = gain.shape
    inv_k = 1.0 / k
    for y in prange(h):
        sy = min(max((y + 0.5) * inv_k - 0.5, 0.0), hb - 1.0)
        y0 = int(math.floor(sy))
        y1 = min(y0 + 1, hb - 1)
        fy = sy - y0
        ym = max(y - 1, 0)
        yp = min(y + 1, h - 1)
        for x in range(w):
            wt = where[y, x]
            if wt == 0.0:
                for ch in range(c):
                    rgb[y, x, ch] = min(1.0, max(0.0, rgb[y, x, ch]))
                continue
            sx = min(max((x + 0.5) * inv_k - 0.5, 0.0), wb - 1.0)
            x0 = int(math.floor(sx))
            x1 = min(x0 + 1, wb - 1)
            fx = sx - x0
            g = ((gain[y0, x0] * (1.0 - fx) + gain[y0, x1] * fx) * (1.0 - fy)
                 + (gain[y1, x0] * (1.0 - fx) + gain[y1, x1] * fx) * fy)
            xm = max(x - 1, 0)
            xp = min(x + 1, w - 1)
            s = (lum[ym, xm] + lum[ym, x] + lum[ym, xp] + lum[y, xm] + lum[y, x] + lum[y, xp]
                 + lum[yp, xm] + lum[yp, x] + lum[yp, xp])
            hp = (lum[y, x] - s * (1.0 / 9.0)) * g * wt
            for ch in range(c):
                rgb[y, x, ch] = min(1.0, max(0.0, rgb[y, x, ch] + hp))
