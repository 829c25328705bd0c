"""Training samples from real photos labelled by hand (models/trainset_real/, LICENSES.md there): what moves,
what is certainly still, and arrows where the photo itself shows the direction (a waterfall, a river's
streaks, waves rolling in). Kept apart from models/realset/ (the evaluation set): no file of one is in the
other, and ``check_apart`` fails if one ever is.

A labelled photo gives no full motion field, so its sample carries weights, not only a target:
- ``epe_w``: where the arrows say the motion (the polygons that hold an arrow): the target there is the
  arrows' field (core.hints.dense_from_arrows), trained with the endpoint error;
- ``still_w``: the freeze polygons: the speed there is pushed to zero;
- ``move_w``: the motion polygons: the speed there is pushed above ``MOVE_SPEED`` in any direction (clouds
  and calm lakes show no direction in a photo).
Unlabelled pixels (the uncertain edges, clear skies) carry no loss.
Photos are used at the scale the model runs them (512 px on the long side), cropped like the procedural
scenes (models/training/data.py and scenes.py), with a random rescale of 0.8-1.25, horizontal flips (dx negated) and the
same colour jitter.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import cv2
import numpy as np

from ...core.hints import dense_from_arrows, load_hints, rasterize_polygons
from .data import build_input
from .scenes import photometric

HERE = Path(__file__).resolve().parent.parent  # models/
TRAINSET = HERE / "trainset_real"
REALSET = HERE / "realset"
WORKING = 512  # px on the long side: the scale core.model.MotionModel runs the net at
MOVE_SPEED = 0.5  # px/frame at 512 px: a labelled moving pixel slower than this is penalised


SAMPLE_IDS = {"105518", "386148", "417083"}  # the sample photos' Pexels ids (samples/, ../shared/samples/)


def _source_ids(licences: Path) -> set[str]:
    """The source files named in a LICENSES.md: their paths' last name without extension (a Pexels id or a
    file name), so that another copy or crop of the same photo is caught."""
    text = licences.read_text(encoding="utf-8") if licences.is_file() else ""
    return {Path(m).stem.lower() for m in re.findall(r"path `([^`]+?\.(?:jpe?g|png|webp))", text, re.I)}


def check_apart(train: Path = TRAINSET, evaluation: Path = REALSET) -> None:
    """Raise when a training photo is one of the evaluation photos or Stillflow's samples: the same file name,
    the same bytes, or the same source file in the two LICENSES.md."""
    def digest(p):
        return hashlib.sha1(p.read_bytes()).hexdigest()

    names = {p.stem for p in evaluation.glob("*.jpg")}
    digests = {digest(p) for p in evaluation.glob("*.jpg")}
    for p in train.glob("*.jpg"):
        if p.stem in names or digest(p) in digests:
            raise SystemExit(f"{p.name} is in the evaluation set {evaluation}: it must not be trained on")
    shared = _source_ids(train / "LICENSES.md") & (_source_ids(evaluation / "LICENSES.md") | SAMPLE_IDS)
    if shared:
        raise SystemExit(f"training photos come from the same source files as evaluation or sample photos: "
                         f"{sorted(shared)}")


def load_labelled(folder: Path = TRAINSET) -> list[dict]:
    """Every labelled photo of ``folder`` at the working scale: rgb, still, move, arrow field and weight."""
    out = []
    for path in sorted(folder.glob("*.jpg")):
        hints_path = path.with_name(path.stem + ".hints.json")
        if not hints_path.is_file():
            continue
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        h0, w0 = bgr.shape[:2]
        s = WORKING / max(h0, w0)
        h, w = round(h0 * s), round(w0 * s)
        rgb = cv2.cvtColor(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        hints = load_hints(hints_path)
        if hints.image_size is None:
            hints.image_size = (w0, h0)
        hints = hints.for_size(w, h)
        still = rasterize_polygons(hints.freeze_polygons, (h, w))  # zeros when there is none
        move = np.zeros((h, w), np.float32)
        arrow_w = np.zeros((h, w), np.float32)
        for poly in hints.motion_polygons:
            region = rasterize_polygons([poly], (h, w))
            move = np.maximum(move, region)
            for a in hints.arrows:
                mx, my = (a.start[0] + a.end[0]) / 2, (a.start[1] + a.end[1]) / 2
                if region[int(min(max(my, 0), h - 1)), int(min(max(mx, 0), w - 1))] > 0.5:
                    arrow_w = np.maximum(arrow_w, region)
                    break
        move = move * (1.0 - still)
        arrows = dense_from_arrows(hints.arrows, (h, w)) if hints.arrows else np.zeros((h, w, 2), np.float32)
        out.append({"name": path.stem, "rgb": rgb.astype(np.float32) / 255.0, "still": still, "move": move,
                    "arrow_w": arrow_w * move, "arrows": arrows.astype(np.float32)})
    return out


def real_sample(rng, photo: dict, size: int) -> dict:
    """One crop of a labelled photo: dict(x (6,H,W), y (2,H,W), w (3,H,W) = epe_w, still_w, move_w)."""
    scale = rng.uniform(0.8, 1.25)
    h, w = photo["rgb"].shape[:2]
    sh, sw = max(size, round(h * scale)), max(size, round(w * scale))
    maps = np.dstack([photo["rgb"], photo["arrows"] * (sw / w), photo["arrow_w"], photo["still"], photo["move"]])
    maps = cv2.resize(maps, (sw, sh), interpolation=cv2.INTER_LINEAR)
    oy, ox = rng.integers(0, sh - size + 1), rng.integers(0, sw - size + 1)
    maps = maps[oy:oy + size, ox:ox + size]
    if rng.random() < 0.5:
        maps = maps[:, ::-1].copy()
        maps[..., 3] *= -1.0
    rgb = photometric(rng, np.ascontiguousarray(maps[..., :3]))
    weights = (maps[..., 5:8] > 0.5).astype(np.float32)
    target = maps[..., 3:5] * weights[..., 0:1]
    return {"x": build_input(rgb), "y": np.ascontiguousarray(target.transpose(2, 0, 1)),
            "w": np.ascontiguousarray(weights.transpose(2, 0, 1))}


def real_loss(pred, y, w, still_weight: float = 1.0):
    """The labelled photos' loss (torch): EPE where the arrows say the motion, ``still_weight`` x the speed
    over the still polygons, and the shortfall below MOVE_SPEED over the moving ones; each a mean over its
    own pixels."""
    import torch

    speed = torch.sqrt((pred ** 2).sum(1) + 1e-6)
    epe = torch.sqrt(((pred - y) ** 2).sum(1) + 1e-6)
    total = pred.new_zeros(())
    for weight, term in ((w[:, 0], epe), (w[:, 1], still_weight * speed), (w[:, 2], torch.relu(MOVE_SPEED - speed))):
        if float(weight.sum()) > 0:
            total = total + (term * weight).sum() / weight.sum()
    return total
