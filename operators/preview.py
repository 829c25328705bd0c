"""Live preview: a small loop (480 px, 30 frames) made again whenever the hints, the mask or the loop
settings change, off the main thread, shown in the image "Stillflow Preview" and played with the timeline.

- A timer (`tick`, every TICK_S) reads what the preview depends on (cheap: the hints Mask's splines, the
  mask image's and field image's names, the motion source, speed); when that changed, it gathers the
  inputs (on the main thread: Blender data is read there only) and starts a worker thread that predicts
  the motion at the preview size (the hints; or the field image, resized) and renders the loop with the
  fast "splat" renderer. A newer edit supersedes a running worker: it stops at its next frame.
- When a worker is done, the next tick hands its frames over; a frame-change handler shows frame
  (frame - start) mod 30 of it in the preview image, so scrubbing or playing the timeline plays the motion.
- Painting the field image is not watched (reading a big float image on every tick would stall the
  interface): *Refresh* in the panel remakes the preview, and the flow material (sub-panel Real Time) shows
  a painted field in EEVEE at once.
"""

from __future__ import annotations

import logging
import threading
import time

import bpy
import numpy as np

from ..core.errors import StillflowError
from ..core.field import image_to_blender_rgba, resize_bilinear, resize_field
from ..core.imageio import srgb_to_linear
from ..core.job import LoopSpec
from ..core.pipeline import Inputs, motion_for
from ..core.render import render_loop
from . import blender_io, mask_hints
from .common import get_field_image, get_photo, reports_errors
from .preferences import get_preferences
from .properties import job_from_scene

log = logging.getLogger(__name__)

PREVIEW_IMAGE = "Stillflow Preview"
SIZE = 480
FRAMES = 30
TICK_S = 0.25


class _State:
    def __init__(self):
        self.on = False
        self.key: str | None = None
        self.generation = 0
        self.worker: threading.Thread | None = None
        self.result: tuple[int, list[np.ndarray]] | None = None  # (generation, frames) from the worker
        self.error: str = ""
        self.frames: list[np.ndarray] = []  # RGBA float32, bottom row first: what the image shows
        self.size = (0, 0)
        self.edited_at = 0.0
        self.ready_seconds = 0.0  # edit -> frames shown, for the last edit
        self.photo_cache: tuple | None = None


STATE = _State()


def _edit_signature(settings) -> str:
    """What the preview depends on besides the photo: the hints as drawn and the settings that shape it."""
    parts = [settings.motion_source, f"{settings.speed:.6g}", f"{settings.feather_px:.6g}", str(settings.sky),
             settings.mask_image.name if settings.mask_image else "",
             settings.field_image.name if settings.field_image else "", mask_hints.hints_signature(settings.hints)]
    return "|".join(parts)


def edit_key(context) -> str | None:
    settings = context.scene.stillflow
    try:
        photo = get_photo(context)
    except StillflowError:
        return None
    return f"{photo.name}:{tuple(photo.size)}:{_edit_signature(settings)}"


def _small_photo(photo) -> np.ndarray:
    key = (photo.name, tuple(photo.size), photo.is_dirty)
    if STATE.photo_cache and STATE.photo_cache[0] == key:
        return STATE.photo_cache[1]
    rgb = blender_io.read_photo(photo)
    h, w = rgb.shape[:2]
    scale = min(1.0, SIZE / max(h, w))
    small = resize_bilinear(rgb, (max(2, round(h * scale)), max(2, round(w * scale)))) if scale < 1 else rgb
    STATE.photo_cache = (key, small)
    return small


def gather(context):
    """(Inputs at the preview size, the job) from the scene: on the main thread."""
    settings = context.scene.stillflow
    photo = get_photo(context)
    rgb = _small_photo(photo)
    h, w = rgb.shape[:2]
    job = job_from_scene(settings, get_preferences(context))
    job.loop = LoopSpec(frames=FRAMES, fps=settings.fps, speed=settings.speed, renderer="splat")
    if settings.motion_source == "FIELD":
        return _field_inputs(rgb, get_field_image(context, photo), job, photo.name)
    hints = mask_hints.gather_hints(context, *photo.size)
    if hints is not None:
        hints = hints.for_size(w, h)
    mask = blender_io.read_gray(settings.mask_image, (h, w)) if settings.mask_image else None
    if hints is None and mask is None and settings.field_image is not None:  # nothing drawn: the field
        return _field_inputs(rgb, settings.field_image, job, photo.name)
    return Inputs(rgb, None, hints, mask, name=photo.name), job


