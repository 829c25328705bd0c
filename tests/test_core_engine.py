"""The engine on real behaviour: integration, splatting, symmetric loops, against the plain reference."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stillflow.core import engines, integrate, render
from stillflow.core.engines import reference
from stillflow.core.errors import InputError
from stillflow.core.field import box_blur
from stillflow.core.imageio import load_image
from stillflow.core.job import LoopSpec
from stillflow.core.quality import loop_quality
from stillflow.core.render import render_loop

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "mcway_falls.jpg"


@pytest.fixture(scope="module")
def photo():
    """A real photo (the bundled CC0 sample) at 320x180."""
    return load_image(SAMPLE, max_size=320).rgb


def smooth_field(h, w, amp=1.5, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = rng.uniform(20, 60, 2)
    return np.stack([amp * np.sin(yy / a) + 0.3, 0.7 * amp * np.cos(xx / b)], -1).astype(np.float32)


ENGINES = ["cpu", "torch-cpu"]


@pytest.mark.parametrize("device", ENGINES)
def test_engine_splat_matches_reference(device, photo):
    h, w = photo.shape[:2]
    rng = np.random.default_rng(1)
    flow = smooth_field(h, w) * 9.7  # displacements of ~15 px, crossing band borders
    flow[:7, :9] = np.nan  # dropped particles
    weight = rng.uniform(0.1, 2.0, (h, w)).astype(np.float32)
    ref = reference.splat_reference(photo, flow, weight, 0.6)
    eng = engines.get_engine(device)
    acc = eng.zeros((h, w, 4))
    eng.accumulate(acc, eng.asarray(photo), eng.asarray(flow), eng.asarray(weight), 0.6)
    np.testing.assert_allclose(eng.to_numpy(acc), ref, rtol=1e-4, atol=2e-4)


@pytest.mark.parametrize("device", ENGINES)
def test_engine_coverage_blend_matches_reference(device, photo):
    h, w = photo.shape[:2]
    motion = smooth_field(h, w, amp=2.5)
    weight = render.softmax_weight(motion)
    eng = engines.get_engine(device)
    ref = engines.get_engine("numpy")
    fwd, bwd = motion * 6.0, -motion * 11.0  # stretched and squeezed regions, holes at the borders
    accs = []
    for e in (eng, ref):
        a_f, a_b = e.zeros((h, w, 5)), e.zeros((h, w, 5))
        e.accumulate(a_f, e.asarray(photo), e.asarray(fwd), e.asarray(weight), 1.0)
        e.accumulate(a_b, e.asarray(photo), e.asarray(bwd), e.asarray(weight), 1.0)
        accs.append((a_f, a_b))
    np.testing.assert_allclose(eng.to_numpy(accs[0][0]), accs[1][0], rtol=1e-4, atol=2e-4)
    got, got_holes = eng.blend(*accs[0], 0.3)
    want, want_holes = ref.blend(*accs[1], 0.3)
    assert want_holes.any()
    np.testing.assert_array_equal(got_holes, want_holes)
    np.testing.assert_allclose(got[~want_holes], want[~want_holes], atol=1e-4)


@pytest.mark.parametrize("size", [120, 960])  # DetailMatch's block size k is 1 at 120 px, 4 at 960
def test_compiled_detail_match_matches_reference(size):
    """core.render.DetailMatch through the compiled engine's two kernels gives the numpy reference's frame,
    on the sample with a blurred, noisy copy of it as the frame (its detail raised here, lowered there)."""
    photo = load_image(SAMPLE, max_size=size).rgb
    h, w = photo.shape[:2]
    motion = smooth_field(h, w)
    motion[: h // 3] = 0.0  # a still band: left exactly as it is
    rng = np.random.default_rng(3)
    frame = box_blur(photo, 1) + rng.normal(0.0, 0.02, photo.shape).astype(np.float32)
    frame = np.ascontiguousarray(np.clip(frame, 0.0, 1.0), dtype=np.float32)
    outs = []
    for e in (engines.get_engine("numpy"), engines.get_engine("cpu")):
        match = render.DetailMatch(photo, motion, engine=e)
        outs.append(match(frame.copy()))
    assert match.k == (1 if size == 120 else 4)
    np.testing.assert_allclose(outs[1], outs[0], atol=1e-5)
    assert np.abs(outs[0] - frame).max() > 0.01  # the match did change the frame
    np.testing.assert_array_equal(outs[1][: h // 3 - 1], frame[: h // 3 - 1])


@pytest.mark.parametrize(("stem", "size", "renderer", "parts"), [("smoke_beacon_street_steam", 480, "sharp", 1),
                                                                ("smoke_beacon_street_steam", 480, "splat", 1),
                                                                ("clouds_colosseum", 960, "sharp", 2)])
def test_a_small_moving_region_is_rendered_alone_and_the_rest_stays_the_photo(monkeypatch, stem, size, renderer,
                                                                              parts):
    """Real photos of models/realset (public domain / CC0) with their hand-drawn hints: the steam covers a
    few percent of the picture, the Colosseum's sky and a patch of it seen through an arch two parts; so
    render_loop renders only a box around each (core.render.moving_boxes). Rendered whole, the loop leaves
    every pixel outside those boxes the photo in every frame (the premise: exactly, or to float32 rounding
    for the splat renderer), and the boxes alone give the same loop (the sharp renderer's crossing pattern,
    blur and dither are the whole picture's, cut to each box)."""
    from stillflow.core.hints import load_hints
    from stillflow.core.motion import predict_motion

    path = ROOT / "models" / "realset" / f"{stem}.jpg"
    img = load_image(path, max_size=size).rgb
    h, w = img.shape[:2]
    motion = predict_motion(img, hints=load_hints(path.with_name(path.stem + ".hints.json"))).field
    boxes = render.moving_boxes(motion) or []
    outside = np.ones((h, w), bool)
    for y0, y1, x0, x1 in boxes:
        outside[y0:y1, x0:x1] = False
    assert len(boxes) == parts and outside.mean() > 0.3, (boxes, outside.mean())
    spec = LoopSpec(frames=16, renderer=renderer)
    boxed = [f.rgb for f in render_loop(img, motion, spec, device="cpu")]
    monkeypatch.setattr(render, "CROP_GAIN", -1.0)  # never crop
    whole = [f.rgb for f in render_loop(img, motion, spec, device="cpu")]
    for a, b in zip(boxed, whole, strict=True):
        np.testing.assert_array_equal(a[outside], img[outside])
        # (the splat renderer's normalised splat of a still pixel is the photo to float32 rounding)
        np.testing.assert_allclose(b[outside], img[outside], rtol=0, atol=0 if renderer == "sharp" else 1e-6)
        # the same loop: each box's detail window sees that box alone (at most 6.5e-5/255 on average when
        # measured, 0.02 at a pixel)
        assert np.abs(a - b).mean() < 0.002 / 255 and np.abs(a - b).max() < 0.05, np.abs(a - b).mean() * 255
    assert max(np.abs(a - img).max() for a in boxed) > 0.05  # it does move


def test_coverage_blend_removes_dotted_patterns_on_the_sample():
    # Where the flow stretches one stream thin, the paper's joint normalisation turns its flickering density
    # into dotted patterns; the figure that catches them is the local excess of high-frequency energy over
    # frame 0 ("speckle"). The stretch is made on purpose, on the sample photo: its own hint field stretches
    # the surf too little to rely on (single blend's speckle 2.0, and 0.0 with other arrows' weighting).
    from stillflow.core.hints import load_hints, mask_from_hints

    img = load_image(SAMPLE, max_size=640).rgb
    h, w = img.shape[:2]
    mask = mask_from_hints(load_hints(SAMPLE.with_name("mcway_falls.hints.json")).for_size(w, h), (h, w))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    k = 0.01  # each pixel of the drawn regions moves away from the picture's middle, faster the further out
    motion = np.stack([k * (xx - w / 2), 0.3 * k * (yy - h / 2)], -1) * box_blur(mask, 6)[..., None]
    speckle = {}
    for blend in ("single", "coverage"):
        frames = render_loop(img, motion.astype(np.float32), LoopSpec(frames=30, blend=blend, renderer="splat"))
        q = loop_quality(frames, mask)
        speckle[blend] = q["speckle"], q["speckle_rel"]
    # measured: single 10.6 / 0.80, coverage 0.28 / 0.16
    assert speckle["single"][0] > 3 * speckle["coverage"][0] and speckle["single"][0] > 2, speckle
    assert speckle["single"][1] > 3 * speckle["coverage"][1], speckle  # the relative figure too


@pytest.mark.parametrize("device", ENGINES)
def test_engine_euler_step_matches_reference(device, photo):
    h, w = photo.shape[:2]
    motion = smooth_field(h, w, amp=2.0)
    flow = smooth_field(h, w, amp=30.0, seed=3)  # sends some particles out of the image
    ref = reference.euler_step_reference(motion, flow)
    eng = engines.get_engine(device)
    got = eng.to_numpy(eng.step(eng.asarray(motion), eng.asarray(flow)))
    assert np.isnan(ref).any(), "the test needs particles that leave the image"
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got[~np.isnan(ref)], ref[~np.isnan(ref)], atol=1e-4)


