"""`stillflow batch IN OUT --ray [ADDRESS]`: the batch's items as Ray tasks.

Ray (an optional extra of the command-line environment: `pip install "ray[default]==2.58.0"` or just
`ray==2.58.0`; never inside the Blender zip) runs each item as a task with one CPU on whichever node has
room. `ADDRESS` is a running cluster's (`ray start --head` prints it; "auto" finds the local one); without
it a local Ray is started for the batch and stopped after it. OUT_DIR must be on storage every node
sees at the same path, and Stillflow installed on every node.

The driver (this process) is the only writer of the journal, as in a local batch. A task whose node dies is
retried by Ray on another node (`max_retries`); a retry that finds the item's complete output already in
place (the dead node had finished and renamed it) adopts it instead of redoing it. Staging folders that
tasks on dead nodes left behind carry the run's owner tag and are removed once every task has ended.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ...core import staging
from ...core.errors import StillflowError
from .worker import run_item

log = logging.getLogger("stillflow")

MAX_RETRIES = 3  # Ray resubmits a task this many times when its worker or node dies


def _import_ray():
    try:
        import ray
    except ImportError:
        raise StillflowError("--ray needs Ray, an optional extra: pip install ray==2.58.0 (or run without --ray)") from None
    return ray


def _task(image: str, out_dir: str, out_name: str, job: dict, owner: str, log_file: str | None) -> dict:
    """One item on a Ray worker; its result says which node ran it."""
    import ray

    logging.basicConfig(level=logging.INFO, format="stillflow: %(message)s")
    res = run_item(image, out_dir, out_name, job, owner, log_file)
    res["ray_node"] = ray.get_runtime_context().get_node_id()
    return res


def run_on_ray(todo, out_dir: Path, owner: str, address: str, record, bar, log_file) -> None:
    ray = _import_ray()
    connected_here = not ray.is_initialized()
    try:
        ray.init(address=address or None, ignore_reinit_error=True, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    except Exception as err:  # ConnectionError, a bad address, a version mismatch
        raise StillflowError(f"cannot connect to Ray at {address or 'a new local cluster'}: {err}") from None
    task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(_task)
    refs = {task.remote(str(it.path), str(out_dir), it.out_name, it.run_job(), owner, log_file(it)): it
            for it in todo}
    log.info("%d item(s) submitted to Ray (%s)", len(refs), address or "local")
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                it = refs.pop(ref)
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayError as err:
                    res = {"status": "failed",
                           "error": f"Ray task lost ({type(err).__name__}) after {MAX_RETRIES} retries"}
                record(it, res)
                if bar is not None:
                    bar.update(1)
    except BaseException:
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished or its node is gone
                pass
        raise
    finally:
        if connected_here:
            ray.shutdown()  # stops the local Ray it started; from a cluster it only disconnects
        # Every task has ended: staging folders still tagged with this run are leftovers of dead nodes.
        removed = staging.clean_stale(out_dir, owner=owner)
        if removed:
            log.warning("removed %d staging folder(s) left by tasks on a lost node or worker: their items "
                        "were retried", removed)
