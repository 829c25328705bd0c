"""`stillflow batch IN OUT_DIR`: animate every photo of a folder or a job list, resumably, on one machine,
as one shard of many, or on a Ray cluster.

- IN is a folder of photos or a job list (.csv / .jsonl with per-item settings: see `items`). Each item goes
  to `OUT_DIR/<name>/` (the files `stillflow animate` writes, plus `stillflow.json`, a small manifest), built
  in a staging folder `OUT_DIR/.stillflow-tmp-...` and renamed into place only when complete, then recorded
  in the journal (see `journal`).
- Started again after a crash, a kill (even SIGKILL) or Ctrl-C, the same command skips the items recorded as
  done (with the same settings), removes its own stale staging folders, and redoes the rest. Items recorded
  as failed are skipped too unless `--retry-failed` (a bad photo stays bad); an output folder that is
  complete (its manifest matches) but missing from the journal (killed between rename and journal line) is
  adopted.
- A bad photo fails its item, is recorded and reported at the end; the batch goes on. The exit code is 0
  when every item is done, 1 otherwise.
- Where the items run: `--jobs K` worker processes (spawned; on Linux they die with the batch); `--ray
  [ADDRESS]` Ray tasks on a cluster (`ray_runner`); `--shard K/N` runs only shard K's items, with its own
  journal, plan and lock, so N machines share one OUT_DIR with no shared-file writes.
- `--json` prints one result object per item on stdout; `--log-dir DIR` writes each item's log to
  `DIR/<name>.log`; `--dry-run` lists what would be done and writes nothing; `--status` reports the journals.
One run per OUT_DIR (or per shard) at a time: a lock file; a second one is refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ...core import staging
from ...core.job import MANIFEST, Job
from . import item as cli_item
from .items import Item, Shard, load_items
from .journal import Journal, journal_name, now, open_no_link, read_all, write_plan
from .worker import adopted_manifest, init_worker, run_item

log = logging.getLogger("stillflow")

LOCK = ".stillflow-batch.lock"
# Per-photo chatter hidden in a batch unless -v (warnings and errors still show, prefixed with the photo).
QUIET_IN_BATCH = ("stillflow.item", "stillflow.core")


@dataclass
class BatchReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    total: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class Options:
    """How a batch runs (what it makes is each item's Job)."""

    n_jobs: int = 1
    retry_failed: bool = False
    progress: bool = True
    shard: Shard | None = None
    ray: str | None = None  # None: no Ray; "": a local Ray; else a cluster's address
    dry_run: bool = False
    json: bool = False  # one result object per item on stdout
    log_dir: Path | None = None

    @property
    def tag(self) -> str:
        """Names this run's journal, plan, lock and staging folders ("" for a whole batch)."""
        return self.shard.tag if self.shard else ""


# ------------------------------------------------------------------------------------------------ locking


@contextlib.contextmanager
def batch_lock(out_dir: Path, tag: str = "", what: str = "") -> Iterator[None]:
    """One run per OUT_DIR, or per shard: an advisory lock (best effort on network file systems, where one
    process per shard is the rule to keep)."""
    from ...core.errors import StillflowError

    path = out_dir / (f".stillflow-batch.{tag}.lock" if tag else LOCK)
    f = os.fdopen(open_no_link(path, os.O_RDWR | os.O_CREAT), "a+")  # held for the whole batch
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock; one batch per folder is up to the user
            yield
            return
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StillflowError(f"another `stillflow batch` is writing {what}{out_dir}: wait for it or stop it") from None
        yield
    finally:
        f.close()


# -------------------------------------------------------------------------------------------------- plan


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="photo", desc="batch", file=sys.stderr, dynamic_ncols=True)


def _emit(obj: dict, stream=None) -> None:
    print(json.dumps(obj, sort_keys=True), file=stream or sys.stdout, flush=True)


