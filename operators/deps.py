"""Optional dependencies inside Blender: what is installed, which device runs, and the pinned GPU extras.

Small CPU wheels (onnxruntime, numba) are bundled with the extension. Large optional accelerators are
installed on request into the extension's own user folder (`extension_path_user(..., "site-packages")`),
which `add_user_site_packages()` puts on sys.path; nothing is ever installed into Blender's Python, and
numpy (shipped by Blender) is never installed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import sys

from . import ADDON_PACKAGE

log = logging.getLogger(__name__)

# Pinned optional accelerators, one pip call each. PyPI's Linux torch wheels bundle CUDA; on Windows PyPI
# only has CPU torch (CUDA builds come from download.pytorch.org: not configured yet). onnxruntime-gpu is installed without dependencies so
# pip never pulls numpy into the folder (onnxruntime imports without its listed dependencies).
GPU_INSTALLS: tuple[tuple[str, ...], ...] = (
    ("torch==2.13.0",),
    ("--no-deps", "onnxruntime-gpu==1.31.1"),
)
REPORTED = ("numpy", "onnxruntime", "onnxruntime-gpu", "numba", "torch")


def user_site_packages(create: bool = False) -> str:
    import bpy

    return bpy.utils.extension_path_user(ADDON_PACKAGE, path="site-packages", create=create)


def add_user_site_packages() -> None:
    """Put the extension's private site-packages (the GPU pack, if installed) first on sys.path.

    First, not last: the pack's onnxruntime-gpu is imported as `onnxruntime`, the same name as the CPU
    wheel bundled with the extension (installed by Blender into its extensions site-packages, earlier on
    sys.path), so appended it would never load. Nothing else goes there (numpy is never installed)."""
    try:
        path = user_site_packages()
    except (ValueError, RuntimeError) as err:  # not running as an extension (e.g. pip-installed tests)
        log.debug("no extension user folder: %s", err)
        return
    if not os.path.isdir(path):
        return
    if path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
    importlib.invalidate_caches()


def found_versions() -> dict[str, str]:
    """Installed versions of the packages that matter, without importing them: the version of the copy
    that an import would load (the GPU pack's onnxruntime-gpu, when installed, is what `onnxruntime` is)."""
    result = {}
    for name in REPORTED:
        try:
            result[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return result


def imported_from(module: str) -> str:
    """Where `import module` would load it from, in words: the GPU pack, the extension's bundled wheels,
    Blender, or not installed (found without importing it)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return "not installed"
    origin = os.path.abspath(spec.origin)
    try:
        pack = os.path.abspath(user_site_packages())
    except (ValueError, RuntimeError, ImportError):
        pack = None
    if pack and origin.startswith(pack + os.sep):
        return "GPU pack"
    if f"{os.sep}extensions{os.sep}" in origin:
        return "bundled"
    return "Blender" if module == "numpy" else "system"


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def pip_commands(target: str) -> list[list[str]]:
    """The pip calls that install the GPU extras into `target` (run in a subprocess)."""
    base = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--upgrade",
        "--target",
        target,
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
    ]
    installs = GPU_INSTALLS
    if sys.platform == "darwin":  # no onnxruntime-gpu for macOS; torch from PyPI brings Metal (MPS)
        installs = tuple(args for args in installs if not any("onnxruntime" in a for a in args))
    return [base + list(args) for args in installs]


_device_cache: str | None = None


def describe_device(preferred: str = "auto", refresh: bool = False) -> str:
    """Which device runs the model and the splatting, in words (cached: importing torch is slow)."""
    global _device_cache
    if _device_cache is not None and not refresh:
        return _device_cache
    parts = []
    if preferred != "cpu" and has_module("torch"):
        try:
            import torch

            if torch.cuda.is_available():
                parts.append(f"CUDA ({torch.cuda.get_device_name(0)})")
        except Exception as err:  # a broken optional install must never break the UI
            log.warning("torch could not be used: %s", err)
    if has_module("onnxruntime"):
        try:
            import onnxruntime

            providers = onnxruntime.get_available_providers()
            if preferred != "cpu" and "CUDAExecutionProvider" in providers and not parts:
                parts.append("CUDA (onnxruntime)")
        except Exception as err:
            log.warning("onnxruntime could not be used: %s", err)
    _device_cache = parts[0] if parts else "CPU"
    return _device_cache
