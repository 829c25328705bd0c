"""Scale out (issue 16): job lists with per-item settings, shards in parallel processes into one OUT_DIR,
--status / --json / --dry-run / --log-dir, a real local Ray cluster that loses a node mid-run, and the
Flamenco job type's compileJob under node with a recording stand-in for Flamenco's `author` API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import stillflow_cli_test_helpers as h  # registered by conftest.py
from PIL import Image
from stillflow_cli_test_helpers import check_good_outputs, make_inputs

FRAMES = 4


def _args(in_path, out_dir, *extra, frames=FRAMES):
    return ["batch", in_path, out_dir, "--motion", "hints", "--frames", str(frames), "--format", "png",
            "--quiet", *extra]


def _hints(folder: Path) -> Path:
    return h.write_hints(folder / "hints.json", [((10, 10), (30, 20), 20), ((50, 30), (40, 25), 20)], (64, 36))


def _journal_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _shard_of(name: str, n: int) -> int:
    from stillflow.operators.cli.items import Shard

    return next(k for k in range(1, n + 1) if Shard(k, n).has(name))


def test_three_shards_at_once_into_one_out_dir(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    stems = make_inputs(in_dir, 20)
    hints = _hints(tmp_path)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = [subprocess.Popen(h.cli_cmd(*_args(in_dir, out_dir, "--hints", hints, "--shard", f"{k}/3", "--json")),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for k in (1, 2, 3)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    check_good_outputs(out_dir, stems)

    # Each shard wrote its own journal and plan only, with exactly its own items, each done once.
    assert not (out_dir / "stillflow_journal.jsonl").exists()
    seen = []
    for k, (stdout, _) in zip((1, 2, 3), outs, strict=True):
        recs = _journal_lines(out_dir / f"stillflow_journal.shard-{k}-of-3.jsonl")
        names = [r["item"] for r in recs]
        assert all(_shard_of(n, 3) == k for n in names) and len(set(names)) == len(names)
        assert all(r["status"] == "done" and r["shard"] == f"{k}/3" for r in recs)
        plan = json.loads((out_dir / f"stillflow_plan.shard-{k}-of-3.json").read_text())
        assert sorted(e["item"] for e in plan["items"]) == sorted(names)
        printed = [json.loads(line) for line in stdout.splitlines()]  # --json: one object per item
        assert sorted(o["item"] for o in printed) == sorted(names)
        assert all(o["status"] == "done" and o["outputs"] for o in printed)
        seen += names
    assert sorted(seen) == sorted(f"{s}.jpg" for s in stems)
    assert min(len([n for n in seen if _shard_of(n, 3) == k]) for k in (1, 2, 3)) >= 1

    # --status merges the journals; without IN it knows the items from the plans.
    r = h.run_cli("batch", "--status", out_dir, "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert (st["items"], st["done"], st["failed"], st["pending"]) == (20, 20, 0, 0)

    # A photo removed from one output and an item added: status says pending, the owning shard redoes it.
    shutil.rmtree(out_dir / "photo05")
    recs_before = {k: len(_journal_lines(out_dir / f"stillflow_journal.shard-{k}-of-3.jsonl")) for k in (1, 2, 3)}
    make_inputs(tmp_path / "more", 21)
    shutil.copy(tmp_path / "more" / "photo20.jpg", in_dir / "photo20.jpg")
    r = h.run_cli("batch", in_dir, out_dir, "--status")
    assert r.returncode == 1 and "20 done, 0 failed, 1 pending of 21" in r.stdout, r.stdout
    owner = _shard_of("photo20.jpg", 3)
    r = h.run_cli(*_args(in_dir, out_dir, "--hints", hints, "--shard", f"{owner}/3"))
    assert r.returncode == 0, r.stderr
    assert (out_dir / "photo20").is_dir()
    after = {k: len(_journal_lines(out_dir / f"stillflow_journal.shard-{k}-of-3.jsonl")) for k in (1, 2, 3)}
    assert after[owner] >= recs_before[owner] + 1
    assert all(after[k] == recs_before[k] for k in (1, 2, 3) if k != owner)  # no writes to others' journals


def test_resharding_keeps_what_other_shards_did(tmp_path):
    """Items done under 2 shards are not redone under 3: every run reads every journal."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_inputs(in_dir, 6)
    hints = _hints(tmp_path)
    for k in (1, 2):
        assert h.run_cli(*_args(in_dir, out_dir, "--hints", hints, "--shard", f"{k}/2")).returncode == 0
    r = h.run_cli(*_args(in_dir, out_dir, "--hints", hints, "--shard", "1/3", "--json"))
    assert r.returncode == 0, r.stderr
    printed = [json.loads(line) for line in r.stdout.splitlines()]
    assert printed and all(o["earlier"] for o in printed)
    assert "(0 now," in r.stderr