def test_constant_field_integrates_and_moves_by_t_pixels(photo):
    h, w = photo.shape[:2]
    motion = np.zeros((h, w, 2), np.float32)
    motion[..., 0] = 2.0
    motion[..., 1] = -1.0
    eng = engines.get_engine("cpu")
    for t, flow in enumerate(integrate.forward_fields(eng, motion, 6), start=1):
        inside = flow[t:, : w - 2 * t]
        np.testing.assert_allclose(inside[..., 0], 2.0 * t, atol=1e-5)
        np.testing.assert_allclose(inside[..., 1], -1.0 * t, atol=1e-5)
        if t > 1:  # particles that left the image at the previous step are dropped, not clamped
            assert np.isnan(flow[:, w - 2 * (t - 1) :]).all() and np.isnan(flow[: t - 1]).all()
        acc = eng.zeros((h, w, 4))
        eng.accumulate(acc, photo, flow, np.ones((h, w), np.float32), 1.0)
        rgb, holes = eng.normalise(acc)
        # the photo moved by (2t, -t) pixels exactly; the strip it left behind is a hole
        np.testing.assert_allclose(rgb[: h - t, 2 * t :], photo[t:, : w - 2 * t], atol=1e-5)
        assert holes[:, : 2 * t].all() and not holes[: h - t, 2 * t :].any()


