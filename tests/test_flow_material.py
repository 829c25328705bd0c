"""The flow material (issue 15) on the real bpy module, rendered with Cycles on the CPU, and flow maps for
game engines (PNG / EXR round trips, `stillflow flowmap`, the Blender export)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import stillflow_cli_test_helpers as h  # registered by conftest.py
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
HINTS_FILE = REPO / "samples" / "mcway_falls.hints.json"
N = 30


def ext(stillflow_ext, name):
    return sys.modules[f"{stillflow_ext[0]}.{name}"]


def _camera_on_plane(bpy, aspect: float, width: int, height: int):
    scene = bpy.context.scene
    data = bpy.data.cameras.new("cam")
    data.type = "ORTHO"
    data.ortho_scale = aspect  # the plane is 1 tall, aspect wide: it fills the frame exactly
    cam = bpy.data.objects.new("cam", data)
    cam.location = (0.0, 0.0, 2.0)
    scene.collection.objects.link(cam)
    scene.camera = cam
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False  # a denoiser would spread each pixel's change to its neighbours
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.pixel_filter_type = "BOX"
    scene.cycles.filter_width = 0.01  # one look-up at each pixel's centre
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"  # the photo's colours out as they went in
    scene.render.image_settings.file_format = "PNG"


def _render(bpy, frame: int, path: Path) -> np.ndarray:
    scene = bpy.context.scene
    scene.frame_set(frame)
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(np.float32)


@pytest.fixture
def flow_scene(blender, stillflow_ext, hinted_photo):
    """The small McWay photo, its field from the sample's arrows, and the flow material on an image plane."""
    bpy, photo = blender, hinted_photo
    settings = bpy.context.scene.stillflow
    settings.frames = N
    settings.speed = 4.0  # the 160x90 photo moves little per frame
    assert bpy.ops.stillflow.predict_motion() == {"FINISHED"}
    assert bpy.ops.stillflow.flow_material(target="PLANE") == {"FINISHED"}
    field = ext(stillflow_ext, "operators.blender_io").read_field(settings.field_image)
    return bpy, photo, field


@pytest.mark.bpy
def test_flow_material_loops_moves_only_the_moving_region_and_the_fields_way(flow_scene, tmp_path):
    import cv2

    bpy, photo, field = flow_scene
    scene = bpy.context.scene
    plane = next(o for o in scene.objects if o.type == "MESH")
    mat = plane.data.materials[0]
    group = mat.node_tree.nodes["Stillflow Flow"]
    assert group.node_tree.get("stillflow_flow") == 1
    assert all(n.bl_idname != "ShaderNodeScript" for n in group.node_tree.nodes)  # Blender's own nodes only
    assert mat.node_tree.nodes["Stillflow Field"].image == scene.stillflow.field_image  # the live field
    (fc,) = mat.node_tree.animation_data.drivers
    assert fc.driver.expression == "frame"

    w, h = photo.size
    _camera_on_plane(bpy, w / h, w, h)
    start = scene.frame_start
    f0 = _render(bpy, start, tmp_path / "f0.png")
    mid = _render(bpy, start + N // 2, tmp_path / "mid.png")
    fn = _render(bpy, start + N, tmp_path / "fn.png")
    assert np.abs(fn - f0).max() <= 1.0  # frame N is frame 0 (within 1/255)

    speed = np.hypot(field[..., 0], field[..., 1])
    still = speed == 0
    still = still & np.roll(still, 1, 0) & np.roll(still, -1, 0) & np.roll(still, 1, 1) & np.roll(still, -1, 1)
    diff = np.abs(mid - f0).max(axis=2)
    assert diff[still].max() <= 1.0  # nothing outside the moving region changes
    moving = speed > np.percentile(speed[speed > 0], 50)
    assert diff[moving].mean() > 4.0  # the moving region does

    # Optical flow between two consecutive frames (rendered at 2x, the motion 5x faster: about a pixel a
    # frame, which optical flow measures well) points the field's way.
    group.inputs["Speed"].default_value = 20.0
    _camera_on_plane(bpy, w / h, 2 * w, 2 * h)
    a = _render(bpy, start + 3, tmp_path / "a.png")
    b = _render(bpy, start + 4, tmp_path / "b.png")
    gray = [cv2.cvtColor(x.astype(np.uint8), cv2.COLOR_RGB2GRAY) for x in (a, b)]
    flow = cv2.calcOpticalFlowFarneback(gray[0], gray[1], None, 0.5, 3, 9, 3, 5, 1.1, 0)
    flow = flow.reshape(h, 2, w, 2, 2).mean(axis=(1, 3)) / 2.0  # back to photo pixels
    m = moving & (np.abs(flow).sum(axis=2) > 0)
    seen = flow[m].mean(axis=0)
    want = (field[m] * 20.0).mean(axis=0)
    cos = float(seen @ want / (np.linalg.norm(seen) * np.linalg.norm(want)))
    assert cos > np.cos(np.radians(15)), (seen, want)


@pytest.mark.bpy
def test_flow_material_on_world_and_selected_and_errors(flow_scene):
    bpy, photo, _ = flow_scene
    scene = bpy.context.scene
    assert bpy.ops.stillflow.flow_material(target="WORLD") == {"FINISHED"}
    bg = next(n for n in scene.world.node_tree.nodes if n.type == "BACKGROUND")
    assert bg.inputs["Color"].links[0].from_node.name == "Stillflow Colour"
    for o in scene.objects:
        o.select_set(False)
    with pytest.raises(RuntimeError, match="No mesh object selected"):
        bpy.ops.stillflow.flow_material(target="SELECTED")
    mesh = bpy.data.meshes.new("quad")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (1, 1, 0)], [], [(0, 1, 2)])
    mesh.uv_layers.new()
    obj = bpy.data.objects.new("quad", mesh)
    scene.collection.objects.link(obj)
    obj.select_set(True)
    assert bpy.ops.stillflow.flow_material(target="SELECTED") == {"FINISHED"}
    assert obj.data.materials[0].node_tree.nodes["Stillflow Flow"].node_tree == \
        bpy.data.materials[0].node_tree.nodes["Stillflow Flow"].node_tree  # one node group, shared


