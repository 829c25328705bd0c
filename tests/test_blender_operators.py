"""Stillflow's operators on the real bpy module: predict, render, outputs, cancel, undo, bad input."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.bpy

REPO = Path(__file__).resolve().parents[1]
HINTS_FILE = REPO / "samples" / "mcway_falls.hints.json"
FRAMES = 6


def ext(stillflow_ext, name):
    """A module of the enabled extension (bl_ext.<repo>.stillflow.<name>)."""
    return sys.modules[f"{stillflow_ext[0]}.{name}"]


@pytest.fixture
def photo(blender, hinted_photo, tmp_path):
    """The small photo with the sample's hints (conftest), settings for a quick 6-frame loop."""
    settings = blender.context.scene.stillflow
    settings.frames = FRAMES
    settings.speed = 10.0  # the 160x90 photo moves little per frame
    settings.output_dir = str(tmp_path / "out")
    return hinted_photo


def field_of(bpy, stillflow_ext, name):
    return ext(stillflow_ext, "operators.blender_io").read_field(bpy.data.images[name])


def test_predict_writes_field_image(blender, stillflow_ext, photo):
    bpy = blender
    assert bpy.ops.stillflow.predict_motion() == {"FINISHED"}
    field_img = bpy.data.images[f"{photo.name}_motion"]
    assert tuple(field_img.size) == tuple(photo.size) == (160, 90)
    assert field_img.is_float and field_img.colorspace_settings.name == "Non-Color"
    assert bpy.context.scene.stillflow.field_image == field_img

    # Same field as core computes from the same photo and hints.
    from stillflow.core import field as cfield
    from stillflow.core import hints as chints
    from stillflow.core import motion as cmotion

    io = ext(stillflow_ext, "operators.blender_io")
    rgb = io.read_photo(photo)
    travel = FRAMES * bpy.context.scene.stillflow.speed  # the feather widens to the loop's travel, as in core
    expected = cmotion.predict_motion(rgb, hints=chints.load_hints(HINTS_FILE), source="hints",
                                      travel_frames=travel).field
    got = field_of(bpy, stillflow_ext, field_img.name)
    assert np.abs(got).max() > 0.05  # hints drawn at 1280x720, scaled to 160x90
    # Exactly what core makes of the hints as the Mask stores them...
    stored = ext(stillflow_ext, "operators.mask_hints").gather_hints(bpy.context, 160, 90)
    np.testing.assert_allclose(got, cmotion.predict_motion(rgb, hints=stored, source="hints", travel_frames=travel).field,
                               atol=1e-6)
    # ...and the Mask stores the file's hints: its float32 points flip at most a couple of polygon-edge pixels
    # (where motion runs along the edge, the edge is sharp, so such a pixel differs by its full speed).
    assert (np.abs(got - expected) > 1e-3).sum() <= 4 and np.abs(got - expected).mean() < 1e-4

    # Stored as R = dx, G = -dy (+ up), bottom row first, A = 1 (core.field's convention).
    flat = np.empty(len(field_img.pixels), np.float32)
    field_img.pixels.foreach_get(flat)
    np.testing.assert_array_equal(flat, cfield.to_blender_rgba(got))
    rgba = flat.reshape(90, 160, 4)
    assert rgba[0, 5, 1] == pytest.approx(-got[89, 5, 1]) and np.all(rgba[..., 3] == 1)

    # A second predict never overwrites the first image unless asked.
    assert bpy.ops.stillflow.predict_motion() == {"FINISHED"}
    assert f"{photo.name}_motion.001" in bpy.data.images
    assert bpy.ops.stillflow.predict_motion(overwrite=True) == {"FINISHED"}
    assert f"{photo.name}_motion.002" not in bpy.data.images


def _frames(folder):
    from PIL import Image

    return [np.asarray(Image.open(p), np.float32) for p in sorted(Path(folder).glob("*.png"))]


