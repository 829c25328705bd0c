"""`stillflow batch IN_DIR OUT_DIR`: animate every photo of a folder, resumably.

- Each photo `IN_DIR/<name>` goes to `OUT_DIR/<stem>/` (the same files `stillflow animate` writes, plus
  `stillflow.json`, a small manifest). The item is built in a staging folder `OUT_DIR/.stillflow-tmp-...`
  and renamed to `OUT_DIR/<stem>` only when complete, then recorded in the journal.
- The journal `OUT_DIR/stillflow_journal.jsonl` holds one JSON object per line and per finished item:
  `{"item": name, "status": "done" | "failed", "out": folder, "outputs": [...], "error": message,
  "seconds": s, "time": ISO 8601, "settings": {...}}`. The last line for an item wins.
- Started again after a crash, a kill (even SIGKILL) or Ctrl-C, the same command skips the items recorded as
  done (with the same settings), removes stale staging folders, and redoes the rest. Items recorded as
  failed are skipped too unless `--retry-failed` (a bad photo stays bad); an output folder that is complete
  (its manifest matches) but missing from the journal (killed between rename and journal line) is adopted.
- A bad photo fails its item, is recorded and reported at the end; the batch goes on. The exit code is 0
  when every item is done, 1 otherwise.
- `--jobs K` runs K photos at once in worker processes (spawned; on Linux they die with the batch).
One batch per OUT_DIR at a time (a lock file); a second one is refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ...core import staging
from ...core.job import Job
from ...core.pipeline import MANIFEST
from . import item as cli_item
from .worker import init_worker, run_item

log = logging.getLogger("stillflow")

JOURNAL = "stillflow_journal.jsonl"
LOCK = ".stillflow-batch.lock"
# Per-photo chatter hidden in a batch unless -v (warnings and errors still show, prefixed with the photo).
QUIET_IN_BATCH = ("stillflow.item", "stillflow.core")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".tga", ".exr"}


# ---------------------------------------------------------------------------------------------- journal


def _open_no_link(path: Path, flags: int):
    """os.open that refuses a symbolic link at ``path`` (a planted link must not make a batch write
    elsewhere): one line and exit 2."""
    from ...core.errors import InputError

    if path.is_symlink():
        raise InputError(f"{path} is a symbolic link: Stillflow writes its batch files only inside OUT_DIR; "
                         "remove the link")
    try:
        return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError:
        if path.is_symlink():
            raise InputError(f"{path} is a symbolic link: remove it") from None
        raise


class Journal:
    """Append-only JSON-lines record of finished items; tolerant of a last line cut by a kill."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> dict[str, dict]:
        """The last record of each item."""
        last: dict[str, dict] = {}
        if not self.path.exists() and not self.path.is_symlink():
            return last
        with os.fdopen(_open_no_link(self.path, os.O_RDONLY), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    log.debug("journal line %d is incomplete (killed while writing?): ignored", n)
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("item"), str):
                    last[rec["item"]] = rec
        return last

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True)
        needs_newline = False
        fd = _open_no_link(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        size = os.fstat(fd).st_size
        if size > 0:
            os.lseek(fd, size - 1, os.SEEK_SET)  # writes still go to the end (O_APPEND)
            needs_newline = os.read(fd, 1) != b"\n"
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(("\n" if needs_newline else "") + line + "\n")
            f.flush()
            os.fsync(f.fileno())


# ------------------------------------------------------------------------------------------------- items


@dataclass
class Item:
    name: str  # file name inside IN_DIR: the journal key
    path: Path
    out_name: str  # folder name inside OUT_DIR
    redo: bool = False  # done earlier, but its inputs or settings changed: its own output is replaced

    def job_dict(self, job_dict: dict) -> dict:
        if not self.redo:
            return job_dict
        return {**job_dict, "output": {**job_dict["output"], "overwrite": True}}


@dataclass
class BatchReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def list_items(in_dir: Path) -> list[Item]:
    """Photos directly inside `in_dir` (by suffix, sorted), each with a unique output folder name."""
    files = sorted(
        p for p in in_dir.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        and not p.name.lower().endswith((".mask.png", ".mask.jpg"))
    )
    stems: dict[str, int] = {}
    for p in files:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    items = []
    reserved = {JOURNAL, LOCK}
    for p in files:
        out_name = p.stem if stems[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.').lower()}"
        if out_name in reserved or out_name.startswith(".stillflow"):  # never the batch's own files' names
            out_name = f"{out_name}_item"
        items.append(Item(p.name, p, out_name))
    return items


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------------ locking


@contextlib.contextmanager
def batch_lock(out_dir: Path) -> Iterator[None]:
    from ...core.errors import StillflowError

    path = out_dir / LOCK
    f = os.fdopen(_open_no_link(path, os.O_RDWR | os.O_CREAT), "a+")  # held for the whole batch
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock; one batch per folder is up to the user
            yield
            return
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StillflowError(f"another `stillflow batch` is writing to {out_dir}: wait for it or stop it") from None
        yield
    finally:
        f.close()


# ---------------------------------------------------------------------------------------------- workers


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="photo", desc="batch", file=sys.stderr, dynamic_ncols=True)


def run_batch(in_dir: Path, out_dir: Path, job: Job, n_jobs: int = 1, retry_failed: bool = False,
              progress: bool = True) -> BatchReport:
    from ...core import imageio
    from ...core.errors import InputError

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise InputError(f"input folder not found: {in_dir}")
    if n_jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {n_jobs}")
    cli_item.require_bpy_for(job.output.fmt)
    imageio.check_writable_dir(out_dir)
    report = BatchReport()
    with batch_lock(out_dir):
        stale = staging.clean_stale(out_dir, only_dead=False)
        if stale:
            log.info("removed %d unfinished item(s) left by an earlier run", stale)
        journal = Journal(out_dir / JOURNAL)
        records = journal.read()
        key = job.settings_key()
        job_dict = job.to_dict()
        items = list_items(in_dir)
        if not items:
            log.warning("no photos found in %s", in_dir)
        todo: list[Item] = []
        for item in items:
            rec = records.get(item.name)
            final = out_dir / item.out_name
            if rec and rec.get("status") == "done" and final.is_dir():
                why = _changed(rec, item, key, final, job) or ("--overwrite" if job.output.overwrite else None)
                if why is None:
                    report.skipped.append(item.name)
                    continue
                log.warning("%s: done earlier, but %s: redone", item.name, why)
                item.redo = True
                todo.append(item)
                continue
            if rec and rec.get("status") == "failed" and not retry_failed:
                report.failed[item.name] = rec.get("error", "failed")
                log.info("%s: failed earlier (%s); skipped, --retry-failed redoes it", item.name,
                         rec.get("error", ""))
                continue
            if _adoptable(final, item, key):
                journal.append({"item": item.name, "status": "done", "out": item.out_name,
                                "outputs": _listing(final, out_dir), "settings": key, "time": _now(),
                                "note": "adopted complete output found without a journal line"})
                report.skipped.append(item.name)
                continue
            todo.append(item)
        if report.skipped:
            log.info("%d of %d photo(s) already done; %d to do", len(report.skipped), len(items), len(todo))

        def record(item: Item, res: dict) -> None:
            rec = {"item": item.name, "out": item.out_name, "settings": key, "time": _now(), **res}
            journal.append(rec)
            if res["status"] == "done":
                report.done.append(item.name)
                report.failed.pop(item.name, None)
            else:
                report.failed[item.name] = res.get("error", "failed")
                log.error("%s: %s", item.name, res.get("error"))

        cores = os.cpu_count() or 1
        if n_jobs > min(cores, max(1, len(todo))):
            capped = max(1, min(cores, len(todo)))
            log.warning("--jobs %d: using %d worker(s) (%d core(s), %d photo(s) to do)", n_jobs, capped, cores,
                        len(todo))
            n_jobs = capped
        bar = _progress(len(todo), progress)
        try:
            if n_jobs <= 1 or len(todo) <= 1:
                for item in todo:
                    record(item, run_item(str(item.path), str(out_dir), item.out_name, item.job_dict(job_dict)))
                    if bar is not None:
                        bar.update(1)
            else:
                _run_pool(todo, out_dir, job_dict, n_jobs, record, bar)
        finally:
            if bar is not None:
                bar.close()

    _summary(report, len(items), out_dir)
    return report


MAX_ATTEMPTS = 2  # an item in flight when a worker dies is tried once more in a fresh pool


def _run_pool(todo, out_dir, job_dict, n_jobs, record, bar) -> None:
    """Items in worker processes. When a worker dies (killed, out of memory) the pool breaks and every
    future in it fails: the items that were not finished go to a fresh pool; one that was in flight at
    MAX_ATTEMPTS breaks fails alone ("worker process died")."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")  # no forking of a process holding bpy/numba/torch threads
    level = logging.getLogger().level
    quiet = tuple(n for n in QUIET_IN_BATCH if logging.getLogger(n).level == logging.WARNING)
    attempts = {it.name: 0 for it in todo}
    left = list(todo)
    while left:
        pool = ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=init_worker,
                                   initargs=(level, quiet, n_jobs))
        broken: list = []
        try:
            pending = {pool.submit(run_item, str(it.path), str(out_dir), it.out_name, it.job_dict(job_dict)): it
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
            staging.clean_stale(out_dir, only_dead=False)
            raise
        pool.shutdown(wait=True)
        if broken:
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


def _changed(rec: dict, item: Item, key: dict, final: Path, job: Job) -> str | None:
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
    sidecar = sidecar_hints(item.path) if job.motion.source in ("auto", "hints") else None
    if sidecar is not None and str(sidecar.resolve()) not in used:
        return "a sidecar hints file appeared"
    for path, digest in used.items():
        try:
            if _sha1(Path(path)) != digest:
                return "its hints file changed"
        except OSError:
            return "its hints file is gone"
    return None


def _adoptable(final: Path, item: Item, key: dict) -> bool:
    """A complete output folder (renamed into place) whose journal line was lost: same input and settings."""
    manifest = final / MANIFEST
    if not manifest.is_file():
        return False
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    if data.get("input") != str(item.path.resolve()) or data.get("settings") != key:
        return False
    return all((final / n).exists() for n in data.get("outputs", []))


def _listing(final: Path, out_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(out_dir)) for p in final.iterdir() if p.name != MANIFEST)


def _summary(report: BatchReport, total: int, out_dir: Path) -> None:
    done = len(report.done) + len(report.skipped)
    print(f"stillflow batch: {done} of {total} photo(s) done ({len(report.done)} now, "
          f"{len(report.skipped)} earlier), {len(report.failed)} failed; journal {out_dir / JOURNAL}",
          file=sys.stderr)
    for name, err in sorted(report.failed.items()):
        print(f"  failed: {name}: {err}", file=sys.stderr)


__all__ = ["run_batch", "run_item", "Journal", "BatchReport", "list_items", "JOURNAL"]
