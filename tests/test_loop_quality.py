"""Loops that look real (issue 11): the detail-keeping renderer, the figures that catch what a viewer sees
(sharpness over the loop, double images, steps outside the moving region), `stillflow inspect`.

Real photos: the bundled sample (CC0) and models/realset/ (CC0 / public domain, models/realset/LICENSES.md)
with their hand-drawn hints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import stillflow_cli_test_helpers as h
from PIL import Image
from stillflow.core import engines
from stillflow.core.engines import reference
from stillflow.core.hints import load_hints, mask_from_hints
from stillflow.core.imageio import load_image
from stillflow.core.job import LoopSpec
from stillflow.core.motion import predict_motion
from stillflow.core.quality import QualityMeter, loop_quality
from stillflow.core.render import crossfade, phase_map, render_loop

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "mcway_falls.jpg"
CLOUDS = REPO / "models" / "realset" / "clouds_island_188029.jpg"
HAS_BPY = __import__("importlib.util").util.find_spec("bpy") is not None


def _scene(path: Path, size: int):
    img = load_image(path, max_size=size).rgb
    hh, ww = img.shape[:2]
    hints = load_hints(path.with_name(path.stem + ".hints.json")).for_size(ww, hh)
    return img, predict_motion(img, hints=hints, source="hints").field, mask_from_hints(hints, (hh, ww))


@pytest.fixture(scope="module")
def photo():
    return load_image(REPO / "tests" / "data" / "mcway_crop.jpg").rgb


# ------------------------------------------------------------------------------------------ the renderer


def test_sharp_path_engine_matches_reference(photo):
    """The compiled engine's fused kernels (a stream's displacement, share, stretch and sample in one; the
    blend with its still pixels and clipping in another) agree with the numpy reference's steps."""
    hh, ww = photo.shape[:2]
    rng = np.random.default_rng(0)
    ref, eng = engines.get_engine("numpy"), engines.get_engine("cpu")
    source = ref.sharp_source(photo)
    np.testing.assert_allclose(source[0] + source[1], photo, atol=1e-6)  # base + detail = the photo
    smooth = np.stack([np.sin(np.mgrid[0:hh, 0:ww][1] / 9.0), np.cos(np.mgrid[0:hh, 0:ww][0] / 7.0)], -1) * 2
    assert np.all(reference.stretch(np.full((hh, ww, 2), 3.5, np.float32)) == 1.0)  # a rigid shift keeps it all
    assert reference.stretch(smooth).min() < 0.6  # a field that stretches the picture keeps less of its detail
    gy, gx = np.mgrid[0:hh, 0:ww].astype(np.float32)
    for flow in ((rng.standard_normal((hh, ww, 2)) * 1.5).astype(np.float32), (smooth * 3).astype(np.float32)):
        flow[10:14, 20:30] = np.nan  # particles that left the image
        flow[40:60, 60:90] = 0.0  # a still patch
        weight = rng.random((hh, ww)).astype(np.float32) + 0.5
        acc = np.zeros((hh, ww, 4), np.float32)
        eng.accumulate(acc, np.stack([gx, gy], -1), flow, weight, 1.0)
        for e in (eng, ref):  # the coordinate splat that reads no coordinate array
            own = np.zeros_like(acc)
            e.accumulate_coords(own, flow, weight)
            np.testing.assert_allclose(own, acc, rtol=1e-6, atol=1e-4)
        s_ref, s_eng = np.ones((hh, ww), bool), np.ones((hh, ww), bool)
        img_ref, share_ref = ref.sharp_stream(acc, source, s_ref)
        img_eng, share_eng = eng.sharp_stream(acc, source, s_eng)
        assert np.array_equal(s_ref, s_eng) and 0 < s_ref.sum() < s_ref.size
        np.testing.assert_allclose(share_eng, share_ref, atol=1e-6)
        # the detail's source pixel is the dithered position rounded: a position within float rounding of a
        # rounding boundary may take the neighbour's (none on this photo; a few in a million at 1080p)
        np.testing.assert_allclose(img_eng, img_ref, atol=1e-5)
    other = np.clip(photo[::-1] + 0.05, 0, 1)
    wa = rng.random((hh, ww)).astype(np.float32)
    wa[:5] = 0.0
    out = eng.blend_detail(photo, other, wa, 1 - wa)
    np.testing.assert_allclose(out, ref.blend_detail(photo, other, wa, 1 - wa), atol=1e-5)
    np.testing.assert_allclose(out[:5], other[:5], atol=1e-6)  # weight 0: the other picture exactly
    still = rng.random((hh, ww)) < 0.3
    bright = other * 1.5  # beyond 1: clipped
    finished = eng.blend_detail(photo, bright, wa, 1 - wa, still, photo)
    np.testing.assert_allclose(finished, ref.blend_detail(photo, bright, wa, 1 - wa, still, photo), atol=1e-5)
    assert np.array_equal(finished[still], photo[still]) and finished.max() == 1.0