def classify(items: list[Item], out_dir: Path, records: dict[str, dict], opts: Options, overwrite: bool):
    """Each item's action: ("do" | "redo" | "skip" | "failed" | "adopt", why)."""
    plan = []
    for it in items:
        rec = records.get(it.name)
        final = out_dir / it.out_name
        key = it.key
        if rec and rec.get("status") == "done" and final.is_dir():
            why = _changed(rec, it, key, final) or ("--overwrite" if overwrite else None)
            plan.append((it, "skip", "done earlier") if why is None else (it, "redo", why))
        elif rec and rec.get("status") == "failed" and not opts.retry_failed:
            plan.append((it, "failed", rec.get("error", "failed")))
        elif not overwrite and adopted_manifest(final, it.path, key) is not None:
            plan.append((it, "adopt", "complete output found without a journal line"))
        else:
            plan.append((it, "do", ""))
    return plan


def run_batch(source: Path, out_dir: Path, job: Job, opts: Options | None = None, **kw) -> BatchReport:
    """Run the batch of `source` (a folder or a job list) into `out_dir`; see the module docstring."""
    from ...core import imageio
    from ...core.errors import InputError

    opts = opts or Options(**kw)
    source, out_dir = Path(source), Path(out_dir)
    if opts.n_jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {opts.n_jobs}")
    items = load_items(source, job)
    total = len(items)
    if opts.shard:
        items = opts.shard.select(items)
        log.info("shard %s: %d of %d item(s)", opts.shard.label, len(items), total)
    for fmt in sorted({it.job["output"]["fmt"] for it in items}):
        cli_item.require_bpy_for(fmt)
    report = BatchReport(total=len(items))
    if not items:
        log.warning("no photos found in %s%s", source, " for this shard" if opts.shard else "")
    if opts.dry_run:
        records = read_all(out_dir) if out_dir.is_dir() else {}
        for it, action, why in classify(items, out_dir, records, opts, job.output.overwrite):
            if opts.json:
                _emit({"item": it.name, "action": action, "out": it.out_name, "why": why})
            else:
                print(f"{action:7s} {it.name} -> {out_dir / it.out_name}" + (f" ({why})" if why else ""))
        return report
    imageio.check_writable_dir(out_dir)
    owner = opts.tag or ("ray" if opts.ray is not None else "")
    shard = opts.shard.label if opts.shard else None
    with batch_lock(out_dir, opts.tag, f"shard {shard} of " if shard else ""):
        # A whole batch holds OUT_DIR's lock: every staging folder is a leftover. A shard clears only its own.
        stale = _clean_own(out_dir, opts.tag)
        if stale:
            log.info("removed %d unfinished item(s) left by an earlier run", stale)
        write_plan(out_dir, opts.tag, items, shard)
        journal = Journal(out_dir / journal_name(opts.tag))
        todo: list[Item] = []
        for it, action, why in classify(items, out_dir, read_all(out_dir), opts, job.output.overwrite):
            if action == "skip":
                report.skipped.append(it.name)
                if opts.json:
                    _emit({"item": it.name, "status": "done", "earlier": True, "out": it.out_name})
            elif action == "failed":
                report.failed[it.name] = why
                log.info("%s: failed earlier (%s); skipped, --retry-failed redoes it", it.name, why)
                if opts.json:
                    _emit({"item": it.name, "status": "failed", "earlier": True, "out": it.out_name, "error": why})
            elif action == "adopt":
                rec = {"item": it.name, "status": "done", "out": it.out_name, "settings": it.key,
                       "outputs": _listing(out_dir / it.out_name, out_dir), "time": now(), "note": why}
                journal.append(rec)
                report.skipped.append(it.name)
                if opts.json:
                    _emit({**rec, "earlier": True})
            else:
                if action == "redo":
                    log.warning("%s: done earlier, but %s: redone", it.name, why)
                    it.redo = True
                todo.append(it)
        if report.skipped:
            log.info("%d of %d photo(s) already done; %d to do", len(report.skipped), len(items), len(todo))

        results = sys.stdout  # --json objects go here even while Ray's messages are sent to stderr

        def record(it: Item, res: dict) -> None:
            rec = {"item": it.name, "out": it.out_name, "settings": it.key, "time": now(), **res}
            if shard:
                rec["shard"] = shard
            journal.append(rec)
            if opts.json:
                _emit({**rec, "earlier": False}, results)
            if res["status"] == "done":
                report.done.append(it.name)
                report.failed.pop(it.name, None)
            else:
                report.failed[it.name] = res.get("error", "failed")
                log.error("%s: %s", it.name, res.get("error"))

        log_file = _log_files(opts.log_dir)
        bar = _progress(len(todo), opts.progress and not opts.json)
        try:
            if opts.ray is not None:
                from .ray_runner import run_on_ray

                with contextlib.redirect_stdout(sys.stderr):  # Ray prints its own messages to stdout
                    run_on_ray(todo, out_dir, owner, opts.ray, record, bar, log_file)
            else:
                n_jobs = _cap_jobs(opts.n_jobs, len(todo))
                if n_jobs <= 1 or len(todo) <= 1:
                    for it in todo:
                        record(it, run_item(str(it.path), str(out_dir), it.out_name, it.run_job(), owner,
                                            log_file(it), _quiet_loggers()))
                        if bar is not None:
                            bar.update(1)
                else:
                    _run_pool(todo, out_dir, owner, n_jobs, record, bar, log_file)
        finally:
            if bar is not None:
                bar.close()

    _summary(report, out_dir, opts)
    return report


