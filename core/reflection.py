"""Mirror reflections in still water, found from the photo alone: the water drifts, what it mirrors stays.

A mountain lake mirrors the mountains: the network (trained on procedural scenes and a few labelled sea
photos) moves the snowy ridges down and leaves the mirror-flat lake still, the opposite of a real video
(models/realset: on lake_sherburne it moved 0.43 of the still pixels). A reflection is evidence no other part
of a photo gives: what lies above the water line is mirrored below it, so above is solid (or sky) and below
is water. This is the "reflections, horizon lines" cue of issue 12, numpy only (Blender bundles no OpenCV):

- ``find_reflection``: for each candidate water line (a row between ``LOW`` and ``HIGH`` of the height), the
  band-passed luminance of the ``K`` rows above, flipped upside down, is compared with the ``K`` rows below by
  normalised cross-correlation in column windows (``WIN`` px wide, half overlapping). A texture that is the
  same upside down (vertical stripes, a canal's banks, straight columns of steam) matches flipped as well as
  unflipped, so what counts per window is the flipped correlation above the unflipped one. The best line is
  a reflection when that margin averages at least ``MIRROR`` over the width. The windows that match (margin
  above ``WINDOW_OK``) say which columns are water; the rows below the line down to where the match ends
  (``FOLLOW``) are the water, and everything above the line in those columns is the far shore: the water
  mirrors its foot, and the rest of it rises behind (mountains taller than the lake is deep).
- ``apply_reflection``: the water drifts sideways, to the right by convention (the way ``core.sky`` drifts
  clouds: a still photo cannot show which way the wind ruffles a lake; an arrow sets it), at ``SPEED``; what
  it mirrors is still, but for the interior of a sky that ``core.sky`` found (its drift is the sky cue's;
  the horizon band stays still). Where it finds none, the whole far side stays still: clouds left still are
  a lesser fault than clouds sinking into the mountains.

``MIRROR`` was chosen from the scores of the 22 evaluation photos (models/realset: one mirror lake,
lake_sherburne, 0.70; every other photo at most 0.37), the 19 training photos (at most 0.44) and 11
pictures from BuddiesOfBudgie/budgie-backgrounds' history outside both sets (at most 0.44; only scored, not
kept: several have no confirmed licence), and of synthetic mirrors made from 9 photos with
nothing mirrored in them (the lower part replaced by the flipped upper part, darkened, rippled sideways by up
to 4 px and blurred: 0.61-0.88). One real mirror lake is little evidence: the threshold sits between the
synthetic mirrors and the photos without one, and the tests check both sides with real pictures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .field import box_blur, downsize, resize_bilinear

WORK = 256  # px on the long side: the water line is found at this size
LOW, HIGH = 0.2, 0.9  # of the height: where a water line may lie
DEPTH = 0.2  # of the height: the rows compared on each side of a candidate line
MIN_DEPTH = 0.06  # of the height: fewer rows than this on either side is too little to compare
WIN = 32  # px at WORK: the column windows compared
MIRROR = 0.55  # mean flipped-over-unflipped correlation margin of a reflection (see the module docstring)
WINDOW_OK = 0.3  # the margin of a window that shows the mirror
BAND = 4  # px at WORK: rows compared at a time when following the reflection away from the line
FOLLOW = 0.4  # the flipped correlation of those rows (a few rows are too few to weigh it against unflipped)
SPEED = 0.3  # px/frame at 960 px: the drift of a lake's surface, the speed the evaluation labels give it


@dataclass
class Reflection:
    water: np.ndarray  # float32 (H, W) in [0, 1]: the water that mirrors
    source: np.ndarray  # float32 (H, W) in [0, 1]: what it mirrors, above the water line
    line: float  # the water line, as a fraction of the height from the top
    score: float  # the mean correlation margin at the line


def _window_ncc(a: np.ndarray, b: np.ndarray, win: int) -> np.ndarray:
    """Normalised cross-correlation of (K, W) pictures ``a`` and ``b`` in column windows ``win`` wide
    (stride win / 2): (n_windows,)."""
    half = win // 2
    n = a.shape[1] // half
    a, b = a[:, :n * half], b[:, :n * half]
    k = a.shape[0]

    def windows(x):  # sums over half-windows, two neighbouring ones making a window
        s = x.reshape(k, n, half).sum(axis=(0, 2))
        return s[:-1] + s[1:]

    sa, sb, saa, sbb, sab = windows(a), windows(b), windows(a * a), windows(b * b), windows(a * b)
    m = k * win
    cov = sab - sa * sb / m
    var = (saa - sa * sa / m) * (sbb - sb * sb / m)
    return np.where(var > 1e-12, cov / np.sqrt(np.maximum(var, 1e-24)), 0.0)


def _margin(band: np.ndarray, line: int, depth: int) -> np.ndarray:
    """Per column window: the flipped correlation of ``depth`` rows above and below ``line`` over the
    unflipped one (clipped at zero)."""
    above, below = band[line - depth:line], band[line:line + depth]
    flipped = _window_ncc(above[::-1], below, WIN)
    straight = _window_ncc(above, below, WIN)
    return np.clip(flipped - np.maximum(straight, 0.0), 0.0, None)


def find_reflection(rgb: np.ndarray) -> Reflection | None:
    """The mirror reflection in the photo (float32 (H, W, 3) sRGB in [0, 1]), or None when it shows none."""
    small = downsize(rgb, WORK)
    g = small.mean(axis=2)
    band = box_blur(g, 1) - box_blur(g, 5)  # detail at 2-10 px: what a reflection keeps of its source
    h, w = g.shape
    if w < 2 * WIN:
        return None
    best, best_line, best_margin = -1.0, 0, None
    for line in range(int(LOW * h), int(HIGH * h) + 1):
        depth = min(line, h - line, int(DEPTH * h))
        if depth < MIN_DEPTH * h:
            continue
        margin = _margin(band, line, depth)
        score = float(margin.mean())
        if score > best:
            best, best_line, best_margin = score, line, margin
    if best < MIRROR:
        return None
    cols = best_margin > WINDOW_OK  # the column windows that show the mirror
    if not cols.any():
        return None
    reach = 0  # follow the mirror away from the line, BAND rows at a time, while those windows match
    for k in range(0, min(best_line, h - best_line) - BAND + 1, BAND):
        above, below = band[best_line - k - BAND:best_line - k], band[best_line + k:best_line + k + BAND]
        if _window_ncc(above[::-1], below, WIN)[cols].mean() < FOLLOW:
            break
        reach = k + BAND
    if reach < MIN_DEPTH * h:
        return None
    half = WIN // 2
    colmask = np.zeros(w, np.float32)
    for i in np.flatnonzero(cols):  # the last window reaches the right edge (the width need not be whole windows)
        colmask[i * half:i * half + WIN if i < len(cols) - 1 else w] = 1.0
    water = np.zeros((h, w), np.float32)
    source = np.zeros((h, w), np.float32)
    water[best_line:best_line + reach] = colmask
    source[:best_line] = colmask  # the far shore up to the sky: the mirror shows only its foot
    H, W = rgb.shape[:2]
    up = [np.clip(resize_bilinear(box_blur(m, 2), (H, W)), 0.0, 1.0).astype(np.float32) for m in (water, source)]
    up[0][:int(np.ceil(best_line * H / h))] = 0.0  # the shore's foot stays: the water drifts along the line
    return Reflection(up[0], up[1], best_line / h, best)


def apply_reflection(field: np.ndarray, rgb: np.ndarray, keep: np.ndarray | None = None,
                     ) -> tuple[np.ndarray, str | None]:
    """The network's ``field`` (H, W, 2) with a mirroring water surface drifting right and everything it
    mirrors still, except ``keep`` (H, W) in [0, 1]: the interior of the sky that ``core.sky`` found, whose
    drift it has set; (field unchanged, None) when there is no reflection."""
    found = find_reflection(rgb)
    if found is None:
        return field, None
    h, w = field.shape[:2]
    still = found.source if keep is None else found.source * (1.0 - keep)
    drift = np.zeros_like(field)
    drift[..., 0] = SPEED * max(h, w) / 960.0
    wgt = found.water[..., None]
    out = field * (1.0 - wgt) * (1.0 - still[..., None]) + drift * wgt
    note = (f"reflection in still water below {100 * found.line:.0f}% of the height: the water drifts right, "
            f"what it mirrors stays still; an arrow sets the way")
    return out.astype(np.float32), note
