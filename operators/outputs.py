"""Where a rendered loop goes in Blender besides its files: a sequencer strip, an animated texture on a
material or the world. All functions run on the main thread. (The files themselves are written by the
pipeline's sinks: core/sinks.py, operators/bpy_sinks.py.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import bpy

from .common import unique_datablock_name
from .encode import add_image_strip

log = logging.getLogger(__name__)

def add_strip(scene, frame_paths: list[Path]):
    """An image strip of the frames at the current frame, in the first free channel above every strip."""
    return add_image_strip(scene, frame_paths, channel=None, frame_start=scene.frame_current)


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
