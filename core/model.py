"""The motion model at run time: an ONNX Runtime session over Stillflow's shipped network (numpy only, no bpy).

    model = MotionModel()                      # models/stillflow_motion.onnx next to this package
    M = model.predict(rgb, mask=None, hint_field=None)   # float32 (H, W, 2), px/frame, +dy down

The network runs at a working size (512 px on the long side by default): the photo, the mask and the hint
field are resized to it (the hint magnitudes scaled by the same ratio), the result is resized back to the
photo's size and its magnitudes divided by that ratio, so ``M`` is in pixels per frame of the input image.

Execution provider: CUDA only where it can really run (onnxruntime-gpu lists CUDA even on machines without
a GPU, and asking for it there logs a loud error), else CPU. ``.provider`` says which one ran; it is logged.
onnxruntime is imported lazily, so importing this module costs nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .engines.select import cuda_device_present
from .errors import InputError, StillflowError

log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "stillflow_motion.onnx"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
SLOW_HINTS = 0.8  # px/frame at the working size: the 90th percentile of the arrows' speed is lifted to this


def _import_ort():
    try:
        import onnxruntime as ort
    except Exception as exc:  # ImportError, or a broken binary
        raise StillflowError(
            f"onnxruntime is not available ({type(exc).__name__}): install it (pip install onnxruntime) "
            "or use hints only"
        ) from None
    return ort


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights; a widened (antialiased) triangle when shrinking."""
    scale = n_out / n_in
    support = max(1.0, 1.0 / scale)
    centres = (np.arange(n_out, dtype=np.float64) + 0.5) / scale - 0.5
    src = np.arange(n_in, dtype=np.float64)
    w = np.maximum(0.0, 1.0 - np.abs(src[None, :] - centres[:, None]) / support)
    # edges: taps that fell off the image are folded onto the nearest edge pixel by renormalising
    s = w.sum(1, keepdims=True)
    empty = s[:, 0] <= 0
    if empty.any():
        idx = np.clip(np.round(centres[empty]).astype(int), 0, n_in - 1)
        w[empty] = 0.0
        w[empty, idx] = 1.0
        s = w.sum(1, keepdims=True)
    return (w / s).astype(np.float32)