def test_sharp_loop_closes_and_frame_n_is_the_photo(photo):
    hh, ww = photo.shape[:2]
    yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32)
    motion = np.stack([1.2 * np.sin(yy / 17), 0.8 * np.cos(xx / 23)], -1).astype(np.float32)
    frames = [f.rgb for f in render_loop(photo, motion, LoopSpec(frames=24), device="cpu")]
    np.testing.assert_array_equal(frames[0], photo)
    centre = 0.5 + 0.7 * (phase_map((hh, ww)) - 0.5)
    assert np.all(crossfade(0, 24, centre, 0.3) == 1.0) and np.all(crossfade(24, 24, centre, 0.3) == 0.0)
    # frame N = the backward stream alone after 0 steps: identity coordinates, so the photo itself
    eng = engines.get_engine("cpu")
    acc = np.zeros((hh, ww, 4), np.float32)
    eng.accumulate(acc, np.stack([xx, yy], -1), np.zeros((hh, ww, 2), np.float32), np.ones((hh, ww), np.float32), 1.0)
    still = np.ones((hh, ww), bool)
    frame_n, share = eng.sharp_stream(acc, eng.sharp_source(photo), still)
    np.testing.assert_allclose(frame_n, photo, atol=1e-5)
    assert still.all() and np.all(share == 1.0)
    q = loop_quality(frames, reference=photo)
    assert q["seam_ratio"] <= 1.1, q["seam_ratio"]


@pytest.mark.parametrize("path,size", [(SAMPLE, 480), (CLOUDS, 480)])
def test_sharp_renderer_keeps_the_photos_detail_and_halves_double_images(path, size):
    img, motion, mask = _scene(path, size)
    q = {r: loop_quality(render_loop(img, motion, LoopSpec(frames=30, renderer=r), device="cpu"), mask,
                         reference=img) for r in ("splat", "sharp")}
    assert q["splat"]["sharpness_worst"] < 0.6  # the old renderer: soft from frame 1 on, frame 0 pops
    assert q["sharp"]["sharpness_worst"] >= 0.85, q["sharp"]["sharpness"]
    assert q["sharp"]["sharpness_spread"] <= 1.25
    assert q["sharp"]["seam_ratio"] <= 1.1 and q["sharp"]["hole_fraction_max"] < 0.001
    if q["splat"]["double_image"] > 0.05:  # the cloud photo: two copies of the clouds mid-loop
        assert q["sharp"]["double_image"] <= 0.5 * q["splat"]["double_image"], (q["splat"]["double_image"],
                                                                               q["sharp"]["double_image"])


CANAL = REPO / "models" / "realset" / "river_welton_canal.jpg"


