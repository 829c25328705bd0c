"""The `stillflow` command line (also `blender --command stillflow ...`): animate, predict, batch.

Exit codes: 0 all done; 1 some batch items failed; 2 usage error or bad input (one line on stderr, no
traceback); 130 interrupted (Ctrl-C or SIGTERM; no partial files are left).

Imports nothing from Blender: MP4 and .blend writing (operators/encode.py) import bpy lazily, from the `bpy`
module (pip) or from the running Blender. All image work goes through `core/`; the loop settings are
`core.render.RenderSettings`, the same dataclass the Blender operators fill.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import cli_jobs as jobs

log = logging.getLogger("stillflow")

EXIT_OK = 0
EXIT_ITEMS_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

FORMATS = ("mp4", "png", "exr", "gif", "webp")
MOTION_SOURCES = ("auto", "hints", "model")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("stillflow")
    except Exception:  # running from Blender's extension folder: no distribution metadata
        return "0.1.0"


# --------------------------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so `blender --command` gets a return code."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message}")

    def exit(self, status=0, message=None):
        if message:
            (sys.stderr if status else sys.stdout).write(message)
        raise _ParserExit(status)


class _UsageError(Exception):
    pass


class _ParserExit(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or positive, got {text}")
    return value


def _motion(text: str) -> str:
    if text in MOTION_SOURCES or Path(text).suffix.lower() in (".exr", ".npy"):
        return text
    raise argparse.ArgumentTypeError(
        f"expected auto, hints, model or a field file (.exr or .npy), got {text!r}"
    )


def build_parser(prog: str = "stillflow") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Turn one still photo into a seamless looping video of fluid motion.",
        epilog="Exit codes: 0 done, 1 some batch items failed, 2 usage error or bad input, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"stillflow {_version()}")

    common = _Parser(add_help=False)
    g = common.add_argument_group("motion")
    g.add_argument("--hints", type=Path, metavar="FILE",
                   help="hints JSON (Stillflow or LabelMe): arrows, motion mask, freeze points. Default: "
                        "IMAGE's sidecar <stem>.hints.json when it exists")
    g.add_argument("--mask", type=Path, metavar="FILE",
                   help="motion mask image (white moves, black stays still), resized to the photo")
    g.add_argument("--motion", type=_motion, default="auto", metavar="auto|hints|model|FIELD.exr|FIELD.npy",
                   help="where motion comes from: auto = the model guided by the arrows (the arrows alone "
                        "when the model cannot run); hints = the arrows alone; model = the model (an error "
                        "when it cannot run); or a field written by `stillflow predict` (default: auto)")
    g.add_argument("--max-size", type=_positive_int, metavar="PX",
                   help="downscale photos whose longer side is larger than PX pixels")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the model and the splatting run (default: auto)")
    o = common.add_argument_group("output")
    o.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar, only warnings and errors")
    o.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")

    loop = _Parser(add_help=False)
    r = loop.add_argument_group("loop")
    r.add_argument("--frames", type=_positive_int, default=60, metavar="N", help="loop length (default: 60)")
    r.add_argument("--fps", type=_positive_float, default=30.0, metavar="F", help="frame rate (default: 30)")
    r.add_argument("--speed", type=_speed, default=1.0, metavar="S", help="motion speed multiplier (default: 1)")
    r.add_argument("--format", choices=FORMATS, default="mp4", dest="fmt",
                   help="mp4: <stem>_loop.mp4 + <stem>.blend (needs bpy); png/exr: a folder of frames; "
                        "gif/webp: an animated preview (default: mp4)")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    a = sub.add_parser("animate", parents=[common, loop], help="animate one photo",
                       description="Animate one photo into a seamless loop.")
    a.add_argument("image", type=Path, metavar="IMAGE")
    a.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                   help="output folder (default: the current folder)")

    p = sub.add_parser("predict", parents=[common], help="write the motion field of one photo",
                       description="Write the motion field alone (two float channels, pixels per frame; "
                                   "row 0 top, +dy down) to edit it and animate with --motion FIELD.")
    p.add_argument("image", type=Path, metavar="IMAGE")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FIELD.exr|FIELD.npy")

    b = sub.add_parser("batch", parents=[common, loop], help="animate every photo in a folder (resumable)",
                       description="Animate every photo in IN_DIR into OUT_DIR/<stem>/. Finished items are "
                                   "recorded in OUT_DIR/stillflow_journal.jsonl; run the same command again "
                                   "after a crash or kill to do only what is left.")
    b.add_argument("in_dir", type=Path, metavar="IN_DIR")
    b.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    b.add_argument("--jobs", "-j", type=_positive_int, default=1, metavar="K",
                   help="photos processed in parallel, one process each (default: 1)")
    b.add_argument("--retry-failed", action="store_true",
                   help="also redo items the journal records as failed (default: skip them)")
    return parser


# -------------------------------------------------------------------------------------------- options


@dataclass
class Options:
    """What one item needs besides its paths: plain data, so it can be sent to batch worker processes."""

    hints: Path | None = None
    mask: Path | None = None
    motion: str = "auto"
    max_size: int | None = None
    device: str = "auto"
    overwrite: bool = False
    quiet: bool = False
    fmt: str = "mp4"
    frames: int = 60
    fps: float = 30.0
    speed: float = 1.0
    sidecar_hints: bool = True
    extra: dict = field(default_factory=dict)

    def render_settings(self):
        from ..core.render import RenderSettings

        return RenderSettings(frames=self.frames, fps=self.fps, speed=self.speed, device=self.device)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        return cls(
            hints=args.hints, mask=args.mask, motion=args.motion, max_size=args.max_size, device=args.device,
            overwrite=args.overwrite, quiet=args.quiet, fmt=getattr(args, "fmt", "mp4"),
            frames=getattr(args, "frames", 60), fps=getattr(args, "fps", 30.0), speed=getattr(args, "speed", 1.0),
        )


# ------------------------------------------------------------------------------------------ entry points


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO if verbose < 2 else logging.DEBUG
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("stillflow: %(message)s" if verbose == 0 else
                                           "stillflow: %(levelname)s %(name)s: %(message)s"))
    handler._stillflow = True  # type: ignore[attr-defined]
    for h in list(root.handlers):
        if getattr(h, "_stillflow", False):
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    # Quiet third-party chatter unless asked for.
    for noisy in ("numba", "PIL", "onnxruntime"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose < 3 else logging.DEBUG)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Turn SIGTERM into KeyboardInterrupt (so cleanup runs) while the command runs; restore afterwards."""
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


