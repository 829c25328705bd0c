"""The manifest passes Blender's validator; the zip builds with Blender's own tool, installs and enables."""

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.bpy

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / ".ci" / "build_extension"


def blender_ext_tool() -> Path:
    spec = importlib.util.find_spec("bpy")
    if spec is None:
        pytest.skip("needs the bpy module")
    # bpy/<version>/scripts/...: 5.0 in bpy 5.0.1, 5.3 in bpy 5.3.0
    tools = sorted(Path(spec.origin).parent.glob("[0-9]*.[0-9]*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    assert tools, "Blender's extension tool is not in the bpy module"
    return tools[-1]


def run(*cmd):
    done = subprocess.run([sys.executable, *map(str, cmd)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _blender_tags(tmp_path) -> Path:
    """Blender's own tag list (what `blender --command extension build/validate` checks against), as the
    JSON file the bpy wheel's tool takes with --valid-tags."""
    import json

    tags_py = blender_ext_tool().parents[3] / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    scope: dict = {}
    exec(compile(tags_py.read_text(encoding="utf-8"), str(tags_py), "exec"), scope)
    path = tmp_path / "valid_tags.json"
    path.write_text(json.dumps({"add-on": sorted(scope["addons"]), "theme": sorted(scope["themes"])}))
    return path


def test_manifest_validates(tmp_path):
    out = run(blender_ext_tool(), "validate", "--valid-tags", _blender_tags(tmp_path), REPO)
    assert "Success" in out


def _build(tmp_path, *extra):
    out = tmp_path / "dist"
    run(BUILD, "--output-dir", out, *extra)
    return sorted(out.glob("stillflow-*.zip"))


def _install_and_enable(blender, stillflow_ext, zip_path, repo_dir):
    """Install the zip with Blender's installer into a temporary repository (the checkout copy is
    disabled meanwhile: both would register the same classes) and check that it works."""
    import addon_utils

    bpy = blender
    checkout_module, enable_checkout = stillflow_ext
    addon_utils.disable(checkout_module, default_set=True)
    repos = bpy.context.preferences.extensions.repos
    repo = repos.new(name="sfzip", module="sfzip", custom_directory=str(repo_dir), source="USER")
    try:
        result = bpy.ops.extensions.package_install_files(
            filepath=str(zip_path), repo="sfzip", enable_on_install=True
        )
        assert result == {"FINISHED"}
        assert "bl_ext.sfzip.stillflow" in bpy.context.preferences.addons
        assert hasattr(bpy.types.Scene, "stillflow")
        installed = repo_dir / "stillflow"
        assert (installed / "blender_manifest.toml").is_file()
        assert not (installed / "tests").exists() and not (installed / ".ci").exists()
        photo = bpy.data.images.new("p", 32, 16)
        bpy.context.scene.stillflow.image = photo
        bpy.ops.stillflow.new_hints()
        assert bpy.context.scene.stillflow.hints.name == "p_hints"
        addon_utils.disable("bl_ext.sfzip.stillflow", default_set=True)
    finally:
        repos.remove(repo)
        enable_checkout()


def test_build_install_enable(blender, stillflow_ext, tmp_path):
    """Quick build (no wheel download) for every platform; install this platform's zip."""
    zips = _build(tmp_path, "--no-wheels")
    names = {z.name for z in zips}
    assert names == {
        f"stillflow-0.1.0-{p}.zip" for p in ("windows_x64", "linux_x64", "macos_arm64", "macos_x64")
    }
    linux = next(z for z in zips if "linux" in z.name)
    with zipfile.ZipFile(linux) as zf:
        files = zf.namelist()
    assert "__init__.py" in files and "operators/ops_render.py" in files and "core/render.py" in files
    assert not [
        f for f in files if f.startswith(("tests/", ".ci/", ".venv/", "wheels/")) or "__pycache__" in f
    ]
    assert not [f for f in files if f.startswith("models/") and f.endswith(".py")]
    assert "LICENSE" in files and "benchmark.py" not in files
    assert not [f for f in files if f.startswith(("models/training/", "models/realset/", "models/trainset_real/"))]
    run(blender_ext_tool(), "validate", "--valid-tags", _blender_tags(tmp_path), linux)
    _install_and_enable(blender, stillflow_ext, linux, tmp_path / "repo")


@pytest.mark.slow
def test_full_build_with_wheels(blender, stillflow_ext, tmp_path):
    """Downloads the pinned wheels for every platform (about 60 MB each) and builds the real zips."""
    zips = _build(tmp_path)
    assert zips
    for z in zips:
        with zipfile.ZipFile(z) as zf:
            wheels = [f for f in zf.namelist() if f.endswith(".whl")]
        names = {w.split("/")[-1].split("-")[0] for w in wheels}
        assert names == {"onnxruntime", "numba", "llvmlite", "pillow", "openexr", "tqdm", "av"}, z.name
        assert not [w for w in wheels if "numpy" in w]
        for pyver in ("cp311", "cp313"):  # Blender 5.0, and 5.1 to 5.3: Blender installs its own Python's
            compiled = {w.split("/")[-1].split("-")[0] for w in wheels if f"-{pyver}-" in w}
            assert compiled == names - {"tqdm", "av"}, (z.name, pyver)
        assert [w for w in wheels if w.split("/")[-1].startswith("av-") and "-cp311-abi3-" in w], z.name


INSTALL_CHECK = """
import sys, bpy
zip_path, repo_dir = sys.argv[1], sys.argv[2]
bpy.context.preferences.extensions.repos.new(name="sfzip", module="sfzip", custom_directory=repo_dir, source="USER")
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="sfzip", enable_on_install=True) == {"FINISHED"}
assert "bl_ext.sfzip.stillflow" in bpy.context.preferences.addons
# The installed extension runs from its bundled wheels: the numba kernels, the model, the command line.
import importlib
engine = importlib.import_module("bl_ext.sfzip.stillflow.core.engines.select").get_engine("cpu")
assert engine.name == "cpu-numba", engine.name
cli = importlib.import_module("bl_ext.sfzip.stillflow.operators.cli")
code = cli.main(["animate", sys.argv[3], "--motion", "model", "--max-size", "96", "--frames", "4", "--format", "png",
                 "--out", sys.argv[4], "--quiet"])
assert code == 0, code
print("OK", sorted(p.name for p in __import__("pathlib").Path(sys.argv[4]).rglob("*.png")))
# The MP4 through the bundled PyAV's x264 (core.video), in the process that holds Blender's own FFmpeg.
video = importlib.import_module("bl_ext.sfzip.stillflow.core.video")
av = video.x264()
assert av is not None, "the bundled PyAV has no libx264"
code = cli.main(["animate", sys.argv[3], "--motion", "model", "--max-size", "96", "--frames", "6", "--format", "mp4",
                 "--out", sys.argv[4] + "_mp4", "--quiet"])
assert code == 0, code
movie = next(__import__("pathlib").Path(sys.argv[4] + "_mp4").glob("*_loop.mp4"))
with av.open(str(movie)) as f:
    print("MP4", sum(1 for _ in f.decode(video=0)), "frames by", av.__file__)
"""
IMPORT_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import numba, onnxruntime, PIL, OpenEXR, av
for m in (numba, onnxruntime, PIL, OpenEXR, av):
    assert m.__file__.startswith(sys.argv[1]), m.__file__
print(onnxruntime.get_available_providers())
"""


def test_zip_with_wheels_installs_them(tmp_path):
    """The linux zip with its wheels (downloaded: about 160 MB for Python 3.11 and 3.13), installed with
    Blender's installer into an isolated BLENDER_USER_RESOURCES in a separate process, runs from them: the
    numba kernels, the model, the command line and its MP4 through the bundled PyAV's x264. The suite runs
    it on bpy 5.0.1 (Python 3.11) and again on bpy 5.3 (Python 3.13, numpy 2): Blender installs the wheels of
    its own Python."""
    import importlib.util
    import os
    import platform as host

    if host.system() != "Linux" or host.machine() != "x86_64":
        pytest.skip("checks the linux-x64 zip")
    zips = _build(tmp_path, "--platforms", "linux-x64")
    users = tmp_path / "user"
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(users), PYTHONNOUSERSITE="1")
    repo = tmp_path / "repo"
    repo.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", INSTALL_CHECK, str(zips[0]), str(repo), str(REPO / "samples" / "mcway_falls.jpg"),
         str(tmp_path / "anim")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout and "frame_0003.png" in done.stdout, done.stdout + done.stderr
    # Where this environment has no PyAV of its own (.venv313), the one that encoded is the zip's.
    own_av = importlib.util.find_spec("av") is not None
    assert "MP4 6 frames by " + ("" if own_av else str(users)) in done.stdout, done.stdout + done.stderr
    site = next(users.glob("extensions/.local/lib/python3.*/site-packages"))
    names = {p.name.split("-")[0] for p in site.iterdir()}
    assert {"onnxruntime", "numba", "llvmlite", "av"} <= names and "numpy" not in names
    done = subprocess.run([sys.executable, "-c", IMPORT_CHECK, str(site)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CPUExecutionProvider" in done.stdout

    # The GPU pack (case 9): an onnxruntime in the extension's own site-packages is the one imported, ahead
    # of the bundled CPU wheel. A stand-in for the pack's download: this environment's own onnxruntime
    # (the GPU build, onnxruntime-gpu, in .venv; the CPU build in .venv313) copied there.
    import onnxruntime

    done = subprocess.run([sys.executable, "-c", GPU_CHECK, str(repo), str(Path(onnxruntime.__file__).parent)],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FROM PACK" in done.stdout and "loads from: GPU pack" in done.stdout, done.stdout
    if "onnxruntime-gpu" in done.stdout:
        assert "CUDAExecutionProvider" in done.stdout


GPU_CHECK = """
import importlib, shutil, sys
from pathlib import Path
import bpy
repo_dir, source = sys.argv[1], sys.argv[2]
bpy.context.preferences.extensions.repos.new(name="sfzip", module="sfzip", custom_directory=repo_dir, source="USER")
pack = Path(bpy.utils.extension_path_user("bl_ext.sfzip.stillflow", path="site-packages", create=True))
shutil.copytree(source, pack / "onnxruntime")
for dist in Path(source).parent.glob("onnxruntime*.dist-info"):
    shutil.copytree(dist, pack / dist.name)
import addon_utils
assert addon_utils.enable("bl_ext.sfzip.stillflow", default_set=True) is not None
import onnxruntime
assert onnxruntime.__file__.startswith(str(pack)), onnxruntime.__file__
print("FROM PACK", onnxruntime.__file__, onnxruntime.get_available_providers())
deps = importlib.import_module("bl_ext.sfzip.stillflow.operators.deps")
print("loads from:", deps.imported_from("onnxruntime"), deps.found_versions())
"""