@pytest.mark.bpy
def test_export_flowmap_from_blender_round_trips(flow_scene, tmp_path):
    from stillflow.core.flowmap import read_flowmap

    bpy, _, field = flow_scene
    for y in ("down", "up"):
        path = tmp_path / f"map_{y}.png"
        assert bpy.ops.stillflow.export_flowmap(filepath=str(path), y=y) == {"FINISHED"}
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["y"] == y and meta["width"] == 160
        assert np.abs(read_flowmap(path) - field).max() <= meta["scale"] / 127 / 2 + 1e-6


def _sample_field(size=(96, 160)):
    from stillflow.core.hints import load_hints
    from stillflow.core.motion import predict_motion

    img = np.asarray(Image.open(REPO / "samples" / "mcway_falls.jpg").convert("RGB").resize(size[::-1]),
                     np.float32) / 255.0
    return predict_motion(img, hints=load_hints(HINTS_FILE), source="hints").field


@pytest.mark.parametrize("y", ["down", "up"])
def test_flowmap_png_and_exr_round_trip(tmp_path, y):
    from stillflow.core.flowmap import read_flowmap, write_flowmap

    field = _sample_field()
    png, sidecar = write_flowmap(tmp_path / "map.png", field, y)
    meta = json.loads(sidecar.read_text())
    with Image.open(png) as im:
        assert im.mode == "RGB" and json.loads(im.text["stillflow:flowmap"]) == meta
        raw = np.asarray(im)
    assert (raw[field[..., 0] == 0, 0] == 128).all()  # 128 = still
    assert meta["scale"] == pytest.approx(np.abs(field).max(), rel=1e-6)
    assert np.abs(read_flowmap(png) - field).max() <= meta["scale"] / 127 / 2 + 1e-6  # within quantisation
    # the sign convention: +G is down (or up) the picture
    k = np.unravel_index(np.argmax(np.abs(field[..., 1])), field.shape[:2])
    assert np.sign(int(raw[k][1]) - 128) == np.sign(field[k][1]) * (1 if y == "down" else -1)
    exr, _ = write_flowmap(tmp_path / "map.exr", field, y)
    np.testing.assert_allclose(read_flowmap(exr), field, atol=1e-6)


def test_cli_flowmap(tmp_path):
    from stillflow.core.flowmap import read_flowmap

    common = ["--hints", HINTS_FILE, "--motion", "hints", "--max-size", "320"]
    r = h.run_cli("flowmap", REPO / "samples" / "mcway_falls.jpg", *common, "-o", tmp_path / "map.png")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(tmp_path / "map.png"), str(tmp_path / "map.json")]
    r = h.run_cli("predict", REPO / "samples" / "mcway_falls.jpg", *common, "-o", tmp_path / "field.npy")
    assert r.returncode == 0, r.stderr
    field = np.load(tmp_path / "field.npy")
    scale = json.loads((tmp_path / "map.json").read_text())["scale"]
    assert np.abs(read_flowmap(tmp_path / "map.png") - field).max() <= scale / 127 / 2 + 1e-6
    before = (tmp_path / "map.png").read_bytes()
    r = h.run_cli("flowmap", REPO / "samples" / "mcway_falls.jpg", *common, "-o", tmp_path / "map.png")
    assert r.returncode == 2 and "already exists" in h.one_line_error(r.stderr)
    assert (tmp_path / "map.png").read_bytes() == before
    r = h.run_cli("flowmap", REPO / "samples" / "mcway_falls.jpg", *common, "-o", tmp_path / "map.jpg")
    assert r.returncode == 2 and ".png or .exr" in h.one_line_error(r.stderr)
