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


class SharpReference:
    """The sharp path's steps in plain numpy (functions below), for engines without kernels of their own:
    NumpyEngine, and TorchEngine for now (its splats run on the GPU, this finishing on the CPU)."""

    def sharp_source(self, img):
        return sharp_source(img, blur=self.box_blur)

    def accumulate_coords(self, acc, flow, weight):
        """``accumulate`` of each pixel's own coordinates (x, y) along flow, scale 1."""
        h, w = acc.shape[:2]
        grid = getattr(self, "_grid_xy", None)
        if grid is None or grid.shape[:2] != (h, w):
            gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
            grid = self._grid_xy = self.asarray(np.stack([gx, gy], -1))
        self.accumulate(acc, grid, flow, weight, 1.0)

    def sharp_stream(self, acc, source, still):
        """One coordinate stream's picture and share; ``still`` (bool (H, W)) is cleared where it moves."""
        # Where a stream has nothing near, its share is 0 and the other stream shows; its own picture
        # there only needs to be finite (the photo in place).
        disp, share = stream_displacement(self.to_numpy(acc))
        np.copyto(disp, 0.0, where=np.isnan(disp))  # (nan_to_num also hunts infinities: 6x the time)
        still &= np.abs(disp[..., 0]) < 1e-3  # per component: .all(axis=2) took 18x as long
        still &= np.abs(disp[..., 1]) < 1e-3
        return sample_sharp(source, disp, stretch(disp)), share

    def blend_detail(self, a_img, b_img, wa, wb, still=None, photo=None):
        """With ``still`` (bool (H, W)) and ``photo``: the photo exactly where still, all clipped to [0, 1]."""
        out = blend_detail(a_img, b_img, wa, wb)
        if still is not None:
            out[still] = photo[still]
            np.clip(out, 0.0, 1.0, out=out)
        return out

    def detail_blocks(self, rgb, where, k: int):
        return detail_blocks(rgb, where, k)

    def detail_apply(self, rgb, gain, where, k: int):
        detail_apply(rgb, gain, where, k)

    def box_blur(self, arr, radius: int):
        """core.field.box_blur (three box passes, edges renormalised) of (H, W, C) float32."""
        from ..field import box_blur

        return box_blur(arr, radius)


class NumpyEngine(SharpReference):
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


# --------------------------------------------------------------------- the detail-keeping ("sharp") path
#
# Each stream splats the *source coordinates* of its pixels (not their colours); a frame's pixel then takes
# its colour from the photo at the stream's mean source position, so the photo is resampled once instead
# of being spread over a bilinear footprint. The photo is split once into a smooth base (Gaussian,
# sigma 1.5 px), resampled bilinearly (smooth, so that loses little), and its finest detail, taken from one
# of the source pixels around the position: no interpolation at a sub-pixel position can keep the
# pixel-level detail (a half-pixel shift cancels it), so the detail moves whole pixels while the base moves
# smoothly, and every frame keeps the photo's grain. A smooth per-pixel dither decides when a patch takes
# its next source pixel, so patches step at different frames, never the whole picture at once. The two
# streams are blended with their detail layers kept at the contrast of their inputs (variance preserving,
# aware of how alike the two are).

DETAIL_SIGMA = 1.5
DITHER_RADIUS = 3


def gaussian_blur(img: np.ndarray, sigma: float = DETAIL_SIGMA) -> np.ndarray:
    """Separable Gaussian blur (radius 3 sigma), edges renormalised; (H, W, C) float32."""
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
    out = img.astype(np.float32)  # (float64 took twice as long, for differences of 1e-7)
    for axis in (0, 1):
        n = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        num = np.moveaxis(np.pad(out, pad), axis, 0)  # slices along the first axis: no gathers
        den = np.pad(np.ones(n, np.float32), (r, r))
        acc = k[0] * num[0:n]
        for i in range(1, 2 * r + 1):
            acc += k[i] * num[i:i + n]
        acc /= sum(k[i] * den[i:i + n] for i in range(2 * r + 1)).reshape((n,) + (1,) * (out.ndim - 1))
        out = np.moveaxis(acc, 0, axis)
    return out.astype(np.float32)


def sharp_source(img: np.ndarray, seed: int = 0, blur=None):
    """What the sharp path samples: (the smooth base, the detail layer, both (H, W, 3), and a fixed
    dither (H, W, 2) in [0, 1) that decides, per pixel, where between two source pixels its detail
    switches from one to the other), float32. ``blur``: as in `smooth_dither`."""
    base = gaussian_blur(img)
    return base, (img - base).astype(np.float32), smooth_dither(img.shape[:2], seed, blur=blur)


