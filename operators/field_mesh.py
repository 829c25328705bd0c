"""The motion field as a grid mesh with a FLOAT2 point attribute "motion" (editable with Geometry Nodes).

One vertex per k x k pixel block (the block's mean motion), rows from the bottom up, x left to right, so the
vertex order is exactly Blender's image pixel order. The attribute holds what the field image holds
(R, G = dx, dy with +y up, px/frame, through `core.field.to_blender_rgba`); reading it back upsamples the
grid bilinearly to the photo's size. The mesh spans the photo's aspect: height 1, width = W / H.
"""

from __future__ import annotations

import math

import bpy
import numpy as np

from ..core import field as cfield
from ..core.errors import InputError

ATTRIBUTE = "motion"
GRID_KEY = "stillflow_grid"  # object custom property: (grid_w, grid_h, step, width, height)


def block_mean(field: np.ndarray, step: int) -> np.ndarray:
    h, w = field.shape[:2]
    gh, gw = math.ceil(h / step), math.ceil(w / step)
    padded = np.pad(field, ((0, gh * step - h), (0, gw * step - w), (0, 0)), mode="edge")
    return padded.reshape(gh, step, gw, step, 2).mean(axis=(1, 3)).astype(np.float32)


def new_field_mesh(name: str, field: np.ndarray, step: int):
    """A new mesh datablock (grid + "motion" attribute) for `field` (H, W, 2), and its grid info."""
    h, w = field.shape[:2]
    grid = block_mean(field, step)
    gh, gw = grid.shape[:2]
    xs = ((np.arange(gw) + 0.5) * step).clip(max=w) / h - 0.5 * w / h
    ys = 0.5 - ((np.arange(gh) + 0.5) * step).clip(max=h) / h  # row 0 top -> largest y
    gx, gy = np.meshgrid(xs, ys[::-1])  # bottom row first, as Blender images
    verts = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], axis=1).astype(np.float32)
    idx = np.arange(gh * gw).reshape(gh, gw)
    quads = np.stack([idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]], axis=-1).reshape(-1, 4)

    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(verts))
    mesh.vertices.foreach_set("co", verts.ravel())
    mesh.loops.add(quads.size)
    mesh.loops.foreach_set("vertex_index", quads.ravel().astype(np.int32))
    mesh.polygons.add(len(quads))
    mesh.polygons.foreach_set("loop_start", (np.arange(len(quads)) * 4).astype(np.int32))
    mesh.update(calc_edges=True)
    mesh.validate()
    attr = mesh.attributes.new(ATTRIBUTE, "FLOAT2", "POINT")
    rgba = cfield.to_blender_rgba(grid).reshape(-1, 4)
    attr.data.foreach_set("vector", np.ascontiguousarray(rgba[:, :2]).ravel())
    return mesh, (gw, gh, step, w, h)


def read_field_mesh(obj, depsgraph=None, base: np.ndarray | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """The field stored on a grid object (evaluated, so Geometry Nodes edits count) -> ((H, W, 2), (W, H)).

    With ``base`` (the field the image holds now, (H, W, 2)), only the grid's *edits* are applied to it:
    base + upsampled(grid - block means of base), so where nothing was edited the field comes back
    exactly, not smoothed by the grid's blocks."""
    info = obj.get(GRID_KEY)
    if info is None or obj.type != "MESH":
        raise InputError(f"Object '{obj.name}' is not a Stillflow field mesh: make one with Field to Mesh")
    gw, gh, step, w, h = (int(v) for v in info)
    eval_obj = obj.evaluated_get(depsgraph) if depsgraph is not None else obj
    mesh = eval_obj.data if depsgraph is None else eval_obj.to_mesh()
    try:
        attr = mesh.attributes.get(ATTRIBUTE)
        if attr is None or attr.data_type != "FLOAT2" or attr.domain != "POINT":
            raise InputError(f"Mesh of '{obj.name}' has no FLOAT2 point attribute '{ATTRIBUTE}'")
        if len(attr.data) != gw * gh:
            raise InputError(
                f"Mesh of '{obj.name}' has {len(attr.data)} points but its grid needs {gw * gh}: "
                "keep the vertex count when editing"
            )
        vec = np.empty(gw * gh * 2, np.float32)
        attr.data.foreach_get("vector", vec)
    finally:
        if depsgraph is not None:
            eval_obj.to_mesh_clear()
    rgba = np.zeros((gw * gh, 4), np.float32)
    rgba[:, :2] = vec.reshape(-1, 2)
    grid = cfield.from_blender_rgba(rgba.ravel(), gw, gh)
    if base is not None and base.shape[:2] == (h, w):
        grid = grid - block_mean(base, step)  # the edits alone
    else:
        base = None
    if step == 1:
        up = grid[:h, :w]
    else:
        up = cfield.resize_bilinear(grid, (gh * step, gw * step))[:h, :w]
    if base is not None:
        up = base + up
    return np.ascontiguousarray(up, dtype=np.float32), (w, h)
