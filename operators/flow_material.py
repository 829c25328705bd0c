"""The loop as a real-time material: the node group "Stillflow Flow", the operators that apply it, and the
flow map export for game engines.

The node group is made of Blender's own shader nodes only (no script at render time; the frame comes in
through a driver whose expression, `frame`, Blender evaluates without Python), so it runs in EEVEE (in the
viewport: an instant preview of the motion while the field is painted) and in Cycles. Shader node groups
cannot take an image as an input, so the group computes where to look and how to mix; the material around
it samples the field image once and the photo twice:

    tau   = fract((frame - start) / N + phase)               where in its own loop this pixel is
    d     = field(uv) * speed * N / (width, height)          the field image: R = dx, G = dy (+ up), px/frame
    uv_a  = uv - tau * d          uv_b = uv + (1 - tau) * d  stream A moved forward, B moved back
    mix   = clamp((tau - 0.5) / crossfade + 0.5, 0, 1)       B's weight
    out   = photo(uv_a) * (1 - mix) + photo(uv_b) * mix

At tau = 0 the output is the photo (stream A, undisplaced) and at tau -> 1 it is the photo again (stream B,
undisplaced), and tau is periodic in the frame with period N, so frame N equals frame 0. Unlike the baked
loop, each stream is displaced along tau x M, a first-order path (the Euler-integrated path follows the
field as it curves), and a pixel is looked up, not splatted: cheaper, at any resolution, no frames on disk.
"""

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from ..core.errors import InputError
from .common import get_field_image, get_photo, reports_errors, unique_datablock_name
from .outputs import image_plane

GROUP = "Stillflow Flow"
GROUP_VERSION = 1
MATERIAL_NODE = "Stillflow Flow"  # the group node's name in a material


def _link(tree, a, b):
    tree.links.new(a, b)


def _math(tree, op, a=None, b=None, clamp=False, x=0):
    n = tree.nodes.new("ShaderNodeMath")
    n.operation = op
    n.use_clamp = clamp
    n.location = (x, 0)
    for i, v in enumerate((a, b)):
        if v is None:
            continue
        if isinstance(v, int | float):
            n.inputs[i].default_value = v
        else:
            _link(tree, v, n.inputs[i])
    return n.outputs[0]


def _vmath(tree, op, a, b=None, scale=None, x=0):
    n = tree.nodes.new("ShaderNodeVectorMath")
    n.operation = op
    n.location = (x, -200)
    _link(tree, a, n.inputs[0])
    if b is not None:
        _link(tree, b, n.inputs[1])
    if scale is not None:
        _link(tree, scale, n.inputs["Scale"])
    return n.outputs[0]


