"""The `stillflow` command: its faces, outputs, exit codes, --overwrite, predict round trip, Ctrl-C."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import stillflow_cli_test_helpers as h  # registered by conftest.py
from PIL import Image

DATA = h.DATA
PHOTO = DATA / "mcway_crop.jpg"  # 128x72
HAS_BPY = importlib.util.find_spec("bpy") is not None


@pytest.fixture
def hints(tmp_path):
    return h.write_hints(tmp_path / "hints.json", [((20, 20), (40, 30), 20), ((90, 50), (80, 60), 20)], (128, 72))


def _frames(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))]


# ------------------------------------------------------------------------------------------ faces


def test_imports_without_bpy():
    code = (
        "import sys; sys.modules['bpy'] = None\n"
        "import stillflow.operators.cli as c, stillflow.operators.cli.batch, stillflow.operators.encode, stillflow.operators.bpy_sinks\n"
        "assert c.main(['--version']) == 0\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("stillflow ")


def test_help_and_usage_errors():
    from stillflow.operators import cli

    assert cli.main(["--help"]) == 0
    for sub in ("animate", "predict", "batch"):
        assert cli.main([sub, "--help"]) == 0
    assert cli.main([]) == cli.EXIT_USAGE
    assert cli.main(["animate"]) == cli.EXIT_USAGE
    assert cli.main(["animate", "x.jpg", "--frames", "0"]) == cli.EXIT_USAGE
    assert cli.main(["animate", "x.jpg", "--fps", "-3"]) == cli.EXIT_USAGE
    assert cli.main(["animate", "x.jpg", "--format", "avi"]) == cli.EXIT_USAGE
    assert cli.main(["animate", "x.jpg", "--motion", "field.txt"]) == cli.EXIT_USAGE
    assert cli.main(["predict", "x.jpg"]) == cli.EXIT_USAGE  # -o is required


def test_blender_command_returns_codes_instead_of_exiting(capsys):
    from stillflow.operators import cli

    assert cli.blender_command(["--version"]) == 0
    assert cli.blender_command(["animate"]) == 2
    assert "blender --command stillflow" in capsys.readouterr().err


def test_console_script_entry_point():
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="console_scripts") if ep.name == "stillflow"]
    assert eps and eps[0].value == "stillflow.operators.cli:main"


# ----------------------------------------------------------------------------------------- outputs


def test_animate_png_frames(tmp_path, hints):
    out = tmp_path / "out"
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", out, "--frames", "6",
                  "--format", "png", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out / "mcway_crop_frames")
    assert h.listing(out) == ["mcway_crop_frames"] + [f"mcway_crop_frames/frame_{i:04d}.png" for i in range(6)]
    frames = _frames(out / "mcway_crop_frames")
    src = np.asarray(Image.open(PHOTO).convert("RGB"))
    assert frames[0].shape == src.shape
    assert np.abs(frames[0].astype(int) - src).max() <= 1  # frame 0 is the photo
    assert np.abs(frames[3].astype(int) - src).mean() > 0.2  # and the loop moves


def test_animate_progress_bar_and_quiet(tmp_path, hints):
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", tmp_path / "a",
                  "--frames", "5", "--format", "png")
    assert r.returncode == 0, r.stderr
    assert "5/5" in r.stderr and ("frame/s" in r.stderr or "s/frame" in r.stderr)  # count, rate
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", tmp_path / "b",
                  "--frames", "5", "--format", "png", "--quiet")
    assert r.returncode == 0
    assert r.stderr.strip() == ""


def test_sidecar_hints_are_used(tmp_path):
    photo = tmp_path / "falls.jpg"
    photo.write_bytes(PHOTO.read_bytes())
    h.write_hints(tmp_path / "falls.hints.json", [((20, 20), (40, 30), 20)])
    r = h.run_cli("animate", photo, "--motion", "hints", "--out", tmp_path / "o", *h.FAST)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("fmt", ["gif", "webp", "exr"])
def test_animate_other_formats(tmp_path, hints, fmt):
    out = tmp_path / "out"
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", out, "--frames", "4",
                  "--format", fmt, "--quiet")
    assert r.returncode == 0, r.stderr
    if fmt == "exr":
        files = sorted((out / "mcway_crop_exr").iterdir())
        assert [f.name for f in files] == [f"frame_{i:04d}.exr" for i in range(4)]
        import OpenEXR

        with OpenEXR.File(str(files[0])) as f:
            rgb = f.channels()["RGB"].pixels
        assert rgb.shape == (72, 128, 3) and np.isfinite(rgb).all()
    else:
        with Image.open(out / f"mcway_crop_loop.{fmt}") as im:
            assert im.size == (128, 72)
            assert getattr(im, "n_frames", 1) == 4


@pytest.mark.bpy
@pytest.mark.skipif(not HAS_BPY, reason="needs the bpy module")
def test_animate_mp4_and_blend(tmp_path, hints):
    import cv2

    out = tmp_path / "out"
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", out, "--frames", "8",
                  "--fps", "24", "--quiet", timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(out / "mcway_crop_loop.mp4"), str(out / "mcway_crop.blend")]
    assert h.listing(out) == ["mcway_crop.blend", "mcway_crop_loop.mp4"]
    movie = out / "mcway_crop_loop.mp4"
    assert movie.read_bytes()[4:8] == b"ftyp"
    cap = cv2.VideoCapture(str(movie))
    decoded = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        decoded.append(bgr[..., ::-1].astype(np.float32))
    assert len(decoded) == 8 and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(24, abs=0.01)
    # The movie shows the rendered frames (upright, in colour order) that the PNG output holds.
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", tmp_path / "png",
                  "--frames", "8", "--format", "png", "--quiet")
    assert r.returncode == 0, r.stderr
    for i in (0, 5):
        png = np.asarray(Image.open(tmp_path / "png" / "mcway_crop_frames" / f"frame_{i:04d}.png"), np.float32)
        png = png[: decoded[i].shape[0], : decoded[i].shape[1]]
        assert np.abs(decoded[i] - png).mean() < 4.0, i  # H.264 CRF 17, 4:2:0 chroma on 128x72: ~3 levels
        assert np.abs(decoded[i] - png[::-1]).mean() > 2 * np.abs(decoded[i] - png).mean()
    # The .blend: field image (R = dx, G = -dy), a movie strip of the loop, frame range and fps.
    check = (
        "import bpy, sys, numpy as np\n"
        "bpy.ops.wm.open_mainfile(filepath=sys.argv[-1])\n"
        "s = bpy.context.scene\n"
        "strip = list(s.sequence_editor.strips_all)[0]\n"
        "img = bpy.data.images['mcway_crop.jpg_motion']\n"
        "px = np.empty(img.size[0] * img.size[1] * 4, np.float32); img.pixels.foreach_get(px)\n"
        "print('RESULT', s.frame_end, s.render.fps, strip.type, strip.filepath, tuple(img.size),\n"
        "      img.packed_file is not None, float(px.reshape(-1, 4)[:, 1].min()) < 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", check, str(out / "mcway_crop.blend")],
                       capture_output=True, text=True, timeout=120)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")][0]
    assert line.split()[1:] == ["8", "24", "MOVIE", "//mcway_crop_loop.mp4", "(128,", "72)", "True", "True"]


# --------------------------------------------------------------------------------- existing outputs


def test_existing_output_refused_before_any_work(tmp_path, hints):
    out = tmp_path / "out"
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", out, *h.FAST)
    assert r.returncode == 0
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    started = time.monotonic()
    # A missing hints file would fail later: the refusal must come first, before reading anything.
    r = h.run_cli("animate", PHOTO, "--hints", tmp_path / "missing.json", "--out", out, *h.FAST)
    assert r.returncode == 2
    assert "already exists" in h.one_line_error(r.stderr) and "--overwrite" in r.stderr
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()} == before
    assert h.listing(out) == ["mcway_crop_frames"] + [f"mcway_crop_frames/frame_{i:04d}.png" for i in range(4)]
    assert time.monotonic() - started < 30
    # --overwrite replaces it (with a different loop length, so the old frames must be gone).
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", out, "--overwrite",
                  "--frames", "3", "--format", "png", "--quiet")
    assert r.returncode == 0, r.stderr
    assert h.listing(out) == ["mcway_crop_frames"] + [f"mcway_crop_frames/frame_{i:04d}.png" for i in range(3)]


def test_existing_output_refused_in_process_without_loading(tmp_path, monkeypatch, hints):
    from stillflow.core import imageio
    from stillflow.operators import cli

    out = tmp_path / "out"
    (out / "mcway_crop_frames").mkdir(parents=True)
    monkeypatch.setattr(imageio, "load_image", lambda *a, **k: pytest.fail("loaded the image"))
    assert cli.main(["animate", str(PHOTO), "--hints", str(hints), "--out", str(out), *h.FAST]) == 2
    assert h.listing(out) == ["mcway_crop_frames"]


# ---------------------------------------------------------------------------------- predict + field


def test_predict_exr_and_npy_round_trip(tmp_path, hints):
    from stillflow.core.imageio import load_field

    exr, npy = tmp_path / "m.exr", tmp_path / "m.npy"
    for path in (exr, npy):
        r = h.run_cli("predict", PHOTO, "--hints", hints, "--motion", "hints", "-o", path, "--quiet")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == str(path)
    a, b = load_field(exr), load_field(npy)
    assert a.shape == (72, 128, 2) and np.allclose(a, b, atol=1e-6)
    assert np.abs(a).max() > 0.1
    assert h.listing(tmp_path) == ["hints.json", "m.exr", "m.npy"]
    # predict refuses to overwrite, then the field drives animate
    r = h.run_cli("predict", PHOTO, "--hints", hints, "--motion", "hints", "-o", exr, "--quiet")
    assert r.returncode == 2 and "already exists" in h.one_line_error(r.stderr)
    r = h.run_cli("animate", PHOTO, "--motion", exr, "--out", tmp_path / "o", *h.FAST)
    assert r.returncode == 0, r.stderr
    frames = _frames(tmp_path / "o" / "mcway_crop_frames")
    assert len(frames) == 4 and np.abs(frames[2].astype(int) - frames[0]).mean() > 0.2


def test_predict_rejects_other_suffix(tmp_path, hints):
    r = h.run_cli("predict", PHOTO, "--hints", hints, "-o", tmp_path / "m.png")
    assert r.returncode == 2 and ".exr or .npy" in h.one_line_error(r.stderr)


# ------------------------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_mid_render_leaves_no_partial_files(tmp_path, sig):
    photo = tmp_path / "big.png"
    Image.open(PHOTO).resize((512, 288)).save(photo)
    hints = h.write_hints(tmp_path / "h.json", [((50, 50), (90, 70), 20)], (512, 288))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("someone else's file")
    proc = subprocess.Popen(h.cli_cmd("animate", photo, "--hints", hints, "--motion", "hints", "--out", out,
                                      "--frames", "400", "--format", "png", "--quiet"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=h.sigint_default)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".stillflow-tmp-*/big_frames/frame_0002.png")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no frames written"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in h.INTERRUPTED, err
    assert "interrupted" in err and "Traceback" not in err
    assert h.listing(out) == ["keep.txt"]


def test_mask_file_limits_motion(tmp_path):
    mask = np.zeros((72, 128), np.uint8)
    mask[:, 64:] = 255  # only the right half may move
    Image.fromarray(mask).save(tmp_path / "mask.png")
    hints = h.write_hints(tmp_path / "h.json", [((10, 36), (118, 36), 60)], (128, 72))  # motion everywhere
    out = tmp_path / "out"
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--mask", tmp_path / "mask.png", "--motion", "hints",
                  "--out", out, "--frames", "6", "--format", "png", "--quiet")
    assert r.returncode == 0, r.stderr
    frames = [f.astype(int) for f in _frames(out / "mcway_crop_frames")]
    assert max(np.abs(f[:, :48] - frames[0][:, :48]).max() for f in frames) <= 2
    assert max(np.abs(f[:, 80:] - frames[0][:, 80:]).mean() for f in frames) > 0.5
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--mask", tmp_path / "nope.png", "--out", tmp_path / "o2",
                  *h.FAST)
    assert r.returncode == 2 and "mask file not found" in h.one_line_error(r.stderr)
    assert not (tmp_path / "o2").exists()
