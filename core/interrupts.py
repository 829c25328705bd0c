"""Ctrl-C and SIGTERM as KeyboardInterrupt (so cleanup runs), and blocks of code that hold them: a signal
that arrives inside is raised when the block ends.

Held: the compiled kernels (their first call compiles or loads them, and a KeyboardInterrupt raised in
llvmlite's ctypes callbacks there is printed and dropped: the Ctrl-C was lost and a batch ran on), bpy's
start-up (a Ctrl-C inside its C code crashed the process), and the renames that put finished outputs in
place (an interrupt lands before or after, never between two renames).

Holding is a counter the handler reads, so it costs next to nothing per kernel call. It takes effect
where `as_keyboard_interrupt` installed the handler (the command line and its workers); elsewhere Python's
own handling runs unchanged. A process signal mask would not do: the kernel hands a signal to any thread
that has it unblocked (numba's, tqdm's) and Python raises KeyboardInterrupt in the main thread wherever it is.
"""

from __future__ import annotations

import contextlib
import signal
import threading

_depth = 0
_pending: list[int] = []


def _handler(signum, frame):
    if _depth:
        _pending.append(signum)
        return
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def as_keyboard_interrupt():
    """SIGTERM, and SIGINT where Python's default handler has it (not where a host such as Blender set its
    own), raise KeyboardInterrupt unless held; the old handlers are back afterwards."""
    old = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM"):
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            current = signal.getsignal(sig)
            if name == "SIGINT" and current is not signal.default_int_handler:
                continue
            try:
                old[sig] = signal.signal(sig, _handler)
            except (ValueError, OSError):
                pass
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def held():
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _pending:
            signum = _pending[0]
            _pending.clear()
            raise KeyboardInterrupt(f"signal {signum}")


def call_held(fn, *args):
    """``fn(*args)`` with Ctrl-C and SIGTERM held."""
    with held():
        return fn(*args)


def caused_by_interrupt(err: BaseException) -> bool:
    """True when a KeyboardInterrupt is somewhere in `err`'s cause/context chain (numba wraps a Ctrl-C
    that lands in its C code in SystemError)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False
