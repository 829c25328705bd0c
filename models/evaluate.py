"""Evaluate the motion model on held-out procedural and Blender-rendered scenes, and on real photos.

    python -m stillflow.models.evaluate --n 120 [--model models/stillflow_motion.onnx] [--photos-out /tmp]

Held-out scenes: seeds from 10,000,000 up (training never goes there), drawn whole at 384 x 512 (the
model's working size, so no resizing), with the same hint sampling as training (1-5 arrows picked from the
true field with small angle/speed noise, normalised Gaussian interpolation). Metrics inside the TRUE motion
mask: endpoint error (EPE, px/frame) and mean cosine between predicted and true vectors (0 where the
prediction is zero). Without a mask: IoU of the predicted moving region (|M| > 0.2161635) with the true one,
against "everything moves". "Hints turned": the true motion and the arrows sampled from it are turned by
90-180 degrees while the picture stays as it is (arrows against what the picture suggests): the model must
follow them. Runs through core.model.MotionModel (ONNX Runtime), like the add-on does.

Held-out Blender-rendered scenes (models/training/render_data.py, seeds from 10,000,000 up) get the same table when
they are in the render cache.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..core.model import MotionModel, resize
from .training.data import (
    EVAL_SEED_START,
    MOTION_THRESHOLD,
    dense_from_points,
    hint_sigma,
    make_scene,
    sample_hints,
    turn,
)
from .training.viz import visualise


def metrics(pred, gt, mask):
    sel = mask > 0.5
    if not sel.any():
        return None
    d = pred[sel] - gt[sel]
    epe = float(np.sqrt((d**2).sum(-1)).mean())
    pn = np.linalg.norm(pred[sel], axis=-1)
    gn = np.linalg.norm(gt[sel], axis=-1)
    cos = (pred[sel] * gt[sel]).sum(-1) / np.maximum(pn * gn, 1e-6)
    cos = np.where(pn < 1e-3, 0.0, cos)
    epe_all = float(np.sqrt(((pred - gt) ** 2).sum(-1)).mean())  # whole image: also punishes moving land
    return epe, float(cos.mean()), epe_all


def iou(a, b):
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


def _arrows(pts, length=40.0):
    """Arrows as a user would draw them: centred on the sampled point, about ``length`` px long."""
    try:
        from ..core.hints import Arrow
    except ImportError:
        return None
    out = []
    for x, y, vx, vy in pts:
        sp = max(float(np.hypot(vx, vy)), 1e-3)
        frames = length / sp
        out.append(
            Arrow(
                start=(x - vx * frames / 2, y - vy * frames / 2),
                end=(x + vx * frames / 2, y + vy * frames / 2),
                frames=frames,
            )
        )
    return out


def procedural_scenes(n, h=384, w=512):
    """(rng, scene) for the held-out procedural seeds EVAL_SEED_START .. + n - 1."""
    for i in range(n):
        rng = np.random.default_rng(EVAL_SEED_START + i)
        yield rng, make_scene(rng, h, w)


def rendered_scenes(cache=None, n=None):
    """(rng, scene) for the held-out Blender-rendered scenes in render_data's cache (seeds >= EVAL_SEED_START)."""
    from .training import render_data

    cache = cache or render_data.DEFAULT_CACHE
    seeds = [s for s in render_data.cached_seeds(cache) if s >= EVAL_SEED_START][:n]
    for seed in seeds:
        yield np.random.default_rng([seed, 2]), render_data.load_cached(seed, cache)


