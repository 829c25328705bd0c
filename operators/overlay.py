"""A readable field over the photo in the Image Editor: the motion as arrows (white), the hint arrows with
heads and their speed (yellow), freeze shapes outlined (cyan). Two draw handlers (lines in POST_VIEW, the
image's 0-1 space; the speeds as text in POST_PIXEL), added
by *Show Motion* and removed by it again or on unregister; the geometry comes from core.glyphs and is
made again only when the field image, the hints or the photo change (never on every redraw)."""

from __future__ import annotations

import bpy
import numpy as np

from ..core.glyphs import arrow_segments, field_arrows
from . import blender_io, mask_hints
from .common import get_photo, reports_errors

FIELD_COLOUR = (1.0, 1.0, 1.0, 0.85)
HINT_COLOUR = (1.0, 0.85, 0.1, 1.0)
FREEZE_COLOUR = (0.2, 0.9, 1.0, 1.0)


class _Overlay:
    handle = None
    text_handle = None
    labels: list = []  # [((u, v) in 0-1 image space, text)]: each hint arrow's speed
    key = None
    lines: list = []  # [(colour, (K, 2) float32 points in 0-1 image space, pairs)]
    batches: list | None = None  # the GPU batches of `lines`, made in the first draw after they change
    scale = 0.0  # photo pixels of arrow per px/frame of motion


OVERLAY = _Overlay()


def _normalised(segments: np.ndarray, w: int, h: int) -> np.ndarray:
    pts = segments.reshape(-1, 2).astype(np.float32).copy()
    pts[:, 0] /= w
    pts[:, 1] = 1.0 - pts[:, 1] / h
    return pts


def build(context) -> None:
    """The overlay's lines for the scene's photo, field and hints (photo pixels -> 0-1 image space)."""
    settings = context.scene.stillflow
    photo = get_photo(context)
    w, h = photo.size
    lines = []
    field_img = settings.field_image
    if field_img is not None and tuple(field_img.size) == (w, h):
        segs, OVERLAY.scale = field_arrows(blender_io.read_field(field_img), step=max(8, max(w, h) // 40))
        lines.append((FIELD_COLOUR, _normalised(segs, w, h)))
    if settings.hints is not None:
        hints = mask_hints.hints_from_mask(settings.hints, w, h)
        labels = []
        if hints.arrows:
            starts = np.array([a.start for a in hints.arrows], np.float32)
            ends = np.array([a.end for a in hints.arrows], np.float32)
            lines.append((HINT_COLOUR, _normalised(arrow_segments(starts, ends, head=0.2), w, h)))
            for a in hints.arrows:
                speed = float(np.hypot(*a.velocity))
                mid = ((a.start[0] + a.end[0]) / 2 / w, 1.0 - (a.start[1] + a.end[1]) / 2 / h)
                labels.append((mid, f"{speed:.2f} px/f"))
        OVERLAY.labels = labels
        for poly in hints.freeze_polygons:
            p = np.asarray(poly, np.float32)
            lines.append((FREEZE_COLOUR, _normalised(np.stack([p, np.roll(p, -1, 0)], 1), w, h)))
    OVERLAY.lines = lines
    if settings.hints is None:
        OVERLAY.labels = []


def _key(context):
    settings = context.scene.stillflow
    try:
        photo = get_photo(context)
    except Exception:
        return None
    f = settings.field_image
    return (photo.name, f.name if f else "", f.is_dirty if f else False, mask_hints.hints_signature(settings.hints))


def draw() -> None:
    """The draw callback: lines only (built outside), so a redraw costs what the GPU does."""
    context = bpy.context
    key = _key(context)
    if key is None:
        return
    if key != OVERLAY.key:
        OVERLAY.key, OVERLAY.batches = key, None
        try:
            build(context)
        except Exception:  # an overlay must never break drawing
            OVERLAY.lines = []
    import gpu
    from gpu_extras.batch import batch_for_shader

    shader = gpu.shader.from_builtin("UNIFORM_COLOR")
    if OVERLAY.batches is None:
        OVERLAY.batches = [(colour, batch_for_shader(shader, "LINES", {"pos": [tuple(p) for p in pts]}))
                           for colour, pts in OVERLAY.lines if len(pts)]
    gpu.state.blend_set("ALPHA")
    for colour, batch in OVERLAY.batches:
        shader.uniform_float("color", colour)
        batch.draw(shader)
    gpu.state.blend_set("NONE")


def draw_text() -> None:
    """Each hint arrow's speed beside it (screen space: the 0-1 image point mapped through the view)."""
    import blf

    region = bpy.context.region
    if region is None or not OVERLAY.labels:
        return
    blf.size(0, 12)
    blf.color(0, *HINT_COLOUR)
    for (u, v), text in OVERLAY.labels:
        x, y = region.view2d.view_to_region(u, v, clip=False)
        blf.position(0, x + 6, y + 6, 0)
        blf.draw(0, text)


def show() -> None:
    if OVERLAY.handle is None:
        OVERLAY.handle = bpy.types.SpaceImageEditor.draw_handler_add(draw, (), "WINDOW", "POST_VIEW")
        OVERLAY.text_handle = bpy.types.SpaceImageEditor.draw_handler_add(draw_text, (), "WINDOW", "POST_PIXEL")
        OVERLAY.key = OVERLAY.batches = None


def hide() -> None:
    if OVERLAY.handle is not None:
        bpy.types.SpaceImageEditor.draw_handler_remove(OVERLAY.handle, "WINDOW")
        bpy.types.SpaceImageEditor.draw_handler_remove(OVERLAY.text_handle, "WINDOW")
        OVERLAY.handle = OVERLAY.text_handle = None


def _redraw(context) -> None:
    for window in getattr(context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.tag_redraw()


class STILLFLOW_OT_show_motion(bpy.types.Operator):
    """Draw the motion over the photo in the Image Editor: the field as arrows (white, the fastest one
    grid step long), the hint arrows with heads (yellow), freeze shapes (cyan)"""

    bl_idname = "stillflow.show_motion"
    bl_label = "Show Motion"

    @reports_errors
    def execute(self, context):
        if OVERLAY.handle is None:
            get_photo(context)
            show()
            self.report({"INFO"}, "Motion drawn over the photo in the Image Editor")
        else:
            hide()
        _redraw(context)
        return {"FINISHED"}


classes = (STILLFLOW_OT_show_motion,)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register():
    _register()


def unregister():
    hide()
    _unregister()
