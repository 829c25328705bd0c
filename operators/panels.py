"""Sidebar panels ("Stillflow" tab) in the Image Editor and the 3D Viewport; one draw function for both."""

import bpy

from .flow_material import STILLFLOW_OT_export_flowmap, STILLFLOW_OT_flow_material
from .ops_field import STILLFLOW_OT_field_from_mesh, STILLFLOW_OT_field_to_mesh, STILLFLOW_OT_predict_motion
from .ops_hints import STILLFLOW_OT_export_hints, STILLFLOW_OT_import_hints, STILLFLOW_OT_new_hints
from .ops_render import STILLFLOW_OT_render_loop


def draw_stillflow(layout, context) -> None:
    settings = context.scene.stillflow
    status = context.window_manager.stillflow
    layout.use_property_split = True
    layout.use_property_decorate = False

    col = layout.column()
    col.prop(settings, "image")
    col.prop(settings, "motion_source")
    if settings.motion_source == "FIELD":
        col.prop(settings, "field_image")
    else:
        row = col.row(align=True)
        row.prop(settings, "hints")
        row.operator(STILLFLOW_OT_new_hints.bl_idname, text="", icon="ADD")
        row = col.row(align=True)
        row.operator(STILLFLOW_OT_import_hints.bl_idname, text="Import", icon="IMPORT")
        row.operator(STILLFLOW_OT_export_hints.bl_idname, text="Export", icon="EXPORT")
        if settings.hints is not None:
            col.prop(settings, "arrow_frames")
            col.prop(settings, "freeze_radius")
        col.prop(settings, "mask_image")
        col.prop(settings, "feather_px")
        col.operator(STILLFLOW_OT_predict_motion.bl_idname, icon="FORCE_WIND")

    if settings.field_image is not None:
        box = layout.box()
        box.label(text=f"Field: {settings.field_image.name}", icon="IMAGE_DATA")
        legend = box.column(align=True)
        legend.label(text="Red = dx (+ right), green = dy (+ up), px/frame")
        legend.label(text="Negative values look black: sample (right-drag) to read them")

    col = layout.column(heading="Loop")
    col.prop(settings, "frames")
    col.prop(settings, "fps")
    col.prop(settings, "speed")
    col.prop(settings, "renderer")

    col = layout.column(heading="Output")
    col.prop(settings, "output_format")
    if settings.output_format == "MP4":
        col.prop(settings, "mp4_quality")
    col.prop(settings, "output_dir")
    col.prop(settings, "overwrite")
    col.prop(settings, "fit_scene")
    row = col.row(align=True)
    row.prop(settings, "outputs")

    if status.running:
        layout.progress(factor=status.progress, type="BAR", text=status.status)
    else:
        layout.operator(STILLFLOW_OT_render_loop.bl_idname, icon="RENDER_ANIMATION")
        if status.status:
            layout.label(text=status.status)

    col = layout.column(align=True)
    col.label(text=f"Device: {status.device or 'not used yet'}")
    if status.last_run_seconds:
        col.label(text=f"Last run: {status.last_run_seconds:.1f} s")

    box = layout.box()
    box.label(text="Real Time (flow material, flow map)")
    row = box.row(align=True)
    row.operator_menu_enum(STILLFLOW_OT_flow_material.bl_idname, "target", text="Flow Material", icon="MATERIAL")
    row.operator(STILLFLOW_OT_export_flowmap.bl_idname, text="Flow Map", icon="EXPORT")

    box = layout.box()
    box.label(text="Field as Mesh (Geometry Nodes)")
    box.prop(settings, "mesh_step")
    row = box.row(align=True)
    row.operator(STILLFLOW_OT_field_to_mesh.bl_idname)
    row.operator(STILLFLOW_OT_field_from_mesh.bl_idname)


class STILLFLOW_PT_image(bpy.types.Panel):
    bl_label = "Stillflow"
    bl_idname = "STILLFLOW_PT_image"
    bl_space_type = "IMAGE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Stillflow"

    def draw(self, context):
        draw_stillflow(self.layout, context)


class STILLFLOW_PT_view3d(bpy.types.Panel):
    bl_label = "Stillflow"
    bl_idname = "STILLFLOW_PT_view3d"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Stillflow"

    def draw(self, context):
        draw_stillflow(self.layout, context)


classes = (STILLFLOW_PT_image, STILLFLOW_PT_view3d)
register, unregister = bpy.utils.register_classes_factory(classes)
