"""Which engine runs: CUDA through torch when a GPU is there, else the compiled CPU engine."""

from __future__ import annotations

import ctypes.util
import logging
import sys

from ..errors import StillflowError
from .base import Engine

log = logging.getLogger(__name__)


def cuda_device_present() -> bool:
    """True when the CUDA driver library loads and reports at least one device (no torch needed)."""
    if "torch" in sys.modules:  # already imported by someone else: cheap and reliable
        try:
            return bool(sys.modules["torch"].cuda.is_available())
        except Exception:
            pass
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so", "libcuda.dylib"]
    found = ctypes.util.find_library("cuda")
    if found:
        names.insert(0, found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            if lib.cuInit(0) != 0:
                return False
            count = ctypes.c_int(0)
            return lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
        except Exception:
            return False
    return False


def cuda_available() -> bool:
    """True when torch can run on a CUDA GPU. Asks the driver first, so a machine without a GPU never
    pays for importing torch (seconds)."""
    if not cuda_device_present():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def get_engine(device: str = "auto") -> Engine:
    """The engine for ``device``: "auto" (CUDA when torch sees a GPU, else the compiled CPU engine),
    "cuda", "cpu" (compiled, falling back to numpy without numba), "numpy" (the reference), "torch-cpu"."""
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    if device == "cuda":
        if not cuda_available():
            raise StillflowError(
                "CUDA was asked for but torch with a CUDA GPU is not available: use --device cpu, or install "
                "GPU acceleration (Stillflow preferences in Blender)"
            )
        from .torch_engine import TorchEngine

        return TorchEngine("cuda")
    if device == "torch-cpu":
        from .torch_engine import TorchEngine

        return TorchEngine("cpu")
    from .reference import NumpyEngine

    if device == "numpy":
        return NumpyEngine()
    if device == "cpu":
        try:
            from .compiled import NumbaEngine

            return NumbaEngine()
        except ImportError:
            log.warning("numba is not installed: using the slow numpy splatting reference")
            return NumpyEngine()
    raise StillflowError(f"unknown device {device!r}: use auto, cpu or cuda")
