"""What a batch worker process runs. Light to import on purpose: a spawned worker imports this module
before its initializer runs, and the initializer is what ties the worker's life to the batch's
(PR_SET_PDEATHSIG), so it must run within a fraction of a second of the spawn; the engine is imported
by the first item."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path

from ...core.interrupts import as_keyboard_interrupt, caused_by_interrupt
from ...core.job import MANIFEST

log = logging.getLogger("stillflow")


def die_with_batch() -> None:
    """In a batch worker (a spawned process, Linux; from its initializer, the first moment
    ``multiprocessing.parent_process()`` is known): be killed when the batch dies (PR_SET_PDEATHSIG), and
    exit at once if it died already. The signal is only armed for a parent alive when prctl runs: a worker
    whose batch was killed between the spawn and this call would be left waiting for work forever (a
    worker and the resource tracker it held open outlived a SIGKILLed batch once, in a run under heavy
    load)."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent.pid:  # the batch is gone: this worker was handed to init
        os._exit(1)


def init_worker(level: int, quiet_loggers: tuple[str, ...] = (), n_jobs: int = 1) -> None:
    """Worker process set-up: die with the batch (Linux), log like it, share the cores with the other
    workers (numba/torch/ONNX threads), turn SIGTERM and SIGINT into KeyboardInterrupt so cleanup runs."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, n_jobs)))
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    die_with_batch()
    logging.basicConfig(level=level, format="stillflow: %(message)s", stream=sys.stderr)
    for name in quiet_loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
    as_keyboard_interrupt().__enter__()  # SIGTERM/SIGINT -> KeyboardInterrupt -> staging folder removed


def _sha1(path: Path) -> str:
    import hashlib

    return hashlib.sha1(path.read_bytes()).hexdigest()


def adopted_manifest(final: Path, image: Path, key: dict) -> dict | None:
    """The manifest of a complete output folder already in place for this photo and these settings
    (renamed into place by a run whose journal line was lost, or by a Ray task whose node died after it
    finished); None when there is no such folder."""
    try:
        data = json.loads((final / MANIFEST).read_text(encoding="utf-8"))
        stat = image.stat()
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("input") != str(image.resolve()) or data.get("settings") != key:
        return None
    if data.get("input_size", stat.st_size) != stat.st_size or data.get("input_mtime", stat.st_mtime) != stat.st_mtime:
        return None
    return data if all((final / n).exists() for n in data.get("outputs", [])) else None


@contextlib.contextmanager
def item_log(path: str | None, quiet: tuple[str, ...]):
    """While one item runs, everything it logs (INFO and up, the per-photo chatter a batch hides from the
    console included) also goes to ``path``, appended; the console shows what it showed before."""
    if not path:
        yield
        return
    root = logging.getLogger()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root_level = root.level
    hushed = [lg for lg in map(logging.getLogger, quiet) if lg.level == logging.WARNING]

    def console(record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        if any(record.name == lg.name or record.name.startswith(lg.name + ".") for lg in hushed):
            return False
        return record.levelno >= root_level

    consoles = list(root.handlers)
    for h in consoles:
        h.addFilter(console)
    for lg in hushed:
        lg.setLevel(logging.NOTSET)
    root.setLevel(min(root_level, logging.INFO) if root_level else logging.INFO)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(root_level)
        for lg in hushed:
            lg.setLevel(logging.WARNING)
        for h in consoles:
            h.removeFilter(console)


def run_item(image: str, out_dir: str, out_name: str, job_dict: dict, owner: str = "",
             log_file: str | None = None, quiet: tuple[str, ...] = ()) -> dict:
    """Animate one photo into OUT_DIR/<out_name>/; returns the journal fields. Runs in a worker process,
    a Ray task or the batch itself (the job travels as its plain dict). ``owner`` tags the staging folder;
    ``log_file`` gets the item's log."""
    with item_log(log_file, quiet):
        if log_file:
            log.info("%s -> %s/%s", image, out_dir, out_name)
        res = _run_item(image, out_dir, out_name, job_dict, owner)
        if log_file:
            log.info("%s: %s in %.1f s%s", out_name, res["status"], res.get("seconds", 0.0),
                     f": {res['error']}" if res.get("error") else "")
        return res


def _run_item(image: str, out_dir: str, out_name: str, job_dict: dict, owner: str) -> dict:
    from ...core.errors import StillflowError
    from ...core.job import Job
    from ...core.pipeline import sidecar_hints
    from .item import animate_file

    started = time.perf_counter()
    image_p, out_p = Path(image), Path(out_dir)
    try:
        job = Job.from_dict(job_dict)
        final = out_p / out_name
        data = None if job.output.overwrite else adopted_manifest(final, image_p, job.settings_key())
        if data is not None:
            return {"status": "done", "outputs": [f"{out_name}/{n}" for n in data.get("outputs", [])],
                    "note": "adopted a complete output already in place", "seconds": 0.0}
        manifest = {"input": str(image_p.resolve()), "input_size": os.path.getsize(image_p),
                    "input_mtime": os.path.getmtime(image_p), "settings": job.settings_key()}
        sidecar = sidecar_hints(image_p) if job.motion.uses_sidecar else None
        if sidecar is not None:  # in a batch a photo's own hints take precedence over --hints
            job.motion.hints_path = str(sidecar)
        if job.motion.hints_path is not None and os.path.isfile(job.motion.hints_path):
            hints = Path(job.motion.hints_path).resolve()
            manifest["hints_sha1"] = {str(hints): _sha1(hints)}  # resume redoes the item when it is edited
        result = animate_file(image_p, out_p, job, progress=False, folder=out_name, manifest=manifest,
                              owner=owner)
        return {"status": "done", "outputs": [str(p.relative_to(out_p)) for p in result.outputs],
                "notes": result.notes, "motion_used": result.source_used,
                "seconds": round(time.perf_counter() - started, 3)}
    except StillflowError as err:
        return {"status": "failed", "error": str(err), "seconds": round(time.perf_counter() - started, 3)}
    except Exception as err:  # any failure of one photo fails that item only, in both modes
        if caused_by_interrupt(err):
            raise KeyboardInterrupt from err
        log.debug("item %s failed", image, exc_info=True)
        return {"status": "failed", "error": f"{type(err).__name__}: {err}",
                "seconds": round(time.perf_counter() - started, 3)}
