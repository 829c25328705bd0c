"""Round trips on the real bpy module: field image <-> grid mesh attribute, hints file <-> Mask."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace as NS

import numpy as np
import pytest

pytestmark = pytest.mark.bpy

REPO = Path(__file__).resolve().parents[1]
HINTS_FILE = REPO / "samples" / "mcway_falls.hints.json"


def ext(stillflow_ext, name):
    return sys.modules[f"{stillflow_ext[0]}.{name}"]


def smooth_field(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([np.sin(x / 17.0) * 2.0, np.cos(y / 11.0) - 0.5], axis=-1).astype(np.float32)


@pytest.fixture
def field_setup(blender, stillflow_ext):
    bpy = blender
    io = ext(stillflow_ext, "operators.blender_io")
    photo = bpy.data.images.new("photo", 64, 40)
    photo.pixels.foreach_set(np.full(64 * 40 * 4, 0.5, np.float32))
    field = smooth_field(40, 64)
    image = io.new_float_image("photo_motion", 64, 40)
    io.write_field(image, field)
    bpy.context.scene.stillflow.image = photo
    return bpy, io, image, field


@pytest.mark.parametrize("step", [1, 4])
def test_field_mesh_round_trip(field_setup, step):
    bpy, io, image, field = field_setup
    bpy.context.scene.stillflow.mesh_step = step
    assert bpy.ops.stillflow.field_to_mesh() == {"FINISHED"}
    obj = bpy.data.objects["photo_motion_grid"]
    attr = obj.data.attributes["motion"]
    assert (attr.data_type, attr.domain) == ("FLOAT2", "POINT")
    assert len(obj.data.vertices) == int(np.ceil(40 / step) * np.ceil(64 / step))
    bpy.context.view_layer.objects.active = obj

    # Unchanged mesh -> same field (exact at step 1, smooth-field accuracy at step 4).
    io.write_field(image, np.zeros_like(field))
    assert bpy.ops.stillflow.field_from_mesh() == {"FINISHED"}
    back = io.read_field(image, (40, 64))
    tol = 1e-6 if step == 1 else 0.25  # block means, bilinear back up: worst at the border
    assert np.abs(back - field).max() < tol and np.abs(back - field).mean() < tol / 5

    # Mesh to Field with no edit, over the field the mesh was made from: exact, not smoothed by the blocks
    # (issue 13, case 11: it changed values by up to 0.39 px/frame of a 0.56 maximum).
    io.write_field(image, field)
    assert bpy.ops.stillflow.field_from_mesh() == {"FINISHED"}
    assert np.abs(io.read_field(image, (40, 64)) - field).max() <= 1e-6

    # An edit of the attribute (as Geometry Nodes would make) reaches the field image.
    vec = np.empty(len(attr.data) * 2, np.float32)
    attr.data.foreach_get("vector", vec)
    attr.data.foreach_set("vector", vec * 2.0)
    obj.data.update()
    assert bpy.ops.stillflow.field_from_mesh() == {"FINISHED"}
    assert np.abs(io.read_field(image, (40, 64)) - 2 * field).max() < 2 * tol


def test_field_mesh_vertex_order_matches_image(field_setup, stillflow_ext):
    """Vertex (x, y) positions and the attribute agree with the field's pixel positions: +y up."""
    bpy, io, image, field = field_setup
    bpy.context.scene.stillflow.mesh_step = 1
    bpy.ops.stillflow.field_to_mesh()
    mesh = bpy.data.objects["photo_motion_grid"].data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    top_left = np.argmax(co[:, 1] - co[:, 0])
    vec = np.empty(len(mesh.vertices) * 2, np.float32)
    mesh.attributes["motion"].data.foreach_get("vector", vec)
    dx, dy_up = vec.reshape(-1, 2)[top_left]
    assert dx == pytest.approx(field[0, 0, 0]) and dy_up == pytest.approx(-field[0, 0, 1])


