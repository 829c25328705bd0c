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

MOTION_SOURCES = (
    ("AUTO", "Automatic", "The model, guided by the hint arrows when there are any (the arrows alone when the "
     "model cannot run)"),
    ("MODEL", "Model", "Predict the motion with the bundled motion model"),
    ("HINTS", "Hints", "Build the motion from the arrows and masks of the hints Mask only"),
    ("BOTH", "Model + Hints", "Predict with the model, guided by the hints Mask"),
    ("FIELD", "Field Image", "Use an existing motion field image as it is"),
)

OUTPUT_TARGETS = (
    ("SEQUENCER", "Sequencer", "Add the loop as an image strip at the current frame"),
    ("MATERIAL", "Material", "Add the loop as an animated texture in a new material on the selected objects"),
    ("WORLD", "World", "Use the loop as the world background"),
)

OUTPUT_FORMATS = (
    ("PNG", "PNG", "8-bit PNG frames"),
    ("EXR", "OpenEXR", "Half float OpenEXR frames"),
    ("MP4", "MP4", "PNG frames plus an H.264 MP4 video"),
)


def _is_not_field(self, image):
    return not is_field_name(image.name)


def is_field_name(name: str) -> bool:
    """True for a field image name: "<photo>_motion" or a numbered copy like "<photo>_motion.001"."""
    return re.search(r"_motion(\.\d+)?$", name) is not None


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
    frames: IntProperty(name="Frames", default=60, min=2, soft_max=600, description="Loop length in frames")
    fps: FloatProperty(name="Frame Rate", default=30.0, min=1.0, max=240.0)
    speed: FloatProperty(
        name="Speed", default=1.0, min=0.0, soft_max=4.0, description="Multiplies the motion"
    )
    feather_px: FloatProperty(
        name="Feather",
        default=12.0,
        min=0.0,
        soft_max=100.0,
        subtype="PIXEL",
        description="Fade the motion over this many pixels where it runs into or out of the mask edge",
    )
    outputs: EnumProperty(
        name="Add To",
        items=OUTPUT_TARGETS,
        options={"ENUM_FLAG"},
        default={"SEQUENCER"},
        description="Where to use the rendered loop besides the files",
    )
    output_format: EnumProperty(name="Format", items=OUTPUT_FORMATS, default="PNG")
    output_dir: StringProperty(
        name="Folder",
        subtype="DIR_PATH",
        default="",
        description="Output folder (empty: next to the saved .blend file, else a temporary folder)",
    )
    overwrite: BoolProperty(name="Overwrite", default=False, description="Replace an existing output folder")
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


classes = (StillflowSettings, StillflowStatus)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register():
    _register_classes()
    bpy.types.Scene.stillflow = PointerProperty(type=StillflowSettings)
    bpy.types.WindowManager.stillflow = PointerProperty(type=StillflowStatus)


def unregister():
    del bpy.types.WindowManager.stillflow
    del bpy.types.Scene.stillflow
    _unregister_classes()