def _log_files(log_dir: Path | None) -> Callable[[Item], str | None]:
    if log_dir is None:
        return lambda it: None
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    return lambda it: str((log_dir / f"{it.out_name}.log").resolve())


def _cap_jobs(n_jobs: int, n_todo: int) -> int:
    cores = os.cpu_count() or 1
    if n_jobs > min(cores, max(1, n_todo)):
        capped = max(1, min(cores, n_todo))
        log.warning("--jobs %d: using %d worker(s) (%d core(s), %d photo(s) to do)", n_jobs, capped, cores, n_todo)
        return capped
    return n_jobs


MAX_ATTEMPTS = 2  # an item in flight when a worker dies is tried once more in a fresh pool


def _run_pool(todo, out_dir, owner, n_jobs, record, bar, log_file) -> None:
    """Items in worker processes. When a worker dies (killed, out of memory) the pool breaks and every
    future in it fails: the items that were not finished go to a fresh pool; one that was in flight at
    MAX_ATTEMPTS breaks fails alone ("worker process died")."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")  # no forking of a process holding bpy/numba/torch threads
    level = logging.getLogger().level
    quiet = _quiet_loggers()
    attempts = {it.name: 0 for it in todo}
    left = list(todo)
    lost_workers = False
    while left:
        pool = ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=init_worker,
                                   initargs=(level, quiet, n_jobs))
        broken: list = []
        try:
            pending = {pool.submit(run_item, str(it.path), str(out_dir), it.out_name, it.run_job(), owner,
                                   log_file(it), quiet): it
                       for it in left}
            for it in left:
                attempts[it.name] += 1
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    item = pending.pop(fut)
                    try:
                        res = fut.result()
                    except KeyboardInterrupt:
                        raise
                    except BrokenProcessPool:
                        broken.append(item)
                        continue
                    except Exception as err:
                        res = {"status": "failed", "error": f"worker process failed: {type(err).__name__}: {err}"}
                    record(item, res)
                    if bar is not None:
                        bar.update(1)
        except BaseException:
            # Interrupted: stop the workers now; each removes its staging folder on SIGTERM.
            for proc in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            _clean_own(out_dir, owner)
            raise
        pool.shutdown(wait=True)
        if broken:
            lost_workers = True
            staging.clean_stale(out_dir, only_dead=True)  # the dead worker's stage
            log.warning("a worker process died; %d unfinished item(s) go to a fresh pool", len(broken))
        left = []
        for item in broken:
            if attempts[item.name] >= MAX_ATTEMPTS:
                record(item, {"status": "failed", "error": "worker process died while animating it "
                                                           f"({MAX_ATTEMPTS} times): out of memory?"})
                if bar is not None:
                    bar.update(1)
            else:
                left.append(item)
    if lost_workers:
        # Once every pool has been shut down (its processes joined): the stages of workers that the broken
        # pool stopped, whose processes were still exiting at the first clean-up, are leftovers now.
        staging.clean_stale(out_dir, only_dead=True)


def _quiet_loggers() -> tuple[str, ...]:
    """The per-photo loggers this batch keeps off the console (for the workers and the item logs)."""
    return tuple(n for n in QUIET_IN_BATCH if logging.getLogger(n).level == logging.WARNING)


def _clean_own(out_dir: Path, owner: str) -> int:
    """This run's leftover staging folders: a shard's (or a Ray run's) own only; for a whole batch, which
    holds OUT_DIR's lock, every one. Returns how many were removed."""
    if owner:
        return staging.clean_stale(out_dir, owner=owner)
    return staging.clean_stale(out_dir, only_dead=False)


def _changed(rec: dict, item: Item, key: dict, final: Path) -> str | None:
    """Why an item done earlier must be redone: other settings, a changed photo or hints file, a sidecar
    hints file that was not there; else None."""
    if rec.get("settings") != key:
        return "the settings changed"
    try:
        data = json.loads((final / MANIFEST).read_text(encoding="utf-8"))
        stat = item.path.stat()
    except (OSError, json.JSONDecodeError):
        return None  # no manifest to compare with: keep what is there
    if data.get("input_size") != stat.st_size or data.get("input_mtime") != stat.st_mtime:
        return "the photo changed"
    from ...core.pipeline import sidecar_hints
    from .worker import _sha1

    used = data.get("hints_sha1") or {}
    sidecar = sidecar_hints(item.path) if Job.from_dict(item.job).motion.uses_sidecar else None
    if sidecar is not None and str(sidecar.resolve()) not in used:
        return "a sidecar hints file appeared"
    for path, digest in used.items():
        try:
            if _sha1(Path(path)) != digest:
                return "its hints file changed"
        except OSError:
            return "its hints file is gone"
    return None


def _listing(final: Path, out_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(out_dir)) for p in final.iterdir() if p.name != MANIFEST)


