#!/usr/bin/env python3
"""Stillflow benchmark: splatting speed, full-loop time, peak memory, and loop quality.

    .venv/bin/python benchmark.py                 # speed table at 1080p (engine vs torch / numpy references)
    .venv/bin/python benchmark.py --loop          # + a full 60-frame 1080p loop, engine time
    .venv/bin/python benchmark.py --memory-4k     # + peak memory of a 60-frame 3840x2160 loop (subprocess)
    .venv/bin/python benchmark.py --skip-speed --end-to-end   # photo -> MP4 wall time and stage shares at
                                                  # 720p and 1080p (60 frames), 1080p at 30 and 120 frames
                                                  # (--e2e-renderer sharp splat: the fast path too)
    .venv/bin/python benchmark.py --quality       # quality figures of the bundled sample (hints + mask)
    .venv/bin/python benchmark.py --skip-speed --quality-real default renderer=splat
                                                  # sharpness, double images, seam... on real photos

Times are medians of --repeat runs after one warm-up (which also compiles the kernels).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent


def _import():
    try:
        import stillflow  # noqa: F401
    except ImportError:  # running from a checkout that was not pip-installed
        import importlib.util

        spec = importlib.util.spec_from_file_location("stillflow", ROOT / "__init__.py",
                                                      submodule_search_locations=[str(ROOT)])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["stillflow"] = mod
        spec.loader.exec_module(mod)


_import()
from stillflow.core import engines, render  # noqa: E402
from stillflow.core.engines import reference  # noqa: E402
from stillflow.core.field import resize_bilinear  # noqa: E402
from stillflow.core.imageio import load_image  # noqa: E402
from stillflow.core.job import LoopSpec  # noqa: E402

SAMPLE = ROOT / "samples" / "mcway_falls.jpg"


def river_field(h: int, w: int) -> np.ndarray:
    """A smooth, river-like field: up to ~3 px/frame, curving, slower at the banks."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bank = np.clip(np.sin(np.pi * yy / h), 0, 1)
    dx = 2.5 * bank * (1.0 + 0.2 * np.sin(xx / 97.0))
    dy = 1.2 * np.sin(xx / 151.0 + yy / 211.0)
    return np.stack([dx, dy], -1).astype(np.float32)


def photo(h: int, w: int) -> np.ndarray:
    return resize_bilinear(load_image(SAMPLE).rgb, (h, w))


def timeit(fn, repeat: int) -> float:
    fn()  # warm-up (compiles numba kernels, allocates)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def sync(engine):
    if engine.name == "torch-cuda":
        engine.torch.cuda.synchronize()


def splat_ms(engine, img, flow, weight, reps: int, channels: int = 4) -> float:
    """Median ms of one engine splat of ``img`` along ``flow`` into an accumulator of ``channels``
    (zeroed each time; the GPU synchronised)."""
    a_img, a_flow, a_w = engine.asarray(img), engine.asarray(flow), engine.asarray(weight)
    acc = engine.zeros(img.shape[:2] + (channels,))

    def run():
        acc[...] = 0
        engine.accumulate(acc, a_img, a_flow, a_w, 1.0)
        sync(engine)

    return timeit(run, reps)


