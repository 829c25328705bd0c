"""Moving regions as an artist edits them: the region a field moves, cleaned into a few polygons, and a rough
region snapped to the photo's edges.

- ``moving_region``: the pixels a field moves (|M| above the reference data's threshold), with the specks
  dropped (parts smaller than ``min_part`` of the picture): the model's scattered guesses are where it is
  least sure, and a still pixel that slides is what a viewer sees first.
- ``region_hints``: a region as hints, ready for the hints Mask's ``motion`` layer or a hints file: the outer
  outline of each part as a motion polygon, each hole big enough to matter (a boat in a lake) as a freeze
  polygon, the outlines simplified (Douglas-Peucker) to a few dozen points.
- ``snap_to_edges``: a rough region (a loose polygon or box drawn around a lake) moved onto the photo's own
  edges: what lies well inside is kept, what lies well outside is left out, and the band between is decided
  by colour (a histogram of the inside against one of the ring just outside) smoothed by a guided filter on
  the photo, so the result follows edges a person sees. A hand-written stand-in for OpenCV's GrabCut:
  Blender bundles numpy but not OpenCV, and the extension does not ship the 60 MB wheel for this.

Numpy only (this is ``core``: no bpy, no OpenCV); the work is done at ``WORK`` px on the long side, where a
region's outline is a few hundred pixels, and scaled back.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .field import MOTION_THRESHOLD, box_blur, resize_bilinear
from .hints import Hints, Point

THRESHOLD = MOTION_THRESHOLD  # at 512 px on the long side, the scale the model runs at
WORK = 384  # px on the long side for labelling and outlines
MIN_PART = 0.01  # of the picture: smaller parts are specks
MIN_HOLE = 0.002  # of the picture: smaller holes are filled


def _work_shape(shape: tuple[int, int], work: int) -> tuple[int, int]:
    h, w = shape
    s = min(1.0, work / max(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected parts of a bool mask: (labels int32, 0 = outside; count)."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    labels = np.zeros((h, w), np.int32)
    n = 0
    flat = mask.ravel()
    lab = labels.ravel()
    for start in np.flatnonzero(flat):
        if lab[start]:
            continue
        n += 1
        lab[start] = n
        queue = deque([start])
        while queue:
            i = queue.popleft()
            r, c = divmod(i, w)
            for j, ok in ((i - w, r > 0), (i + w, r < h - 1), (i - 1, c > 0), (i + 1, c < w - 1)):
                if ok and flat[j] and not lab[j]:
                    lab[j] = n
                    queue.append(j)
    return labels, n


def clean(mask: np.ndarray, min_part: float = MIN_PART, min_hole: float = MIN_HOLE) -> np.ndarray:
    """``mask`` without parts smaller than ``min_part`` of the picture and with its holes smaller than
    ``min_hole`` filled (holes: parts of the outside that do not reach the picture's border)."""
    mask = np.asarray(mask, bool)
    area = mask.size
    labels, n = label(mask)
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        keep = sizes >= min_part * area
        keep[0] = False
        mask = keep[labels]
    labels, n = label(~mask)
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        fill = sizes < min_hole * area
        fill[0] = False
        fill[border] = False
        mask = mask | fill[labels]
    return mask


def moving_region(field: np.ndarray, threshold: float = THRESHOLD, min_part: float = MIN_PART,
                  work: int = WORK) -> np.ndarray:
    """The region (bool, the field's size) that ``field`` moves faster than ``threshold`` px/frame at 512 px on
    the long side (or than a quarter of its 99th percentile speed, when that is lower: slow arrows), without
    specks and small holes (see ``clean``)."""
    h, w = field.shape[:2]
    speed = np.hypot(field[..., 0], field[..., 1]) * (512.0 / max(h, w))
    moving = speed[speed > 1e-6]
    if moving.size:
        threshold = min(threshold, 0.25 * float(np.percentile(moving, 99)))
    small = resize_bilinear(speed.astype(np.float32), _work_shape((h, w), work)) > threshold
    small = clean(small, min_part)
    return resize_bilinear(small.astype(np.float32), (h, w)) > 0.5


# ---------------------------------------------------------------------------------------------- outlines


def _loops(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines along pixel edges, (N, 2) corner coordinates (x, y); outer outlines run clockwise on
    screen (y down), holes counter-clockwise. At a corner where two parts touch diagonally the walk turns
    right, so parts joined only at a corner stay apart (4-connectivity)."""
    m = np.pad(np.asarray(mask, bool), 1)
    inside = m[1:-1, 1:-1]
    nxt: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def add(edges_r, edges_c, d0, d1):
        for r, c in zip(edges_r.tolist(), edges_c.tolist(), strict=True):
            a = (c + d0[0], r + d0[1])
            b = (c + d1[0], r + d1[1])
            nxt.setdefault(a, []).append(b)

    r, c = np.nonzero(inside & ~m[:-2, 1:-1])  # top edges, left to right
    add(r, c, (0, 0), (1, 0))
    r, c = np.nonzero(inside & ~m[1:-1, 2:])  # right edges, downward
    add(r, c, (1, 0), (1, 1))
    r, c = np.nonzero(inside & ~m[2:, 1:-1])  # bottom edges, right to left
    add(r, c, (1, 1), (0, 1))
    r, c = np.nonzero(inside & ~m[1:-1, :-2])  # left edges, upward
    add(r, c, (0, 1), (0, 0))

    loops = []
    while nxt:
        start = next(iter(nxt))
        pts = [start]
        prev = start
        cur = nxt[start].pop()
        if not nxt[start]:
            del nxt[start]
        while cur != start:
            pts.append(cur)
            outs = nxt[cur]
            if len(outs) == 1:
                b = outs.pop()
            else:  # a corner two parts share: turn right, (dx, dy) -> (-dy, dx) on screen
                dx, dy = cur[0] - prev[0], cur[1] - prev[1]
                right = (cur[0] - dy, cur[1] + dx)
                b = right if right in outs else outs[0]
                outs.remove(b)
            if not outs:
                del nxt[cur]
            prev, cur = cur, b
        loops.append(np.asarray(pts, np.float64))
    return loops


def _simplify(loop: np.ndarray, tol: float) -> np.ndarray:
    """Douglas-Peucker on a closed outline: split at its two farthest points, simplify both halves."""
    if len(loop) <= 4:
        return loop
    j = int(np.argmax(((loop - loop[0]) ** 2).sum(1)))
    halves = [loop[:j + 1], np.vstack([loop[j:], loop[:1]])]
    out = []
    for half in halves:
        keep = np.zeros(len(half), bool)
        keep[0] = keep[-1] = True
        stack = [(0, len(half) - 1)]
        while stack:
            a, b = stack.pop()
            if b <= a + 1:
                continue
            p, q = half[a], half[b]
            seg = q - p
            norm = np.hypot(*seg)
            rel = half[a + 1:b] - p
            d = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm if norm > 0 else np.hypot(rel[:, 0], rel[:, 1])
            k = int(np.argmax(d))
            if d[k] > tol:
                keep[a + 1 + k] = True
                stack += [(a, a + 1 + k), (a + 1 + k, b)]
        out.append(half[keep][:-1])
    return np.vstack(out)


def _signed_area(loop: np.ndarray) -> float:
    x, y = loop[:, 0], loop[:, 1]
    return 0.5 * float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum())


def region_hints(region: np.ndarray, image_size: tuple[int, int] | None = None, work: int = WORK,
                 tolerance: float = 1.0, min_part: float = MIN_PART, min_hole: float = MIN_HOLE) -> Hints:
    """``region`` (bool (H, W)) as hints: a motion polygon around each part and a freeze polygon over each
    hole, in the pixels of ``image_size`` (width, height; default the region's own), outlines simplified to
    ``tolerance`` working pixels."""
    h, w = region.shape
    width, height = image_size or (w, h)
    wh, ww = _work_shape((h, w), work)
    small = clean(resize_bilinear(np.asarray(region, np.float32), (wh, ww)) > 0.5, min_part, min_hole)
    sx, sy = width / ww, height / wh
    hints = Hints(image_size=(int(width), int(height)))
    for loop in _loops(small):  # `clean` left no part and no hole too small to keep
        area = _signed_area(loop)  # > 0: clockwise on screen (y down): an outer outline
        pts = _simplify(loop, tolerance)
        if len(pts) < 3:
            continue
        poly: list[Point] = [(float(x * sx), float(y * sy)) for x, y in pts]
        (hints.motion_polygons if area > 0 else hints.freeze_polygons).append(poly)
    return hints


# -------------------------------------------------------------------------------------------- snapping


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` grown by about ``px`` pixels (one box pass; a square, which is enough here)."""
    return box_blur(mask.astype(np.float32), px, passes=1) > 1e-3 if px > 0 else mask.copy()


def _shrink(mask: np.ndarray, px: int) -> np.ndarray:
    return ~grow(~mask, px)


def _guided(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (grey guide): ``src`` smoothed, its edges moved onto the guide's."""
    def mean(a):
        return box_blur(a, r, passes=1)

    mi, mp = mean(guide), mean(src)
    a = (mean(guide * src) - mi * mp) / (mean(guide * guide) - mi * mi + eps)
    b = mp - a * mi
    return mean(a) * guide + mean(b)


def snap_to_edges(rgb: np.ndarray, rough: np.ndarray, band: float = 0.04, work: int = 512) -> np.ndarray:
    """``rough`` (a loosely drawn region, (H, W) in [0, 1]) snapped to the edges of ``rgb`` (float (H, W, 3)):
    bool (H, W). ``band``: how loose the drawing may be, as a fraction of the picture's long side; what lies
    further than that inside the drawing is kept, further outside is left out."""
    h, w = rough.shape
    wh, ww = _work_shape((h, w), work)
    img = np.clip(resize_bilinear(np.asarray(rgb, np.float32)[..., :3], (wh, ww)), 0.0, 1.0)
    drawn = resize_bilinear(np.asarray(rough, np.float32), (wh, ww)) > 0.5
    if not drawn.any():
        return np.zeros((h, w), bool)
    px = max(2, int(round(band * max(wh, ww))))
    core = _shrink(drawn, px)
    if not core.any():  # drawn thinner than the band: keep its middle
        core = _shrink(drawn, max(1, px // 4))
        if not core.any():
            core = drawn
    outside = ~grow(drawn, px)
    ring = grow(drawn, 2 * px) & outside
    if not ring.any():  # the drawing covers the picture: nothing to tell it from
        return resize_bilinear(drawn.astype(np.float32), (h, w)) > 0.5
    q = np.minimum((img * 16).astype(np.int64), 15)
    bins = (q[..., 0] * 16 + q[..., 1]) * 16 + q[..., 2]
    fg = np.bincount(bins[core], minlength=4096).astype(np.float64)
    bg = np.bincount(bins[ring], minlength=4096).astype(np.float64)
    # histograms smoothed over neighbouring colours, so a colour seen once next to many is judged by them
    fg = box_blur(fg.reshape(16, 256), 1, passes=1).ravel() / max(fg.sum(), 1.0)
    bg = box_blur(bg.reshape(16, 256), 1, passes=1).ravel() / max(bg.sum(), 1.0)
    p = (fg[bins] + 1e-6) / (fg[bins] + bg[bins] + 2e-6)
    p = np.where(core, 1.0, np.where(outside, 0.0, p)).astype(np.float32)
    grey = img.mean(axis=2).astype(np.float32)
    r = max(2, int(round(0.01 * max(wh, ww))))
    p = _guided(grey, p, r, 1e-3)
    p = _guided(grey, p, r, 1e-3)
    region = core | (~outside & (p > 0.5))
    labels, n = label(region)
    if n > 1:  # only the parts that hold some of the drawing's core
        keep = np.zeros(n + 1, bool)
        keep[np.unique(labels[core])] = True
        keep[0] = False
        region = keep[labels]
    region = clean(region, 0.0, MIN_HOLE)
    return resize_bilinear(region.astype(np.float32), (h, w)) > 0.5


# ------------------------------------------------------------------------------------------- proposals


def propose_hints(rgb: np.ndarray, field: np.ndarray, given: Hints | None = None,
                  size: tuple[int, int] | None = None) -> Hints:
    """The hints an artist starts from: the region ``field`` moves (``moving_region``), snapped to the
    photo's edges, as motion polygons with its holes as freeze polygons; the arrows, freeze points and freeze
    polygons of ``given`` kept. Pixels of ``size`` (width, height; default the photo's own)."""
    h, w = field.shape[:2]
    region = moving_region(field)
    if region.any():
        region = snap_to_edges(rgb, region, band=0.02)
    out = region_hints(region, (w, h))
    if given is not None:
        g = given.for_size(w, h)
        out.arrows = g.arrows
        out.freeze_points = g.freeze_points
        out.freeze_polygons = g.freeze_polygons + out.freeze_polygons
        out.freeze_radius = g.freeze_radius
    return out.for_size(*size) if size is not None else out


__all__ = ["THRESHOLD", "clean", "label", "moving_region", "propose_hints", "region_hints", "snap_to_edges"]
