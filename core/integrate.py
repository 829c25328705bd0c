"""Euler integration of a time-constant motion field M.

F(0->0) = 0, F(0->t)(x) = F(0->t-1)(x) + M(x + F(0->t-1)(x)), M sampled bilinearly; the backward fields use
-M. Each step is one lookup of M at the displaced positions, so all N fields cost O(N) steps. Particles that
leave the image are dropped (NaN), not clamped onto the border.
"""

from __future__ import annotations

import math
from collections.abc import Iterator


def forward_fields(engine, motion, n: int) -> Iterator:
    """Yield F(0->t) for t = 1 .. n-1 (engine arrays), one step each."""
    flow = engine.zeros(tuple(motion.shape[:2]) + (2,))
    for _ in range(1, n):
        flow = engine.step(motion, flow)
        yield flow


class BackwardFields:
    """F after s steps of ``motion`` for s requested in *descending* order (n-1, n-2, ..., 1).

    A symmetric loop needs the backward field of N - t steps at frame t, so frames in order ask for ever
    fewer steps. Keeping all N fields costs N full-size buffers (4 GB for a 60-frame 4K loop); instead we
    keep a checkpoint every K = ceil(sqrt(N)) steps and recompute one block of K fields at a time from its
    checkpoint: about 2 sqrt(N) buffers in memory, each step computed at most twice. When all N fields fit
    in ``budget_bytes`` (a 60-frame 1080p loop: 1 GB) they are simply kept, and each step is computed once.
    """

    def __init__(self, engine, motion, n: int, budget_bytes: int = 1200 * 2**20):
        self.engine = engine
        self.motion = motion
        self.n = n
        h, w = motion.shape[:2]
        keep_all = n * h * w * 2 * 4 <= budget_bytes
        self.k = n if keep_all else max(1, math.ceil(math.sqrt(n)))
        self.checkpoints = {}
        self.block: dict = {}
        self.last = None
        self._prime(keep_all)

    def _prime(self, keep_all: bool) -> None:
        flow = self.engine.zeros(tuple(self.motion.shape[:2]) + (2,))
        self.checkpoints[0] = flow
        if keep_all:
            self.block[0] = flow
        for s in range(1, self.n):
            flow = self.engine.step(self.motion, flow)
            if keep_all:
                self.block[s] = flow
            elif s % self.k == 0:
                self.checkpoints[s] = flow

    def get(self, s: int):
        if not 0 < s < self.n + 1:
            raise ValueError(f"backward step count {s} out of range 1..{self.n}")
        if self.last is not None and s >= self.last:
            raise ValueError("BackwardFields.get must be called with strictly descending step counts")
        self.last = s
        self.block.pop(s + 1, None)  # never asked for again
        if s == self.n:  # only frame 0 asks for N steps, and frame 0 gives the backward stream no weight
            raise ValueError("frame 0 does not use the backward stream")
        if s not in self.block:
            base = (s // self.k) * self.k
            flow = self.checkpoints[base]
            self.block = {base: flow}
            for j in range(base + 1, min(base + self.k, self.n)):
                flow = self.engine.step(self.motion, flow)
                self.block[j] = flow
            for c in [c for c in self.checkpoints if c > base]:
                del self.checkpoints[c]  # never needed again: later requests ask for fewer steps
        return self.block[s]
