"""Hints: files (Stillflow JSON, LabelMe), validation, dense interpolation, masks and freezing."""

import json
from pathlib import Path

import numpy as np
import pytest
from stillflow.core import hints as H
from stillflow.core.errors import InputError
from stillflow.core.field import feather_inside, from_blender_rgba, to_blender_rgba
from stillflow.core.imageio import load_field, save_field
from stillflow.core.motion import predict_motion

ROOT = Path(__file__).resolve().parents[1]


def test_dense_field_passes_through_arrow_velocities():
    shape = (300, 400)
    arrows = [
        H.Arrow((50, 50), (80, 50), 10),  # (3, 0)
        H.Arrow((350, 60), (350, 100), 20),  # (0, 2)
        H.Arrow((200, 250), (170, 220), 15),  # (-2, -2)
    ]
    dense = H.dense_from_arrows(arrows, shape)
    assert dense.shape == (300, 400, 2) and dense.dtype == np.float32
    for a in arrows:
        for f in (0.0, 0.5, 1.0):  # along the arrow
            x = a.start[0] + f * (a.end[0] - a.start[0])
            y = a.start[1] + f * (a.end[1] - a.start[1])
            got = dense[int(min(y, 299)), int(min(x, 399))]
            np.testing.assert_allclose(got, a.velocity, atol=0.08 * np.hypot(*a.velocity))
    assert np.all(np.isfinite(dense))  # stable far from every arrow


