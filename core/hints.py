"""User hints: motion arrows, motion-mask polygons, freeze points and polygons; and their dense field.

Coordinates are image pixels, x right, y down (row 0 top), in the size given by ``image_size`` (width,
height); hints drawn on a larger or smaller copy of the image are scaled with :meth:`Hints.for_size`.

Stillflow's JSON hints file (``"stillflow_hints": 1``)::

    {"stillflow_hints": 1, "image_size": [1280, 720],
     "arrows": [{"start": [x, y], "end": [x, y], "frames": 50}],
     "motion_mask": [[[x, y], [x, y], [x, y], ...]],
     "freeze_points": [[x, y]], "freeze_radius": 20,
     "freeze_polygons": [[[x, y], ...]]}

An arrow drawn from ``start`` to ``end`` over ``frames`` frames means a velocity of
``(end - start) / frames`` pixels per frame. LabelMe files are read too: polygons labelled ``motion`` are the
mask, ``line`` shapes (or two-point shapes) labelled ``hint...`` are arrows (a shape's optional ``frames``
key overrides the default 50 frames), polygons labelled ``freeze``/``anchor`` and ``point`` shapes are freeze regions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .field import box_blur, resize_bilinear, smoothstep

Point = tuple[float, float]
DEFAULT_ARROW_FRAMES = 50.0
MAX_ARROWS = 5000  # more is a field, not hints: refused with a clear line (time grows with their number)
ARROW_CHUNK = 64  # arrows spread at once: memory is this many grids, whatever the number of arrows


@dataclass
class Arrow:
    start: Point
    end: Point
    frames: float = DEFAULT_ARROW_FRAMES

    @property
    def velocity(self) -> tuple[float, float]:
        return ((self.end[0] - self.start[0]) / self.frames, (self.end[1] - self.start[1]) / self.frames)


@dataclass
class Hints:
    arrows: list[Arrow] = field(default_factory=list)
    motion_polygons: list[list[Point]] = field(default_factory=list)
    freeze_points: list[Point] = field(default_factory=list)
    freeze_polygons: list[list[Point]] = field(default_factory=list)
    image_size: tuple[int, int] | None = None  # (width, height) the coordinates refer to
    freeze_radius: float | None = None  # pixels; None: 2% of the image diagonal

    def is_empty(self) -> bool:
        return not (self.arrows or self.motion_polygons or self.freeze_points or self.freeze_polygons)

    def scaled(self, sx: float, sy: float) -> Hints:
        def p(pt: Point) -> Point:
            return (pt[0] * sx, pt[1] * sy)

        return Hints(
            arrows=[Arrow(p(a.start), p(a.end), a.frames) for a in self.arrows],
            motion_polygons=[[p(q) for q in poly] for poly in self.motion_polygons],
            freeze_points=[p(q) for q in self.freeze_points],
            freeze_polygons=[[p(q) for q in poly] for poly in self.freeze_polygons],
            image_size=None
            if self.image_size is None
            else (round(self.image_size[0] * sx), round(self.image_size[1] * sy)),
            freeze_radius=None if self.freeze_radius is None else self.freeze_radius * math.sqrt(sx * sy),
        )

    def for_size(self, width: int, height: int) -> Hints:
        """These hints in the pixel coordinates of a (width, height) image."""
        if self.image_size is None or tuple(self.image_size) == (width, height):
            out = self.scaled(1.0, 1.0)
        else:
            out = self.scaled(width / self.image_size[0], height / self.image_size[1])
        out.image_size = (width, height)
        return out

    def validate(self, width: int, height: int) -> None:
        """Raise InputError for hints outside a (width, height) image, zero-length arrows or NaN."""
        tol = 1.0

        def check(pt: Point, what: str) -> None:
            x, y = pt
            if not (math.isfinite(x) and math.isfinite(y)):
                raise InputError(f"{what} has a non-finite coordinate ({x}, {y})")
            if not (-tol <= x <= width + tol and -tol <= y <= height + tol):
                raise InputError(
                    f"{what} at ({x:.6g}, {y:.6g}) is outside the {width}x{height} image: "
                    "were the hints drawn on another image?"
                )

        for i, a in enumerate(self.arrows, 1):
            check(a.start, f"arrow {i} start")
            check(a.end, f"arrow {i} end")
            if math.hypot(a.end[0] - a.start[0], a.end[1] - a.start[1]) < 1e-6:
                raise InputError(f"arrow {i} has zero length: drag from where the motion starts to where it goes")
            if not (math.isfinite(a.frames) and a.frames > 0):
                raise InputError(f"arrow {i} has frames={a.frames}; it must be a positive number")
        for i, poly in enumerate(self.motion_polygons + self.freeze_polygons, 1):
            if len(poly) < 3:
                raise InputError(f"polygon {i} has {len(poly)} points; a region needs at least 3")
            for q in poly:
                check(q, f"polygon {i} point")
        for i, q in enumerate(self.freeze_points, 1):
            check(q, f"freeze point {i}")


# ------------------------------------------------------------------------------------------------ files


def load_hints(path: str | Path) -> Hints:
    """Read a Stillflow JSON or LabelMe JSON hints file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"hints file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"hints file {path.name} is not valid JSON: {err}") from None
    except RecursionError:
        raise InputError(f"hints file {path.name} is nested too deeply to be a hints file") from None
    if not isinstance(data, dict):
        raise InputError(f"hints file {path.name} must hold a JSON object")
    try:
        if "shapes" in data:
            return _from_labelme(data)
        return _from_stillflow(data)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as err:
        text = str(err)
        text = text if len(text) <= 80 else text[:77] + "..."
        raise InputError(f"hints file {path.name} is malformed ({type(err).__name__}: {text})") from None


