"""Train Stillflow's motion U-Net on scenes with known motion: procedural (models/training/scenes.py, sampled by data.py) and, with
``--p-rendered``, Blender-rendered ones (models/training/render_data.py, rendered into its cache beforehand).

    python -m stillflow.models.training.train --minutes 35 --out models/runs/motion.pt

``--p-real`` mixes in crops of the hand-labelled real photos of models/trainset_real/ (models/training/real_data.py,
never models/realset/, the evaluation set); ``--from-onnx`` starts from the weights of a shipped ONNX file.

Runs on the CPU (one torch thread by default, one data worker process) or on CUDA when there is one.
Training seeds are 0 .. 9,999,999; evaluation uses seeds from 10,000,000 up (models/evaluate.py), never
trained on. Training stops after ``--minutes`` of wall time (the learning rate follows a cosine over that
time budget) or after ``--steps`` steps, whichever comes first, and writes the checkpoint every minute.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from . import real_data, render_data
from .data import EVAL_SEED_START, make_sample, sample_from_scene
from .net import MotionUNet, count_params


class ProceduralStream(IterableDataset):
    """Endless samples: procedural scenes drawn from consecutive seeds, and with probability ``p_rendered`` a
    Blender-rendered scene from ``models/training/render_data.py``'s cache (training seeds only) instead."""

    def __init__(
        self, size, start=0, p_hint=0.5, p_mask=0.5, p_rendered=0.0, rendered_cache=None, p_turn=0.0,
        p_real=0.0, real_dir=None,
    ):
        self.size, self.start, self.p_hint, self.p_mask, self.p_turn = size, start, p_hint, p_mask, p_turn
        self.p_rendered = p_rendered
        self.p_real = p_real
        self.real = []
        if p_real > 0:
            folder = Path(real_dir) if real_dir else real_data.TRAINSET
            real_data.check_apart(folder)
            self.real = real_data.load_labelled(folder)
            if not self.real:
                raise SystemExit(f"no labelled photos in {folder}")
        self.rendered = []
        if p_rendered > 0:
            self.cache = rendered_cache or render_data.DEFAULT_CACHE
            self.rendered = render_data.cached_seeds(self.cache, below=EVAL_SEED_START)
            self._listed = time.time()
            if not self.rendered:
                raise SystemExit(
                    f"no rendered scenes in {self.cache}: run python -m stillflow.models.training.render_data first"
                )

    def _sample(self, seed):
        if self.p_rendered > 0:
            rng = np.random.default_rng([seed, 1])
            if rng.random() < self.p_rendered:
                if time.time() - self._listed > 60:  # the renderer may still be adding scenes
                    self.rendered = render_data.cached_seeds(self.cache, below=EVAL_SEED_START)
                    self._listed = time.time()
                sc = render_data.load_cached(self.rendered[int(rng.integers(len(self.rendered)))], self.cache)
                return sample_from_scene(
                    rng, sc["rgb"], sc["motion"], self.size, self.p_hint, self.p_mask, True, self.p_turn
                )
        return make_sample(seed, self.size, self.p_hint, self.p_mask, p_turn=self.p_turn)

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        seed = self.start + wid
        while True:
            if seed >= EVAL_SEED_START:
                raise RuntimeError("training seeds ran into the evaluation range")
            rng = np.random.default_rng([seed, 2])
            if self.real and rng.random() < self.p_real:
                r = real_data.real_sample(rng, self.real[int(rng.integers(len(self.real)))], self.size)
                yield (torch.from_numpy(r["x"]), torch.from_numpy(r["y"]),
                       torch.zeros(r["x"].shape[1:]), torch.from_numpy(r["w"]), torch.tensor(1.0))
            else:
                s = self._sample(seed)
                inside = s["mask_true"] * float(s["has_mask"] and s["has_hint"])
                yield (torch.from_numpy(s["x"]), torch.from_numpy(s["y"]), torch.from_numpy(inside),
                       torch.zeros((3, *s["x"].shape[1:])), torch.tensor(0.0))
            seed += nw


