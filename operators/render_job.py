"""A loop render as steps: `core.render.render_loop` frames written into a hidden partial folder, renamed
to the output folder only when every frame is there. `step()` works for a bounded time and returns True
when done, so the modal operator can run it on a timer and `execute()` can run it to the end.
`cancel()` (or any failure) removes the partial folder: a cancelled render leaves no files.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.imageio import check_writable_dir
from ..core.render import RenderSettings, render_loop
from .outputs import EXTENSIONS, FrameWriter

log = logging.getLogger(__name__)


@dataclass
class RenderJob:
    rgb: np.ndarray
    motion: np.ndarray
    settings: RenderSettings
    out_dir: Path  # final folder, made when the loop is complete
    stem: str
    fmt: str = "PNG"  # PNG, EXR or MP4
    overwrite: bool = False
    done: int = 0
    hole_fractions: list[float] = field(default_factory=list)
    frame_paths: list[Path] = field(default_factory=list)
    _frames = None
    _writer: FrameWriter | None = None
    _partial: Path | None = None
    _started: float = 0.0

    @property
    def total(self) -> int:
        return self.settings.frames

    def start(self) -> None:
        if self.out_dir.exists() and any(self.out_dir.iterdir()) and not self.overwrite:
            raise InputError(f"{self.out_dir} already holds files: enable Overwrite or choose another folder")
        check_writable_dir(self.out_dir.parent)
        self._partial = self.out_dir.parent / f".{self.out_dir.name}.partial-{os.getpid()}"
        shutil.rmtree(self._partial, ignore_errors=True)
        self._partial.mkdir(parents=True)
        h, w = self.rgb.shape[:2]
        self._writer = FrameWriter(w, h, self.fmt)
        self._frames = render_loop(self.rgb, self.motion, self.settings)
        self._started = time.perf_counter()

    def step(self, budget_s: float = 0.1) -> bool:
        """Render and write frames for about `budget_s` seconds (at least one); True when all are written."""
        until = time.perf_counter() + budget_s
        ext = EXTENSIONS[self.fmt]
        try:
            while self.done < self.total:
                frame = next(self._frames)
                path = self._partial / f"{self.stem}_{frame.index:04d}{ext}"
                self._writer.write(path, frame.rgb)
                self.hole_fractions.append(frame.hole_fraction)
                self.done += 1
                if time.perf_counter() >= until:
                    break
        except BaseException:
            self.cancel()
            raise
        return self.done >= self.total

    def seconds_left(self) -> float:
        if not self.done:
            return float("nan")
        elapsed = time.perf_counter() - self._started
        return elapsed / self.done * (self.total - self.done)

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def commit(self) -> list[Path]:
        """Move the complete frames into `out_dir` (replacing it only when overwrite is set)."""
        self._close()
        if self.out_dir.is_dir() and not any(self.out_dir.iterdir()):
            self.out_dir.rmdir()  # an empty folder holds nothing to overwrite
        if self.out_dir.exists():
            if not self.overwrite:
                self.cancel()
                raise InputError(f"{self.out_dir} appeared while rendering: choose another folder")
            shutil.rmtree(self.out_dir)
        os.replace(self._partial, self.out_dir)
        self._partial = None
        self.frame_paths = sorted(self.out_dir.iterdir())
        return self.frame_paths

    def cancel(self) -> None:
        self._close()
        if self._partial is not None:
            shutil.rmtree(self._partial, ignore_errors=True)
            self._partial = None

    def _close(self) -> None:
        if self._frames is not None:
            self._frames.close()
            self._frames = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
