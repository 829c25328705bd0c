"""The shipped motion model (models/stillflow_motion.onnx) through core.model.MotionModel (ONNX Runtime)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from stillflow.core.errors import StillflowError
from stillflow.core.model import DEFAULT_MODEL_PATH, MotionModel, resize

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def model():
    return MotionModel(device="cpu")


@pytest.fixture(scope="module")
def beach():
    """Real photo (CC0, see data/LICENSE-beach_small.txt): sea with surf in the top ~55 %, sand below."""
    from PIL import Image

    rgb = np.asarray(Image.open(DATA / "beach_small.jpg").convert("RGB"), np.float32) / 255.0
    mask = np.zeros(rgb.shape[:2], np.float32)
    mask[: int(0.5 * rgb.shape[0])] = 1.0
    return rgb, mask


def test_shipped_model_is_small_and_loads(model, caplog):
    assert DEFAULT_MODEL_PATH.is_file()
    assert DEFAULT_MODEL_PATH.stat().st_size < 30e6
    assert model.provider == "CPUExecutionProvider"
    with caplog.at_level(logging.INFO, logger="stillflow.core.model"):
        m = MotionModel(device="auto")
    assert m.provider in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert any(m.provider in r.getMessage() for r in caplog.records)


def test_predict_real_photo_motion_inside_mask(model, beach):
    rgb, mask = beach
    M = model.predict(rgb, mask=mask)
    assert M.shape == rgb.shape[:2] + (2,) and M.dtype == np.float32
    assert np.isfinite(M).all()
    mag = np.linalg.norm(M, axis=-1)
    inside, outside = mag[mask > 0.5].mean(), mag[mask < 0.5].mean()
    assert inside > 0.05, inside  # the sea moves (px/frame of this 256 px photo: half the 512 px speeds)
    assert inside > 4 * outside, (inside, outside)


def test_predict_without_mask_or_hints(model, beach):
    rgb, _ = beach
    M = model.predict(rgb)
    assert M.shape == rgb.shape[:2] + (2,)
    assert np.isfinite(M).all()
    assert np.abs(M).max() < 50


def test_hints_steer_the_field(model, beach):
    rgb, mask = beach
    hint = np.zeros(rgb.shape[:2] + (2,), np.float32)
    means = []
    for dx in (2.0, -2.0):
        hint[..., 0] = dx
        M = model.predict(rgb, mask=mask, hint_field=hint)
        means.append(M[mask > 0.5, 0].mean())
    assert means[0] > 0.5 and means[1] < -0.5, means


@pytest.mark.parametrize("speed", [1.5, 0.1])
@pytest.mark.parametrize("angle_deg", [0, 90, 180, 270])
def test_model_follows_the_arrows_direction_even_against_the_picture(model, beach, angle_deg, speed):
    """A uniform hint field in any direction (waves going out to sea included) comes out inside the mask in
    that direction (within 20 degrees) and at that speed within a factor of 2 (the net slows the far sea
    down, as perspective does: 0.56x for arrows toward the viewer): the picture decides where things move and
    how the speed varies, the arrows decide the direction. Also for arrows slower than any in training."""
    rgb, mask = beach
    a = np.radians(angle_deg)
    v = speed * np.array([np.cos(a), np.sin(a)], np.float32)
    M = model.predict(rgb, mask=mask, hint_field=np.broadcast_to(v, rgb.shape[:2] + (2,)).copy())
    mean = M[mask > 0.5].mean(0)
    err = np.degrees(np.arccos(np.clip(mean @ v / (np.linalg.norm(mean) * np.linalg.norm(v)), -1, 1)))
    assert err < 20, (angle_deg, mean)
    assert 0.5 < np.linalg.norm(mean) / speed < 2.0, (angle_deg, mean)


def test_all_ones_mask_is_no_mask(model, beach):
    """The net derives "mask given" from the mask itself: a mask over the whole picture means "no mask"."""
    rgb, mask = beach
    hint = np.zeros(rgb.shape[:2] + (2,), np.float32)
    hint[..., 1] = 1.5
    ones = np.ones(rgb.shape[:2], np.float32)
    for hf in (None, hint):
        assert np.allclose(
            model.predict(rgb, mask=ones, hint_field=hf), model.predict(rgb, hint_field=hf), atol=1e-5
        )
    # and a real mask changes what the hints do: inside it they pass through more strongly than with no mask
    with_mask = model.predict(rgb, mask=mask, hint_field=hint)[mask > 0.5, 1].mean()
    assert with_mask > 0.5, with_mask


def test_odd_sizes_and_uint8(model):
    rng = np.random.default_rng(0)
    img = (rng.random((37, 53, 3)) * 255).astype(np.uint8)
    M = model.predict(img)
    assert M.shape == (37, 53, 2) and np.isfinite(M).all()
    small = MotionModel(device="cpu", working_size=None)
    M = small.predict(img.astype(np.float32) / 255)
    assert M.shape == (37, 53, 2)


def test_bad_inputs_raise(model):
    with pytest.raises(StillflowError):
        model.predict(np.zeros((10, 10), np.float32))
    with pytest.raises(StillflowError):
        model.predict(np.zeros((10, 10, 3), np.float32), mask=np.ones((5, 5), np.float32))
    bad = np.zeros((10, 10, 3), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(StillflowError):
        model.predict(bad)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(StillflowError) as e:
        MotionModel(tmp_path / "nope.onnx")
    assert "not found" in str(e.value) and "\n" not in str(e.value)
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(DEFAULT_MODEL_PATH.read_bytes()[:5000])
    with pytest.raises(StillflowError) as e:
        MotionModel(bad)
    assert "\n" not in str(e.value)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx model at all")
    with pytest.raises(StillflowError):
        MotionModel(junk)


def test_resize_keeps_constants_and_identity():
    a = np.random.default_rng(1).random((21, 34, 2)).astype(np.float32)
    assert np.array_equal(resize(a, 21, 34), a)
    c = np.full((300, 200), 0.7, np.float32)
    assert np.allclose(resize(c, 17, 9), 0.7, atol=1e-5)
    assert np.allclose(resize(c, 611, 405), 0.7, atol=1e-5)


def test_onnx_matches_torch():
    """The shipped weights in the torch network (models/net.py) agree with ONNX Runtime within 1e-4."""
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort
    from onnx import numpy_helper
    from stillflow.models.training.net import MotionUNet

    m = onnx.load(str(DEFAULT_MODEL_PATH))
    weights = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    net = MotionUNet(base=weights["stem.c1.weight"].shape[0]).eval()
    sd = net.state_dict()
    missing = set(sd) - set(weights)
    assert not missing, f"ONNX initializers lack {sorted(missing)[:5]}"
    net.load_state_dict({k: torch.from_numpy(np.array(weights[k])) for k in sd})
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 6, 64, 96, generator=g)
    x[:, 4:6] = (x[:, 4:6] - 0.5) * 6
    with torch.no_grad():
        ref = net(x).numpy()
    sess = ort.InferenceSession(str(DEFAULT_MODEL_PATH), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(ref - got).max() < 1e-4


@pytest.mark.slow
def test_rendered_scene_vector_pass_is_the_motion_that_happens():
    """models/render_data.py: Cycles' Vector pass, read with our sign convention, is the motion between the
    rendered frames 1 and 2 (OpenCV's DIS optical flow of the two renders agrees in direction and size)."""
    pytest.importorskip("bpy")
    import cv2
    from stillflow.models.training.render_data import render_scene

    s = render_scene(5, 160, 120, samples=16, kind="river", next_frame=True)
    a, b, m = s["rgb"], s["rgb_next"], s["motion"]
    moving = np.linalg.norm(m, axis=-1) > 0.3
    assert 0.05 < moving.mean() < 0.98, moving.mean()
    grey = [(x.mean(-1) * 255).astype(np.uint8) for x in (a, b)]
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(grey[0], grey[1], None)
    v, f = np.median(m[moving], 0), np.median(flow[moving], 0)
    cos = float(v @ f / (np.linalg.norm(v) * np.linalg.norm(f)))
    assert cos > 0.95, (v, f)
    assert 0.6 < np.linalg.norm(f) / np.linalg.norm(v) < 1.4, (v, f)


def test_training_stream_turns_hinted_samples_when_asked():
    """--p-turn reaches the samples: the same seed gives the same speeds, turned, and the hints turn with them."""
    pytest.importorskip("torch")
    from stillflow.models.training.train import ProceduralStream

    plain = ProceduralStream(64, 0, p_hint=1.0, p_mask=0.0)
    turned = ProceduralStream(64, 0, p_hint=1.0, p_mask=0.0, p_turn=1.0)
    seen, agree = 0, {"turned": [], "plain": []}
    for seed in range(8000000, 8000040):
        a, b = plain._sample(seed), turned._sample(seed)
        if not a["has_hint"] or np.abs(a["y"]).max() < 0.5:
            continue
        seen += 1
        np.testing.assert_allclose(np.hypot(*a["y"]), np.hypot(*b["y"]), rtol=1e-4, atol=1e-5)
        sel = np.hypot(*a["y"]) > 0.5
        ang = lambda v: np.arctan2(v[1], v[0])  # noqa: E731
        d_target = np.angle(np.exp(1j * (ang(b["y"]) - ang(a["y"]))))[sel]
        assert np.allclose(d_target, d_target[0], atol=1e-3)  # one angle for the whole sample
        # the arrows are drawn from the turned motion: they agree with it, not with the picture's own motion
        t = b["y"][:, sel]
        for name, hint in (("turned", b["x"][4:6][:, sel]), ("plain", a["x"][4:6][:, sel])):
            agree[name].append(((t * hint).sum(0) / np.maximum(np.hypot(*t) * np.hypot(*hint), 1e-6)).mean())
    assert seen >= 5
    assert np.mean(agree["turned"]) > np.mean(agree["plain"]) + 0.3, agree