def flow_group() -> bpy.types.ShaderNodeTree:
    """The node group (made once per file; a group of another version is left alone and a new one made)."""
    for ng in bpy.data.node_groups:
        if ng.bl_idname == "ShaderNodeTree" and ng.get("stillflow_flow") == GROUP_VERSION:
            return ng
    ng = bpy.data.node_groups.new(unique_datablock_name(bpy.data.node_groups, GROUP), "ShaderNodeTree")
    ng["stillflow_flow"] = GROUP_VERSION
    ng.description = "Stillflow's two-phase loop: where to sample the photo at this frame, and how to mix"
    face = ng.interface
    inputs = [
        ("Vector", "NodeSocketVector", None, "UV coordinates of the photo"),
        ("Flow", "NodeSocketVector", None, "The motion field image's colour: R = dx, G = dy (+ up), px/frame"),
        ("Frame", "NodeSocketFloat", 1.0, "The scene frame (driven by `frame`)"),
        ("Start", "NodeSocketFloat", 1.0, "The frame the loop starts on"),
        ("Loop Frames", "NodeSocketFloat", 60.0, "Loop length: frame Start + N shows frame Start again"),
        ("Speed", "NodeSocketFloat", 1.0, "Multiplies the motion"),
        ("Phase", "NodeSocketFloat", 0.0, "Where in the loop each pixel is at Start (0-1): spreads the "
                                          "crossfade over the picture so it never pulses all at once"),
        ("Crossfade", "NodeSocketFloat", 0.3, "Part of the loop over which a pixel goes from one phase to the other"),
        ("Width", "NodeSocketFloat", 1920.0, "The field image's width in pixels"),
        ("Height", "NodeSocketFloat", 1080.0, "The field image's height in pixels"),
    ]
    for name, kind, default, tip in inputs:
        s = face.new_socket(name=name, in_out="INPUT", socket_type=kind)
        s.description = tip
        if default is not None:
            s.default_value = default
    face.new_socket(name="Vector A", in_out="OUTPUT", socket_type="NodeSocketVector")
    face.new_socket(name="Vector B", in_out="OUTPUT", socket_type="NodeSocketVector")
    face.new_socket(name="Mix", in_out="OUTPUT", socket_type="NodeSocketFloat")
    face.new_socket(name="Detail Gain", in_out="OUTPUT", socket_type="NodeSocketFloat")
    gi = ng.nodes.new("NodeGroupInput")
    gi.location = (-1200, 0)
    go = ng.nodes.new("NodeGroupOutput")
    go.location = (600, 0)
    i = gi.outputs

    t = _math(ng, "SUBTRACT", i["Frame"], i["Start"], x=-1000)
    t = _math(ng, "DIVIDE", t, i["Loop Frames"], x=-850)
    t = _math(ng, "ADD", t, i["Phase"], x=-700)
    tau = _math(ng, "FRACT", t, x=-550)
    one_minus = _math(ng, "SUBTRACT", 1.0, tau, x=-400)

    size = ng.nodes.new("ShaderNodeCombineXYZ")
    size.location = (-850, -300)
    _link(ng, i["Width"], size.inputs[0])
    _link(ng, i["Height"], size.inputs[1])
    size.inputs[2].default_value = 1.0
    gain = _math(ng, "MULTIPLY", i["Speed"], i["Loop Frames"], x=-850)
    d = _vmath(ng, "SCALE", i["Flow"], scale=gain, x=-700)
    d = _vmath(ng, "DIVIDE", d, size.outputs[0], x=-550)
    flat = ng.nodes.new("ShaderNodeVectorMath")  # no z displacement: only (dx, dy) move the lookup
    flat.operation = "MULTIPLY"
    flat.location = (-400, -300)
    _link(ng, d, flat.inputs[0])
    flat.inputs[1].default_value = (1.0, 1.0, 0.0)
    d = flat.outputs[0]
    back = _vmath(ng, "SCALE", d, scale=tau, x=-250)
    fwd = _vmath(ng, "SCALE", d, scale=one_minus, x=-250)
    _link(ng, _vmath(ng, "SUBTRACT", i["Vector"], back, x=-50), go.inputs["Vector A"])
    _link(ng, _vmath(ng, "ADD", i["Vector"], fwd, x=-50), go.inputs["Vector B"])

    m = _math(ng, "SUBTRACT", tau, 0.5, x=-250)
    m = _math(ng, "DIVIDE", m, i["Crossfade"], x=-100)
    m = _math(ng, "ADD", m, 0.5, clamp=True, x=50)
    _link(ng, m, go.inputs["Mix"])
    # 1 / sqrt((1 - mix)^2 + mix^2): two unrelated detail layers averaged lose that much contrast. The two
    # phases look up points N x speed x |M| pixels apart: where that is under 2 px (still, or slow) their
    # detail is the same and keeps its contrast as it is, so the gain fades to 1 there.
    a = _math(ng, "SUBTRACT", 1.0, m, x=200)
    ss = _math(ng, "ADD", _math(ng, "MULTIPLY", a, a, x=300), _math(ng, "MULTIPLY", m, m, x=300), x=400)
    full = _math(ng, "DIVIDE", 1.0, _math(ng, "SQRT", ss, x=450), x=500)
    length = ng.nodes.new("ShaderNodeVectorMath")
    length.operation = "LENGTH"
    length.location = (200, -400)
    _link(ng, i["Flow"], length.inputs[0])
    apart = _math(ng, "MULTIPLY", length.outputs["Value"], gain, x=300)
    unrelated = _math(ng, "MULTIPLY", apart, 0.5, clamp=True, x=400)
    extra = _math(ng, "MULTIPLY", _math(ng, "SUBTRACT", full, 1.0, x=550), unrelated, x=600)
    _link(ng, _math(ng, "ADD", extra, 1.0, x=650), go.inputs["Detail Gain"])
    return ng


