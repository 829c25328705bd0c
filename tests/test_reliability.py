"""Reliability cases of issue 10, each on real files and real runs of the command (or of the function it
names). Every one of them failed before the fix named in its docstring."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import stillflow_cli_test_helpers as h
from PIL import Image

DATA = Path(__file__).resolve().parent / "data"
PHOTO = DATA / "mcway_crop.jpg"


def _inputs(folder: Path, n: int, size=(64, 36)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    src = Image.open(PHOTO).convert("RGB").resize(size)
    for i in range(n):
        src.rotate(i * 7).save(folder / f"photo{i:02d}.jpg")


def _batch(in_dir, out_dir, *extra):
    hints = in_dir.parent / "h.json"
    h.write_hints(hints, [((10, 10), (40, 20), 20)], (64, 36))
    return h.run_cli("batch", in_dir, out_dir, "--hints", hints, "--motion", "hints", "--frames", "3",
                     "--format", "png", "--quiet", *extra, timeout=300)


def test_batch_deletes_only_its_own_staging_folders(tmp_path):
    """Case 2: names containing '.partial' or '.encoding-' were removed, recursively; now only folders with
    Stillflow's stage marker are."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    _inputs(in_dir, 2)
    out_dir.mkdir()
    mine = [out_dir / "report.partial.docx", out_dir / "talk.encoding-notes.txt",
            out_dir / "report.partial-p999999.docx"]
    for p in mine:
        p.write_text("keep me")
    (out_dir / "holiday.partial.photos").mkdir()
    (out_dir / "holiday.partial.photos" / "a.jpg").write_bytes(b"jpeg")
    (out_dir / ".stillflow-tmp-lookalike").mkdir()  # a Stillflow-like name without the marker
    assert _batch(in_dir, out_dir).returncode == 0
    for p in mine:
        assert p.read_text() == "keep me"
    assert (out_dir / "holiday.partial.photos" / "a.jpg").is_file()
    assert (out_dir / ".stillflow-tmp-lookalike").is_dir()


def test_an_empty_stage_without_its_marker_is_cleared_and_nothing_else(tmp_path):
    """A run killed between a stage's mkdir and its marker left an empty, unmarked stage folder that no
    later run removed (a batch killed twice left one in about 1 start in 10 under load). Real folders and a
    real dead process's pid; a folder with anything in it is never removed."""
    import subprocess
    import sys

    from stillflow.core import staging

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    empty = tmp_path / f".stillflow-tmp-photo-p{pid}-0123abcd"
    full = tmp_path / f".stillflow-tmp-kept-p{pid}-89abcdef"
    live = tmp_path / f".stillflow-tmp-live-p{os.getppid()}-00ff00ff"  # the test runner's parent: alive
    own = tmp_path / f".stillflow-tmp-own-p{os.getpid()}-11aa11aa"
    for d in (empty, full, live, own):
        d.mkdir()
    (full / "keep.txt").write_text("x")
    assert staging.clean_stale(tmp_path, only_dead=True) == 1
    assert not empty.exists() and (full / "keep.txt").read_text() == "x" and live.exists() and own.exists()
    assert staging.clean_stale(tmp_path, only_dead=False) == 1  # the folder's lock held: the live one's too
    assert not live.exists() and own.exists() and (full / "keep.txt").exists()


def test_one_bad_sidecar_hints_fails_only_its_item_with_one_job(tmp_path):
    """Case 5: a LabelMe sidecar with "shapes": "x" stopped the default (--jobs 1) batch with a traceback."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    _inputs(in_dir, 3)
    (in_dir / "photo01.hints.json").write_text(json.dumps({"shapes": "x"}))  # the sidecar wins over --hints
    r = _batch(in_dir, out_dir)
    assert "Traceback" not in r.stderr
    assert r.returncode == 1 and "failed: photo01.jpg" in r.stderr and "malformed" in r.stderr
    assert "2 of 3 photo(s) done" in r.stderr


def test_journal_and_lock_never_follow_planted_links(tmp_path):
    """Case 7: a symlink at the journal's name made the batch append to a file outside OUT_DIR."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    _inputs(in_dir, 1)
    out_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.symlink(victim, out_dir / "stillflow_journal.jsonl")
    r = _batch(in_dir, out_dir)
    assert r.returncode == 2 and "symbolic link" in h.one_line_error(r.stderr)
    assert victim.read_text() == "precious\n"
    (out_dir / "stillflow_journal.jsonl").unlink()
    (out_dir / ".stillflow-batch.lock").unlink()  # left by the run above
    os.symlink(tmp_path / "elsewhere.lock", out_dir / ".stillflow-batch.lock")
    r = _batch(in_dir, out_dir)
    assert r.returncode == 2 and not (tmp_path / "elsewhere.lock").exists()