def smooth_dither(shape: tuple[int, int], seed: int = 0, radius: int = DITHER_RADIUS, blur=None) -> np.ndarray:
    """(H, W, 2) values spread evenly over [0, 255/256] (by rank) that vary smoothly over ~2 radius pixels:
    neighbouring pixels take their next source pixel together (no scrambled grain), patches a few pixels
    apart at different frames (no tick of the whole picture). ``blur(arr (H, W, C), radius)``: the
    engine's box blur (core.field.box_blur's, compiled), else core.field's."""
    from ..field import box_blur, even_spread

    rng = np.random.default_rng(seed)
    noise = np.stack([rng.random(shape, dtype=np.float32) for _ in range(2)], -1)
    smooth = blur(noise, radius) if blur is not None else box_blur(noise, radius)
    out = np.empty(tuple(shape) + (2,), np.float32)
    for k in range(2):
        out[..., k] = even_spread(smooth[..., k]) * np.float32(255 / 256)
    return out


def sample_sharp(src, disp: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The photo at (x + dx, y + dy), clamped to the image: the smooth base bilinearly, plus the detail of
    one of the source pixels around it, times ``keep`` (`stretch`: where a stream is stretched, its texture
    is magnified, and repeating its finest detail would draw streaks). Which source pixel: the
    position rounded with the pixel's own dither (floor(x + dither)), so that as a region moves its pixels
    take their next source pixel's detail at different frames, not all at once (a tick of the grain)."""
    base, detail, dither = src
    h, w = detail.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    px = np.clip(gx + disp[..., 0], 0, w - 1)
    py = np.clip(gy + disp[..., 1], 0, h - 1)
    ix = np.minimum(np.floor(px).astype(np.int64), max(w - 2, 0))
    iy = np.minimum(np.floor(py).astype(np.int64), max(h - 2, 0))
    tx, ty = (px - ix)[..., None], (py - iy)[..., None]
    ix1, iy1 = np.minimum(ix + 1, w - 1), np.minimum(iy + 1, h - 1)
    top = base[iy, ix] * (1 - tx) + base[iy, ix1] * tx
    bot = base[iy1, ix] * (1 - tx) + base[iy1, ix1] * tx
    # positions to 1/256 px first, so a rounding error never moves a pixel's detail (dither < 1 - 1/256)
    nx = np.minimum(np.floor(np.floor(px * 256 + 0.5) / 256 + dither[..., 0]).astype(np.int64), w - 1)
    ny = np.minimum(np.floor(np.floor(py * 256 + 0.5) / 256 + dither[..., 1]).astype(np.int64), h - 1)
    return (top * (1 - ty) + bot * ty + keep[..., None] * detail[ny, nx]).astype(np.float32)


def stretch(disp: np.ndarray) -> np.ndarray:
    """How much of its finest detail a stream keeps at each pixel: det(I + grad disp) clipped to [0, 1]
    (central differences, one-sided at the border). 1 where the stream moves rigidly or not at all, less
    where it is stretched (magnified: repeating its pixels would draw streaks)."""
    d = disp.astype(np.float64)
    gx = np.gradient(d, axis=1)
    gy = np.gradient(d, axis=0)
    det = (1.0 + gx[..., 0]) * (1.0 + gy[..., 1]) - gy[..., 0] * gx[..., 1]
    return np.clip(det, 0.0, 1.0).astype(np.float32)


def stream_displacement(acc: np.ndarray):
    """One coordinate stream, acc (H, W, 4) = [sum w x_src, sum w y_src, sum w, sum taps]: its displacement
    (H, W, 2) to the mean source position (from the 3x3 neighbourhood where the pixel got nothing itself;
    NaN where that is empty too) and its share in [0, 1] (3x3 coverage / DENSE)."""
    h, w = acc.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    wsum = acc[..., 2].astype(np.float64)
    dxw = acc[..., 0] - gx * wsum
    dyw = acc[..., 1] - gy * wsum
    s = _sum3x3(np.stack([dxw, dyw, wsum, acc[..., 3]], -1))
    npix = _sum3x3(np.ones((h, w)))
    own = wsum > EPS
    near = s[..., 2] > EPS
    disp = np.full((h, w, 2), np.nan)
    disp[near] = s[near][:, :2] / s[near][:, 2:3]
    disp[own] = np.stack([dxw[own], dyw[own]], -1) / wsum[own][:, None]
    share = np.where(near, np.minimum(1.0, s[..., 3] / npix / DENSE), 0.0)
    return disp.astype(np.float32), share.astype(np.float32)


def blend_detail(a_img: np.ndarray, b_img: np.ndarray, wa: np.ndarray, wb: np.ndarray, radius: int = 2):
    """Blend two renderings of the photo by weights wa, wb (H, W) keeping their detail's contrast.

    low = the weighted mix of their local means (box blur), detail = the weighted mix of their detail
    layers, amplified by sqrt(E_in / E_mix) (the weighted energy of the inputs' detail over the mix's, each
    a local (5x5 box) mean of luminance), at most 1 / sqrt(a^2 + b^2): two unrelated textures averaged lose that much
    contrast, two alike lose none. Where a weight is 0 the other image comes out exactly."""
    from ..field import box_blur

    tot = wa + wb
    a = np.where(tot > 0, wa / np.where(tot > 0, tot, 1.0), 0.5)[..., None].astype(np.float64)
    b = 1.0 - a
    la, lb = box_blur(a_img, radius, passes=1), box_blur(b_img, radius, passes=1)
    ha, hb = a_img - la, b_img - lb
    mix = a * ha + b * hb
    lum = np.array([0.299, 0.587, 0.114])
    e_in = box_blur((a * ha**2 + b * hb**2) @ lum, radius, passes=1)
    e_mix = box_blur((mix**2) @ lum, radius, passes=1)
    limit = 1.0 / np.sqrt(a[..., 0] ** 2 + b[..., 0] ** 2)
    gain = np.clip(np.sqrt(e_in / np.maximum(e_mix, 1e-12)), 1.0, limit)
    gain = np.where(e_mix > 1e-12, gain, 1.0)
    return (a * la + b * lb + gain[..., None] * mix).astype(np.float32)


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """(H, W) float32 averaged over k x k blocks, its last rows and columns repeated to fill the last ones."""
    h, w = a.shape
    if k > 1:
        a = np.pad(a, ((0, -h % k), (0, -w % k)), mode="edge")
        a = a.reshape(a.shape[0] // k, k, a.shape[1] // k, k).mean(axis=(1, 3), dtype=np.float32)
    return np.ascontiguousarray(a, dtype=np.float32)


def detail_blocks(rgb: np.ndarray, where: np.ndarray, k: int) -> np.ndarray:
    """core.render.DetailMatch's detail energy before its blur: the squared 5-point Laplacian of the luma
    of ``rgb`` (H, W, 3), times ``where`` (H, W), averaged over k x k blocks (``block_mean``)."""
    from ..field import laplacian, luma

    lap2 = laplacian(luma(rgb))
    lap2 *= lap2
    lap2 *= where
    return block_mean(lap2, k)


def detail_apply(rgb: np.ndarray, gain: np.ndarray, where: np.ndarray, k: int) -> None:
    """core.render.DetailMatch's gain applied, in place: ``gain`` (the block grid's gain - 1) bilinearly
    up to k times its size, cropped to the picture and times ``where``, scales the 3x3 high-pass of the
    luma of ``rgb``, which is added to each channel; all clipped to [0, 1]."""
    from ..field import luma, resize_bilinear

    h, w = rgb.shape[:2]
    if k > 1:
        gain = resize_bilinear(gain, (gain.shape[0] * k, gain.shape[1] * k))[:h, :w]
    gain = gain * where  # 0 where nothing moves: those pixels stay exact
    lum = luma(rgb)
    high = lum - mean3x3(lum)  # the luma's 3x3 high-pass: the colours are kept
    high *= gain
    rgb += high[..., None]
    np.clip(rgb, 0.0, 1.0, out=rgb)


def mean3x3(gray: np.ndarray) -> np.ndarray:
    """The 3x3 mean of (H, W) float32, edges repeated: two passes of three taps (core.field.box_blur's
    renormalised float64 cumulative sums took several times as long)."""
    rows = gray * np.float32(1.0 / 3.0)
    out = rows.copy()
    out[1:] += rows[:-1]
    out[:-1] += rows[1:]
    out[0] += rows[0]
    out[-1] += rows[-1]
    cols = out * np.float32(1.0 / 3.0)
    out = cols.copy()
    out[:, 1:] += cols[:, :-1]
    out[:, :-1] += cols[:, 1:]
    out[:, 0] += cols[:, 0]
    out[:, -1] += cols[:, -1]
    return out
