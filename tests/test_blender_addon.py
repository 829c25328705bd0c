"""The extension enables from the checkout, registers everything, and unregisters cleanly (real bpy)."""

import pytest

pytestmark = pytest.mark.bpy


def test_enabled_from_checkout(blender, stillflow_ext):
    bpy = blender
    module, _ = stillflow_ext
    assert module in bpy.context.preferences.addons
    prefs = bpy.context.preferences.addons[module].preferences
    assert prefs.device == "auto"
    settings = bpy.context.scene.stillflow
    assert (settings.frames, settings.fps, settings.speed) == (60, 30.0, 1.0)
    assert settings.motion_source == "AUTO" and settings.outputs == {"SEQUENCER"}
    assert bpy.context.window_manager.stillflow.running is False
    for name in (
        "predict_motion",
        "render_loop",
        "field_to_mesh",
        "field_from_mesh",
        "new_hints",
        "import_hints",
        "export_hints",
        "install_gpu",
        "remove_gpu",
    ):
        assert hasattr(bpy.types, f"STILLFLOW_OT_{name}"), name
    assert bpy.types.STILLFLOW_PT_image.bl_space_type == "IMAGE_EDITOR"
    assert bpy.types.STILLFLOW_PT_view3d.bl_category == "Stillflow"
    for space in ("image", "view3d"):  # sub-panels in Blender's manner, the rarely used ones folded
        for key in ("hints", "loop", "output", "realtime", "mesh"):
            sub = getattr(bpy.types, f"STILLFLOW_PT_{space}_{key}")
            assert sub.bl_parent_id == f"STILLFLOW_PT_{space}"
            assert ("DEFAULT_CLOSED" in getattr(sub, "bl_options", set())) == (key in ("realtime", "mesh"))


def test_unregister_removes_everything(blender, stillflow_ext):
    import addon_utils

    bpy = blender
    module, enable = stillflow_ext
    addon_utils.disable(module, default_set=True)
    try:
        assert not hasattr(bpy.types.Scene, "stillflow")
        assert not hasattr(bpy.types.WindowManager, "stillflow")
        assert not hasattr(bpy.types, "STILLFLOW_OT_render_loop")
        assert not hasattr(bpy.types, "STILLFLOW_PT_image")
    finally:
        enable()
    assert hasattr(bpy.types.Scene, "stillflow")


def test_install_gpu_refuses_offline(blender, stillflow_ext):
    import sys

    bpy = blender
    assert bpy.app.online_access is False  # the bpy module's default
    assert not bpy.ops.stillflow.install_gpu.poll()
    with pytest.raises(RuntimeError, match="Online access is off"):
        bpy.ops.stillflow.install_gpu()
    deps = sys.modules[f"{stillflow_ext[0]}.operators.deps"]
    commands = deps.pip_commands("/somewhere/site-packages")
    assert commands and all(c[c.index("--target") + 1] == "/somewhere/site-packages" for c in commands)
    assert not [a for c in commands for a in c if a.startswith("numpy")]
    assert any("torch==" in a for c in commands for a in c)


class _OperatorProps:
    """What layout.operator() returns: setting a property the operator does not have fails, as in Blender."""

    def __init__(self, rna):
        object.__setattr__(self, "_rna", rna)

    def __setattr__(self, name, value):
        assert name in self._rna.properties, f"{self._rna.identifier} has no property {name!r}"


class FakeLayout:
    """Records a panel's draw calls and checks every property and operator name against bpy."""

    def __init__(self, bpy, seen):
        self._bpy, self.seen = bpy, seen

    def _child(self, *args, **kwargs):
        return FakeLayout(self._bpy, self.seen)

    row = column = box = split = column_flow = grid_flow = _child

    def prop(self, data, name, **kwargs):
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.seen.append(name)

    def operator(self, idname, **kwargs):
        module, name = idname.split(".")
        rna = getattr(getattr(self._bpy.ops, module), name).get_rna_type()  # raises for an unknown operator
        self.seen.append(idname)
        return _OperatorProps(rna)

    def operator_menu_enum(self, idname, prop, **kwargs):
        module, name = idname.split(".")
        rna = getattr(getattr(self._bpy.ops, module), name).get_rna_type()
        assert prop in rna.properties and rna.properties[prop].type == "ENUM", (idname, prop)
        self.seen.append(idname)

    def label(self, text="", **kwargs):
        self.seen.append(text)

    def progress(self, **kwargs):
        self.seen.append("progress")

    def separator(self, **kwargs):
        pass


def test_panels_and_preferences_draw(blender, stillflow_ext):
    import sys
    from types import SimpleNamespace as NS

    bpy = blender
    module, _ = stillflow_ext
    panels = sys.modules[f"{module}.operators.panels"]
    settings = bpy.context.scene.stillflow
    status = bpy.context.window_manager.stillflow
    settings.field_image = bpy.data.images.new("p_motion", 4, 4, float_buffer=True)
    for source, running in (("BOTH", False), ("FIELD", True)):
        settings.motion_source = source
        status.running, status.status = running, "Stillflow: frame 2/6"
        seen = []
        panels.draw_stillflow(FakeLayout(bpy, seen), bpy.context)
        assert "frames" in seen and "output_dir" in seen
        assert ("progress" in seen) == running and ("stillflow.render_loop" in seen) != running
        assert ("stillflow.predict_motion" in seen) == (source != "FIELD")
        assert any(s.startswith("Red = dx") for s in seen)
    status.running = False

    prefs = bpy.context.preferences.addons[module].preferences
    seen = []
    fake_self = NS(
        layout=FakeLayout(bpy, seen),
        device=prefs.device,
        model_path="",
        install_status="done",
        bl_rna=prefs.bl_rna,
    )
    type(prefs).draw(fake_self, bpy.context)
    assert "stillflow.install_gpu" in seen and "stillflow.remove_gpu" in seen
    import numpy

    assert any(s.startswith(f"numpy: {numpy.__version__}") for s in seen) and any(s.startswith("Device: ") for s in seen)
    assert any("Online access is off" in s for s in seen)


def test_cli_command_registered(blender, stillflow_ext):
    import sys

    module, _ = stillflow_ext
    ops_pkg = sys.modules[f"{module}.operators"]
    assert ops_pkg._cli_handle is not None  # `blender --command stillflow`


def test_numba_caches_into_the_users_extension_folder_not_the_install(blender, stillflow_ext):
    """Issue 13, case 12: numba wrote its cache into the install folder (read-only, replaced on update)."""
    import os
    from pathlib import Path

    cache = Path(os.environ["NUMBA_CACHE_DIR"]).resolve()
    user = Path(blender.utils.extension_path_user(stillflow_ext[0], path="numba-cache", create=False))
    assert cache == user.resolve() and cache.is_dir()
    assert Path(__file__).resolve().parents[1] not in cache.parents  # not inside the installed extension
