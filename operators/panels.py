"""Sidebar panels ("Stillflow" tab) in the Image Editor and the 3D Viewport, in Blender's manner: a main
panel (the photo, where the motion comes from, Predict) and sub-panels Hints, Loop, Output, and, folded,
Real Time and Field as Mesh. One draw function per section serves both editors; `draw_stillflow` draws
them all in order (what a script or test sees of the whole panel)."""

import bpy

from .flow_material import STILLFLOW_OT_export_flowmap, STILLFLOW_OT_flow_material
from .ops_field import STILLFLOW_OT_field_from_mesh, STILLFLOW_OT_field_to_mesh, STILLFLOW_OT_predict_motion
from .ops_hints import STILLFLOW_OT_export_hints, STILLFLOW_OT_import_hints, STILLFLOW_OT_new_hints
from .ops_regions import STILLFLOW_OT_region_from_motion, STILLFLOW_OT_snap_region
from .ops_render import STILLFLOW_OT_render_loop
from .overlay import OVERLAY, STILLFLOW_OT_show_motion
from .preview import PREVIEW_IMAGE, STATE, STILLFLOW_OT_live_preview


def _split(layout):
    layout.use_property_split = True
    layout.use_property_decorate = False
    return layout


def draw_main(layout, context) -> None:
    settings = context.scene.stillflow
    status = context.window_manager.stillflow
    col = _split(layout).column()
    col.prop(settings, "image")
    col.prop(settings, "motion_source")
    if settings.motion_source == "FIELD":
        col.prop(settings, "field_image")
    elif not status.running:
        col.operator(STILLFLOW_OT_predict_motion.bl_idname, icon="FORCE_WIND")
    if settings.field_image is not None:
        box = layout.box()
        box.label(text=f"Field: {settings.field_image.name}", icon="IMAGE_DATA")
        legend = box.column(align=True)
        legend.label(text="Red = dx (+ right), green = dy (+ up), px/frame")
        legend.label(text="Negative values look black: sample (right-drag) to read them")
    if status.running:
        layout.progress(factor=status.progress, type="BAR", text=status.status)
    elif status.status:
        layout.label(text=status.status)
    row = layout.row(align=True)
    row.operator(STILLFLOW_OT_live_preview.bl_idname, text="Stop Preview" if STATE.on else "Live Preview",
                 icon="PAUSE" if STATE.on else "PLAY").action = "TOGGLE"
    if STATE.on:
        row.operator(STILLFLOW_OT_live_preview.bl_idname, text="", icon="FILE_REFRESH").action = "REFRESH"
    row.operator(STILLFLOW_OT_show_motion.bl_idname, text="Hide Motion" if OVERLAY.handle else "Show Motion",
                 icon="FORWARD")
    if OVERLAY.handle and OVERLAY.scale:
        layout.label(text=f"White arrows: 1 px/frame = {OVERLAY.scale:.0f} px; yellow: hints; cyan: frozen")
    if STATE.on:
        if STATE.error:
            layout.label(text=STATE.error, icon="ERROR")
        elif STATE.frames:
            layout.label(text=f"'{PREVIEW_IMAGE}': {len(STATE.frames)} frames, ready "
                              f"{STATE.ready_seconds:.1f} s after the edit")


def draw_hints(layout, context) -> None:
    settings = context.scene.stillflow
    col = _split(layout).column()
    row = col.row(align=True)
    row.prop(settings, "hints")
    row.operator(STILLFLOW_OT_new_hints.bl_idname, text="", icon="ADD")
    row = col.row(align=True)
    row.operator(STILLFLOW_OT_import_hints.bl_idname, text="Import", icon="IMPORT")
    row.operator(STILLFLOW_OT_export_hints.bl_idname, text="Export", icon="EXPORT")
    row = col.row(align=True)
    row.operator(STILLFLOW_OT_region_from_motion.bl_idname, text="Region from Motion", icon="MOD_FLUIDSIM")
    row.operator(STILLFLOW_OT_snap_region.bl_idname, text="Snap to Edges", icon="SNAP_ON")
    if settings.hints is not None:
        col.prop(settings, "arrow_frames")
        col.prop(settings, "freeze_radius")
    col.prop(settings, "mask_image")
    col.prop(settings, "feather_px")
    col.prop(settings, "sky")


