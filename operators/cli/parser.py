"""The command line's options, made from the one job description (`core.job`): every bound and default
comes from `core.job.PARAMS`, and `job_from_args` turns the parsed options into a `core.job.Job`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...core.job import (
    DEVICES,
    FORMATS,
    MP4_QUALITIES,
    PARAMS,
    PREDICTED_SOURCES,
    Job,
    LoopSpec,
    MotionSpec,
    OutputSpec,
)


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so `blender --command` gets a return code."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}")

    def exit(self, status=0, message=None):
        if message:
            (sys.stderr if status else sys.stdout).write(message)
        raise ParserExit(status)


class UsageError(Exception):
    pass


class ParserExit(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def bounded(name: str):
    """An argparse type for the setting `name` of core.job.PARAMS (its kind and range)."""
    param = PARAMS[name]

    def parse(text: str):
        try:
            value = param.kind(text)
        except ValueError:
            what = "a whole number" if param.kind is int else "a number"
            raise argparse.ArgumentTypeError(f"not {what}: {text[:40]!r}") from None
        if not param.min <= value <= param.max:  # NaN fails too
            raise argparse.ArgumentTypeError(f"must be from {param.min:g} to {param.max:g}, got {text[:40]}")
        return value

    parse.__name__ = name
    return parse


def _max_size(text: str) -> int:
    value = bounded("max_size")(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {text[:40]}")
    return value


def _motion(text: str) -> str:
    if text in PREDICTED_SOURCES or Path(text).suffix.lower() in (".exr", ".npy"):
        return text
    raise argparse.ArgumentTypeError(f"expected auto, hints, model or a field file (.exr or .npy), got {text[:60]!r}")


def _help(name: str, extra: str = "") -> str:
    p = PARAMS[name]
    return f"{p.help} ({p.min:g} to {p.max:g}; default: {p.default:g}){extra}"


def build_parser(prog: str = "stillflow", version: str = "") -> argparse.ArgumentParser:
    parser = Parser(
        prog=prog,
        description="Turn one still photo into a seamless looping video of fluid motion.",
        epilog="Exit codes: 0 done, 1 some batch items failed, 2 usage error or bad input, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"stillflow {version}")

    common = Parser(add_help=False)
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
    g.add_argument("--model", type=Path, metavar="FILE.onnx",
                   help="another motion model (ONNX, same inputs as the shipped one) instead of the shipped one")
    g.add_argument("--feather", type=bounded("feather_px"), default=PARAMS["feather_px"].default, metavar="PX",
                   dest="feather_px", help=_help("feather_px"))
    g.add_argument("--no-sky", action="store_false", dest="sky",
                   help="keep the model's field in the sky and on mirroring water as it is (default, without "
                        "arrows: a cloudy sky drifts right, a clear one stays still; a lake that mirrors its shore "
                        "drifts right, the shore it mirrors stays still)")
    g.add_argument("--max-size", type=_max_size, metavar="PX",
                   help="downscale photos whose longer side is larger than PX pixels")
    g.add_argument("--device", choices=DEVICES, default="auto",
                   help="where the model and the splatting run (default: auto)")
    o = common.add_argument_group("output")
    o.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar, only warnings and errors")
    o.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")

    loop = Parser(add_help=False)
    r = loop.add_argument_group("loop")
    r.add_argument("--frames", type=bounded("frames"), default=PARAMS["frames"].default, metavar="N",
                   help=_help("frames"))
    r.add_argument("--fps", type=bounded("fps"), default=PARAMS["fps"].default, metavar="F", help=_help("fps"))
    r.add_argument("--speed", type=bounded("speed"), default=PARAMS["speed"].default, metavar="S",
                   help=_help("speed"))
    r.add_argument("--mp4-quality", choices=MP4_QUALITIES, default="perceptual",
                   help="perceptual: H.264 CRF 17 with one keyframe per loop; lossless: about 6x the bytes, "
                        "nothing re-encoded at the wrap (default: perceptual)")
    r.add_argument("--renderer", choices=("sharp", "splat"), default="sharp",
                   help="sharp: every frame keeps the photo's detail, regions cross over at their own moments "
                        "(about 2x the time); splat: the photo's colours splatted directly, faster and softer "
                        "mid-loop (default: sharp)")
    r.add_argument("--format", choices=FORMATS, default="mp4", dest="fmt",
                   help="mp4: <stem>_loop.mp4 + <stem>.blend (needs bpy); png: <stem>_frames/ (8-bit sRGB); "
                        "exr: <stem>_exr/ (32-bit float, scene-linear); gif/webp: <stem>_loop.gif/.webp "
                        "(WebP lossless: the frames exactly, several times a lossy file's bytes) (default: mp4)")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
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
    p.add_argument("-o", "--output", type=Path, metavar="FIELD.exr|FIELD.npy")
    p.add_argument("--write-hints", type=Path, metavar="HINTS.json",
                   help="also write the moving region the motion proposes, snapped to the photo's edges, as a "
                        "hints file to accept or edit (motion polygons, holes as freeze polygons, your arrows "
                        "kept); animate with --hints HINTS.json")

    fm = sub.add_parser("flowmap", parents=[common], help="write the motion as a flow map for game engines",
                        description="Write the photo's motion as a flow map: an 8-bit PNG (R = dx, G = dy, 128 = "
                                    "still, scale in px/frame in the PNG and in <map>.json) or a float EXR "
                                    "(px/frame). --motion FIELD converts a field written by `stillflow predict`.")
    fm.add_argument("image", type=Path, metavar="IMAGE")
    fm.add_argument("-o", "--output", type=Path, required=True, metavar="MAP.png|MAP.exr")
    fm.add_argument("--y", choices=("down", "up"), default="down",
                    help="down: +G is down the picture (Unreal, Godot; v-down UVs); up: +G is up (Unity, "
                         "Blender; v-up UVs) (default: down)")

    i = sub.add_parser("inspect", help="quality figures and a contact sheet of a rendered loop",
                       description="Print the quality figures of a rendered loop (a folder of frames or a "
                                   "movie) and write a contact sheet PNG: frames across the loop, crops of "
                                   "the moving region at full size, per-frame sharpness and steps.")
    i.add_argument("loop", type=Path, metavar="LOOP", help="a folder of frames, or an MP4/WebM/GIF/WebP")
    i.add_argument("--mask", type=Path, metavar="FILE",
                   help="the moving region: a mask image (white moves) or a hints file (its motion polygons); "
                        "default: the pixels that change")
    i.add_argument("--photo", type=Path, metavar="FILE",
                   help="the photo the loop was made from (sharpness is measured against it; default: frame 0)")
    i.add_argument("-o", "--output", type=Path, metavar="SHEET.png",
                   help="the contact sheet (default: <LOOP>_inspect.png beside the loop)")
    i.add_argument("--json", action="store_true", help="print the figures as one JSON object on stdout")
    i.add_argument("--overwrite", action="store_true", help="replace an existing contact sheet")
    i.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    i.add_argument("-v", "--verbose", action="count", default=0, help="more log output")

    b = sub.add_parser("batch", parents=[common, loop], help="animate every photo in a folder or job list (resumable)",
                       description="Animate every photo in IN (a folder, or a job list: .csv or .jsonl with a "
                                   "'photo' column and per-item settings) into OUT_DIR/<name>/. Finished items are "
                                   "recorded in OUT_DIR's journal; run the same command again after a crash or "
                                   "kill to do only what is left. `stillflow batch --status OUT_DIR` reports it.",
                       epilog="Exit codes: 0 every item done, 1 some failed (or, with --status, some failed "
                              "or pending), 2 usage error or bad input, 130 interrupted.")
    b.add_argument("in_dir", type=Path, metavar="IN", help="a folder of photos or a job list (.csv, .jsonl)")
    b.add_argument("out_dir", type=Path, metavar="OUT_DIR", nargs="?")
    b.add_argument("--jobs", "-j", type=int, default=1, metavar="K",
                   help="photos processed in parallel, one process each (default: 1)")
    b.add_argument("--retry-failed", action="store_true",
                   help="also redo items the journal records as failed (default: skip them)")
    f = b.add_argument_group("scale out")
    f.add_argument("--shard", metavar="K/N",
                   help="do only shard K of N (items split by a hash of their names), with its own journal: "
                        "N processes on N machines share one OUT_DIR with no coordination")
    f.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the items as Ray tasks on the cluster at ADDRESS (default: a local Ray); "
                        "needs the optional ray package")
    f.add_argument("--json", action="store_true", help="one JSON result object per item on stdout")
    f.add_argument("--log-dir", type=Path, metavar="DIR", help="write each item's log to DIR/<name>.log")
    f.add_argument("--dry-run", action="store_true", help="list what would be done; write nothing")
    f.add_argument("--status", action="store_true",
                   help="report done / failed / pending from OUT_DIR's journals and plans, and exit")
    return parser


def job_from_args(args: argparse.Namespace) -> Job:
    """The core.job.Job the parsed options describe (validated)."""
    motion = args.motion
    field_path = None
    if motion not in PREDICTED_SOURCES:
        motion, field_path = "field", str(args.motion)
    return Job(
        motion=MotionSpec(
            source=motion, field_path=field_path,
            hints_path=None if args.hints is None else str(args.hints),
            mask_path=None if args.mask is None else str(args.mask),
            model_path=None if args.model is None else str(args.model),
            feather_px=args.feather_px, sky=args.sky,
        ),
        loop=LoopSpec(frames=getattr(args, "frames", PARAMS["frames"].default),
                      fps=getattr(args, "fps", PARAMS["fps"].default),
                      speed=getattr(args, "speed", PARAMS["speed"].default),
                      renderer=getattr(args, "renderer", "sharp")),
        output=OutputSpec(fmt=getattr(args, "fmt", "mp4"), overwrite=args.overwrite,
                          mp4_quality=getattr(args, "mp4_quality", "perceptual")),
        max_size=args.max_size,
        device=args.device,
    ).validate()
