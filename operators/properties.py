"""Stillflow's settings: one PropertyGroup on the Scene (saved in the .blend) and one on the WindowManager
for run status and progress (never saved)."""

import re

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..core.hints import DEFAULT_ARROW_FRAMES
from ..core.job import PARAMS, Job, LoopSpec, MotionSpec, OutputSpec
from . import mask_hints

MOTION_SOURCES = (
    ("AUTO", "Automatic", "The model, guided by the hint arrows when there are any (the arrows alone when the "
     "model cannot run)"),
    ("MODEL", "Model", "Predict the motion with the bundled motion model"),
    ("HINTS", "Hints", "Build the motion from the arrows and masks of the hints Mask only"),
    ("BOTH", "Model + Hints", "Predict with the model, guided by the hints Mask"),
    ("FIELD", "Field Image", "Use an existing motion field image as it is"),
)

# The Blender enum's items (kept for saved files) and the core motion source each one runs.
MOTION_SOURCE_TO_CORE = {"AUTO": "auto", "MODEL": "model", "HINTS": "hints", "BOTH": "model", "FIELD": "field"}

OUTPUT_TARGETS = (
    ("SEQUENCER", "Sequencer", "Add the loop as an image strip at the current frame"),
    ("MATERIAL", "Material", "Add the loop as an animated texture in a new material on the selected objects"),
    ("WORLD", "World", "Use the loop as the world background"),
)

RENDERERS = (
    ("SHARP", "Sharp", "Every frame keeps the photo's detail; regions cross from one stream to the other at "
     "their own moments (no double images everywhere at once). About twice the time of Fast"),
    ("SPLAT", "Fast", "The photo's colours splatted directly: faster, softer mid-loop"),
)

OUTPUT_FORMATS = (
    ("PNG", "PNG", "8-bit PNG frames"),
    ("EXR", "OpenEXR", "32-bit float OpenEXR frames, scene-linear"),
    ("MP4", "MP4", "PNG frames plus an H.264 MP4 video"),
)


def _bounds(name: str) -> dict:
    """Default, range and tooltip of a setting, from the one job description (core.job.PARAMS)."""
    param = PARAMS[name]
    out = {"default": param.default, "min": param.min, "max": param.max, "description": param.help.capitalize()}
    if param.soft_max is not None:
        out["soft_max"] = param.soft_max
    return out


def _is_not_field(self, image):
    return not is_field_name(image.name)


def is_field_name(name: str) -> bool:
    """True for a field image name: "<photo>_motion" or a numbered copy like "<photo>_motion.001"."""
    return re.search(r"_motion(\.\d+)?$", name) is not None


def _get_arrow_frames(self):
    spline = mask_hints.active_arrow(self.hints)
    n = mask_hints.spline_frames(spline) if spline is not None else None
    return float(n if n is not None else DEFAULT_ARROW_FRAMES)


def _set_arrow_frames(self, value):
    spline = mask_hints.active_arrow(self.hints)
    if spline is not None:
        mask_hints.set_spline_frames(spline, value)


def _get_freeze_radius(self):
    return float(self.hints.get(mask_hints.RADIUS_KEY, 0.0)) if self.hints is not None else 0.0


def _set_freeze_radius(self, value):
    if self.hints is not None:
        if value > 0:
            self.hints[mask_hints.RADIUS_KEY] = float(value)
        elif mask_hints.RADIUS_KEY in self.hints:
            del self.hints[mask_hints.RADIUS_KEY]


