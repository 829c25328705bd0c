"""Blender-rendered training and evaluation scenes with KNOWN motion (Cycles on the CPU, the ``bpy`` module).

    python -m stillflow.models.training.render_data --start 0 --count 240            # training scenes -> cache
    python -m stillflow.models.training.render_data --start 10000000 --count 30      # held-out scenes (evaluation)

Each seed builds one scene from scratch (``numpy.random.default_rng(seed)`` picks everything), renders one
frame with Cycles (CPU, few samples, no denoiser) and its Vector pass, and caches ``<seed>.npz`` with
``rgb`` (H, W, 3, uint8, sRGB), ``motion`` (H, W, 2, float16, px/frame, +dx right, +dy down, row 0 top) and
``kind``. The motion of a pixel is the screen motion of the surface it sees, from frame 1 to frame 2: moving
objects (water planes, cloud layers) are translated by a known world velocity, and their textures are in
object space, so the texture moves with them. The world and the land do not move (Vector = 0).

Scene kinds (perspective camera, sky texture, sun; materials are node trees with object-space noise):
- ``sea``: a large glossy water plane with swell and foam moving toward the camera (perspective makes the near
  water faster), often a beach and rocks in front and a cloud layer above;
- ``waterfall``: a vertical streaky water sheet falling in front of a rock wall, a pool below flowing out;
- ``river``: a streaky water strip flowing along its bed across grass or rock ground;
- ``clouds``: a cloud layer drifting over still hills.

Speeds: the rendered displacement is rescaled to a random typical speed (a frame-rate change, exact for a
constant velocity), so the data spans the same 0.5-5 px/frame range as the procedural scenes, at the
model's working scale (scenes are rendered at 512 x 384 and training crops 128 px windows from them).

Vector pass convention (checked by tests/test_model.py, slow): channels Z, W hold minus the motion to the next
frame in Blender's pixel axes (x right, y up); so dx = -Z and dy = +W in Stillflow's (+dy down) convention.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from ...core.field import MOTION_THRESHOLD
from ...core.imageio import linear_to_srgb

KINDS = ("sea", "waterfall", "river", "clouds")
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / "data" / "rendered"
WIDTH, HEIGHT = 512, 384


# ----------------------------------------------------------------------------------------------------------
# scene building (bpy)


def _reset(bpy, w, h, samples):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    sc.cycles.device = "CPU"
    sc.cycles.samples = samples
    sc.cycles.use_denoising = False
    sc.cycles.max_bounces = 4
    sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = w, h, 100
    sc.render.use_motion_blur = False  # the Vector pass needs it off
    sc.view_settings.view_transform = "Standard"
    vl = sc.view_layers[0]
    vl.use_pass_vector = True
    sc.frame_start, sc.frame_end = 1, 2
    return sc


def _material(
    bpy,
    name,
    color,
    roughness,
    *,
    foam=None,
    stretch=(1.0, 1.0, 1.0),
    bump=0.3,
    scale=2.0,
    alpha_noise=None,
    seed=0.0,
    detail=8.0,
):
    """Principled material with object-space noise: bump, colour variation, optional foam / cloud alpha."""
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # Blender < 5 makes node trees on request
        mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    tc = nt.nodes.new("ShaderNodeTexCoord")
    mp = nt.nodes.new("ShaderNodeMapping")
    mp.inputs["Scale"].default_value = stretch
    mp.inputs["Location"].default_value = (seed, seed * 0.37, 0.0)
    nt.links.new(tc.outputs["Object"], mp.inputs["Vector"])
    nz = nt.nodes.new("ShaderNodeTexNoise")
    nz.inputs["Scale"].default_value = scale
    nz.inputs["Detail"].default_value = detail
    nt.links.new(mp.outputs["Vector"], nz.inputs["Vector"])
    bp = nt.nodes.new("ShaderNodeBump")
    bp.inputs["Strength"].default_value = bump
    nt.links.new(nz.outputs["Fac"], bp.inputs["Height"])
    nt.links.new(bp.outputs["Normal"], bsdf.inputs["Normal"])
    ramp = nt.nodes.new("ShaderNodeValToRGB")
    lo, hi = ramp.color_ramp.elements
    lo.color = (*[c * 0.6 for c in color], 1.0)
    hi.color = (*[min(1.0, c * 1.4) for c in color], 1.0)
    nt.links.new(nz.outputs["Fac"], ramp.inputs["Fac"])
    base = ramp.outputs["Color"]
    if foam is not None:  # white where a second, coarser noise is high
        fz = nt.nodes.new("ShaderNodeTexNoise")
        fz.inputs["Scale"].default_value = scale * 0.7
        fz.inputs["Detail"].default_value = 6.0
        nt.links.new(mp.outputs["Vector"], fz.inputs["Vector"])
        fr = nt.nodes.new("ShaderNodeValToRGB")
        fr.color_ramp.elements[0].position = foam
        fr.color_ramp.elements[1].position = min(foam + 0.08, 1.0)
        nt.links.new(fz.outputs["Fac"], fr.inputs["Fac"])
        mix = nt.nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        nt.links.new(fr.outputs["Color"], mix.inputs["Factor"])
        nt.links.new(base, mix.inputs["A"])
        mix.inputs["B"].default_value = (0.9, 0.92, 0.93, 1.0)
        base = mix.outputs["Result"]
    nt.links.new(base, bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = roughness
    if alpha_noise is not None:  # clouds: alpha from a thresholded noise
        ar = nt.nodes.new("ShaderNodeValToRGB")
        ar.color_ramp.elements[0].position = alpha_noise
        ar.color_ramp.elements[1].position = min(alpha_noise + 0.2, 1.0)
        nt.links.new(nz.outputs["Fac"], ar.inputs["Fac"])
        nt.links.new(ar.outputs["Color"], bsdf.inputs["Alpha"])
        nt.links.new(base, bsdf.inputs["Emission Color"])  # self-lit: clouds stay white, not ground-tinted
        bsdf.inputs["Emission Strength"].default_value = 0.6
    return mat


def _plane(bpy, name, size, mat, location=(0, 0, 0), rotation=(0, 0, 0)):
    """A plane of ``size`` (a number, or (sx, sy)) world units in its own x, y; object scale stays 1, so the
    object-space textures keep their world size."""
    import bmesh

    sx, sy = (size, size) if np.isscalar(size) else size
    me = bpy.data.meshes.new(name)
    bm = bmesh.new()
    bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=0.5)
    for v in bm.verts:
        v.co.x, v.co.y = v.co.x * sx, v.co.y * sy
    bm.to_mesh(me)
    bm.free()
    ob = bpy.data.objects.new(name, me)
    bpy.context.scene.collection.objects.link(ob)
    ob.location, ob.rotation_euler = location, rotation
    me.materials.append(mat)
    return ob


def _rock(bpy, rng, location, size, mat):
    import bmesh

    me = bpy.data.meshes.new("rock")
    bm = bmesh.new()
    bmesh.ops.create_icosphere(bm, subdivisions=3, radius=1.0)
    for v in bm.verts:  # lumpy: random radial displacement, smooth enough at this size
        n = v.co.normalized()
        v.co = n * (
            1.0 + 0.25 * math.sin(3 * n.x + rng.uniform(0, 6)) * math.cos(2 * n.y + rng.uniform(0, 6))
        )
    bm.to_mesh(me)
    bm.free()
    ob = bpy.data.objects.new("rock", me)
    bpy.context.scene.collection.objects.link(ob)
    ob.location = location
    ob.scale = (size * rng.uniform(0.7, 1.4), size * rng.uniform(0.7, 1.4), size * rng.uniform(0.4, 1.0))
    ob.rotation_euler = (0, 0, rng.uniform(0, 6.3))
    me.materials.append(mat)
    for p in me.polygons:
        p.use_smooth = True
    return ob


def _move(ob, velocity):
    """Translate ``ob`` by ``velocity`` (world units) from frame 1 to frame 2, linearly."""
    start = tuple(ob.location)
    ob.keyframe_insert("location", frame=1)
    ob.location = tuple(s + v for s, v in zip(start, velocity, strict=True))
    ob.keyframe_insert("location", frame=2)
    ob.location = start


def _camera(bpy, location, rotation_deg, lens):
    cam = bpy.data.cameras.new("cam")
    cam.lens = lens
    cam.clip_end = 2000.0
    ob = bpy.data.objects.new("cam", cam)
    bpy.context.scene.collection.objects.link(ob)
    ob.location = location
    ob.rotation_euler = tuple(math.radians(a) for a in rotation_deg)
    bpy.context.scene.camera = ob
    return ob


def _world(bpy, rng):
    w = bpy.data.worlds.new("sky")
    bpy.context.scene.world = w
    if w.node_tree is None:
        w.use_nodes = True
    nt = w.node_tree
    bg = nt.nodes["Background"]
    sky = nt.nodes.new("ShaderNodeTexSky")
    for attr, val in (
        ("sun_elevation", math.radians(rng.uniform(8, 60))),
        ("sun_rotation", rng.uniform(0, 6.3)),
    ):
        if hasattr(sky, attr):
            setattr(sky, attr, val)
    nt.links.new(sky.outputs["Color"], bg.inputs["Color"])
    bg.inputs["Strength"].default_value = rng.uniform(0.25, 0.6)
    sun = bpy.data.lights.new("sun", "SUN")
    sun.energy = rng.uniform(2.0, 5.0)
    so = bpy.data.objects.new("sun", sun)
    bpy.context.scene.collection.objects.link(so)
    so.rotation_euler = (math.radians(rng.uniform(20, 70)), 0, rng.uniform(0, 6.3))


def _water_colour(rng):
    return tuple(float(c) for c in np.array([0.05, 0.18, 0.22]) * rng.uniform(0.5, 1.6, 3))


def _land_colour(rng):
    base = [(0.35, 0.3, 0.22), (0.2, 0.3, 0.12), (0.4, 0.38, 0.33), (0.7, 0.6, 0.42)][int(rng.integers(0, 4))]
    return tuple(float(c) for c in np.array(base) * rng.uniform(0.7, 1.3, 3))


def _clouds(bpy, rng, height, drift):
    mat = _material(
        bpy,
        "clouds",
        (0.9, 0.9, 0.92),
        0.9,
        scale=rng.uniform(0.003, 0.012),
        bump=0.0,
        detail=2.0,
        alpha_noise=rng.uniform(0.35, 0.5),
        seed=rng.uniform(0, 100),
    )
    ob = _plane(bpy, "clouds", 4000, mat, location=(0, 0, height))
    _move(ob, drift)
    return ob


def build_scene(bpy, rng, kind):
    """Populate the (empty) scene for ``kind``; returns nothing, everything is in bpy.data."""
    _world(bpy, rng)
    sd = float(rng.uniform(0, 100))
    if kind == "sea":
        h = rng.uniform(1.5, 8.0)
        _camera(bpy, (0, 0, h), (rng.uniform(76, 90), 0, rng.uniform(-10, 10)), rng.uniform(24, 50))
        water = _material(
            bpy,
            "water",
            _water_colour(rng),
            rng.uniform(0.05, 0.3),
            foam=rng.uniform(0.52, 0.66),
            stretch=(rng.uniform(0.25, 0.7), 1.0, 1.0),
            scale=rng.uniform(0.3, 1.5),
            bump=rng.uniform(0.4, 1.0),
            seed=sd,
        )
        sea = _plane(bpy, "sea", 3000, water)
        speed = rng.uniform(0.5, 2.0)
        _move(sea, (rng.normal(0, 0.3) * speed, -speed, 0))
        if rng.random() < 0.6:  # beach in front, rising toward the camera
            sand = _material(bpy, "sand", _land_colour(rng), 0.9, scale=rng.uniform(0.5, 2), seed=sd + 1)
            y0 = rng.uniform(h * 1.5, h * 6)
            beach = _plane(
                bpy,
                "beach",
                400,
                sand,
                location=(0, y0 - 200, 0.02),
                rotation=(-math.atan(rng.uniform(0.0, 0.05)), 0, rng.uniform(-0.3, 0.3)),
            )
            beach.name = "beach"
        rock = _material(bpy, "rock", _land_colour(rng), 0.8, scale=rng.uniform(1, 4), seed=sd + 2)
        for _ in range(int(rng.integers(0, 5))):
            d = rng.uniform(8, 60)
            _rock(bpy, rng, (rng.uniform(-0.6, 0.6) * d, d, 0), rng.uniform(0.5, 4), rock)
        if rng.random() < 0.5:
            _clouds(bpy, rng, rng.uniform(150, 400), (rng.choice([-1, 1]) * rng.uniform(1, 4), 0, 0))
    elif kind == "waterfall":
        _camera(
            bpy,
            (rng.uniform(-2, 2), -rng.uniform(12, 30), rng.uniform(2, 8)),
            (rng.uniform(85, 95), 0, rng.uniform(-8, 8)),
            rng.uniform(28, 50),
        )
        rock = _material(bpy, "rock", _land_colour(rng), 0.8, scale=rng.uniform(0.5, 2), bump=0.8, seed=sd)
        _plane(bpy, "wall", 200, rock, location=(0, 0.5, 20), rotation=(math.pi / 2, 0, 0))
        for i in range(int(rng.integers(1, 4))):
            width = rng.uniform(0.5, 5)
            fall = _material(
                bpy,
                "fall",
                (0.8, 0.85, 0.88),
                rng.uniform(0.2, 0.6),
                foam=rng.uniform(0.4, 0.55),
                stretch=(1.0, rng.uniform(0.05, 0.2), 1.0),
                scale=rng.uniform(1, 4),
                bump=0.05,
                seed=sd + 3,
            )
            ob = _plane(
                bpy,
                "fall",
                (width, 120),
                fall,
                location=(rng.uniform(-8, 8), 0.3 - 0.1 * i, 60),
                rotation=(math.pi / 2, 0, 0),
            )
            _move(ob, (0, 0, -rng.uniform(0.5, 2.0)))
        if rng.random() < 0.7:  # pool flowing out toward the camera
            pool = _material(
                bpy,
                "pool",
                _water_colour(rng),
                0.1,
                foam=rng.uniform(0.5, 0.7),
                scale=rng.uniform(0.3, 1.0),
                seed=sd + 4,
            )
            ob = _plane(bpy, "pool", 400, pool, location=(0, -200, rng.uniform(-0.5, 1.5)))
            _move(ob, (0, -rng.uniform(0.1, 0.5), 0))
        for _ in range(int(rng.integers(0, 4))):
            _rock(bpy, rng, (rng.uniform(-10, 10), -rng.uniform(1, 8), 0), rng.uniform(0.5, 2.5), rock)
    elif kind == "river":
        h = rng.uniform(3, 20)
        _camera(bpy, (0, 0, h), (rng.uniform(45, 80), 0, 0), rng.uniform(24, 45))
        ground = _material(
            bpy, "ground", _land_colour(rng), 0.9, scale=rng.uniform(0.3, 2), bump=0.5, seed=sd
        )
        _plane(bpy, "ground", 3000, ground)
        ang = rng.uniform(0, math.pi)
        d = rng.uniform(h * 0.8, h * 3)
        water = _material(
            bpy,
            "river",
            _water_colour(rng),
            rng.uniform(0.05, 0.3),
            foam=rng.uniform(0.5, 0.62),
            stretch=(rng.uniform(0.08, 0.3), 1.0, 1.0),
            scale=rng.uniform(1.0, 4.0),
            seed=sd + 1,
        )
        width = rng.uniform(2, 12)
        ob = _plane(
            bpy, "river", (600, width), water, location=(rng.uniform(-3, 3), d, 0.03), rotation=(0, 0, ang)
        )
        v = rng.uniform(0.3, 1.5) * rng.choice([-1, 1])
        _move(ob, (v * math.cos(ang), v * math.sin(ang), 0))
        rock = _material(bpy, "rock", _land_colour(rng), 0.8, scale=rng.uniform(1, 4), seed=sd + 2)
        for _ in range(int(rng.integers(0, 5))):
            dd = rng.uniform(5, 40)
            _rock(bpy, rng, (rng.uniform(-0.5, 0.5) * dd, dd, 0), rng.uniform(0.3, 2), rock)
    else:  # clouds over still hills
        _camera(
            bpy,
            (0, 0, rng.uniform(1.5, 10)),
            (rng.uniform(88, 100), 0, rng.uniform(-20, 20)),
            rng.uniform(18, 40),
        )
        ground = _material(
            bpy, "hills", _land_colour(rng), 0.9, scale=rng.uniform(0.05, 0.3), bump=1.0, seed=sd
        )
        g = _plane(bpy, "hills", 3000, ground)
        mod = g.modifiers.new("sub", "SUBSURF")
        mod.subdivision_type, mod.levels, mod.render_levels = "SIMPLE", 6, 6
        tex = bpy.data.textures.new("hills", "CLOUDS")
        tex.noise_scale = rng.uniform(60, 200)
        dm = g.modifiers.new("disp", "DISPLACE")
        dm.texture, dm.strength = tex, rng.uniform(10, 60)
        g.location.z = -dm.strength * 0.5
        _clouds(
            bpy, rng, rng.uniform(80, 300), (rng.choice([-1, 1]) * rng.uniform(1, 5), rng.uniform(-1, 1), 0)
        )


# ----------------------------------------------------------------------------------------------------------
# rendering and reading back


def read_render(path):
    """(rgb float32 sRGB [0, 1], motion float32 px/frame +dy down) from a multilayer EXR Cycles wrote."""
    import OpenEXR

    with OpenEXR.File(str(path)) as f:
        ch = {k.split(".", 1)[-1]: v.pixels for part in f.parts for k, v in part.channels.items()}
    rgb = np.asarray(ch["Combined"], np.float32)[..., :3]
    motion = np.stack([-np.asarray(ch["Vector.Z"], np.float32), np.asarray(ch["Vector.W"], np.float32)], -1)
    return rgb, motion


def render_scene(seed, width=WIDTH, height=HEIGHT, samples=8, kind=None, next_frame=False):
    """Render one scene; returns dict(rgb (H,W,3) float32 sRGB, motion (H,W,2) float32 px/frame, kind).

    ``next_frame=True`` also renders frame 2 (``rgb_next``) and returns the motion before any speed rescaling,
    so a test can check the Vector pass against what really moved."""
    import bpy

    rng = np.random.default_rng(seed)
    kind = kind or str(rng.choice(KINDS, p=[0.35, 0.25, 0.25, 0.15]))
    sc = _reset(bpy, width, height, samples)
    sc.cycles.seed = int(seed % 2**31)
    build_scene(bpy, rng, kind)
    sc.frame_set(1)
    sc.render.image_settings.media_type = "MULTI_LAYER_IMAGE"
    with tempfile.TemporaryDirectory(prefix="stillflow_render_") as tmp:
        sc.render.filepath = str(Path(tmp) / "frame.exr")
        bpy.ops.render.render(write_still=True)
        lin, motion = read_render(Path(tmp) / "frame.exr")
        if next_frame:
            sc.frame_set(2)
            bpy.ops.render.render(write_still=True)
            lin_next = read_render(Path(tmp) / "frame.exr")[0]
    # exposure: put the 95th percentile of luminance near 0.85 before the sRGB curve (an auto exposure)
    lum = lin @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    gain = (0.85 / max(float(np.percentile(lum, 95)), 1e-3)) * rng.uniform(0.7, 1.1)
    rgb = linear_to_srgb(lin * gain)
    motion = np.nan_to_num(motion, nan=0.0, posinf=0.0, neginf=0.0)
    if next_frame:
        return {
            "rgb": rgb,
            "rgb_next": linear_to_srgb(lin_next * gain),
            "motion": motion,
            "kind": kind,
        }
    mag = np.linalg.norm(motion, axis=-1)
    moving = mag > 1e-3
    if moving.sum() > 50:  # frame-rate change: a typical (90th percentile) speed of 0.8 .. 4 px/frame
        motion = motion * (rng.uniform(0.8, 4.0) / float(np.percentile(mag[moving], 90)))
    return {"rgb": rgb, "motion": motion.astype(np.float32), "kind": kind}


def cache_path(seed, cache=DEFAULT_CACHE):
    return Path(cache) / f"{seed}.npz"


def load_cached(seed, cache=DEFAULT_CACHE):
    """The cached scene for ``seed``: dict(rgb float32 [0,1], motion float32, mask float32, kind)."""
    with np.load(cache_path(seed, cache)) as z:
        rgb = z["rgb"].astype(np.float32) / 255.0
        motion = z["motion"].astype(np.float32)
        kind = str(z["kind"])
    mask = (np.linalg.norm(motion, axis=-1) > MOTION_THRESHOLD).astype(np.float32)
    return {"rgb": rgb, "motion": motion * mask[..., None], "mask": mask, "kind": kind}


def cached_seeds(cache=DEFAULT_CACHE, below=None):
    seeds = sorted(int(p.stem) for p in Path(cache).glob("*.npz") if p.stem.isdigit())
    return [s for s in seeds if below is None or s < below]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Render Blender scenes with known motion into a cache of .npz files."
    )
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--cache", default=str(DEFAULT_CACHE))
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument(
        "--preview", default=None, help="write a PNG grid of the first 8 scenes (image over motion)"
    )
    a = ap.parse_args(argv)
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    done = 0
    for seed in range(a.start, a.start + a.count):
        out = cache_path(seed, cache)
        if out.exists():
            continue
        t = time.time()
        s = render_scene(seed, samples=a.samples)
        tmp = out.with_suffix(".tmp.npz")
        np.savez_compressed(
            tmp,
            rgb=(s["rgb"] * 255 + 0.5).astype(np.uint8),
            motion=s["motion"].astype(np.float16),
            kind=s["kind"],
        )
        tmp.replace(out)
        done += 1
        mag = np.linalg.norm(s["motion"], axis=-1)
        print(
            f"seed {seed} {s['kind']:9s} {time.time() - t:5.1f}s  moving {(mag > MOTION_THRESHOLD).mean() * 100:4.1f}%  "
            f"p90 speed {np.percentile(mag[mag > MOTION_THRESHOLD], 90) if (mag > MOTION_THRESHOLD).any() else 0:.2f}",
            flush=True,
        )
    print(f"rendered {done} scenes in {time.time() - t0:.0f}s -> {cache}")
    if a.preview:
        import cv2

        from .viz import flow_to_rgb

        tiles = []
        for seed in range(a.start, a.start + min(a.count, 8)):
            s = load_cached(seed, cache)
            tiles.append(
                np.concatenate([(s["rgb"] * 255).astype(np.uint8), flow_to_rgb(s["motion"], 4.0)], 0)
            )
        grid = np.concatenate(tiles, 1)
        cv2.imwrite(a.preview, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        print(a.preview)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
