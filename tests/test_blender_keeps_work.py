"""Issue 13: an artist's work survives save, reopen and the command line run inside the session."""

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.bpy

REPO = Path(__file__).resolve().parents[1]
HINTS_FILE = REPO / "samples" / "mcway_falls.hints.json"


def ext(stillflow_ext, name):
    return sys.modules[f"{stillflow_ext[0]}.{name}"]


@pytest.fixture
def predicted(blender, hinted_photo):
    """The small photo with the sample's hints (conftest) and its predicted field."""
    bpy = blender
    assert bpy.ops.stillflow.predict_motion() == {"FINISHED"}
    return bpy, hinted_photo, bpy.context.scene.stillflow.field_image


def test_field_edits_are_what_is_saved(predicted, stillflow_ext, tmp_path):
    """Case 3: a field edited from a script (or painted) came back as predicted after save and reopen."""
    bpy, photo, field_img = predicted
    io = ext(stillflow_ext, "operators.blender_io")
    field = io.read_field(field_img)
    assert np.abs(field).max() > 0
    edited = field.copy()
    edited[:, : field.shape[1] // 2] = 0.0  # zero the left half
    edited[..., 0] += np.float32(0.25) * (np.abs(field[..., 0]) > 0)
    field_img.pixels.foreach_set(ext(stillflow_ext, "core.field").to_blender_rgba(edited))
    field_img.update()
    name = field_img.name
    path = tmp_path / "work.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(path))
    again = io.read_field(bpy.data.images[name])
    np.testing.assert_allclose(again, edited, atol=1e-6)


def test_command_line_inside_a_live_session_keeps_the_open_file(predicted, stillflow_ext, tmp_path, small_photo):
    """Case 10: `cli.main(["animate", ...])` with MP4 replaced the open file (an empty scene "Stillflow")."""
    bpy, photo, field_img = predicted
    mesh = bpy.data.meshes.new("mine")
    obj = bpy.data.objects.new("mine", mesh)
    bpy.context.scene.collection.objects.link(obj)
    work = tmp_path / "work.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(work))
    scene_name = bpy.context.scene.name
    images = sorted(i.name for i in bpy.data.images)
    cli = ext(stillflow_ext, "operators.cli")
    out = tmp_path / "out"
    code = cli.main(["animate", str(small_photo), "--hints", str(HINTS_FILE), "--motion", "hints", "--frames", "4",
                     "--out", str(out), "--quiet"])
    assert code == 0
    assert bpy.data.filepath == str(work) and bpy.context.scene.name == scene_name
    after = sorted(i.name for i in bpy.data.images if i.type != "RENDER_RESULT")  # the MP4 was rendered here
    assert "mine" in bpy.context.scene.objects and after == images
    assert [s.name for s in bpy.data.scenes] == [scene_name]
    stem = small_photo.stem
    # The written .blend holds the loop: its strip, the photo and the field.
    bpy.ops.wm.open_mainfile(filepath=str(out / f"{stem}.blend"))
    scene = bpy.data.scenes[0]
    assert scene.sequence_editor.strips[0].type == "MOVIE" and scene.frame_end == 4
    field = scene.stillflow.field_image  # the panel's settings, stored in the file
    assert field is not None and field.is_float and field.name.startswith(f"{small_photo.name}_motion")
    assert scene.stillflow.image.filepath == str(small_photo)
    assert "mine" not in bpy.data.objects


@pytest.fixture
def render_ready(predicted, tmp_path):
    bpy, photo, field_img = predicted
    settings = bpy.context.scene.stillflow
    settings.frames = 6
    settings.fps = 24.0
    settings.speed = 10.0
    settings.output_dir = str(tmp_path / "out")
    return bpy, photo


def test_material_shows_on_the_object_and_on_a_new_plane(render_ready):
    """Case 5: the loop's material went into a new slot while every face kept material index 0."""
    bpy, photo = render_ready
    scene = bpy.context.scene
    scene.stillflow.outputs = {"MATERIAL"}
    mesh = bpy.data.meshes.new("box")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)], [], [(0, 1, 2), (0, 2, 3)])
    mine = bpy.data.materials.new("mine")
    mesh.materials.append(mine)
    obj = bpy.data.objects.new("box", mesh)
    scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    loop_mat = obj.data.materials[-1]
    assert loop_mat.node_tree.nodes["Stillflow Loop"].image.source == "SEQUENCE"
    assert [p.material_index for p in obj.data.polygons] == [1, 1]  # every face shows the loop
    assert obj.data.materials[0] == mine  # the artist's material is still there
    # Nothing selected: a new plane of the photo's aspect carries it.
    obj.select_set(False)
    scene.stillflow.output_dir += "_2"
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    plane = next(o for o in scene.objects if o.name.startswith(photo.name))
    w, h = photo.size
    assert plane.dimensions.x / plane.dimensions.y == pytest.approx(w / h)
    assert plane.data.materials[0].node_tree.nodes["Stillflow Loop"].image.source == "SEQUENCE"


def test_scene_range_and_rate_fit_the_loop_and_the_strip_loops(render_ready):
    """Case 6: the scene kept its own range and frame rate, and the strip played once."""
    bpy, _ = render_ready
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end, scene.frame_current = 1, 250, 1
    scene.render.fps, scene.render.fps_base = 30, 1.0
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    assert (scene.frame_start, scene.frame_end) == (1, 6)
    assert scene.render.fps / scene.render.fps_base == pytest.approx(24.0)
    # Fit Scene off and a longer range: the loop is repeated over it.
    scene.stillflow.fit_scene = False
    scene.stillflow.overwrite = True
    scene.frame_end = 20
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    strips = sorted(scene.sequence_editor.strips, key=lambda s: s.frame_start)  # the first one replaced
    assert [int(s.frame_start) for s in strips] == [1, 7, 13, 19] and {s.channel for s in strips} == {1}
    assert (scene.frame_start, scene.frame_end) == (1, 20)