def test_a_photo_named_like_the_journal_gets_another_folder(tmp_path):
    """Case 8: `stillflow_journal.jsonl.jpg` got an output folder with the journal's name."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    _inputs(in_dir, 1)
    os.replace(in_dir / "photo00.jpg", in_dir / "stillflow_journal.jsonl.jpg")
    for _ in range(2):  # and a second run still works
        r = _batch(in_dir, out_dir)
        assert r.returncode == 0, r.stderr
    assert (out_dir / "stillflow_journal.jsonl").is_file()
    assert (out_dir / "stillflow_journal.jsonl_item" / "stillflow_journal.jsonl_frames").is_dir()


def test_jobs_are_capped_at_the_cores_and_the_items(tmp_path):
    """Case 11: --jobs 1000 started a worker per photo on 2 cores."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    _inputs(in_dir, 3)
    hints = tmp_path / "h.json"
    h.write_hints(hints, [((10, 10), (40, 20), 20)], (64, 36))
    r = h.run_cli("batch", in_dir, out_dir, "--hints", hints, "--motion", "hints", "--frames", "3",
                  "--format", "png", "--jobs", "1000", timeout=300)
    assert r.returncode == 0, r.stderr
    assert "--jobs 1000: using" in r.stderr
    used = int(r.stderr.split("--jobs 1000: using ")[1].split()[0])
    assert used <= min(os.cpu_count() or 1, 3)


def _bomb_png(path: Path, w: int, h: int) -> Path:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) +
                     chunk(b"IEND", b""))
    return path


def test_decompression_bomb_refused_with_max_size_too(tmp_path):
    """Case 9: with --max-size the declared-size guard was skipped (a 40 GB allocation)."""
    bomb = _bomb_png(tmp_path / "bomb.png", 100_000, 100_000)
    assert bomb.stat().st_size < 100
    hints = h.write_hints(tmp_path / "h.json", [((10, 10), (40, 20), 20)], (100_000, 100_000))
    for extra in ([], ["--max-size", "320"]):
        r = h.run_cli("animate", bomb, "--hints", hints, "--motion", "hints", "--out", tmp_path / "o", *h.FAST,
                      *extra)
        assert r.returncode == 2 and "100000x100000" in h.one_line_error(r.stderr)


def test_hints_that_break_parsers_get_one_line(tmp_path):
    """Case 13: nesting 10,000 deep (RecursionError), image size 0 (ZeroDivisionError), "shapes": "x"."""
    bad = {
        "deep": "[" * 10000 + "]" * 10000,
        "zero": json.dumps({"stillflow_hints": 1, "image_size": [0, 0], "arrows": [{"start": [1, 1], "end": [5, 5]}]}),
        "labelme_zero": json.dumps({"shapes": [], "imageWidth": 0, "imageHeight": 10}),
        "labelme_shapes": json.dumps({"shapes": "x"}),
    }
    for name, text in bad.items():
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        r = h.run_cli("animate", PHOTO, "--hints", path, "--motion", "hints", "--out", tmp_path / "o", *h.FAST)
        assert r.returncode == 2, (name, r.stderr)
        line = h.one_line_error(r.stderr)
        assert len(line) < 300, line


def test_overwrite_replaces_a_symlinked_frames_folder_without_following_it(tmp_path):
    """Case 15: `<stem>_frames` a symlink to a folder, with --overwrite: NotADirectoryError."""
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("keep")
    os.symlink(target, out / "mcway_crop_frames")
    hints = h.write_hints(tmp_path / "h.json", [((10, 20), (60, 40), 8)], (128, 72))
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", out, *h.FAST, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert (out / "mcway_crop_frames").is_dir() and not (out / "mcway_crop_frames").is_symlink()
    assert (target / "keep.txt").read_text() == "keep"  # the link was replaced, its target left alone
    (out / "d.npy").mkdir()
    r = h.run_cli("predict", PHOTO, "--hints", hints, "--motion", "hints", "-o", out / "d.npy", "--overwrite")
    assert r.returncode == 2 and "folder" in h.one_line_error(r.stderr)
    assert (out / "d.npy").is_dir()


