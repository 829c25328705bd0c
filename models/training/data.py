"""Training samples for Stillflow's motion model, from scenes with KNOWN motion: the procedural ones of
models/training/scenes.py and, through ``sample_from_scene``, any other (models/training/render_data.py's).

Every sample is made from a seed (``numpy.random.default_rng(seed)``), so the data set is reproducible and
nothing has to be downloaded or committed. A sample is a crop of a scene with colour jitter, a perturbed
motion mask some of the time and hint arrows sampled from the true field some of the time, as the network's
6-channel input and its 2-channel target.

Public entry points:
    sample_hints(rng, motion, mask) -> list of (x, y, dx, dy)
    dense_from_points(points, shape, sigma=None) -> (H,W,2)   normalised Gaussian interpolation (DESIGN.md)
    make_sample(seed, size=160, p_hint=0.5, p_mask=0.5) -> dict of network input (6,H,W) and target (2,H,W)
    sample_from_scene(rng, rgb, motion, size, ...) -> the same from any scene (models/training/render_data.py's too)
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ...core.field import MOTION_THRESHOLD
from .scenes import make_scene, photometric

# Training seeds are 0 .. EVAL_SEED_START - 1; evaluation uses seeds from EVAL_SEED_START up, never trained on.
EVAL_SEED_START = 10_000_000

__all__ = ["EVAL_SEED_START", "MOTION_THRESHOLD", "build_input", "dense_from_points", "hint_sigma", "make_sample",
           "make_scene", "perturb_mask", "photometric", "sample_from_scene", "sample_hints", "turn"]


def dense_from_points(points, shape, sigma=None):
    """Normalised Gaussian interpolation of sparse vectors (DESIGN.md 'Hints to a dense field').

    points: iterable of (x, y, dx, dy) in pixels, px/frame. Returns float32 (H, W, 2); zeros when empty.
    """
    h, w = shape
    pts = np.asarray(list(points), np.float32).reshape(-1, 4)
    if len(pts) == 0:
        return np.zeros((h, w, 2), np.float32)
    if sigma is None:
        sigma = max(h, w) / (2.0 * math.sqrt(len(pts)))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    num = np.zeros((h, w, 2), np.float64)
    den = np.zeros((h, w), np.float64)
    logs = [-(((xx - x) ** 2 + (yy - y) ** 2) / (sigma * sigma)) for x, y, _, _ in pts]
    mx = np.max(np.stack(logs), axis=0)  # stable: subtract the largest exponent
    for (_, _, vx, vy), lg in zip(pts, logs, strict=True):
        g = np.exp(lg - mx)
        num[..., 0] += g * vx
        num[..., 1] += g * vy
        den += g
    return (num / den[..., None]).astype(np.float32)


def sample_hints(rng, motion, mask, k=None):
    """A few arrows sampled from the true field: (x, y, dx, dy); small angle/speed noise like a user's drawing."""
    ys, xs = np.nonzero(mask > 0.5)
    if len(ys) == 0:
        return []
    k = int(rng.integers(1, 6)) if k is None else k
    idx = rng.choice(len(ys), size=min(k, len(ys)), replace=False)
    pts = []
    for i in idx:
        y, x = ys[i], xs[i]
        vx, vy = motion[y, x]
        a = rng.normal(0, 0.12)
        s = math.exp(rng.normal(0, 0.1))
        ca, sa = math.cos(a), math.sin(a)
        pts.append((float(x), float(y), float(s * (ca * vx - sa * vy)), float(s * (sa * vx + ca * vy))))
    return pts


def turn(motion, angle):
    """Every vector of ``motion`` (H, W, 2) turned by ``angle`` radians (image axes: +x right, +y down)."""
    c, s = math.cos(angle), math.sin(angle)
    out = np.empty_like(motion)
    out[..., 0] = c * motion[..., 0] - s * motion[..., 1]
    out[..., 1] = s * motion[..., 0] + c * motion[..., 1]
    return out


