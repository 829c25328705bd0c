"""Motion on real photos never trained on (issue 12), with the real ONNX model and models/realset/."""

from __future__ import annotations

import numpy as np
import pytest
from stillflow.models import evaluate_real as ev

PHOTOS = sorted(ev.REALSET.glob("*.jpg"))


def test_the_real_set_is_complete_and_licensed():
    licences = (ev.REALSET / "LICENSES.md").read_text(encoding="utf-8")
    assert len(PHOTOS) >= 15
    for p in PHOTOS:
        assert p.with_name(p.stem + ".hints.json").is_file(), p
        assert f"## {p.name}" in licences, f"{p.name} has no licence entry"


@pytest.fixture(scope="module")
def rows():
    return ev.evaluate(PHOTOS, 384)


def test_guided_motion_follows_the_arrows_speed_and_direction(rows):
    guided = [r for r in rows if not np.isnan(r["speed_ratio"])]
    within = [r["photo"] for r in guided if abs(r["speed_ratio"] - 1.0) <= 0.1]
    assert len(within) >= len(guided) - 1, [(r["photo"], r["speed_ratio"]) for r in guided]
    assert min(r["arrow_cos"] for r in guided) >= 0.95


def test_table_has_the_baselines(rows, capsys):
    ev.print_table(rows)
    out = capsys.readouterr().out
    assert "iou_everything" in out and "cos_down" in out and "IoU above 'everything moves'" in out
    for r in rows:
        assert 0.0 <= r["iou"] <= 1.0 and 0.0 <= r["still_moving"] <= 1.0
        assert r["still_down"] == 1.0 or np.isnan(r["cos"])  # a constant field moves every still pixel