def test_predicted_field_gets_the_users_umask(tmp_path):
    """Case 16: `predict` wrote 0600 files (mkstemp); farm users could not read them."""
    hints = h.write_hints(tmp_path / "h.json", [((10, 20), (60, 40), 8)], (128, 72))
    out = tmp_path / "f.npy"
    r = h.run_cli("predict", PHOTO, "--hints", hints, "--motion", "hints", "-o", out)
    assert r.returncode == 0, r.stderr
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert np.load(out).shape == (72, 128, 2)


def _tmpfs(path: Path, size: str):
    """A small tmpfs at ``path`` (root and Linux only); the caller unmounts it."""
    import shutil
    import subprocess

    import pytest

    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode(errors='replace').strip()}")


def _umount(path: Path) -> None:
    import subprocess

    subprocess.run(["umount", str(path)], check=False)


def test_a_full_disk_gives_one_line_and_leaves_nothing(tmp_path):
    """Case 12: a full disk in any format was an ENOSPC traceback, exit 1. MP4: where x264 encodes as the
    frames come (no frame files), the disk fills in the movie at 100 KB, in the .blend after it at 200 KB."""
    disk = tmp_path / "disk"
    _tmpfs(disk, "400k")
    try:
        hints = h.write_hints(tmp_path / "h.json", [((10, 20), (60, 40), 8)], (128, 72))
        big = tmp_path / "big.jpg"
        Image.open(PHOTO).resize((640, 360)).save(big)
        for fmt in ("png", "exr", "gif"):
            r = h.run_cli("animate", big, "--hints", hints, "--motion", "hints", "--out", disk, "--frames", "30",
                          "--format", fmt, "-q")
            assert r.returncode == 2 and "disk is full" in h.one_line_error(r.stderr), (fmt, r.stderr)
            assert list(disk.iterdir()) == []
        for size in ("100k", "200k"):  # x264's movie (about 170 KB) fills the disk / the .blend after it
            small = tmp_path / f"disk{size}"
            _tmpfs(small, size)
            try:
                r = h.run_cli("animate", big, "--hints", hints, "--motion", "hints", "--out", small, "--frames",
                              "30", "--format", "mp4", "-q")
                line = h.one_line_error(r.stderr)  # "the disk is full: ..." or "... cut short ...: is the disk full?"
                assert r.returncode == 2 and ("disk is full" in line or "the disk full" in line), (size, r.stderr)
                assert list(small.iterdir()) == []
            finally:
                _umount(small)
    finally:
        _umount(disk)


def test_a_blend_cut_short_by_a_full_disk_is_never_called_done(tmp_path):
    """Case 1: Blender's save_as_mainfile does not raise when the disk fills: a truncated .blend was left
    under its final name and the run exited 0."""
    import subprocess
    import sys

    import pytest

    pytest.importorskip("bpy")
    disk = tmp_path / "disk"
    _tmpfs(disk, "300k")
    try:
        code = (
            "import sys, numpy as np; from pathlib import Path; from stillflow.operators import encode\n"
            "from stillflow.core.errors import StillflowError\n"
            "try:\n"
            "    encode.write_blend(Path(sys.argv[1]) / 'x.blend', sys.argv[2],\n"
            "                       np.random.default_rng(0).random((180, 320, 2), np.float32), Path(sys.argv[1]) / 'x.mp4', 30)\n"
            "except StillflowError as err:\n"
            "    print('ERROR', err)\n"
        )
        r = subprocess.run([sys.executable, "-c", code, str(disk), str(PHOTO)], capture_output=True, text=True,
                           timeout=120)
        assert "ERROR" in r.stdout and "cut short" in r.stdout, r.stdout + r.stderr
        assert list(disk.iterdir()) == []  # nothing under the final name, no staging folder
    finally:
        _umount(disk)


