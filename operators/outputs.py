"""Where a rendered loop goes in Blender besides its files: a sequencer strip, an animated texture on a
material or the world. All functions run on the main thread. (The files themselves are written by the
pipeline's sinks: core/sinks.py, operators/bpy_sinks.py.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import bpy

from .common import temp_output_base, unique_datablock_name
from .encode import add_image_strip

log = logging.getLogger(__name__)

def add_strip(scene, frame_paths: list[Path], channel: int | None = None, start: int | None = None) -> list:
    """Image strips of the frames from the current frame (or ``start``), in the first free channel above
    every strip (or ``channel``): one loop, repeated end to end up to the scene's last frame, so the loop
    plays over the whole range."""
    start = scene.frame_current if start is None else start
    first = add_image_strip(scene, frame_paths, channel=channel, frame_start=start)
    strips = [first]
    n = len(frame_paths)
    while start + n * len(strips) <= scene.frame_end and len(strips) < MAX_REPEATS:
        strips.append(add_image_strip(scene, frame_paths, channel=first.channel,
                                      frame_start=start + n * len(strips)))
    return strips


MAX_REPEATS = 1000  # strips of one loop at most (a scene range far longer than the loop)


def fit_scene(scene, frames: int, fps: float) -> None:
    """The scene's range to one loop from the current frame, and its frame rate to the loop's: played with
    looping on, the timeline is the seamless loop."""
    from .encode import _set_fps

    scene.frame_start = scene.frame_current
    scene.frame_end = scene.frame_current + frames - 1
    _set_fps(scene, fps)


def sequence_image(name: str, frame_paths: list[Path]):
    """An image datablock reading the frames as a sequence."""
    image = bpy.data.images.load(str(frame_paths[0]), check_existing=False)
    image.name = unique_datablock_name(bpy.data.images, name)
    image.source = "SEQUENCE"
    return image


def _wire_image_user(node, frames: int, frame_start: int) -> None:
    node.image_user.frame_duration = frames
    node.image_user.frame_start = frame_start
    node.image_user.frame_offset = 0
    node.image_user.use_cyclic = True
    node.image_user.use_auto_refresh = True


def add_material(name: str, image, frames: int, frame_start: int, objects) -> bpy.types.Material:
    """A new emissive material showing the loop, appended to each object's material slots."""
    mat = bpy.data.materials.new(unique_datablock_name(bpy.data.materials, name))
    if mat.node_tree is None:  # 5.0 creates the node tree already; use_nodes is deprecated
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    tex = nodes.new("ShaderNodeTexImage")
    tex.name = tex.label = "Stillflow Loop"
    tex.image = image
    tex.location = (bsdf.location.x - 400, bsdf.location.y)
    _wire_image_user(tex, frames, frame_start)
    links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    links.new(tex.outputs["Color"], bsdf.inputs["Emission Color"])
    bsdf.inputs["Emission Strength"].default_value = 1.0
    for obj in objects:
        show_material(obj, mat)
    return mat


def show_material(obj, mat) -> None:
    """Give a mesh ``mat`` in a new slot and put every face on it (the faces' old slots and materials stay,
    for the artist to reassign; Ctrl-Z undoes it), so the material shows, not just sits in a slot."""
    if obj.type != "MESH":
        return
    obj.data.materials.append(mat)
    index = len(obj.data.materials) - 1
    obj.data.polygons.foreach_set("material_index", [index] * len(obj.data.polygons))
    obj.data.update()
    obj.active_material_index = index


