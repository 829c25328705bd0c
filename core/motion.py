"""The motion field for a photo: from the network, from the hint arrows, or both; then masked and frozen.

This is the one entry point the command line and the Blender operators call to get M.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from . import field as field_mod
from .errors import InputError, StillflowError
from .field import check_finite, shape_motion, smoothstep
from .hints import Hints, dense_from_arrows, freeze_from_hints, mask_from_hints
from .job import PREDICTED_SOURCES

log = logging.getLogger(__name__)

SOURCES = PREDICTED_SOURCES


@dataclass
class MotionResult:
    field: np.ndarray  # float32 (H, W, 2) px/frame, row 0 top, +dy down
    source_used: str  # "model", "model+hints" or "hints"
    provider: str = ""  # ONNX Runtime provider when the model ran
    notes: list[str] = field(default_factory=list)


SHARPEN = 4.0  # honour_arrows: the power of each arrow's Gaussian weight in its share of the correction
FLAT_NEAR = 0.5  # flatten_near: full within this many sigma of an arrow, none beyond twice that
FLAT_KEEP = 0.6  # flatten_near: a pixel slower than this share of the local mean speed keeps its share
REST_SPEED = 1 / 60  # px/frame at the picture's 960 px size: slower is the network's drift, not motion


def settle(field: np.ndarray, rest: float = REST_SPEED) -> np.ndarray:
    """The network's field without its faint drift: speeds below ``rest`` (px/frame at the picture's 960 px
    size, scaled to its own) become 0, ramping (smoothstep) back to the full speed at 2 x rest.

    On the real evaluation photos (models/realset) the network moves 94% of the truly still pixels, nearly
    all of them slower than 1/60 px/frame: over a 60-frame loop they slide a fraction of a pixel each way,
    so the renderer resamples them and their finest detail steps a pixel at some frame. Exactly still,
    they are the photo itself in every frame. Of the truly moving pixels the 36% it zeroes travelled at
    most half a pixel from their place."""
    h, w = field.shape[:2]
    lo = rest * max(h, w) / 960.0
    speed = np.hypot(field[..., 0], field[..., 1])
    gain = smoothstep(np.clip(speed / lo - 1.0, 0.0, 1.0))
    return (field * gain[..., None]).astype(np.float32)


FLAT_BORDER = 4 / 255  # a row or column at the picture's edge whose values spread less than this is a border
BORDER_MAX = 0.2  # of the picture's size: at most this much of it is taken for a border on each side
BORDER_GROW = 1 / 240  # of the long side (4 px at 960): the ramp from a border into the picture stays still too


def flat_borders(image: np.ndarray, ramp_px: float = 12.0) -> tuple[np.ndarray | None, str | None]:
    """(float32 (H, W) multiplier: 0 on a flat border of the photo, rising to 1 over ``ramp_px`` beyond it
    (smoothstep), and a note), or (None, None) when it has none. A letterbox or a frame grab's black edge
    (the canal of models/realset: 43 black columns and 4 rows) is no part of the scene: moved with the
    water beside it, it was carried into the picture as a black bar. Left still, it is the picture's edge:
    the loop brings no content in from it, as from beyond the frame. The ramp is a feather: stopped at once,
    what flows toward the border piled up against it (the canal's frames rose to 1.10 of the photo's
    detail there)."""
    h, w = image.shape[:2]

    def run(lines: np.ndarray, limit: int) -> int:
        """How many of the first ``limit`` lines are flat, read 8 at a time (most photos stop at the first)."""
        n = 0
        while n < limit:
            spread = lines[n:min(limit, n + 8)].std(axis=1).max(axis=-1)  # per line, its channels' largest
            flat = spread < FLAT_BORDER
            if not flat.all():
                return n + int(flat.argmin())
            n += flat.size
        return limit

    top, bottom = run(image, int(BORDER_MAX * h)), run(image[::-1], int(BORDER_MAX * h))
    cols = image.transpose(1, 0, 2)
    left, right = run(cols, int(BORDER_MAX * w)), run(cols[::-1], int(BORDER_MAX * w))
    if not (top or bottom or left or right):
        return None, None
    g = max(2, round(BORDER_GROW * max(h, w)))
    ramp = max(1.0, float(ramp_px))
    ys, xs = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    dist_y = np.full(h, np.inf, np.float32)  # px beyond the border (and its ramp into the picture), per row
    dist_x = np.full(w, np.inf, np.float32)
    if top:
        dist_y = np.minimum(dist_y, ys - (top + g - 1))
    if bottom:
        dist_y = np.minimum(dist_y, (h - bottom - g) - ys)
    if left:
        dist_x = np.minimum(dist_x, xs - (left + g - 1))
    if right:
        dist_x = np.minimum(dist_x, (w - right - g) - xs)
    dist = np.minimum(dist_y[:, None], dist_x[None, :])
    keep = smoothstep(np.clip(dist / ramp, 0.0, 1.0)).astype(np.float32)
    sides = ", ".join(f"{name} {n} px" for name, n in (("top", top), ("bottom", bottom), ("left", left),
                                                       ("right", right)) if n)
    return keep, f"a flat band along the photo's edge ({sides}: a letterbox, or sky or ground of one colour) is left still"


def flatten_near(field: np.ndarray, arrows, sigma: float) -> np.ndarray:
    """``field`` with its speed evened out near the arrows: where an arrow says how fast the water goes,
    the network's speed ripples with the photo's texture (on a surf photo 0.74-1.17 of the drawn speed along
    one arrow, lowest at its middle), so one correction per arrow cannot give the drawn speed all along it.

    Near the arrows (weight 1 within ``FLAT_NEAR`` sigma of one, fading to 0 by twice that), the speed
    becomes its local mean over the moving pixels (a blur of about sigma / 4), with its direction kept; a
    pixel slower than ``FLAT_KEEP`` x that mean (the ramp at the edge of a moving region) keeps its share
    of the mean, so that the region does not end in a step. Still pixels stay still."""
    from .field import box_blur, downsize, resize_bilinear
    from .hints import _segment_distance_sq

    h, w = field.shape[:2]
    speed = np.hypot(field[..., 0], field[..., 1])
    if not (speed > 0).any():
        return field
    scale = min(1.0, 256.0 / max(h, w))  # the mean speed is smooth: taken at 256 px on the long side
    small = downsize(np.stack([speed, (speed > 0).astype(np.float32)], -1), 256)
    radius = max(1, int(round(sigma * scale / 4)))
    mean = box_blur(small[..., 0], radius) / np.maximum(box_blur(small[..., 1], radius), 1e-6)
    sh, sw = mean.shape
    gy = (np.arange(sh, dtype=np.float64)[:, None] + 0.5) / scale * np.ones((1, sw))
    gx = (np.arange(sw, dtype=np.float64)[None, :] + 0.5) / scale * np.ones((sh, 1))
    d = np.sqrt(np.min([_segment_distance_sq(gx, gy, a.start, a.end) for a in arrows], axis=0)) / sigma
    near = np.clip(2.0 - d / FLAT_NEAR, 0.0, 1.0).astype(np.float32)
    up = resize_bilinear(np.stack([mean, near], -1).astype(np.float32), (h, w))
    mean, near = np.maximum(up[..., 0], 0.0), np.clip(up[..., 1], 0.0, 1.0)
    flat = mean * np.minimum(1.0, speed / np.maximum(FLAT_KEEP * mean, 1e-9))
    target = speed + near * (flat - speed)
    gain = np.where(speed > 0, target / np.maximum(speed, 1e-12), 0.0)
    return (field * gain[..., None]).astype(np.float32)


def honour_arrows(field: np.ndarray, arrows, sigma: float | None = None) -> np.ndarray:
    """The field turned and scaled near each arrow so that it moves there as the arrow says: its speed first
    evened out near the arrows (``flatten_near``), then, per arrow, one correction.

    Per arrow k, the correction c_k = v_k / p_k (complex numbers: turn and speed ratio, the speed ratio
    kept within 1/3-3) with p_k the field's mean along the arrow; corrections are spread in log space with
    the arrows' Gaussian weights (core.hints.dense_from_arrows's, sigma), fading to half two sigma from
    every arrow and to none by three; near the arrows each one's share is its weight to the power
    ``SHARPEN``, so that along an arrow its own correction wins over a close neighbour's. A multiplication:
    where the model predicts no motion, the arrows add none."""
    from .hints import _segment_distance_sq, default_sigma

    h, w = field.shape[:2]
    if sigma is None:
        sigma = default_sigma((h, w), len(arrows))
    field = flatten_near(field, arrows, sigma)
    logs, used = [], []
    for a in arrows:
        v = complex(*a.velocity)
        if abs(v) < 1e-6:
            continue
        pts = [(a.start[0] + t * (a.end[0] - a.start[0]), a.start[1] + t * (a.end[1] - a.start[1]))
               for t in (0.2, 0.35, 0.5, 0.65, 0.8)]
        p = np.mean([field[int(min(max(y, 0), h - 1)), int(min(max(x, 0), w - 1))] for x, y in pts], axis=0)
        p = complex(float(p[0]), float(p[1]))
        if abs(p) < 0.05 * abs(v):  # the model sees nothing moving there: nothing to turn
            continue
        c = v / p
        logs.append(complex(np.log(min(max(abs(c), 1 / 3), 3.0)), np.angle(c)))
        used.append(a)
    if not used:
        return field
    step = max(1, int(sigma / 8))
    gy = (np.arange(0, h, step, dtype=np.float64) + 0.5)[:, None] * np.ones((1, -(-w // step)))
    gx = (np.arange(0, w, step, dtype=np.float64) + 0.5)[None, :] * np.ones((-(-h // step), 1))
    d2 = np.stack([_segment_distance_sq(gx, gy, a.start, a.end) / sigma**2 for a in used])
    g = np.exp(-d2)
    fade = g.sum(axis=0) / (g.sum(axis=0) + np.exp(-4.0))  # half two sigma from every arrow, < 1% at three
    # Each arrow's share of the correction: its Gaussian weight to the power SHARPEN, so that next to an
    # arrow its own correction wins over a close neighbour's (with the plain weights each of two close
    # arrows that differ got a blend of both: 0.79 of the drawn speed beside a faster arrow). A convex
    # blend of the arrows' corrections: nowhere more turn or speed than some arrow asks for.
    sharp = np.exp(-SHARPEN * (d2 - d2.min(axis=0)))
    lc = np.tensordot(np.asarray(logs), sharp, axes=1) / sharp.sum(axis=0) * fade
    from .field import resize_bilinear

    coarse = np.stack([lc.real, lc.imag], -1).astype(np.float32)
    lc = resize_bilinear(coarse, (coarse.shape[0] * step, coarse.shape[1] * step))[:h, :w]
    corr = np.exp(lc[..., 0]) * np.exp(1j * lc[..., 1])
    z = (field[..., 0] + 1j * field[..., 1]) * corr
    return np.stack([z.real, z.imag], -1).astype(np.float32)


def loop_feather(field: np.ndarray, mask: np.ndarray, feather_px: float, travel_frames: float) -> float:
    """The feather width for a loop: at least ``feather_px``, and at least the distance the fast pixels of
    ``field`` (the 99th percentile speed inside the mask) travel over the loop (``travel_frames`` = frames x
    speed), at most a quarter of the picture's short side. Content crossing the mask edge is squeezed into
    the feather: over a feather narrower than its travel it folds into hard outlines and tears (measured on
    real photos: edge tear 0.50 -> 0.02 on the sample, 1.63 -> 0.23 on a surf photo). 0 (no feather) stays 0."""
    if feather_px <= 0 or travel_frames <= 0:
        return feather_px
    speed = np.hypot(field[..., 0], field[..., 1])[np.asarray(mask) > 0.5]
    speed = speed[speed > 1e-3]
    if speed.size == 0:
        return feather_px
    travel = float(np.percentile(speed, 99)) * travel_frames
    return float(max(feather_px, min(travel, 0.25 * min(field.shape[:2]))))


def predict_motion(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    hints: Hints | None = None,
    source: str = "auto",
    model_path: str | None = None,
    device: str = "auto",
    feather_px: float = 12.0,
    freeze: np.ndarray | None = None,
    travel_frames: float = 0.0,
    sky: bool = True,
) -> MotionResult:
    """Motion field for ``image`` (float32 (H, W, 3)).

    ``mask``: painted motion mask (H, W) in [0, 1], combined with mask polygons in ``hints``.
    ``freeze``: extra multiplier (H, W) in [0, 1] (e.g. an image's alpha), combined with freeze hints.
    ``source``: "hints" (arrows only), "model" (the network, with the arrows as its hint input when given)
    or "auto": the network, guided by the arrows when there are any. On held-out data the guided network
    follows the true motion better than the arrows alone, inside a mask and (by far) over the whole picture
    without one, where the arrows alone move the land too (models/MODEL_CARD.md). When the network cannot
    run, "auto" falls back to the arrows alone and says so in ``notes``; with no arrows either it raises
    StillflowError.
    ``sky``: without arrows, the photo's own cues replace the network's field where they find something:
    in its sky (core.sky) a cloudy sky drifts sideways, a clear one stays still (drifts too inside a given
    mask); on still water that mirrors (core.reflection) the water drifts sideways and what it mirrors stays
    still.
    ``travel_frames``: the loop's frames x speed. The feather then widens to the distance the fast pixels
    travel over one loop (see ``loop_feather``), so that what crosses the mask edge is never squeezed into
    hard lines.
    """
    if source not in SOURCES:
        raise InputError(f"unknown motion source {source!r}: use auto, hints or model")
    h, w = image.shape[:2]
    check_finite(image, "image")
    notes: list[str] = []
    hints = hints.for_size(w, h) if hints is not None else Hints()
    hints.validate(w, h)

    masks = [m for m in (mask, mask_from_hints(hints, (h, w))) if m is not None]
    for m in masks:
        if m.shape != (h, w):
            raise InputError(f"motion mask is {m.shape[1]}x{m.shape[0]} but the image is {w}x{h}")
        check_finite(m, "motion mask")
    motion_mask = np.maximum.reduce(masks) if masks else None
    border, note = flat_borders(image, feather_px)
    if note:
        notes.append(note)
        log.info(note)
    freezes = [f for f in (freeze, freeze_from_hints(hints, (h, w)), border) if f is not None]
    freeze_mult = np.minimum.reduce(freezes) if freezes else None

    hint_field = dense_from_arrows(hints.arrows, (h, w)) if hints.arrows else None
    provider = ""
    raw = None
    if source == "hints":
        if hint_field is None:
            raise InputError("motion source 'hints' needs at least one arrow: draw arrows, or use the model")
    else:
        try:
            from .model import MotionModel

            model = MotionModel(model_path, device=device)
            raw = model.predict(image, mask=motion_mask, hint_field=hint_field)
            provider = model.provider
            notes.extend(model.notes)
        except (ImportError, StillflowError) as err:
            if isinstance(err, InputError) or source == "model" or hint_field is None:
                if isinstance(err, ImportError):
                    raise StillflowError(f"the motion model cannot run here ({err}): draw arrows") from None
                raise
            notes.append(f"the motion model could not run ({err}); the arrows alone give the motion")
            log.warning(notes[-1])
    if raw is None:
        raw, used = hint_field, "hints"
    else:
        used = "model+hints" if hint_field is not None else "model"
        raw = settle(raw)
        if sky and not hints.arrows:
            from .reflection import apply_reflection
            from .sky import apply_sky, far_sea, find_sky, hold_on_horizon

            found = find_sky(image, raw)
            raw, note = apply_sky(raw, image, masked=motion_mask is not None, sky=found)
            raw, mirror = apply_reflection(raw, image, keep=None if found is None else found.inner)
            raw, standing = hold_on_horizon(raw, image)
            raw, far = far_sea(raw, image)
            for n in (note, mirror, standing, far):
                if n:
                    notes.append(n)
                    log.info(n)
        if hints.arrows:
            raw = honour_arrows(raw, hints.arrows)
    edges = field_mod.photo_edges(image) if motion_mask is not None and feather_px > 0 else None  # once
    out = shape_motion(raw, motion_mask, freeze_mult, feather_px, edges)
    if motion_mask is not None:  # the travel of the field as the loop will move it, feathered as asked
        wider = loop_feather(out, motion_mask, feather_px, travel_frames)
        if wider > feather_px:
            out = shape_motion(raw, motion_mask, freeze_mult, wider, edges)
            log.info("feather widened to %.0f px, the distance the fast pixels travel over the loop", wider)
    check_finite(out, "predicted motion field")
    return MotionResult(out.astype(np.float32), used, provider, notes)
