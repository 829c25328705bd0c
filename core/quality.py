"""Quality figures of a rendered loop, computed while frames stream past (no frame list kept).

- hole fraction: pixels that neither splatting stream reached (filled afterwards), worst frame;
- seam ratio: mean |frame 0 - frame N-1| over the median mean |frame t+1 - frame t| (1 = invisible seam);
- sharpness: Laplacian energy inside the mask, worst frame over frame 0 (mid-loop ghosting and blur lower it);
- speckle: the largest local excess of high-frequency energy over frame 0 (16 px tiles inside the mask,
  in units of the median tile's energy in frame 0): dotted or grainy patterns where a stream is stretched
  thin raise it, although they raise the global sharpness figure too;
- edge tear: mean gradient magnitude (per pixel, 0-255 scale) in a thin band around the mask edge, worst
  frame minus frame 0 (a moving region sliding past a still one opens a new edge there).
"""

from __future__ import annotations

import numpy as np

from .field import box_blur


def _gray(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)


def laplacian(gray: np.ndarray) -> np.ndarray:
    lap = np.zeros_like(gray)
    lap[1:-1, 1:-1] = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4.0 * gray[1:-1, 1:-1]
    return lap


def laplacian_energy(lap: np.ndarray, region: np.ndarray) -> float:
    return float((lap[region] ** 2).mean()) if region.any() else 0.0


def _tile_energy(lap: np.ndarray, region: np.ndarray, tile: int = 16) -> np.ndarray:
    """Mean squared Laplacian per tile (NaN for tiles mostly outside the region)."""
    h, w = lap.shape
    th, tw = h // tile, w // tile
    e = (lap[: th * tile, : tw * tile] ** 2).reshape(th, tile, tw, tile).mean(axis=(1, 3))
    inside = region[: th * tile, : tw * tile].reshape(th, tile, tw, tile).mean(axis=(1, 3)) > 0.9
    return np.where(inside, e, np.nan)


def gradient_magnitude(gray: np.ndarray) -> np.ndarray:
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, 1:-1] = (gray[:, 2:] - gray[:, :-2]) * 0.5
    gy[1:-1] = (gray[2:] - gray[:-2]) * 0.5
    return np.sqrt(gx * gx + gy * gy)


def edge_band(mask: np.ndarray, width: int = 3) -> np.ndarray:
    """Pixels within about ``width`` px of the mask edge, on either side."""
    soft = box_blur((mask > 0.5).astype(np.float32), max(1, width // 2))
    return (soft > 0.02) & (soft < 0.98)


class QualityMeter:
    def __init__(self, mask: np.ndarray | None = None, band_px: int = 3):
        self.mask = None if mask is None else mask > 0.5
        self.band = None if mask is None else edge_band(mask, band_px)
        self.first = self.prev = None
        self.steps: list[float] = []
        self.sharp: list[float] = []
        self.tear: list[float] = []
        self.holes: list[float] = []
        self.tile_e0 = None
        self.speckle = 0.0

    def add(self, rgb: np.ndarray, hole_fraction: float = 0.0) -> None:
        gray = _gray(rgb)
        region = self.mask if self.mask is not None else np.ones(gray.shape, bool)
        lap = laplacian(gray)
        self.sharp.append(laplacian_energy(lap, region))
        tiles = _tile_energy(lap, region)
        if self.tile_e0 is None:
            self.tile_e0 = tiles
            valid = tiles[np.isfinite(tiles)]
            self.tile_floor = float(np.median(valid)) if valid.size else 1.0
        elif self.tile_floor > 0:
            excess = np.nanmax(tiles - self.tile_e0) if np.isfinite(tiles).any() else 0.0
            self.speckle = max(self.speckle, float(excess) / self.tile_floor)
        if self.band is not None and self.band.any():
            self.tear.append(float(gradient_magnitude(gray)[self.band].mean()) * 255.0)
        self.holes.append(hole_fraction)
        if self.prev is not None:
            self.steps.append(float(np.abs(rgb - self.prev).mean()))
        else:
            self.first = rgb.copy()
        self.prev = rgb.copy()

    def result(self) -> dict:
        seam = float(np.abs(self.first - self.prev).mean())
        median_step = float(np.median(self.steps)) if self.steps else 0.0
        s0 = self.sharp[0] if self.sharp and self.sharp[0] > 0 else 1.0
        return {
            "frames": len(self.sharp),
            "hole_fraction_max": max(self.holes) if self.holes else 0.0,
            "hole_fraction_mean": float(np.mean(self.holes)) if self.holes else 0.0,
            "seam": seam,
            "median_step": median_step,
            "seam_ratio": seam / median_step if median_step > 0 else 0.0,
            "sharpness_min": min(self.sharp) / s0 if self.sharp else 1.0,
            "worst_sharp_frame": int(np.argmin(self.sharp)) if self.sharp else 0,
            "edge_tear": (max(self.tear) - self.tear[0]) if self.tear else 0.0,
            "speckle": self.speckle,
        }


def loop_quality(frames, mask: np.ndarray | None = None) -> dict:
    """Quality of a loop from an iterable of ``core.render.Frame`` (or RGB arrays)."""
    meter = QualityMeter(mask)
    for fr in frames:
        if hasattr(fr, "rgb"):
            meter.add(fr.rgb, fr.hole_fraction)
        else:
            meter.add(fr)
    return meter.result()