def hints_to_dict(hints: Hints) -> dict:
    out: dict = {"stillflow_hints": 1}
    if hints.image_size is not None:
        out["image_size"] = [int(hints.image_size[0]), int(hints.image_size[1])]
    out["arrows"] = [
        {"start": [float(a.start[0]), float(a.start[1])], "end": [float(a.end[0]), float(a.end[1])],
         "frames": float(a.frames)}
        for a in hints.arrows
    ]
    out["motion_mask"] = [[[float(x), float(y)] for x, y in poly] for poly in hints.motion_polygons]
    out["freeze_points"] = [[float(x), float(y)] for x, y in hints.freeze_points]
    out["freeze_polygons"] = [[[float(x), float(y)] for x, y in poly] for poly in hints.freeze_polygons]
    if hints.freeze_radius is not None:
        out["freeze_radius"] = float(hints.freeze_radius)
    return out


def save_hints(hints: Hints, path: str | Path) -> None:
    Path(path).write_text(json.dumps(hints_to_dict(hints), indent=1) + "\n", encoding="utf-8")


def _size(w, h) -> tuple[int, int]:
    w, h = int(w), int(h)
    if w < 1 or h < 1:
        raise ValueError(f"image size {w}x{h} must be at least 1x1")
    return w, h


def _pt(v) -> Point:
    return (float(v[0]), float(v[1]))


def _from_stillflow(data: dict) -> Hints:
    size = data.get("image_size")
    return Hints(
        arrows=[Arrow(_pt(a["start"]), _pt(a["end"]), float(a.get("frames", DEFAULT_ARROW_FRAMES)))
                for a in data.get("arrows", [])],
        motion_polygons=[[_pt(q) for q in poly] for poly in data.get("motion_mask", [])],
        freeze_points=[_pt(q) for q in data.get("freeze_points", [])],
        freeze_polygons=[[_pt(q) for q in poly] for poly in data.get("freeze_polygons", [])],
        image_size=None if size is None else _size(size[0], size[1]),
        freeze_radius=None if data.get("freeze_radius") is None else float(data["freeze_radius"]),
    )


def _from_labelme(data: dict) -> Hints:
    hints = Hints()
    if "imageWidth" in data and "imageHeight" in data:
        hints.image_size = _size(data["imageWidth"], data["imageHeight"])
    if not isinstance(data["shapes"], list):
        raise ValueError('"shapes" must be a list of shapes')
    for shape in data["shapes"]:
        if not isinstance(shape, dict):
            raise ValueError("each shape must be an object")
        label = str(shape.get("label", "")).strip().lower()
        kind = str(shape.get("shape_type") or "polygon").lower()
        pts = [_pt(q) for q in shape.get("points", [])]
        if label.startswith("hint") and len(pts) >= 2:
            hints.arrows.append(Arrow(pts[0], pts[-1], float(shape.get("frames") or DEFAULT_ARROW_FRAMES)))
        elif label == "motion" and kind == "polygon":
            hints.motion_polygons.append(pts)
        elif label in ("freeze", "anchor", "still") or kind == "point":
            if kind == "point" or len(pts) == 1:
                hints.freeze_points.extend(pts)
            elif len(pts) >= 3:
                hints.freeze_polygons.append(pts)
    return hints


# ------------------------------------------------------------------------------------------- rasterising


def rasterize_polygons(polygons: list[list[Point]], shape: tuple[int, int]) -> np.ndarray:
    """Even-odd fill of polygons (pixel centres inside -> 1) as float32 (H, W)."""
    h, w = shape
    out = np.zeros((h, w), np.float32)
    ys = np.arange(h, dtype=np.float64) + 0.5
    xs = np.arange(w, dtype=np.float64) + 0.5
    for poly in polygons:
        pts = np.asarray(poly, np.float64)
        inside = np.zeros((h, w), bool)
        for (x0, y0), (x1, y1) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
            if y0 == y1:
                continue
            rows = (ys >= min(y0, y1)) & (ys < max(y0, y1))
            if not rows.any():
                continue
            xc = x0 + (ys[rows] - y0) * (x1 - x0) / (y1 - y0)  # crossing x on each row
            inside[rows] ^= xs[None, :] < xc[:, None]
        out = np.maximum(out, inside.astype(np.float32))
    return out