@pytest.mark.parametrize("path", [CANAL, CLOUDS])
def test_detail_match_keeps_every_frame_as_crisp_as_the_photo(path, monkeypatch):
    """core.render.DetailMatch on two real photos (a canal seen from above, clouds; CC0 / public domain) at
    480 px: without it the frames' detail inside the moving region dips to 0.89-0.93 of the photo's and
    pulses by 1.09-1.13 over the loop; with it every frame keeps at least 0.95 and the pulse is at most
    1.06, the loop still closes, and what does not move is the photo itself in every frame."""
    from stillflow.core import render

    img, motion, mask = _scene(path, 480)
    figures, still = {}, None
    for matched in (False, True):
        if not matched:
            monkeypatch.setattr(render, "DETAIL_GAIN", (1.0, 1.0))  # the renderer as it was: gain 1
        else:
            monkeypatch.undo()
        frames = list(render_loop(img, motion, LoopSpec(frames=30), device="cpu"))
        figures[matched] = loop_quality(frames, mask, reference=img)
        if not matched:  # the pixels the renderer left as the photo in every frame
            still = np.logical_and.reduce([np.all(fr.rgb == img, axis=2) for fr in frames])
            assert 0.1 < still.mean() < 0.9
        else:
            for fr in frames:
                np.testing.assert_array_equal(fr.rgb[still], img[still])
    before, after = figures[False], figures[True]
    assert before["sharpness_worst"] < 0.94 and before["sharpness_spread"] > 1.08, before["sharpness"]
    assert after["sharpness_worst"] >= 0.95 and after["sharpness_spread"] <= 1.06, after["sharpness"]
    assert after["seam_ratio"] <= 1.1 and after["double_image"] <= before["double_image"] + 0.01


# ------------------------------------------------------------------------------------------- the figures


