"""The "Render Loop" operator: the field image + photo -> loop frames -> files, strip, texture, world.

execute() renders to the end (scripts, headless); invoke() runs the same RenderJob on a window-manager
timer, a bounded slice per tick, with progress; Esc cancels and removes the partial output.
"""

import logging
import math
from pathlib import Path

import bpy

from ..core.errors import StillflowError
from ..core.imageio import check_writable_dir
from ..core.pipeline import Inputs, Pipeline
from ..core.sinks import FramesSink
from . import blender_io, outputs
from .bpy_sinks import Mp4Sink
from .common import get_field_image, get_photo, output_base, reports_errors, safe_stem
from .preferences import get_preferences
from .properties import job_from_scene
from .render_job import RenderJob

log = logging.getLogger(__name__)

TICK_S = 0.05  # timer interval
SLICE_S = 0.15  # work per tick, so the UI stays responsive


def make_job(context) -> tuple[RenderJob, str]:
    """The RenderJob for the scene's settings, and where its output goes, in words."""
    settings = context.scene.stillflow
    photo = get_photo(context)
    rgb, alpha = blender_io.read_photo_alpha(photo)
    field_image = get_field_image(context, photo)
    motion = blender_io.read_field(field_image, rgb.shape[:2])
    job = job_from_scene(settings, get_preferences(context))
    job.motion.source = "field"
    job.motion.field_path = field_image.name
    base, why = output_base(settings)
    check_writable_dir(base)
    stem = safe_stem(photo.name)
    frames = FramesSink(stem, "exr" if job.output.fmt == "exr" else "png")
    if job.output.overwrite and (base / frames.names[0]).exists():
        outputs.check_not_in_use(base / frames.names[0])  # before any work
    lossless = job.output.mp4_quality == "lossless"
    sinks = [frames, Mp4Sink(stem, frames_from=frames, lossless=lossless)] if job.output.fmt == "mp4" else [frames]
    inputs = Inputs(rgb, alpha, field=motion, name=photo.name)
    return RenderJob(Pipeline(job, inputs, sinks, base, stem)), why


def finish_outputs(context, job: RenderJob) -> list[str]:
    """Add what the settings ask for to the scene; returns report lines."""
    settings, scene = context.scene.stillflow, context.scene
    paths = job.frame_paths()
    lines = [f"{len(paths)} frames in {job.outputs[0]}"]
    lines += [f"movie {p.name}" for p in job.outputs[1:]]
    lines += job.pipeline.notes
    targets = settings.outputs
    stem = job.pipeline.stem
    if settings.fit_scene:
        outputs.fit_scene(scene, len(paths), settings.fps)
        lines.append(f"scene range {scene.frame_start}-{scene.frame_end} at {settings.fps:g} fps")
    folder = Path(paths[0]).parent
    # A re-render into the same folder (Overwrite) updates Stillflow's own strips, image, material and
    # world of it instead of adding more.
    if "SEQUENCER" in targets:
        channel, start = outputs.replace_own_strips(scene, folder)
        strips = outputs.add_strip(scene, paths, channel, start)
        outputs.tag_frames(folder, *strips)
        lines.append(f"strip '{strips[0].name}' in channel {strips[0].channel}"
                     + (f", {len(strips)} loops to the scene's end" if len(strips) > 1 else ""))
    if targets & {"MATERIAL", "WORLD"}:
        image = outputs.own_image(folder, len(paths))
        reused = image is not None
        if image is None:
            image = outputs.sequence_image(f"{stem}_loop", paths)
            outputs.tag_frames(folder, image)
        if "MATERIAL" in targets:
            objects = [o for o in context.selected_objects if o.type == "MESH"]
            mat = outputs.material_showing(image) if reused else None
            if not objects and mat is None:  # nothing selected: a new image plane of the photo's aspect
                objects = [outputs.image_plane(context, get_photo(context))]
            if mat is None:
                mat = outputs.add_material(f"{stem}_loop", image, len(paths), scene.frame_current, objects)
            else:
                for obj in objects:
                    if mat.name not in obj.data.materials:
                        outputs.show_material(obj, mat)
            lines.append(f"material '{mat.name}'" + (f" on {', '.join(o.name for o in objects)}" if objects else ""))
        if "WORLD" in targets:
            world = scene.world if outputs.image_nodes(scene.world, image) else outputs.add_world(
                scene, f"{stem}_loop", image, len(paths), scene.frame_current)
            lines.append(f"world '{world.name}'")
    return lines


