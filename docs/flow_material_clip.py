"""Render the flow material with Cycles (CPU, headless, the bpy module) on the bundled sample, write the
README's clip (docs/flow_material.webp) and print the loop's quality figures beside the baked loop's.

    .venv/bin/python docs/flow_material_clip.py [--size 480] [--frames 60]

It enables this checkout as a Blender extension (as the tests do), predicts the motion from the sample's
arrows, applies the flow material to an image plane seen by an orthographic camera, and renders each frame
(1 sample a pixel, no denoiser: every pixel is one look-up of the material). The baked loop is rendered by
core.render from the same field, for comparison.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=480, help="width of the clip (the photo is scaled to it)")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--photo", type=Path, default=ROOT / "samples" / "mcway_falls.jpg",
                    help="a photo with its <stem>.hints.json beside it (default: the bundled sample)")
    ap.add_argument("--out", type=Path, default=None, help="the clip (default: docs/flow_material.webp for the "
                                                             "sample, none for another photo)")
    args = ap.parse_args()

    import bpy
    from PIL import Image
    from stillflow.core import render
    from stillflow.core.hints import load_hints, mask_from_hints
    from stillflow.core.job import LoopSpec
    from stillflow.core.quality import loop_quality

    tmp = Path(tempfile.mkdtemp(prefix="stillflow-flow-"))
    (tmp / "ext").mkdir()
    os.symlink(ROOT, tmp / "ext" / "stillflow", target_is_directory=True)
    bpy.context.preferences.extensions.repos.new(name="sfdoc", module="sfdoc", custom_directory=str(tmp / "ext"),
                                                source="USER")
    importlib.import_module("addon_utils").enable("bl_ext.sfdoc.stillflow", default_set=True)
    io = sys.modules["bl_ext.sfdoc.stillflow.operators.blender_io"]
    bpy.ops.wm.read_homefile(use_empty=True)

    hints_path = args.photo.with_name(args.photo.stem + ".hints.json")
    if args.out is None and args.photo.resolve() == (ROOT / "samples" / "mcway_falls.jpg").resolve():
        args.out = ROOT / "docs" / "flow_material.webp"
    src = Image.open(args.photo).convert("RGB")
    w, h = args.size, round(args.size * src.height / src.width)
    small = tmp / "mcway.png"
    src.resize((w, h), Image.LANCZOS).save(small)
    photo = bpy.data.images.load(str(small))
    settings = bpy.context.scene.stillflow
    settings.image = photo
    settings.motion_source = "HINTS"
    settings.frames = args.frames
    bpy.ops.stillflow.import_hints(filepath=str(hints_path))
    bpy.ops.stillflow.predict_motion()
    bpy.ops.stillflow.flow_material(target="PLANE")
    field = io.read_field(settings.field_image)

    scene = bpy.context.scene
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    cam.data.type = "ORTHO"
    cam.data.ortho_scale = w / h
    cam.location = (0, 0, 2)
    scene.collection.objects.link(cam)
    scene.camera = cam
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.pixel_filter_type = "BOX"
    scene.cycles.filter_width = 0.01
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = w, h, 100
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"
    frames = []
    started = time.perf_counter()
    for t in range(args.frames + 1):
        scene.frame_set(scene.frame_start + t)
        scene.render.filepath = str(tmp / f"f{t:04d}.png")
        bpy.ops.render.render(write_still=True)
        with Image.open(scene.render.filepath) as im:
            frames.append(np.asarray(im.convert("RGB")).astype(np.float32) / 255.0)
    per_frame = (time.perf_counter() - started) / (args.frames + 1)
    loop, last = frames[:-1], frames[-1]

    rgb = np.asarray(Image.open(small).convert("RGB"), np.float32) / 255.0
    hints = load_hints(hints_path).for_size(w, h)
    mask = mask_from_hints(hints, (h, w))
    interior = round(render.loop_travel(field, LoopSpec(frames=args.frames)) / 2)
    baked = [f.rgb for f in render.render_loop(rgb, field, LoopSpec(frames=args.frames))]
    q_flow = loop_quality(loop, mask, reference=rgb, interior_px=interior)
    q_baked = loop_quality(baked, mask, reference=rgb, interior_px=interior)
    inside = mask > 0.5
    diff = float(np.mean([np.abs(a - b).mean(axis=2)[inside].mean() for a, b in zip(loop, baked, strict=True)])) * 255
    print(f"{args.photo.name} {w}x{h}, {args.frames} frames; Cycles CPU {1000 * per_frame:.0f} ms a frame (1 sample)")
    print(f"frame N vs frame 0: max {255 * np.abs(last - loop[0]).max():.1f}/255")
    print(f"{'':14s} {'sharp min':>9s} {'max/min':>7s} {'double':>6s} {'seam':>5s} {'tear':>6s}")
    for name, q in (("flow material", q_flow), ("baked (sharp)", q_baked)):
        print(f"{name:14s} {q['sharpness_worst']:9.2f} {q['sharpness_spread']:7.2f} {q['double_image']:6.3f} "
              f"{q['seam_ratio']:5.2f} {q['edge_tear']:+6.2f}")
    print(f"mean |flow material - baked| inside the mask: {diff:.1f}/255")
    print("flow material sharpness by frame: " + " ".join(f"{x:.2f}" for x in q_flow["sharpness"][::5]))

    if args.out is None:
        return 0
    imgs = [Image.fromarray((np.clip(f, 0, 1) * 255 + 0.5).astype(np.uint8)) for f in loop]
    imgs[0].save(args.out, save_all=True, append_images=imgs[1:], duration=round(1000 / 30), loop=0,
                 lossless=False, quality=80, method=6)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