def test_mesh_with_changed_vertex_count_is_an_error(field_setup):
    bpy, io, image, field = field_setup
    bpy.ops.stillflow.field_to_mesh()
    obj = bpy.data.objects["photo_motion_grid"]
    obj.data.vertices.add(1)
    obj.data.update()
    bpy.context.view_layer.objects.active = obj
    with pytest.raises(RuntimeError, match="keep the vertex count|no FLOAT2"):
        bpy.ops.stillflow.field_from_mesh()


@pytest.mark.parametrize("size", [(160, 90), (90, 160), (64, 64)])
def test_mask_coordinates_round_trip(blender, stillflow_ext, size):
    mh = ext(stillflow_ext, "operators.mask_hints")
    w, h = size
    for pt in [(0.0, 0.0), (w, h), (w * 0.3, h * 0.8), (12.5, 3.25)]:
        back = mh.mask_to_pixel(mh.pixel_to_mask(pt, w, h), w, h)
        assert back == pytest.approx(pt, abs=1e-9)
    # The image centre is the mask centre; the top-left corner is x = 0 and y up (aspect-corrected).
    assert mh.pixel_to_mask((w / 2, h / 2), w, h) == pytest.approx((0.5, 0.5))
    mx, my = mh.pixel_to_mask((0, 0), w, h)
    if w >= h:
        assert mx == pytest.approx(0.0) and my == pytest.approx(0.5 + 0.5 * h / w)
    else:
        assert my == pytest.approx(1.0) and mx == pytest.approx(0.5 - 0.5 * w / h)


def test_hints_file_mask_round_trip(blender, stillflow_ext, tmp_path):
    bpy = blender
    from stillflow.core.hints import load_hints

    photo = bpy.data.images.new("wide", 320, 180)
    bpy.context.scene.stillflow.image = photo
    assert bpy.ops.stillflow.import_hints(filepath=str(HINTS_FILE)) == {"FINISHED"}
    mask = bpy.context.scene.stillflow.hints
    assert {layer.name for layer in mask.layers} == {"arrows", "motion", "freeze"}
    src = load_hints(HINTS_FILE).for_size(320, 180)
    arrows = mask.layers["arrows"].splines
    assert len(arrows) == len(src.arrows) and all(len(s.points) == 2 and not s.use_cyclic for s in arrows)
    assert all(s.use_cyclic for s in mask.layers["motion"].splines)

    out = tmp_path / "hints.json"
    assert bpy.ops.stillflow.export_hints(filepath=str(out)) == {"FINISHED"}
    back = load_hints(out)
    assert tuple(back.image_size) == (320, 180)
    assert len(back.arrows) == len(src.arrows)
    for a, b in zip(back.arrows, src.arrows, strict=True):
        assert a.start == pytest.approx(b.start, abs=1e-3) and a.end == pytest.approx(b.end, abs=1e-3)
        assert a.frames == pytest.approx(b.frames)
    assert len(back.motion_polygons) == len(src.motion_polygons)
    assert np.allclose(back.motion_polygons[1], src.motion_polygons[1], atol=1e-3)
    assert np.allclose(back.freeze_points, src.freeze_points, atol=1e-3)
    assert back.freeze_radius == pytest.approx(src.freeze_radius)

    # An arrow drawn by hand in the Mask (no frame count stored) counts over 50 frames.
    spline = arrows.new()
    spline.points.add(1)
    spline.points[0].co, spline.points[1].co = (0.25, 0.5), (0.75, 0.5)
    mh = ext(stillflow_ext, "operators.mask_hints")
    hints = mh.hints_from_mask(mask, 320, 180)
    assert hints.arrows[-1].frames == 50.0
    assert hints.arrows[-1].start == pytest.approx((80.0, 90.0))

    # Never overwrite an existing file unless asked.
    with pytest.raises(RuntimeError, match="exists"):
        bpy.ops.stillflow.export_hints(filepath=str(out))
    assert bpy.ops.stillflow.export_hints(filepath=str(out), overwrite=True) == {"FINISHED"}
    assert len(json.loads(out.read_text())["arrows"]) == len(src.arrows) + 1