class STILLFLOW_OT_render_loop(bpy.types.Operator):
    """Render the seamless loop from the photo and its motion field image (Esc cancels)"""

    bl_idname = "stillflow.render_loop"
    bl_label = "Render Loop"
    bl_options = {"REGISTER", "UNDO"}

    _job = None
    _timer = None

    @reports_errors
    def execute(self, context):
        job, why = make_job(context)
        self._warn(job)
        job.start()
        while not job.step(1.0):
            pass
        return self._complete(context, job, why)

    @reports_errors
    def invoke(self, context, event):
        if context.window_manager.stillflow.running:
            self.report({"ERROR"}, "A loop is already rendering: wait for it or press Esc")
            return {"CANCELLED"}
        job, self._why = make_job(context)
        self._warn(job)
        job.start()
        self._job = job
        wm = context.window_manager
        self._timer = wm.event_timer_add(TICK_S, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, job.total)
        wm.stillflow.running = True
        self._show(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC":
            self._finish(context, cancelled=True)
            self.report({"WARNING"}, "Render Loop cancelled; partial frames removed")
            return {"CANCELLED"}
        if event.type != "TIMER":  # (any timer: Event has no attribute telling which one)
            return {"PASS_THROUGH"}
        try:
            done = self._job.step(SLICE_S)
        except StillflowError as err:
            self._finish(context, cancelled=True)
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        self._show(context)
        if not done:
            return {"RUNNING_MODAL"}
        try:
            return self._complete(context, self._job, self._why)
        except StillflowError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        finally:
            self._finish(context, cancelled=False)

    def cancel(self, context):
        """Called by Blender when the modal run is aborted (window closed, file loaded)."""
        self._finish(context, cancelled=True)

    def _warn(self, job):
        for warning in job.warnings():
            self.report({"WARNING"}, warning)

    def _show(self, context):
        job, wm = self._job, context.window_manager
        wm.progress_update(job.done)
        wm.stillflow.progress = job.done / job.total
        left = job.seconds_left()
        left_text = f", about {left:.0f} s left" if math.isfinite(left) else ""
        text = f"Stillflow: frame {job.done}/{job.total}{left_text} (Esc cancels)"
        wm.stillflow.status = text
        if context.workspace:
            context.workspace.status_text_set(text)

    def _complete(self, context, job, why):
        lines = finish_outputs(context, job)
        status = context.window_manager.stillflow
        status.last_run_seconds = job.elapsed()
        status.status = f"Rendered {job.total} frames in {job.elapsed():.1f} s"
        worst = max(job.hole_fractions, default=0.0)
        self.report({"INFO"}, "; ".join(lines) + f" ({why}; worst hole fraction {worst:.3f})")
        return {"FINISHED"}

    def _finish(self, context, cancelled: bool):
        """The one cleanup: timer, progress, status text and (when cancelled) the partial frames."""
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
            wm.progress_end()
        if self._job is not None and cancelled:
            self._job.cancel()
        self._job = None
        wm.stillflow.running = False
        wm.stillflow.progress = 0.0
        if cancelled:
            wm.stillflow.status = "Cancelled"
        if context.workspace:
            context.workspace.status_text_set(None)


classes = (STILLFLOW_OT_render_loop,)
register, unregister = bpy.utils.register_classes_factory(classes)
