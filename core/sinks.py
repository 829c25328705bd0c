"""Where frames go: one small writer per output format, each with the same three calls.

A sink is opened on a folder inside a `core.staging.Stage` (`open(folder, width, height, loop)`, a Path),
gets every frame in order
(`write(index, rgb)`: float32 (H, W, 3) sRGB-encoded values in [0, 1]) and finishes inside the stage
(`close()`); the pipeline then renames the stage's entries named in `names` onto their final names.
`abort()` drops what a sink holds in memory. Sinks that need bpy (MP4 through Blender's FFmpeg, the .blend)
live on the Blender side (`operators/bpy_sinks.py`) and follow the same protocol.

- `FramesSink("png")`: 8-bit sRGB PNG frames in `<stem>_frames/frame_0000.png ...`
- `FramesSink("exr")`: 32-bit float **scene-linear** EXR frames in `<stem>_exr/` (as OpenEXR, Blender and
  every compositor read EXR)
- `FramesSink("bmp", hidden=True)`: uncompressed 8-bit frames for an encoder (the MP4's), never an output
- A frame sink writes on a thread of its own (`Behind`, which core.video's x264 writer shares), up to
  `FramesSink.AHEAD` frames behind the renderer, so the file encoding (PNG's zlib, OpenEXR; both release
  the GIL) overlaps the next frame's rendering
- `AnimationSink("gif" | "webp")`: one looping animated file `<stem>_loop.gif` / `.webp`
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import write_error
from .imageio import save_exr_rgb, save_png, srgb_to_linear
from .job import LoopSpec, frame_name, output_names
from .render import frame_to_uint8


class Sink(Protocol):
    names: list[str]  # what it leaves in the stage, to be renamed onto the final names

    def open(self, folder: Path, width: int, height: int, loop: LoopSpec) -> None: ...

    def write(self, index: int, rgb: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class Behind:
    """One thread of its own that runs jobs in order, at most ``ahead`` of them handed over and not yet done:
    a sink's file encoding (PNG's zlib, OpenEXR, x264 through PyAV; all release the GIL) overlaps the next
    frame's rendering. A failed job raises its error from the next `submit` or from `finish`."""

    def __init__(self, name: str, ahead: int = 2):
        self.ahead = ahead
        self._thread: ThreadPoolExecutor | None = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: deque = deque()

    def submit(self, fn, *args) -> None:
        while self._pending and (self._pending[0].done() or len(self._pending) >= self.ahead):
            self._pending.popleft().result()
        self._pending.append(self._thread.submit(fn, *args))

    def finish(self) -> None:
        """Every job done (or the first failure raised)."""
        while self._pending:
            self._pending.popleft().result()

    def stop(self) -> None:
        """No more jobs: the one running finishes, the others are dropped."""
        if self._thread is not None:
            self._thread.shutdown(wait=True, cancel_futures=True)
            self._thread = None
        self._pending.clear()


