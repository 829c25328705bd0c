"""Live preview (issue 17) on the real bpy module: an edit of the hints gives new preview frames within
about 2 seconds, made off the main thread while the timer's body keeps returning at once, and the frames
play with the timeline. The bpy module has no event loop, so the test calls the timer's body itself."""

import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.bpy


def _until_ready(preview, context, previous_generation_frames=None, limit_s=10.0):
    """Tick as the timer would until the preview shows new frames; the longest tick and the wait."""
    longest, started = 0.0, time.perf_counter()
    while time.perf_counter() - started < limit_s:
        t0 = time.perf_counter()
        preview.tick(context)
        longest = max(longest, time.perf_counter() - t0)
        if preview.STATE.frames and preview.STATE.frames is not previous_generation_frames \
                and preview.STATE.result is None and not preview.STATE.worker.is_alive():
            return longest, time.perf_counter() - started
        time.sleep(0.02)
    raise AssertionError(f"no preview after {limit_s} s: {preview.STATE.error}")


@pytest.fixture
def hinted(blender, hinted_photo):
    return blender, blender.context.scene.stillflow


def test_edit_of_the_hints_remakes_the_preview_off_the_main_thread(hinted, stillflow_ext):
    bpy, settings = hinted
    context = bpy.context
    preview = sys.modules[f"{stillflow_ext[0]}.operators.preview"]
    settings.speed = 6.0
    try:
        assert bpy.ops.stillflow.live_preview() == {"FINISHED"} and preview.STATE.on
        # The first one may compile the numba kernels into a fresh user folder (once per installation).
        _until_ready(preview, context, limit_s=300.0)
        assert len(preview.STATE.frames) == preview.FRAMES
        image = bpy.data.images[preview.PREVIEW_IMAGE]
        assert tuple(image.size) == (160, 90)
        first = list(preview.STATE.frames)

        # An edit: the first arrow made three times as long. New frames follow, from a worker thread.
        arrows = next(layer for layer in settings.hints.layers if layer.name == "arrows")
        a, b = arrows.splines[0].points[0].co, arrows.splines[0].points[-1].co
        arrows.splines[0].points[-1].co = (a[0] + 3 * (b[0] - a[0]), a[1] + 3 * (b[1] - a[1]))
        longest, waited = _until_ready(preview, context, previous_generation_frames=preview.STATE.frames)
        assert waited < 2.0, waited  # edit -> new frames shown
        assert longest < 0.25, longest  # the timer's body never waits for the worker
        assert preview.STATE.ready_seconds < 2.0
        diffs = [np.abs(x - y).max() for x, y in zip(first, preview.STATE.frames, strict=True)]
        assert diffs[0] == 0 and max(diffs[1:]) > 0.02  # frame 0 is the photo; later frames moved differently

        # The timeline plays it: frame k shows preview frame k.
        scene = context.scene
        for k in (0, 7, preview.FRAMES + 3):
            scene.frame_set(scene.frame_start + k)
            px = np.empty(len(image.pixels), np.float32)
            image.pixels.foreach_get(px)
            np.testing.assert_allclose(px, preview.STATE.frames[k % preview.FRAMES], atol=1e-6)
    finally:
        bpy.ops.stillflow.live_preview()  # stop
    assert not preview.STATE.on and preview._on_frame not in bpy.app.handlers.frame_change_post
    assert not bpy.app.timers.is_registered(preview.tick)


def test_show_motion_draw_handler_registers_and_unregisters(hinted, stillflow_ext):
    bpy, settings = hinted
    context = bpy.context
    overlay = sys.modules[f"{stillflow_ext[0]}.operators.overlay"]
    assert bpy.ops.stillflow.predict_motion() == {"FINISHED"}
    assert bpy.ops.stillflow.show_motion() == {"FINISHED"} and overlay.OVERLAY.handle is not None
    overlay.build(context)  # what the handler draws (no GPU here to draw it)
    colours = [c for c, _ in overlay.OVERLAY.lines]
    assert overlay.FIELD_COLOUR in colours and overlay.HINT_COLOUR in colours
    pts = dict(overlay.OVERLAY.lines)[overlay.FIELD_COLOUR]
    assert len(pts) and (pts >= -0.2).all() and (pts <= 1.2).all()  # the image's 0-1 space
    assert len(overlay.OVERLAY.labels) == 12 and overlay.OVERLAY.labels[0][1].endswith("px/f")  # hint speeds
    assert overlay.OVERLAY.text_handle is not None
    assert bpy.ops.stillflow.show_motion() == {"FINISHED"} and overlay.OVERLAY.handle is None
    assert bpy.ops.stillflow.show_motion() == {"FINISHED"} and overlay.OVERLAY.handle is not None
    import addon_utils

    module, enable = stillflow_ext
    addon_utils.disable(module, default_set=True)  # unregister removes the handler
    try:
        assert overlay.OVERLAY.handle is None and overlay.OVERLAY.text_handle is None
    finally:
        enable()


def test_the_preview_of_a_field_image_animates_that_field(hinted, stillflow_ext):
    """Motion source Field: the preview's inputs hold the field image's field, at the preview's size."""
    bpy, settings = hinted
    preview = sys.modules[f"{stillflow_ext[0]}.operators.preview"]
    io = sys.modules[f"{stillflow_ext[0]}.operators.blender_io"]
    w, h = settings.image.size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    field = np.stack([np.sin(x / 17.0) * 2.0, np.cos(y / 11.0) - 0.5], axis=-1).astype(np.float32)
    image = io.new_float_image("photo_motion_preview_test", w, h)
    io.write_field(image, field)
    settings.field_image = image
    settings.motion_source = "FIELD"
    try:
        inputs, job = preview.gather(bpy.context)
    finally:
        settings.motion_source = "HINTS"
        settings.field_image = None
        bpy.data.images.remove(image)
    assert job.motion.source == "field" and inputs.rgb.shape[:2] == (h, w)  # 160x90: no smaller than 480
    np.testing.assert_allclose(inputs.field, field, atol=1e-5)