def test_arrow_durations_stay_with_their_arrows(blender, stillflow_ext, hinted_photo):
    """Case 8: deleting the first arrow moved every duration onto the next arrow (they were kept by index)."""
    bpy, photo = blender, hinted_photo
    settings = bpy.context.scene.stillflow
    mh = ext(stillflow_ext, "operators.mask_hints")
    w, h = photo.size
    before = mh.hints_from_mask(settings.hints, w, h).arrows
    assert [a.frames for a in before[:3]] == [28.0, 36.0, 45.0]
    layer = next(layer for layer in settings.hints.layers if layer.name == "arrows")
    layer.splines.remove(layer.splines[0])
    after = mh.hints_from_mask(settings.hints, w, h).arrows
    assert [(a.start, a.frames) for a in after] == [(a.start, a.frames) for a in before[1:]]
    # The panel edits the active arrow's duration, and a freeze radius.
    layer.splines.active = layer.splines[1]
    assert settings.arrow_frames == pytest.approx(45.0)
    settings.arrow_frames = 12.0
    assert mh.hints_from_mask(settings.hints, w, h).arrows[1].frames == pytest.approx(12.0)
    assert settings.freeze_radius == pytest.approx(20.0 * w / 1280, rel=1e-3)
    settings.freeze_radius = 5.0
    assert mh.hints_from_mask(settings.hints, w, h).freeze_radius == pytest.approx(5.0)


def _render_everything(bpy, photo_path, hints=HINTS_FILE):
    photo = bpy.data.images.load(str(photo_path))
    settings = bpy.context.scene.stillflow
    settings.image = photo
    settings.motion_source = "HINTS"
    settings.frames = 4
    settings.speed = 10.0
    settings.outputs = {"SEQUENCER", "MATERIAL", "WORLD"}
    bpy.ops.stillflow.import_hints(filepath=str(hints))
    assert bpy.ops.stillflow.predict_motion() == {"FINISHED"}
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}


def _loop_resolves(bpy) -> None:
    """The strip, the material's and the world's image all find their frames."""
    scene = bpy.context.scene
    strip = scene.sequence_editor.strips[0]
    folder = Path(bpy.path.abspath(strip.directory))
    assert (folder / strip.elements[0].filename).is_file(), strip.directory
    images = [i for i in bpy.data.images if i.source == "SEQUENCE"]
    assert images and all(Path(bpy.path.abspath(i.filepath)).is_file() for i in images)
    assert all(i.filepath.startswith("//") for i in images) and strip.directory.startswith("//")


def test_paths_are_relative_and_survive_moving_the_folder(blender, small_photo, tmp_path):
    """Case 4: every written path was absolute: moving the folder of the .blend lost the frames."""
    import shutil

    bpy = blender
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(small_photo, proj / "photo.jpg")
    bpy.ops.wm.save_as_mainfile(filepath=str(proj / "work.blend"))
    _render_everything(bpy, proj / "photo.jpg")
    bpy.ops.wm.save_mainfile()
    moved = tmp_path / "moved"
    shutil.move(str(proj), str(moved))
    bpy.ops.wm.open_mainfile(filepath=str(moved / "work.blend"))
    _loop_resolves(bpy)


def test_unsaved_render_moves_next_to_the_blend_on_first_save(blender, small_photo, tmp_path, monkeypatch):
    """Case 4: an unsaved file renders to a temporary folder, and after Save As the strip still pointed there."""
    import tempfile

    bpy = blender
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    (tmp_path / "temp").mkdir()
    _render_everything(bpy, small_photo)
    strip = bpy.context.scene.sequence_editor.strips[0]
    assert str(tmp_path / "temp") in strip.directory
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "proj" / "work.blend"))
    assert not list((tmp_path / "temp" / "stillflow").glob("*_frames"))  # moved, not copied
    assert (tmp_path / "proj" / "stillflow" / f"{small_photo.stem}_frames" / "frame_0000.png").is_file()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "proj" / "work.blend"))
    _loop_resolves(bpy)


def test_rerender_with_overwrite_reuses_its_own_and_keeps_what_is_in_use(render_ready, tmp_path):
    """Case 7: a re-render added another strip, image, material and world each time, and Overwrite replaced
    frames that other data of the open file still read."""
    bpy, photo = render_ready
    scene = bpy.context.scene
    settings = scene.stillflow
    settings.outputs = {"SEQUENCER", "MATERIAL", "WORLD"}
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    counts = (len(bpy.data.images), len(bpy.data.materials), len(bpy.data.worlds))
    settings.overwrite = True
    settings.frames = 8
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    assert (len(bpy.data.images), len(bpy.data.materials), len(bpy.data.worlds)) == counts
    strips = list(scene.sequence_editor.strips)
    assert len(strips) == 1 and strips[0].frame_final_duration == 8
    tex = scene.world.node_tree.nodes["Stillflow Loop"]
    assert tex.image_user.frame_duration == 8
    # An image of the artist's own reading those frames: Overwrite is refused and the frames stay.
    folder = Path(bpy.path.abspath(strips[0].directory))
    mine = bpy.data.images.load(str(folder / "frame_0003.png"))
    before = sorted(p.name for p in folder.iterdir())
    settings.frames = 5
    with pytest.raises(RuntimeError, match="in use by 'frame_0003.png'"):
        bpy.ops.stillflow.render_loop()
    assert sorted(p.name for p in folder.iterdir()) == before and mine.name in bpy.data.images
