"""Symmetric softmax splatting of a still image along Euler-integrated motion: a seamless loop of frames.

Frame t of an N-frame loop (alpha_t = 1 - t/N):

    out_t = [alpha_t * splat(I, F(0->t)) + (1 - alpha_t) * splat(I, F(0->t-N))] / [same with D = 1]

with both streams inside one normalisation, softmax weights exp(Z), Z from motion magnitude. Frame 0 is the
input, and frame N (= frame 0) is one ordinary step after frame N-1, so the loop has no seam.
Frames come out of a generator, one at a time: no caller holds the whole loop in memory.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .engines import get_engine
from .engines.reference import SharpReference, block_mean
from .errors import InputError
from .field import box_blur, resize_bilinear, validate_field
from .integrate import BackwardFields
from .job import LoopSpec
from .regions import grow, label

log = logging.getLogger(__name__)


@dataclass
class Frame:
    index: int
    rgb: np.ndarray  # float32 (H, W, 3), sRGB-encoded values in [0, 1], row 0 top
    hole_fraction: float


def softmax_weight(motion: np.ndarray, z: str = "magnitude", gain: float = 1.0) -> np.ndarray:
    """exp(Z - max Z), Z clamped to [-20, 20] after the shift."""
    if z == "none":
        return np.ones(motion.shape[:2], np.float32)
    mag = np.sqrt((motion.astype(np.float32) ** 2).sum(axis=2))
    zz = gain * (mag if z == "magnitude" else -mag)
    zz = np.clip(zz - zz.max(), -20.0, 20.0)
    return np.exp(zz).astype(np.float32)


def frame_to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def loop_travel(motion: np.ndarray, settings: LoopSpec) -> float:
    """Distance (px) that the fast pixels (99th percentile speed) travel over one loop."""
    mag = np.sqrt((motion.astype(np.float32) ** 2).sum(axis=2)) * settings.speed
    moving = mag[mag > 1e-3]
    if moving.size == 0:
        return 0.0
    return float(np.percentile(moving, 99)) * settings.frames


def loop_warnings(motion: np.ndarray, settings: LoopSpec) -> list[str]:
    """Advice when speed x frames would ghost: mid-loop, the two streams show texture this far apart."""
    h, w = motion.shape[:2]
    limit = settings.max_travel * math.hypot(h, w)
    travel = loop_travel(motion, settings)
    out = []
    if travel > limit:
        per_frame = travel / settings.frames
        frames = max(2, int(limit / max(per_frame, 1e-6)))
        speed = settings.speed * limit / travel
        out.append(
            f"fast pixels travel {travel:.0f} px over the {settings.frames}-frame loop (more than {limit:.0f} px "
            f"ghosts mid-loop): use about {frames} frames, or speed {speed:.2f}"
        )
    return out


def fill_holes(rgb: np.ndarray, holes: np.ndarray, fallback: np.ndarray, tile: int = 64, blur=None) -> None:
    """Fill hole pixels in place from a normalised blur of their valid neighbours.

    Radii grow (2, 6, 18 px) until every hole has valid neighbours; the rest falls back to the input image.
    Each radius works tile by tile, only on the tiles that still hold unfilled holes, each with a margin of
    the blur's reach (three box passes: 3 radius + 2), so a frame with a few holes costs a few small blurs,
    and the usual case (cracks the first radius fills) small ones. ``blur(arr (H, W, C), radius)``:
    core.field.box_blur unless an engine gives its own (the compiled one: long loops have holes in most
    tiles mid-loop, and numpy's blurs with the widest margin for every radius took half of a 120-frame
    loop's time).
    """
    if not holes.any():
        return
    if blur is None:
        from .field import box_blur as blur

    h, w = holes.shape
    nty, ntx = -(-h // tile), -(-w // tile)
    todo = np.zeros((nty * tile, ntx * tile), bool)
    todo[:h, :w] = holes
    for radius in (2, 6, 18):
        pad = 3 * radius + 2
        for by, bx in np.argwhere(todo.reshape(nty, tile, ntx, tile).any(axis=(1, 3))):
            y0, y1 = by * tile, min(h, (by + 1) * tile)
            x0, x1 = bx * tile, min(w, (bx + 1) * tile)
            py0, py1, px0, px1 = max(0, y0 - pad), min(h, y1 + pad), max(0, x0 - pad), min(w, x1 + pad)
            hole = holes[py0:py1, px0:px1]
            # The colour (zero in every original hole, filled or not) and the valid mask, blurred together.
            stack = np.empty(hole.shape + (rgb.shape[2] + 1,), np.float32)
            stack[..., :-1] = np.where(hole[..., None], 0.0, rgb[py0:py1, px0:px1])
            stack[..., -1] = ~hole
            blurred = blur(stack, radius)[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]
            den = blurred[..., -1]
            want = todo[y0:y1, x0:x1]
            ok = want & (den > 1e-3)
            if ok.any():
                rgb[y0:y1, x0:x1][ok] = blurred[..., :-1][ok] / den[ok][:, None]
                want &= ~ok
        if not todo.any():
            return
    left = todo[:h, :w]
    rgb[left] = fallback[left]


def symmetric_splat(engine, acc, src, weight, fwd_flow, bwd_flow, alpha: float) -> None:
    """acc = alpha * splat(src, fwd_flow) + (1 - alpha) * splat(src, bwd_flow), one normalisation later."""
    acc[...] = 0.0
    if alpha > 0.0:
        engine.accumulate(acc, src, fwd_flow, weight, alpha)
    if alpha < 1.0:
        engine.accumulate(acc, src, bwd_flow, weight, 1.0 - alpha)


def render_loop(
    image: np.ndarray, motion: np.ndarray, settings: LoopSpec | None = None, device: str = "auto"
) -> Iterator[Frame]:
    """Yield the N frames of the loop, frame 0 (the input) first, splatted on ``device``'s engine."""
    settings = settings or LoopSpec()
    settings.validate()
    img = np.ascontiguousarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"image must have shape (height, width, 3), got {img.shape}")
    if not np.all(np.isfinite(img)):
        raise InputError("image contains NaN or infinite values")
    motion = validate_field(motion, img.shape[:2]) * np.float32(settings.speed)
    n = settings.frames
    h, w = img.shape[:2]
    engine = get_engine(device)
    log.info("rendering %d frames at %dx%d on %s", n, w, h, engine.name)

    yield Frame(0, img.copy(), 0.0)
    if not np.any(motion):
        for t in range(1, n):
            yield Frame(t, img.copy(), 0.0)
        return

    boxes = moving_boxes(motion)
    if boxes is None:
        yield from _render_moving(engine, img, motion, settings)
        return
    # the rest of the picture is the photo in every frame
    log.info("the motion lies in %d box(es), %.0f%% of the picture: only they are rendered", len(boxes),
             100.0 * sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes) / (h * w))
    whole = _sharp_whole(engine, img, motion, settings) if settings.renderer == "sharp" else None  # once
    parts = [_render_moving(engine, img, motion, settings, box, whole) for box in boxes]
    for frames in zip(*parts, strict=True):
        rgb = img.copy()
        holes = 0.0
        for (y0, y1, x0, x1), f in zip(boxes, frames, strict=True):
            rgb[y0:y1, x0:x1] = f.rgb
            holes += f.hole_fraction * (y1 - y0) * (x1 - x0)
        yield Frame(frames[0].index, rgb, holes / float(h * w))


