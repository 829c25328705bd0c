"""`stillflow batch`: journal, bad items, resume after SIGKILL (twice), --jobs, one batch per folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import stillflow_cli_test_helpers as h  # registered by conftest.py
from PIL import Image

DATA = h.DATA
FRAMES = h.BATCH_FRAMES
make_inputs, check_good_outputs = h.make_inputs, h.check_good_outputs


def batch_args(in_dir, out_dir, *extra):
    hints = in_dir.parent / "hints.json"
    if not hints.exists():
        h.write_hints(hints, [((10, 10), (30, 20), 20), ((50, 30), (40, 25), 20)], (64, 36))
    return ["batch", in_dir, out_dir, "--hints", hints, "--motion", "hints", "--frames", str(FRAMES),
            "--format", "png", "--quiet", *extra]


def journal(out_dir: Path) -> list[dict]:
    path = out_dir / "stillflow_journal.jsonl"
    if not path.exists():
        return []
    recs = []
    for line in path.read_text().splitlines():
        try:
            recs.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return recs


def wait_for(cond, proc, timeout=180.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"batch ended before it was killed (rc {proc.returncode}): {err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the batch")
        time.sleep(0.01)


def done_count(out_dir):
    return sum(1 for r in journal(out_dir) if r.get("status") == "done")


def staging(out_dir):
    return list(out_dir.glob(".stillflow-tmp-*/item"))


def _start(args):
    return subprocess.Popen(h.cli_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=h.sigint_default)


def _sigkill(proc):
    proc.send_signal(signal.SIGKILL)  # the batch process only: its workers must die with it
    proc.wait(timeout=30)


@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_of_20_killed_twice_completes_on_third_start(tmp_path, jobs):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    stems = make_inputs(in_dir, 20)
    args = batch_args(in_dir, out_dir, "--jobs", str(jobs))

    # 1st start: killed while an item is being written, after a few finished.
    p = _start(args)
    wait_for(lambda: done_count(out_dir) >= 3 and staging(out_dir), p)
    _sigkill(p)
    first = done_count(out_dir)
    assert 3 <= first < 20

    # 2nd start: killed again midway.
    p = _start(args)
    wait_for(lambda: done_count(out_dir) >= first + 4 and staging(out_dir), p)
    _sigkill(p)
    second = done_count(out_dir)
    assert second < 20

    # 3rd start completes.
    r = subprocess.run(h.cli_cmd(*args), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "20 of 20 photo(s) done" in r.stderr
    check_good_outputs(out_dir, stems)
    recs = journal(out_dir)
    done = [x["item"] for x in recs if x.get("status") == "done"]
    assert sorted(done) == sorted(f"{s}.jpg" for s in stems)  # each item finished exactly once
    assert not any(x.get("status") == "failed" for x in recs)

    # A 4th start has nothing to do.
    r = subprocess.run(h.cli_cmd(*args), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "(0 now, 20 earlier)" in r.stderr
    assert len(journal(out_dir)) == len(recs)


def test_no_orphan_workers_after_sigkill(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_inputs(in_dir, 8)
    p = _start(batch_args(in_dir, out_dir, "--jobs", "2"))
    wait_for(lambda: staging(out_dir), p)
    children = _children(p.pid)
    _sigkill(p)
    deadline = time.monotonic() + 20
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)]


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        pytest.skip("needs ps")
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its (dead) parent counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_bad_image_is_reported_and_does_not_stop_the_batch(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    stems = make_inputs(in_dir, 3, bad=("broken.jpg",))
    (in_dir / "readme.txt").write_text("not a photo by name: ignored")
    r = h.run_cli(*batch_args(in_dir, out_dir))
    assert r.returncode == 1  # not all succeeded
    assert "3 of 4 photo(s) done" in r.stderr and "failed: broken.jpg" in r.stderr
    assert "Traceback" not in r.stderr
    check_good_outputs(out_dir, stems)
    recs = {x["item"]: x for x in journal(out_dir)}
    assert recs["broken.jpg"]["status"] == "failed" and "broken.jpg" in recs["broken.jpg"]["error"]
    assert "readme.txt" not in recs
    # Started again: the failure is remembered (not redone), the exit code still says so.
    r = h.run_cli(*batch_args(in_dir, out_dir))
    assert r.returncode == 1 and "(0 now, 3 earlier)" in r.stderr
    # Fixed and retried: all done.
    Image.open(in_dir / "photo00.jpg").save(in_dir / "broken.jpg")
    r = h.run_cli(*batch_args(in_dir, out_dir, "--retry-failed"))
    assert r.returncode == 0, r.stderr
    check_good_outputs(out_dir, stems + ["broken"])


def test_stale_temp_files_cleaned_and_truncated_journal_line_tolerated(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    stems = make_inputs(in_dir, 3)
    r = h.run_cli(*batch_args(in_dir, out_dir))
    assert r.returncode == 0
    # Simulate a kill: a half-written staging folder (with Stillflow's marker, naming a dead process), a
    # cut journal line, a lost item. A user's file that merely looks like a temporary name stays.
    stage = out_dir / ".stillflow-tmp-photo01-p999999-deadbeef" / "item"
    stage.mkdir(parents=True)
    (stage.parent / ".stillflow-stage").write_text("999999\n")
    (stage / "frame_0000.png").write_bytes(b"\x89PNG half")
    (out_dir / ".photo02.partial-999999.blend").write_bytes(b"BLENDER half")
    lines = (out_dir / "stillflow_journal.jsonl").read_text().splitlines()
    kept = [ln for ln in lines if '"photo01.jpg"' not in ln]
    (out_dir / "stillflow_journal.jsonl").write_text("\n".join(kept) + '\n{"item": "photo01.jpg", "sta')
    import shutil

    shutil.rmtree(out_dir / "photo01")
    r = h.run_cli(*batch_args(in_dir, out_dir))
    assert r.returncode == 0, r.stderr
    assert "(1 now, 2 earlier)" in r.stderr
    assert (out_dir / ".photo02.partial-999999.blend").read_bytes() == b"BLENDER half"  # not ours: kept
    (out_dir / ".photo02.partial-999999.blend").unlink()
    check_good_outputs(out_dir, stems)


def test_output_renamed_but_not_journaled_is_adopted(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    stems = make_inputs(in_dir, 2)
    assert h.run_cli(*batch_args(in_dir, out_dir)).returncode == 0
    lines = (out_dir / "stillflow_journal.jsonl").read_text().splitlines()
    (out_dir / "stillflow_journal.jsonl").write_text(lines[0] + "\n")  # killed before the 2nd line
    mtime = (out_dir / "photo01" / "stillflow.json").stat().st_mtime_ns
    r = h.run_cli(*batch_args(in_dir, out_dir))
    assert r.returncode == 0 and "(0 now, 2 earlier)" in r.stderr
    assert (out_dir / "photo01" / "stillflow.json").stat().st_mtime_ns == mtime
    check_good_outputs(out_dir, stems)


def test_foreign_existing_output_needs_overwrite(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    stems = make_inputs(in_dir, 2)
    (out_dir / "photo00").mkdir(parents=True)
    (out_dir / "photo00" / "mine.txt").write_text("keep me")
    r = h.run_cli(*batch_args(in_dir, out_dir))
    assert r.returncode == 1 and "already exists" in r.stderr
    assert (out_dir / "photo00" / "mine.txt").read_text() == "keep me"
    r = h.run_cli(*batch_args(in_dir, out_dir, "--overwrite", "--retry-failed"))
    assert r.returncode == 0, r.stderr
    check_good_outputs(out_dir, stems)


def test_same_stem_twice_gets_two_folders(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_inputs(in_dir, 1)
    Image.open(in_dir / "photo00.jpg").save(in_dir / "photo00.png")
    r = h.run_cli(*batch_args(in_dir, out_dir))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out_dir.iterdir() if p.is_dir()) == ["photo00_jpg", "photo00_png"]


def test_second_batch_on_the_same_folder_is_refused(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_inputs(in_dir, 8, size=(320, 180))
    p = _start(batch_args(in_dir, out_dir, "--frames", "120"))  # long enough to be still running
    try:
        wait_for(lambda: (out_dir / ".stillflow-batch.lock").exists() and staging(out_dir), p)
        r = h.run_cli(*batch_args(in_dir, out_dir))
        assert r.returncode == 2 and "another `stillflow batch`" in h.one_line_error(r.stderr)
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)
    assert p.returncode in h.INTERRUPTED
    assert not staging(out_dir)


def test_missing_input_folder(tmp_path):
    r = h.run_cli(*batch_args(tmp_path / "nope", tmp_path / "out"))
    assert r.returncode == 2 and "input folder not found" in h.one_line_error(r.stderr)


def test_journal_unit(tmp_path):
    from stillflow.operators.cli.batch import Journal

    j = Journal(tmp_path / "j.jsonl")
    assert j.read() == {}
    j.append({"item": "a", "status": "failed"})
    (tmp_path / "j.jsonl").write_text((tmp_path / "j.jsonl").read_text() + '{"item": "b", "st')
    j.append({"item": "a", "status": "done"})
    assert j.read() == {"a": {"item": "a", "status": "done"}}
    lines = (tmp_path / "j.jsonl").read_text().splitlines()
    assert [json.loads(x)["status"] for x in lines[::2]] == ["failed", "done"]  # the cut line stays alone


def test_ctrl_c_with_jobs_leaves_no_partial_files(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: batch and workers stop, staging folders go."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_inputs(in_dir, 4, size=(320, 180))
    p = _start(batch_args(in_dir, out_dir, "--jobs", "2", "--frames", "120"))
    wait_for(lambda: list(out_dir.glob(".stillflow-tmp-*/item/*/frame_0003.png")), p)
    children = _children(p.pid)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode in h.INTERRUPTED, err
    assert "interrupted" in err and "Traceback" not in err
    left = sorted(x.name for x in out_dir.iterdir() if x.name != ".stillflow-batch.lock")
    assert left in (["stillflow_plan.json"], ["stillflow_journal.jsonl", "stillflow_plan.json"])  # no item, no stage
    assert not [d for d in out_dir.iterdir() if d.is_dir()]
    deadline = time.monotonic() + 20
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)]