def _segment_distance_sq(px: np.ndarray, py: np.ndarray, a: Point, b: Point) -> np.ndarray:
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    den = dx * dx + dy * dy
    if den <= 0:
        t = np.zeros_like(px)
    else:
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / den, 0.0, 1.0)
    qx = ax + t * dx - px
    qy = ay + t * dy - py
    return qx * qx + qy * qy


def default_sigma(shape: tuple[int, int], n_arrows: int) -> float:
    """Gaussian width: about half the spacing of ``n_arrows`` arrows spread evenly over the image."""
    h, w = shape
    return 0.5 * math.sqrt(h * w / max(n_arrows, 1))


def dense_from_arrows(arrows: list[Arrow], shape: tuple[int, int], sigma: float | None = None) -> np.ndarray:
    """Normalised Gaussian interpolation of arrow velocities: (H, W, 2) float32, px/frame.

    dense(x) = sum_k g_k(x) v_k / sum_k g_k(x), g_k = exp(-(d_k(x) / sigma)^2), with d_k the distance from
    x to arrow k's segment, so the field equals an arrow's velocity along that arrow. Computed on a grid
    coarser than sigma and resized (the field is smooth at that scale); stable far from all arrows.
    """
    h, w = shape
    if not arrows:
        return np.zeros((h, w, 2), np.float32)
    if len(arrows) > MAX_ARROWS:
        raise InputError(f"{len(arrows)} arrows: Stillflow takes at most {MAX_ARROWS} (a few per moving region "
                         "are enough; for a dense field write it with `stillflow predict` and edit that)")
    if sigma is None:
        sigma = default_sigma(shape, len(arrows))
    step = max(1, int(sigma / 8))
    gh, gw = -(-h // step), -(-w // step)
    py = (np.arange(gh, dtype=np.float64) * step + (step - 1) / 2.0 + 0.5)[:, None] * np.ones((1, gw))
    px = (np.arange(gw, dtype=np.float64) * step + (step - 1) / 2.0 + 0.5)[None, :] * np.ones((gh, 1))
    # Arrows in chunks with a running log-sum-exp, so memory stays at CHUNK grids whatever their number.
    vel = np.asarray([a.velocity for a in arrows], np.float64)  # (K, 2)
    best = np.full((gh, gw), -np.inf)
    num = np.zeros((gh, gw, 2))
    den = np.zeros((gh, gw))
    for k0 in range(0, len(arrows), ARROW_CHUNK):
        chunk = arrows[k0:k0 + ARROW_CHUNK]
        logits = -np.stack([_segment_distance_sq(px, py, a.start, a.end) for a in chunk]) / (sigma * sigma)
        new_best = np.maximum(best, logits.max(axis=0))
        keep = np.exp(best - new_best)
        g = np.exp(logits - new_best)
        num = num * keep[..., None] + np.einsum("kij,kc->ijc", g, vel[k0:k0 + len(chunk)])
        den = den * keep + g.sum(axis=0)
        best = new_best
    coarse = (num / den[..., None]).astype(np.float32)
    if step == 1:
        return coarse[:h, :w]
    return resize_bilinear(coarse, (gh * step, gw * step))[:h, :w].copy()


def mask_from_hints(hints: Hints, shape: tuple[int, int]) -> np.ndarray | None:
    """The motion mask drawn as polygons, or None when no polygon was drawn."""
    if not hints.motion_polygons:
        return None
    return rasterize_polygons(hints.motion_polygons, shape)


def freeze_from_hints(hints: Hints, shape: tuple[int, int]) -> np.ndarray | None:
    """Multiplier in [0, 1]: 0 on freeze points/regions, rising smoothly to 1 around them; None if none."""
    if not (hints.freeze_points or hints.freeze_polygons):
        return None
    h, w = shape
    radius = hints.freeze_radius or 0.02 * math.hypot(h, w)
    mult = np.ones((h, w), np.float32)
    if hints.freeze_points:
        ys = np.arange(h, dtype=np.float32)[:, None] + 0.5
        xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
        for x, y in hints.freeze_points:
            d = np.sqrt((xs - x) ** 2 + (ys - y) ** 2) / radius
            mult = np.minimum(mult, smoothstep(d - 1.0))  # 0 within radius, 1 beyond twice the radius
    if hints.freeze_polygons:
        region = rasterize_polygons(hints.freeze_polygons, shape)
        r = max(1, int(round(radius / 3.0)))
        spread = box_blur(region, r)
        mult = np.minimum(mult, 1.0 - np.clip(2.0 * spread, 0.0, 1.0))
        mult[region > 0.5] = 0.0
    return mult.astype(np.float32)
