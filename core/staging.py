"""The one staging mechanism every writer uses: build outputs in a hidden folder, rename them into place.

A `Stage` is a folder `.stillflow-tmp-<stem>-p<pid>-<random>` made beside the final outputs (the same file
system, so the renames are atomic) holding a marker file that says Stillflow made it, and which process, on
which host, for which owner (a batch shard or a Ray run tags its stages, to clear its own leftovers on shared
storage). Writers put their files inside it; `commit()` renames each onto its final name (an existing
folder there is moved into the stage first and removed with it), `abort()` removes the stage. Only stage folders that carry the marker are
ever removed, never anything a user made (`clean_stale`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError, OutputError, write_error
from .interrupts import held

PREFIX = ".stillflow-tmp-"
MARKER = ".stillflow-stage"
_HOST = socket.gethostname()


class Stage:
    """A staging folder inside ``parent``; use as a context manager (an exception aborts it)."""

    def __init__(self, parent: str | os.PathLike, stem: str, owner: str = ""):
        self.parent = Path(parent)
        self.path = self.parent / f"{PREFIX}{_safe(stem)}-p{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
            self.path.mkdir()
            (self.path / MARKER).write_text(f"{os.getpid()}\n{_HOST}\n{owner}\n", encoding="utf-8")
        except OSError as err:
            shutil.rmtree(self.path, ignore_errors=True)
            if err.errno == errno.ENOSPC:  # (an earlier output of the same run may have filled it)
                raise write_error(f"a staging folder in {self.parent}", err) from None
            raise OutputError(f"cannot write to {self.parent} ({err.strerror or err}): choose another folder") from None
        self._open = True

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.abort()

    def commit(self, moves: dict[str, Path], overwrite: bool = False) -> list[Path]:
        """Rename ``stage/<name>`` onto each final path (in order); returns the final paths.

        An existing final path is refused unless ``overwrite``; with it, whatever is there (a file, a folder,
        a symbolic link: the link itself, never what it points to) is moved into the stage first and
        removed with it."""
        finals = [Path(p) for p in moves.values()]
        if not overwrite:
            refuse_existing(finals)
        for name, final in moves.items():
            src = self.path / name
            if final.exists() or final.is_symlink():
                os.replace(final, self.path / f"old-{uuid.uuid4().hex[:8]}")
            os.replace(src, final)
        return finals

    def abort(self) -> None:
        """Remove the stage (and whatever is inside it); safe to call more than once."""
        if self._open:
            self._open = False
            remove_stage(self.path)


def _safe(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60] or "x"


def refuse_existing(paths) -> None:
    for p in paths:
        p = Path(p)
        if p.exists() or p.is_symlink():
            raise InputError(f"{p} already exists: pass --overwrite to replace it (nothing was changed)")


def is_stage(path: Path) -> bool:
    """True for a folder Stillflow staged (name and marker both), never for a link."""
    return (path.name.startswith(PREFIX) and path.is_dir() and not path.is_symlink()
            and (path / MARKER).is_file())


def remove_stage(path: Path) -> None:
    """Remove a stage, its marker last and with Ctrl-C and SIGTERM held: a second signal (the batch's
    SIGTERM to a worker already cleaning up after the terminal's Ctrl-C) cut the removal short and left a
    stage without its marker, which nothing would ever remove; a removal killed outright still leaves one
    that a later run recognises and clears."""
    if not is_stage(path):
        return
    with held():
        for child in path.iterdir():
            if child.name == MARKER:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    child.unlink()
        with contextlib.suppress(OSError):
            (path / MARKER).unlink()
        with contextlib.suppress(OSError):
            path.rmdir()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _marker(path: Path) -> tuple[int, str, str]:
    """(pid, host, owner) of a stage; a marker from before hosts and owners were written reads as this
    host with no owner."""
    try:
        lines = (path / MARKER).read_text(encoding="utf-8").splitlines()
        pid = int(lines[0].strip() or 0) if lines else 0
    except (OSError, ValueError):
        return 0, _HOST, ""
    host = lines[1].strip() if len(lines) > 1 and lines[1].strip() else _HOST
    owner = lines[2].strip() if len(lines) > 2 else ""
    return pid, host, owner


def clean_stale(folder: str | os.PathLike, only_dead: bool = True, owner: str | None = None) -> int:
    """Remove stage folders directly inside ``folder`` left by runs that died. Returns how many.

    - ``owner`` given: every stage tagged with that owner but this process's own (one process at a time
      runs for an owner, a batch shard say, so the others are leftovers, from whichever host);
    - else ``only_dead``: stages of this host whose process is gone (another host's are left alone: its
      process cannot be asked);
    - else every stage but this process's own (the caller holds the folder's lock).
    An empty folder named like a stage without its marker goes too (`_clear_unmarked`)."""
    folder = Path(folder)
    removed = 0
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0
    for p in entries:
        if not is_stage(p):
            removed += _clear_unmarked(p, only_dead or owner is not None)
            continue
        pid, host, tag = _marker(p)
        mine = pid == os.getpid() and host == _HOST
        if mine:
            continue
        if owner is not None:
            if tag != owner:
                continue
        elif only_dead and (host != _HOST or (pid and _alive(pid))):
            continue
        remove_stage(p)
        removed += 1
    return removed


_NAMED_PID = re.compile(r"-p(\d+)-[0-9a-f]{8}$")


def _clear_unmarked(path: Path, only_dead: bool) -> int:
    """Remove ``path`` when it is an empty folder named like a stage but without its marker: a run killed
    between a stage's mkdir and its marker (or a removal killed between the marker and the rmdir; under
    load a killed batch left one in about 1 run in 10). Only an empty folder with a stage's whole name
    (``rmdir``: nothing a user put there can go), never one of this process, and with ``only_dead`` only
    when the process named in it (the pid in the name) is gone from this host. 1 when removed, else 0."""
    if not path.name.startswith(PREFIX) or path.is_symlink() or not path.is_dir():
        return 0
    named = _NAMED_PID.search(path.name)  # the whole name a Stage gives: -p<pid>-<8 hex digits>
    if named is None:
        return 0
    pid = int(named.group(1))
    if pid == os.getpid() or (only_dead and _alive(pid)):  # never one this process is making
        return 0
    try:
        path.rmdir()
    except OSError:  # not empty (or already gone): left as it is
        return 0
    return 1


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a path inside a stage beside ``path``; it is renamed onto ``path`` only if the block completes."""
    path = Path(path)
    with Stage(path.parent if str(path.parent) else Path("."), path.stem) as stage:
        tmp = stage / path.name
        yield tmp
        if path.is_dir() and not path.is_symlink():
            raise InputError(f"{path} is a folder: choose a file name")
        os.replace(tmp, path)