def evaluate(model, scenes):
    rows = defaultdict(list)
    per_kind = defaultdict(lambda: defaultdict(list))
    for rng, sc in scenes:
        rgb, gt, mask = sc["rgb"], sc["motion"], sc["mask"]
        h, w = mask.shape
        if mask.sum() < 50:
            continue
        pts = sample_hints(rng, gt, mask)
        dense = dense_from_points(pts, (h, w), hint_sigma(rng, len(pts)))
        m_hint = model.predict(rgb, mask=mask, hint_field=dense * mask[..., None])
        arrows = _arrows(pts)
        if arrows is not None:  # the add-on's own path: arrows of ~40 px, core.hints default sigma
            from ..core.hints import dense_from_arrows

            d2 = dense_from_arrows(arrows, (h, w)) * mask[..., None]
            rows[("mask + arrows (core.hints)", "model")].append(
                metrics(model.predict(rgb, mask=mask, hint_field=d2), gt, mask)
            )
            rows[("mask + arrows (core.hints)", "hints only")].append(metrics(d2, gt, mask))
        m_none = model.predict(rgb, mask=mask)
        u_hint = model.predict(rgb, hint_field=dense)
        u_none = model.predict(rgb)
        zero = np.zeros_like(gt)
        cases = {
            ("mask + hints", "model"): m_hint,
            ("mask + hints", "hints only"): dense * mask[..., None],
            ("mask, no hints", "model"): m_none,
            ("mask, no hints", "zero motion"): zero,
            ("no mask + hints", "model"): u_hint,
            ("no mask + hints", "hints only"): dense,
            ("no mask, no hints", "model"): u_none,
            ("no mask, no hints", "zero motion"): zero,
        }
        for key, pred in cases.items():
            rows[key].append(metrics(pred, gt, mask))
        true_mv = mask > 0.5
        rows[("IoU no mask", "model, no hints")].append(
            iou(np.linalg.norm(u_none, axis=-1) > MOTION_THRESHOLD, true_mv)
        )
        rows[("IoU no mask", "model + hints")].append(
            iou(np.linalg.norm(u_hint, axis=-1) > MOTION_THRESHOLD, true_mv)
        )
        rows[("IoU no mask", "hints only")].append(
            iou(np.linalg.norm(dense, axis=-1) > MOTION_THRESHOLD, true_mv)
        )
        rows[("IoU no mask", "everything moves")].append(iou(np.ones_like(true_mv), true_mv))
        per_kind[sc["kind"]]["model"].append(metrics(u_none, gt, mask)[0])
        per_kind[sc["kind"]]["zero"].append(metrics(zero, gt, mask)[0])
        # arrows AGAINST the picture's prior: the true motion turned by 90-180 degrees (the picture unchanged),
        # as when an artist makes waves go out to sea; the model must follow the arrows, not its prior
        trng = np.random.default_rng(int(rng.integers(2**32)))
        gt_t = turn(gt, trng.uniform(np.pi / 2, np.pi) * trng.choice([-1.0, 1.0]))
        pts_t = sample_hints(trng, gt_t, mask)
        dense_t = dense_from_points(pts_t, (h, w), hint_sigma(trng, len(pts_t))) * mask[..., None]
        cond = "mask + hints turned 90-180 deg"
        rows[(cond, "model")].append(metrics(model.predict(rgb, mask=mask, hint_field=dense_t), gt_t, mask))
        rows[(cond, "hints only")].append(metrics(dense_t, gt_t, mask))
    return rows, per_kind


def print_table(rows, per_kind, title):
    n_scenes = len(rows[("mask + hints", "model")])
    print(
        f"{title}: {n_scenes} scenes (seeds {EVAL_SEED_START}+, never trained on), metrics inside the true mask"
    )
    print("| condition | field | EPE in mask | mean cosine in mask | EPE whole image |")
    print("|---|---|---|---|---|")
    for (cond, name), vals in rows.items():
        if cond.startswith("IoU"):
            continue
        a = np.array(vals)
        print(f"| {cond} | {name} | {a[:, 0].mean():.3f} | {a[:, 1].mean():.3f} | {a[:, 2].mean():.3f} |")
    print("| condition | field | IoU of moving region (|M| > 0.216) | |")
    for (cond, name), vals in rows.items():
        if cond.startswith("IoU"):
            print(f"| no mask | {name} | {np.mean(vals):.3f} | |")
    print("EPE by scene kind, no mask, no hints (model / zero motion):")
    for k, d in sorted(per_kind.items()):
        print(f"  {k:10s} n={len(d['model']):3d}  {np.mean(d['model']):.3f} / {np.mean(d['zero']):.3f}")


def run_photos(model, paths, out_dir):
    import cv2

    for p in paths:
        bgr = cv2.imread(str(p))
        if bgr is None:
            print(f"skip {p}: not readable")
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        H, W = rgb.shape[:2]
        s = 512 / max(H, W)
        small = resize(rgb, round(H * s), round(W * s))
        M = model.predict(small)
        mag = np.linalg.norm(M, axis=-1)
        out = Path(out_dir) / (Path(p).stem + "_motion.png")
        visualise(small, M, out)
        print(
            f"{Path(p).name}: {small.shape[1]}x{small.shape[0]}, mean |M| {mag.mean():.2f}, moving "
            f"{(mag > MOTION_THRESHOLD).mean() * 100:.0f}% -> {out}"
        )


def main(argv=None):
    ap = argparse.ArgumentParser(description="Evaluate the motion model on held-out procedural scenes.")
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--rendered", type=int, default=30, help="held-out rendered scenes to use (0: none)")
    ap.add_argument("--photos", nargs="*", default=["/work/shared/samples/mcway_falls_waterfall_sea.jpg"])
    ap.add_argument("--photos-out", default="/tmp")
    a = ap.parse_args(argv)
    model = MotionModel(a.model, device="cpu")
    print_table(*evaluate(model, procedural_scenes(a.n)), "held-out procedural scenes, 384x512")
    if a.rendered:
        rows, per_kind = evaluate(model, rendered_scenes(n=a.rendered))
        if rows:
            print_table(rows, per_kind, "held-out Blender-rendered scenes (models/training/render_data.py), 384x512")
        else:
            print(
                "no held-out rendered scenes cached: python -m stillflow.models.training.render_data --start 10000000"
            )
    run_photos(model, a.photos, a.photos_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