def resize(arr: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize float32 (H, W[, C]) to (h, w[, C]) with (antialiased) bilinear weights, pure numpy."""
    a = np.asarray(arr, np.float32)
    if a.shape[:2] == (h, w):
        return a.copy()
    squeeze = a.ndim == 2
    if squeeze:
        a = a[..., None]
    f = min(a.shape[0] // h, a.shape[1] // w) // 2
    if f >= 2:  # large reduction: block means first (fast, exact box filter), then the weighted resize
        ph, pw = (-a.shape[0]) % f, (-a.shape[1]) % f
        if ph or pw:
            a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
        a = a.reshape(a.shape[0] // f, f, a.shape[1] // f, f, a.shape[2]).mean(axis=(1, 3), dtype=np.float32)
    ry = _resize_matrix(a.shape[0], h)
    rx = _resize_matrix(a.shape[1], w)
    t = np.tensordot(ry, a, axes=(1, 0))  # (h, W, C)
    t = np.tensordot(rx, t, axes=(1, 1)).transpose(1, 0, 2)  # (h, w, C)
    t = np.ascontiguousarray(t, dtype=np.float32)
    return t[..., 0] if squeeze else t


class MotionModel:
    """ONNX Runtime session of the motion network. ``provider`` is the execution provider that runs it."""

    def __init__(self, path=None, device: str = "auto", working_size: int | None = 512):
        self.path = Path(path) if path is not None else DEFAULT_MODEL_PATH
        self.working_size = working_size
        if not self.path.is_file():
            raise StillflowError(
                f"motion model file not found: {self.path} (reinstall Stillflow or choose another model "
                "file; motion from hints still works)"
            )
        if device not in ("auto", "cpu", "cuda"):
            raise StillflowError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'")
        ort = _import_ort()
        self.notes: list[str] = []
        want_cuda = (
            device in ("auto", "cuda") and CUDA in ort.get_available_providers() and cuda_device_present()
        )
        if device == "cuda" and not want_cuda:
            self.notes.append("CUDA was asked for but no usable CUDA device was found: running on the CPU")
            log.warning(self.notes[-1])
        self.session = None
        if want_cuda:
            try:
                so = ort.SessionOptions()
                so.log_severity_level = 3
                sess = ort.InferenceSession(str(self.path), so, providers=[CUDA, CPU])
                if sess.get_providers()[0] == CUDA:
                    self.session = sess
                else:
                    self.notes.append(
                        "the CUDA provider did not load (CUDA/cuDNN libraries missing?): using the CPU"
                    )
                    log.warning(self.notes[-1])
            except Exception as exc:
                self.notes.append(f"the CUDA provider failed ({type(exc).__name__}): using the CPU")
                log.warning(self.notes[-1])
        if self.session is None:
            try:
                so = ort.SessionOptions()
                so.log_severity_level = 3
                self.session = ort.InferenceSession(str(self.path), so, providers=[CPU])
            except Exception as exc:
                raise StillflowError(
                    f"motion model file {self.path.name} could not be loaded ({type(exc).__name__}): it is "
                    "corrupt or not a Stillflow ONNX model; reinstall Stillflow or use hints only"
                ) from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[1] != 6:
            raise StillflowError(
                f"{self.path.name} is not a Stillflow motion model (expects one input of shape N x 6 x H x W)"
            )
        self.input_name = inputs[0].name
        self.output_name = self.session.get_outputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        self.multiple = int(meta.get("stillflow.multiple", 16))
        self.provider = self.session.get_providers()[0]
        log.info("motion model %s runs on %s", self.path.name, self.provider)

    def predict(self, rgb, mask=None, hint_field=None) -> np.ndarray:
        """Motion field float32 (H, W, 2) in px/frame of the input image (+dx right, +dy down)."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] not in (3, 4) or min(rgb.shape[:2]) < 1:
            raise InputError(f"image must be H x W x 3, got shape {rgb.shape}")
        if rgb.dtype == np.uint8:
            rgb = rgb.astype(np.float32) / 255.0
        rgb = np.asarray(rgb[..., :3], np.float32)
        if not np.isfinite(rgb).all():
            raise InputError("image holds NaN or infinite values")
        H, W = rgb.shape[:2]
        if mask is not None:
            mask = np.asarray(mask, np.float32)
            if mask.ndim == 3 and mask.shape[2] == 1:
                mask = mask[..., 0]
            if mask.shape != (H, W) or not np.isfinite(mask).all():
                raise InputError(f"mask must be finite and {H} x {W}, got shape {mask.shape}")
        if hint_field is not None:
            hint_field = np.asarray(hint_field, np.float32)
            if hint_field.shape != (H, W, 2) or not np.isfinite(hint_field).all():
                raise InputError(f"hint field must be finite and {H} x {W} x 2, got shape {hint_field.shape}")

        if self.working_size:
            s = self.working_size / max(H, W)
            h, w = max(1, round(H * s)), max(1, round(W * s))
        else:
            h, w = H, W
        sy, sx = h / H, w / W
        x = np.empty((6, h, w), np.float32)
        x[0:3] = resize(np.clip(rgb, 0.0, 1.0), h, w).transpose(2, 0, 1)
        x[3] = 1.0 if mask is None else np.clip(resize(mask, h, w), 0.0, 1.0)
        if hint_field is None:
            x[4:6] = 0.0
        else:  # the network was trained with the hint field multiplied by the mask (DESIGN.md)
            hf = resize(hint_field if mask is None else hint_field * mask[..., None], h, w)
            x[4] = hf[..., 0] * sx
            x[5] = hf[..., 1] * sy
        # Arrows slower than anything the net was trained on (below about SLOW_HINTS px/frame at the working
        # size) are sped up on the way in and the field slowed down by the same factor on the way out: the
        # arrows set the speed, and at training speeds the net follows their direction.
        gain = 1.0
        if hint_field is not None:
            speed = np.hypot(x[4], x[5])
            moving = speed[speed > 1e-6]
            if moving.size:
                gain = max(1.0, SLOW_HINTS / float(np.percentile(moving, 90)))
                x[4:6] *= gain
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="edge")
        out = self.session.run([self.output_name], {self.input_name: x[None]})[0][0, :, :h, :w]
        field = resize(out.transpose(1, 2, 0), H, W)
        field[..., 0] /= sx * gain
        field[..., 1] /= sy * gain
        return np.ascontiguousarray(field, dtype=np.float32)
