"""One command-line item: animate one photo into its outputs, or write its motion field.

Used by `stillflow animate`, by each `stillflow batch` worker and by `stillflow predict`. Both run the one
pipeline (`core.pipeline`) with a `core.job.Job`; outputs are named by `core.job.output_names` (the same
names the Blender operators use):
  mp4  -> <stem>_loop.mp4 and <stem>.blend      png -> <stem>_frames/frame_0000.png ...
  exr  -> <stem>_exr/frame_0000.exr ...         gif/webp -> <stem>_loop.gif / <stem>_loop.webp
Existing outputs are refused before any work unless the job says overwrite.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...core import imageio, staging
from ...core.errors import InputError, StillflowError
from ...core.interrupts import call_held
from ...core.job import Job
from ...core.pipeline import Pipeline, check_input_files, final_paths, load_inputs, motion_for
from ...core.sinks import file_sinks
from .progress import Bar

log = logging.getLogger("stillflow.item")  # per-photo messages; `batch` keeps them for -v


@dataclass
class ItemResult:
    image: Path
    outputs: list[Path]
    seconds: float
    source_used: str = ""
    notes: list[str] = field(default_factory=list)
    max_hole_fraction: float = 0.0


def require_bpy_for(fmt: str) -> None:
    if fmt == "mp4" and importlib.util.find_spec("bpy") is None:
        raise StillflowError(
            "MP4 output goes through Blender's FFmpeg and needs the bpy module: run `bash .ci/setup` "
            "(or `pip install bpy==5.0.1`), run inside `blender --command stillflow`, or use --format png"
        )


def sinks_for(job: Job, stem: str, image: Path, run_ref: list) -> list:
    """The command line's sinks: mp4 = the movie and a .blend holding the field; else the file sinks."""
    if job.output.fmt != "mp4":
        return file_sinks(stem, job.output.fmt)
    from ..bpy_sinks import BlendSink, Mp4Sink

    lossless = job.output.mp4_quality == "lossless"
    return [Mp4Sink(stem, lossless=lossless), BlendSink(stem, image, lambda: run_ref[0].motion.field)]


def _missing_dirs(folder: Path) -> list[Path]:
    """The folders that creating `folder` would create, deepest first."""
    out = []
    folder = folder.absolute()
    while not folder.exists() and folder.parent != folder:
        out.append(folder)
        folder = folder.parent
    return out


def _remove_if_empty(folders: list[Path]) -> None:
    """Undo the creation of output folders by a run that failed: leave no trace of it."""
    for f in folders:
        try:
            f.rmdir()
        except OSError:
            return


def animate_file(image: Path, out: Path, job: Job, progress: bool = True, folder: str | None = None,
                 manifest: dict | None = None, owner: str = "") -> ItemResult:
    """Animate `image` into `out` (`folder`: into `out/<folder>/` with a manifest, in one rename; `owner`
    tags the staging folder: see core.staging.clean_stale)."""
    started = time.perf_counter()
    image, out = Path(image), Path(out)
    stem = image.stem
    run_ref: list = []
    sinks = sinks_for(job, stem, image, run_ref)
    if not job.output.overwrite:
        staging.refuse_existing(final_paths(sinks, out, folder))  # before any work
    require_bpy_for(job.output.fmt)
    check_input_files(image, job)
    created = _missing_dirs(out)
    imageio.check_writable_dir(out)
    if folder is None:
        staging.clean_stale(out, only_dead=True)
    ok = False
    bar = None
    try:
        inputs = load_inputs(image, job, checked=True)
        run = Pipeline(job, inputs, sinks, out, stem, folder=folder, manifest=manifest)
        run.commit_hook = call_held
        run.stage_owner = owner
        run_ref.append(run)
        bar = Bar(job.loop.frames, stem, progress)
        for step in run.steps():
            if step.stage == "frame":
                bar.update(1)
            elif step.stage == "encode" and job.output.fmt == "mp4":
                log.info("%s: encoding H.264 through Blender's FFmpeg and writing the .blend", stem)
        ok = True
    finally:
        if bar is not None:
            bar.close()
        if not ok:
            _remove_if_empty(created)
    seconds = time.perf_counter() - started
    log.info("%s: motion from %s; done in %.1f s", stem, run.motion.source_used, seconds)
    return ItemResult(image, run.outputs, seconds, run.motion.source_used, run.notes,
                      max(run.hole_fractions, default=0.0))


def predict_file(image: Path, output: Path | None, job: Job, write_hints: Path | None = None) -> list[Path]:
    """Write the motion field of `image` to `output` (.exr or .npy) and, with `write_hints`, the moving region
    it proposes as a hints file (`core.regions.propose_hints`); each atomically, nothing replaced unless the
    job says overwrite. Returns the paths written."""
    image = Path(image)
    targets = [Path(p) for p in (output, write_hints) if p is not None]
    if not targets:
        raise InputError("predict writes a field (-o FIELD.npy|.exr), a hints file (--write-hints FILE.json) "
                         "or both: give at least one")
    if output is not None and Path(output).suffix.lower() not in (".exr", ".npy"):
        raise InputError(f"-o must end in .exr or .npy, not {Path(output).suffix or 'nothing'}")
    if write_hints is not None and Path(write_hints).suffix.lower() != ".json":
        raise InputError(f"--write-hints must end in .json, not {Path(write_hints).suffix or 'nothing'}")
    if len(targets) == 2 and targets[0].resolve() == targets[1].resolve():
        raise InputError("-o and --write-hints name the same file")
    if not job.output.overwrite:
        staging.refuse_existing(targets)
    for p in targets:
        if p.is_dir() and not p.is_symlink():
            raise InputError(f"{p} is a folder: choose a file name")
        imageio.check_writable_dir(p.parent if str(p.parent) else Path("."))
    check_input_files(image, job)
    inputs = load_inputs(image, job, checked=True)
    motion = motion_for(inputs, job)
    proposal = None
    if write_hints is not None:
        from ...core.hints import save_hints
        from ...core.regions import propose_hints

        proposal = propose_hints(inputs.rgb, motion.field, inputs.hints, inputs.original_size)
        log.info("%s: proposed %d moving region(s) and %d still hole(s)", image.name,
                 len(proposal.motion_polygons), len(proposal.freeze_polygons))
    if output is not None:
        with staging.atomic_file(output) as tmp:
            imageio.save_field(tmp, motion.field)
    if proposal is not None:
        with staging.atomic_file(write_hints) as tmp:
            save_hints(proposal, tmp)
    return targets


def flowmap_file(image: Path, output: Path, job: Job, y: str = "down") -> tuple[Path, Path]:
    """Write the motion of `image` as a flow map (.png or .exr) and its sidecar .json (see core.flowmap)."""
    from ...core.flowmap import write_flowmap

    image, output = Path(image), Path(output)
    if output.suffix.lower() not in (".png", ".exr"):
        raise InputError(f"-o must end in .png or .exr, not {output.suffix or 'nothing'}")
    if not job.output.overwrite:
        staging.refuse_existing([output, output.with_suffix(".json")])
    for p in (output, output.with_suffix(".json")):
        if p.is_dir() and not p.is_symlink():
            raise InputError(f"{p} is a folder: choose a file name for the flow map")
    check_input_files(image, job)
    imageio.check_writable_dir(output.parent if str(output.parent) else Path("."))
    motion = motion_for(load_inputs(image, job, checked=True), job)
    return write_flowmap(output, motion.field, y)


__all__ = ["animate_file", "predict_file", "flowmap_file", "ItemResult", "require_bpy_for"]
