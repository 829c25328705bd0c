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
    assert settings.motion_source == "BOTH" and settings.outputs == {"SEQUENCER"}
    assert bpy.context.window_manager.stillflow.running is False
    for name in ("predict_motion", "render_loop", "field_to_mesh", "field_from_mesh", "new_hints",
                 "import_hints", "export_hints", "install_gpu", "remove_gpu"):
        assert hasattr(bpy.types, f"STILLFLOW_OT_{name}"), name
    assert bpy.types.STILLFLOW_PT_image.bl_space_type == "IMAGE_EDITOR"
    assert bpy.types.STILLFLOW_PT_view3d.bl_category == "Stillflow"


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


def test_install_gpu_refuses_offline(blender):
    bpy = blender
    assert bpy.app.online_access is False  # the bpy module's default
    assert not bpy.ops.stillflow.install_gpu.poll()
