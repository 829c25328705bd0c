"""The motion field for a photo: from the network, from the hint arrows, or both; then masked and frozen.

This is the one entry point the command line and the Blender operators call to get M.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError, StillflowError
from .field import check_finite, shape_motion
from .hints import Hints, dense_from_arrows, freeze_from_hints, mask_from_hints

log = logging.getLogger(__name__)

SOURCES = ("auto", "hints", "model")


@dataclass
class MotionResult:
    field: np.ndarray  # float32 (H, W, 2) px/frame, row 0 top, +dy down
    source_used: str  # "model", "model+hints" or "hints"
    provider: str = ""  # ONNX Runtime provider when the model ran
    notes: list[str] = field(default_factory=list)


def predict_motion(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    hints: Hints | None = None,
    source: str = "auto",
    model_path: str | None = None,
    device: str = "auto",
    feather_px: float = 12.0,
    freeze: np.ndarray | None = None,
) -> MotionResult:
    """Motion field for ``image`` (float32 (H, W, 3)).

    ``mask``: painted motion mask (H, W) in [0, 1], combined with mask polygons in ``hints``.
    ``freeze``: extra multiplier (H, W) in [0, 1] (e.g. an image's alpha), combined with freeze hints.
    ``source``: "hints" (arrows only), "model" (the network, with the arrows as its hint input when given)
    or "auto": the arrows when there are any, else the network. On held-out data the arrows alone follow
    the true motion a little better than the network guided by them (EPE 0.556 vs 0.572 px/frame, see
    models/MODEL_CARD.md), and they are what the artist asked for; without arrows the network beats
    "no motion" clearly. "auto" with no arrows and no usable model raises StillflowError.
    """
    if source not in SOURCES:
        raise InputError(f"unknown motion source {source!r}: use auto, hints or model")
    h, w = image.shape[:2]
    check_finite(image, "image")
    notes: list[str] = []
    hints = hints.for_size(w, h) if hints is not None else Hints()
    hints.validate(w, h)

    masks = [m for m in (mask, mask_from_hints(hints, (h, w))) if m is not None]
    for m in masks:
        if m.shape != (h, w):
            raise InputError(f"motion mask is {m.shape[1]}x{m.shape[0]} but the image is {w}x{h}")
        check_finite(m, "motion mask")
    motion_mask = np.maximum.reduce(masks) if masks else None
    freezes = [f for f in (freeze, freeze_from_hints(hints, (h, w))) if f is not None]
    freeze_mult = np.minimum.reduce(freezes) if freezes else None

    hint_field = dense_from_arrows(hints.arrows, (h, w)) if hints.arrows else None
    provider = ""
    if source == "hints" or (source == "auto" and hint_field is not None):
        if hint_field is None:
            raise InputError("motion source 'hints' needs at least one arrow: draw arrows, or use the model")
        raw, used = hint_field, "hints"
    else:
        try:
            from .model import MotionModel

            model = MotionModel(model_path, device=device)
            raw = model.predict(image, mask=motion_mask, hint_field=hint_field)
            provider = model.provider
            notes.extend(model.notes)
            used = "model+hints" if hint_field is not None else "model"
        except ImportError as err:
            raise StillflowError(f"the motion model cannot run here ({err}): draw arrows and use hints") from None
    out = shape_motion(raw, motion_mask, freeze_mult, feather_px)
    check_finite(out, "predicted motion field")
    return MotionResult(out.astype(np.float32), used, provider, notes)
