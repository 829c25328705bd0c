"""Euler integration of a time-constant motion field M.

F(0->0) = 0, F(0->t)(x) = F(0->t-1)(x) + M(x + F(0->t-1)(x)), M sampled bilinearly; the backward fields use
-M. Each step is one lookup of M at the displaced positions, so all N fields cost O(N) steps. Particles that
leave the image are dropped (NaN), not clamped onto the border.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np


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
    in ``budget_bytes`` (1 GiB: a 60-frame 1080p loop, 0.95 GiB) they are simply kept, and each step is
    computed once.

    Fields are kept compact (numpy engines): only the pixels where the motion is not zero, since a particle
    that starts where nothing moves stays at rest (F = 0 there at every step). With the network's drift
    settled (core.motion.settle) that is a third of the sample photo: a third of the memory.
    """

    def __init__(self, engine, motion, n: int, budget_bytes: int = 2**30):
        self.engine = engine
        self.motion = motion
        self.n = n
        h, w = motion.shape[:2]
        self.shape = (h, w, 2)
        self.active = None  # flat indices of the pixels that can move, when kept compact
        if isinstance(motion, np.ndarray):
            self.active = np.flatnonzero((motion[..., 0] != 0) | (motion[..., 1] != 0))
        per_field = (h * w if self.active is None else self.active.size) * 2 * 4
        keep_all = n * per_field <= budget_bytes
        self.k = n if keep_all else max(1, math.ceil(math.sqrt(n)))
        self.checkpoints = {}
        self.block: dict = {}
        self.last = None
        self._prime(keep_all)

    # Each pixel's (dx, dy) is moved as one 8-byte item (a complex64 view of the two float32s, bits kept):
    # numpy's take and 1-D assignment of whole items are 5-7x faster than indexing (N, 2) rows (at 1080p,
    # everything moving: 3.4 and 5.4 ms against 25 and 23 ms, a fifth of a mid-loop frame saved).
    def _keep(self, flow):
        if self.active is None:
            return flow
        items = np.ascontiguousarray(flow, np.float32).view(np.complex64).reshape(-1)
        return np.take(items, self.active)

    def _full(self, kept):
        if self.active is None:
            return kept
        items = np.zeros(self.shape[0] * self.shape[1], np.complex64)
        items[self.active] = kept
        return items.view(np.float32).reshape(self.shape)

    def _prime(self, keep_all: bool) -> None:
        flow = self.engine.zeros(self.shape)
        self.checkpoints[0] = self._keep(flow)
        if keep_all:
            self.block[0] = self.checkpoints[0]
        for s in range(1, self.n):
            flow = self.engine.step(self.motion, flow)
            if keep_all:
                self.block[s] = self._keep(flow)
            elif s % self.k == 0:
                self.checkpoints[s] = self._keep(flow)

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
            kept = self.checkpoints[base]
            self.block = {base: kept}
            flow = self._full(kept)
            for j in range(base + 1, min(base + self.k, self.n)):
                flow = self.engine.step(self.motion, flow)
                self.block[j] = self._keep(flow)
            for c in [c for c in self.checkpoints if c > base]:
                del self.checkpoints[c]  # never needed again: later requests ask for fewer steps
        return self._full(self.block[s])