def test_render_to_sequencer_and_painting_changes_frames(blender, stillflow_ext, photo, tmp_path):
    bpy = blender
    scene = bpy.context.scene
    settings = scene.stillflow
    bpy.ops.stillflow.predict_motion()
    scene.frame_current = 7
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    out = tmp_path / "out" / "blender_mcway_160x90_frames"  # the command line's names (core.job)
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"frame_{i:04d}.png" for i in range(FRAMES)]
    assert not list((tmp_path / "out").glob(".stillflow-tmp-*"))
    strip = scene.sequence_editor.strips[0]
    assert strip.type == "IMAGE" and len(strip.elements) == FRAMES
    assert strip.frame_final_duration == FRAMES and strip.frame_final_start == 7
    assert Path(bpy.path.abspath(strip.directory)).resolve() == out.resolve()
    first = _frames(out)
    # Frame 0 is the photo; later frames move.
    rgb = ext(stillflow_ext, "operators.blender_io").read_photo(photo) * 255
    assert np.abs(first[0] - rgb).max() <= 1.0
    assert np.abs(first[3] - first[0]).mean() > 0.05

    # "Paint" the field image: double the motion; the next render reads it back and changes.
    field_img = settings.field_image
    px = np.empty(len(field_img.pixels), np.float32)
    field_img.pixels.foreach_get(px)
    px = px.reshape(-1, 4)
    px[:, :2] *= 3.0
    field_img.pixels.foreach_set(px.ravel())
    with pytest.raises(RuntimeError, match="already exists"):
        bpy.ops.stillflow.render_loop()  # never overwrites without asking
    settings.overwrite = True
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    second = _frames(out)
    assert np.abs(second[0] - first[0]).max() <= 1.0
    assert np.abs(second[3] - first[3]).mean() > 0.05
    # The re-render into the same folder replaces Stillflow's own strip, in its channel, at its frame.
    (again,) = scene.sequence_editor.strips
    assert again.channel == 1 and again.frame_final_start == 7 and len(again.elements) == FRAMES


def test_texture_in_material_and_world(blender, photo):
    bpy = blender
    scene = bpy.context.scene
    settings = scene.stillflow
    settings.outputs = {"MATERIAL", "WORLD"}
    bpy.ops.stillflow.predict_motion()
    mesh = bpy.data.meshes.new("plane")
    obj = bpy.data.objects.new("plane", mesh)
    scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    assert scene.sequence_editor is None or len(scene.sequence_editor.strips) == 0

    mat = obj.data.materials[0]
    tex = mat.node_tree.nodes["Stillflow Loop"]
    assert tex.image.source == "SEQUENCE"
    assert tex.image_user.frame_duration == FRAMES and tex.image_user.use_cyclic
    assert tex.image_user.use_auto_refresh
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    assert bsdf.inputs["Base Color"].links[0].from_node == tex

    world_tex = scene.world.node_tree.nodes["Stillflow Loop"]
    assert world_tex.image == tex.image and world_tex.image_user.frame_duration == FRAMES
    background = next(n for n in scene.world.node_tree.nodes if n.type == "BACKGROUND")
    assert background.inputs["Color"].links[0].from_node == world_tex


