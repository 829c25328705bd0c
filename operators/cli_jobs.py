"""One command-line item: animate one photo into its outputs, or predict its motion field.

Used by `stillflow animate`, by each `stillflow batch` worker and by `stillflow predict`. Everything is
written into a staging folder beside the outputs (same file system) and moved into place only when complete;
an error, Ctrl-C or SIGTERM removes the staging folder, so no partial output is ever visible under a final
name. Existing outputs are refused before any work unless `overwrite` is set.

Output names for a photo `<stem>.<ext>` (`layout="flat"`: directly in OUT; `layout="folder"`: in OUT/<stem>/):
  mp4  -> <stem>_loop.mp4 and <stem>.blend      png -> <stem>_frames/frame_0000.png ...
  exr  -> <stem>_exr/frame_0000.exr ...         gif/webp -> <stem>_loop.gif / <stem>_loop.webp
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .cli import Options

log = logging.getLogger("stillflow.item")  # per-photo messages; `batch` keeps them for -v

STAGE_PREFIX = ".stillflow-tmp-"
MANIFEST = "stillflow.json"


@dataclass
class ItemResult:
    image: Path
    outputs: list[Path]
    seconds: float
    source_used: str = ""
    notes: list[str] = field(default_factory=list)
    max_hole_fraction: float = 0.0


def output_names(stem: str, fmt: str) -> list[str]:
    return {
        "mp4": [f"{stem}_loop.mp4", f"{stem}.blend"],
        "png": [f"{stem}_frames"],
        "exr": [f"{stem}_exr"],
        "gif": [f"{stem}_loop.gif"],
        "webp": [f"{stem}_loop.webp"],
    }[fmt]


def _errors():
    from ..core import errors

    return errors


def require_bpy_for(fmt: str) -> None:
    if fmt == "mp4" and importlib.util.find_spec("bpy") is None:
        raise _errors().StillflowError(
            "MP4 output goes through Blender's FFmpeg and needs the bpy module: run `bash .ci/setup` "
            "(or `pip install bpy==5.0.1`), run inside `blender --command stillflow`, or use --format png"
        )


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    if overwrite:
        return
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if existing:
        names = ", ".join(str(p) for p in existing)
        raise _errors().InputError(f"{names} already exists: pass --overwrite to replace it")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def clean_stale_stages(folder: Path, only_dead: bool = True) -> int:
    """Remove staging folders (and partial files) left by killed runs. `only_dead`: keep those whose
    process still runs (another `stillflow animate` writing into the same folder)."""
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        name = entry.name
        if not (name.startswith(STAGE_PREFIX) or ".partial" in name or ".encoding-" in name):
            continue
        if only_dead:
            pid = _pid_in(name)
            if pid is None or pid_alive(pid):
                continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
            log.debug("removed stale %s", entry)
    return removed


def _pid_in(name: str) -> int | None:
    for part in reversed(name.replace(".", "-").replace("_", "-").split("-")):  # the pid comes last
        if part.startswith("p") and part[1:].isdigit():
            return int(part[1:])
    return None


def make_stage(folder: Path, stem: str) -> Path:
    stage = folder / f"{STAGE_PREFIX}{stem}-p{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    return stage


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGINT/SIGTERM while a few renames run, so an interrupt lands before or after, never between."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    sigs = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _replace(src: Path, dst: Path) -> None:
    """Move src onto dst; an existing folder at dst is removed after the new one is in place."""
    if dst.is_dir() and not dst.is_symlink():
        trash = dst.with_name(f"{STAGE_PREFIX}old-{dst.name}-p{os.getpid()}")
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)


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


# --------------------------------------------------------------------------------------------- inputs


def check_input_files(image: Path, opts: Options) -> None:
    """Missing input files are reported before anything is created."""
    errors = _errors()
    if not image.exists():
        raise errors.InputError(f"image not found: {image}")
    if not image.is_file():
        raise errors.InputError(f"not a file: {image}")
    if opts.hints is not None and not opts.hints.is_file():
        raise errors.InputError(f"hints file not found: {opts.hints}")
    if opts.mask is not None and not opts.mask.is_file():
        raise errors.InputError(f"mask file not found: {opts.mask}")
    if opts.motion not in ("auto", "hints", "model") and not Path(opts.motion).is_file():
        raise errors.InputError(f"motion field file not found: {opts.motion}")


@dataclass
class Prepared:
    image_path: Path
    stem: str
    rgb: object  # float32 (H, W, 3)
    motion: object  # float32 (H, W, 2)
    source_used: str
    notes: list[str]


def sidecar_hints(image: Path) -> Path | None:
    for cand in (image.with_suffix(".hints.json"), image.with_name(image.name + ".hints.json")):
        if cand.is_file():
            return cand
    return None


def load_inputs(image_path: Path, opts: Options, *, with_motion: bool = True) -> Prepared:
    """Read the photo, the hints, the mask and the motion (predicted or from a field file)."""
    import numpy as np

    from ..core import field as core_field
    from ..core import hints as core_hints
    from ..core import imageio

    errors = _errors()
    hints_path = opts.hints
    if hints_path is None and opts.sidecar_hints and opts.motion in ("auto", "hints"):
        hints_path = sidecar_hints(image_path)
        if hints_path is not None:
            log.info("using hints %s", hints_path)
    hints = core_hints.load_hints(hints_path) if hints_path is not None else None
    if opts.mask is not None and not opts.mask.is_file():
        raise errors.InputError(f"mask file not found: {opts.mask}")
    field_path = None if opts.motion in ("auto", "hints", "model") else Path(opts.motion)
    if field_path is not None and not field_path.is_file():
        raise errors.InputError(f"motion field file not found: {field_path}")
    if opts.motion == "hints" and (hints is None or not hints.arrows):
        raise errors.InputError("--motion hints needs a hints file with at least one arrow (--hints FILE)")

    loaded = imageio.load_image(image_path, max_size=opts.max_size)
    notes = list(loaded.notes)
    for note in notes:
        log.info("%s: %s", image_path.name, note)
    h, w = loaded.rgb.shape[:2]
    ow, oh = loaded.original_size
    if hints is not None:
        if hints.image_size is None and (ow, oh) != (w, h):
            hints.image_size = (ow, oh)  # drawn on the file: follow the downscale
        hints.for_size(w, h).validate(w, h)
    mask = imageio.load_mask(opts.mask, (h, w)) if opts.mask is not None else None
    freeze = loaded.alpha

    if not with_motion:
        return Prepared(image_path, image_path.stem, loaded.rgb, None, "", notes)
    if field_path is not None:
        m = imageio.load_field(field_path)
        if m.shape[:2] == (oh, ow) and (ow, oh) != (w, h):
            m = core_field.resize_field(m, (h, w))
            notes.append(f"motion field resized from {ow}x{oh} to {w}x{h} with the photo")
        m = core_field.validate_field(m, (h, w), what=f"motion field {field_path.name}")
        if freeze is not None:
            m = core_field.shape_motion(m, None, freeze, 0.0)
        source = f"field {field_path.name}"
        if hints is not None or mask is not None:
            notes.append("--hints/--mask are not applied to a motion field file (edit the field instead)")
            log.warning(notes[-1])
    else:
        from ..core.motion import predict_motion

        settings = opts.render_settings()
        result = predict_motion(loaded.rgb, mask=mask, hints=hints, source=opts.motion, device=opts.device,
                                feather_px=settings.feather_px, freeze=freeze)
        m, source = result.field, result.source_used + (f" ({result.provider})" if result.provider else "")
        notes.extend(result.notes)
    if not np.any(m):
        notes.append("the motion field is zero everywhere: the loop will be still")
        log.warning("%s: %s", image_path.name, notes[-1])
    log.info("%s: %dx%d, motion from %s", image_path.name, w, h, source)
    return Prepared(image_path, image_path.stem, loaded.rgb, m, source, notes)


# -------------------------------------------------------------------------------------------- progress


class _Bar:
    """tqdm when available (stderr: frames done, rate, time left), else a line every few seconds."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self._bar = None
        self._redirect = None
        self._enabled = enabled
        self.total, self.n, self.desc, self._t0, self._last = total, 0, desc, time.monotonic(), 0.0
        if not enabled:
            return
        try:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, dynamic_ncols=True,
                             leave=True)
        except ImportError:
            return
        try:  # log lines above the bar instead of through it
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()
        except ImportError:
            self._redirect = None

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._enabled:
            now = time.monotonic()
            if now - self._last > 2.0 or self.n == self.total:
                self._last = now
                rate = self.n / max(now - self._t0, 1e-9)
                left = (self.total - self.n) / rate if rate > 0 else 0.0
                print(f"{self.desc}: {self.n}/{self.total} frames, {rate:.2f} frame/s, {left:.0f} s left",
                      file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None
        if self._bar is not None:
            self._bar.close()


# -------------------------------------------------------------------------------------------- animate


def _write_frames(prep: Prepared, stage: Path, opts: Options, progress: bool) -> tuple[list[str], float]:
    """Render the loop into `stage`; return the names written there and the largest hole fraction."""
    import numpy as np

    from ..core import imageio
    from ..core.render import frame_to_uint8, loop_warnings, render_loop

    settings = opts.render_settings()
    settings.validate()
    for warning in loop_warnings(prep.motion, settings):
        log.warning("%s: %s", prep.image_path.name, warning)
    stem, fmt = prep.stem, opts.fmt
    names = output_names(stem, fmt)
    if fmt == "png":
        folder = stage / names[0]
    elif fmt == "exr":
        folder = stage / names[0]
    else:
        folder = stage / "_frames"
    folder.mkdir()
    frames_mem = []
    frame_paths: list[Path] = []
    worst = 0.0
    bar = _Bar(settings.frames, stem, progress)
    try:
        for frame in render_loop(prep.rgb, prep.motion, settings):
            worst = max(worst, frame.hole_fraction)
            rgb = frame.rgb
            if fmt == "exr":
                p = folder / f"frame_{frame.index:04d}.exr"
                imageio.save_exr_rgb(p, rgb)
            elif fmt in ("gif", "webp"):
                frames_mem.append(frame_to_uint8(rgb))
                p = None
            else:
                if fmt == "mp4":  # H.264 needs even sizes
                    hh, ww = rgb.shape[0] & ~1, rgb.shape[1] & ~1
                    rgb = rgb[:hh, :ww]
                p = folder / f"frame_{frame.index:04d}.png"
                imageio.save_png(p, frame_to_uint8(rgb))
            if p is not None:
                frame_paths.append(p)
            bar.update(1)
    finally:
        bar.close()

    if fmt == "mp4":
        from . import encode

        log.info("%s: encoding H.264 through Blender's FFmpeg and writing the .blend", stem)
        movie = encode.write_mp4(frame_paths, stage / names[0], settings.fps)
        encode.write_blend(stage / names[1], prep.image_path, np.asarray(prep.motion), movie, settings.fps)
        shutil.rmtree(folder)
    elif fmt in ("gif", "webp"):
        _write_animation(stage / names[0], frames_mem, settings.fps, fmt)
        shutil.rmtree(folder)
    return names, worst


def _write_animation(path: Path, frames, fps: float, fmt: str) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    duration = max(20, round(1000.0 / fps))  # ms; browsers treat < 20 ms GIF delays as 100 ms
    if fmt == "gif":
        images = [im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
                  for im in images]
        images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0,
                       optimize=False, disposal=1)
    else:
        images[0].save(path, format="WEBP", save_all=True, append_images=images[1:], duration=duration,
                       loop=0, quality=80, method=4)


