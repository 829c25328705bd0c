"""Motion on real photos never trained on (models/realset/, CC0 / public domain, LICENSES.md): one table.

    python -m stillflow.models.evaluate_real [--model FILE.onnx] [--size 512]

Each photo has a hand-drawn hints file: its motion polygons are the true moving region, its arrows the true
direction (spread over the region by core.hints.dense_from_arrows, so every moving pixel has a direction).
Per photo, with no hints and no mask given to the model (what `--motion model` sees):
- IoU: the predicted moving region (|M| > 0.2161635 px/frame at the photo's 960 px size) against the true
  one (photos where nothing moves: 1 when nothing is predicted to move, else 0);
- still moving: the fraction of the truly still pixels that the prediction moves by more than 0.2 px/frame;
- still seen: the truly still pixels moved by more than 0.2 px/frame where the photo has an edge or
  texture of its own (``textured``), over all the truly still pixels: the part of "still moving" a viewer
  can see (a clear sky or flat sand that slides looks the same in every frame);
- still drift: the fraction of the truly still pixels that it moves at all (a loop slides them each way, and
  the renderer resamples them: exactly still, they are the photo itself in every frame);
- cosine: the mean cosine between predicted and true direction inside the true region (0 where the
  prediction is zero);
- and, with the arrows given as hints, the speed ratio at the arrows (predicted speed / drawn speed, median
  over the arrows' midpoints) and the cosine there, and along_10pct: the share of the points at a quarter,
  half and three quarters of every arrow whose speed is within 10 % of the drawn speed;
- sky: what core.sky found (clear or cloudy, and the fraction of the picture; "-": none), which without
  hints replaced the network's field there; mirror: the water line core.reflection found (a fraction of
  the height; "-": none), below which the water drifts and above which the shore stays still.
Baselines: "everything moves" (IoU of the whole picture), "zero motion", "constant downward field".
This set is for evaluation only: nothing in models/training reads it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..core.field import MOTION_THRESHOLD, photo_edges
from ..core.hints import dense_from_arrows, load_hints, mask_from_hints
from ..core.imageio import load_image
from ..core.motion import predict_motion
from ..core.reflection import find_reflection
from ..core.sky import find_sky

REALSET = Path(__file__).resolve().parent / "realset"
THRESHOLD = MOTION_THRESHOLD  # px/frame: the reference data's motion threshold
STILL = 0.2  # px/frame: a still pixel moving faster than this is a defect a viewer sees


def load_photo(path: Path, size: int):
    """(rgb, hints scaled to it, true mask bool, true direction field (H, W, 2) unit vectors or zero)."""
    img = load_image(path, max_size=size).rgb
    h, w = img.shape[:2]
    hints = load_hints(path.with_name(path.stem + ".hints.json")).for_size(w, h)
    mask = mask_from_hints(hints, (h, w))
    mask = np.zeros((h, w), bool) if mask is None else mask > 0.5
    direction = np.zeros((h, w, 2), np.float32)
    if hints.arrows:
        dense = dense_from_arrows(hints.arrows, (h, w))
        norm = np.linalg.norm(dense, axis=2, keepdims=True)
        direction = np.where(norm > 1e-6, dense / np.maximum(norm, 1e-6), 0.0) * mask[..., None]
    return img, hints, mask, direction


def scores(field: np.ndarray, mask: np.ndarray, direction: np.ndarray, scale: float,
           texture: np.ndarray | None = None) -> dict:
    """The figures of one predicted field (px/frame at the evaluation size; ``scale`` turns it into px/frame
    at the photo's own 960 px). ``texture`` (bool (H, W): where the photo has edges or texture of its own,
    ``textured``) adds still_seen."""
    speed = np.linalg.norm(field, axis=2) * scale
    moving = speed > THRESHOLD
    if mask.any():
        union = (moving | mask).sum()
        iou = float((moving & mask).sum() / union) if union else 1.0
        unit = field / np.maximum(np.linalg.norm(field, axis=2, keepdims=True), 1e-9)
        cos = float(((unit * direction).sum(axis=2) * (speed > 1e-6))[mask].mean())
    else:
        iou = float(not moving.any())
        cos = float("nan")
    still = ~mask
    out = {"iou": iou, "still_moving": float((speed[still] > STILL).mean()) if still.any() else 0.0,
           "still_drift": float((speed[still] > 0.0).mean()) if still.any() else 0.0, "cos": cos}
    if texture is not None:
        seen = (speed > STILL) & still & texture
        out["still_seen"] = float(seen.sum() / still.sum()) if still.any() else 0.0
    return out


def textured(img: np.ndarray) -> np.ndarray:
    """Where the photo has an edge or texture of its own (``core.field.photo_edges`` over a half): a still
    pixel that slides there is seen; one in a smooth clear sky or flat sand looks the same moved."""
    return photo_edges(img) > 0.5


def _speed_ratio(field: np.ndarray, a, t: float) -> tuple[float, np.ndarray]:
    """(predicted speed / drawn speed, predicted vector) at the fraction ``t`` of arrow ``a``."""
    h, w = field.shape[:2]
    x = int(round(min(max(a.start[0] + t * (a.end[0] - a.start[0]), 0), w - 1)))
    y = int(round(min(max(a.start[1] + t * (a.end[1] - a.start[1]), 0), h - 1)))
    p = field[y, x].astype(np.float64)
    return float(np.linalg.norm(p) / np.linalg.norm(a.velocity)), p


def arrow_scores(field: np.ndarray, hints, scale: float) -> tuple[float, float, float]:
    """(median predicted speed / drawn speed and mean cosine at the arrows' midpoints, the share of points at
    a quarter, half and three quarters of every arrow whose speed is within 10 % of the drawn speed)."""
    ratios, cosines, along = [], [], []
    for a in hints.arrows:
        v = np.array(a.velocity, np.float64)
        if np.linalg.norm(v) < 1e-6:
            continue
        r, p = _speed_ratio(field, a, 0.5)
        ratios.append(r)
        cosines.append(float(p @ v / max(np.linalg.norm(p) * np.linalg.norm(v), 1e-9)))
        along += [abs(q - 1.0) <= 0.1 for q in (_speed_ratio(field, a, 0.25)[0], r, _speed_ratio(field, a, 0.75)[0])]
    if not ratios:
        return float("nan"), float("nan"), float("nan")
    return float(np.median(ratios)), float(np.mean(cosines)), float(np.mean(along))


def evaluate(paths: list[Path], size: int, model_path: str | None = None) -> list[dict]:
    rows = []
    for path in paths:
        img, hints, mask, direction = load_photo(path, size)
        h, w = img.shape[:2]
        scale = 960.0 / max(h, w)  # hints and speeds are drawn on the 960 px photo
        pred = predict_motion(img, source="model", model_path=model_path).field
        row = {"photo": path.stem, **scores(pred, mask, direction, scale, textured(img))}
        raw = predict_motion(img, source="model", model_path=model_path, sky=False).field
        found = find_sky(img, raw)  # what core.sky made of the photo's sky (no sky, clear, cloudy)
        row["sky"] = "-" if found is None else f"{'cloudy' if found.cloudy else 'clear'} {found.fraction:.2f}"
        mirror = find_reflection(img)
        row["mirror"] = "-" if mirror is None else f"{mirror.line:.2f}"
        everything = np.ones((h, w, 2), np.float32)
        row["iou_everything"] = scores(everything, mask, direction, scale)["iou"]
        row["iou_zero"] = scores(np.zeros_like(everything), mask, direction, scale)["iou"]
        down = np.zeros((h, w, 2), np.float32)
        down[..., 1] = 1.0
        d = scores(down, mask, direction, scale)
        row["cos_down"], row["still_down"] = d["cos"], d["still_moving"]
        if hints.arrows:
            guided = predict_motion(img, hints=hints, source="model", model_path=model_path).field
            row["speed_ratio"], row["arrow_cos"], row["along_10pct"] = arrow_scores(guided, hints, 1.0)
        else:
            row["speed_ratio"] = row["arrow_cos"] = row["along_10pct"] = float("nan")
        rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    cols = ("iou", "iou_everything", "still_moving", "still_seen", "still_drift", "still_down", "cos", "cos_down",
            "speed_ratio", "arrow_cos", "along_10pct")
    print(f"{'photo':32s} " + " ".join(f"{c:>14s}" for c in cols) + f" {'sky':>11s} {'mirror':>6s}")
    for r in rows:
        print(f"{r['photo'][:32]:32s} " + " ".join(f"{r[c]:14.3f}" for c in cols)
              + f" {r.get('sky', ''):>11s} {r.get('mirror', ''):>6s}")
    moving = [r for r in rows if not np.isnan(r["cos"])]

    def mean(key, rs):
        vals = [r[key] for r in rs if not np.isnan(r[key])]
        return float(np.mean(vals)) if vals else float("nan")

    print(f"{'mean (photos that move)':32s} " + " ".join(f"{mean(c, moving):14.3f}" for c in cols))
    beat = sum(r["iou"] > r["iou_everything"] for r in moving)
    print(f"IoU above 'everything moves' on {beat} of {len(moving)} photos; still pixels moving at most "
          f"{max(r['still_moving'] for r in rows):.3f} (seen: {max(r.get('still_seen', 0.0) for r in rows):.3f}); "
          "photos with nothing moving: "
          + ", ".join(f"{r['photo']} {r['still_moving']:.3f}" for r in rows if np.isnan(r["cos"])))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="an ONNX model (default: the shipped one)")
    ap.add_argument("--size", type=int, default=512, help="photos are evaluated at this long side")
    ap.add_argument("photos", nargs="*", type=Path, help="default: every photo in models/realset/")
    args = ap.parse_args(argv)
    paths = args.photos or sorted(REALSET.glob("*.jpg"))
    print_table(evaluate(paths, args.size, args.model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