def test_periodic_pattern_loop_is_a_pure_shift():
    # stripes of period 16 moving 2 px/frame in an 8-frame loop: both streams agree, frame t = shift 2t
    h, w, n, v = 40, 96, 8, 2.0
    x = np.arange(w, dtype=np.float32)
    row = 0.5 + 0.5 * np.sin(2 * np.pi * x / 16.0)
    img = np.repeat(np.stack([row, row * 0.5, 1 - row], -1)[None], h, axis=0).astype(np.float32)
    motion = np.zeros((h, w, 2), np.float32)
    motion[..., 0] = v
    for t, fr in enumerate(render_loop(img, motion, LoopSpec(frames=n), device="cpu")):
        shift = int(v * t)
        # away from the strips the streams leave at the sides, and from core.render.DetailMatch's window
        # (12 px here) over them: there the detail's energy is the photo's, so its gain is 1
        lo, hi = 30, w - 30
        np.testing.assert_allclose(fr.rgb[:, lo:hi], np.roll(img, shift, axis=1)[:, lo:hi], atol=1e-4)


def test_zero_motion_gives_the_input(photo):
    frames = list(render_loop(photo, np.zeros(photo.shape[:2] + (2,), np.float32), LoopSpec(frames=5)))
    assert len(frames) == 5
    for fr in frames:
        np.testing.assert_array_equal(fr.rgb, photo)