def draw_loop(layout, context) -> None:
    settings = context.scene.stillflow
    col = _split(layout).column()
    col.prop(settings, "frames")
    col.prop(settings, "fps")
    col.prop(settings, "speed")
    col.prop(settings, "renderer")


def draw_output(layout, context) -> None:
    settings = context.scene.stillflow
    status = context.window_manager.stillflow
    col = _split(layout).column()
    col.prop(settings, "output_format")
    if settings.output_format == "MP4":
        col.prop(settings, "mp4_quality")
    col.prop(settings, "output_dir")
    col.prop(settings, "overwrite")
    col.prop(settings, "fit_scene")
    row = col.row(align=True)
    row.prop(settings, "outputs")
    if not status.running:
        layout.operator(STILLFLOW_OT_render_loop.bl_idname, icon="RENDER_ANIMATION")
    col = layout.column(align=True)
    col.label(text=f"Device: {status.device or 'not used yet'}")
    if status.last_run_seconds:
        col.label(text=f"Last run: {status.last_run_seconds:.1f} s")


def draw_realtime(layout, context) -> None:
    row = layout.row(align=True)
    row.operator_menu_enum(STILLFLOW_OT_flow_material.bl_idname, "target", text="Flow Material", icon="MATERIAL")
    row.operator(STILLFLOW_OT_export_flowmap.bl_idname, text="Flow Map", icon="EXPORT")


def draw_mesh(layout, context) -> None:
    _split(layout).prop(context.scene.stillflow, "mesh_step")
    row = layout.row(align=True)
    row.operator(STILLFLOW_OT_field_to_mesh.bl_idname)
    row.operator(STILLFLOW_OT_field_from_mesh.bl_idname)


SECTIONS = (
    # (id suffix, label, draw, folded by default, shown when)
    ("hints", "Hints", draw_hints, False, lambda s: s.motion_source != "FIELD"),
    ("loop", "Loop", draw_loop, False, None),
    ("output", "Output", draw_output, False, None),
    ("realtime", "Real Time", draw_realtime, True, None),
    ("mesh", "Field as Mesh", draw_mesh, True, None),
)


def draw_stillflow(layout, context) -> None:
    """The whole panel, every section in order."""
    draw_main(layout, context)
    settings = context.scene.stillflow
    for _, label, draw, _, shown in SECTIONS:
        if shown is None or shown(settings):
            layout.label(text=label)
            draw(layout.column(), context)


def _panels(space: str, suffix: str) -> list[type]:
    """The main panel and its sub-panels for one editor."""
    main_id = f"STILLFLOW_PT_{suffix}"
    main = type(main_id, (bpy.types.Panel,), {
        "bl_label": "Stillflow", "bl_idname": main_id, "bl_space_type": space, "bl_region_type": "UI",
        "bl_category": "Stillflow", "draw": lambda self, context: draw_main(self.layout, context),
    })
    out = [main]
    for key, label, draw, folded, shown in SECTIONS:
        attrs = {
            "bl_label": label, "bl_idname": f"{main_id}_{key}", "bl_space_type": space, "bl_region_type": "UI",
            "bl_category": "Stillflow", "bl_parent_id": main_id,
            "draw": (lambda d: lambda self, context: d(self.layout, context))(draw),
        }
        if folded:
            attrs["bl_options"] = {"DEFAULT_CLOSED"}
        if shown is not None:
            attrs["poll"] = classmethod((lambda f: lambda cls, context: f(context.scene.stillflow))(shown))
        out.append(type(f"{main_id}_{key}", (bpy.types.Panel,), attrs))
    return out


classes = tuple(_panels("IMAGE_EDITOR", "image") + _panels("VIEW_3D", "view3d"))
register, unregister = bpy.utils.register_classes_factory(classes)
