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


# An interrupted run exits with 130; rarely (about 1 run in 60 under a Ctrl-C stress loop, cause not found)
# CPython ends the process by SIGINT itself after our cleanup and message, which a shell also shows as 130.
INTERRUPTED = (130, -2)


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


BATCH_FRAMES = 4  # the batch tests' loop length


def make_inputs(folder: Path, n: int, size=(64, 36), bad: tuple[str, ...] = ()) -> list[str]:
    """n small real photos (crops of the CC0 fixtures) plus the named bad files; returns the stems."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    sources = [Image.open(DATA / f).convert("RGB") for f in ("mcway_crop.jpg", "beach_crop.jpg")]
    stems = []
    for i in range(n):
        src = sources[i % 2]
        x = (i * 7) % (src.width - 32)
        crop = src.crop((x, 0, x + 32 + (src.width - 32 - x) // 2, src.height)).resize(size)
        stem = f"photo{i:02d}"
        crop.save(folder / f"{stem}.jpg", quality=90)
        stems.append(stem)
    for name in bad:
        (folder / name).write_bytes(b"\xff\xd8\xff\xe0 broken")
    return stems


def check_good_outputs(out_dir: Path, stems: list[str], n_frames: int = BATCH_FRAMES) -> None:
    """Exactly these items (and a logs/ folder where there is one), each with all its frames decodable, and
    nothing half-written anywhere (the batch's lock files aside)."""
    from PIL import Image

    dirs = sorted(p.name for p in out_dir.iterdir() if p.is_dir() and p.name != "logs")
    assert dirs == sorted(stems), (sorted(set(dirs) ^ set(stems)), [p.name for p in out_dir.iterdir()])
    hidden = [p.name for p in out_dir.iterdir()
              if p.name.startswith(".") and not (p.name.startswith(".stillflow-batch") and p.name.endswith(".lock"))]
    assert hidden == [], hidden
    for stem in stems:
        frames = sorted((out_dir / stem / f"{stem}_frames").iterdir())
        assert [f.name for f in frames] == [f"frame_{i:04d}.png" for i in range(n_frames)]
        for f in frames:
            with Image.open(f) as im:
                im.load()
                assert im.size == (64, 36)
        manifest = json.loads((out_dir / stem / "stillflow.json").read_text())
        assert manifest["outputs"] == [f"{stem}_frames"]
    assert not list(out_dir.rglob("*.partial*"))