def _summary(report: BatchReport, out_dir: Path, opts: Options) -> None:
    done = len(report.done) + len(report.skipped)
    which = f" (shard {opts.shard.label})" if opts.shard else ""
    print(f"stillflow batch{which}: {done} of {report.total} photo(s) done ({len(report.done)} now, "
          f"{len(report.skipped)} earlier), {len(report.failed)} failed; journal "
          f"{out_dir / journal_name(opts.tag)}", file=sys.stderr)
    for name, err in sorted(report.failed.items()):
        print(f"  failed: {name}: {err}", file=sys.stderr)


def print_status(st: dict, as_json: bool) -> None:
    if as_json:
        _emit(st)
        return
    print(f"stillflow batch: {st['out_dir']}: {st['done']} done, {st['failed']} failed, {st['pending']} pending "
          f"of {st['items']} item(s); journals: {', '.join(st['journals']) or 'none'}")
    for name, err in sorted(st["failed_items"].items()):
        print(f"  failed: {name}: {err}")
    for name in st["pending_items"][:20]:
        print(f"  pending: {name}")
    if len(st["pending_items"]) > 20:
        print(f"  ... and {len(st['pending_items']) - 20} more pending")


__all__ = ["run_batch", "run_item", "Journal", "BatchReport", "Options", "print_status", "LOCK"]
