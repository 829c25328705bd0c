"""Ctrl-C and SIGTERM on the command line: both become KeyboardInterrupt (so cleanup runs), and a few
renames run with them held, so an interrupt lands before or after, never between."""

from __future__ import annotations

import contextlib
import signal


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Turn SIGTERM into KeyboardInterrupt while the command runs; restore the old handler afterwards."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except (ValueError, AttributeError):  # not the main thread, or no SIGTERM on this platform
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGINT/SIGTERM for the duration of the block (POSIX); they are delivered when it ends."""
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


def deferred(fn):
    """Run ``fn()`` with signals held (the pipeline's commit hook)."""
    with signals_deferred():
        return fn()


def caused_by_interrupt(err: BaseException) -> bool:
    """True when a KeyboardInterrupt is somewhere in `err`'s cause/context chain (numba wraps a Ctrl-C that
    lands in its C code in SystemError)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False
