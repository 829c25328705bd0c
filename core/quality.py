"""Quality figures of a rendered loop, computed while frames stream past (no frame list kept).

- hole fraction: pixels that neither splatting stream reached (filled afterwards), worst frame;
- seam ratio: mean |frame 0 - frame N-1| over the median mean |frame t+1 - frame t| (1 = invisible seam);
- sharpness: Laplacian energy inside the mask, worst frame over frame 0 (mid-loop ghosting and blur lower it);
- speckle: the largest local excess of high-frequency energy over frame 0 (16 px tiles inside the mask,
  against the most detailed of frame 0's tiles within 3 tiles, so crisp detail that the motion carried in
  from nearby does not count, dotted patterns do;
  in units of the median tile's energy in frame 0): dotted or grainy patterns where a stream is stretched
  thin raise it, although they raise the global sharpness figure too. In a region that is mostly smooth
  (a sky over a ridge) the median tile is nearly flat, and a detailed tile 20 % over its neighbours reads
  as hundreds; so also ``speckle_rel``: the same excess over that nearby most detailed tile's own energy
  (plus the median), 1 where a tile has twice the detail there ever was near it;
- edge tear: mean gradient magnitude of the picture smoothed at 2 px (so moving fine texture does not
  count, a new edge does; per pixel, 0-255 scale) in a thin band around the mask edge, worst
  frame minus frame 0 (a moving region sliding past a still one opens a new edge there);
- sharpness over the loop: each frame's Laplacian energy inside the mask over the photo's (the reference
  image, frame 0 when none is given): the worst frame, and max / min over the loop (a loop whose frame 0
  alone is crisp "pops" into focus at every wrap);
- double image: two semi-transparent copies of the same texture, offset (the forward and backward streams
  averaged while far apart). A picture that holds its detail twice, shifted by d, has a second peak at lag d
  in the autocorrelation of its detail (high-pass) layer, of height a(1-a) / (a^2 + (1-a)^2) for weights a,
  1-a: 0.5 for an even mix. Per 128 px tile inside the mask, the highest autocorrelation at lags 4-56 px
  (beyond a texture's own short-range correlation), minus the photo's own at the same tile (a repetitive
  texture is not a double image); the frame's figure is the mean over tiles, the loop's the worst frame.
- content sharpness (`content_sharpness`, from the photo and the field, not from frames): the Laplacian
  energy each frame would have inside the region if every stream carried the photo's own pixels unchanged,
  over the photo's. Texture that the motion brings into the region is more or less detailed than what it
  takes out (the canal's water is calmer downstream), so a perfect renderer's sharpness over the photo
  varies too; a frame's sharpness over its content sharpness is what the renderer itself loses or adds.
"""

from __future__ import annotations

import numpy as np

from .field import box_blur, gradient_magnitude, laplacian
from .field import luma as _gray


def laplacian_energy(lap: np.ndarray, region: np.ndarray) -> float:
    return float((lap[region] ** 2).mean()) if region.any() else 0.0


def _tile_energy(lap: np.ndarray, region: np.ndarray, tile: int = 16) -> np.ndarray:
    """Mean squared Laplacian per tile (NaN for tiles mostly outside the region)."""
    h, w = lap.shape
    th, tw = h // tile, w // tile
    e = (lap[: th * tile, : tw * tile] ** 2).reshape(th, tile, tw, tile).mean(axis=(1, 3))
    inside = region[: th * tile, : tw * tile].reshape(th, tile, tw, tile).mean(axis=(1, 3)) > 0.9
    return np.where(inside, e, np.nan)


def _max_near(tiles: np.ndarray, r: int) -> np.ndarray:
    """Each tile's value replaced by the largest finite one within r tiles (NaN tiles stay NaN)."""
    filled = np.where(np.isfinite(tiles), tiles, -np.inf)
    out = filled.copy()
    th, tw = tiles.shape
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            ys, xs = slice(max(0, dy), th + min(0, dy)), slice(max(0, dx), tw + min(0, dx))
            yd, xd = slice(max(0, -dy), th + min(0, -dy)), slice(max(0, -dx), tw + min(0, -dx))
            out[yd, xd] = np.maximum(out[yd, xd], filled[ys, xs])
    return np.where(np.isfinite(tiles), out, np.nan)