def test_job_list_with_per_item_settings(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_inputs(in_dir, 3)
    cli_hints = _hints(tmp_path)  # the third row's, from the command line
    _hints(in_dir)
    (in_dir / "jobs.csv").write_text(
        "photo,name,frames,format,hints,speed\n"
        "photo00.jpg,first,6,png,hints.json,\n"
        "photo01.jpg,,3,gif,hints.json,2\n"
        "photo02.jpg,third,,,,\n", encoding="utf-8")
    r = h.run_cli(*_args(in_dir / "jobs.csv", out_dir, "--json", "--hints", cli_hints))
    assert r.returncode == 0, r.stderr
    assert len(list((out_dir / "first" / "photo00_frames").iterdir())) == 6
    with Image.open(out_dir / "photo01" / "photo01_loop.gif") as gif:
        assert gif.n_frames == 3
    assert len(list((out_dir / "third" / "photo02_frames").iterdir())) == FRAMES  # the command line's
    manifests = {n: json.loads((out_dir / n / "stillflow.json").read_text()) for n in ("first", "photo01")}
    assert manifests["photo01"]["settings"]["loop"]["speed"] == 2.0
    assert manifests["first"]["settings"]["loop"]["speed"] == 1.0
    printed = {o["item"]: o for o in map(json.loads, r.stdout.splitlines())}
    assert set(printed) == {"first", "photo01.jpg", "third"}

    # JSON lines too; a second run of the same list does nothing.
    (in_dir / "jobs.jsonl").write_text(json.dumps({"photo": "photo00.jpg", "name": "first", "frames": 6,
                                                   "hints": "hints.json"}) + "\n", encoding="utf-8")
    r = h.run_cli(*_args(in_dir / "jobs.jsonl", out_dir, "--hints", cli_hints))
    assert r.returncode == 0 and "(0 now, 1 earlier)" in r.stderr, r.stderr


@pytest.mark.parametrize("row, message", [
    ("photo00.jpg,zero", "frames must be a whole number"),
    ("missing.jpg,4", "photo not found"),
    ("photo00.jpg,1", "frames must be a whole number from 2"),
    ("photo00.jpg,4,missing.json", "hints file not found"),
])
def test_bad_job_list_row_is_one_line_and_writes_nothing(tmp_path, row, message):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_inputs(in_dir, 2)
    (in_dir / "jobs.csv").write_text(f"photo,frames,hints\nphoto01.jpg,4,\n{row}\n", encoding="utf-8")
    r = h.run_cli(*_args(in_dir / "jobs.csv", out_dir))
    assert r.returncode == 2
    line = h.one_line_error(r.stderr)
    assert "jobs.csv line 3" in line and message in line, line
    assert not out_dir.exists()


def test_dry_run_lists_and_writes_nothing(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_inputs(in_dir, 4)
    hints = _hints(tmp_path)
    r = h.run_cli(*_args(in_dir, out_dir, "--hints", hints, "--dry-run"))
    assert r.returncode == 0, r.stderr
    assert [ln.split()[0] for ln in r.stdout.splitlines()] == ["do"] * 4
    assert not out_dir.exists()
    assert h.run_cli(*_args(in_dir, out_dir, "--hints", hints)).returncode == 0
    (in_dir / "photo02.jpg").touch()  # the photo changed
    before = h.listing(out_dir)
    mtimes = {p: (out_dir / p).stat().st_mtime_ns for p in before}
    r = h.run_cli(*_args(in_dir, out_dir, "--hints", hints, "--dry-run", "--json"))
    actions = {o["item"]: o["action"] for o in map(json.loads, r.stdout.splitlines())}
    assert actions == {"photo00.jpg": "skip", "photo01.jpg": "skip", "photo02.jpg": "redo", "photo03.jpg": "skip"}
    assert h.listing(out_dir) == before
    assert {p: (out_dir / p).stat().st_mtime_ns for p in before} == mtimes


def test_log_dir_has_one_log_per_item(tmp_path):
    in_dir, out_dir, logs = tmp_path / "in", tmp_path / "out", tmp_path / "logs"
    make_inputs(in_dir, 3, bad=("broken.jpg",))
    hints = _hints(tmp_path)
    r = h.run_cli(*_args(in_dir, out_dir, "--hints", hints, "--log-dir", logs, "--jobs", "2"))
    assert r.returncode == 1  # the broken photo
    assert sorted(p.name for p in logs.iterdir()) == ["broken.log", "photo00.log", "photo01.log", "photo02.log"]
    text = (logs / "photo01.log").read_text()
    assert "photo01: done" in text and "rendering 4 frames" in text  # the per-photo chatter hidden on the console
    assert "rendering 4 frames" not in r.stderr
    assert "failed" in (logs / "broken.log").read_text()


# ------------------------------------------------------------------------------------------------ Flamenco

FLAMENCO_HARNESS = r"""
// A recording stand-in for Flamenco's `author` API (the Manager's goja runtime is not here): it records the
// tasks and commands compileJob makes, so the test can check them.
const fs = require("fs"), vm = require("vm");
const [script, settingsJson] = process.argv.slice(2);
const tasks = [];
const author = {
  Task(name, type) {
    const t = { name, type, commands: [], deps: [] };
    return { _t: t, addCommand(c) { t.commands.push(c); }, addDependency(o) { t.deps.push(o._t.name); } };
  },
  Command(name, params) { return { name, params }; },
};
const job = { settings: JSON.parse(settingsJson), addTask(t) { tasks.push(t._t); } };
const ctx = vm.createContext({ author, console });
vm.runInContext(fs.readFileSync(script, "utf8") + "\nthis.JOB_TYPE = JOB_TYPE; this.compileJob = compileJob;", ctx);
const defaults = {};
for (const s of ctx.JOB_TYPE.settings) { if ("default" in s) defaults[s.key] = s.default; }
job.settings = Object.assign(defaults, job.settings);
try { ctx.compileJob(job); } catch (e) { console.log(JSON.stringify({ error: String(e) })); process.exit(0); }
console.log(JSON.stringify({ label: ctx.JOB_TYPE.label, tasks }));
"""


def _compile_flamenco(tmp_path, settings: dict) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    harness = tmp_path / "harness.js"
    harness.write_text(FLAMENCO_HARNESS, encoding="utf-8")
    r = subprocess.run([node, harness, h.REPO / "flamenco" / "stillflow_batch.js", json.dumps(settings)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("count, size, shards", [(1000, 100, 10), (95, 10, 10), (5, 100, 1)])
def test_flamenco_job_type_makes_one_task_per_shard(tmp_path, count, size, shards):
    out = _compile_flamenco(tmp_path, {"input": "/farm/in", "output": "/farm/out/", "photo_count": count,
                                       "shard_size": size, "frames": 30, "format": "png",
                                       "extra_args": "--speed 1.5  --max-size 1920"})
    assert out["label"] == "Stillflow Batch"
    tasks = out["tasks"]
    assert len(tasks) == shards + 1
    shard_tasks, status = tasks[:-1], tasks[-1]
    for k, t in enumerate(shard_tasks, 1):
        assert t["name"] == f"stillflow-shard-{k}-of-{shards}" and t["type"] == "blender" and not t["deps"]
        (cmd,) = t["commands"]
        assert cmd["name"] == "exec" and cmd["params"]["exe"] == "{blender}"
        assert cmd["params"]["args"] == ["--command", "stillflow", "batch", "/farm/in", "/farm/out/", "--shard",
                                         f"{k}/{shards}", "--frames", "30", "--format", "png", "--log-dir",
                                         "/farm/out/logs", "--quiet", "--speed", "1.5", "--max-size", "1920"]
    assert status["deps"] == [t["name"] for t in shard_tasks]
    assert status["commands"][0]["params"]["args"] == ["--command", "stillflow", "batch", "--status", "/farm/out/"]


def test_flamenco_job_type_command_line_runner_and_bad_settings(tmp_path):
    out = _compile_flamenco(tmp_path, {"input": "in", "output": "out", "shards": 3, "runner": "stillflow"})
    assert [t["commands"][0]["params"]["exe"] for t in out["tasks"]] == ["stillflow"] * 4
    assert out["tasks"][1]["commands"][0]["params"]["args"][:5] == ["batch", "in", "out", "--shard", "2/3"]
    assert "error" in _compile_flamenco(tmp_path, {"input": "in", "output": "out"})


def test_flamenco_commands_run_as_a_farm_would(tmp_path):
    """The commands compileJob makes, run here one after another with the command line as the runner:
    the shards fill OUT_DIR and the status task passes."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    stems = make_inputs(in_dir, 5)
    _hints(in_dir)
    for s in stems:
        shutil.copy(in_dir / "hints.json", in_dir / f"{s}.hints.json")
    (in_dir / "hints.json").unlink()
    out = _compile_flamenco(tmp_path, {"input": str(in_dir), "output": str(out_dir), "photo_count": 5,
                                       "shard_size": 2, "frames": FRAMES, "format": "png", "runner": "stillflow"})
    for t in out["tasks"]:
        args = t["commands"][0]["params"]["args"]
        r = subprocess.run(h.cli_cmd(*args), capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (args, r.stderr)
    check_good_outputs(out_dir, stems)
    assert sorted(p.name for p in (out_dir / "logs").iterdir()) == sorted(f"{s}.log" for s in stems)


# ----------------------------------------------------------------------------------------------------- Ray


def _ray(*args, env, timeout=120) -> subprocess.CompletedProcess:
    ray_cli = [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; sys.exit(main())"]
    return subprocess.run([*ray_cli, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)


def _raylets() -> set[int]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return {int(line.split()[0]) for line in out.splitlines()[1:] if "/raylet/raylet " in line}


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines()[1:]:
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    todo, found = [pid], []
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


RAY_FRAMES = 48


def test_ray_batch_survives_a_lost_worker_node(tmp_path):
    pytest.importorskip("ray")
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    stems = make_inputs(in_dir, 20)
    hints = _hints(tmp_path)
    temp = Path(tempfile.mkdtemp(prefix="sfray", dir="/tmp"))  # Ray's socket paths must stay short
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
    port = 6390 + os.getpid() % 500
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats"]
    try:
        r = _ray("start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", f"--temp-dir={temp}",
                 "--include-dashboard=false", *common, env=env)
        assert r.returncode == 0, r.stderr
        head = _raylets()
        r = _ray("start", f"--address={address}", "--node-ip-address=127.0.0.1", *common, env=env)
        assert r.returncode == 0, r.stderr
        (second,) = _raylets() - head
        # Loops long enough (about half a second an item) that the second node has an item in hand when killed.
        args = _args(in_dir, out_dir, "--hints", hints, "--ray", address, "--json", frames=RAY_FRAMES)
        batch = subprocess.Popen(h.cli_cmd(*args),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 300
        journal = out_dir / "stillflow_journal.jsonl"
        # Until both nodes have finished items and the second node has one in hand (a staging folder of one
        # of its worker processes).
        while time.monotonic() < deadline and batch.poll() is None:
            recs = _journal_lines(journal) if journal.exists() else []
            workers = {str(p) for p in _descendants(second)}
            in_hand = [p for p in out_dir.glob(".stillflow-tmp-*") if p.name.split("-p")[-1].split("-")[0] in workers]
            if len({x.get("ray_node") for x in recs}) >= 2 and in_hand:
                break
            time.sleep(0.05)
        assert batch.poll() is None, "the batch ended before the node could be killed"
        assert len(_journal_lines(journal)) < 20
        in_hand_items = {p.name[len(".stillflow-tmp-"):].rsplit("-p", 1)[0] + ".jpg" for p in in_hand}
        killed_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        for pid in [second, *_descendants(second)]:  # the node and its workers, as a lost machine
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stdout, stderr = batch.communicate(timeout=600)
        assert batch.returncode == 0, stderr
        check_good_outputs(out_dir, stems, RAY_FRAMES)
        recs = _journal_lines(journal)
        done = [x["item"] for x in recs if x["status"] == "done"]
        assert sorted(done) == sorted(f"{s}.jpg" for s in stems)  # each item recorded done exactly once
        assert not [x for x in recs if x["status"] != "done"]
        # After the kill only the surviving node finished items, the ones the lost node had in hand among them.
        survivor = {x["ray_node"] for x in recs if x["time"] > killed_at}
        assert len(survivor) == 1 and len({x["ray_node"] for x in recs} - survivor) == 1
        assert all(x["ray_node"] in survivor for x in recs if x["item"] in in_hand_items)
        printed = [json.loads(line) for line in stdout.splitlines()]
        assert sorted(o["item"] for o in printed) == sorted(done)
    finally:
        _ray("stop", "--force", env=env)
        shutil.rmtree(temp, ignore_errors=True)