def test_bad_hints_file_is_an_error(blender, tmp_path):
    bpy = blender
    bpy.context.scene.stillflow.image = bpy.data.images.new("p", 32, 32)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RuntimeError, match="not valid JSON"):
        bpy.ops.stillflow.import_hints(filepath=str(bad))
    assert len(bpy.data.masks) == 0


def test_annotation_strokes_are_arrows(blender, stillflow_ext):
    """Annotation strokes cannot be created from Python in 5.0: read a look-alike of the same shape."""
    mh = ext(stillflow_ext, "operators.mask_hints")
    pts = [NS(co=(0.1, 0.9, 0.0)), NS(co=(0.2, 0.8, 0.0)), NS(co=(0.3, 0.7, 0.0))]
    frame = NS(strokes=[NS(points=pts), NS(points=pts[:1])])
    layer = NS(active_frame=frame, frames=[frame], annotation_hide=False)
    arrows = mh.arrows_from_annotation(NS(layers=[layer]), 200, 100)
    assert len(arrows) == 1
    assert arrows[0].start == pytest.approx((20.0, 10.0)) and arrows[0].end == pytest.approx((60.0, 30.0))
    # The real datablock type reads the same way (no strokes: no arrows).
    bpy = blender
    ann = bpy.data.annotations.new("notes")
    ann.layers.new("Note").frames.new(1)
    assert mh.arrows_from_annotation(ann, 200, 100) == []


def test_painted_mask_image_limits_motion(blender, stillflow_ext):
    bpy = blender
    settings = bpy.context.scene.stillflow
    photo = bpy.data.images.new("p", 64, 32)
    settings.image = photo
    settings.motion_source = "HINTS"
    bpy.ops.stillflow.new_hints()
    mask = settings.hints
    spline = mask.layers["arrows"].splines.new()
    spline.points.add(1)
    spline.points[0].co, spline.points[1].co = (0.2, 0.5), (0.8, 0.5)
    painted = bpy.data.images.new("paint", 64, 32)
    px = np.zeros((32, 64, 4), np.float32)
    px[:, 32:] = 1.0  # right half moves
    painted.pixels.foreach_set(px.ravel())
    settings.mask_image = painted
    settings.feather_px = 0.0
    assert bpy.ops.stillflow.predict_motion() == {"FINISHED"}
    field = ext(stillflow_ext, "operators.blender_io").read_field(settings.field_image)
    assert np.abs(field[:, :28]).max() < 1e-6
    assert field[:, 40:, 0].mean() > 0.1


def test_geometry_nodes_edit_reaches_the_field(field_setup):
    """A Geometry Nodes modifier that doubles "motion" changes the field read back by Mesh to Field."""
    bpy, io, image, field = field_setup
    bpy.context.scene.stillflow.mesh_step = 1
    bpy.ops.stillflow.field_to_mesh()
    obj = bpy.data.objects["photo_motion_grid"]
    tree = bpy.data.node_groups.new("double motion", "GeometryNodeTree")
    tree.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    tree.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = tree.nodes, tree.links
    group_in, group_out = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    read = nodes.new("GeometryNodeInputNamedAttribute")
    read.data_type = "FLOAT_VECTOR"  # 2D vectors read as 3D (z = 0)
    read.inputs["Name"].default_value = "motion"
    scale = nodes.new("ShaderNodeVectorMath")
    scale.operation = "SCALE"
    scale.inputs["Scale"].default_value = 2.0
    store = nodes.new("GeometryNodeStoreNamedAttribute")
    store.data_type, store.domain = "FLOAT2", "POINT"
    store.inputs["Name"].default_value = "motion"
    links.new(group_in.outputs["Geometry"], store.inputs["Geometry"])
    links.new(read.outputs["Attribute"], scale.inputs[0])
    links.new(scale.outputs["Vector"], store.inputs["Value"])
    links.new(store.outputs["Geometry"], group_out.inputs["Geometry"])
    obj.modifiers.new("double", "NODES").node_group = tree
    bpy.context.view_layer.objects.active = obj

    assert bpy.ops.stillflow.field_from_mesh() == {"FINISHED"}
    np.testing.assert_allclose(io.read_field(image, (40, 64)), 2 * field, atol=1e-5)


