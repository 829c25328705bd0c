"""Where a rendered loop goes in Blender: frame files, a sequencer strip, an animated texture.

Frames are written with a scratch Blender image (Blender has no PIL): PNG holds the sRGB frame values as
they are; EXR holds scene-linear values (the EXR convention). All functions run on the main thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

import bpy
import numpy as np

from ..core import field as cfield
from ..core.imageio import srgb_to_linear
from .common import unique_datablock_name

log = logging.getLogger(__name__)

EXTENSIONS = {"PNG": ".png", "EXR": ".exr", "MP4": ".png"}  # MP4: PNG frames, then the movie


class FrameWriter:
    """Writes (H, W, 3) sRGB frames to files through one scratch image; `close()` removes the scratch."""

    def __init__(self, width: int, height: int, fmt: str):
        self.fmt = "OPEN_EXR" if fmt == "EXR" else "PNG"
        is_float = self.fmt == "OPEN_EXR"
        self._name = unique_datablock_name(bpy.data.images, ".stillflow_scratch")
        image = bpy.data.images.new(self._name, width, height, alpha=False, float_buffer=is_float)
        if is_float:
            image.colorspace_settings.name = "Linear Rec.709"
        image.file_format = self.fmt
        self._name = image.name

    def write(self, path: Path, rgb: np.ndarray) -> None:
        image = bpy.data.images[self._name]
        if self.fmt == "OPEN_EXR":
            rgb = srgb_to_linear(rgb)
        image.pixels.foreach_set(cfield.image_to_blender_rgba(rgb))
        image.filepath_raw = str(path)
        image.file_format = self.fmt
        image.save()

    def close(self) -> None:
        image = bpy.data.images.get(self._name)
        if image is not None:
            bpy.data.images.remove(image)


def add_strip(scene, frame_paths: list[Path]):
    """An image strip at the current frame, in the first free channel above every strip."""
    try:
        from .encode import add_image_strip
    except ImportError:  # pragma: no cover - encode.py ships with the extension
        add_image_strip = None
    if add_image_strip is not None:
        return add_image_strip(scene, frame_paths, channel=None, frame_start=scene.frame_current)
    se = scene.sequence_editor or scene.sequence_editor_create()
    channel = 1 + max((s.channel for s in se.strips_all), default=0)
    strip = se.strips.new_image(
        name=frame_paths[0].stem,
        filepath=str(frame_paths[0]),
        channel=channel,
        frame_start=scene.frame_current,
    )
    for p in frame_paths[1:]:
        strip.elements.append(p.name)
    return strip


def sequence_image(name: str, frame_paths: list[Path]):
    """An image datablock reading the frames as a sequence."""
    image = bpy.data.images.load(str(frame_paths[0]), check_existing=False)
    image.name = unique_datablock_name(bpy.data.images, name)
    image.source = "SEQUENCE"
    return image


def _wire_image_user(node, frames: int, frame_start: int) -> None:
    node.image_user.frame_duration = frames
    node.image_user.frame_start = frame_start
    node.image_user.frame_offset = 0
    node.image_user.use_cyclic = True
    node.image_user.use_auto_refresh = True


def add_material(name: str, image, frames: int, frame_start: int, objects) -> bpy.types.Material:
    """A new emissive material showing the loop, appended to each object's material slots."""
    mat = bpy.data.materials.new(unique_datablock_name(bpy.data.materials, name))
    if mat.node_tree is None:  # 5.0 creates the node tree already; use_nodes is deprecated
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    tex = nodes.new("ShaderNodeTexImage")
    tex.name = tex.label = "Stillflow Loop"
    tex.image = image
    tex.location = (bsdf.location.x - 400, bsdf.location.y)
    _wire_image_user(tex, frames, frame_start)
    links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    links.new(tex.outputs["Color"], bsdf.inputs["Emission Color"])
    bsdf.inputs["Emission Strength"].default_value = 1.0
    for obj in objects:
        if obj.type in {"MESH", "CURVE", "SURFACE", "META", "FONT"}:
            obj.data.materials.append(mat)
    return mat


def add_world(scene, name: str, image, frames: int, frame_start: int) -> bpy.types.World:
    """A new world whose background is the loop, screen-aligned (window coordinates); set as the scene's."""
    world = bpy.data.worlds.new(unique_datablock_name(bpy.data.worlds, name))
    if world.node_tree is None:
        world.use_nodes = True
    nodes, links = world.node_tree.nodes, world.node_tree.links
    background = next(n for n in nodes if n.type == "BACKGROUND")
    coords = nodes.new("ShaderNodeTexCoord")
    tex = nodes.new("ShaderNodeTexImage")
    tex.name = tex.label = "Stillflow Loop"
    tex.image = image
    tex.extension = "EXTEND"
    coords.location = (background.location.x - 600, background.location.y)
    tex.location = (background.location.x - 350, background.location.y)
    _wire_image_user(tex, frames, frame_start)
    links.new(coords.outputs["Window"], tex.inputs["Vector"])
    links.new(tex.outputs["Color"], background.inputs["Color"])
    scene.world = world
    return world
