"""Operators for the motion field: predict it into a float image, and move it to and from a grid mesh."""

import hashlib
import threading
import time
from dataclasses import dataclass

import bpy
from bpy.props import BoolProperty

from ..core.errors import InputError, StillflowError
from ..core.job import Job
from ..core.pipeline import Inputs, Motion, motion_for
from . import blender_io, field_mesh, mask_hints
from .common import get_field_image, get_photo, reports_errors, unique_datablock_name
from .preferences import get_preferences
from .properties import job_from_scene


@dataclass
class PredictJob:
    """The photo's inputs and the one job description, gathered from the scene for the pipeline's motion
    step (`core.pipeline.motion_for`)."""

    inputs: Inputs
    job: Job

    @classmethod
    def from_context(cls, context, photo) -> "PredictJob":
        settings = context.scene.stillflow
        if settings.motion_source == "FIELD":
            raise InputError(
                "Motion source is 'Field Image', which is used as it is: choose Model or Hints to predict"
            )
        rgb, alpha = blender_io.read_photo_alpha(photo)
        h, w = rgb.shape[:2]
        hints = mask_hints.gather_hints(context, w, h)
        if settings.motion_source == "MODEL" and hints is not None:
            hints.arrows = []  # masks and freeze regions still apply
        mask = blender_io.read_gray(settings.mask_image, (h, w)) if settings.mask_image else None
        inputs = Inputs(rgb, alpha, hints, mask, name=photo.name)
        return cls(inputs, job_from_scene(settings, get_preferences(context)))

    def key(self) -> str:
        digest = hashlib.sha1(self.inputs.rgb.tobytes())
        for extra in (self.inputs.alpha, self.inputs.mask):
            if extra is not None:
                digest.update(extra.tobytes())
        digest.update(repr((self.inputs.hints, self.job.motion, self.job.device)).encode())
        return digest.hexdigest()

    def run(self) -> Motion:
        """The pipeline's motion step, cached for the same inputs (a redo-panel tweak must not rerun it)."""
        key = self.key()
        if _last_result and _last_result[0] == key:
            return _last_result[1]
        result = motion_for(self.inputs, self.job)
        _last_result[:] = [key, result]
        return result


_last_result: list = []  # [key, Motion] of the last prediction


class PredictRun:
    """A PredictJob on a worker thread (the model and numpy release the GIL), so the interface keeps
    running: the operator's timer polls `done`; a cancelled run's result is dropped, nothing is written."""

    def __init__(self, job: PredictJob):
        self.job = job
        self.result: Motion | None = None
        self.error: BaseException | None = None
        self.started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="stillflow-predict", daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.job.run()
        except BaseException as err:  # reported on the main thread
            self.error = err

    def start(self) -> "PredictRun":
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


TICK_S = 0.1