def add_world(scene, name: str, image, frames: int, frame_start: int) -> bpy.types.World:
    """A new world whose background is the loop, screen-aligned (window coordinates); set as the scene's."""
    world = bpy.data.worlds.new(unique_datablock_name(bpy.data.worlds, name))
    if world.node_tree is None:
        world.use_nodes = True
    nodes, links = world.node_tree.nodes, world.node_tree.links
    background = next(n for n in nodes if n.type == "BACKGROUND")
    coords = nodes.new("ShaderNodeTexCoord")
    tex = nodes.new("ShaderNodeTexImage")
    tex.name = tex.label = "Stillflow Loop"
    tex.image = image
    tex.extension = "EXTEND"
    coords.location = (background.location.x - 600, background.location.y)
    tex.location = (background.location.x - 350, background.location.y)
    _wire_image_user(tex, frames, frame_start)
    links.new(coords.outputs["Window"], tex.inputs["Vector"])
    links.new(tex.outputs["Color"], background.inputs["Color"])
    scene.world = world
    return world


def image_plane(context, photo):
    """A new plane with the photo's aspect (1 unit tall), UV-mapped, at the 3D cursor."""
    w, h = photo.size
    aspect = w / h if h else 1.0
    mesh = bpy.data.meshes.new(unique_datablock_name(bpy.data.meshes, f"{photo.name} Plane"))
    x, y = aspect / 2.0, 0.5
    mesh.from_pydata([(-x, -y, 0), (x, -y, 0), (x, y, 0), (-x, y, 0)], [], [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new(name="UVMap")
    for loop, co in zip(mesh.loops, ((0, 0), (1, 0), (1, 1), (0, 1)), strict=True):
        uv.data[loop.index].uv = co
    obj = bpy.data.objects.new(mesh.name, mesh)
    obj.location = context.scene.cursor.location
    (context.collection or context.scene.collection).objects.link(obj)
    return obj


# ------------------------------------------------------------------------------ paths that move with the .blend
#
# Every strip and image Stillflow makes carries the frames folder it reads (custom property FRAMES_TAG), and
# points at it by a path relative to the .blend once the .blend is saved, so the folder holding both can be
# moved. A render of an unsaved file goes to a temporary folder; on its first save (save_pre, which knows
# the file's new path) those frames are moved into `stillflow/` next to it and repointed, before the file
# is written.

FRAMES_TAG = "stillflow_frames"


def tag_frames(folder: Path, *users) -> None:
    """Record the frames folder on the strips and images made for it, and point them at it."""
    for user in users:
        user[FRAMES_TAG] = str(Path(folder).absolute())
    point_users(Path(folder), users, bpy.data.filepath)


def _path_for(path: Path, blend_path: str) -> str:
    """``path`` relative to the .blend at ``blend_path`` ("//..."), or absolute when there is none (or
    another drive)."""
    if not blend_path:
        return str(path)
    try:
        return bpy.path.relpath(str(path), start=str(Path(blend_path).parent))
    except ValueError:  # Windows: another drive
        return str(path)


def point_users(folder: Path, users, blend_path: str) -> None:
    for user in users:
        if isinstance(user, bpy.types.Image):
            files = sorted(folder.glob("frame_*"))
            if files:
                user.filepath = _path_for(files[0], blend_path)
        else:  # an image strip
            user.directory = _path_for(folder, blend_path).rstrip("/\\") + "/"


def _strips():
    """Every strip of every scene in the open file."""
    for scene in bpy.data.scenes:
        if scene.sequence_editor is not None:
            yield from scene.sequence_editor.strips_all


def _tagged():
    """(folder, [strips and images reading it]) for everything Stillflow made in the open file."""
    found: dict[str, list] = {}
    for user in [*bpy.data.images, *_strips()]:
        if user.get(FRAMES_TAG):
            found.setdefault(user[FRAMES_TAG], []).append(user)
    return found


def _inside(path: str, folder: Path) -> bool:
    if not path:
        return False
    p = Path(bpy.path.abspath(path)).absolute()
    return p == folder or folder in p.parents


def users_of(folder: Path) -> tuple[list, list]:
    """(Stillflow's own strips and images reading ``folder``, everything else in the open file that does)."""
    folder = Path(folder).absolute()
    own = _tagged().get(str(folder), [])
    others = [i for i in bpy.data.images if not i.get(FRAMES_TAG) and i.source in {"FILE", "SEQUENCE", "MOVIE"}
              and _inside(i.filepath, folder)]
    for s in _strips():
        if s.get(FRAMES_TAG):
            continue
        path = getattr(s, "directory", None) if s.type == "IMAGE" else getattr(s, "filepath", None)
        if path and _inside(path, folder):
            others.append(s)
    return own, others


def check_not_in_use(folder: Path) -> None:
    """Refuse to replace a frames folder that something of the artist's (not Stillflow's own strips and
    images, which are updated) still reads."""
    from ..core.errors import InputError

    _, others = users_of(folder)
    if others:
        names = ", ".join(f"'{o.name}'" for o in others[:3]) + (" ..." if len(others) > 3 else "")
        raise InputError(f"{folder.name} is in use by {names}: Overwrite would replace frames they show. "
                         "Choose another output folder, or remove them first")


def replace_own_strips(scene, folder: Path) -> tuple[int | None, int | None]:
    """Remove this scene's Stillflow strips of ``folder`` (a re-render replaces them); their channel and
    start, for the new ones."""
    own, _ = users_of(folder)
    strips = [s for s in own if isinstance(s, bpy.types.Strip) and s.id_data == scene]
    if not strips:
        return None, None
    channel, start = strips[0].channel, int(min(s.frame_start for s in strips))
    for s in strips:
        scene.sequence_editor.strips.remove(s)
    return channel, start


def image_nodes(holder, image) -> list:
    """The image texture nodes of a material or world that show ``image``."""
    if holder is None or holder.node_tree is None:
        return []
    return [n for n in holder.node_tree.nodes if n.bl_idname == "ShaderNodeTexImage" and n.image == image]


def own_image(folder: Path, frames: int):
    """Stillflow's sequence image of ``folder``, reloaded, with every texture node showing it set to
    ``frames`` (a re-render reuses it); None when there is none."""
    own, _ = users_of(folder)
    image = next((i for i in own if isinstance(i, bpy.types.Image)), None)
    if image is None:
        return None
    image.reload()
    for holder in list(bpy.data.materials) + list(bpy.data.worlds):
        for node in image_nodes(holder, image):
            node.image_user.frame_duration = frames
    return image


def material_showing(image):
    return next((m for m in bpy.data.materials if image_nodes(m, image)), None)


def _free_name(folder: Path) -> Path:
    if not folder.exists():
        return folder
    i = 2
    while (folder.parent / f"{folder.name}_{i}").exists():
        i += 1
    return folder.parent / f"{folder.name}_{i}"


@bpy.app.handlers.persistent
def carry_outputs(filepath=None, *_args):
    """Before a save to ``filepath``: frames rendered into the temporary folder move next to the .blend
    (`stillflow/`), and every tagged strip and image points at its frames relative to the .blend."""
    import shutil

    blend = filepath or bpy.data.filepath
    if not blend:
        return
    temp = temp_output_base().absolute()
    target_base = Path(blend).absolute().parent / "stillflow"
    for folder_s, users in _tagged().items():
        folder = Path(folder_s)
        if folder.is_dir() and temp in folder.parents:
            dest = _free_name(target_base / folder.name)
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(folder, dest)
            except OSError as err:
                log.warning("could not carry %s next to the .blend (%s): it stays where it is", folder, err)
            else:
                shutil.rmtree(folder, ignore_errors=True)
                log.info("moved %s to %s", folder, dest)
                folder = dest
                for user in users:
                    user[FRAMES_TAG] = str(dest)
        point_users(folder, users, blend)


def register():
    bpy.app.handlers.save_pre.append(carry_outputs)


def unregister():
    if carry_outputs in bpy.app.handlers.save_pre:
        bpy.app.handlers.save_pre.remove(carry_outputs)
