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

from ...core.errors import InputError, StillflowError
from ...core.interrupts import as_keyboard_interrupt, caused_by_interrupt
from . import batch, item, journal
from .codes import EXIT_INTERRUPTED, EXIT_ITEMS_FAILED, EXIT_OK, EXIT_USAGE
from .parser import ParserExit, UsageError, build_parser, job_from_args

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
    if args.verbose == 0:  # numpy's RuntimeWarning lines would break the one-line promise; -v shows them
        import warnings

        warnings.simplefilter("ignore")
    try:
        with as_keyboard_interrupt():
            if args.command == "inspect":
                return cmd_inspect(args)
            job = job_from_args(args)
            if args.command == "animate":
                return cmd_animate(args, job)
            if args.command == "predict":
                return cmd_predict(args, job)
            if args.command == "flowmap":
                return cmd_flowmap(args, job)
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
    for path in item.predict_file(args.image, args.output, job, write_hints=args.write_hints):
        print(path)
    return EXIT_OK


def cmd_flowmap(args: argparse.Namespace, job) -> int:
    for path in item.flowmap_file(args.image, args.output, job, args.y):
        print(path)
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the loop's figures (or one JSON object) and write its contact sheet."""
    import json

    from ...core import imageio, inspect, staging
    from ...core.errors import InputError

    reader, n = inspect.loop_reader(args.loop)
    first = next(reader())
    h, w = first.shape[:2]
    mask = None
    if args.mask is not None:
        if args.mask.suffix.lower() == ".json":
            from ...core.hints import load_hints, mask_from_hints

            mask = mask_from_hints(load_hints(args.mask).for_size(w, h), (h, w))
            if mask is None:
                raise InputError(f"{args.mask.name} has no motion polygons: pass a mask image instead")
        else:
            mask = imageio.load_mask(args.mask, (h, w))
        mask = mask > 0.5
    photo = imageio.load_image(args.photo).rgb if args.photo is not None else None
    sheet_path = args.output or args.loop.with_name(args.loop.name.rstrip("/") + "_inspect.png")
    if not args.overwrite:
        staging.refuse_existing([sheet_path])
    result, mask, how, chosen = inspect.inspect_loop(reader, mask, photo, keep=inspect.sheet_picks(n))
    sheet = inspect.contact_sheet(chosen, n, mask, result)
    with staging.atomic_file(sheet_path) as tmp:
        imageio.save_png(tmp, sheet)
    summary = {k: v for k, v in result.items() if not isinstance(v, list)}
    summary.update(frames=n, size=[w, h], mask=how, contact_sheet=str(sheet_path))
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        rows = [
            ("frames", f"{n} at {w}x{h}; moving region: {how} ({100 * result['moving_fraction']:.1f}% of the picture)"),
            ("sharpness", f"worst frame {result['sharpness_worst']:.2f} of the "
                          f"{'photo' if photo is not None else 'first frame'}'s, max/min over the loop "
                          f"{result['sharpness_spread']:.2f}"),
            ("double image", f"worst frame {result['double_image']:.3f}, mean {result['double_image_mean']:.3f} "
                             "(0 clean, 0.5 two even copies)"),
            ("seam", f"wrap step / median step {result['seam_ratio']:.2f} (1 = invisible)"),
            ("still region", f"largest step {result['still_step_max']:.2f}/255 (re-graining shows here)"),
            ("moving region", f"largest step / median {result['moving_step_ratio']:.2f}"),
            ("speckle", f"{result['speckle']:.2f} median tiles; {result['speckle_rel']:.2f} of the most "
                        "detailed tile near it (1: twice the detail there ever was)"),
            ("contact sheet", str(sheet_path)),
        ]
        for name, text in rows:
            print(f"{name:14s} {text}")
    return EXIT_OK


def cmd_batch(args: argparse.Namespace, job) -> int:
    from .items import Shard

    if args.status:
        out_dir = args.out_dir if args.out_dir is not None else args.in_dir
        names = None
        if args.out_dir is not None:  # IN given: its items are the batch
            from .items import load_items

            items = load_items(args.in_dir, job)
            if args.shard:
                items = Shard.parse(args.shard).select(items)
            names = [it.name for it in items]
        st = journal.status(out_dir, names)
        batch.print_status(st, args.json)
        return EXIT_OK if st["done"] == st["items"] else EXIT_ITEMS_FAILED
    if args.out_dir is None:
        raise InputError("batch needs IN and OUT_DIR (or --status OUT_DIR)")
    if args.verbose == 0:
        for name in batch.QUIET_IN_BATCH:
            logging.getLogger(name).setLevel(logging.WARNING)
    opts = batch.Options(n_jobs=args.jobs, retry_failed=args.retry_failed, progress=not args.quiet,
                         shard=Shard.parse(args.shard) if args.shard else None, ray=args.ray,
                         dry_run=args.dry_run, json=args.json, log_dir=args.log_dir)
    report = batch.run_batch(args.in_dir, args.out_dir, job, opts)
    return EXIT_OK if report.ok else EXIT_ITEMS_FAILED