class StillflowSettings(bpy.types.PropertyGroup):
    """Stillflow settings of a scene"""

    image: PointerProperty(
        name="Photo",
        type=bpy.types.Image,
        poll=_is_not_field,
        description="The still photo to animate (empty: the image shown in the Image Editor)",
    )
    motion_source: EnumProperty(name="Motion", items=MOTION_SOURCES, default="AUTO")
    hints: PointerProperty(
        name="Hints",
        type=bpy.types.Mask,
        description='Mask with layers "arrows" (open 2-point splines), "motion" and "freeze" (closed splines)',
    )
    mask_image: PointerProperty(
        name="Mask Image",
        type=bpy.types.Image,
        description="Optional painted motion mask (white moves, black stays); used with the hints' motion layer",
    )
    field_image: PointerProperty(
        name="Field",
        type=bpy.types.Image,
        description='Motion field image (R = dx, G = dy up, px/frame); empty: "<photo>_motion"',
    )
    arrow_frames: FloatProperty(
        name="Arrow Frames", min=1.0, max=9999.0, soft_max=500.0, get=_get_arrow_frames, set=_set_arrow_frames,
        description="The active arrow (the arrows layer's active spline) moves from its start to its end in "
                    "this many frames: fewer frames, faster motion. New arrows take 50")
    freeze_radius: FloatProperty(
        name="Freeze Radius", min=0.0, soft_max=200.0, subtype="PIXEL", get=_get_freeze_radius,
        set=_set_freeze_radius,
        description="How far around a freeze point the photo is held still, in photo pixels (0: 2% of the "
                    "diagonal)")
    frames: IntProperty(name="Frames", **_bounds("frames"))
    fps: FloatProperty(name="Frame Rate", **_bounds("fps"))
    speed: FloatProperty(name="Speed", **_bounds("speed"))
    feather_px: FloatProperty(name="Feather", subtype="PIXEL", **_bounds("feather_px"))
    sky: BoolProperty(
        name="Sky and Reflections", default=True,
        description="Without arrows, the model's field is replaced where the photo shows a sky or a mirroring "
                    "lake: a cloudy sky drifts right, a clear one stays still (inside a mask it drifts too); "
                    "mirroring water drifts right and what it mirrors stays still. Off: the model's field as it is")
    renderer: EnumProperty(name="Renderer", items=RENDERERS, default="SHARP")
    outputs: EnumProperty(
        name="Add To",
        items=OUTPUT_TARGETS,
        options={"ENUM_FLAG"},
        default={"SEQUENCER"},
        description="Where to use the rendered loop besides the files",
    )
    output_format: EnumProperty(name="Format", items=OUTPUT_FORMATS, default="PNG")
    mp4_quality: EnumProperty(
        name="MP4 Quality",
        items=(("PERCEPTUAL", "Perceptual", "H.264 CRF 17, one keyframe per loop"),
               ("LOSSLESS", "Lossless", "About 6x the bytes; nothing re-encoded at the wrap")),
        default="PERCEPTUAL",
    )
    output_dir: StringProperty(
        name="Folder",
        subtype="DIR_PATH",
        default="",
        description="Output folder (empty: next to the saved .blend file, else a temporary folder)",
    )
    overwrite: BoolProperty(name="Overwrite", default=False, description="Replace an existing output folder")
    fit_scene: BoolProperty(
        name="Fit Scene", default=True,
        description="Set the scene's frame range to the loop (from the current frame) and its frame rate to "
                    "the loop's, so the timeline plays the seamless loop")
    mesh_step: IntProperty(
        name="Grid Step",
        default=8,
        min=1,
        soft_max=64,
        subtype="PIXEL",
        description="One mesh vertex per this many pixels when the field is made into a mesh",
    )


class StillflowStatus(bpy.types.PropertyGroup):
    """Run status, progress and timing (window manager: never saved)"""

    running: BoolProperty(name="Running", default=False)
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    status: StringProperty(name="Status", default="")
    last_run_seconds: FloatProperty(name="Last Run", default=0.0, unit="TIME_ABSOLUTE")
    device: StringProperty(name="Device", default="")


def job_from_scene(settings, prefs=None) -> Job:
    """The one job description (core.job.Job) from the scene's settings and the add-on preferences."""
    model_path = bpy.path.abspath(prefs.model_path) if prefs is not None and prefs.model_path else None
    return Job(
        motion=MotionSpec(source=MOTION_SOURCE_TO_CORE[settings.motion_source], model_path=model_path,
                          feather_px=settings.feather_px, sidecar_hints=False, sky=settings.sky),
        loop=LoopSpec(frames=settings.frames, fps=settings.fps, speed=settings.speed,
                      renderer=settings.renderer.lower()),
        output=OutputSpec(fmt=settings.output_format.lower(), overwrite=settings.overwrite,
                          mp4_quality=settings.mp4_quality.lower()),
        device=prefs.device if prefs is not None else "auto",
    ).validate()


STORED_SETTINGS = "stillflow_settings"  # written by encode.write_blend (the command line's .blend)


@bpy.app.handlers.persistent
def apply_stored_settings(*_args):
    """A .blend written by the command line carries its loop settings as plain data on the scene: move them
    into scene.stillflow once, when the file is opened."""
    for scene in bpy.data.scenes:
        stored = scene.get(STORED_SETTINGS)
        if stored is None:
            continue
        settings = scene.stillflow
        for key, images in (("image", True), ("field_image", True), ("frames", False), ("fps", False)):
            value = stored.get(key)
            if value is None:
                continue
            if images:
                value = bpy.data.images.get(value)
                if value is None:
                    continue
            try:
                setattr(settings, key, value)
            except (AttributeError, TypeError, ValueError):
                pass  # e.g. out of range: keep the default
        del scene[STORED_SETTINGS]


@bpy.app.handlers.persistent
def repack_edited_fields(*_args):
    """Before a save: a field image edited since it was packed (painted, or changed from a script) is packed
    again, so what the artist edited is what the .blend keeps (the packed copy is otherwise the predicted
    one)."""
    for image in bpy.data.images:
        if image.packed_file is None or not image.is_float or not is_field_name(image.name):
            continue
        if image.is_dirty:
            image.pack()


classes = (StillflowSettings, StillflowStatus)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register():
    _register_classes()
    bpy.types.Scene.stillflow = PointerProperty(type=StillflowSettings)
    bpy.types.WindowManager.stillflow = PointerProperty(type=StillflowStatus)
    bpy.app.handlers.load_post.append(apply_stored_settings)
    bpy.app.handlers.save_pre.append(repack_edited_fields)


def unregister():
    if repack_edited_fields in bpy.app.handlers.save_pre:
        bpy.app.handlers.save_pre.remove(repack_edited_fields)
    if apply_stored_settings in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(apply_stored_settings)
    del bpy.types.WindowManager.stillflow
    del bpy.types.Scene.stillflow
    _unregister_classes()