def test_resume_redoes_an_item_whose_photo_hints_or_settings_changed(tmp_path):
    """Case 6: a changed photo (same name), an edited sidecar, other settings and --overwrite were all
    skipped on resume ("done earlier with other settings; kept")."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    _inputs(in_dir, 2)
    assert _batch(in_dir, out_dir).returncode == 0
    frame = out_dir / "photo00" / "photo00_frames" / "frame_0001.png"
    before = frame.read_bytes()
    r = _batch(in_dir, out_dir)
    assert r.returncode == 0 and "(0 now, 2 earlier)" in r.stderr  # nothing changed: nothing redone
    Image.open(PHOTO).convert("RGB").resize((64, 36)).transpose(Image.FLIP_LEFT_RIGHT).save(in_dir / "photo00.jpg",
                                                                                              quality=70)
    r = _batch(in_dir, out_dir)
    assert r.returncode == 0 and "photo00.jpg: done earlier, but the photo changed: redone" in r.stderr
    assert "(1 now, 1 earlier)" in r.stderr and frame.read_bytes() != before
    h.write_hints(in_dir / "photo01.hints.json", [((50, 10), (20, 30), 20)], (64, 36))
    r = _batch(in_dir, out_dir)
    assert "photo01.jpg: done earlier, but a sidecar hints file appeared: redone" in r.stderr
    r = _batch(in_dir, out_dir)
    assert "(0 now, 2 earlier)" in r.stderr, r.stderr
    h.write_hints(in_dir / "photo01.hints.json", [((5, 30), (60, 5), 20)], (64, 36))
    r = _batch(in_dir, out_dir)
    assert "photo01.jpg: done earlier, but its hints file changed: redone" in r.stderr
    r = _batch(in_dir, out_dir, "--speed", "2")
    assert r.stderr.count("the settings changed: redone") == 2
    r = _batch(in_dir, out_dir, "--speed", "2", "--overwrite")
    assert r.returncode == 0 and "(2 now, 0 earlier)" in r.stderr


def test_a_dead_worker_fails_at_most_its_own_item(tmp_path):
    """Case 3: one killed worker (as an OOM kill would) journaled every pending item "failed:
    BrokenProcessPool" for good; now the unfinished items go to a fresh pool."""
    import signal
    import subprocess
    import time

    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    _inputs(in_dir, 8, (320, 180))
    hints = tmp_path / "h.json"
    h.write_hints(hints, [((10, 10), (40, 20), 20)], (64, 36))
    cmd = h.cli_cmd("batch", in_dir, out_dir, "--hints", hints, "--motion", "hints", "--frames", "40",
                    "--format", "png", "--jobs", "2", "--quiet")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline and p.poll() is None:
        if list(out_dir.glob(".stillflow-tmp-*/item")):
            out = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(p.pid)], capture_output=True,
                                 text=True)
            workers = [int(line.split()[0]) for line in out.stdout.splitlines() if "spawn_main" in line]
            victim = workers[0] if workers else None
        time.sleep(0.02)
    assert victim is not None, ("no worker seen", p.poll(), p.stderr.read() if p.poll() is not None else "")
    os.kill(victim, signal.SIGKILL)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "8 of 8 photo(s) done" in err and "a worker process died" in err
    assert not list(out_dir.glob(".stillflow-tmp-*"))


def test_loop_settings_are_refused_before_any_work_with_one_line(tmp_path):
    """Cases 14 and 16: fps 0.001 (GIF), 1e-300 (WebP) and 1e300 (MP4) were OverflowError/ValueError
    tracebacks after the work; --frames 1 was refused only after the motion was predicted, and the parser
    and the message disagreed on the minimum."""
    hints = h.write_hints(tmp_path / "h.json", [((10, 20), (60, 40), 8)], (128, 72))
    for fmt, fps in (("gif", "0.001"), ("webp", "1e-300"), ("mp4", "1e300"), ("png", "nan")):
        r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", tmp_path / "o",
                      "--format", fmt, "--fps", fps, "--frames", "4")
        assert r.returncode == 2 and "--fps" in h.one_line_error(r.stderr) and "1 to 240" in r.stderr, fps
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", tmp_path / "o", "--frames", "1")
    line = h.one_line_error(r.stderr)
    assert r.returncode == 2 and "from 2 to" in line
    assert not (tmp_path / "o").exists()


def test_an_absurd_coordinate_gets_a_short_line(tmp_path):
    """Case 16: a 309-digit coordinate made an error line of 419 characters."""
    hints = h.write_hints(tmp_path / "h.json", [((1e308, 20), (60, 40), 8)], (128, 72))
    r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", tmp_path / "o", *h.FAST)
    line = h.one_line_error(r.stderr)
    assert r.returncode == 2 and "outside" in line and len(line) < 160, line