def _field_inputs(rgb: np.ndarray, image, job, name: str):
    """(Inputs, job) animating the field image, resized to the preview photo."""
    job.motion.source = "field"
    return Inputs(rgb, None, field=resize_field(blender_io.read_field(image), rgb.shape[:2]), name=name), job


def _work(generation: int, inputs: Inputs, job) -> None:
    try:
        motion = motion_for(inputs, job)
        frames = []
        for fr in render_loop(inputs.rgb, motion.field, job.loop, device="cpu"):
            if STATE.generation != generation:
                return  # superseded by a newer edit
            frames.append(fr.rgb)
        STATE.result = (generation, frames)
    except Exception as err:  # shown in the panel, never a traceback
        STATE.error = str(err)
        log.debug("preview failed", exc_info=True)


def _to_rgba(rgb: np.ndarray) -> np.ndarray:
    """A frame as the preview image's pixels: scene-linear (a float image holds those), bottom row first."""
    return image_to_blender_rgba(srgb_to_linear(np.clip(rgb, 0.0, 1.0)))


def tick(context=None) -> float:
    """The timer's body: start a worker after an edit, hand a finished one's frames over."""
    context = context or bpy.context
    if not STATE.on:
        return None
    key = edit_key(context)
    if key is not None and key != STATE.key:
        try:
            inputs, job = gather(context)
        except StillflowError as err:
            STATE.error, STATE.key = str(err), key
            return TICK_S
        STATE.key, STATE.error = key, ""
        STATE.generation += 1
        STATE.edited_at = time.perf_counter()
        STATE.worker = threading.Thread(target=_work, args=(STATE.generation, inputs, job),
                                        name="stillflow-preview", daemon=True)
        STATE.worker.start()
    result = STATE.result
    if result is not None and result[0] == STATE.generation:
        STATE.result = None
        frames = result[1]
        STATE.size = (frames[0].shape[1], frames[0].shape[0])
        STATE.frames = [_to_rgba(f) for f in frames]
        STATE.ready_seconds = time.perf_counter() - STATE.edited_at
        show_frame(context.scene)
    return TICK_S


def preview_image():
    w, h = STATE.size
    image = bpy.data.images.get(PREVIEW_IMAGE)
    if image is None or tuple(image.size) != (w, h) or not image.is_float:
        if image is not None:
            bpy.data.images.remove(image)
        image = bpy.data.images.new(PREVIEW_IMAGE, w, h, alpha=True, float_buffer=True)
    return image


def show_frame(scene) -> None:
    if not STATE.frames:
        return
    t = (scene.frame_current - scene.frame_start) % len(STATE.frames)
    image = preview_image()
    image.pixels.foreach_set(STATE.frames[t])
    image.update()


@bpy.app.handlers.persistent
def _on_frame(scene, *_args):
    if STATE.on:
        show_frame(scene)


def start(context) -> None:
    STATE.on, STATE.key = True, None
    if _on_frame not in bpy.app.handlers.frame_change_post:
        bpy.app.handlers.frame_change_post.append(_on_frame)
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=0.0, persistent=True)  # kept when a file is opened


def stop() -> None:
    STATE.on = False
    STATE.generation += 1  # a running worker stops at its next frame
    if _on_frame in bpy.app.handlers.frame_change_post:
        bpy.app.handlers.frame_change_post.remove(_on_frame)
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    STATE.frames, STATE.key, STATE.result = [], None, None


class STILLFLOW_OT_live_preview(bpy.types.Operator):
    """Play a small loop (480 px, 30 frames) in the image "Stillflow Preview", made again a moment after
    every edit of the hints, the mask or the loop settings (off the main thread)"""

    bl_idname = "stillflow.live_preview"
    bl_label = "Live Preview"

    action: bpy.props.EnumProperty(
        items=(("TOGGLE", "Toggle", "Start or stop the preview"), ("REFRESH", "Refresh", "Make it again now")),
        default="TOGGLE", options={"SKIP_SAVE"})

    @reports_errors
    def execute(self, context):
        if self.action == "REFRESH":
            if not STATE.on:
                start(context)
            STATE.key = None
            return {"FINISHED"}
        if STATE.on:
            stop()
            self.report({"INFO"}, "Live preview stopped")
        else:
            get_photo(context)  # one clear line when there is no photo
            start(context)
            self.report({"INFO"}, f"Live preview in the image '{PREVIEW_IMAGE}': play or scrub the timeline")
        return {"FINISHED"}


classes = (STILLFLOW_OT_live_preview,)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register():
    _register()


def unregister():
    stop()
    _unregister()
