"""The sinks that need bpy: an H.264 MP4 (through x264 where PyAV is there, else Blender's own FFmpeg) and
the command line's .blend.

They follow `core.sinks.Sink` (open / write / close / abort inside a `core.staging.Stage`) and take plain
data only (paths, arrays, numbers), never the add-on's registered classes, so they run in the `bpy` module
of the command line as well as inside Blender. bpy is imported when they close, not before (and
not at all for an MP4 that x264 encodes).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.job import output_names
from ..core.render import frame_to_uint8
from ..core.sinks import FramesSink
from ..core.video import X264Writer, x264


class Mp4Sink:
    """`<stem>_loop.mp4`: H.264 of 8-bit frames. Where PyAV has libx264 (`core.video`), each frame goes to
    x264 as it is rendered, encoded on a thread of its own alongside the next one; else Blender's own
    FFmpeg encodes them at close, from hidden frames of the sink's own (BMP: uncompressed, quick to write
    and for Blender to read) or from the PNG frames of a `FramesSink` beside it. ``lossless`` (H.264
    lossless) always goes through Blender's FFmpeg."""

    def __init__(self, stem: str, frames_from: FramesSink | None = None, lossless: bool = False):
        self.names = [output_names(stem)["mp4"]]
        self.stem = stem
        self.lossless = lossless
        self.frames_from = frames_from
        self._own: FramesSink | None = None
        self._writer: X264Writer | None = None

    def open(self, folder, width: int, height: int, loop) -> None:
        self.path = folder / self.names[0]
        self.fps = loop.fps
        av = None if self.lossless else x264()
        if av is not None:
            self._writer = X264Writer(av, self.path, width, height, loop.fps, gop=loop.frames)
        elif self.frames_from is None:
            self._own = FramesSink(self.stem, "bmp", even=True, hidden=True)
            self._own.open(folder, width, height, loop)

    def write(self, index: int, rgb: np.ndarray) -> None:
        if self._writer is not None:
            shared = self.frames_from.last if self.frames_from is not None else None
            if shared is not None and shared[0] == index and shared[1].dtype == np.uint8:
                frame = shared[1]  # the PNG sink's 8-bit frame (written before this one), not made twice
            else:
                frame = frame_to_uint8(rgb)
            self._writer.write(frame, copy=False)  # read only from here on, by both threads
        elif self._own is not None:
            self._own.write(index, rgb)

    def close(self) -> None:
        from .encode import check_mp4, write_mp4

        if self._writer is not None:
            self._writer.close()
            check_mp4(self.path, self.names[0])
            return
        if self._own is not None:
            self._own.close()  # its last frames written
        frames = (self._own or self.frames_from).paths
        write_mp4(frames, self.path, self.fps, lossless=self.lossless)
        if self._own is not None:
            shutil.rmtree(self._own.folder, ignore_errors=True)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
        if self._own is not None:
            self._own.abort()


class BlendSink:
    """`<stem>.blend` (command line): the photo, the motion field as a packed float image, a sequencer strip
    of the movie written beside it, frame range and fps. Put it after an `Mp4Sink` in the sink list."""

    def __init__(self, stem: str, photo_path: str | Path, field: Callable[[], np.ndarray]):
        self.names = [output_names(stem)["blend"]]
        self.movie_name = output_names(stem)["mp4"]
        self.photo_path = Path(photo_path)
        self.field = field  # called at close: the pipeline knows the field only after its motion step

    def open(self, folder, width: int, height: int, loop) -> None:
        self.folder = folder
        self.fps = loop.fps

    def write(self, index: int, rgb: np.ndarray) -> None:
        pass

    def close(self) -> None:
        from .encode import write_blend

        write_blend(self.folder / self.names[0], self.photo_path, self.field(), self.folder / self.movie_name,
                    self.fps)

    def abort(self) -> None:
        pass