def _lake_photo(bpy, w=160, h=96):
    """A dark photo with a bright 'lake' (an ellipse) holding a dark 'boat'; the pixels as core reads them."""
    yy, xx = np.mgrid[0:h, 0:w]
    lake = ((xx - 80) / 50.0) ** 2 + ((yy - 50) / 30.0) ** 2 < 1
    boat = (np.abs(xx - 80) < 9) & (np.abs(yy - 50) < 6)
    rgb = np.full((h, w, 3), 0.15, np.float32)
    rgb[lake] = (0.2, 0.5, 0.9)
    rgb[boat] = (0.9, 0.9, 0.85)
    photo = bpy.data.images.new("lake", w, h)
    rgba = np.ones((h, w, 4), np.float32)
    rgba[..., :3] = rgb
    photo.pixels.foreach_set(rgba[::-1].ravel())
    bpy.context.scene.stillflow.image = photo
    return photo, lake, boat


def _drawn(mh, mask, w, h):
    from stillflow.core.hints import freeze_from_hints, mask_from_hints

    hints = mh.hints_from_mask(mask, w, h)
    region = mask_from_hints(hints, (h, w)) > 0.5
    freeze = freeze_from_hints(hints, (h, w))
    return hints, region & (freeze > 0.5 if freeze is not None else True)


def test_region_from_motion_draws_the_moving_region_into_the_hints_mask(blender, stillflow_ext):
    """Issue 12, item 3: the region the field moves (here the lake, not its boat) becomes the hints Mask's
    motion layer, its hole the "freeze (holes)" layer; run again, it replaces them."""
    bpy = blender
    io = ext(stillflow_ext, "operators.blender_io")
    mh = ext(stillflow_ext, "operators.mask_hints")
    photo, lake, boat = _lake_photo(bpy)
    field = np.zeros((96, 160, 2), np.float32)
    field[lake & ~boat, 0] = 0.8
    io.write_field(io.new_float_image("lake_motion", 160, 96), field)
    with pytest.raises(RuntimeError, match="No shape to snap"):  # nothing drawn yet: one clear line
        bpy.ops.stillflow.snap_region()
    for _ in range(2):
        assert bpy.ops.stillflow.region_from_motion() == {"FINISHED"}
    mask = bpy.context.scene.stillflow.hints
    assert len(mask.layers["motion"].splines) == 1 and len(mask.layers["freeze (holes)"].splines) == 1
    hints, drawn = _drawn(mh, mask, 160, 96)
    want = lake & ~boat
    assert (drawn & want).sum() / (drawn | want).sum() > 0.85
    assert len(hints.freeze_polygons) == 1 and not drawn[50, 80]  # the boat is held still


def test_snap_to_edges_moves_a_rough_shape_onto_the_lake(blender, stillflow_ext):
    bpy = blender
    mh = ext(stillflow_ext, "operators.mask_hints")
    from stillflow.core.hints import Hints

    photo, lake, boat = _lake_photo(bpy)
    rough = Hints(motion_polygons=[[(24, 14), (136, 12), (138, 88), (22, 90)]])  # a box around the lake
    mask = mh.new_hints_mask("lake_hints", rough, 160, 96)
    bpy.context.scene.stillflow.hints = mask
    _, before = _drawn(mh, mask, 160, 96)
    assert bpy.ops.stillflow.snap_region(looseness=8.0) == {"FINISHED"}
    _, after = _drawn(mh, mask, 160, 96)

    def iou(a):
        return (a & lake).sum() / (a | lake).sum()

    assert iou(before) < 0.8 and iou(after) > 0.9
