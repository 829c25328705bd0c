"""Bad input through the `stillflow` command: a one-line error, exit code 2, no traceback, nothing written.

Each case of issue 2's list has a test here (Ctrl-C and existing outputs are in test_cli.py): missing file,
not an image, truncated image, 16-bit PNG (accepted, converted), RGBA (alpha used as a freeze mask, and
said), grayscale (accepted), too large (refused naming the size, or downscaled with --max-size), hints
outside the image or of zero length, field with NaN/inf or the wrong size, unwritable output folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import stillflow_cli_test_helpers as h  # registered by conftest.py
from PIL import Image

DATA = h.DATA
PHOTO = DATA / "mcway_crop.jpg"  # 128x72


def _hints_for(tmp_path, size, name="h.json"):
    w, hh = size
    return h.write_hints(tmp_path / name, [((w * 0.2, hh * 0.3), (w * 0.4, hh * 0.5), 20)], size)


def _refused(r, out: Path, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    line = h.one_line_error(r.stderr)
    for w in words:
        assert w.lower() in line.lower(), line
    assert not out.exists(), h.listing(out)  # not even an empty output folder
    return line


def _animate(tmp_path, image, *extra):
    out = tmp_path / "out"
    hints = extra[extra.index("--hints") + 1] if "--hints" in extra else _hints_for(tmp_path, (128, 72))
    args = [a for a in extra]
    if "--hints" not in args:
        args += ["--hints", hints]
    return h.run_cli("animate", image, "--motion", "hints", "--out", out, *h.FAST, *args), out


# ------------------------------------------------------------------------------------------ the photo


def test_missing_file(tmp_path):
    r, out = _animate(tmp_path, tmp_path / "nope.jpg")
    _refused(r, out, "not found", "nope.jpg")


def test_not_an_image(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is a text file, not a JPEG\n" * 20)
    r, out = _animate(tmp_path, bad)
    _refused(r, out, "notes.jpg", "not an image")


def test_truncated_image(tmp_path):
    data = PHOTO.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    r, out = _animate(tmp_path, cut)
    _refused(r, out, "cut.jpg", "truncated")


def test_truncated_png(tmp_path):
    src = tmp_path / "full.png"
    Image.open(PHOTO).save(src)
    cut = tmp_path / "cut.png"
    cut.write_bytes(src.read_bytes()[:600])
    r, out = _animate(tmp_path, cut)
    _refused(r, out, "cut.png")


def _frame0(out: Path, stem: str) -> np.ndarray:
    return np.asarray(Image.open(out / f"{stem}_frames" / "frame_0000.png"))


def test_16bit_rgb_png_is_converted_properly(tmp_path):
    import cv2
    from stillflow.core.imageio import load_image

    src = DATA / "sea_rgb16.png"
    raw = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float64) / 65535.0
    assert cv2.imread(str(src), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    loaded = load_image(src).rgb
    assert loaded.shape == (45, 80, 3)
    assert np.abs(loaded - raw).max() < 1.5 / 255  # scaled, not wrapped or clipped
    r, out = _animate(tmp_path, src, "--hints", _hints_for(tmp_path, (80, 45)))
    assert r.returncode == 0, r.stderr
    assert np.abs(_frame0(out, "sea_rgb16").astype(float) / 255 - raw).max() < 1.5 / 255


def test_16bit_gray_png_is_converted_properly(tmp_path):
    import cv2

    src = DATA / "sea_gray16.png"
    raw = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.ndim == 2
    r, out = _animate(tmp_path, src, "--hints", _hints_for(tmp_path, (80, 45)))
    assert r.returncode == 0, r.stderr
    f0 = _frame0(out, "sea_gray16").astype(float)
    assert f0.shape == (45, 80, 3)
    assert np.abs(f0[..., 1] / 255 - raw / 65535.0).max() < 1.5 / 255


def test_grayscale_is_accepted(tmp_path):
    src = DATA / "sea_gray.png"
    r, out = _animate(tmp_path, src, "--hints", _hints_for(tmp_path, (80, 45)))
    assert r.returncode == 0, r.stderr
    f0 = _frame0(out, "sea_gray")
    assert f0.shape == (45, 80, 3)
    assert np.array_equal(f0[..., 0], np.asarray(Image.open(src)))


def test_rgba_alpha_is_a_freeze_mask_and_said(tmp_path):
    src = DATA / "sea_rgba.png"  # the 20 leftmost columns are transparent
    hints = h.write_hints(tmp_path / "h.json", [((5, 10), (70, 30), 10)], (80, 45))  # moves everywhere
    out = tmp_path / "out"
    r = h.run_cli("animate", src, "--hints", hints, "--motion", "hints", "--out", out, "--frames", "6",
                  "--format", "png")
    assert r.returncode == 0, r.stderr
    assert "alpha" in r.stderr and "freeze" in r.stderr  # said which
    frames = [np.asarray(Image.open(p)).astype(int) for p in sorted((out / "sea_rgba_frames").glob("*.png"))]
    assert frames[0].shape == (45, 80, 3)  # alpha dropped from the frames
    # Far from the transparent band's edge nothing moves; in the opaque part it does.
    assert max(np.abs(f[:, :12] - frames[0][:, :12]).max() for f in frames) <= 2
    assert max(np.abs(f[:, 40:] - frames[0][:, 40:]).mean() for f in frames) > 1.0


def test_too_large_is_refused_naming_the_size(tmp_path):
    big = tmp_path / "huge.png"
    Image.new("RGB", (9000, 9000), (30, 90, 160)).save(big, compress_level=1)  # 81 MP, over the limit
    r, out = _animate(tmp_path, big)
    line = _refused(r, out, "9000x9000", "--max-size")
    assert "huge.png" in line


def test_too_large_is_downscaled_with_max_size(tmp_path):
    from stillflow.core.imageio import MAX_PIXELS

    assert 9000 * 9000 > MAX_PIXELS
    big = tmp_path / "huge.png"
    Image.new("RGB", (9000, 9000), (30, 90, 160)).save(big, compress_level=1)
    hints = _hints_for(tmp_path, (9000, 9000))  # drawn on the full-size photo: scaled down with it
    out = tmp_path / "out"
    r = h.run_cli("animate", big, "--hints", hints, "--motion", "hints", "--out", out, "--frames", "3",
                  "--format", "png", "--max-size", "96")
    assert r.returncode == 0, r.stderr
    assert "downscaled from 9000x9000 to 96x96" in r.stderr
    assert Image.open(out / "huge_frames" / "frame_0000.png").size == (96, 96)


# ------------------------------------------------------------------------------------------ hints


def test_hints_outside_the_image(tmp_path):
    hints = h.write_hints(tmp_path / "far.json", [((10, 10), (400, 300), 20)])
    r, out = _animate(tmp_path, PHOTO, "--hints", hints)
    _refused(r, out, "outside", "128x72")


def test_hints_drawn_for_another_size_are_scaled_not_refused(tmp_path):
    hints = h.write_hints(tmp_path / "big.json", [((100, 100), (400, 300), 50)], (1280, 720))
    r, out = _animate(tmp_path, PHOTO, "--hints", hints)
    assert r.returncode == 0, r.stderr


def test_zero_length_arrow(tmp_path):
    hints = h.write_hints(tmp_path / "zero.json", [((30, 30), (30, 30), 20)])
    r, out = _animate(tmp_path, PHOTO, "--hints", hints)
    _refused(r, out, "zero length")


def test_hints_file_missing_or_not_json(tmp_path):
    r, out = _animate(tmp_path, PHOTO, "--hints", tmp_path / "none.json")
    _refused(r, out, "hints file not found")
    bad = tmp_path / "bad.json"
    bad.write_text("{arrows: oops")
    r, out = _animate(tmp_path, PHOTO, "--hints", bad)
    _refused(r, out, "not valid JSON")


def test_labelme_hints_are_read(tmp_path):
    import json

    lm = {"imageWidth": 128, "imageHeight": 72, "shapes": [
        {"label": "motion", "shape_type": "polygon", "points": [[0, 30], [128, 30], [128, 72], [0, 72]]},
        {"label": "hint1", "shape_type": "line", "points": [[20, 50], [70, 60]]},
    ]}
    path = tmp_path / "labelme.json"
    path.write_text(json.dumps(lm))
    r, out = _animate(tmp_path, PHOTO, "--hints", path)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------------------ fields


def _field_file(tmp_path, arr, name="f.npy"):
    p = tmp_path / name
    np.save(p, arr.astype(np.float32))
    return p


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_field_with_nan_or_inf(tmp_path, bad):
    m = np.full((72, 128, 2), 0.5, np.float32)
    m[10, 20, 1] = bad
    p = _field_file(tmp_path, m)
    out = tmp_path / "out"
    r = h.run_cli("animate", PHOTO, "--motion", p, "--out", out, *h.FAST)
    _refused(r, out, "NaN or infinite")


def test_field_with_nan_in_exr(tmp_path):
    from stillflow.core.imageio import save_exr_rgb

    rgb = np.zeros((72, 128, 3), np.float32)
    rgb[5, 5, 0] = np.nan
    p = tmp_path / "f.exr"
    save_exr_rgb(p, rgb)
    out = tmp_path / "out"
    r = h.run_cli("animate", PHOTO, "--motion", p, "--out", out, *h.FAST)
    _refused(r, out, "NaN or infinite")


def test_field_of_the_wrong_size(tmp_path):
    p = _field_file(tmp_path, np.zeros((50, 50, 2)))
    out = tmp_path / "out"
    r = h.run_cli("animate", PHOTO, "--motion", p, "--out", out, *h.FAST)
    _refused(r, out, "50x50", "128x72")


def test_field_of_the_wrong_shape(tmp_path):
    p = _field_file(tmp_path, np.zeros((72, 128)))
    out = tmp_path / "out"
    r = h.run_cli("animate", PHOTO, "--motion", p, "--out", out, *h.FAST)
    _refused(r, out, "shape")


def test_field_missing(tmp_path):
    out = tmp_path / "out"
    r = h.run_cli("animate", PHOTO, "--motion", tmp_path / "gone.exr", "--out", out, *h.FAST)
    _refused(r, out, "not found")


# ------------------------------------------------------------------------------------------ output


def test_output_folder_under_a_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    r = h.run_cli("animate", PHOTO, "--hints", _hints_for(tmp_path, (128, 72)), "--motion", "hints",
                  "--out", blocker / "out", *h.FAST)
    assert r.returncode == 2
    assert "cannot write to the output folder" in h.one_line_error(r.stderr)
    assert blocker.read_text() == "a file, not a folder"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = h.run_cli("animate", PHOTO, "--hints", _hints_for(tmp_path, (128, 72)), "--motion", "hints",
                      "--out", ro, *h.FAST)
        assert r.returncode == 2
        assert "cannot write to the output folder" in h.one_line_error(r.stderr)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_read_only_output_folder_in_process(tmp_path, monkeypatch):
    """Same as above for root (CI containers): the write probe fails as it would without permission."""
    import tempfile

    from stillflow.operators import cli

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", denied)  # the write probe of core.imageio.check_writable_dir
    out = tmp_path / "ro"
    out.mkdir()
    code = cli.main(["animate", str(PHOTO), "--hints", str(_hints_for(tmp_path, (128, 72))), "--motion", "hints",
                     "--out", str(out), *h.FAST])
    assert code == 2
    assert list(out.iterdir()) == []


def test_mp4_without_bpy_is_refused_before_work(tmp_path):
    code = (
        "import sys; sys.modules['bpy'] = None\n"
        "import importlib.util as u; real = u.find_spec\n"
        "u.find_spec = lambda n, *a: None if n == 'bpy' else real(n, *a)\n"
        "from stillflow.operators.cli import main\n"
        f"sys.exit(main(['animate', {str(PHOTO)!r}, '--out', {str(tmp_path / 'out')!r}, '--quiet']))\n"
    )
    import subprocess

    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "bpy" in h.one_line_error(r.stderr) and "--format png" in r.stderr
    assert not (tmp_path / "out").exists()
