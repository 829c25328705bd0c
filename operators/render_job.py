"""A loop render in Blender as steps over the one pipeline (`core.pipeline.Pipeline`).

`step()` advances the pipeline for a bounded time and returns True when the outputs are in place, so the
modal operator can run it on a timer and `execute()` can run it to the end. `cancel()` (or any failure)
closes the pipeline's generator, which removes its staging folder: a cancelled render leaves no files.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..core.pipeline import Pipeline
from ..core.render import loop_warnings


class RenderJob:
    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.done = 0
        self._steps = None
        self._started = 0.0
        self._finished = False

    @property
    def total(self) -> int:
        return self.pipeline.job.loop.frames

    @property
    def hole_fractions(self) -> list[float]:
        return self.pipeline.hole_fractions

    def warnings(self) -> list[str]:
        field = self.pipeline.inputs.field
        return [] if field is None else loop_warnings(field, self.pipeline.job.loop)

    def start(self) -> None:
        self.pipeline.check_outputs()
        self._steps = self.pipeline.steps()
        self._started = time.perf_counter()

    def step(self, budget_s: float = 0.1) -> bool:
        """Work for about `budget_s` seconds (at least one frame); True when every output is in place."""
        until = time.perf_counter() + budget_s
        try:
            for step in self._steps:
                if step.stage == "frame":
                    self.done = step.done
                    if time.perf_counter() >= until:
                        return False
                elif step.stage == "done":
                    self._finished = True
                    self._steps = None
                    return True
        except BaseException:
            self.cancel()
            raise
        return self._finished

    def seconds_left(self) -> float:
        if not self.done:
            return float("nan")
        return self.elapsed() / self.done * (self.total - self.done)

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    @property
    def outputs(self) -> list[Path]:
        return self.pipeline.outputs

    def frame_paths(self) -> list[Path]:
        """The frames of the committed loop (the frames folder), in order."""
        folder = self.outputs[0]
        return sorted(p for p in folder.iterdir() if p.is_file())

    def cancel(self) -> None:
        if self._steps is not None:
            self._steps.close()  # GeneratorExit inside the pipeline: the stage is removed
            self._steps = None