def main(argv: list[str] | None = None, prog: str = "stillflow") -> int:
    """The `stillflow` command. Returns the exit code (see the module docstring)."""
    from ..core.errors import StillflowError

    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except _ParserExit as done:
        return done.status
    except _UsageError as err:
        parser.print_usage(sys.stderr)
        print(err, file=sys.stderr)
        return EXIT_USAGE
    _setup_logging(args.verbose, args.quiet)
    try:
        with sigterm_as_interrupt():
            if args.command == "animate":
                return cmd_animate(args)
            if args.command == "predict":
                return cmd_predict(args)
            return cmd_batch(args)
    except StillflowError as err:
        print(f"stillflow: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("stillflow: interrupted; partial outputs removed", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if caused_by_interrupt(err):  # e.g. numba wraps a Ctrl-C that lands in its C code in SystemError
            print("stillflow: interrupted; partial outputs removed", file=sys.stderr)
            return EXIT_INTERRUPTED
        raise


def caused_by_interrupt(err: BaseException) -> bool:
    """True when a KeyboardInterrupt is somewhere in `err`'s cause/context chain."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def blender_command(argv: list[str]) -> int:
    """`blender --command stillflow ...`, registered with bpy.utils.register_cli_command."""
    return main(list(argv), prog="blender --command stillflow")


# ---------------------------------------------------------------------------------------------- commands


def cmd_animate(args: argparse.Namespace) -> int:
    opts = Options.from_args(args)
    result = jobs.animate_file(args.image, args.out, opts, layout="flat", progress=not args.quiet)
    for path in result.outputs:
        print(path)
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    opts = Options.from_args(args)
    path = jobs.predict_file(args.image, args.output, opts)
    print(path)
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    from . import batch

    if args.verbose == 0:
        for name in batch.QUIET_IN_BATCH:
            logging.getLogger(name).setLevel(logging.WARNING)
    opts = Options.from_args(args)
    report = batch.run_batch(args.in_dir, args.out_dir, opts, n_jobs=args.jobs,
                             retry_failed=args.retry_failed, progress=not args.quiet)
    return EXIT_OK if report.ok else EXIT_ITEMS_FAILED


__all__ = ["main", "blender_command", "build_parser", "Options", "EXIT_OK", "EXIT_ITEMS_FAILED",
           "EXIT_USAGE", "EXIT_INTERRUPTED"]


if __name__ == "__main__":
    sys.exit(main())