def build_flow_nodes(tree, photo, field, settings, phase_spread: float = 0.7, keep_detail: bool = True):
    """Add the group and the image nodes to ``tree`` (a material's or the world's) and return the colour
    output: the photo looped by the field. The frame comes from a driver on the group node.
    ``keep_detail``: look up a smooth base and a detail layer of the photo (two helper images made from
    it now) and blend the two phases with the detail's contrast kept; else the photo itself, bilinearly
    (softer, but it follows edits of the photo)."""
    nodes = tree.nodes
    coord = nodes.new("ShaderNodeTexCoord")
    coord.location = (-1000, 0)
    # On an object: its UVs. On the world: the window, so the photo is a flat backdrop behind everything.
    uv = coord.outputs["Window" if isinstance(tree.id_data, bpy.types.World) else "UV"]
    field_colour = _lookup(tree, field, uv, "Linear", "Stillflow Field")

    group = nodes.new("ShaderNodeGroup")
    group.node_tree = flow_group()
    group.name = group.label = MATERIAL_NODE
    group.location = (-450, 0)
    _link(tree, uv, group.inputs["Vector"])
    _link(tree, field_colour, group.inputs["Flow"])
    w, h = field.size
    group.inputs["Width"].default_value = float(w)
    group.inputs["Height"].default_value = float(h)
    group.inputs["Loop Frames"].default_value = float(settings.frames)
    group.inputs["Speed"].default_value = float(settings.speed)
    group.inputs["Start"].default_value = float(bpy.context.scene.frame_start)
    if phase_spread > 0:
        noise = nodes.new("ShaderNodeTexNoise")
        noise.location = (-750, -250)
        noise.inputs["Scale"].default_value = 2.0
        noise.inputs["Detail"].default_value = 0.0
        _link(tree, uv, noise.inputs["Vector"])
        # Noise crowds around 0.5 (most of it within 0.3-0.7): stretched to 0-1 so that regions cross over
        # at moments spread through the loop, not most of the picture at once (as core.render.phase_map).
        spread = nodes.new("ShaderNodeMapRange")
        spread.location = (-600, -250)
        spread.clamp = True
        _link(tree, noise.outputs["Fac"], spread.inputs["Value"])
        spread.inputs["From Min"].default_value = 0.3
        spread.inputs["From Max"].default_value = 0.7
        spread.inputs["To Min"].default_value = 0.0
        spread.inputs["To Max"].default_value = float(phase_spread)
        _link(tree, spread.outputs["Result"], group.inputs["Phase"])
    fc = tree.driver_add(f'nodes["{group.name}"].inputs["Frame"].default_value')
    fc.driver.type = "SCRIPTED"
    fc.driver.expression = "frame"  # a simple expression: evaluated without Python, in any render

    if not keep_detail:
        return _two_phases(tree, group, photo, "Linear", "Photo", "Stillflow Mix")
    base_img, detail_img = detail_images(photo)
    base = _two_phases(tree, group, base_img, "Linear", "Base", "Stillflow Mix")
    detail = _two_phases(tree, group, detail_img, "Closest", "Detail", "Stillflow Detail Mix")
    gain = tree.nodes.new("ShaderNodeVectorMath")
    gain.operation = "SCALE"
    gain.location = (350, -200)
    _link(tree, detail, gain.inputs[0])
    _link(tree, group.outputs["Detail Gain"], gain.inputs["Scale"])
    total = tree.nodes.new("ShaderNodeVectorMath")
    total.operation = "ADD"
    total.name = total.label = "Stillflow Colour"
    total.location = (500, 0)
    _link(tree, base, total.inputs[0])
    _link(tree, gain.outputs[0], total.inputs[1])
    return total.outputs[0]


def _lookup(tree, image, vector, interpolation: str, name: str):
    tex = tree.nodes.new("ShaderNodeTexImage")
    tex.name = tex.label = name
    tex.image = image
    tex.interpolation = interpolation
    tex.extension = "EXTEND"
    tex.location = (-150, 250 - 300 * len([n for n in tree.nodes if n.bl_idname == "ShaderNodeTexImage"]))
    _link(tree, vector, tex.inputs["Vector"])
    return tex.outputs["Color"]


def _two_phases(tree, group, image, interpolation: str, kind: str, mix_name: str):
    """``image`` looked up at the group's two phase positions and mixed by its Mix output."""
    a, b = (_lookup(tree, image, group.outputs[f"Vector {k}"], interpolation, f"Stillflow {kind} {k}")
            for k in "AB")
    mix = tree.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.name = mix.label = mix_name
    mix.location = (150, 0)
    _link(tree, group.outputs["Mix"], mix.inputs["Factor"])
    _link(tree, a, mix.inputs[6])
    _link(tree, b, mix.inputs[7])
    return mix.outputs[2]


def detail_images(photo):
    """The photo split once into a smooth base (Gaussian, sigma 1.5 px) and its finest detail, both
    scene-linear float images (packed): the base is looked up bilinearly, the detail from whole pixels, so
    the material keeps the photo's grain in every frame (as the baked "sharp" renderer does)."""
    from ..core.engines.reference import gaussian_blur
    from ..core.imageio import srgb_to_linear
    from . import blender_io

    rgb = srgb_to_linear(blender_io.read_photo(photo)).astype(np.float32)
    base = gaussian_blur(rgb)
    w, h = photo.size
    out = []
    for kind, pixels in (("Base", base), ("Detail", rgb - base)):
        name = f"{photo.name} Flow {kind}"
        image = bpy.data.images.get(name)
        if image is None or tuple(image.size) != (w, h) or not image.is_float:
            image = blender_io.new_float_image(unique_datablock_name(bpy.data.images, name), w, h)
        blender_io.write_photo(image, pixels)
        image.pack()
        out.append(image)
    return out


