"""Operators for the moving region: propose it from the motion field, and snap a rough one to the photo's
edges. Both write the hints Mask's motion layer (`mask_hints.write_region`), undoably; neither runs the model
(Region from Motion reads the field Predict Motion wrote), so a redo-panel tweak is instant."""

import bpy
from bpy.props import BoolProperty, FloatProperty

from ..core import regions
from ..core.errors import InputError
from ..core.hints import rasterize_polygons
from . import blender_io, mask_hints
from .common import get_field_image, get_photo, reports_errors
from .ops_hints import add_photo_hints, show_mask


def _hints_mask(context, photo):
    """The scene's hints Mask, shown; made when there is none."""
    mask = context.scene.stillflow.hints
    if mask is None:
        return add_photo_hints(context, photo)
    show_mask(context, mask)
    return mask


class STILLFLOW_OT_region_from_motion(bpy.types.Operator):
    """Draw the region the motion field moves, snapped to the photo's edges, into the hints Mask's motion layer
    (its still holes into "freeze (holes)"): accept it, edit it, or snap a rough stroke of your own"""

    bl_idname = "stillflow.region_from_motion"
    bl_label = "Region from Motion"
    bl_options = {"REGISTER", "UNDO"}

    @reports_errors
    def execute(self, context):
        photo = get_photo(context)
        width, height = photo.size
        field = blender_io.read_field(get_field_image(context, photo), (height, width))
        region = regions.propose_hints(blender_io.read_photo(photo), field)
        if not region.motion_polygons:
            raise InputError("The motion field moves nothing that would make a region: predict the motion "
                             "again, or draw the region in the motion layer and press Snap to Edges")
        mask = _hints_mask(context, photo)
        mask_hints.write_region(mask, region, width, height)
        self.report({"INFO"}, f"Region from motion: {len(region.motion_polygons)} moving part(s), "
                              f"{len(region.freeze_polygons)} still hole(s) in '{mask.name}'")
        return {"FINISHED"}


class STILLFLOW_OT_snap_region(bpy.types.Operator):
    """Move the motion layer's shapes onto the photo's edges: draw loosely around a lake, a sky or a
    waterfall and snap (the selected shapes, or all when none is selected)"""

    bl_idname = "stillflow.snap_region"
    bl_label = "Snap to Edges"
    bl_options = {"REGISTER", "UNDO"}

    looseness: FloatProperty(
        name="Looseness", default=4.0, min=0.5, max=15.0, subtype="PERCENTAGE", precision=1,
        description="How far from the edge the shapes may be drawn, in percent of the photo's long side")
    selected_only: BoolProperty(name="Selected Only", default=True,
                                description="Snap only the shapes with a selected point, when there are any")

    @reports_errors
    def execute(self, context):
        photo = get_photo(context)
        width, height = photo.size
        mask = context.scene.stillflow.hints
        splines = mask_hints.region_splines(mask, selected_only=self.selected_only) if mask else []
        if mask and not splines:
            splines = mask_hints.region_splines(mask)
        if not splines:
            raise InputError("No shape to snap: draw a closed shape around the moving region in the hints "
                             "Mask's motion layer (or press Region from Motion)")
        polygons = [mask_hints.spline_polygon(sp, width, height) for sp in splines]
        rough = rasterize_polygons(polygons, (height, width))
        snapped = regions.snap_to_edges(blender_io.read_photo(photo), rough, band=self.looseness / 100.0)
        region = regions.region_hints(snapped, (width, height))
        if not region.motion_polygons:
            raise InputError("Snapping left nothing of the shapes: draw them around the region, not inside "
                             "its edge, or lower Looseness")
        every = len(splines) == len(mask_hints.region_splines(mask))
        mask_hints.write_region(mask, region, width, height, replace=None if every else splines)
        self.report({"INFO"}, f"Snapped {len(splines)} shape(s) to {len(region.motion_polygons)} region(s)")
        return {"FINISHED"}


classes = (STILLFLOW_OT_region_from_motion, STILLFLOW_OT_snap_region)
register, unregister = bpy.utils.register_classes_factory(classes)
