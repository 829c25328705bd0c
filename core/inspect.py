"""`stillflow inspect`: the quality figures of a rendered loop, and a contact sheet to see where it fails.

A loop is a folder of numbered frames (PNG, EXR, JPEG...) or a movie (MP4 and others through OpenCV, GIF
and WebP through Pillow). The figures are `core.quality`'s: per-frame sharpness inside the moving region
over the photo's (frame 0 stands in for the photo unless one is given), its worst value and spread over
the loop, the double-image figure, the seam (wrap step over the median step), the largest step outside the
moving region (keyframe re-graining shows there), the largest step inside it over the median, speckle.
The moving region is the mask given (an image, or a hints file's motion polygons), else the pixels that
change by more than 2/255 anywhere in the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .errors import InputError
from .field import box_blur
from .quality import QualityMeter

log = logging.getLogger(__name__)

FRAME_SUFFIXES = {".png", ".exr", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}
MOVIE_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}
ANIMATION_SUFFIXES = {".gif", ".webp"}


def loop_reader(path: str | Path) -> tuple[Callable[[], Iterator[np.ndarray]], int]:
    """(a function that yields the loop's frames as float32 sRGB (H, W, 3), each time it is called; the
    frame count). Refuses what is not a loop with one line."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"loop not found: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
        if len(files) < 2:
            raise InputError(f"{path} holds {len(files)} frame(s): a loop needs at least 2 numbered frames")
        return (lambda: (_read_frame(p) for p in files)), len(files)
    suffix = path.suffix.lower()
    if suffix in ANIMATION_SUFFIXES:
        return _animation(path)
    if suffix in MOVIE_SUFFIXES:
        return _movie(path)
    raise InputError(f"{path.name} is not a loop: give a folder of frames or a movie (MP4, WebM, GIF, WebP)")


def _read_frame(path: Path) -> np.ndarray:
    from .imageio import linear_to_srgb, load_image

    if path.suffix.lower() == ".exr":
        import OpenEXR

        with OpenEXR.File(str(path)) as f:
            ch = f.channels()
            px = ch.get("RGB", ch.get("RGBA"))
            if px is None:
                raise InputError(f"{path.name} has no RGB channels")
            return linear_to_srgb(np.asarray(px.pixels, np.float32)[..., :3])  # EXR frames are scene-linear
    return load_image(path).rgb


def _animation(path: Path):
    from .imageio import pil

    Image = pil()
    try:
        with Image.open(path) as im:
            n = getattr(im, "n_frames", 1)
    except Exception:
        raise InputError(f"{path.name} could not be read as an animation") from None
    if n < 2:
        raise InputError(f"{path.name} has {n} frame: not a loop")

    def frames():
        with Image.open(path) as im:
            for i in range(n):
                im.seek(i)
                yield np.asarray(im.convert("RGB"), np.float32) / 255.0

    return frames, n


def _movie(path: Path):
    try:
        import cv2
    except ImportError:
        raise InputError("reading movies needs OpenCV (pip install opencv-python-headless): "
                         "or inspect the frame folder instead") from None
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    if n < 2:
        raise InputError(f"{path.name} could not be decoded as a movie of 2 frames or more")

    def frames():
        cap = cv2.VideoCapture(str(path))
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield np.ascontiguousarray(bgr[..., ::-1], dtype=np.float32) / 255.0
        finally:
            cap.release()

    return frames, n


def moving_region(frames: Iterator[np.ndarray], threshold: float = 2.0 / 255.0) -> np.ndarray:
    """Pixels that differ from frame 0 by more than ``threshold`` in some frame (lightly smoothed)."""
    first = None
    peak = None
    for f in frames:
        if first is None:
            first = f
            peak = np.zeros(f.shape[:2], np.float32)
            continue
        np.maximum(peak, np.abs(f - first).mean(axis=2), out=peak)
    return box_blur((peak > threshold).astype(np.float32), 2) > 0.5


def sheet_picks(n: int, columns: int = 6) -> list[int]:
    """The frames a contact sheet shows: evenly across the loop, the wrap's frame (N-1) last."""
    return sorted({round(i * (n - 1) / (columns - 1)) for i in range(columns - 1)} | {n - 1})


def inspect_loop(reader: Callable[[], Iterator[np.ndarray]], mask: np.ndarray | None = None,
                 photo: np.ndarray | None = None, keep=()) -> tuple[dict, np.ndarray, str, dict]:
    """The figures of the loop (core.quality), the mask they used, in words where it came from, and the
    frames whose indices are in ``keep`` (for the contact sheet: the frames are read once)."""
    how = "the mask given"
    if mask is None:
        mask = moving_region(reader())
        how = "the pixels that change (> 2/255)"
    first = None
    meter = None
    kept: dict[int, np.ndarray] = {}
    for i, f in enumerate(reader()):
        if i in keep:
            kept[i] = f
        if first is None:
            first = f
            if mask.shape != f.shape[:2]:
                raise InputError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the frames are "
                                 f"{f.shape[1]}x{f.shape[0]}")
            if photo is not None and photo.shape != f.shape:
                raise InputError("the photo and the frames differ in size")
            meter = QualityMeter(mask.astype(np.float32), reference=photo)
        meter.add(f)
    result = meter.result()
    result["moving_fraction"] = float(mask.mean())
    return result, mask, how, kept