def flow_material(photo, field, settings, phase_spread: float = 0.7, keep_detail: bool = True):
    """A new material (unlit: emission) that plays the photo's loop."""
    mat = bpy.data.materials.new(unique_datablock_name(bpy.data.materials, f"{photo.name} Flow"))
    tree = mat.node_tree  # materials always have node trees in Blender 5 (use_nodes is deprecated)
    for n in list(tree.nodes):
        tree.nodes.remove(n)
    color = build_flow_nodes(tree, photo, field, settings, phase_spread, keep_detail)
    emit = tree.nodes.new("ShaderNodeEmission")
    emit.location = (400, 0)
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    out.location = (600, 0)
    _link(tree, color, emit.inputs["Color"])
    _link(tree, emit.outputs[0], out.inputs["Surface"])
    mat["stillflow_photo"] = photo.name
    return mat


class STILLFLOW_OT_flow_material(bpy.types.Operator):
    """Play the loop in real time as a material (EEVEE and Cycles): the photo moved by the live field image"""

    bl_idname = "stillflow.flow_material"
    bl_label = "Flow Material"
    bl_options = {"REGISTER", "UNDO"}

    target: EnumProperty(
        name="Apply To",
        items=(("PLANE", "New Image Plane", "A new plane of the photo's aspect with the material"),
               ("SELECTED", "Selected Objects", "The selected mesh objects (their UVs)"),
               ("WORLD", "World", "The world's background")),
        default="PLANE",
    )
    phase_spread: FloatProperty(
        name="Phase Spread", default=0.7, min=0.0, max=1.0,
        description="How far apart in the loop different regions cross from one phase to the other "
                    "(0: everywhere at once, which pulses)")
    keep_detail: BoolProperty(
        name="Keep Detail", default=True,
        description="Keep the photo's grain in every frame (looks up a smooth base and a detail layer made "
                    "from the photo now: make the material again after editing the photo)")

    @reports_errors
    def execute(self, context):
        photo = get_photo(context)
        field = get_field_image(context, photo)
        if not field.is_float:
            raise InputError(f"'{field.name}' is not a float image: predict the motion first")
        settings = context.scene.stillflow
        if self.target == "WORLD":
            world = context.scene.world or bpy.data.worlds.new("World")
            context.scene.world = world
            if world.node_tree is None:  # Blender 5 gives new worlds a node tree (use_nodes is deprecated)
                world.use_nodes = True
            tree = world.node_tree
            color = build_flow_nodes(tree, photo, field, settings, self.phase_spread, self.keep_detail)
            bg = next((n for n in tree.nodes if n.type == "BACKGROUND"), None) or tree.nodes.new("ShaderNodeBackground")
            _link(tree, color, bg.inputs["Color"])
            out = next((n for n in tree.nodes if n.type == "OUTPUT_WORLD"), None) or tree.nodes.new("ShaderNodeOutputWorld")
            _link(tree, bg.outputs[0], out.inputs["Surface"])
            self.report({"INFO"}, f"Flow material on the world '{world.name}'")
            return {"FINISHED"}
        mat = flow_material(photo, field, settings, self.phase_spread, self.keep_detail)
        if self.target == "PLANE":
            objs = [image_plane(context, photo)]
        else:
            objs = [o for o in context.selected_objects if o.type == "MESH"]
            if not objs:
                bpy.data.materials.remove(mat)
                raise InputError("No mesh object selected: select one, or apply to a new image plane")
        for obj in objs:
            obj.data.materials.clear()
            obj.data.materials.append(mat)
        self.report({"INFO"}, f"Material '{mat.name}' on {len(objs)} object(s)")
        return {"FINISHED"}


class STILLFLOW_OT_export_flowmap(bpy.types.Operator, ExportHelper):
    """Write the motion field as a flow map for game engines: an 8-bit PNG (128 = still, its scale in the
    file and a .json beside it) or a float EXR"""

    bl_idname = "stillflow.export_flowmap"
    bl_label = "Export Flow Map"
    filename_ext = ".png"
    filter_glob: StringProperty(default="*.png;*.exr", options={"HIDDEN"})
    y: EnumProperty(
        name="Green",
        items=(("down", "+Y Down", "Unreal, Godot, DirectX-style UVs (v down)"),
               ("up", "+Y Up", "Unity, Blender, OpenGL-style UVs (v up)")),
        default="down")

    @reports_errors
    def execute(self, context):
        from ..core.flowmap import write_flowmap
        from .blender_io import read_field

        photo = get_photo(context)
        field = read_field(get_field_image(context, photo))
        path, sidecar = write_flowmap(self.filepath, field, self.y)
        self.report({"INFO"}, f"Wrote {path.name} and {sidecar.name}")
        return {"FINISHED"}


classes = (STILLFLOW_OT_flow_material, STILLFLOW_OT_export_flowmap)
register, unregister = bpy.utils.register_classes_factory(classes)