@pytest.mark.parametrize("device", ENGINES)
def test_loop_closes_without_a_seam(device, photo):
    h, w = photo.shape[:2]
    n = 24
    motion = smooth_field(h, w, amp=1.2)
    frames = [f.rgb for f in render_loop(photo, motion, LoopSpec(frames=n), device=device)]
    np.testing.assert_array_equal(frames[0], photo)
    # frame N computed directly: alpha = 0, backward stream after 0 steps -> the input itself
    eng = engines.get_engine(device)
    acc = eng.zeros((h, w, 4))
    zero = eng.zeros((h, w, 2))
    fwd_n = zero
    for _ in range(n):
        fwd_n = eng.step(eng.asarray(motion), fwd_n)
    weight = eng.asarray(render.softmax_weight(motion))
    render.symmetric_splat(eng, acc, eng.asarray(photo), weight, fwd_n, zero, 0.0)
    frame_n, holes = eng.normalise(acc)
    assert not holes.any()
    np.testing.assert_allclose(frame_n, frames[0], atol=1e-5)
    # the wrap step N-1 -> 0 is no larger than an ordinary step (it mirrors the step 0 -> 1)
    q = loop_quality(frames)
    steps = [np.abs(frames[i + 1] - frames[i]).mean() for i in range(n - 1)]
    assert q["seam"] <= 1.01 * max(steps), q
    assert q["seam"] <= 1.5 * np.median(steps), q


def test_splatting_conserves_weight(photo):
    h, w = photo.shape[:2]
    flow = smooth_field(h, w, amp=4.0)
    weight = np.random.default_rng(2).uniform(0.5, 1.5, (h, w)).astype(np.float32)
    gy, gx = np.mgrid[0:h, 0:w]
    tx, ty = gx + flow[..., 0], gy + flow[..., 1]
    inside = (tx >= 0) & (ty >= 0) & (tx < w - 1) & (ty < h - 1)
    flow[~inside] = np.nan
    eng = engines.get_engine("cpu")
    acc = eng.zeros((h, w, 4))
    eng.accumulate(acc, photo, flow, weight, 0.75)
    assert acc[..., 3].sum() == pytest.approx(0.75 * weight[inside].sum(), rel=1e-5)
    np.testing.assert_allclose(acc[..., :3].sum(axis=(0, 1)), 0.75 * (photo * weight[..., None])[inside].sum(0), rtol=1e-4)


