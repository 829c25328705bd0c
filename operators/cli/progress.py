"""The command line's progress bar: tqdm when available (stderr: frames done, rate, time left), else a line
every few seconds."""

from __future__ import annotations

import sys
import time


class Bar:
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