CROP_MARGIN = 32  # px kept around the motion: particles stop within 2 px of it, the kernels reach 5 px further
TAKE_OVER_PX = 16  # px at 960 px (scaled with the picture): how far before a stream's end the other takes over
# (24 doubled a little more of the aerial surf, 0.128 -> 0.134; 4, 3 px at 640 px, no longer hid the line)
CROP_GAIN = 0.8  # boxes only when together they are at most this share of the picture
CROP_CELL = 16  # px: the grid the moving parts are found on


def moving_boxes(motion: np.ndarray, margin: int = CROP_MARGIN) -> list[tuple[int, int, int, int]] | None:
    """Boxes (y0, y1, x0, x1) that hold every pixel ``motion`` moves with ``margin`` px around it, one per
    moving part (parts closer than twice the margin share one; boxes that overlap are merged), or None when
    together they are most of the picture. Outside them every frame is the photo: a particle moves only
    where the field is not zero, so it stops within a pixel or two of that region (the field is sampled
    bilinearly), and no splat, blend or detail window of the renderers reaches more than a few pixels
    beyond where particles go. So each box is rendered alone, as if it were the picture."""
    h, w = motion.shape[:2]
    c = CROP_CELL
    gh, gw = -(-h // c), -(-w // c)
    moving = np.zeros((gh * c, gw * c), bool)
    moving[:h, :w] = (motion[..., 0] != 0) | (motion[..., 1] != 0)
    cells = moving.reshape(gh, c, gw, c).any(axis=(1, 3))
    labels, n = label(grow(cells, -(-margin // c)))
    boxes = []
    for k in range(1, n + 1):
        rows, cols = np.nonzero((labels == k) & cells)
        if rows.size:
            boxes.append((max(0, rows.min() * c - margin), min(h, (rows.max() + 1) * c + margin),
                          max(0, cols.min() * c - margin), min(w, (cols.max() + 1) * c + margin)))
    merged: list[tuple[int, int, int, int]] = []  # pairwise disjoint
    for box in boxes:
        while (j := next((j for j, b in enumerate(merged) if _overlap(box, b)), None)) is not None:
            b = merged.pop(j)  # an overlapping box becomes part of this one
            box = (min(box[0], b[0]), max(box[1], b[1]), min(box[2], b[2]), max(box[3], b[3]))
        merged.append(box)
    boxes = merged
    if sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes) > CROP_GAIN * h * w:
        return None
    return [tuple(int(v) for v in b) for b in boxes]


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def _render_moving(engine, img: np.ndarray, motion: np.ndarray, settings: LoopSpec,
                   box: tuple[int, int, int, int] | None = None, whole=None) -> Iterator[Frame]:
    """Frames 1 .. N-1 of ``settings.renderer``, of the picture or of its ``box`` (y0, y1, x0, x1) alone.
    ``whole``: the sharp renderer's (crossing moments, source) of the whole picture, when the caller has them."""
    n = settings.frames
    if settings.renderer == "sharp":
        yield from _render_sharp(engine, img, motion, settings, box, whole)
        return
    if box is not None:
        img, motion = _crop(img, box), _crop(motion, box)
    h, w = img.shape[:2]
    src = engine.asarray(img)
    weight = engine.asarray(softmax_weight(motion, settings.z, settings.z_gain))
    m_fwd = engine.asarray(motion)
    backward = BackwardFields(engine, engine.asarray(-motion), n)
    flow = engine.zeros((h, w, 2))
    coverage = settings.blend == "coverage"
    acc = engine.zeros((h, w, 5 if coverage else 4))  # accumulators reused for every frame
    acc_b = engine.zeros((h, w, 5)) if coverage else None
    started = time.perf_counter()
    for t in range(1, n):
        flow = engine.step(m_fwd, flow)
        rgb, n_holes = splat_frame(engine, img, src, weight, flow, backward.get(n - t), 1.0 - t / n, (acc, acc_b),
                                   settings.fill_holes)
        yield Frame(t, rgb, n_holes / float(h * w))
    log.info("rendered %d frames in %.2f s", n, time.perf_counter() - started)


def splat_frame(engine, img: np.ndarray, src, weight, fwd, bwd, alpha: float, accs, fill: bool = True
                ) -> tuple[np.ndarray, int]:
    """One frame of the splat renderer: the photo splatted along ``fwd`` and ``bwd``, weighed ``alpha`` and
    1 - alpha; (rgb, the number of holes). ``accs``: two (H, W, 5) accumulators for the coverage blend, or
    one (H, W, 4) and None for the linear one; overwritten. Holes are filled from their neighbours
    (``fill``) or take the photo's pixel."""
    acc, acc_b = accs
    if acc_b is not None:
        acc[...] = 0.0
        acc_b[...] = 0.0
        engine.accumulate(acc, src, fwd, weight, 1.0)
        engine.accumulate(acc_b, src, bwd, weight, 1.0)
        rgb, holes = engine.blend(acc, acc_b, alpha)
    else:
        symmetric_splat(engine, acc, src, weight, fwd, bwd, alpha)
        rgb, holes = engine.normalise(acc)
    n_holes = int(holes.sum())
    if n_holes:
        if fill:
            fill_holes(rgb, holes, img, blur=engine.box_blur)
        else:
            rgb[holes] = img[holes]
    return rgb, n_holes


def phase_map(shape: tuple[int, int], seed: int = 0, cells: int = 3, region: np.ndarray | None = None,
              blur=None) -> np.ndarray:
    """A smooth random field (H, W) with values spread evenly over [0, 1] (by rank), features about a
    third of the short side: where in the loop each region crosses from one stream to the other.
    With ``region`` (bool (H, W): the pixels that move) the values are spread evenly over that region's own
    pixels, so a canal or a plume that covers a small part of the picture crosses over at moments spread
    through the loop too, not at the few its part of the picture happened to get (measured over the 8 photos
    of `benchmark.py --quality-real`: the worst frame's detail 0.84 -> 0.895 of the photo's on the steam
    photo and its max/min over the loop 1.36 -> 1.15; the issue's table has the rest). ``blur``: an engine's
    box blur of (H, W, C) (core.field.box_blur's, compiled), else core.field's."""
    from .field import even_spread

    h, w = shape
    rng = np.random.default_rng(seed)
    gh = max(2, round(cells * h / min(h, w)) + 1)
    gw = max(2, round(cells * w / min(h, w)) + 1)
    u = resize_bilinear(rng.random((gh, gw)).astype(np.float32), (h, w))
    radius = max(1, min(h, w) // (4 * cells))
    u = blur(u[..., None], radius)[..., 0] if blur is not None else box_blur(u, radius)
    # every pixel takes its rank among the region's values
    return even_spread(u, region if region is not None and region.any() else None)


def crossfade(t: int, n: int, centre: np.ndarray | float, width: float) -> np.ndarray | float:
    """Weight of the forward stream at frame t: 1 until the pixel's crossing starts, then a linear ramp
    over ``width`` of the loop centred on ``centre`` (fractions of the loop), 0 after. width 1, centre 0.5:
    the paper's 1 - t/N. Always 1 at t = 0 and 0 at t = N (snapped there against rounding), so the loop
    closes exactly."""
    c = np.asarray(centre, np.float32)
    a = (c - np.float32(t / n)) / np.float32(width) + np.float32(0.5)
    if c.ndim == 0:
        a = min(1.0, max(0.0, float(a)))
        return np.float32(0.0 if a < 1e-6 else 1.0 if a > 1.0 - 1e-6 else a)
    np.clip(a, 0.0, 1.0, out=a)  # float32, in place: a quarter of the float64 version's time
    a[a < 1e-6] = 0.0
    a[a > 1.0 - 1e-6] = 1.0
    return a


def crossover_centre(motion: np.ndarray, settings: LoopSpec, blur=None) -> np.ndarray | float:
    """Where in the loop (a fraction) each pixel of the sharp renderer crosses from the forward stream to
    the backward one, for ``crossfade(t, n, centre, settings.crossfade)``: 0.5 everywhere without a phase
    spread, else spread over the moving pixels by `phase_map`. ``motion``: the field as the loop moves it."""
    spread = min(settings.phase_spread, 1.0 - settings.crossfade)
    if spread <= 0:
        return 0.5
    moving = np.hypot(motion[..., 0], motion[..., 1]) > 1e-3
    return 0.5 + spread * (phase_map(motion.shape[:2], region=moving, blur=blur) - 0.5)


def _sharp_whole(engine, img: np.ndarray, motion: np.ndarray, settings: LoopSpec):
    """The sharp renderer's parts that belong to the whole picture: (the crossing moments, the source)."""
    return crossover_centre(motion, settings, blur=engine.box_blur), engine.sharp_source(img)


def _crop(a: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    y0, y1, x0, x1 = box
    return np.ascontiguousarray(a[y0:y1, x0:x1])


def _render_sharp(engine, img: np.ndarray, motion: np.ndarray, settings: LoopSpec,
                  box: tuple[int, int, int, int] | None = None, whole=None) -> Iterator[Frame]:
    """Frames 1 .. N-1 of the detail-keeping renderer (see core/engines/reference.py, "sharp" path): each
    stream splats its source coordinates, the photo is resampled once at them (its smooth base bilinearly,
    its finest detail from whole pixels), and the two streams are blended with their detail kept, each
    region crossing over at its own moment."""
    n = settings.frames
    picture = max(img.shape[:2])  # what the windows scale with, and the crossings' pattern: the whole picture's
    # of the whole picture, then cut to the box: its crossings, blur and dither as the whole picture has them
    centre, source = whole if whole is not None else _sharp_whole(engine, img, motion, settings)
    full = img.shape[:2]
    # the picture's edges, which content leaves: as far in as the fastest pixel on them travels over the loop
    edge_speed = max(float(np.hypot(e[..., 0], e[..., 1]).max())
                     for e in (motion[0], motion[-1], motion[:, 0], motion[:, -1]))
    if box is not None:
        img, motion = _crop(img, box), _crop(motion, box)
        source = tuple(_crop(a, box) for a in source)
        if np.ndim(centre):
            centre = _crop(centre, box)
    h, w = img.shape[:2]
    weight = engine.asarray(softmax_weight(motion, settings.z, settings.z_gain))
    m_fwd = engine.asarray(motion)
    backward = BackwardFields(engine, engine.asarray(-motion), n)
    flow = engine.zeros((h, w, 2))
    acc_f, acc_b = engine.zeros((h, w, 4)), engine.zeros((h, w, 4))
    width = settings.crossfade
    match = DetailMatch(img, motion, engine=engine, picture=picture)
    hand = max(1, round(TAKE_OVER_PX * picture / 960))
    strips = border_strips((h, w), box, full, edge_speed * n, hand) if edge_speed > 1e-3 else []
    border = (strips, hand) if strips else None
    started = time.perf_counter()
    for t in range(1, n):
        flow = engine.step(m_fwd, flow)
        alpha = crossfade(t, n, centre, width)
        rgb, n_holes = sharp_frame(engine, img, source, weight, flow, backward.get(n - t), alpha, (acc_f, acc_b),
                                   border)
        yield Frame(t, match(rgb), n_holes / float(h * w))
    log.info("rendered %d frames in %.2f s", n, time.perf_counter() - started)


def border_strips(shape: tuple[int, int], box: tuple[int, int, int, int] | None, picture: tuple[int, int],
                  reach: float, fade: float) -> list[tuple[slice, slice, str, np.ndarray]]:
    """Where ``sharp_frame`` hands a stream's moment over to the other: strips (rows, columns, the edge's
    side, ramp) of the part rendered (``shape``, at ``box`` in the picture, None: the whole picture) along
    the picture's own edges, the ramp 1 within ``reach`` px of them and falling to 0 over ``fade`` px
    further in. The top and bottom strips run the whole width, the side strips between them; a box side
    that is not a picture edge has none."""
    h, w = shape
    y0, _, x0, _ = box if box is not None else (0, h, 0, w)
    band = int(np.ceil(reach + fade))
    ys, xs = np.arange(y0, y0 + h, dtype=np.float32), np.arange(x0, x0 + w, dtype=np.float32)
    dy = np.minimum(ys, picture[0] - 1 - ys)
    dx = np.minimum(xs, picture[1] - 1 - xs)
    strips = []
    for sel in _runs(dy < band):
        side = "top" if ys[sel.start] < picture[0] / 2 else "bottom"
        strips.append((sel, slice(0, w), side, dy[sel][:, None] + np.zeros((1, w), np.float32)))
    rows = _runs(dy >= band)
    for sel in _runs(dx < band):
        side = "left" if xs[sel.start] < picture[1] / 2 else "right"
        strips.extend((r, sel, side, np.zeros((r.stop - r.start, 1), np.float32) + dx[sel][None, :]) for r in rows)
    ramped = []
    for r, c, side, d in strips:
        ramp = np.clip((np.float32(reach + fade) - d) / np.float32(max(fade, 1.0)), 0.0, 1.0).astype(np.float32)
        if ramp.any():
            ramped.append((r, c, side, ramp))
    return ramped


def _runs(flags: np.ndarray) -> list[slice]:
    """The slices of the runs of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.astype(np.int8), [0]))))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _lack(share: np.ndarray, side: str, reach: int) -> np.ndarray:
    """How much a stream lacks near each pixel of a border strip, in [0, 1]: 1 from the first pixel, going
    toward the strip's picture edge (``side``), where the stream's share is under a half, falling to 0
    ``reach`` px before it (at most four times as far as the lacking band is wide there), so that the
    other stream takes over gradually, not along the 3 px of the stream's end. Numpy running minima along
    the strip: no blur."""
    lacking = share < 0.5
    if not lacking.any():
        return np.zeros(share.shape, np.float32)
    axis = 1 if side in ("left", "right") else 0
    n = share.shape[axis]
    idx = np.arange(n, dtype=np.float32).reshape((1, n) if axis == 1 else (n, 1))
    if side in ("right", "bottom"):  # the nearest lacking pixel at or beyond, toward the far end
        pos = np.where(lacking, idx, np.float32(np.inf))
        nearest = np.flip(np.minimum.accumulate(np.flip(pos, axis), axis=axis), axis)
        dist = nearest - idx
    else:
        pos = np.where(lacking, idx, -np.float32(np.inf))
        dist = idx - np.maximum.accumulate(pos, axis=axis)
    # the ramp no longer than four times the lacking band: near the wrap, where a stream lacks a pixel
    # or two, it hands over as little, and frame N - 1 stays one step from the photo
    span = np.clip(4.0 * lacking.sum(axis=axis, keepdims=True), 1.0, max(reach, 1)).astype(np.float32)
    return np.clip(1.0 - dist / span, 0.0, 1.0).astype(np.float32)


def _hand_over(alpha, sf: np.ndarray, sb: np.ndarray, strips, reach: int):
    """The forward stream's weight ``alpha`` (a number or (H, W)) moved toward the stream that has content,
    in the border strips, as far as the other lacks it there (``_lack``); ``alpha`` itself where neither
    lacks anything (most frames' strips along edges that nothing leaves)."""
    h, w = sf.shape
    out = None
    for rows, cols, side, ramp in strips:
        f, b = sf[rows, cols], sb[rows, cols]
        if f.min() >= 0.5 and b.min() >= 0.5:
            continue
        if out is None:
            out = np.full((h, w), alpha, np.float32) if np.ndim(alpha) == 0 else np.array(alpha, np.float32)
        a = out[rows, cols]
        out[rows, cols] = np.clip(a + ramp * ((1.0 - a) * _lack(b, side, reach) - a * _lack(f, side, reach)),
                                  0.0, 1.0)
    return alpha if out is None else out


def sharp_frame(engine, img: np.ndarray, source, weight, fwd, bwd, alpha, accs, border=None,
                ) -> tuple[np.ndarray, int]:
    """One frame of the sharp renderer from its forward and backward fields and the forward stream's
    weight ``alpha`` (a number or (H, W)): (rgb, the number of holes filled). ``accs``: two (H, W, 4)
    accumulators, overwritten. ``border``: (``border_strips``, the reach of ``_lack``), where each stream
    takes over the other's weight as far as the other has nothing: at the picture's edges, which the
    content of a stream has left (a cloud drifting right leaves the backward stream nothing to bring in at
    the right edge), a pixel whose moment belongs to that stream had both weights 0, an even mix of the
    other stream and the unmoved photo, cut off along a line from its neighbours."""
    h, w = img.shape[:2]
    acc_f, acc_b = accs
    acc_f[...] = 0.0
    acc_b[...] = 0.0
    engine.accumulate_coords(acc_f, fwd, weight)
    engine.accumulate_coords(acc_b, bwd, weight)
    still = np.ones((h, w), bool)  # pixels neither stream moves
    (a_img, sf), (b_img, sb) = (engine.sharp_stream(acc, source, still) for acc in (acc_f, acc_b))
    if border:  # each stream hands its moment over to the other where the other has nothing
        alpha = _hand_over(alpha, sf, sb, border[0], border[1])
    wa = np.asarray(alpha * sf, np.float32)
    wb = np.asarray((1.0 - alpha) * sb, np.float32)
    # where nothing reached a pixel but itself (still): the photo, exactly; all clipped to [0, 1]
    rgb = engine.blend_detail(a_img, b_img, wa, wb, still, img)
    holes = (sf <= 0) & (sb <= 0)  # neither stream near: filled from the neighbours, as in "splat"
    n_holes = int(holes.sum())
    if n_holes:
        fill_holes(rgb, holes, img, blur=engine.box_blur)
        np.clip(rgb, 0.0, 1.0, out=rgb)
    return rgb, n_holes


DETAIL_RADIUS = 24  # px at 960 px (scaled with the picture): the window's box radius (three passes)
DETAIL_GAIN = (0.67, 1.5)  # the most a frame's finest detail is softened or amplified


class DetailMatch:
    """A frame's finest detail scaled, where the loop moves, so that its local energy (the squared
    Laplacian of luma, averaged over ``DETAIL_RADIUS``) is the photo's at the same place.

    The Eulerian premise is that what is seen at a fixed place does not change over the loop: foam stays
    foam, a cloud's edge stays as crisp. The streams break it twice: resampling softens the finest detail,
    and a field that speeds up or slows down stretches or squeezes the texture it carries (on synthetic
    noise one stream alone kept 0.77 of its detail where the speed grows down the picture). Matched to the
    photo's, the detail no longer pulses over the loop (`benchmark.py --quality-real`, issue 11). The gain
    is smooth (a window of some 50 px across at 960 px, ``DETAIL_RADIUS``: smaller ones, 8 px, took
    sparse moving specks for lost detail and softened them), held within ``DETAIL_GAIN``, and applied to
    the 3x3 high-pass of the frame's luma (its colours are kept): where nothing moves, the frame (the
    photo) is left exactly as it is. Its two full-size passes are the engine's (``detail_blocks``,
    ``detail_apply``: compiled kernels on the CPU engine, 21 ms a 1080p frame on 2 cores against 60 ms in
    numpy; the energies are smoothed over blocks, not at full size)."""

    def __init__(self, photo: np.ndarray, motion: np.ndarray, engine=None, picture: int | None = None):
        self.engine = engine if engine is not None else SharpReference()
        h, w = motion.shape[:2]
        # 0 where the field is 0 (the renderer leaves the photo there), 1 from 0.05 px/frame on
        self.where = np.clip(np.hypot(motion[..., 0], motion[..., 1]) / np.float32(0.05), 0.0, 1.0)
        self.where = np.ascontiguousarray(self.where, dtype=np.float32)
        radius = max(4, round(DETAIL_RADIUS * (picture or max(h, w)) / 960))  # picture: the long side it is of
        # the energies are smooth: averaged over k x k blocks first, then blurred (radius / k, at least 6)
        self.k = max(1, radius // 6)
        self.radius = max(1, round(radius / self.k))
        self.norm = np.maximum(self._blur(block_mean(self.where, self.k)), np.float32(1e-6))
        self.photo_energy = self._energy(photo)

    def _blur(self, blocks: np.ndarray) -> np.ndarray:
        return self.engine.box_blur(np.ascontiguousarray(blocks[..., None], dtype=np.float32), self.radius)[..., 0]

    def _energy(self, rgb: np.ndarray) -> np.ndarray:
        """The local mean of the squared Laplacian over the moving pixels alone (a thin plume's detail is
        not averaged with the still street around it), at the block size."""
        return self._blur(self.engine.detail_blocks(rgb, self.where, self.k)) / self.norm

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` (H, W, 3) float32 in [0, 1], C-contiguous, with its detail matched, in place; returned."""
        eps = np.float32(1e-7)
        gain = np.sqrt((self.photo_energy + eps) / (np.maximum(self._energy(rgb), 0.0) + eps))
        np.clip(gain, *DETAIL_GAIN, out=gain)
        gain -= np.float32(1.0)
        self.engine.detail_apply(rgb, np.ascontiguousarray(gain, dtype=np.float32), self.where, self.k)
        return rgb
