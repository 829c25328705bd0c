"""The one pipeline under both faces: inputs -> motion field -> frames -> sinks -> outputs in place.

    inputs = load_inputs(image_path, job)            # the command line: files (Blender reads datablocks)
    run = Pipeline(job, inputs, sinks, out_dir, stem)
    for step in run.steps():                          # a generator: progress after each frame
        ...                                           # the CLI's progress bar / the modal operator's timer
    run.outputs                                       # the final paths, renamed into place

`steps()` works in a `core.staging.Stage` beside the outputs and renames its entries onto their final names
only when every sink has closed; an exception, or closing the generator early (Esc, Ctrl-C), removes the
stage, so no partial output is ever visible under a final name.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as default
from pathlib import Path

import numpy as np

from .errors import InputError
from .field import resize_field, shape_motion, validate_field
from .hints import Hints, load_hints
from .job import MANIFEST, Job
from .render import loop_warnings, render_loop
from .staging import Stage, refuse_existing

log = logging.getLogger(__name__)


@dataclass
class Inputs:
    """What the pipeline animates, however a face read it."""

    rgb: np.ndarray  # float32 (H, W, 3) sRGB values in [0, 1], row 0 top
    alpha: np.ndarray | None = None  # (H, W) in [0, 1]: transparent pixels stay still
    hints: Hints | None = None
    mask: np.ndarray | None = None  # painted motion mask (H, W) in [0, 1]
    field: np.ndarray | None = None  # a given motion field (file or Blender field image)
    name: str = "photo"
    notes: list[str] = default(default_factory=list)
    original_size: tuple[int, int] | None = None  # (width, height) before a downscale


@dataclass
class Motion:
    field: np.ndarray  # float32 (H, W, 2) px/frame
    source_used: str  # "field", "hints", "model", "model+hints", with the provider in brackets
    notes: list[str] = default(default_factory=list)
    provider: str = ""  # the ONNX Runtime provider when the model ran


@dataclass
class Step:
    stage: str  # "motion", "frame", "encode", "done"
    done: int  # frames done
    total: int


def sidecar_hints(image: Path) -> Path | None:
    for cand in (image.with_suffix(".hints.json"), image.with_name(image.name + ".hints.json")):
        if cand.is_file():
            return cand
    return None


def check_input_files(image: Path, job: Job) -> None:
    """Missing input files are reported before anything is created."""
    m = job.motion
    if not image.exists():
        raise InputError(f"image not found: {image}")
    if not image.is_file():
        raise InputError(f"not a file: {image}")
    for path, what in ((m.hints_path, "hints file"), (m.mask_path, "mask file"),
                       (m.field_path, "motion field file"), (m.model_path, "model file")):
        if path is not None and not Path(path).is_file():
            raise InputError(f"{what} not found: {path}")


def load_inputs(image_path: str | Path, job: Job, checked: bool = False) -> Inputs:
    """Read the photo, its hints (or sidecar hints), the painted mask and a given field from files
    (``checked``: the caller ran `check_input_files` already)."""
    from . import imageio

    image_path = Path(image_path)
    job.validate()
    if not checked:
        check_input_files(image_path, job)
    m = job.motion
    hints_path = m.hints_path
    if hints_path is None and m.uses_sidecar:
        hints_path = sidecar_hints(image_path)
        if hints_path is not None:
            log.info("using hints %s", hints_path)
    hints = load_hints(hints_path) if hints_path is not None else None
    if m.source == "hints" and (hints is None or not hints.arrows):
        raise InputError("--motion hints needs a hints file with at least one arrow (--hints FILE)")
    loaded = imageio.load_image(image_path, max_size=job.max_size)
    h, w = loaded.rgb.shape[:2]
    ow, oh = loaded.original_size
    if hints is not None and hints.image_size is None and (ow, oh) != (w, h):
        hints.image_size = (ow, oh)  # drawn on the file: follow the downscale
    notes = list(loaded.notes)
    given = None
    if m.source == "field":
        given = imageio.load_field(m.field_path)
        if given.shape[:2] == (oh, ow) and (ow, oh) != (w, h):
            given = resize_field(given, (h, w))
            notes.append(f"motion field resized from {ow}x{oh} to {w}x{h} with the photo")
        given = validate_field(given, (h, w), what=f"motion field {Path(m.field_path).name}")
        if hints is not None or m.mask_path is not None:
            notes.append("--hints/--mask are not applied to a motion field file (edit the field instead)")
            log.warning(notes[-1])
            hints = None
    mask = imageio.load_mask(m.mask_path, (h, w)) if m.mask_path is not None and given is None else None
    if hints is not None:
        hints.for_size(w, h).validate(w, h)
    for note in notes:
        log.info("%s: %s", image_path.name, note)
    return Inputs(loaded.rgb, loaded.alpha, hints, mask, given, image_path.name, notes, (ow, oh))


def motion_for(inputs: Inputs, job: Job) -> Motion:
    """The motion field: the given one (transparent pixels frozen), or predicted from the photo."""
    m = job.motion
    notes: list[str] = []
    provider = ""
    if inputs.field is not None:
        field_ = validate_field(inputs.field, inputs.rgb.shape[:2])
        if inputs.alpha is not None:
            field_ = shape_motion(field_, None, inputs.alpha, 0.0)
        used = "field"
    else:
        if m.source == "field":
            raise InputError("motion source 'field' needs a field: predict the motion first")
        from .motion import predict_motion

        result = predict_motion(inputs.rgb, mask=inputs.mask, hints=inputs.hints, source=m.source,
                                model_path=m.model_path, device=job.device, feather_px=m.feather_px,
                                freeze=inputs.alpha, travel_frames=job.loop.frames * job.loop.speed, sky=m.sky)
        field_, notes, provider = result.field, list(result.notes), result.provider
        used = result.source_used + (f" ({provider})" if provider else "")
    if not np.any(field_):
        notes.append("the motion field is zero everywhere: the loop will be still")
        log.warning("%s: %s", inputs.name, notes[-1])
    return Motion(field_.astype(np.float32), used, notes, provider)


def final_paths(sinks: list, out_dir: Path, folder: str | None = None) -> list[Path]:
    """Where the sinks' outputs end up: ``out_dir/<name>`` each, or the one folder ``out_dir/<folder>``."""
    out_dir = Path(out_dir)
    if folder is not None:
        return [out_dir / folder]
    return [out_dir / n for s in sinks for n in s.names]


