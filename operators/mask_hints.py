"""Hints as Blender data: a Mask datablock drawn over the photo in the Image Editor's Mask mode.

Layers (names compared case-insensitively):
- "arrows": open splines; first point = arrow start, last point = arrow end.
- "motion": closed splines (3+ points) = motion-mask polygons.
- "freeze": closed splines (3+ points) = frozen regions; 1- or 2-point splines = anchor points.
- "freeze (holes)": like "freeze"; Region from Motion and Snap to Edges keep the still holes of the region
  they write here (a boat in a lake), and replace them when run again.
Bezier handles are ignored: the control points are the polygon.

An arrow means "this point moves from start to end in N frames": velocity = (end - start) / N. N travels
with the arrow's own spline (splines carry no custom data, so it is written into its first point's
`weight`, unused on an open spline: weight = 1 - N / 10000; 1, a newly drawn point's weight, means 50
frames, and so does 0, a point made from Python), so deleting or reordering arrows keeps each one's speed. The panel shows and edits the active
arrow's N (`arrow_frames`, on the scene's settings). Masks made before keep a list in the custom property
"stillflow_arrow_frames", read for the arrows whose weight says nothing. The custom property
"stillflow_freeze_radius" (photo pixels) keeps a file's freeze radius, shown in the panel too.

Coordinates: Blender stores mask points in the Image Editor in a square frame with y up: x in 0..1 across
the image width, and for a wide image y = 0.5 + (v - 0.5) * height / width where v is 0..1 up the image
(`BKE_mask_coord_from_frame`); tall images are the same with x and y swapped. Core's hints are pixels,
x right, y down (row 0 top), continuous (pixel i spans [i, i + 1)).

Annotation strokes drawn in the Image Editor are stored normalised to the image (0..1, y up, no aspect
correction); their first and last points are read as arrows.
"""

from __future__ import annotations

import hashlib

import bpy

from ..core.hints import DEFAULT_ARROW_FRAMES, Arrow, Hints

ARROWS, MOTION, FREEZE, HOLES = "arrows", "motion", "freeze", "freeze (holes)"
FRAMES_KEY = "stillflow_arrow_frames"  # the list of earlier versions (by spline index)
RADIUS_KEY = "stillflow_freeze_radius"
WEIGHT_SCALE = 10000.0  # frames <-> first point's weight: weight = 1 - frames / WEIGHT_SCALE
MAX_ARROW_FRAMES = WEIGHT_SCALE - 1.0


def spline_frames(spline) -> float | None:
    """The arrow's frames kept in its first point's weight; None for a spline drawn by hand (a new point's
    weight is 1 in the editor, 0 from Python: neither is a stored value)."""
    if not len(spline.points):
        return None
    w = float(spline.points[0].weight)
    if w >= 1.0 - 0.5 / WEIGHT_SCALE or w <= 0.5 / WEIGHT_SCALE:
        return None
    return round((1.0 - w) * WEIGHT_SCALE, 3)


def hints_signature(mask) -> str:
    """A cheap fingerprint of the hints as drawn in ``mask`` (every layer's spline points and each arrow's
    frames), to tell an edit from a redraw; "" for no mask."""
    if mask is None:
        return ""
    parts = []
    for layer in mask.layers:
        parts.append(layer.name)
        for spline in layer.splines:
            parts.append(str(spline_frames(spline)))
            parts.extend(f"{p.co[0]:.5f},{p.co[1]:.5f}" for p in spline.points)
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def active_arrow(mask):
    """The active spline of ``mask``'s arrows layer when it is an arrow (open, 2+ points), else None."""
    if mask is None:
        return None
    layers = _layers(mask, ARROWS)
    spline = layers[0].splines.active if layers else None
    return spline if spline is not None and len(spline.points) >= 2 and not spline.use_cyclic else None


def set_spline_frames(spline, frames: float) -> None:
    frames = min(max(float(frames), 1.0), MAX_ARROW_FRAMES)
    spline.points[0].weight = 1.0 - frames / WEIGHT_SCALE


def mask_to_pixel(co, width: int, height: int) -> tuple[float, float]:
    x, y = float(co[0]), float(co[1])
    if width > height:
        y = 0.5 + (y - 0.5) * width / height
    elif height > width:
        x = 0.5 + (x - 0.5) * height / width
    return (x * width, (1.0 - y) * height)


def pixel_to_mask(pt, width: int, height: int) -> tuple[float, float]:
    x, y = pt[0] / width, 1.0 - pt[1] / height
    if width > height:
        y = 0.5 + (y - 0.5) * height / width
    elif height > width:
        x = 0.5 + (x - 0.5) * width / height
    return (x, y)


def _layers(mask, name: str):
    return [layer for layer in mask.layers if layer.name.strip().lower() == name]


def hints_from_mask(mask, width: int, height: int) -> Hints:
    """Read the hints drawn in `mask` for a (width, height) photo."""
    frames = list(mask.get(FRAMES_KEY, ()))
    hints = Hints(image_size=(width, height), freeze_radius=mask.get(RADIUS_KEY))

    def points(spline):
        return [mask_to_pixel(p.co, width, height) for p in spline.points]

    for layer_index, layer in enumerate(_layers(mask, ARROWS)):
        for i, spline in enumerate(layer.splines):
            pts = points(spline)
            n = spline_frames(spline)
            if n is None:  # drawn by hand, or a mask of an earlier version (its list, by index)
                n = frames[i] if layer_index == 0 and i < len(frames) and frames[i] > 0 else DEFAULT_ARROW_FRAMES
            if len(pts) >= 2 and not spline.use_cyclic:
                hints.arrows.append(Arrow(pts[0], pts[-1], float(n)))
    for layer in _layers(mask, MOTION):
        for spline in layer.splines:
            pts = points(spline)
            if len(pts) >= 3:
                hints.motion_polygons.append(pts)
    for layer in _layers(mask, FREEZE) + _layers(mask, HOLES):
        for spline in layer.splines:
            pts = points(spline)
            if len(pts) >= 3 and spline.use_cyclic:
                hints.freeze_polygons.append(pts)
            else:
                hints.freeze_points.extend(pts)
    return hints


