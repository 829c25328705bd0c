"""Helpers shared by the command-line tests (imported by file path: no package needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parents[1]

# A quick loop everywhere unless a test needs more.
FAST = ["--frames", "4", "--format", "png", "--quiet"]


def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "stillflow.operators.cli", *map(str, args)]


def sigint_default() -> None:
    """Popen preexec_fn: a child started from a background shell job inherits SIGINT ignored, and Python
    then never raises KeyboardInterrupt; the tests that send SIGINT restore the default first."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args, timeout: float = 120, cwd=None) -> subprocess.CompletedProcess:
    """Run `stillflow ARGS` in a fresh Python (the installed package, whatever the checkout is called)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def write_hints(path: Path, arrows, size=None, **extra) -> Path:
    data = {"stillflow_hints": 1, "arrows": [{"start": a[0], "end": a[1], "frames": a[2]} for a in arrows]}
    if size is not None:
        data["image_size"] = list(size)
    data.update(extra)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def listing(folder: Path) -> list[str]:
    """Every path under folder (hidden ones included), relative, sorted."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def one_line_error(stderr: str) -> str:
    """The error line: exactly one `stillflow: error:` line and no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1, stderr
    return lines[0]
