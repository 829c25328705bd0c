"""The `stillflow` command line (also `blender --command stillflow ...`): animate, predict, batch.

Exit codes: 0 all done; 1 some batch items failed; 2 usage error or bad input (one line on stderr, no
traceback); 130 interrupted (Ctrl-C or SIGTERM; no partial files are left).

Imports nothing from Blender: the MP4 and .blend sinks (operators/bpy_sinks.py) import bpy when they
run, from the `bpy` module (pip) or from the running Blender.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ...core.errors import StillflowError
from . import batch, item
from .codes import EXIT_INTERRUPTED, EXIT_ITEMS_FAILED, EXIT_OK, EXIT_USAGE
from .parser import ParserExit, UsageError, build_parser, job_from_args
from .signals import caused_by_interrupt, sigterm_as_interrupt

log = logging.getLogger("stillflow")



def _version() -> str:
    try:
        from importlib.metadata import version

        return version("stillflow")
    except Exception:  # running from Blender's extension folder: no distribution metadata
        return "0.1.0"


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


def main(argv: list[str] | None = None, prog: str = "stillflow") -> int:
    """The `stillflow` command. Returns the exit code (see the module docstring)."""
    parser = build_parser(prog, _version())
    try:
        args = parser.parse_args(argv)
    except ParserExit as done:
        return done.status
    except UsageError as err:
        parser.print_usage(sys.stderr)
        print(err, file=sys.stderr)
        return EXIT_USAGE
    _setup_logging(args.verbose, args.quiet)
    try:
        with sigterm_as_interrupt():
            job = job_from_args(args)
            if args.command == "animate":
                return cmd_animate(args, job)
            if args.command == "predict":
                return cmd_predict(args, job)
            return cmd_batch(args, job)
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


def blender_command(argv: list[str]) -> int:
    """`blender --command stillflow ...`, registered with bpy.utils.register_cli_command."""
    return main(list(argv), prog="blender --command stillflow")


def cmd_animate(args: argparse.Namespace, job) -> int:
    result = item.animate_file(args.image, args.out, job, progress=not args.quiet)
    for path in result.outputs:
        print(path)
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, job) -> int:
    print(item.predict_file(args.image, args.output, job))
    return EXIT_OK


def cmd_batch(args: argparse.Namespace, job) -> int:
    if args.verbose == 0:
        for name in batch.QUIET_IN_BATCH:
            logging.getLogger(name).setLevel(logging.WARNING)
    report = batch.run_batch(args.in_dir, args.out_dir, job, n_jobs=args.jobs,
                             retry_failed=args.retry_failed, progress=not args.quiet)
    return EXIT_OK if report.ok else EXIT_ITEMS_FAILED