def _spline(layer, pts, width, height, cyclic: bool):
    spline = layer.splines.new()  # starts with one point
    spline.points.add(len(pts) - 1)
    for point, pt in zip(spline.points, pts, strict=True):
        point.co = pixel_to_mask(pt, width, height)
        point.handle_type = "VECTOR"  # straight edges, as drawn in the file
    spline.use_cyclic = cyclic
    return spline


def _layer(mask, name: str):
    found = _layers(mask, name)
    return found[0] if found else mask.layers.new(name=name)


def fill_mask(mask, hints: Hints, width: int, height: int) -> None:
    """Add `hints` (scaled to a (width, height) photo) to `mask`'s layers."""
    hints = hints.for_size(width, height)
    arrows, motion, freeze = (_layer(mask, n) for n in (ARROWS, MOTION, FREEZE))
    legacy = list(mask.get(FRAMES_KEY, ()))
    for i, spline in enumerate(arrows.splines):  # an earlier version's list moves onto the splines
        if spline_frames(spline) is None and i < len(legacy) and legacy[i] > 0 and len(spline.points):
            set_spline_frames(spline, legacy[i])
    if FRAMES_KEY in mask:
        del mask[FRAMES_KEY]
    if hints.freeze_radius is not None:
        mask[RADIUS_KEY] = float(hints.freeze_radius)
    for arrow in hints.arrows:
        spline = _spline(arrows, [arrow.start, arrow.end], width, height, cyclic=False)
        set_spline_frames(spline, arrow.frames)
    for poly in hints.motion_polygons:
        _spline(motion, poly, width, height, cyclic=True)
    for poly in hints.freeze_polygons:
        _spline(freeze, poly, width, height, cyclic=True)
    for pt in hints.freeze_points:
        _spline(freeze, [pt], width, height, cyclic=False)
    mask.layers.active = arrows


def region_splines(mask, selected_only: bool = False) -> list:
    """The closed splines (3+ points) of the motion layers; with ``selected_only``, those with a selected
    point."""
    return [sp for layer in _layers(mask, MOTION) for sp in layer.splines
            if sp.use_cyclic and len(sp.points) >= 3
            and (not selected_only or any(p.select for p in sp.points))]


def spline_polygon(spline, width: int, height: int) -> list:
    return [mask_to_pixel(p.co, width, height) for p in spline.points]


def write_region(mask, region: Hints, width: int, height: int, replace: list | None = None) -> None:
    """Put ``region``'s motion polygons in the motion layer and its freeze polygons (the region's holes) in
    the "freeze (holes)" layer. ``replace``: the motion splines it takes the place of (default: all of them,
    and every earlier hole)."""
    motion = _layer(mask, MOTION)
    holes = _layer(mask, HOLES)
    for layer in _layers(mask, MOTION) + ([holes] if replace is None else []):
        for spline in [sp for sp in layer.splines if replace is None or any(sp == r for r in replace)]:
            layer.splines.remove(spline)
    region = region.for_size(width, height)
    for poly in region.motion_polygons:
        _spline(motion, poly, width, height, cyclic=True)
    for poly in region.freeze_polygons:
        _spline(holes, poly, width, height, cyclic=True)
    mask.layers.active = motion


def new_hints_mask(name: str, hints: Hints | None, width: int, height: int):
    """A new Mask datablock with the three hint layers (filled from `hints` when given)."""
    mask = bpy.data.masks.new(name)
    for layer_name in (MOTION, FREEZE, ARROWS):
        mask.layers.new(name=layer_name)
    if hints is not None:
        fill_mask(mask, hints, width, height)
    mask.use_fake_user = True
    return mask


def arrows_from_annotation(
    annotation, width: int, height: int, frames: float = DEFAULT_ARROW_FRAMES
) -> list[Arrow]:
    """Arrows from annotation strokes (first point -> last point of each stroke, active frame of each layer)."""
    arrows = []
    if annotation is None:
        return arrows
    for layer in annotation.layers:
        frame = layer.active_frame or (layer.frames[0] if len(layer.frames) else None)
        if frame is None or layer.annotation_hide:
            continue
        for stroke in frame.strokes:
            if len(stroke.points) < 2:
                continue
            (x0, y0), (x1, y1) = stroke.points[0].co[:2], stroke.points[-1].co[:2]
            if (x0, y0) == (x1, y1):
                continue
            arrows.append(Arrow((x0 * width, (1 - y0) * height), (x1 * width, (1 - y1) * height), frames))
    return arrows


def gather_hints(context, width: int, height: int) -> Hints | None:
    """All hints for the photo: the panel's hints Mask plus annotation arrows in the Image Editor."""
    settings = context.scene.stillflow
    hints = (
        hints_from_mask(settings.hints, width, height)
        if settings.hints
        else Hints(image_size=(width, height))
    )
    space = getattr(context, "space_data", None)
    if space is not None and space.type == "IMAGE_EDITOR":
        hints.arrows.extend(arrows_from_annotation(space.annotation, width, height))
    return None if hints.is_empty() else hints