def loss_fn(pred, target, inside, inside_weight, weights=None, is_real=None, real_weight=1.0, still_weight=1.0):
    """EPE over all pixels, plus ``inside_weight`` x the EPE inside the true moving region of the samples that
    have both a mask and hints (the case where the user's arrows must be improved on, not just passed); the
    labelled real photos of the batch (``is_real``) get ``real_weight`` x ``real_data.real_loss`` instead."""
    if is_real is not None and bool(is_real.any()):
        real = is_real > 0.5
        loss = real_weight * real_data.real_loss(pred[real], target[real], weights[real], still_weight)
        if bool((~real).any()):
            loss = loss + loss_fn(pred[~real], target[~real], inside[~real], inside_weight)
        return loss
    d = torch.sqrt(((pred - target) ** 2).sum(1) + 1e-6)
    loss = d.mean()
    if inside_weight > 0 and float(inside.sum()) > 0:
        loss = loss + inside_weight * (d * inside).sum() / inside.sum()
    return loss


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1].strip())
    ap.add_argument("--minutes", type=float, default=35.0)
    ap.add_argument("--steps", type=int, default=10**9)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--base", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed-start", type=int, default=0)
    ap.add_argument("--p-hint", type=float, default=0.5, help="probability that a sample has hints")
    ap.add_argument("--p-mask", type=float, default=0.5, help="probability that a sample has a mask")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "runs" / "motion.pt"))
    ap.add_argument("--resume", default=None)
    ap.add_argument("--p-rendered", type=float, default=0.0, help="share of Blender-rendered scenes")
    ap.add_argument("--rendered-cache", default=None, help="render_data cache (default models/data/rendered)")
    ap.add_argument("--inside-weight", type=float, default=0.0, help="extra loss weight inside a given mask")
    ap.add_argument("--p-turn", type=float, default=0.0, help="share of hinted samples with turned motion")
    ap.add_argument("--p-real", type=float, default=0.0, help="share of crops of labelled real photos")
    ap.add_argument("--real-dir", default=None, help="labelled real photos (default models/trainset_real)")
    ap.add_argument("--real-weight", type=float, default=1.0, help="weight of the real photos' loss")
    ap.add_argument("--still-weight", type=float, default=1.0, help="weight of the still polygons' speed")
    ap.add_argument("--from-onnx", default=None, help="start from the weights of this ONNX export")
    ap.add_argument("--freeze-backbone", action="store_true", help="train only the hint head (models/training/net.py)")
    ap.add_argument(
        "--gate-bias", type=float, default=None, help="set the hint gate's bias (pass-through prior)"
    )
    a = ap.parse_args(argv)

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = MotionUNet(base=a.base).to(dev)
    if a.resume:  # warm start; tensors whose shape changed get their overlapping slice (new parts stay 0)
        old_sd = torch.load(a.resume, map_location=dev)["state_dict"]
        sd = net.state_dict()
        for k, v in sd.items():
            if k in old_sd and old_sd[k].shape == v.shape:
                sd[k] = old_sd[k]
            elif k in old_sd and old_sd[k].dim() == v.dim():
                new = torch.zeros_like(v)
                sl = tuple(slice(0, min(a_, b_)) for a_, b_ in zip(old_sd[k].shape, v.shape, strict=True))
                new[sl] = old_sd[k][sl]
                sd[k] = new
        net.load_state_dict(sd)
    if a.from_onnx:  # the export keeps every parameter as an initializer under its state_dict name
        import onnx
        from onnx import numpy_helper

        inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(a.from_onnx).graph.initializer}
        sd = net.state_dict()
        missing = [k for k in sd if k not in inits]
        if missing:
            raise SystemExit(f"{a.from_onnx} lacks {len(missing)} parameters (e.g. {missing[0]}): another net")
        net.load_state_dict({k: torch.from_numpy(np.array(inits[k])).to(dev) for k in sd})
    if a.gate_bias is not None:
        with torch.no_grad():
            net.head[2].bias[2] = a.gate_bias
    params = list(net.parameters())
    if a.freeze_backbone:  # train the hint head only: what the net predicts without hints stays as it was
        for p in net.backbone_parameters():
            p.requires_grad_(False)
        params = net.hint_parameters()
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=1e-4)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = open(out.with_suffix(".log"), "a")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    say(f"device {dev}, threads {a.threads}, workers {a.workers}, params {count_params(net)}, args {vars(a)}")
    loader = DataLoader(
        ProceduralStream(a.size, a.seed_start, a.p_hint, a.p_mask, a.p_rendered, a.rendered_cache, a.p_turn,
                         a.p_real, a.real_dir),
        batch_size=a.batch,
        num_workers=a.workers,
        persistent_workers=a.workers > 0,
    )
    budget = a.minutes * 60.0
    t0 = time.time()
    last_save = t0
    ema = None
    step = 0

    def save():
        torch.save(
            {
                "state_dict": net.state_dict(),
                "base": a.base,
                "step": step,
                "seconds": time.time() - t0,
                "args": vars(a),
            },
            out,
        )

    for x, y, inside, weights, is_real in loader:
        el = time.time() - t0
        if el > budget or step >= a.steps:
            break
        frac = max(el / budget, step / a.steps if a.steps < 10**9 else 0.0)
        warm = min(1.0, (step + 1) / 100)
        lr = a.lr * warm * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y, inside, weights, is_real = (t.to(dev) for t in (x, y, inside, weights, is_real))
        pred = net(x)
        loss = loss_fn(pred, y, inside, a.inside_weight, weights, is_real, a.real_weight, a.still_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        if step % 50 == 0:
            say(f"step {step} t {el:.0f}s lr {lr:.2e} loss {loss.item():.4f} ema {ema:.4f}")
        if time.time() - last_save > 60:
            save()
            last_save = time.time()
    save()
    say(f"done: {step} steps, {time.time() - t0:.0f}s, {step * a.batch} samples, ema loss {ema:.4f} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