def speed_table(repeat: int, h: int = 1080, w: int = 1920, loop_frames: int = 60) -> None:
    img = photo(h, w)
    motion = river_field(h, w)
    weight = render.softmax_weight(motion)
    ref_engine = engines.get_engine("cpu")
    small = motion.copy()  # F(0->1) = M
    mid = np.zeros_like(motion)
    for _ in range(loop_frames // 2):
        mid = ref_engine.step(motion, mid)  # F(0->N/2): tens of rows of displacement
    print(f"1080p bilinear splat of RGB + weight, {w}x{h}; middle frame = F(0->{loop_frames // 2}), "
          f"max |dy| {np.nanmax(np.abs(mid[..., 1])):.0f} px, max |dx| {np.nanmax(np.abs(mid[..., 0])):.0f} px")
    ways = [(f"engine (numba, {ref_engine.nbands} threads)", ref_engine)]
    torch_cpu = engines.get_engine("torch-cpu")
    cuda = engines.cuda_available()
    if cuda:
        ways.append(("engine (torch CUDA)", engines.get_engine("cuda")))
    rows = []

    def inputs(engine):
        """The photo, its weight, the motion, the middle frame's forward and backward fields: engine arrays."""
        return tuple(engine.asarray(a) for a in (img, weight, motion, mid, -mid))

    def frame_ms(engine, reps, renderer="splat"):
        """One middle frame of a renderer: an Euler step and core.render.splat_frame (``--renderer splat``:
        the forward and the backward splat with coverage counts, the coverage blend, the holes filled) or
        core.render.sharp_frame (the default: the two coordinate splats, each stream's picture, the
        detail-keeping blend, the holes filled) and core.render.DetailMatch."""
        a_img, a_w, a_m, a_f, a_b = inputs(engine)
        if renderer == "sharp":
            frame, source, k = render.sharp_frame, engine.sharp_source(img), 4
            match = render.DetailMatch(img, motion, engine=engine)
        else:
            frame, source, k = render.splat_frame, a_img, 5
            match = None
        accs = engine.zeros((h, w, k)), engine.zeros((h, w, k))

        def run():
            rgb, _ = frame(engine, img, source, a_w, engine.step(a_m, a_f), a_b, 0.5, accs)
            if match is not None:
                match(rgb)
            sync(engine)

        return timeit(run, reps)

    def stage_ms(engine, reps):
        """The stages issue 14 wants at most a quarter of a mid-loop splat each: the Euler step (to the
        middle frame's field) and the splat renderer's coverage blend; with, for the sharp renderer, one
        stream's picture and its detail-keeping blend."""
        a_img, a_w, a_m, a_f, a_b = inputs(engine)
        acc, acc_b = engine.zeros((h, w, 5)), engine.zeros((h, w, 5))
        engine.accumulate(acc, a_img, a_f, a_w, 1.0)
        engine.accumulate(acc_b, a_img, a_b, a_w, 1.0)
        out = {"euler step": timeit(lambda: (engine.step(a_m, a_f), sync(engine)), reps),
               "coverage blend": timeit(lambda: (engine.blend(acc, acc_b, 0.5), sync(engine)), reps)}
        source = engine.sharp_source(img)
        c_f, c_b = engine.zeros((h, w, 4)), engine.zeros((h, w, 4))
        engine.accumulate_coords(c_f, a_f, a_w)
        engine.accumulate_coords(c_b, a_b, a_w)
        still = np.ones((h, w), bool)
        (a_s, sf), (b_s, sb) = engine.sharp_stream(c_f, source, still), engine.sharp_stream(c_b, source, still)
        out["sharp: one stream"] = timeit(lambda: engine.sharp_stream(c_f, source, np.ones((h, w), bool)), reps)
        wa, wb = np.asarray(0.5 * sf, np.float32), np.asarray(0.5 * sb, np.float32)
        out["sharp: detail blend"] = timeit(lambda: engine.blend_detail(a_s, b_s, wa, wb, still, img), reps)
        match, mixed = render.DetailMatch(img, motion, engine=engine), engine.blend_detail(a_s, b_s, wa, wb)
        out["sharp: detail match"] = timeit(lambda: match(mixed.copy()), reps)
        return out

    floor = _floor_pass()
    floor_acc = np.zeros((h, w, 4), np.float32)

    def floor_run():
        floor_acc[...] = 0
        floor(floor_acc, img, mid, weight)

    floor_ms = timeit(floor_run, repeat)
    ref_small = splat_ms(torch_cpu, img, small, weight, max(1, repeat // 2))
    ref_mid = splat_ms(torch_cpu, img, mid, weight, max(1, repeat // 2))
    for label, eng in ways:
        rows.append((label, splat_ms(eng, img, small, weight, repeat), splat_ms(eng, img, mid, weight, repeat),
                     frame_ms(eng, repeat), frame_ms(eng, repeat, "sharp")))
    rows.append(("torch index_add_ (reference)", ref_small, ref_mid, frame_ms(torch_cpu, max(1, repeat // 2)),
                 float("nan")))  # (its sharp path finishes in numpy: the numpy reference's time)
    t0 = time.perf_counter()
    acc = reference.splat_reference(img, small, weight)
    np_ms = 1000 * (time.perf_counter() - t0)
    del acc
    rows.append(("numpy np.add.at (reference)", np_ms, float("nan"), float("nan"), float("nan")))
    print(f"{'way':34s} {'splat f1 ms':>11s} {'x torch':>8s} {'splat mid ms':>12s} {'x torch':>8s} "
          f"{'splat frame ms':>14s} {'sharp frame ms':>14s}")
    for label, a, b, c, d in rows:
        print(f"{label:34s} {a:11.1f} {ref_small / a:8.2f} {b:12.1f} {ref_mid / b if b == b else float('nan'):8.2f} "
              f"{c:14.1f} {d:14.1f}")
    print("(splat frame: renderer=splat, the coverage blend; sharp frame: the default renderer)")
    stages = stage_ms(ways[0][1], repeat)
    print("stages, x a mid-loop splat (target at most 0.25 for the Euler step and the blend): " + ", ".join(
        f"{k} {v:.1f} ms ({v / rows[0][2]:.2f})" for k, v in stages.items()))
    print(f"{'floor (same reads, one add a pixel)':34s} {floor_ms:11.1f}   engine splat f1 / mid: "
          f"{rows[0][1] / floor_ms:.2f}x / {rows[0][2] / floor_ms:.2f}x the floor (target at most 1.5x)")
    print(f"CUDA used: {'yes' if cuda else 'no (no GPU visible to torch)'}; "
          f"peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def _floor_pass():
    """The splat's floor: a compiled pass that reads what the splat reads (colour, flow, weight) and adds
    into the same accumulator once per pixel, in place (no scatter, no bilinear taps)."""
    from numba import njit, prange

    @njit(parallel=True, fastmath=True, nogil=True)
    def floor(acc, src, flow, weight):  # pragma: no cover - compiled
        h, w, c = src.shape
        for y in prange(h):
            for x in range(w):
                fx = flow[y, x, 0]
                fy = flow[y, x, 1]
                if fx != fx or fy != fy:
                    continue
                ww = weight[y, x]
                for ch in range(c):
                    acc[y, x, ch] += ww * src[y, x, ch]
                acc[y, x, c] += ww

    return floor


def full_loop(h: int, w: int, frames: int, device: str) -> tuple[float, float, float]:
    img = photo(h, w)
    motion = river_field(h, w)
    settings = LoopSpec(frames=frames)
    # compile outside the timing
    list(render.render_loop(img[:64, :64], motion[:64, :64], LoopSpec(frames=3), device=device))
    t0 = time.perf_counter()
    holes = 0.0
    for fr in render.render_loop(img, motion, settings, device=device):
        holes = max(holes, fr.hole_fraction)
    return time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, holes


class _Clock:
    """Seconds spent per stage (a stage's time is what its blocks took)."""

    def __init__(self):
        self.spent: dict[str, float] = {}

    def timed(self, stage: str, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.spent[stage] = self.spent.get(stage, 0.0) + time.perf_counter() - t0


class _TimedSink:
    """A sink whose frame writes and close (the encoders) are timed."""

    def __init__(self, sink, clock: _Clock):
        self.sink, self.clock, self.names = sink, clock, sink.names
        self.label = type(sink).__name__

    def open(self, *args):
        self.clock.timed("write frames", self.sink.open, *args)

    def write(self, *args):
        self.clock.timed("write frames", self.sink.write, *args)

    def close(self):
        self.clock.timed("encode " + self.label.replace("Sink", "").lower(), self.sink.close)

    def abort(self):
        self.sink.abort()

    def __getattr__(self, name):  # e.g. FramesSink.paths
        return getattr(self.sink, name)


def end_to_end(h: int, w: int, frames: int, fmt: str, device: str, renderer: str = "sharp") -> dict:
    """`stillflow animate` of the sample upscaled to w x h, the model's motion, into `fmt` (mp4: the
    movie and the .blend), timed per stage; with the median time of one mid-loop engine splat at that size.
    ``renderer``: the loop's (sharp, the default; splat, the fast path)."""
    import tempfile

    from stillflow.core.imageio import save_png
    from stillflow.core.job import Job
    from stillflow.core.pipeline import Pipeline, load_inputs
    from stillflow.operators.cli.item import sinks_for

    clock = _Clock()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"sample_{w}x{h}.png"
        save_png(src, render.frame_to_uint8(photo(h, w)))
        list(render.render_loop(np.zeros((64, 64, 3), np.float32), np.ones((64, 64, 2), np.float32),
                                LoopSpec(frames=3), device=device))  # kernels compiled/loaded outside
        if fmt == "mp4":
            clock.timed("import bpy", __import__, "bpy")
        job = Job.from_dict({"loop": {"frames": frames, "renderer": renderer}, "output": {"fmt": fmt}, "device": device})
        t0 = time.perf_counter()
        inputs = clock.timed("load photo", load_inputs, src, job)
        run_ref: list = []
        sinks = [_TimedSink(s, clock) for s in sinks_for(job, src.stem, src, run_ref)]
        run = Pipeline(job, inputs, sinks, Path(tmp) / "out", src.stem)
        run_ref.append(run)
        (Path(tmp) / "out").mkdir()
        marks = []
        for step in run.steps():
            marks.append((step.stage, time.perf_counter(), dict(clock.spent)))
        wall = time.perf_counter() - t0 + clock.spent.get("import bpy", 0.0)
        first_frame = next(m for m in marks if m[0] == "frame")
        last_frame = [m for m in marks if m[0] == "frame"][-1]
        writes = lambda m: m[2].get("write frames", 0.0)  # noqa: E731
        clock.spent["motion"] = first_frame[1] - marks[0][1] - writes(first_frame) + writes(marks[0])
        clock.spent["render"] = last_frame[1] - first_frame[1] - writes(last_frame) + writes(first_frame)
    engine = engines.get_engine(device)
    mid = np.zeros((h, w, 2), np.float32)
    motion = river_field(h, w)
    for _ in range(frames // 2):
        mid = engine.step(motion, mid)
    img, weight = photo(h, w), render.softmax_weight(motion)
    return {"size": f"{w}x{h}", "frames": frames, "fmt": fmt, "wall": wall, "stages": clock.spent,
            "splat_ms": splat_ms(engine, img, mid, weight, 5, channels=5), "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "engine": engine.name}


E2E_SIZES = {"720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}


def end_to_end_table(sizes: list[str], frames_1080: list[int], fmt: str, device: str,
                     renderers: tuple[str, ...] = ("sharp",)) -> None:
    """Each run in a child process (its own peak memory, a cold start as a user gets it), once per renderer
    (sharp: the default; splat: the fast path)."""
    import json

    runs = [(k, 60) for k in sizes] + [("1080p", n) for n in frames_1080 if n != 60 or "1080p" not in sizes]
    print(f"end to end: the sample upscaled, the model's motion, -> {fmt}; ratio = wall / (2 x frames engine "
          "splats at that size, measured in the same process)")
    print(f"{'size':>10s} {'frames':>6s} {'renderer':>8s} {'wall s':>7s} {'x splats':>8s} {'peak MiB':>8s}  "
          "stages (s, share of wall)")
    for (key, n), renderer in ((run, r) for run in runs for r in renderers):
        h, w = E2E_SIZES[key]
        out = subprocess.run([sys.executable, __file__, "--_child-e2e", f"{h},{w},{n},{fmt},{renderer}",
                              "--device", device], capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        ratio = r["wall"] / (2 * n * r["splat_ms"] / 1000.0)
        stages = ", ".join(f"{k} {v:.1f} ({100 * v / r['wall']:.0f}%)"
                           for k, v in sorted(r["stages"].items(), key=lambda kv: -kv[1]))
        print(f"{r['size']:>10s} {n:6d} {renderer:>8s} {r['wall']:7.1f} {ratio:8.2f} {r['rss_mib']:8.0f}  {stages}", flush=True)


def quality(frames: int) -> None:
    from stillflow.core.hints import load_hints, mask_from_hints
    from stillflow.core.motion import predict_motion
    from stillflow.core.quality import loop_quality

    img = load_image(SAMPLE).rgb
    h, w = img.shape[:2]
    hints = load_hints(SAMPLE.with_name("mcway_falls.hints.json")).for_size(w, h)
    mask = mask_from_hints(hints, (h, w))
    print(f"bundled sample {w}x{h}, {frames} frames; motion from the arrows alone unless said")
    print(f"{'setting':44s} {'holes max':>9s} {'seam/step':>9s} {'sharp min':>9s} {'speckle':>8s} {'edge tear':>9s}")
    for label, feather, blend, source in (("paper blend, no feather", 0.0, "single", "hints"),
                                          ("paper blend, feather 12 px", 12.0, "single", "hints"),
                                          ("coverage blend, no feather", 0.0, "coverage", "hints"),
                                          ("coverage blend, feather 12 px", 12.0, "coverage", "hints"),
                                          ("model + arrows, coverage, 12 px (default)", 12.0, "coverage", "auto")):
        m = predict_motion(img, hints=hints, source=source, feather_px=feather).field
        settings = LoopSpec(frames=frames, blend=blend)
        q = loop_quality(render.render_loop(img, m, settings), mask)
        print(f"{label:44s} {q['hole_fraction_max']:9.5f} {q['seam_ratio']:9.2f} {q['sharpness_min']:9.2f} "
              f"{q['speckle']:8.2f} {q['edge_tear']:+9.2f}")


REALSET = ROOT / "models" / "realset"
# Real photos with hand-drawn hints (models/realset/LICENSES.md), one of each kind, never tuned on alone.
QUALITY_PHOTOS = ("clouds_island_188029", "clouds_colosseum", "sea_surf_cove_315998", "sea_aerial_surf_35626",
                  "river_welton_canal", "smoke_beacon_street_steam", "lake_sherburne")


def quality_real(frames: int, variants: list[str], max_size: int, names=QUALITY_PHOTOS) -> None:
    """The loop quality figures of issue 11 on the bundled sample and real photos, arrows alone (hints).

    Columns: worst-frame sharpness inside the mask over the photo's, max/min over the loop, double-image
    figure (worst frame, and mean over the loop), both measured half the loop's travel inside the mask
    edge (content crossing the edge changes the region's detail whatever the renderer does); seam (wrap
    step / median step), holes, speckle (in units of the median tile, and relative to the nearby most
    detailed tile: core.quality), edge tear, seconds per frame including the figures; then the
    content's own max/min (`core.quality.content_sharpness`: what a renderer that lost nothing would show,
    as texture of other detail moves into the region) and the sharpness over it, worst frame and max/min
    (what the renderer itself loses or adds)."""
    from stillflow.core.hints import load_hints, mask_from_hints
    from stillflow.core.motion import predict_motion
    from stillflow.core.quality import QualityMeter, content_sharpness

    photos = [SAMPLE] + [REALSET / f"{n}.jpg" for n in names]
    print(f"{frames}-frame loops, photos at {max_size} px, motion from the hand-drawn arrows (hints)")
    print(f"{'photo':28s} {'variant':10s} {'sharp min':>9s} {'max/min':>7s} {'double':>6s} {'dbl mean':>8s} "
          f"{'seam':>5s} {'holes':>7s} {'speckle':>7s} {'/rel':>5s} {'tear':>6s} {'ms/fr':>6s} {'content':>7s} {'/c min':>6s} "
          f"{'/c spread':>9s}")
    for path in photos:
        img = load_image(path, max_size=max_size).rgb
        h, w = img.shape[:2]
        hints_path = path.with_name(path.stem + ".hints.json")
        hints = load_hints(hints_path).for_size(w, h)
        mask = mask_from_hints(hints, (h, w))
        m = predict_motion(img, hints=hints, source="hints", travel_frames=frames).field  # as `animate` does
        # The measured region: half the fast pixels' travel inside the mask edge, from the arrows' field with
        # the default 12 px feather, so that every version of the renderer and feather is measured on it.
        m_ref = predict_motion(img, hints=hints, source="hints").field
        interior = round(render.loop_travel(m_ref, LoopSpec(frames=frames)) / 2)
        for variant in variants:
            settings = LoopSpec(frames=frames, **dict(kv.split("=") for kv in variant.split(",") if "=" in kv))
            t0 = time.perf_counter()
            meter = QualityMeter(mask, reference=img, interior_px=interior)
            for fr in render.render_loop(img, m, settings):
                meter.add(fr.rgb, fr.hole_fraction)
            q = meter.result()
            ms = 1000 * (time.perf_counter() - t0) / frames
            region = meter.interior if meter.interior is not None else np.ones((h, w), bool)
            content = content_sharpness(img, m, settings, region)
            own = np.array(q["sharpness"]) / content
            print(f"{path.stem[:28]:28s} {variant.replace('renderer=', '')[:10]:10s} {q['sharpness_worst']:9.2f} {q['sharpness_spread']:7.2f} "
                  f"{q['double_image']:6.3f} {q['double_image_mean']:8.3f} {q['seam_ratio']:5.2f} "
                  f"{q['hole_fraction_max']:7.5f} {q['speckle']:7.2f} {q['speckle_rel']:5.2f} {q['edge_tear']:+6.2f} {ms:6.0f} "
                  f"{content.max() / content.min():7.2f} {own.min():6.2f} {own.max() / own.min():9.2f}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--loop", action="store_true", help="time a full 60-frame 1080p loop")
    ap.add_argument("--memory-4k", action="store_true", help="peak memory of a 60-frame 4K loop")
    ap.add_argument("--quality", action="store_true", help="quality figures on the bundled sample")
    ap.add_argument("--quality-real", nargs="*", metavar="VARIANT",
                    help="issue 11's figures on the sample and real photos; each VARIANT is a comma list of "
                         "LoopSpec settings (e.g. renderer=splat), 'default' for the defaults")
    ap.add_argument("--max-size", type=int, default=960, help="photo size for --quality-real")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--end-to-end", nargs="*", metavar="SIZE", choices=sorted(E2E_SIZES),
                    help="photo -> MP4 wall time and stage shares, 60 frames at each SIZE (default 720p 1080p; "
                         "4k too with --end-to-end 720p 1080p 4k), plus 1080p at --e2e-frames")
    ap.add_argument("--e2e-frames", type=int, nargs="*", default=[30, 120], metavar="N")
    ap.add_argument("--e2e-format", default="mp4", choices=["mp4", "png", "webp", "gif", "exr"])
    ap.add_argument("--e2e-renderer", nargs="+", default=["sharp"], choices=["sharp", "splat"],
                    help="the loop's renderer(s) for --end-to-end (sharp: the default; splat: the fast path)")
    ap.add_argument("--_child-4k", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_child-e2e", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child_e2e:
        import json

        h, w, n, fmt, renderer = args._child_e2e.split(",")
        print(json.dumps(end_to_end(int(h), int(w), int(n), fmt, args.device, renderer)))
        return 0
    if args._child_4k:
        secs, rss, holes = full_loop(2160, 3840, 60, args.device)
        print(f"4K 60-frame loop: {secs:.1f} s, peak RSS {rss:.0f} MiB, max hole fraction {holes:.4f}")
        return 0
    if not args.skip_speed:
        speed_table(args.repeat)
    if args.loop:
        secs, rss, holes = full_loop(1080, 1920, 60, args.device)
        print(f"1080p 60-frame loop on {engines.get_engine(args.device).name}: {secs:.1f} s engine time "
              f"({1000 * secs / 60:.0f} ms/frame), max hole fraction {holes:.4f}")
    if args.memory_4k:
        subprocess.run([sys.executable, __file__, "--_child-4k", "--device", args.device], check=True)
    if args.end_to_end is not None:
        end_to_end_table(args.end_to_end or ["720p", "1080p"], args.e2e_frames, args.e2e_format, args.device,
                         tuple(args.e2e_renderer))
    if args.quality:
        quality(60)
    if args.quality_real is not None:
        quality_real(60, args.quality_real or ["default"], args.max_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
