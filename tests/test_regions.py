"""Moving regions an artist edits (issue 12, item 3): the region a field moves as hints, a rough region
snapped to a real photo's edges, and `stillflow predict --write-hints`. Real photos: models/realset/ (CC0 /
public domain, models/realset/LICENSES.md); the real ONNX model for the command line."""

from __future__ import annotations

import numpy as np
import pytest
import stillflow_cli_test_helpers as cli  # registered by conftest.py
from stillflow.core import regions
from stillflow.core.hints import load_hints, mask_from_hints, rasterize_polygons
from stillflow.models import evaluate_real as ev


def iou(a, b):
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_region_with_a_hole_becomes_a_motion_polygon_and_a_freeze_polygon():
    region = np.zeros((90, 160), bool)
    region[10:70, 20:140] = True
    region[30:45, 60:90] = False  # a boat in the lake
    region[75:78, 5:8] = True  # a speck: dropped
    hints = regions.region_hints(region, (320, 180))
    assert len(hints.motion_polygons) == 1 and len(hints.freeze_polygons) == 1
    assert hints.image_size == (320, 180) and len(hints.motion_polygons[0]) <= 12
    back = rasterize_polygons(hints.motion_polygons, (180, 320)) > 0.5
    hole = rasterize_polygons(hints.freeze_polygons, (180, 320)) > 0.5
    want = np.kron(region, np.ones((2, 2), bool))
    want[150:156, 10:16] = False
    assert iou(back & ~hole, want) > 0.98


def test_moving_region_drops_specks_and_keeps_slow_arrows():
    field = np.zeros((200, 300, 2), np.float32)
    field[50:150, 50:250, 0] = 1.0
    field[5:9, 5:9, 1] = 1.0  # 16 px of 60,000: a speck
    region = regions.moving_region(field)
    assert region[100, 150] and not region[6, 6] and region.sum() == pytest.approx(100 * 200, rel=0.03)
    slow = field * 0.05  # 0.05 px/frame, drawn slow: still a region
    assert iou(regions.moving_region(slow), region) > 0.95


@pytest.mark.parametrize("stem", ["lake_calm_bay_574021", "river_welton_canal", "sea_surf_cove_315998"])
def test_a_loose_region_snaps_onto_the_photos_edges(stem):
    """A region drawn 2 % of the photo too wide (or too narrow) all round ends closer to the hand-drawn
    outline of models/realset once snapped (measured over the 15 moving photos: IoU 0.78 -> 0.83 on
    average, better on 24 of 30)."""
    img, _hints, truth, _dir = ev.load_photo(ev.REALSET / f"{stem}.jpg", 960)
    px = int(0.02 * max(truth.shape))
    for rough in (regions.grow(truth, px), regions._shrink(truth, px)):
        snapped = regions.snap_to_edges(img, rough, band=0.04)
        assert iou(snapped, truth) > iou(rough, truth) + 0.02


def test_snapping_a_region_drawn_over_nothing_gives_nothing():
    img = np.random.default_rng(0).random((60, 80, 3)).astype(np.float32)
    assert not regions.snap_to_edges(img, np.zeros((60, 80), np.float32)).any()


def test_predict_write_hints_on_a_real_photo(tmp_path):
    """The proposal of the real model on a real lake photo: a hints file whose region is where the field
    moves; the user's arrows kept; never written over; one clear line when there is nothing to write."""
    photo = tmp_path / "bay.jpg"
    photo.write_bytes((ev.REALSET / "lake_calm_bay_574021.jpg").read_bytes())
    out = tmp_path / "bay.proposed.json"
    r = cli.run_cli("predict", photo, "-o", tmp_path / "bay.npy", "--write-hints", out, "--motion", "model",
                    timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    hints = load_hints(out)
    field = np.load(tmp_path / "bay.npy")
    h, w = field.shape[:2]
    assert hints.image_size == (w, h) and hints.motion_polygons and not hints.arrows
    drawn = mask_from_hints(hints, (h, w)) > 0.5
    assert iou(drawn, regions.moving_region(field)) > 0.7  # snapped to edges, so not the same pixels
    assert drawn.mean() < 0.95  # the hills around the bay are left out

    before = out.read_bytes()
    again = cli.run_cli("predict", photo, "--write-hints", out, timeout=300, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr and out.read_bytes() == before
    none = cli.run_cli("predict", photo, timeout=300, cwd=tmp_path)
    assert none.returncode == 2 and cli.one_line_error(none.stderr).startswith("stillflow: error:")

    # With the user's arrows: they are kept beside the proposed region
    arrows = cli.write_hints(tmp_path / "arrows.json", [((300, 400), (340, 400), 40)], (w, h))
    guided = tmp_path / "guided.json"
    r = cli.run_cli("predict", photo, "--hints", arrows, "--write-hints", guided, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(load_hints(guided).arrows) == 1 and load_hints(guided).motion_polygons