class Pipeline:
    """One photo's run: `steps()` yields progress; afterwards `outputs` holds the final paths.

    ``folder``: put every output (and a manifest ``stillflow.json`` with ``manifest``) in
    ``out_dir/folder``, which appears in one rename (the batch's layout); else they go into ``out_dir``."""

    def __init__(self, job: Job, inputs: Inputs, sinks: list, out_dir: str | Path, stem: str,
                 folder: str | None = None, manifest: dict | None = None, motion: Motion | None = None):
        self.job = job.validate()
        self.inputs = inputs
        self.sinks = sinks
        self.out_dir = Path(out_dir)
        self.stem = stem
        self.folder = folder
        self.manifest = manifest
        self.motion = motion
        self.outputs: list[Path] = []
        self.hole_fractions: list[float] = []
        self.seconds = 0.0
        self.notes: list[str] = list(inputs.notes)
        self.commit_hook = None  # callable(commit) -> the renames run through it (the CLI holds signals)
        self.stage_owner = ""  # the tag on its staging folder (a batch shard's, a Ray run's)

    @property
    def names(self) -> list[str]:
        return [n for s in self.sinks for n in s.names]

    def finals(self) -> list[Path]:
        return final_paths(self.sinks, self.out_dir, self.folder)

    def check_outputs(self) -> None:
        """Refuse existing outputs (unless overwrite) before any work."""
        if not self.job.output.overwrite:
            refuse_existing(self.finals())

    def steps(self) -> Iterator[Step]:
        started = time.perf_counter()
        self.check_outputs()
        loop = self.job.loop
        if self.motion is None:
            yield Step("motion", 0, loop.frames)
            self.motion = motion_for(self.inputs, self.job)
        self.notes.extend(self.motion.notes)
        for warning in loop_warnings(self.motion.field, loop):
            log.warning("%s: %s", self.inputs.name, warning)
            self.notes.append(warning)
        h, w = self.inputs.rgb.shape[:2]
        with Stage(self.out_dir, self.stem, self.stage_owner) as stage:
            work = stage.path
            if self.folder is not None:
                work = stage / "item"
                work.mkdir()
            try:
                for sink in self.sinks:
                    sink.open(work, w, h, loop)
                for frame in render_loop(self.inputs.rgb, self.motion.field, loop, device=self.job.device):
                    for sink in self.sinks:
                        sink.write(frame.index, frame.rgb)
                    self.hole_fractions.append(frame.hole_fraction)
                    yield Step("frame", frame.index + 1, loop.frames)
                yield Step("encode", loop.frames, loop.frames)
                for sink in self.sinks:
                    sink.close()
            except BaseException:
                for sink in self.sinks:
                    sink.abort()
                raise
            self.seconds = time.perf_counter() - started
            if self.folder is not None:
                manifest = {"stillflow": 1, "outputs": self.names, "motion_used": self.motion.source_used,
                            "seconds": round(self.seconds, 3), **(self.manifest or {})}
                (work / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
                moves = {"item": self.out_dir / self.folder}
            else:
                moves = {n: self.out_dir / n for n in self.names}

            def commit():
                return stage.commit(moves, self.job.output.overwrite)

            committed = self.commit_hook(commit) if self.commit_hook else commit()
        if self.folder is not None:
            self.outputs = [committed[0] / n for n in self.names]
        else:
            self.outputs = committed
        worst = max(self.hole_fractions, default=0.0)
        if worst > 0.01:
            log.info("%s: up to %.1f%% of a frame's pixels were holes (filled)", self.stem, 100 * worst)
        yield Step("done", loop.frames, loop.frames)

    def run(self) -> list[Path]:
        """All steps at once; returns the outputs."""
        for _ in self.steps():
            pass
        return self.outputs

