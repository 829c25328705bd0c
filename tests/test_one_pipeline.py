"""One job and one pipeline under both faces (the command line and the Blender operators).

- every bound and default of a setting is written once (core.job.PARAMS): the parser, the Blender
  properties and Job.validate agree;
- EXR frames are scene-linear in both faces; an RGBA photo's transparent pixels stay still in both; both
  faces name their outputs the same way; `--model PATH` runs another model file;
- no two modules of core/, operators/ or models/ import each other, directly or round a circle.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import stillflow_cli_test_helpers as h
from PIL import Image
from stillflow.core.errors import InputError
from stillflow.core.imageio import srgb_to_linear
from stillflow.core.job import PARAMS, Job, LoopSpec, MotionSpec, OutputSpec
from stillflow.operators.cli.parser import build_parser, job_from_args

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
PHOTO = DATA / "mcway_crop.jpg"  # 128x72, CC0
HAS_BPY = __import__("importlib.util").util.find_spec("bpy") is not None


# ------------------------------------------------------------------------------------ one job description


def _parse(*argv):
    return build_parser().parse_args(["animate", "x.jpg", *argv])


def test_parser_defaults_and_bounds_come_from_params():
    from stillflow.operators.cli.parser import UsageError

    args = _parse()
    job = job_from_args(args)
    assert job == Job(output=OutputSpec(fmt="mp4")).validate()  # the parser's defaults are the job's
    assert job.motion.sky and not job_from_args(_parse("--no-sky")).motion.sky
    for opt, name in (("--frames", "frames"), ("--fps", "fps"), ("--speed", "speed"), ("--feather", "feather_px")):
        p = PARAMS[name]
        lo, hi = p.min, p.max
        assert getattr(job_from_args(_parse(opt, str(lo))), "loop" if name != "feather_px" else "motion")
        job_from_args(_parse(opt, str(p.kind(hi))))
        for bad in (lo - 1, hi + 1):
            with pytest.raises(UsageError):
                _parse(opt, str(p.kind(bad)))
            with pytest.raises(InputError, match=name):  # the job refuses what the parser refuses
                if name == "feather_px":
                    Job(motion=MotionSpec(feather_px=p.kind(bad))).validate()
                else:
                    Job(loop=LoopSpec(**{name: p.kind(bad)})).validate()


@pytest.mark.bpy
def test_blender_properties_come_from_params(blender, stillflow_ext):
    settings = blender.context.scene.stillflow
    rna = settings.bl_rna.properties
    for name, p in PARAMS.items():
        if name == "max_size":
            continue  # a command-line setting only
        prop = rna[name]
        assert (prop.default, prop.hard_min, prop.hard_max) == pytest.approx((p.default, p.min, p.max)), name
        setattr(settings, name, p.kind(p.max * 10 + 5))  # Blender clamps to the same bound Job checks
        assert getattr(settings, name) == pytest.approx(p.max)
    properties = sys.modules[f"{stillflow_ext[0]}.operators.properties"]
    job = properties.job_from_scene(settings)  # validates: the clamped values are inside the job's bounds
    assert job.loop.frames == PARAMS["frames"].max and job.loop.fps == PARAMS["fps"].max
    assert job.motion.sky and rna["sky"].default  # the sky cue is on by default, as on the command line
    settings.sky = False
    assert not properties.job_from_scene(settings).motion.sky
    assert set(properties.MOTION_SOURCE_TO_CORE) == {i.identifier for i in rna["motion_source"].enum_items}


def test_job_round_trips_as_a_dict_and_refuses_unknown_keys():
    job = Job(MotionSpec(source="hints", hints_path="a.json", feather_px=3.0), LoopSpec(frames=12, fps=24.0),
              OutputSpec(fmt="png"), max_size=320, device="cpu").validate()
    assert Job.from_dict(job.to_dict()) == job
    with pytest.raises(InputError, match="unknown"):
        Job.from_dict({**job.to_dict(), "colour": "blue"})
    assert "overwrite" not in job.settings_key()["output"]


# ---------------------------------------------------------------------------------------- drift cases


def _hints(tmp_path, size=(128, 72)):
    return h.write_hints(tmp_path / "h.json", [((10, 20), (60, 40), 8), ((100, 60), (70, 30), 8)], size)


def test_exr_frames_are_scene_linear_on_the_command_line(tmp_path):
    hints = _hints(tmp_path)
    for fmt in ("png", "exr"):
        r = h.run_cli("animate", PHOTO, "--hints", hints, "--motion", "hints", "--out", tmp_path / "o",
                      "--frames", "3", "--format", fmt, "-q")
        assert r.returncode == 0, r.stderr
    import OpenEXR

    png = np.asarray(Image.open(tmp_path / "o" / "mcway_crop_frames" / "frame_0000.png"), np.float32) / 255
    with OpenEXR.File(str(tmp_path / "o" / "mcway_crop_exr" / "frame_0000.exr")) as f:
        exr = f.channels()["RGB"].pixels
    y, x = 30, 64  # a known pixel: the linear value of the PNG's sRGB value
    np.testing.assert_allclose(exr[y, x], srgb_to_linear(png[y, x]), atol=0.003)
    assert exr[y, x].mean() < png[y, x].mean() - 0.05  # really linear, not the sRGB values again


def test_model_option_runs_that_model_file(tmp_path):
    from stillflow.core.model import DEFAULT_MODEL_PATH

    copy = tmp_path / "mine.onnx"
    shutil.copy(DEFAULT_MODEL_PATH, copy)
    fields = []
    for extra in ([], ["--model", copy]):
        out = tmp_path / f"f{len(fields)}.npy"
        r = h.run_cli("predict", PHOTO, "--motion", "model", "-o", out, *extra)
        assert r.returncode == 0, r.stderr
        fields.append(np.load(out))
    np.testing.assert_array_equal(fields[0], fields[1])
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    for path, what in ((broken, "model"), (tmp_path / "missing.onnx", "not found")):
        r = h.run_cli("predict", PHOTO, "--motion", "model", "-o", tmp_path / "x.npy", "--model", path)
        assert r.returncode == 2 and what in h.one_line_error(r.stderr)
        assert not (tmp_path / "x.npy").exists()


@pytest.mark.bpy
@pytest.mark.skipif(not HAS_BPY, reason="needs the bpy module")
def test_blender_exr_is_linear_rgba_stays_still_and_names_match_the_cli(blender, tmp_path):
    bpy = blender
    src = DATA / "sea_rgba.png"  # 80x45, the 20 leftmost columns transparent
    image = bpy.data.images.load(str(src))
    settings = bpy.context.scene.stillflow
    settings.image, settings.motion_source, settings.frames = image, "HINTS", 6
    settings.output_dir, settings.outputs = str(tmp_path / "blender"), set()
    hints = h.write_hints(tmp_path / "sea_rgba.hints.json", [((5, 10), (70, 30), 10)], (80, 45))
    assert bpy.ops.stillflow.import_hints(filepath=str(hints)) == {"FINISHED"}
    assert bpy.ops.stillflow.predict_motion() == {"FINISHED"}
    field = np.empty(80 * 45 * 4, np.float32)
    settings.field_image.pixels.foreach_get(field)
    field = field.reshape(45, 80, 4)
    assert np.abs(field[:, :12, :2]).max() == 0.0  # transparent pixels: no motion (alpha freezes them)
    assert np.abs(field[:, 40:, :2]).max() > 0.5
    for fmt in ("PNG", "EXR"):
        settings.output_format = fmt
        assert bpy.ops.stillflow.render_loop() == {"FINISHED"}
    frames = [np.asarray(Image.open(p)).astype(int) for p in sorted((tmp_path / "blender" / "sea_rgba_frames").iterdir())]
    assert max(np.abs(f[:, :12] - frames[0][:, :12]).max() for f in frames) <= 2  # still, as on the CLI
    assert max(np.abs(f[:, 40:] - frames[0][:, 40:]).mean() for f in frames) > 1.0
    import OpenEXR

    with OpenEXR.File(str(tmp_path / "blender" / "sea_rgba_exr" / "frame_0000.exr")) as f:
        exr = f.channels()["RGB"].pixels
    np.testing.assert_allclose(exr[20, 60], srgb_to_linear(frames[0][20, 60] / 255.0), atol=0.003)

    # The command line names the same outputs the same way.
    for fmt in ("png", "exr"):
        r = h.run_cli("animate", src, "--hints", hints, "--motion", "hints", "--out", tmp_path / "cli",
                      "--frames", "6", "--format", fmt, "-q")
        assert r.returncode == 0, r.stderr
    assert h.listing(tmp_path / "cli") == h.listing(tmp_path / "blender")
    bpy.ops.wm.read_homefile(use_empty=True)


# ------------------------------------------------------------------------------------------ layout


def _module_graph() -> dict[str, set[str]]:
    """Imports among the project's own modules, read with ast from core/, operators/ and models/."""
    files = [p for pkg in ("core", "operators", "models") for p in (REPO / pkg).rglob("*.py")]
    names = {}
    for p in files:
        parts = list(p.relative_to(REPO).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {m: set() for m in names}
    for mod, path in names.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = package.split(".")
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join(pkg + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            targets = [t.removeprefix("stillflow.") for t in targets]
            graph[mod].update(t for t in targets if t in names and t != mod and not mod.startswith(t + "."))
    return graph


def test_no_import_cycles():
    graph = _module_graph()
    assert "operators.cli.commands" in graph and "core.engines.select" in graph  # the walk sees the packages
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)