def test_clouds_leaving_the_picture_leave_no_line_along_its_edge(monkeypatch):
    """clouds_colosseum (CC0), its clouds drifting right (hand-drawn arrows): the backward stream has
    nothing to bring in at the right edge, and a pixel whose moment was that stream's got an even mix of
    the forward stream and the unmoved photo, cut off along a vertical line that ran across the sky with the
    loop. core.render hands the moment over to the stream that has content, gradually (``_hand_over``).
    Figure: the largest mean step between neighbouring columns in the right eighth of the sky, over the
    median one, worst frame (2.77 before, 1.66 after, when measured); and the largest step over time there
    over the median step (1.40 before, 1.37 after)."""
    from stillflow.core import render

    path = REPO / "models" / "realset" / "clouds_colosseum.jpg"
    img = load_image(path, max_size=640).rgb
    hh, ww = img.shape[:2]
    hints = load_hints(path.with_name(path.stem + ".hints.json")).for_size(ww, hh)
    motion = predict_motion(img, hints=hints, source="hints", travel_frames=30).field

    def figures():
        """(the worst frame's line figure, the band's largest step over time over its median step)"""
        frames = [f.rgb for f in render_loop(img, motion, LoopSpec(frames=30))]
        band = (slice(int(0.3 * hh), int(0.8 * hh)), slice(-ww // 8, None))
        line = 0.0
        for f in frames:
            steps = np.abs(np.diff(f[band].mean(axis=2), axis=1)).mean(axis=0)
            line = max(line, float(steps.max() / np.median(steps)))
        over_time = [np.abs(frames[(i + 1) % 30][band] - frames[i][band]).mean() for i in range(30)]
        return line, float(max(over_time) / np.median(over_time))

    after = figures()
    monkeypatch.setattr(render, "border_strips", lambda *a, **k: [])
    before = figures()
    assert after[0] < 1.8 and before[0] > 2.2, (before, after)
    assert after[1] <= 1.05 * before[1], (before, after)  # the hand-over does not pop over time either


def test_double_image_figure_separates_doubles_from_shifted_copies():
    img, _, mask = _scene(CLOUDS, 960)
    for d in (3, 8, 14):
        shifted = np.roll(img, 2 * d, axis=1)
        double = 0.5 * (np.roll(img, d, axis=1) + np.roll(img, -d, axis=1))
        figures = []
        for frame in (shifted, double):
            meter = QualityMeter(mask, reference=img)
            meter.add(img)
            meter.add(frame)
            figures.append(meter.result()["double_image"])
        assert figures[0] < 0.03 and figures[1] > 0.15, (d, figures)


def test_relative_speckle_tells_dots_from_a_detailed_tile_in_a_smooth_sky():
    """lake_sherburne (CC0): its mask is mostly smooth sky, so the median tile is nearly flat. The ridge's
    most detailed tile with 20 % more detail reads as hundreds of median tiles ("speckle"), as much as dots
    in the sky; relative to the nearby most detailed tile ("speckle_rel") the two are far apart."""
    from stillflow.core.field import box_blur

    path = REPO / "models" / "realset" / "lake_sherburne.jpg"
    img, _, mask = _scene(path, 960)
    inside = mask > 0.5
    meter = QualityMeter(mask, reference=img)
    meter.add(img)
    lap = np.abs(img - box_blur(img, 1)).mean(axis=2)
    tiles = [(y, x) for y in range(0, img.shape[0] - 16, 16) for x in range(0, img.shape[1] - 16, 16)
             if inside[y:y + 16, x:x + 16].all()]
    energy = [lap[y:y + 16, x:x + 16].mean() for y, x in tiles]
    y, x = tiles[int(np.argmax(energy))]  # the most detailed tile inside the mask
    sharper = img.copy()
    blur = box_blur(img, 1)[y:y + 16, x:x + 16]
    sharper[y:y + 16, x:x + 16] = np.clip(blur + np.sqrt(1.2) * (img[y:y + 16, x:x + 16] - blur), 0, 1)
    y, x = tiles[int(np.argmin(energy))]  # the smoothest: dots in the sky
    dotted = img.copy()
    rng = np.random.default_rng(0)
    dots = rng.random((16, 16)) < 0.08
    dotted[y:y + 16, x:x + 16][dots] = np.clip(dotted[y:y + 16, x:x + 16][dots] + 0.08, 0, 1)
    figures = {}
    for name, frame in (("sharper", sharper), ("dotted", dotted)):
        meter = QualityMeter(mask, reference=img)
        meter.add(img)
        meter.add(frame)
        q = meter.result()
        figures[name] = (q["speckle"], q["speckle_rel"])
    assert figures["sharper"][0] > 50 and figures["dotted"][0] > 50, figures  # both read as speckle
    assert figures["sharper"][1] < 0.25 and figures["dotted"][1] > 5, figures


# ------------------------------------------------------------------------------------------ inspect


def _inspect(loop: Path, *extra) -> dict:
    r = h.run_cli("inspect", loop, "--json", *extra, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_inspect_tells_a_blurred_loop_from_a_clean_one(tmp_path):
    hints = REPO / "samples" / "mcway_falls.hints.json"
    figures = {}
    for renderer in ("splat", "sharp"):
        out = tmp_path / renderer
        r = h.run_cli("animate", SAMPLE, "--hints", hints, "--motion", "hints", "--max-size", "480",
                      "--frames", "24", "--format", "png", "--renderer", renderer, "--out", out, "-q", timeout=300)
        assert r.returncode == 0, r.stderr
        figures[renderer] = _inspect(out / "mcway_falls_frames", "--mask", hints)
        sheet = Path(figures[renderer]["contact_sheet"])
        assert sheet.is_file() and Image.open(sheet).size[0] > 1000
    assert figures["splat"]["sharpness_worst"] < 0.6 < 0.85 < figures["sharp"]["sharpness_worst"]
    # the contact sheet is never overwritten without asking
    r = h.run_cli("inspect", tmp_path / "sharp" / "mcway_falls_frames")
    assert r.returncode == 2 and "already exists" in h.one_line_error(r.stderr)
    r = h.run_cli("inspect", tmp_path / "nothing")
    assert r.returncode == 2 and "not found" in h.one_line_error(r.stderr)


@pytest.fixture(scope="module")
def sample_frames(tmp_path_factory):
    """The sample's loop as PNG frames, 36 frames at 480 px, the arrows alone: what the MP4 tests encode."""
    out = tmp_path_factory.mktemp("sample_frames")
    r = h.run_cli("animate", SAMPLE, "--hints", REPO / "samples" / "mcway_falls.hints.json", "--motion", "hints",
                  "--max-size", "480", "--frames", "36", "--format", "png", "--out", out, "-q", timeout=300)
    assert r.returncode == 0, r.stderr
    return sorted((out / "mcway_falls_frames").glob("*.png"))


def _encode(frames: list[Path], out: Path, code: str) -> None:
    """Run ``code`` (which sees ``encode``, ``frames`` and ``out``) in a fresh process, as the command line
    encodes: bpy's state stays out of the test process."""
    head = ("import sys; from pathlib import Path; from stillflow.operators import encode\n"
            "frames = sorted(Path(sys.argv[1]).glob('*.png')); out = Path(sys.argv[2])\n")
    r = subprocess.run([sys.executable, "-c", head + code, str(frames[0].parent), str(out)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr


@pytest.mark.bpy
@pytest.mark.skipif(not HAS_BPY, reason="needs the bpy module")
def test_mp4_has_one_keyframe_so_the_still_picture_never_regrains(sample_frames, tmp_path):
    hints = REPO / "samples" / "mcway_falls.hints.json"
    # the file a user gets (x264 through PyAV where it is installed, else Blender's FFmpeg), and one with a
    # keyframe every 12 frames through Blender's FFmpeg, as an encoder with a fixed keyframe interval writes
    # it (core.video's fine keyframes and no deblocking keep even a GOP-12 file clean: 0.066/255)
    _encode(sample_frames, tmp_path, "encode.write_mp4(frames, out / 'loop.mp4', 30)\n"
                                     "encode.x264 = lambda: None\n"  # as where PyAV is not installed
                                     "encode.write_mp4(frames, out / 'gop12.mp4', 30, keyframe_interval=12)\n")
    regrained = _inspect(tmp_path / "gop12.mp4", "--mask", hints)
    clean = _inspect(tmp_path / "loop.mp4", "--mask", hints)
    assert regrained["frames"] == clean["frames"] == len(sample_frames)  # exactly N frames
    # issue 11's target is 0.1/255: x264 through PyAV gives 0.019 here, Blender's own FFmpeg (where PyAV is
    # not installed) 0.106
    assert clean["still_step_max"] <= 0.15, clean
    # a keyframe every 12 frames re-encodes the still picture: caught (2.1/255 when measured)
    assert regrained["still_step_max"] > max(0.15, 4 * clean["still_step_max"]), (regrained, clean)


def test_gif_and_webp_loops_keep_the_still_picture_still(tmp_path):
    """GIF: one palette, no error diffusion (was about 2/255 with a dither pattern per frame). WebP: lossless,
    so its frames are the PNG frames exactly (lossy frames drifted from the keyframe, up to about half a
    level, and the wrap back to it jumped)."""
    from stillflow.core.inspect import loop_reader

    hints = REPO / "samples" / "mcway_falls.hints.json"
    args = ("animate", SAMPLE, "--hints", hints, "--motion", "hints", "--max-size", "320", "--frames", "12",
            "--out", tmp_path, "-q")
    for fmt in ("gif", "webp", "png"):
        r = h.run_cli(*args, "--format", fmt, timeout=300)
        assert r.returncode == 0, r.stderr
    for fmt in ("gif", "webp"):
        figures = _inspect(tmp_path / f"mcway_falls_loop.{fmt}", "--mask", hints)
        assert figures["frames"] == 12
        assert figures["still_step_max"] <= 0.1, (fmt, figures["still_step_max"])
    webp, png = (list(loop_reader(tmp_path / p)[0]()) for p in ("mcway_falls_loop.webp", "mcway_falls_frames"))
    assert len(webp) == len(png) == 12
    for a, b in zip(webp, png, strict=True):
        np.testing.assert_array_equal(a, b)


def test_phase_map_spreads_a_small_region_over_the_whole_loop():
    """A plume in a tenth of the picture gets crossing moments spread evenly over [0, 1], as the whole picture
    does without a region (before, such a region took the few values its part of the map held)."""
    region = np.zeros((90, 160), bool)
    region[20:50, 100:120] = True
    inside = phase_map((90, 160), region=region)[region]
    assert inside.min() < 0.02 and inside.max() > 0.98
    assert np.histogram(inside, bins=5, range=(0, 1))[0].min() > 0.15 * inside.size
    plain = phase_map((90, 160))[region]
    assert plain.max() - plain.min() < 0.9  # what it was: part of the range only


def test_content_sharpness_is_the_detail_the_streams_carry_in():
    """core.quality.content_sharpness on a real photo (the sample's crop, CC0) moved 1 px/frame to the
    right, where Euler integration is exact: frame t's forward stream shows the photo at x - t, its backward
    one at x + N - t, weighed 1 - t/N (the splat renderer), and the region's detail is the photo's there. The
    figure must equal that, computed with plain slicing, and vary (what moves in is not what moves out)."""
    from stillflow.core.quality import _gray, content_sharpness, laplacian

    img = load_image(REPO / "tests" / "data" / "mcway_crop.jpg").rgb  # 128 x 72
    h, w = img.shape[:2]
    n = 8
    motion = np.zeros((h, w, 2), np.float32)
    motion[..., 0] = 1.0
    region = np.zeros((h, w), bool)
    region[10:60, 20:100] = True
    got = content_sharpness(img, motion, LoopSpec(frames=n, renderer="splat"), region)
    energy = laplacian(_gray(img)) ** 2
    ref = energy[10:60, 20:100].mean()
    want = [1.0] + [((1 - t / n) * energy[10:60, 20 - t:100 - t] + (t / n) * energy[10:60, 20 + n - t:100 + n - t])
                    .mean() / ref for t in range(1, n)]
    np.testing.assert_allclose(got, want, rtol=1e-6)  # float32 energies
    assert np.ptp(got) > 0.01, got
    sharp = content_sharpness(img, motion, LoopSpec(frames=n), region)  # the sharp renderer's own weights
    assert sharp[0] == 1.0 and np.all(np.isfinite(sharp)) and not np.allclose(sharp, got)


@pytest.mark.bpy
@pytest.mark.skipif(not HAS_BPY, reason="needs the bpy module")
def test_mp4_through_x264_steps_evenly_at_the_wrap_and_keeps_the_still_picture(sample_frames, tmp_path):
    """Where PyAV's libx264 encodes (core.video: macroblock tree and adaptive quantiser
    off, the keyframe finer, no deblocking), on the sample's loop (36 frames at 480 px, the arrows alone): N
    frames; outside the moving region at most 0.1/255 on average at every step (issue 11's target; 0.019/255
    when measured, 0.022 with deblocking, 0.079 with x264's default keyframe); the wrap's step and the moving
    region's largest step, over the median step, smaller than Blender's FFmpeg gives on the same frames (1.46
    and 1.46; 1.50 and 1.49 with deblocking, 1.64 and 1.62 with ipratio 3 and x264's deadzone, 1.90 and 1.77
    with its default keyframe, against 2.74 and 2.59; at the sample's own 1280x720 and 60 frames about 1.3,
    within the issue's 1.5, against 1.76 and 1.64: `X264_OPTIONS`)."""
    pytest.importorskip("av")
    hints = REPO / "samples" / "mcway_falls.hints.json"
    _encode(sample_frames, tmp_path, "encode.write_mp4(frames, out / 'x264.mp4', 30)\n"
                                     "encode.x264 = lambda: None\n"  # as where PyAV is not installed
                                     "encode.write_mp4(frames, out / 'blender.mp4', 30)\n")
    x264 = _inspect(tmp_path / "x264.mp4", "--mask", hints)
    blender = _inspect(tmp_path / "blender.mp4", "--mask", hints)
    assert x264["frames"] == blender["frames"] == 36
    assert x264["still_step_max"] <= 0.05, x264
    for key in ("seam_ratio", "moving_step_ratio"):
        assert x264[key] < 0.9 * blender[key], (key, x264[key], blender[key])


def test_a_mask_edge_through_smooth_content_fades_instead_of_cutting_it(monkeypatch):
    """smoke_beacon_street_steam (CC0): its hand-drawn polygon cuts through the plume, whose right side
    lies outside it in smooth haze. Rising along that edge, the inside slid past the outside and opened a
    straight vertical cut the photo never had (frames 14-28 of a 60-frame loop at 960 px). Where the mask's
    edge is not an edge of the photo, the motion now fades there as where it crosses the edge
    (core.field.photo_edges): the edge tear falls (0.119 -> 0.028/255 when measured, 640 px, 40 frames),
    and the motion along the canal's banks, which are edges of the photo, is kept (0.94 of it within 12 px
    of its mask's edge, against 0.63 for the plume's)."""
    import stillflow.core.field as field

    def setup(name):
        path = REPO / "models" / "realset" / f"{name}.jpg"
        img = load_image(path, max_size=640).rgb
        hh, ww = img.shape[:2]
        hints = load_hints(path.with_name(path.stem + ".hints.json")).for_size(ww, hh)
        return img, hints, mask_from_hints(hints, (hh, ww))

    def loop(img, hints, mask, edges):
        with monkeypatch.context() as m:
            if not edges:  # every mask edge taken for one of the photo's: the feather as it was
                m.setattr(field, "photo_edges", lambda photo: np.ones(photo.shape[:2], np.float32))
            return predict_motion(img, hints=hints, source="hints", travel_frames=40).field

    img, hints, mask = setup("smoke_beacon_street_steam")
    tears = []
    for edges in (False, True):
        meter = QualityMeter(mask, reference=img)
        for fr in render_loop(img, loop(img, hints, mask, edges), LoopSpec(frames=40)):
            meter.add(fr.rgb, fr.hole_fraction)
        tears.append(meter.result()["edge_tear"])
    assert tears[0] > 0.08 and tears[1] < 0.5 * tears[0], tears
    for name, lo, hi in (("smoke_beacon_street_steam", 0.0, 0.8), ("river_welton_canal", 0.9, 1.01)):
        img, hints, mask = setup(name)
        near = (mask > 0.5) & ~(field.box_blur((mask > 0.5).astype(np.float32), 4) > 0.999)
        old, new = (np.hypot(*loop(img, hints, mask, e).transpose(2, 0, 1))[near].mean() for e in (False, True))
        assert lo < new / old < hi, (name, new / old)


def test_a_letterbox_stays_still_and_is_never_carried_into_the_picture(monkeypatch):
    """river_welton_canal (public domain, a frame of a USGS clip): 43 black columns and 4 black rows frame
    it, and its hand-drawn water polygon reaches the top edge. Moved with the water, the black rows were
    carried down the canal as a bar (0.52 % of the region 0.25 darker than the photo at the worst frame,
    480 px, 30 frames, when measured); a flat band along the photo's edge is left still
    (core.motion.flat_borders), as beyond the frame, with a feather beyond it: 0.05 %. The sample has no
    such band; a band of one colour on a textured photo is found, and only it (with its ramp into the
    picture and the feather). The renderer's hand-over at the picture's edges (core.render._hand_over) alone
    takes the bar to 0.12 %, so "before" is measured without it too."""
    import stillflow.core.motion as motion
    from stillflow.core import render
    from stillflow.core.field import luma

    path = REPO / "models" / "realset" / "river_welton_canal.jpg"
    img = load_image(path, max_size=480).rgb
    hh, ww = img.shape[:2]
    hints = load_hints(path.with_name(path.stem + ".hints.json")).for_size(ww, hh)
    mask = mask_from_hints(hints, (hh, ww)) > 0.5
    dark = []
    for borders in (False, True):
        with monkeypatch.context() as m:
            if not borders:
                m.setattr(motion, "flat_borders", lambda image, ramp_px=0.0: (None, None))
                m.setattr(render, "border_strips", lambda *a, **k: [])
            field = predict_motion(img, hints=hints, source="hints", travel_frames=30).field
            dark.append(max(float(((luma(img) - luma(fr.rgb))[mask] > 0.25).mean())
                            for fr in render_loop(img, field, LoopSpec(frames=30))))
    assert dark[0] > 0.003 and dark[1] < 0.2 * dark[0], dark

    assert motion.flat_borders(load_image(SAMPLE, max_size=480).rgb) == (None, None)
    rng = np.random.default_rng(0)
    photo = rng.uniform(0.0, 1.0, (120, 160, 3)).astype(np.float32)
    photo[:10] = (0.5, 0.2, 0.1)  # one colour, not grey
    keep, note = motion.flat_borders(photo, ramp_px=12.0)
    assert "(top 10 px:" in note  # and no other side
    first = int(np.argmax(keep[:, 80] > 0))  # the band and its ramp into the picture held, then the feather
    assert 2 <= first - 10 <= 4 and keep[:first].max() == 0.0 and keep[first - 1 + 12:].min() == 1.0
    ramp = keep[first - 1: first + 12, 80]
    assert (np.diff(ramp) > 0).all() and (keep == keep[:, :1]).all()  # rising smoothly, the same in every column