def test_cancel_leaves_no_files(blender, stillflow_ext, photo, tmp_path):
    """The modal operator's Esc calls RenderJob.cancel() (via _finish); drive the job directly."""
    bpy = blender
    bpy.ops.stillflow.predict_motion()
    ops_render = ext(stillflow_ext, "operators.ops_render")
    job, _why = ops_render.make_job(bpy.context)
    job.start()
    assert job.step(0.0) is False and job.done == 1
    # frames are written on the sink's writer thread: wait until the first one is on disk, then cancel
    deadline = time.monotonic() + 30.0
    while not list((tmp_path / "out").glob(".stillflow-tmp-*/*/*.png")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list((tmp_path / "out").glob(".stillflow-tmp-*/*/*.png"))
    job.cancel()
    assert not any((tmp_path / "out").rglob("*.png"))
    assert not list((tmp_path / "out").iterdir())
    assert not [i for i in bpy.data.images if i.name.startswith(".stillflow_scratch")]


def test_undo_removes_created_data(blender, photo):
    bpy = blender
    scene = bpy.context.scene
    bpy.ops.ed.undo_push(message="before predict")
    assert bpy.ops.stillflow.predict_motion("EXEC_DEFAULT", True) == {"FINISHED"}  # True: push undo
    assert f"{photo.name}_motion" in bpy.data.images
    bpy.ops.ed.undo()
    assert f"{photo.name}_motion" not in bpy.data.images

    assert bpy.ops.stillflow.predict_motion("EXEC_DEFAULT", True) == {"FINISHED"}
    assert bpy.ops.stillflow.render_loop("EXEC_DEFAULT", True) == {"FINISHED"}
    assert len(bpy.context.scene.sequence_editor.strips) == 1
    bpy.ops.ed.undo()
    scene = bpy.context.scene  # undo replaces the data: look everything up again
    assert scene.sequence_editor is None or len(scene.sequence_editor.strips) == 0


def test_bad_input_reports_errors(blender, photo, tmp_path):
    bpy = blender
    settings = bpy.context.scene.stillflow
    with pytest.raises(RuntimeError, match="No motion field.*Predict Motion"):
        bpy.ops.stillflow.render_loop()

    settings.image = None
    with pytest.raises(RuntimeError, match="No photo"):
        bpy.ops.stillflow.predict_motion()

    empty = bpy.data.images.new("gone", 4, 4)
    empty.source = "FILE"
    empty.filepath = str(tmp_path / "missing.png")
    settings.image = empty
    with pytest.raises(RuntimeError, match="has no pixels"):
        bpy.ops.stillflow.predict_motion()

    settings.image = photo
    wrong = bpy.data.images.new(f"{photo.name}_motion", 20, 10, float_buffer=True)
    with pytest.raises(RuntimeError, match="20x10 but the image is 160x90"):
        bpy.ops.stillflow.render_loop()
    bpy.data.images.remove(wrong)

    bpy.ops.stillflow.predict_motion()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    settings.output_dir = str(blocker / "sub")
    with pytest.raises(RuntimeError, match="cannot write to the output folder"):
        bpy.ops.stillflow.render_loop()

    settings.motion_source = "HINTS"
    settings.hints = None
    with pytest.raises(RuntimeError, match="needs at least one arrow"):
        bpy.ops.stillflow.predict_motion()


class _ModalHarness:
    """The render operator's own modal()/_finish() code on a plain object: the bpy module has no event
    loop (INVOKE_DEFAULT runs execute() there), so the test sends the timer and Esc events itself."""

    def __init__(self, op_class, job, why):
        for name in ("modal", "_finish", "_show", "_complete", "_warn"):
            setattr(self, name, getattr(op_class, name).__get__(self))
        self._job, self._why, self._timer, self.reports = job, why, None, []

    def report(self, kind, message):
        self.reports.append((set(kind), message))


def test_modal_ticks_to_completion_and_esc_cancels(blender, stillflow_ext, photo, tmp_path, monkeypatch):
    from types import SimpleNamespace as NS

    bpy = blender
    context = bpy.context
    bpy.ops.stillflow.predict_motion()
    ops_render = ext(stillflow_ext, "operators.ops_render")
    monkeypatch.setattr(ops_render, "SLICE_S", 0.0)  # one frame per tick
    timer = NS(type="TIMER")
    out = tmp_path / "out"

    # Esc after two ticks: CANCELLED, nothing left on disk, status reset.
    job, why = ops_render.make_job(context)
    job.start()
    op = _ModalHarness(ops_render.STILLFLOW_OT_render_loop, job, why)
    assert op.modal(context, timer) == {"RUNNING_MODAL"} and job.done == 1
    assert op.modal(context, timer) == {"RUNNING_MODAL"} and job.done == 2
    assert context.window_manager.stillflow.progress == pytest.approx(2 / FRAMES)
    assert op.modal(context, NS(type="MOUSEMOVE")) == {"PASS_THROUGH"}
    assert "frame" in context.window_manager.stillflow.status
    assert op.modal(context, NS(type="ESC", value="PRESS")) == {"CANCELLED"}
    assert not list(out.iterdir()) and context.window_manager.stillflow.running is False
    assert not [i for i in bpy.data.images if i.name.startswith(".stillflow_scratch")]

    # Timer ticks until FINISHED: the frames and the strip are there.
    job, why = ops_render.make_job(context)
    job.start()
    op = _ModalHarness(ops_render.STILLFLOW_OT_render_loop, job, why)
    for _ in range(1000):
        result = op.modal(context, timer)
        if result != {"RUNNING_MODAL"}:
            break
    assert result == {"FINISHED"}
    assert len(list((out / "blender_mcway_160x90_frames").glob("*.png"))) == FRAMES
    assert len(context.scene.sequence_editor.strips) == 1
    assert context.window_manager.stillflow.last_run_seconds > 0


def test_exr_and_mp4_outputs(blender, photo, tmp_path):
    bpy = blender
    settings = bpy.context.scene.stillflow
    settings.outputs = set()
    bpy.ops.stillflow.predict_motion()
    settings.output_format = "EXR"
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    out = tmp_path / "out"
    assert len(list((out / "blender_mcway_160x90_exr").glob("*.exr"))) == FRAMES
    settings.output_format, settings.overwrite = "MP4", True
    assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    assert len(list((out / "blender_mcway_160x90_frames").glob("*.png"))) == FRAMES
    movie = out / "blender_mcway_160x90_loop.mp4"  # the command line's name for it too
    assert movie.is_file() and movie.stat().st_size > 0


class _PredictHarness:
    """The Predict operator's own modal code on a plain object (no event loop in the bpy module)."""

    def __init__(self, op_class, run, photo_name):
        for name in ("modal", "_finish", "_show", "_write"):
            setattr(self, name, getattr(op_class, name).__get__(self))
        self._run, self._photo_name, self._timer, self.overwrite, self.reports = run, photo_name, None, False, []

    def report(self, kind, message):
        self.reports.append((set(kind), message))


def test_predict_runs_in_the_background_and_esc_cancels(blender, stillflow_ext, photo):
    import time
    from types import SimpleNamespace as NS

    bpy = blender
    context = bpy.context
    ops_field = ext(stillflow_ext, "operators.ops_field")
    ops_field._last_result.clear()
    import threading

    name = f"{photo.name}_motion"
    # The real job, held at its start until Esc is pressed: on a small photo it could otherwise finish
    # before the first tick, and that tick would rightly write the field.
    job, gate = ops_field.PredictJob.from_context(context, photo), threading.Event()
    real_run = job.run
    job.run = lambda: (gate.wait(30), real_run())[1]
    run = ops_field.PredictRun(job).start()
    op = _PredictHarness(ops_field.STILLFLOW_OT_predict_motion, run, photo.name)
    context.window_manager.stillflow.running = True
    t0 = time.perf_counter()
    assert op.modal(context, NS(type="TIMER")) == {"PASS_THROUGH"} and not run.done
    assert time.perf_counter() - t0 < 0.5  # a tick never waits for the prediction
    assert op.modal(context, NS(type="ESC", value="PRESS")) == {"CANCELLED"}
    gate.set()
    run.wait()
    assert run.result is not None  # it ran to the end, and its result was dropped
    assert name not in bpy.data.images and context.window_manager.stillflow.running is False

    run = ops_field.PredictRun(ops_field.PredictJob.from_context(context, photo)).start()
    op = _PredictHarness(ops_field.STILLFLOW_OT_predict_motion, run, photo.name)
    for _ in range(600):
        result = op.modal(context, NS(type="TIMER"))
        if result != {"PASS_THROUGH"}:
            break
        time.sleep(0.05)
    assert result == {"FINISHED"}
    got = field_of(bpy, stillflow_ext, name)
    assert bpy.ops.stillflow.predict_motion(overwrite=True) == {"FINISHED"}  # execute(): the same field
    np.testing.assert_array_equal(field_of(bpy, stillflow_ext, name), got)