def test_masked_out_region_does_not_change(photo):
    from stillflow.core.field import shape_motion

    h, w = photo.shape[:2]
    mask = np.zeros((h, w), np.float32)
    mask[:, : w // 2] = 1.0
    motion = shape_motion(smooth_field(h, w, amp=1.0), mask, feather_px=6)
    n = 12
    reach = int(np.ceil(np.abs(motion).max() * n)) + 2
    for fr in render_loop(photo, motion, LoopSpec(frames=n)):
        np.testing.assert_allclose(fr.rgb[:, w // 2 + reach :], photo[:, w // 2 + reach :], atol=1e-5)


def test_backward_fields_equal_direct_integration(photo):
    h, w = photo.shape[:2]
    motion = -smooth_field(h, w, amp=1.7)
    motion[:, : w // 3] = 0.0  # still land: its particles stay at rest, and are not stored
    eng = engines.get_engine("cpu")
    n = 17
    direct = [np.zeros((h, w, 2), np.float32)]
    for _ in range(1, n):
        direct.append(eng.step(motion, direct[-1]))
    assert np.all(direct[-1][:, : w // 3] == 0.0) and np.isnan(direct[-1]).any()  # some particles left
    for budget in (0, 2**30):  # checkpoints and recomputed blocks / every field kept
        bwd = integrate.BackwardFields(eng, motion, n, budget_bytes=budget)
        assert bwd.active.size == h * (w - w // 3)
        for s in range(n - 1, 0, -1):
            np.testing.assert_array_equal(bwd.get(s), direct[s])
        with pytest.raises(ValueError):
            bwd.get(3)  # not descending


def test_bad_inputs_are_refused(photo):
    h, w = photo.shape[:2]
    motion = smooth_field(h, w)
    bad = motion.copy()
    bad[3, 4, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        next(render_loop(photo, bad))
    with pytest.raises(InputError, match="image is"):
        next(render_loop(photo, motion[:-1]))
    with pytest.raises(InputError, match="frames"):
        next(render_loop(photo, motion, LoopSpec(frames=1)))


def test_ghosting_warning_suggests_a_loop_length(photo):
    h, w = photo.shape[:2]
    motion = np.zeros((h, w, 2), np.float32)
    motion[..., 0] = 3.0
    warn = render.loop_warnings(motion, LoopSpec(frames=120))
    assert warn and "frames" in warn[0]
    assert render.loop_warnings(motion, LoopSpec(frames=4)) == []


def test_core_imports_without_bpy():
    code = (
        "import sys; sys.modules['bpy'] = None\n"
        "import stillflow.core.render, stillflow.core.motion, stillflow.core.hints, stillflow.core.imageio\n"
        "import stillflow.core.quality, stillflow.operators.cli\n"
        "assert 'bpy' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_holes_are_filled_from_their_neighbours(photo):
    h, w = photo.shape[:2]
    rgb = photo.copy()
    holes = np.zeros((h, w), bool)
    holes[40:44, 100:103] = True  # a small hole inside a smooth region
    holes[:, :2] = True  # a strip along the border
    rgb[holes] = 0.0
    render.fill_holes(rgb, holes, fallback=np.zeros_like(photo))
    assert np.all(np.isfinite(rgb)) and rgb[holes].min() > 0.0  # filled, not from the (black) fallback
    np.testing.assert_array_equal(rgb[~holes], photo[~holes])  # valid pixels untouched
    err = np.abs(rgb[holes] - photo[holes]).mean()
    assert err < 0.08, err
    # The compiled engine's blur fills them the same (to float32 rounding) as core.field's.
    fast = photo.copy()
    fast[holes] = 0.0
    render.fill_holes(fast, holes, fallback=np.zeros_like(photo), blur=engines.get_engine("cpu").box_blur)
    np.testing.assert_allclose(fast, rgb, atol=1e-5)
    scattered = np.random.default_rng(3).random((h, w)) < 0.02
    from stillflow.core.field import box_blur

    stack = np.where(scattered[..., None], 0.0, photo).astype(np.float32)
    np.testing.assert_allclose(engines.get_engine("cpu").box_blur(stack, 6), box_blur(stack, 6), atol=1e-5)


@pytest.mark.parametrize("renderer", ["sharp", "splat"])
def test_compiled_render_never_calls_back_into_python(renderer, photo):
    """Once compiled, the numba kernels run no Python code while a loop renders. A kernel that boxed a
    new array called numba's unpickler (Python) every call; a Ctrl-C raised there, inside numba's code,
    crashed or hung `stillflow batch`."""
    h, w = photo.shape[:2]
    field = smooth_field(h, w)
    spec = LoopSpec(frames=8, renderer=renderer)
    list(render_loop(photo, field, spec, device="cpu"))  # compiled (or loaded from the cache) and warm
    inside: list[str] = []

    def watch(frame, event, arg):
        if event == "call" and "numba" in frame.f_code.co_filename.replace("\\", "/").split("/site-packages/")[-1]:
            inside.append(frame.f_code.co_name)

    frames = render_loop(photo, field, spec, device="cpu")
    next(frames)
    sys.setprofile(watch)
    try:
        n = sum(1 for _ in frames)
    finally:
        sys.setprofile(None)
    assert n == 7 and not inside, sorted(set(inside))
