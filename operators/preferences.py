"""Add-on preferences: device, model override, and the optional "Install GPU acceleration" button."""

import logging
import os
import shutil
import subprocess

import bpy
from bpy.props import EnumProperty, StringProperty

from . import ADDON_PACKAGE, deps

log = logging.getLogger(__name__)

DEVICES = (
    ("auto", "Automatic", "Use a GPU when one can be used, else the CPU"),
    ("cpu", "CPU", "Always use the CPU"),
    ("cuda", "CUDA", "Use an NVIDIA GPU (needs GPU acceleration installed)"),
)


def get_preferences(context=None) -> "StillflowPreferences | None":
    """The one accessor for this extension's preferences (None when not enabled as an add-on)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon else None


class StillflowPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    device: EnumProperty(name="Device", items=DEVICES, default="auto")
    model_path: StringProperty(
        name="Model",
        subtype="FILE_PATH",
        default="",
        description="Use this ONNX motion model instead of the bundled one",
    )
    install_status: StringProperty(name="Install Status", default="", options={"SKIP_SAVE"})

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "device")
        layout.prop(self, "model_path")

        box = layout.box()
        box.label(text="Found", icon="INFO")
        versions = deps.found_versions()
        col = box.column(align=True)
        for name in deps.REPORTED:
            col.label(text=f"{name}: {versions.get(name, 'not installed')}")
        col.label(text=f"onnxruntime loads from: {deps.imported_from('onnxruntime')}")
        row = box.row()
        row.label(text=f"Device: {deps.describe_device(self.device)}")
        row.operator(STILLFLOW_OT_refresh_device.bl_idname, text="", icon="FILE_REFRESH")

        box = layout.box()
        box.label(text="GPU acceleration (optional: torch + onnxruntime-gpu, several GB)")
        if not bpy.app.online_access:
            box.label(text="Online access is off: allow it in Preferences > System > Network", icon="ERROR")
        row = box.row()
        row.operator(STILLFLOW_OT_install_gpu.bl_idname, icon="IMPORT")
        row.operator(STILLFLOW_OT_remove_gpu.bl_idname, icon="TRASH")
        if self.install_status:
            box.label(text=self.install_status)


class STILLFLOW_OT_refresh_device(bpy.types.Operator):
    """Look again for GPU support"""

    bl_idname = "stillflow.refresh_device"
    bl_label = "Refresh Device"

    def execute(self, context):
        prefs = get_preferences(context)
        device = deps.describe_device(prefs.device if prefs else "auto", refresh=True)
        context.window_manager.stillflow.device = device
        self.report({"INFO"}, f"Stillflow device: {device}")
        return {"FINISHED"}


class STILLFLOW_OT_install_gpu(bpy.types.Operator):
    """Download and install pinned torch and onnxruntime-gpu into this extension's own folder
    (needs online access; undo with Remove)"""

    bl_idname = "stillflow.install_gpu"
    bl_label = "Install GPU Acceleration"

    _timer = None
    _proc = None
    _commands = ()

    @classmethod
    def poll(cls, context):
        if not bpy.app.online_access:
            cls.poll_message_set("Online access is off: allow it in Preferences > System > Network")
            return False
        return True

    def invoke(self, context, event):
        self._commands = deps.pip_commands(deps.user_site_packages(create=True))
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        self._set_status(context, "Installing GPU acceleration...")
        return {"RUNNING_MODAL"}

    def execute(self, context):
        for command in deps.pip_commands(deps.user_site_packages(create=True)):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                self.report({"ERROR"}, f"pip failed: {_last_line(done.stderr)}")
                return {"CANCELLED"}
        return self._done(context)

    def modal(self, context, event):
        if event.type == "ESC":
            if self._proc:
                self._proc.terminate()
            return self._finish(context, "Install cancelled", {"CANCELLED"})
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if self._proc is None:
            if not self._commands:
                deps.add_user_site_packages()
                return self._finish(context, "Installed: restart Blender to use the GPU", self._done(context))
            command = self._commands.pop(0)
            self._set_status(context, f"Running: pip install {command[-1]}")
            self._proc = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
        elif self._proc.poll() is not None:
            proc, self._proc = self._proc, None
            if proc.returncode != 0:
                msg = f"pip failed: {_last_line(proc.stderr.read())}"
                self.report({"ERROR"}, msg)
                return self._finish(context, msg, {"CANCELLED"})
        return {"PASS_THROUGH"}

    def _done(self, context):
        deps.add_user_site_packages()
        deps.describe_device(refresh=True)
        self.report({"INFO"}, "GPU acceleration installed; restart Blender if torch was already loaded")
        return {"FINISHED"}

    def _set_status(self, context, text):
        prefs = get_preferences(context)
        if prefs:
            prefs.install_status = text
        context.window_manager.stillflow.status = text

    def _finish(self, context, text, result):
        if self._timer:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        self._set_status(context, text)
        return result


class STILLFLOW_OT_remove_gpu(bpy.types.Operator):
    """Delete the GPU acceleration packages installed by Stillflow (Blender's own Python is untouched)"""

    bl_idname = "stillflow.remove_gpu"
    bl_label = "Remove"

    def execute(self, context):
        path = deps.user_site_packages()
        if not os.path.isdir(path):
            self.report({"INFO"}, "Nothing to remove")
            return {"CANCELLED"}
        try:
            shutil.rmtree(path)
        except OSError as err:
            self.report({"ERROR"}, f"Could not remove {path} ({err}); restart Blender and try again")
            return {"CANCELLED"}
        self.report({"INFO"}, "GPU acceleration removed; restart Blender to unload it")
        return {"FINISHED"}


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


classes = (
    StillflowPreferences,
    STILLFLOW_OT_refresh_device,
    STILLFLOW_OT_install_gpu,
    STILLFLOW_OT_remove_gpu,
)
register, unregister = bpy.utils.register_classes_factory(classes)