def edge_band(mask: np.ndarray, width: int = 3) -> np.ndarray:
    """Pixels within about ``width`` px of the mask edge, on either side."""
    soft = box_blur((mask > 0.5).astype(np.float32), max(1, width // 2))
    return (soft > 0.02) & (soft < 0.98)


DOUBLE_TILE = 128
DOUBLE_LAGS = (4, 56)
_HANN = np.outer(np.hanning(DOUBLE_TILE), np.hanning(DOUBLE_TILE)).astype(np.float32)


def _lag_ring(tile: int = DOUBLE_TILE, lags: tuple[int, int] = DOUBLE_LAGS) -> tuple[np.ndarray, np.ndarray]:
    """The lags looked at (FFT order) and, for each, 1 / the window's own overlap there (so a copy shifted
    by a large lag counts as much as one shifted by a small one)."""
    f = np.fft.fftfreq(tile) * tile
    r = np.hypot(f[:, None], f[None, :])
    win = np.fft.ifft2(np.abs(np.fft.fft2(_HANN)) ** 2).real  # the window's autocorrelation
    win /= win[0, 0]
    ring = (r >= lags[0]) & (r <= lags[1]) & (win > 0.2)
    return ring, 1.0 / np.where(ring, win, 1.0)[ring]


_RING, _RING_GAIN = _lag_ring()


def side_peaks(gray: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per 128 px tile mostly inside ``region``: the highest normalised autocorrelation of the detail layer
    at lags 4-56 px (NaN elsewhere). See the module docstring (double image)."""
    t = DOUBLE_TILE
    detail = gray - box_blur(gray, 2)
    h, w = gray.shape
    th, tw = h // t, w // t
    out = np.full((th, tw), np.nan, np.float32)
    if th == 0 or tw == 0:
        return out
    inside = region[: th * t, : tw * t].reshape(th, t, tw, t).mean(axis=(1, 3)) > 0.9
    idx = np.argwhere(inside)
    if idx.size == 0:
        return out
    tiles = np.stack([detail[y * t:(y + 1) * t, x * t:(x + 1) * t] for y, x in idx])
    tiles = (tiles - tiles.mean(axis=(1, 2), keepdims=True)) * _HANN
    spec = np.fft.fft2(tiles)
    ac = np.fft.ifft2(spec * spec.conj()).real
    zero = ac[:, 0, 0]
    peak = (ac[:, _RING] * _RING_GAIN).max(axis=1) / np.where(zero > 1e-12, zero, np.inf)
    out[idx[:, 0], idx[:, 1]] = peak
    return out


class QualityMeter:
    def __init__(self, mask: np.ndarray | None = None, band_px: int = 3, reference: np.ndarray | None = None,
                 interior_px: int = 0):
        """``reference``: the photo the loop was made from (sharpness and double images are measured
        against it); without it, frame 0 stands in for it. ``interior_px``: measure sharpness and double
        images only that far inside the mask edge (about half the loop's travel: content that crosses the
        mask edge changes the region's detail whatever the renderer does)."""
        self.mask = None if mask is None else mask > 0.5
        self.interior = self.mask
        if self.mask is not None and interior_px > 0:
            inner = box_blur(self.mask.astype(np.float32), int(interior_px)) > 0.999
            if inner.sum() >= 0.1 * self.mask.sum():  # else (a thin region) the whole mask
                self.interior = inner
        self.band = None if mask is None else edge_band(mask, band_px)
        self.first = self.prev = None
        self.steps: list[float] = []
        self.sharp: list[float] = []
        self.tear: list[float] = []
        self.holes: list[float] = []
        self.tile_e0 = None
        self.speckle = 0.0
        self.speckle_rel = 0.0
        self.doubles: list[float] = []
        self.still_steps: list[float] = []  # mean |step| outside the mask, 0-255 scale
        self.moving_steps: list[float] = []  # mean |step| inside it
        self.ref_sharp = None
        self.ref_peaks = None
        if reference is not None:
            self._reference(_gray(reference))

    def _reference(self, gray: np.ndarray) -> None:
        region = self.interior if self.interior is not None else np.ones(gray.shape, bool)
        self.ref_sharp = laplacian_energy(laplacian(gray), region)
        self.ref_peaks = side_peaks(gray, region)

    def add(self, rgb: np.ndarray, hole_fraction: float = 0.0) -> None:
        gray = _gray(rgb)
        region = self.mask if self.mask is not None else np.ones(gray.shape, bool)
        if self.ref_sharp is None:
            self._reference(gray)
        lap = laplacian(gray)
        interior = self.interior if self.interior is not None else region
        self.sharp.append(laplacian_energy(lap, interior))
        excess = side_peaks(gray, interior) - self.ref_peaks
        self.doubles.append(float(np.nanmean(np.maximum(excess, 0.0))) if np.isfinite(excess).any() else 0.0)
        tiles = _tile_energy(lap, region)
        if self.tile_e0 is None:
            self.tile_e0 = _max_near(tiles, 3)
            valid = tiles[np.isfinite(tiles)]
            self.tile_floor = float(np.median(valid)) if valid.size else 1.0
        elif self.tile_floor > 0:
            excess = np.nanmax(tiles - self.tile_e0) if np.isfinite(tiles).any() else 0.0
            self.speckle = max(self.speckle, float(excess) / self.tile_floor)
            rel = (tiles - self.tile_e0) / (self.tile_e0 + self.tile_floor)
            self.speckle_rel = max(self.speckle_rel, float(np.nanmax(rel)) if np.isfinite(rel).any() else 0.0)
        if self.band is not None and self.band.any():
            self.tear.append(float(gradient_magnitude(box_blur(gray, 1))[self.band].mean()) * 255.0)
        self.holes.append(hole_fraction)
        if self.prev is not None:
            whole, still, moving = self._step(rgb, self.prev)
            self.steps.append(whole)
            if still is not None:
                self.still_steps.append(still)
            if moving is not None:
                self.moving_steps.append(moving)
        else:
            self.first = rgb.copy()
        self.prev = rgb.copy()

    def _step(self, rgb: np.ndarray, prev: np.ndarray):
        """Mean |step| over the whole frame (0-1), outside the mask and inside it (0-255; None without)."""
        diff = np.abs(rgb - prev).mean(axis=2)
        still = moving = None
        if self.mask is not None:
            if (~self.mask).any():
                still = float(diff[~self.mask].mean()) * 255.0
            if self.mask.any():
                moving = float(diff[self.mask].mean()) * 255.0
        return float(diff.mean()), still, moving

    def result(self) -> dict:
        seam, wrap_still, wrap_moving = self._step(self.first, self.prev)  # the wrap: frame N-1 -> frame 0
        still_steps = self.still_steps + ([wrap_still] if wrap_still is not None else [])
        moving_steps = self.moving_steps + ([wrap_moving] if wrap_moving is not None else [])
        median_step = float(np.median(self.steps)) if self.steps else 0.0
        s0 = self.sharp[0] if self.sharp and self.sharp[0] > 0 else 1.0
        ref = self.ref_sharp if self.ref_sharp else s0
        rel = [s / ref for s in self.sharp] if ref > 0 else [1.0 for _ in self.sharp]
        return {
            "sharpness_worst": min(rel) if rel else 1.0,
            "sharpness_spread": (max(rel) / min(rel)) if rel and min(rel) > 0 else 1.0,
            "sharpness": rel,
            "double_image": max(self.doubles) if self.doubles else 0.0,
            "double_image_mean": float(np.mean(self.doubles)) if self.doubles else 0.0,
            "double_per_frame": list(self.doubles),
            "steps": list(self.steps) + [seam],
            # every step, the wrap (last) included: outside the mask (0-255), inside over its median
            "still_step_max": max(still_steps) if still_steps else 0.0,
            "moving_step_ratio": (max(moving_steps) / float(np.median(moving_steps))
                                  if moving_steps and np.median(moving_steps) > 0 else 0.0),
            "still_steps": still_steps,
            "moving_steps": moving_steps,
            "frames": len(self.sharp),
            "hole_fraction_max": max(self.holes) if self.holes else 0.0,
            "hole_fraction_mean": float(np.mean(self.holes)) if self.holes else 0.0,
            "seam": seam,
            "median_step": median_step,
            "seam_ratio": seam / median_step if median_step > 0 else 0.0,
            "sharpness_min": min(self.sharp) / s0 if self.sharp else 1.0,
            "worst_sharp_frame": int(np.argmin(self.sharp)) if self.sharp else 0,
            "edge_tear": (max(self.tear) - self.tear[0]) if self.tear else 0.0,
            "speckle": self.speckle,
            "speckle_rel": self.speckle_rel,
        }


def loop_quality(frames, mask: np.ndarray | None = None, reference: np.ndarray | None = None,
                 interior_px: int = 0) -> dict:
    """Quality of a loop from an iterable of ``core.render.Frame`` (or RGB arrays)."""
    meter = QualityMeter(mask, reference=reference, interior_px=interior_px)
    for fr in frames:
        if hasattr(fr, "rgb"):
            meter.add(fr.rgb, fr.hole_fraction)
        else:
            meter.add(fr)
    return meter.result()


def content_sharpness(photo: np.ndarray, motion: np.ndarray, settings, region: np.ndarray, engine=None
                      ) -> np.ndarray:
    """Per frame t = 0 .. N-1 of the loop ``settings`` (core.job.LoopSpec) renders from ``photo`` and
    ``motion`` (px/frame, before the loop's speed): the mean squared Laplacian inside ``region`` of a
    picture whose pixel x shows, in the forward stream, the photo's pixel where x came from (x + B_t(x), B_t
    = t Euler steps of -M: the inverse of the forward stream's displacement) and, in the backward stream,
    the photo at x + F_{N-t}(x), mixed with the renderer's stream weights (`core.render.crossover_centre`,
    `crossfade`; 1 - t/N for the splat renderer), over the photo's own mean inside ``region``. Pixels a
    stream has carried off the picture count for the other stream alone."""
    from .engines import get_engine
    from .integrate import BackwardFields
    from .render import crossfade, crossover_centre

    engine = engine or get_engine("cpu")
    n = settings.frames
    m = np.ascontiguousarray(motion, np.float32) * np.float32(settings.speed)
    h, w = region.shape
    energy = laplacian(_gray(photo)) ** 2
    ref = float(energy[region].mean()) if region.any() else 0.0
    out = np.ones(n)
    if ref <= 0 or not np.any(m):
        return out
    sharp = settings.renderer == "sharp"
    centre = crossover_centre(m, settings) if sharp else 0.5
    ys, xs = np.nonzero(region)

    def source_energy(flow) -> tuple[np.ndarray, np.ndarray]:
        f = engine.to_numpy(flow)[ys, xs]
        sx, sy = np.rint(xs + f[:, 0]), np.rint(ys + f[:, 1])
        ok = np.isfinite(sx) & np.isfinite(sy) & (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
        e = np.zeros(xs.size)
        e[ok] = energy[sy[ok].astype(np.int64), sx[ok].astype(np.int64)]
        return e, ok.astype(np.float64)

    back = engine.zeros((h, w, 2))
    minus = engine.asarray(-m)
    ahead = BackwardFields(engine, engine.asarray(m), n)
    for t in range(1, n):
        back = engine.step(minus, back)
        a = crossfade(t, n, centre, settings.crossfade) if sharp else np.float32(1.0 - t / n)
        a = np.broadcast_to(np.asarray(a, np.float64), (h, w))[ys, xs]
        ef, okf = source_energy(back)
        eb, okb = source_energy(ahead.get(n - t))
        wf, wb = a * okf, (1.0 - a) * okb
        tot = wf + wb
        use = tot > 0
        out[t] = float(((wf * ef + wb * eb)[use] / tot[use]).mean() / ref) if use.any() else 1.0
    return out