class STILLFLOW_OT_predict_motion(bpy.types.Operator):
    """Predict the photo's motion field into the float image "<photo>_motion" (R = dx, G = dy up, px/frame).
    From the panel it runs in the background: the interface stays live, Esc cancels"""

    bl_idname = "stillflow.predict_motion"
    bl_label = "Predict Motion"
    bl_options = {"REGISTER", "UNDO"}

    overwrite: BoolProperty(
        name="Overwrite",
        default=False,
        description='Replace the pixels of an existing "<photo>_motion" image (off: make a new image)',
    )

    _run = None
    _timer = None

    @reports_errors
    def execute(self, context):
        photo = get_photo(context)
        return self._write(context, photo, PredictJob.from_context(context, photo).run())

    @reports_errors
    def invoke(self, context, event):
        status = context.window_manager.stillflow
        if status.running:
            raise InputError("Stillflow is busy: wait for it or press Esc")
        photo = get_photo(context)
        self._photo_name = photo.name
        self._run = PredictRun(PredictJob.from_context(context, photo)).start()  # read on the main thread
        wm = context.window_manager
        self._timer = wm.event_timer_add(TICK_S, window=context.window)
        wm.modal_handler_add(self)
        status.running = True
        self._show(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC":
            self._finish(context, "Predict Motion cancelled")
            self.report({"WARNING"}, "Predict Motion cancelled; nothing was written")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if not self._run.done:
            self._show(context)
            return {"PASS_THROUGH"}
        run = self._run
        self._finish(context, "")
        if run.error is not None:
            err = run.error
            self.report({"ERROR"}, str(err) if isinstance(err, StillflowError) else f"{type(err).__name__}: {err}")
            return {"CANCELLED"}
        photo = bpy.data.images.get(self._photo_name)
        if photo is None:
            self.report({"ERROR"}, f"The photo '{self._photo_name}' is gone")
            return {"CANCELLED"}
        result = self._write(context, photo, run.result)
        context.window_manager.stillflow.status = f"Predicted in {run.elapsed():.1f} s"
        return result

    def _show(self, context):
        text = f"Stillflow: predicting motion, {self._run.elapsed():.0f} s (Esc cancels)"
        context.window_manager.stillflow.status = text
        if context.workspace:
            context.workspace.status_text_set(text)

    def _finish(self, context, status: str):
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.stillflow.running = False
        wm.stillflow.status = status
        if context.workspace:
            context.workspace.status_text_set(None)

    def _write(self, context, photo, result: Motion):
        h, w = result.field.shape[:2]
        name = blender_io.field_name(photo.name)
        image = bpy.data.images.get(name) if self.overwrite else None
        if image is None:
            image = blender_io.new_float_image(unique_datablock_name(bpy.data.images, name), w, h)
        blender_io.write_field(image, result.field.copy())
        context.scene.stillflow.field_image = image
        context.window_manager.stillflow.device = result.provider or "CPU"
        for note in result.notes:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, f"Motion from {result.source_used} in '{image.name}' ({w}x{h})")
        return {"FINISHED"}


class STILLFLOW_OT_field_to_mesh(bpy.types.Operator):
    """Make a grid mesh whose point attribute "motion" holds the field (edit it with Geometry Nodes)"""

    bl_idname = "stillflow.field_to_mesh"
    bl_label = "Field to Mesh"
    bl_options = {"REGISTER", "UNDO"}

    @reports_errors
    def execute(self, context):
        photo = get_photo(context)
        field_img = get_field_image(context, photo)
        grid_field = blender_io.read_field(field_img)
        name = unique_datablock_name(bpy.data.objects, f"{field_img.name}_grid")
        mesh, info = field_mesh.new_field_mesh(name, grid_field, context.scene.stillflow.mesh_step)
        obj = bpy.data.objects.new(name, mesh)
        obj[field_mesh.GRID_KEY] = info
        obj["stillflow_field_image"] = field_img.name
        context.collection.objects.link(obj)
        self.report(
            {"INFO"}, f"Mesh '{obj.name}': {info[0]}x{info[1]} points, attribute '{field_mesh.ATTRIBUTE}'"
        )
        return {"FINISHED"}


class STILLFLOW_OT_field_from_mesh(bpy.types.Operator):
    """Write the active grid mesh's "motion" attribute (after its modifiers) back into its field image"""

    bl_idname = "stillflow.field_from_mesh"
    bl_label = "Mesh to Field"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if obj is None or field_mesh.GRID_KEY not in obj:
            cls.poll_message_set("Select a grid mesh made with Field to Mesh")
            return False
        return True

    @reports_errors
    def execute(self, context):
        obj = context.active_object
        image = bpy.data.images.get(obj.get("stillflow_field_image", ""))
        if image is None:
            raise InputError(f"The field image of '{obj.name}' is gone: predict the motion again")
        base = blender_io.read_field(image) if image.channels == 4 and image.has_data else None
        new_field, (w, h) = field_mesh.read_field_mesh(obj, context.evaluated_depsgraph_get(), base=base)
        blender_io.write_field(image, new_field)
        self.report({"INFO"}, f"Wrote the mesh's motion into '{image.name}'")
        return {"FINISHED"}


classes = (STILLFLOW_OT_predict_motion, STILLFLOW_OT_field_to_mesh, STILLFLOW_OT_field_from_mesh)
register, unregister = bpy.utils.register_classes_factory(classes)
