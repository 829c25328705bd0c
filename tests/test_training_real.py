"""The hand-labelled real training photos (models/trainset_real/, LICENSES.md there) and their loss: kept
apart from the evaluation set, and the loss pushes still pixels to rest and moving ones to move."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from stillflow.models.training import real_data  # noqa: E402


def test_training_photos_are_labelled_licensed_and_apart_from_the_evaluation_set():
    photos = sorted(real_data.TRAINSET.glob("*.jpg"))
    licences = (real_data.TRAINSET / "LICENSES.md").read_text(encoding="utf-8")
    assert len(photos) >= 15
    for p in photos:
        assert p.with_name(p.stem + ".hints.json").is_file(), p
        assert f"## {p.name}" in licences, p.name
    real_data.check_apart()
    labelled = real_data.load_labelled()
    assert len(labelled) == len(photos)
    for ph in labelled:
        assert max(ph["rgb"].shape[:2]) == real_data.WORKING
        assert not (ph["still"] * ph["move"]).any(), ph["name"]  # no pixel labelled both


def test_an_evaluation_photo_among_the_training_photos_is_refused(tmp_path):
    shutil.copy(real_data.REALSET / "lake_sherburne.jpg", tmp_path / "renamed.jpg")  # same bytes, new name
    with pytest.raises(SystemExit, match="evaluation"):
        real_data.check_apart(tmp_path)
    (tmp_path / "renamed.jpg").unlink()
    (tmp_path / "LICENSES.md").write_text("## x.jpg\n- source: path `wallpapers/orig/315998.jpg`\n")
    with pytest.raises(SystemExit, match="315998"):  # another copy of an evaluation photo's source file
        real_data.check_apart(tmp_path)


def test_real_samples_and_their_loss():
    rng = np.random.default_rng(0)
    photos = real_data.load_labelled()
    s = real_data.real_sample(rng, photos[0], 96)
    assert s["x"].shape == (6, 96, 96) and s["y"].shape == (2, 96, 96) and s["w"].shape == (3, 96, 96)
    assert np.all(s["x"][3] == 1.0) and not s["x"][4:].any()  # no mask, no hints: what `--motion model` sees
    w = torch.zeros(1, 3, 8, 8)
    w[0, 1, :4] = 1.0  # still on top
    w[0, 2, 4:] = 1.0  # moving below
    y = torch.zeros(1, 2, 8, 8)
    right = torch.zeros(1, 2, 8, 8)
    right[0, 1, 4:] = 1.0  # still where still, moving where moving
    wrong = torch.zeros(1, 2, 8, 8)
    wrong[0, 1, :4] = 1.0  # the other way round
    assert float(real_data.real_loss(right, y, w)) < 0.01 < 0.5 < float(real_data.real_loss(wrong, y, w))