def test_many_arrows_use_bounded_memory_and_too_many_get_one_line(tmp_path):
    """Case 10: memory grew with arrows x pixels (100,000 arrows: 15.9 GB and a traceback)."""
    import tracemalloc

    from stillflow.core.hints import Arrow, dense_from_arrows

    rng = np.random.default_rng(0)
    arrows = [Arrow((float(x), float(y)), (float(x) + 5, float(y) + 2), 20.0)
              for x, y in zip(rng.uniform(0, 320, 1500), rng.uniform(0, 180, 1500), strict=True)]
    tracemalloc.start()
    field = dense_from_arrows(arrows, (180, 320))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.allclose(field[..., 0], 0.25) and peak < 200 * 2**20, peak  # was 1500 x 57600 x 8 B = 690 MB
    too_many = tmp_path / "many.json"
    too_many.write_text(json.dumps({"stillflow_hints": 1, "image_size": [128, 72], "arrows": [
        {"start": [10, 10], "end": [20, 12], "frames": 20}] * 100_000}))
    r = h.run_cli("animate", PHOTO, "--hints", too_many, "--motion", "hints", "--out", tmp_path / "o", *h.FAST)
    assert r.returncode == 2 and "at most" in h.one_line_error(r.stderr)


def test_ctrl_c_while_bpy_starts_for_the_mp4_exits_130_and_leaves_nothing(tmp_path):
    """Case 4: Ctrl-C in the first 0.4 s of MP4 encoding (inside `import bpy` and its add-on registration)
    crashed the process (exit -11) and left the staging folder with every PNG. Where x264 (PyAV) encodes the
    MP4 as the frames come, bpy starts for the .blend once the movie is finished (its index written)."""
    import signal
    import subprocess
    import time

    import pytest

    pytest.importorskip("bpy")
    hints = h.write_hints(tmp_path / "h.json", [((10, 20), (60, 40), 8)], (128, 72))
    for delay in (0.05, 0.15, 0.3):
        out = tmp_path / f"out{delay}"
        cmd = h.cli_cmd("animate", PHOTO, "--hints", hints, "--motion", "hints", "--frames", "8", "--format",
                        "mp4", "--out", out, "-q")
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, preexec_fn=h.sigint_default)
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline:
            if len(list(out.glob(".stillflow-tmp-*/.frames-bmp/*.bmp"))) >= 8:  # every frame: encoding starts
                break
            if any(b"moov" in m.read_bytes() for m in out.glob(".stillflow-tmp-*/*.mp4")):  # x264 has finished
                break
            time.sleep(0.005)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
        if p.returncode == 0:
            continue  # it finished first: nothing to check this time
        assert p.returncode in h.INTERRUPTED and "Traceback" not in err, (delay, p.returncode, err[-500:])
        assert not out.exists() or list(out.iterdir()) == []


def test_odd_numbers_give_one_line_and_no_warning_lines(tmp_path):
    """Case 16: RuntimeWarning and ComplexWarning lines broke the one-line promise."""
    field = np.zeros((72, 128, 2), np.complex64)
    np.save(tmp_path / "complex.npy", field)
    huge = np.full((72, 128, 2), 1e300)
    np.save(tmp_path / "huge.npy", huge)
    hints = h.write_hints(tmp_path / "h.json", [((1e39, 20), (60, 40), 8)], (128, 72))  # beyond float32
    runs = [("--motion", tmp_path / "complex.npy"), ("--motion", tmp_path / "huge.npy"),
            ("--hints", hints, "--motion", "hints")]
    for extra in runs:
        r = h.run_cli("animate", PHOTO, *extra, "--out", tmp_path / "o", *h.FAST)
        assert r.returncode == 2, (extra, r.stderr)
        h.one_line_error(r.stderr)
        assert "Warning" not in r.stderr, r.stderr
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "report.partial-p999999.docx").write_text("mine")  # case 2, for animate too
    r = h.run_cli("animate", PHOTO, "--hints", h.write_hints(tmp_path / "ok.json", [((10, 20), (60, 40), 8)],
                                                              (128, 72)), "--motion", "hints", "--out",
                  tmp_path / "o", *h.FAST)
    assert r.returncode == 0 and (tmp_path / "o" / "report.partial-p999999.docx").read_text() == "mine"


def test_an_mp4_cut_short_is_never_called_done(tmp_path):
    """Case 1, the MP4 likewise: a movie is checked (its boxes and its index) before it is renamed."""
    import pytest

    pytest.importorskip("bpy")
    from stillflow.core.errors import OutputError
    from stillflow.operators import encode

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        Image.open(PHOTO).rotate(i * 3).save(folder / f"frame_{i:04d}.png")
    movie = encode.write_mp4(sorted(folder.glob("*.png")), tmp_path / "loop.mp4", 30)
    encode.check_mp4(movie, "loop.mp4")  # a finished movie passes
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(movie.read_bytes()[: movie.stat().st_size * 2 // 3])
    with pytest.raises(OutputError, match="cut short"):
        encode.check_mp4(cut, "cut.mp4")