def write_manifest(stage: Path, prep: Prepared, opts: Options, names: list[str], seconds: float,
                   extra: dict | None = None) -> None:
    data = {
        "stillflow": 1,
        "input": str(prep.image_path.resolve()),
        "input_size": os.path.getsize(prep.image_path),
        "input_mtime": os.path.getmtime(prep.image_path),
        "outputs": names,
        "format": opts.fmt,
        "frames": opts.frames,
        "fps": opts.fps,
        "speed": opts.speed,
        "motion": opts.motion,
        "motion_used": prep.source_used,
        "seconds": round(seconds, 3),
        **(extra or {}),
    }
    (stage / MANIFEST).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def animate_file(image: Path, out: Path, opts: Options, layout: str = "flat", progress: bool = True,
                 folder_name: str | None = None, manifest_extra: dict | None = None) -> ItemResult:
    """Animate `image` into `out` (see the module docstring for names). Returns the final output paths.

    `layout="folder"` puts the outputs and a manifest (`stillflow.json`, plus `manifest_extra`) in
    `out/<folder_name or stem>/`, which appears in one rename."""
    from ..core import imageio

    started = time.perf_counter()
    image, out = Path(image), Path(out)
    stem = image.stem
    names = output_names(stem, opts.fmt)
    if layout == "flat":
        finals = [out / n for n in names]
    else:
        folder_name = folder_name or stem
        finals = [out / folder_name]
    refuse_existing(finals, opts.overwrite)  # before any work
    require_bpy_for(opts.fmt)
    check_input_files(image, opts)
    created = _missing_dirs(out)
    imageio.check_writable_dir(out)
    if layout == "flat":
        clean_stale_stages(out, only_dead=True)

    stage = make_stage(out, stem)
    ok = False
    try:
        prep = load_inputs(image, opts)
        work_dir = stage / "item" if layout == "folder" else stage
        work_dir.mkdir(exist_ok=True)
        names, worst = _write_frames(prep, work_dir, opts, progress)
        seconds = time.perf_counter() - started
        if layout == "folder":
            write_manifest(work_dir, prep, opts, names, seconds, manifest_extra)
        with signals_deferred():
            refuse_existing(finals, opts.overwrite)  # appeared while we worked?
            if layout == "flat":
                for n in names:
                    _replace(work_dir / n, out / n)
            else:
                _replace(work_dir, finals[0])
        ok = True
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not ok:
            _remove_if_empty(created)
    outputs = [out / n for n in names] if layout == "flat" else [out / folder_name / n for n in names]
    if worst > 0.01:
        log.info("%s: up to %.1f%% of a frame's pixels were holes (filled)", stem, 100 * worst)
    log.info("%s: done in %.1f s", stem, time.perf_counter() - started)
    return ItemResult(image, outputs, time.perf_counter() - started, prep.source_used, prep.notes, worst)


# -------------------------------------------------------------------------------------------- predict


def predict_file(image: Path, output: Path, opts: Options) -> Path:
    """Write the motion field of `image` to `output` (.exr or .npy), atomically."""
    from ..core import imageio

    image, output = Path(image), Path(output)
    if output.suffix.lower() not in (".exr", ".npy"):
        raise _errors().InputError(f"-o must end in .exr or .npy, not {output.suffix or 'nothing'}")
    refuse_existing([output], opts.overwrite)
    check_input_files(image, opts)
    imageio.check_writable_dir(output.parent if str(output.parent) else Path("."))
    prep = load_inputs(image, opts)
    with signals_deferred(), imageio.atomic_write(output) as tmp:
        imageio.save_field(tmp, prep.motion)
    return output