# ---------------------------------------------------------------------------------------- contact sheet


def contact_sheet(chosen: dict[int, np.ndarray], n: int, mask: np.ndarray, result: dict,
                  thumb_w: int = 320, crop: int = 160) -> np.ndarray:
    """An 8-bit RGB picture of the ``chosen`` frames (`sheet_picks`; the wrap's frame last), crops of the
    moving region at full resolution under them, and plots of per-frame sharpness, step and double-image
    figure with the wrap marked."""
    from .imageio import pil

    Image = pil()
    from PIL import ImageDraw

    picks = sorted(chosen)
    h, w = mask.shape
    cy, cx = _busiest(mask, result, chosen, crop)
    th = max(1, round(h * thumb_w / w))
    tiles, crops = [], []
    for i in picks:
        f = np.clip(chosen[i], 0, 1)
        im = Image.fromarray((f * 255 + 0.5).astype(np.uint8))
        tiles.append(np.asarray(im.resize((thumb_w, th), Image.LANCZOS)))
        c = f[cy:cy + crop, cx:cx + crop]
        c = np.pad(c, ((0, crop - c.shape[0]), (0, crop - c.shape[1]), (0, 0)))
        crops.append(np.asarray(Image.fromarray((c * 255 + 0.5).astype(np.uint8)).resize(
            (thumb_w, thumb_w), Image.NEAREST)))
    gap = 6
    width = len(picks) * (thumb_w + gap) + gap
    plot_h = 260
    height = gap + th + 22 + thumb_w + gap + plot_h + gap
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(picks):
        x = gap + k * (thumb_w + gap)
        sheet.paste(Image.fromarray(tiles[k]), (x, gap))
        label = f"frame {i}" + ("  (wraps to 0)" if i == n - 1 else "")
        draw.text((x + 4, gap + th + 4), label, fill=(255, 200, 80) if i in (0, n - 1) else (230, 230, 230))
        sheet.paste(Image.fromarray(crops[k]), (x, gap + th + 22))
    _plot(draw, (gap, height - plot_h - gap, width - gap, height - gap), result)
    return np.asarray(sheet)


def _busiest(mask: np.ndarray, result: dict, frames: dict, crop: int) -> tuple[int, int]:
    """Top-left corner of the crop: the mask's most changing crop-sized window between the chosen frames."""
    keys = sorted(frames)
    change = np.zeros(mask.shape, np.float32)
    for a, b in zip(keys, keys[1:], strict=False):
        change += np.abs(frames[b] - frames[a]).mean(axis=2)
    change *= mask
    h, w = mask.shape
    s = max(1, crop // 2)
    best, pos = -1.0, (0, 0)
    for y in range(0, max(1, h - crop + 1), s):
        for x in range(0, max(1, w - crop + 1), s):
            v = float(change[y:y + crop, x:x + crop].sum())
            if v > best:
                best, pos = v, (y, x)
    return pos


def _plot(draw, box, result: dict) -> None:
    """Per-frame curves: sharpness over the photo (white), step inside the mask (cyan, scaled to its max),
    double image (magenta, 0-0.5), step outside the mask (orange, 0-2/255); the wrap (last step) marked."""
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=(90, 90, 90))
    sharp = result.get("sharpness", [])
    n = len(sharp)
    if n < 2:
        return

    def xs(i, count):
        return x0 + 8 + (x1 - x0 - 16) * i / max(1, count - 1)

    def line(values, lo, hi, colour):
        if not values:
            return
        pts = [(xs(i, n), y1 - 8 - (y1 - y0 - 30) * (min(max(v, lo), hi) - lo) / (hi - lo))
               for i, v in enumerate(values)]
        draw.line(pts, fill=colour, width=2)

    line(sharp, 0.0, max(1.2, max(sharp)), (240, 240, 240))
    moving = result.get("moving_steps", [])
    if moving:
        top = max(moving) or 1.0
        line(moving[:-1] + [moving[-1]], 0.0, top * 1.1, (80, 220, 240))
    line(result.get("double_per_frame", []), 0.0, 0.5, (240, 80, 220))
    line(result.get("still_steps", []), 0.0, 2.0, (250, 160, 40))
    wx = xs(n - 1, n)
    draw.line([(wx, y0 + 2), (wx, y1 - 2)], fill=(255, 200, 80), width=1)
    draw.text((x0 + 8, y0 + 4), (f"sharpness/photo (white) worst {result['sharpness_worst']:.2f}, max/min "
                                 f"{result['sharpness_spread']:.2f}   step inside (cyan)   double image "
                                 f"(magenta, 0-0.5) worst {result['double_image']:.3f}   step outside (orange, "
                                 f"0-2/255) max {result['still_step_max']:.2f}   seam {result['seam_ratio']:.2f}"
                                 "   | = wrap"), fill=(230, 230, 230))
