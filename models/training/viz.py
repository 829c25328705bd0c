"""Pictures of motion fields for people: colour-coded fields and arrows over the photo (OpenCV)."""

from __future__ import annotations

import numpy as np

from .data import MOTION_THRESHOLD


def flow_to_rgb(M, vmax=None):
    import cv2

    mag = np.linalg.norm(M, axis=-1)
    vmax = vmax or max(float(np.percentile(mag, 99)), 1e-3)
    hsv = np.zeros(M.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = ((np.arctan2(M[..., 1], M[..., 0]) + np.pi) / (2 * np.pi) * 179).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / vmax * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def visualise(rgb, M, path, step=24, scale=8.0):
    """Photo with arrows (x scale, white) above the colour-coded field (hue = direction, value = speed)."""
    import cv2

    img = (np.clip(rgb, 0, 1) * 255).astype(np.uint8).copy()
    h, w = M.shape[:2]
    for y in range(step // 2, h, step):
        for x in range(step // 2, w, step):
            dx, dy = M[y, x]
            if np.hypot(dx, dy) > MOTION_THRESHOLD:
                cv2.arrowedLine(
                    img, (x, y), (int(x + dx * scale), int(y + dy * scale)), (255, 40, 40), 1, tipLength=0.3
                )
    out = np.concatenate([img, flow_to_rgb(M)], 0)
    cv2.imwrite(str(path), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
