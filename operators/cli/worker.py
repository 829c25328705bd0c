"""What a batch worker process runs. Light to import on purpose: a spawned worker imports this module
before its initializer runs, and the initializer is what ties the worker's life to the batch's
(PR_SET_PDEATHSIG), so it must run within a fraction of a second of the spawn; the engine is imported
by the first item."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from .signals import caused_by_interrupt, sigterm_as_interrupt

log = logging.getLogger("stillflow")


def init_worker(level: int, quiet_loggers: tuple[str, ...] = (), n_jobs: int = 1) -> None:
    """Worker process set-up: die with the batch (Linux), log like it, share the cores with the other
    workers (numba/torch/ONNX threads), turn SIGTERM into KeyboardInterrupt so cleanup runs."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, n_jobs)))
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    try:
        import ctypes
        import signal

        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    logging.basicConfig(level=level, format="stillflow: %(message)s", stream=sys.stderr)
    for name in quiet_loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
    sigterm_as_interrupt().__enter__()  # SIGTERM -> KeyboardInterrupt -> staging folder removed


def _sha1(path: Path) -> str:
    import hashlib

    return hashlib.sha1(path.read_bytes()).hexdigest()


def run_item(image: str, out_dir: str, out_name: str, job_dict: dict) -> dict:
    """Animate one photo into OUT_DIR/<out_name>/; returns the journal fields. Runs in a worker process
    (the job travels as its plain dict)."""
    from ...core.errors import StillflowError
    from ...core.job import Job
    from ...core.pipeline import sidecar_hints
    from .item import animate_file

    started = time.perf_counter()
    image_p, out_p = Path(image), Path(out_dir)
    try:
        job = Job.from_dict(job_dict)
        manifest = {"input": str(image_p.resolve()), "input_size": os.path.getsize(image_p),
                    "input_mtime": os.path.getmtime(image_p), "settings": job.settings_key()}
        sidecar = sidecar_hints(image_p) if job.motion.source in ("auto", "hints") else None
        if sidecar is not None:  # in a batch a photo's own hints take precedence over --hints
            job.motion.hints_path = str(sidecar)
        if job.motion.hints_path is not None and os.path.isfile(job.motion.hints_path):
            hints = Path(job.motion.hints_path).resolve()
            manifest["hints_sha1"] = {str(hints): _sha1(hints)}  # resume redoes the item when it is edited
        result = animate_file(image_p, out_p, job, progress=False, folder=out_name, manifest=manifest)
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