def test_flatten_near_evens_the_speed_at_an_arrow_and_leaves_still_and_far_pixels_alone():
    """A sea that moves down at a speed rippling 0.7-1.3 px/frame in stripes, still land on its left and
    an arrow in its middle: near the arrow the speed becomes the local mean (within 10%), its direction
    kept; the land stays exactly still, and far from the arrow the field is untouched."""
    from stillflow.core.motion import flatten_near

    h, w = 200, 400
    yy = np.arange(h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    field = np.zeros((h, w, 2), np.float32)
    field[..., 1] = 1.0 + 0.3 * np.sin(yy / 3.0)
    field[:, :100] = 0.0
    arrow = H.Arrow((200, 80), (200, 120), 40)
    out = flatten_near(field, [arrow], sigma=40.0)
    near = out[70:130, 190:210]
    assert np.abs(np.hypot(near[..., 0], near[..., 1]) - 1.0).max() <= 0.1
    assert np.abs(near[..., 0]).max() == 0.0  # direction kept
    assert np.all(out[:, :100] == 0.0)
    np.testing.assert_array_equal(out[:, 330:], field[:, 330:])


def test_the_field_is_turned_and_scaled_to_each_of_close_arrows_that_differ(monkeypatch):
    """core.motion.honour_arrows on a field that moves everything (1, 0.5) px/frame: three arrows of
    different speeds and directions, 1.2 sigma apart (a slow one between two fast ones, as on the McWay
    Falls and CoastCam photos), each get their own speed and direction at their middle (within 10 %); with
    plain Gaussian shares (SHARPEN 1, the old weighting) each got a blend of its neighbours' and the slow
    one was more than 25 % off. Nowhere is the field faster than the fastest arrow asks (a convex blend of
    the corrections), far from the arrows it is untouched, and where it does not move they add nothing."""
    from stillflow.core import motion
    from stillflow.core.hints import default_sigma

    shape = (240, 720)
    field = np.zeros(shape + (2,), np.float32)
    field[..., 0], field[..., 1] = 1.0, 0.5
    field[:, 700:] = 0.0  # a still strip
    s = 1.2 * default_sigma(shape, 4)
    arrows = [H.Arrow((60, 100), (80, 100), 10),  # (2, 0)
              H.Arrow((60 + s, 100), (60 + s, 106), 10),  # (0, 0.6): slow, turned 90 degrees from its neighbour
              H.Arrow((60 + 2 * s, 100), (75 + 2 * s, 115), 10),  # (1.5, 1.5)
              H.Arrow((705, 20), (715, 20), 10)]  # on the still strip: nothing to turn

    def errors():
        out = motion.honour_arrows(field, arrows)
        mid = [out[round((a.start[1] + a.end[1]) / 2), round((a.start[0] + a.end[0]) / 2)] for a in arrows]
        return out, [np.hypot(*(m - a.velocity)) / np.hypot(*a.velocity) for m, a in zip(mid[:3], arrows[:3], strict=True)]

    out, err = errors()
    assert max(err) <= 0.1, err
    assert np.hypot(out[..., 0], out[..., 1]).max() <= np.hypot(1.5, 1.5) * 1.001
    np.testing.assert_allclose(out[230, 640], field[230, 640], atol=0.01)  # four sigma from every arrow
    assert not out[:, 700:].any()
    monkeypatch.setattr(motion, "SHARPEN", 1.0)
    assert errors()[1][1] > 0.25


def test_hints_outside_the_image_or_zero_length_are_refused():
    with pytest.raises(InputError, match="outside"):
        H.Hints(arrows=[H.Arrow((10, 10), (900, 10))]).validate(320, 180)
    with pytest.raises(InputError, match="zero length"):
        H.Hints(arrows=[H.Arrow((10, 10), (10, 10))]).validate(320, 180)
    with pytest.raises(InputError, match="non-finite"):
        H.Hints(arrows=[H.Arrow((float("nan"), 10), (20, 10))]).validate(320, 180)


def test_stillflow_json_round_trip_and_scaling(tmp_path):
    hints = H.load_hints(ROOT / "samples" / "mcway_falls.hints.json")
    assert hints.arrows and hints.motion_polygons and hints.freeze_points
    H.save_hints(hints, tmp_path / "h.json")
    again = H.load_hints(tmp_path / "h.json")
    assert again == hints
    half = hints.for_size(hints.image_size[0] // 2, hints.image_size[1] // 2)
    assert half.arrows[0].start == pytest.approx((hints.arrows[0].start[0] / 2, hints.arrows[0].start[1] / 2))
    assert half.arrows[0].velocity == pytest.approx(tuple(v / 2 for v in hints.arrows[0].velocity))


def test_labelme_file(tmp_path):
    data = {
        "imageWidth": 200,
        "imageHeight": 100,
        "shapes": [
            {
                "label": "motion",
                "shape_type": "polygon",
                "points": [[10, 10], [190, 10], [190, 90], [10, 90]],
            },
            {"label": "hint1", "shape_type": "line", "points": [[20, 50], [120, 50]]},
            {"label": "freeze", "shape_type": "point", "points": [[150, 20]]},
        ],
    }
    p = tmp_path / "lm.json"
    p.write_text(json.dumps(data))
    hints = H.load_hints(p)
    assert hints.image_size == (200, 100)
    assert hints.arrows[0].velocity == (2.0, 0.0)  # (end - start) / 50
    mask = H.mask_from_hints(hints, (100, 200))
    assert mask[50, 100] == 1 and mask[5, 5] == 0 and mask.sum() == pytest.approx(180 * 80)
    freeze = H.freeze_from_hints(hints, (100, 200))
    assert freeze[20, 150] == 0.0 and freeze[80, 30] == 1.0


def test_malformed_hints_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        H.load_hints(p)
    p.write_text('{"arrows": [{"start": [1]}]}')
    with pytest.raises(InputError, match="malformed"):
        H.load_hints(p)


def test_hints_motion_is_masked_frozen_and_feathered():
    h, w = 120, 200
    img = np.random.default_rng(0).random((h, w, 3)).astype(np.float32)
    hints = H.Hints(
        arrows=[H.Arrow((40, 60), (90, 60), 25)],
        motion_polygons=[[(20, 20), (180, 20), (180, 100), (20, 100)]],
        freeze_points=[(150, 60)],
        freeze_radius=10,
    )
    res = predict_motion(img, hints=hints, source="hints", feather_px=12)
    m = np.hypot(res.field[..., 0], res.field[..., 1])
    assert res.source_used == "hints"
    assert m[:19].max() == 0 and m[101:].max() == 0  # outside the mask
    assert m[60, 60] == pytest.approx(2.0, rel=0.02)  # deep inside: the arrow's speed
    assert m[60, 21] < 0.5 * m[60, 40]  # faded towards the mask edge
    assert m[60, 150] == 0.0 and m[60, 125] > 1.0  # frozen at the point, free beyond twice the radius


def test_feather_is_zero_at_and_outside_the_edge():
    mask = np.zeros((60, 60), np.float32)
    mask[10:50, 10:50] = 1
    f = feather_inside(mask, 9)
    assert f[:10].max() == 0 and f[30, 10] < 0.1 and f[30, 30] == pytest.approx(1.0)


def test_blender_pixel_convention_round_trip():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(7, 5, 2)).astype(np.float32)
    flat = to_blender_rgba(m)
    rgba = flat.reshape(7, 5, 4)
    assert rgba[0, 0, 0] == m[-1, 0, 0]  # Blender's first row is the bottom row
    assert rgba[0, 0, 1] == -m[-1, 0, 1]  # G = -dy: + up on screen
    np.testing.assert_array_equal(from_blender_rgba(flat, 5, 7), m)


@pytest.mark.parametrize("suffix", [".npy", ".exr"])
def test_field_files_round_trip(tmp_path, suffix):
    m = np.random.default_rng(0).normal(size=(9, 13, 2)).astype(np.float32)
    save_field(tmp_path / f"f{suffix}", m)
    np.testing.assert_array_equal(load_field(tmp_path / f"f{suffix}", (9, 13)), m)
    with pytest.raises(InputError, match="image is"):
        load_field(tmp_path / f"f{suffix}", (10, 13))
    m[2, 2, 1] = np.inf
    np.save(tmp_path / "inf.npy", m)
    with pytest.raises(InputError, match="NaN or infinite"):
        load_field(tmp_path / "inf.npy")


def test_auto_motion_source_is_the_model_guided_by_arrows_else_the_arrows(tmp_path):
    from stillflow.core.errors import StillflowError
    from stillflow.core.imageio import load_image

    img = load_image(ROOT / "samples" / "mcway_falls.jpg", max_size=256).rgb
    h, w = img.shape[:2]
    arrows = H.Hints(arrows=[H.Arrow((20, 20), (60, 20), 20)])
    guided = predict_motion(img, hints=arrows)
    assert guided.source_used == "model+hints" and guided.provider
    assert not np.allclose(guided.field, predict_motion(img, hints=arrows, source="hints").field)
    assert guided.field[..., 0].mean() > 0.1 * abs(guided.field[..., 1].mean())  # the arrow points right
    alone = predict_motion(img)  # no arrows: the shipped network
    assert alone.source_used == "model" and alone.field.shape == (h, w, 2)
    assert np.abs(alone.field).max() > 0.05  # it predicts motion somewhere in a photo of a waterfall and sea
    missing = str(tmp_path / "missing.onnx")
    with pytest.raises(StillflowError, match="not found"):
        predict_motion(img, model_path=missing)
    with pytest.raises(StillflowError, match="not found"):
        predict_motion(img, hints=arrows, source="model", model_path=missing)
    # with arrows, "auto" falls back to them when the model cannot run, and says so
    fallback = predict_motion(img, hints=arrows, model_path=missing)
    assert fallback.source_used == "hints" and any("arrows alone" in n for n in fallback.notes)
    np.testing.assert_array_equal(fallback.field, predict_motion(img, hints=arrows, source="hints").field)


def test_feather_fades_motion_only_where_it_crosses_the_mask_edge():
    from stillflow.core.field import shape_motion

    h, w = 120, 60
    mask = np.zeros((h, w), np.float32)
    mask[20:100, 24:36] = 1  # a thin waterfall, 12 px wide
    down = np.zeros((h, w, 2), np.float32)
    down[..., 1] = 1.5  # falling along the strip
    out = shape_motion(down, mask, feather_px=12)
    speed = np.hypot(out[..., 0], out[..., 1])
    assert speed[60, 24:36].min() > 0.95 * 1.5  # along its sides: full speed across the whole width
    assert speed[21, 30] < 0.2 * 1.5 and speed[98, 30] < 0.2 * 1.5  # into / out of its ends: faded
    assert speed[:, :24].max() == 0 and speed[:19].max() == 0  # nothing outside the mask moves
    across = np.zeros((h, w, 2), np.float32)
    across[..., 0] = 1.5  # the same strip with motion across it fades at its sides
    speed_x = np.hypot(*shape_motion(across, mask, feather_px=12).transpose(2, 0, 1))
    assert speed_x[60, 24] < 0.2 * 1.5