def hint_sigma(rng, k, full=512.0):
    """Sigma the hint interpolation would use on a full ~512 px picture with k arrows (sampled scale)."""
    return rng.uniform(0.6, 1.25) * full / (2.0 * math.sqrt(max(k, 1)))


def perturb_mask(rng, mask):
    """A user-drawn mask is rough: dilate or erode a little and blur the edge."""
    m = mask.astype(np.float32)
    r = int(rng.integers(0, 5))
    if r:
        ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        m = cv2.dilate(m, ker) if rng.random() < 0.6 else cv2.erode(m, ker)
    if rng.random() < 0.5:
        m = cv2.GaussianBlur(m, (0, 0), rng.uniform(0.5, 3.0))
    return np.clip(m, 0, 1).astype(np.float32)


def build_input(rgb, mask=None, hint_field=None):
    """Network input (6, H, W) float32: RGB, mask (ones when none), hint field dx, dy (zeros when none)."""
    h, w = rgb.shape[:2]
    m = np.ones((h, w), np.float32) if mask is None else mask.astype(np.float32)
    hf = np.zeros((h, w, 2), np.float32) if hint_field is None else hint_field.astype(np.float32)
    return np.concatenate([rgb.transpose(2, 0, 1), m[None], hf.transpose(2, 0, 1)], 0).astype(np.float32)


def make_sample(seed, size=160, p_hint=0.5, p_mask=0.5, scene_size=None, p_turn=0.0):
    """One training sample from a seed: a procedural scene, then ``sample_from_scene``."""
    rng = np.random.default_rng(seed)
    ss = scene_size or int(size * rng.uniform(1.0, 1.3))
    sc = make_scene(rng, ss, ss)
    return sample_from_scene(rng, sc["rgb"], sc["motion"], size, p_hint, p_mask, p_turn=p_turn)


def sample_from_scene(rng, rgb, mot, size, p_hint=0.5, p_mask=0.5, jitter=False, p_turn=0.0):
    """Crop, flip, speed scaling, mask/hint dropout of one scene (procedural or rendered); ``jitter`` applies
    ``photometric`` to the crop (procedural scenes have it already).

    ``p_turn``: probability that a sample WITH hints has its motion (target and hints alike) turned by a
    random angle while the picture stays as it is. The arrows then say a direction the picture alone would
    not suggest (a user's choice: waves going out, a river drawn uphill), so the net learns to follow the
    arrows' direction and to take only where and how fast things move from the picture.

    Returns dict(x (6,H,W), y (2,H,W), mask_true (H,W), has_hint, has_mask).
    """
    h, w = rgb.shape[:2]
    oy, ox = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
    rgb = rgb[oy : oy + size, ox : ox + size]
    mot = mot[oy : oy + size, ox : ox + size]
    if jitter:
        rgb = photometric(rng, rgb)
    if rng.random() < 0.5:  # horizontal flip: dx changes sign
        rgb, mot = rgb[:, ::-1], mot[:, ::-1] * np.array([-1, 1], np.float32)
    mot = mot * rng.uniform(0.6, 1.6)  # speed scaling
    mask = (np.linalg.norm(mot, axis=-1) > MOTION_THRESHOLD).astype(np.float32)
    mot = mot * mask[..., None]
    has_mask = rng.random() < p_mask
    has_hint = rng.random() < p_hint and mask.sum() > 0
    if p_turn > 0 and has_hint and rng.random() < p_turn:
        mot = turn(mot, rng.uniform(-math.pi, math.pi))
    in_mask = perturb_mask(rng, mask) if has_mask else None
    hint = None
    if has_hint:
        pts = sample_hints(rng, mot, mask)
        hint = dense_from_points(pts, mask.shape, hint_sigma(rng, len(pts)))
        if has_mask:
            hint = hint * in_mask[..., None]
    x = build_input(np.ascontiguousarray(rgb), in_mask, hint)
    return {
        "x": x,
        "y": np.ascontiguousarray(mot.transpose(2, 0, 1)),
        "mask_true": np.ascontiguousarray(mask),
        "has_hint": has_hint,
        "has_mask": has_mask,
    }
