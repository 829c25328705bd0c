"""Writers used by the command line: MP4 (through PyAV's x264, else Blender's own FFmpeg), and a .blend file.

These are the only places where the command line touches bpy, and bpy is imported inside each function,
so `stillflow.operators.encode` (and the `stillflow` command) import without Blender. They work in the
`bpy` module from PyPI and inside `blender --background` / `blender --command stillflow`.

- `add_image_strip(scene, frame_paths, channel=None, frame_start=None)`: one Video Sequencer image strip
  holding an image sequence (all frames in one folder). Also used by the Blender operators.
- `write_mp4(frame_paths, out_path, fps)`: H.264 in an MP4 container. Encoded by x264 through PyAV where
  it is installed (no bpy then), else rendered through a temporary scene's sequencer (removed afterwards),
  so the caller's data is left alone.
- `write_blend(path, image_path, field, frame_paths, fps)`: a new .blend holding the photo, the motion field
  as a float image (R = dx, G = -dy, + up, as `core.field.to_blender_rgba` writes it; packed into the file)
  and a sequencer strip of the loop (the frames, or the movie when `frame_paths` is one movie file).
  It replaces the open file with an empty one, so it is meant for the command line's own process.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import InputError, OutputError, write_error
from ..core.field import FIELD_SUFFIX
from ..core.staging import atomic_file
from ..core.video import encode_files, even_size, x264

log = logging.getLogger(__name__)


STORED_SETTINGS = "stillflow_settings"  # the scene custom property properties.apply_stored_settings reads
MOVIE_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm"}


def _check_one_folder(frame_paths: Sequence[str | os.PathLike]) -> list[Path]:
    paths = [Path(p).absolute() for p in frame_paths]
    if not paths:
        raise InputError("no frames given")
    folder = paths[0].parent
    for p in paths:
        if p.parent != folder:
            raise InputError(f"all frames must be in one folder: {p} is not in {folder}")
    return paths


def add_image_strip(scene, frame_paths, channel: int | None = None, frame_start: int | None = None):
    """Add one image-sequence strip of `frame_paths` (in order, all in one folder) to `scene`'s sequencer.

    `channel` defaults to the first channel above every existing strip; `frame_start` to the scene's
    start frame. Returns the strip. The scene's sequence editor is created when missing.
    """
    paths = _check_one_folder(frame_paths)
    se = scene.sequence_editor or scene.sequence_editor_create()
    if channel is None:
        channel = 1 + max((s.channel for s in se.strips_all), default=0)
    if frame_start is None:
        frame_start = scene.frame_start
    name = os.path.commonprefix([p.stem for p in paths]).rstrip("_-. ") or "stillflow_loop"
    strip = se.strips.new_image(
        name=name, filepath=str(paths[0]), channel=int(channel), frame_start=int(frame_start)
    )
    for p in paths[1:]:
        strip.elements.append(p.name)
    return strip


def _set_fps(scene, fps: float) -> None:
    if fps <= 0 or not math.isfinite(fps):
        raise InputError(f"fps must be positive, got {fps}")
    whole = max(1, math.ceil(fps - 1e-9))
    scene.render.fps = whole
    scene.render.fps_base = whole / fps


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def write_mp4(frame_paths, out_path, fps: float, keyframe_interval: int | None = None,
              lossless: bool = False) -> Path:
    """Encode `frame_paths` (8-bit sRGB images, one folder, in order) to an H.264 MP4 at `out_path`.

    Blender's FFmpeg names its output itself; the file is renamed to `out_path` when complete, so
    `out_path` never holds a partial movie. Odd sizes are made even (H.264 needs it). One keyframe for the
    whole loop unless ``keyframe_interval`` says otherwise (Blender's own default is 18); ``lossless``:
    H.264 lossless instead of perceptually lossless (CRF 17). Returns out_path.

    Where PyAV is installed with its libx264 (the command line's environment, and the extension's zip,
    which bundles it), the perceptual MP4 is encoded through it instead (`core.video`), with the same
    settings and x264's macroblock tree and adaptive quantiser off: what makes the wrap and the steps
    inside the moving region even.
    """
    paths = _check_one_folder(frame_paths)
    out_path = Path(out_path).absolute()
    av = None if lossless else x264()
    if av is not None:
        with atomic_file(out_path) as tmp:
            encode_files(av, paths, tmp, fps, keyframe_interval or len(paths))
            check_mp4(tmp, out_path.name)
        return out_path
    width, height = even_size(*_image_size(paths[0]))  # x264's writer takes the size from the first frame
    bpy = _bpy()
    scene = bpy.data.scenes.new("stillflow_encode")
    try:
        with atomic_file(out_path) as tmp:
            add_image_strip(scene, paths, channel=1, frame_start=1)
            # Each frame is read once: the sequencer's caches would only hold every decoded frame (3 GB
            # more peak memory for a 60-frame 4K loop, up to Blender's 4 GB cache limit).
            scene.sequence_editor.use_cache_raw = False
            scene.sequence_editor.use_cache_final = False
            scene.frame_start, scene.frame_end = 1, len(paths)
            _set_fps(scene, fps)
            _video_settings(scene, width, height, keyframe_interval or len(paths))
            if lossless:
                scene.render.ffmpeg.constant_rate_factor = "LOSSLESS"
            scene.render.filepath = str(tmp.parent / "movie_")  # Blender appends the frame range
            produced = Path(bpy.path.abspath(scene.render.frame_path(frame=scene.frame_start)))
            log.debug("encoding %d frames %dx%d at %g fps to %s", len(paths), width, height, fps, produced)
            with _stdout_to_stderr():
                bpy.ops.render.render(animation=True, scene=scene.name)
            if not produced.is_file() or produced.stat().st_size == 0:
                raise OutputError(f"Blender's FFmpeg wrote no movie for {out_path.name}: is the disk full?")
            check_mp4(produced, out_path.name)
            os.replace(produced, tmp)
    finally:
        bpy.data.scenes.remove(scene)
    return out_path


def _video_settings(scene, width: int, height: int, keyframe_interval: int) -> None:
    scene.view_settings.view_transform = "Standard"  # sRGB frames pass through unchanged
    scene.view_settings.look = "None"
    r = scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = width, height, 100
    r.use_sequencer = True
    if hasattr(r.image_settings, "media_type"):  # Blender 5.0: FFMPEG only exists for VIDEO
        r.image_settings.media_type = "VIDEO"
    r.image_settings.file_format = "FFMPEG"
    r.ffmpeg.format = "MPEG4"
    r.ffmpeg.codec = "H264"
    # Perceptually lossless (CRF 17), and one keyframe for the whole loop: with Blender's default of a
    # keyframe every 18 frames, H.264 re-encodes the still picture at each of them (the mean step outside
    # the moving region jumps from ~0.03/255 to ~1.5/255 there, the loop's wrap included). With one GOP
    # the still parts of every frame are copies of frame 0's, and the wrap (frame N-1 -> frame 0, the same
    # keyframe) changes them by nothing.
    r.ffmpeg.constant_rate_factor = "PERC_LOSSLESS"
    gop_max = scene.render.ffmpeg.bl_rna.properties["gopsize"].hard_max
    r.ffmpeg.gopsize = max(1, min(int(keyframe_interval), gop_max))
    r.ffmpeg.ffmpeg_preset = "GOOD"
    r.ffmpeg.audio_codec = "NONE"
    r.use_file_extension = True


def _add_movie_strip(scene, movie_path: Path, channel: int = 1, frame_start: int = 1):
    se = scene.sequence_editor or scene.sequence_editor_create()
    return se.strips.new_movie(
        name=movie_path.stem, filepath=str(movie_path), channel=channel, frame_start=frame_start
    )


def _show_editors(image) -> None:
    """Show the loop and the field when the file is opened: 3D views become sequencer previews, and image
    editors show the motion field. Cosmetic: never fails the write."""
    try:
        for screen in _bpy().data.screens:
            for area in screen.areas:
                if area.type == "VIEW_3D":
                    area.type = "SEQUENCE_EDITOR"
                    for space in area.spaces:
                        if space.type == "SEQUENCE_EDITOR":
                            space.view_type = "SEQUENCER_PREVIEW"
                elif area.type == "IMAGE_EDITOR":
                    for space in area.spaces:
                        if space.type == "IMAGE_EDITOR":
                            space.image = image
    except (AttributeError, TypeError, RuntimeError) as err:  # layout differs between Blender versions
        log.debug("could not set up the editors: %s", err)


@contextlib.contextmanager
def _stdout_to_stderr():
    """Blender's renderer prints a line per frame on the C-level stdout; keep stdout for results. The lines
    go to stderr with debug logging on (-vv), else nowhere."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    sink = None
    try:
        if log.isEnabledFor(logging.DEBUG):
            os.dup2(2, 1)
        else:
            sink = os.open(os.devnull, os.O_WRONLY)
            os.dup2(sink, 1)
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        if sink is not None:
            os.close(sink)


def _store_settings(scene, photo, motion, frames: int, fps: float) -> None:
    """Leave the loop's settings as plain data on the scene (a custom property); the extension's load
    handler (`properties.apply_stored_settings`) moves them into scene.stillflow when the file is opened.
    Nothing of the extension needs to be registered to write them."""
    scene[STORED_SETTINGS] = {"image": photo.name, "field_image": motion.name, "frames": int(frames),
                              "fps": float(fps)}


def _relative(path: Path, start: Path) -> str:
    """Blender-relative ('//...') path of `path` seen from the folder `start`, or absolute across drives."""
    try:
        return "//" + os.path.relpath(path, start).replace(os.sep, "/")
    except ValueError:  # another drive on Windows
        return str(path)


def check_mp4(path: Path, name: str) -> None:
    """An MP4 that FFmpeg really finished: its top-level boxes chain to the end of the file, and it has
    its 'ftyp' and its 'moov' (the index, written last: a full disk cuts it off)."""
    import struct

    kinds = set()
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            pos = 0
            while pos + 8 <= size:
                f.seek(pos)
                box, kind = struct.unpack(">I4s", f.read(8))
                if box == 1:
                    box = struct.unpack(">Q", f.read(8))[0]
                elif box == 0:
                    box = size - pos
                if box < 8:
                    break
                kinds.add(kind)
                pos += box
    except OSError as err:
        raise OutputError(f"{name} could not be written ({err.strerror or err})") from None
    if pos != size or not {b"ftyp", b"moov"} <= kinds:
        raise OutputError(f"{name} was cut short while it was written ({size} bytes): is the disk full?")


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SEEKABLE_FOOTER = b"\xb1\xea\x92\x8f"  # zstd seekable format: Blender 5 writes compressed .blend files so


def check_blend(path: Path, name: str) -> None:
    """A .blend that Blender really finished. Blender's save does not raise when the disk fills; it leaves
    a truncated file. Uncompressed files end with the ENDB block; compressed ones (zstd seekable format)
    end with a seek table whose frame sizes add up to the file's size."""
    import struct

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(7)
            f.seek(max(0, size - 64))
            tail = f.read()
            complete = False
            if head[:4] == ZSTD_MAGIC and tail[-4:] == SEEKABLE_FOOTER and size >= 17:
                frames, descriptor = struct.unpack("<IB", tail[-9:-4])
                entry = 12 if descriptor & 0x80 else 8
                table = 8 + frames * entry + 9
                if table <= size:
                    f.seek(size - table + 8)
                    raw = f.read(frames * entry)
                    compressed = sum(struct.unpack_from("<I", raw, k * entry)[0] for k in range(frames))
                    complete = compressed + table == size
            elif head == b"BLENDER":
                complete = b"ENDB" in tail
    except OSError as err:
        raise OutputError(f"{name} could not be written ({err.strerror or err})") from None
    if not complete:
        raise OutputError(f"{name} was cut short while it was written ({size} bytes): is the disk full?")


def _bpy():
    """bpy, imported with Ctrl-C and SIGTERM held: an interrupt that lands inside the module's start-up
    (its C code registering add-ons) crashed the process (SIGSEGV) and left the staging folder behind;
    held, it arrives just after, as a KeyboardInterrupt, and the cleanup runs."""
    import sys

    if "bpy" in sys.modules:
        return sys.modules["bpy"]
    from ..core.interrupts import held

    with held():
        import bpy
    return bpy


def write_blend(path, image_path, field, frame_paths, fps: float) -> Path:
    """Write a new .blend at `path` (temporary name, then renamed) with the loop set up for Blender.

    Holds: the source photo (`image_path`, referenced by absolute path, named like its file), the motion
    field `field` (float32 (H, W, 2), px per frame, row 0 top, + dy down) as a packed float image
    "<photo>_motion" (the extension's naming) with R = dx, G = -dy (+ up), and a sequencer strip of the
    loop: an image strip when `frame_paths` is a list of frames, a movie strip when it is one movie file.
    Scene frame range and fps match the loop; the loop's path is stored relative to the .blend. The scene's
    Stillflow settings (photo, field image, frames, fps) are filled in, so the extension's panel shows them
    when the file is opened. With no work open (command-line use) it replaces the open file with an empty
    factory startup file first (preferences and add-ons stay); inside a session with work open it leaves
    that work as it was and writes the new file from datablocks made beside it.
    """
    import numpy as np

    bpy = _bpy()

    from ..core.field import to_blender_rgba

    path = Path(path).absolute()
    field = np.asarray(field, dtype=np.float32)
    if field.ndim != 3 or field.shape[2] != 2:
        raise InputError(f"field must be (H, W, 2), got {field.shape}")
    height, width = field.shape[:2]

    if isinstance(frame_paths, str | os.PathLike) and Path(frame_paths).suffix.lower() in MOVIE_SUFFIXES:
        movie, frames = Path(frame_paths).absolute(), None
    else:
        movie, frames = None, _check_one_folder(list(frame_paths))

    # Inside a session with the artist's work open (a saved file, or unsaved edits: `stillflow` run from
    # Blender's Python console, an add-on or a script), the .blend is built beside that work and written out
    # as a library, and the open file is left as it was. Else (the command line owns the process) the open
    # file is replaced by an empty one first, and the .blend also gets Stillflow's editors.
    live = bool(bpy.data.filepath) or bpy.data.is_dirty
    if live:
        images_before = set(bpy.data.images)
        scene = bpy.data.scenes.new("Stillflow")
    else:
        with _stdout_to_stderr():
            # The factory startup file, but the user's preferences and add-ons stay (read_factory_settings
            # would unregister extensions, this one included, under `blender --command stillflow`).
            bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
        scene = bpy.context.scene
        scene.name = "Stillflow"
    try:
        photo = bpy.data.images.load(str(Path(image_path).absolute()), check_existing=True)
        photo_fake_user = photo.use_fake_user  # the artist's own datablock when the photo is open already
        photo_path = photo.filepath_raw  # relative to the artist's file, maybe: absolute in the new one
        photo.filepath_raw = os.path.normpath(os.path.abspath(bpy.path.abspath(photo_path))) if photo_path else photo_path
        photo.use_fake_user = True
        # The photo stays where it is (absolute path); the loop moves with the .blend (relative path).

        motion = bpy.data.images.new(photo.name + FIELD_SUFFIX, width, height, alpha=True, float_buffer=True)
        motion.colorspace_settings.name = "Non-Color"
        motion.pixels.foreach_set(to_blender_rgba(field))
        motion.file_format = "OPEN_EXR"
        motion.pack()
        motion.use_fake_user = True

        if movie is not None:
            strip = _add_movie_strip(scene, movie)
            strip.filepath = _relative(movie, path.parent)
            n_frames = strip.frame_final_duration
        else:
            strip = add_image_strip(scene, frames, channel=1, frame_start=1)
            strip.directory = _relative(frames[0].parent, path.parent) + "/"
            n_frames = len(frames)
        scene.frame_start, scene.frame_end = 1, n_frames
        _set_fps(scene, fps)
        scene.view_settings.view_transform = "Standard"
        scene.render.resolution_x, scene.render.resolution_y = even_size(width, height)
        scene.render.resolution_percentage = 100
        if not live:
            _show_editors(motion)

        _store_settings(scene, photo, motion, int(n_frames), float(fps))
        with atomic_file(path) as tmp:
            with _stdout_to_stderr():
                if live:
                    try:  # raises on a full disk, where save_as_mainfile leaves a cut file (check_blend)
                        bpy.data.libraries.write(str(tmp), {scene, photo, motion}, path_remap="NONE",
                                                 fake_user=True, compress=True)
                    except OSError as err:
                        raise write_error(path.name, err) from None
                else:
                    bpy.ops.wm.save_as_mainfile(filepath=str(tmp), check_existing=False, relative_remap=False,
                                                copy=True)
            check_blend(tmp, path.name)
    finally:
        if live:  # what was made for the file, out of the artist's session again
            bpy.data.scenes.remove(scene)
            for image in set(bpy.data.images) - images_before:
                bpy.data.images.remove(image)
            if "photo" in locals() and photo in images_before:
                photo.use_fake_user = photo_fake_user
                photo.filepath_raw = photo_path  # as it was (filepath_raw: no reload, no edit lost)
    return path
