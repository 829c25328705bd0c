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
from .errors import InputError
from .field import validate_field
from .integrate import BackwardFields
from .job import LoopSpec

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


def fill_holes(rgb: np.ndarray, holes: np.ndarray, fallback: np.ndarray, tile: int = 64) -> None:
    """Fill hole pixels in place from a normalised blur of their valid neighbours.

    Works tile by tile, only on tiles that hold holes (with a margin wide enough for the widest blur), so a
    frame with a few holes costs a few small blurs, not full-frame ones. Radii grow (2, 6, 18 px) until
    every hole has valid neighbours; the rest falls back to the input image.
    """
    if not holes.any():
        return
    from .field import box_blur

    h, w = holes.shape
    pad = 3 * 18 + 2
    nty, ntx = -(-h // tile), -(-w // tile)
    padded = np.zeros((nty * tile, ntx * tile), bool)
    padded[:h, :w] = holes
    for by, bx in np.argwhere(padded.reshape(nty, tile, ntx, tile).any(axis=(1, 3))):
        y0, y1 = by * tile, min(h, (by + 1) * tile)
        x0, x1 = bx * tile, min(w, (bx + 1) * tile)
        py0, py1, px0, px1 = max(0, y0 - pad), min(h, y1 + pad), max(0, x0 - pad), min(w, x1 + pad)
        hole = holes[py0:py1, px0:px1]
        valid = (~hole).astype(np.float32)
        clean = np.where(hole[..., None], 0.0, rgb[py0:py1, px0:px1]).astype(np.float32)
        todo = np.zeros_like(hole)
        todo[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0] = hole[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]
        out = rgb[py0:py1, px0:px1]
        for radius in (2, 6, 18):
            den = box_blur(valid, radius)
            ok = todo & (den > 1e-3)
            if ok.any():
                for c in range(rgb.shape[2]):
                    out[..., c][ok] = box_blur(clean[..., c], radius)[ok] / den[ok]
                todo &= ~ok
            if not todo.any():
                break
        out[todo] = fallback[py0:py1, px0:px1][todo]


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
        alpha = 1.0 - t / n
        if coverage:
            acc[...] = 0.0
            acc_b[...] = 0.0
            engine.accumulate(acc, src, flow, weight, 1.0)
            engine.accumulate(acc_b, src, backward.get(n - t), weight, 1.0)
            rgb, holes = engine.blend(acc, acc_b, alpha)
        else:
            symmetric_splat(engine, acc, src, weight, flow, backward.get(n - t), alpha)
            rgb, holes = engine.normalise(acc)
        n_holes = int(holes.sum())
        if n_holes:
            if settings.fill_holes:
                fill_holes(rgb, holes, img)
            else:
                rgb[holes] = img[holes]
        yield Frame(t, rgb, n_holes / float(h * w))
    log.info("rendered %d frames in %.2f s", n, time.perf_counter() - started)
