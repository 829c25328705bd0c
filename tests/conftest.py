"""Shared fixtures. bpy can be imported only once per process and keeps global state, so the Blender
fixtures enable the extension once per session and reset the scene data between tests."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
EXT_REPO_MODULE = "sftest"


def _load_cli_helpers() -> None:
    """Make tests/cli_helpers.py importable as `stillflow_cli_test_helpers` (tests are not a package)."""
    import sys

    name = "stillflow_cli_test_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("cli_helpers.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)


_load_cli_helpers()  # extensions repository: the extension loads as bl_ext.sftest.stillflow


def _has_bpy() -> bool:
    return importlib.util.find_spec("bpy") is not None


@pytest.fixture(scope="session")
def stillflow_ext(tmp_path_factory):
    """Enable the checkout as a Blender extension (temp repo folder + symlink named `stillflow`).

    Yields the extension's module name (bl_ext.sftest.stillflow). Survives tests that reset preferences:
    use the `blender` fixture, which re-enables it when needed."""
    if not _has_bpy():
        pytest.skip("needs the bpy module")
    import bpy  # first: it puts Blender's script modules (addon_utils) on sys.path

    addon_utils = importlib.import_module("addon_utils")

    parent = tmp_path_factory.mktemp("extensions")
    os.symlink(REPO, parent / "stillflow", target_is_directory=True)
    module = f"bl_ext.{EXT_REPO_MODULE}.stillflow"

    def enable():
        repos = bpy.context.preferences.extensions.repos
        if not any(r.module == EXT_REPO_MODULE for r in repos):
            repos.new(
                name=EXT_REPO_MODULE, module=EXT_REPO_MODULE, custom_directory=str(parent), source="USER"
            )
        if module not in bpy.context.preferences.addons:
            mod = addon_utils.enable(module, default_set=True, handle_error=_raise)
            assert mod is not None, f"could not enable {module}"

    enable()
    yield module, enable
    addon_utils.disable(module, default_set=True)


def _raise(err):
    raise err


@pytest.fixture
def blender(stillflow_ext):
    """A fresh empty scene with the extension enabled; returns the bpy module."""
    import bpy

    module, enable = stillflow_ext
    bpy.ops.wm.read_homefile(use_empty=True)
    enable()
    assert hasattr(bpy.types.Scene, "stillflow"), "extension properties not registered"
    return bpy


@pytest.fixture(scope="session")
def small_photo(tmp_path_factory) -> Path:
    """A small real photo: McWay Falls (CC0, samples/) at 160x90, which samples/mcway_falls.hints.json fits."""
    path = DATA / "blender_mcway_160x90.jpg"
    if not path.is_file():
        pytest.skip(f"missing {path}")
    return path


@pytest.fixture
def hinted_photo(blender, small_photo):
    """The small photo loaded and chosen in the panel, the sample's hints imported into a Mask, motion from
    the arrows. Returns the image."""
    bpy = blender
    image = bpy.data.images.load(str(small_photo))
    settings = bpy.context.scene.stillflow
    settings.image = image
    settings.motion_source = "HINTS"
    bpy.ops.stillflow.import_hints(filepath=str(REPO / "samples" / "mcway_falls.hints.json"))
    assert settings.hints is not None
    return image


def pytest_collection_modifyitems(config, items):
    """`slow` tests run only when asked for with -m slow."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
