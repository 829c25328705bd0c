"""Ctrl-C and SIGTERM on the command line: both become KeyboardInterrupt (so cleanup runs), and a few
steps (the renames into place, importing bpy) run with them held, so an interrupt lands before or after,
never inside."""

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
    """Hold SIGINT/SIGTERM for the duration of the block; one that arrives is handled when it ends.

    Python-level handlers that only take note (the main thread; elsewhere the block runs as it is): a
    process mask would not do, since the kernel hands a signal to any thread that has it unblocked (numba's,
    tqdm's) and Python then raises KeyboardInterrupt in the main thread wherever it is, an import of bpy
    included (where it crashed the process)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum, frame):
        caught.append(signum)

    sigs = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    old = {}
    try:
        for sig in sigs:
            old[sig] = signal.signal(sig, hold)
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if caught:
            handler = old.get(caught[0])
            if callable(handler):
                handler(caught[0], None)  # default_int_handler / sigterm_as_interrupt's: KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                raise KeyboardInterrupt(f"signal {caught[0]}")


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