class FramesSink:
    """A folder of numbered frames: PNG (8-bit sRGB), EXR (32-bit float, scene-linear) or, for an encoder
    only, BMP (8-bit sRGB, uncompressed: a seventh of PNG's time to write, and Blender reads it)."""

    AHEAD = 2  # frames handed to the writer thread and not yet written, at most

    def __init__(self, stem: str, fmt: str = "png", even: bool = False, hidden: bool = False):
        if fmt not in ("png", "exr", "bmp") or (fmt == "bmp" and not hidden):
            raise ValueError(f"FramesSink writes png or exr (bmp hidden, for an encoder), not {fmt}")
        self.fmt = fmt
        self.folder_name = f".frames-{fmt}" if hidden else output_names(stem)[fmt]
        self.names = [] if hidden else [self.folder_name]  # hidden: frames for an encoder, never an output
        self.even = even  # crop to even sizes (H.264 frames)
        self.folder: Path | None = None
        self.paths: list[Path] = []
        self._writer: Behind | None = None
        self.last: tuple[int, np.ndarray] | None = None  # (index, what write saved) of the latest frame

    def open(self, folder, width: int, height: int, loop: LoopSpec) -> None:
        self.folder = folder / self.folder_name
        try:
            self.folder.mkdir()
        except OSError as err:
            raise write_error(self.folder_name, err) from None
        self._writer = Behind("stillflow-frames", self.AHEAD)

    def write(self, index: int, rgb: np.ndarray) -> None:
        path = self.folder / frame_name(index, "." + self.fmt)
        if self.even:
            rgb = rgb[: rgb.shape[0] & ~1, : rgb.shape[1] & ~1]
        # Converted here, into an array of the thread's own: the renderer may reuse its buffers.
        data = srgb_to_linear(rgb) if self.fmt == "exr" else frame_to_uint8(rgb)
        self.last = (index, data)  # an encoder beside it may take the same 8-bit frame (read only)
        self._writer.submit(self._save, path, data)  # a failed write raises its OutputError here
        self.paths.append(path)

    def _save(self, path: Path, data: np.ndarray) -> None:
        try:
            if self.fmt == "exr":
                save_exr_rgb(path, data)
            elif self.fmt == "bmp":
                from .imageio import pil

                pil().fromarray(data).save(path, format="BMP")
            else:
                save_png(path, data)
        except (OSError, RuntimeError) as err:  # OpenEXR raises RuntimeError
            raise write_error(f"frame {path.name}", err) from None

    def close(self) -> None:
        """Every frame written (or the first failure raised)."""
        try:
            self._writer.finish()
        finally:
            self._stop()

    def abort(self) -> None:
        self._stop()
        self.paths.clear()

    def _stop(self) -> None:
        if self._writer is not None:
            self._writer.stop()  # the frame being written finishes
            self._writer = None


class AnimationSink:
    """One animated GIF or WebP that loops forever (frames kept in memory as 8-bit until close)."""

    def __init__(self, stem: str, fmt: str):
        if fmt not in ("gif", "webp"):
            raise ValueError(f"AnimationSink writes gif or webp, not {fmt}")
        self.fmt = fmt
        self.names = [output_names(stem)[fmt]]
        self.frames: list[np.ndarray] = []

    def open(self, folder, width: int, height: int, loop: LoopSpec) -> None:
        self.path = folder / self.names[0]
        self.fps = loop.fps

    def write(self, index: int, rgb: np.ndarray) -> None:
        self.frames.append(frame_to_uint8(rgb))

    def close(self) -> None:
        from .imageio import pil

        Image = pil()
        images = [Image.fromarray(f) for f in self.frames]
        self.frames = []
        duration = max(20, round(1000.0 / self.fps))  # ms; browsers treat < 20 ms GIF delays as 100 ms
        n = len(images)
        try:
            if self.fmt == "gif":
                # One palette for the whole loop (from frames across it) and no error diffusion: a still
                # pixel gets the same palette entry in every frame instead of a new dither pattern.
                w, h = images[0].size
                picks = sorted({round(i * (n - 1) / 3) for i in range(4)})
                mosaic = Image.new("RGB", (w, h * len(picks)))
                for k, i in enumerate(picks):
                    mosaic.paste(images[i], (0, h * k))
                palette = mosaic.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
                images = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
                images[0].save(self.path, save_all=True, append_images=images[1:], duration=duration, loop=0,
                               optimize=False, disposal=1)
            else:
                # Lossless, one keyframe for the loop: the frames are exactly the renderer's. Lossy frames
                # (quality 80) drift from the keyframe over the loop, and the wrap back to it jumped: on the
                # README's 640x360 preview the wrap step was 1.75x the median step and the still picture
                # moved by 0.60/255 (lossless: 0.81x and 0.008/255, as the PNG frames; 3.6 MB against 0.6).
                images[0].save(self.path, format="WEBP", save_all=True, append_images=images[1:],
                               duration=duration, loop=0, lossless=True, quality=80, method=4,
                               kmin=max(0, n - 1), kmax=n)
        except OSError as err:
            raise write_error(self.names[0], err) from None

    def abort(self) -> None:
        self.frames = []


def file_sinks(stem: str, fmt: str) -> list:
    """The bpy-free sinks for a format (mp4 needs the Blender side's sinks)."""
    if fmt in ("png", "exr"):
        return [FramesSink(stem, fmt)]
    if fmt in ("gif", "webp"):
        return [AnimationSink(stem, fmt)]
    raise ValueError(f"no bpy-free sink for {fmt}")
