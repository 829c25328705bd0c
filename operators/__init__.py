"""The Blender side of Stillflow: properties, preferences, operators and panels over `core/`.

Nothing here imports bpy at module level: `operators.cli` is imported by the plain `stillflow` command,
which runs without Blender. `register()` imports the Blender modules lazily, in order, and also registers
`blender --command stillflow ...`; `unregister()` undoes both in reverse.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger(__name__)

# The extension's own package (`bl_ext.<repo>.stillflow` inside Blender, `stillflow` when pip-installed).
# Preferences use it as bl_idname; never write the package name as a string.
ADDON_PACKAGE = __package__.rpartition(".")[0] or __package__

# Registration order; unregistered in reverse.
_MODULES = (
    "properties",
    "preferences",
    "ops_hints",
    "ops_field",
    "ops_regions",
    "outputs",
    "ops_render",
    "preview",
    "overlay",
    "flow_material",
    "panels",
)

_cli_handle = None


def _modules():
    return [importlib.import_module(f".{name}", __name__) for name in _MODULES]


def register():
    from . import deps

    deps.add_user_site_packages()
    _numba_cache_in_user_folder()
    for module in _modules():
        module.register()
    _register_cli()


def unregister():
    _unregister_cli()
    for module in reversed(_modules()):
        module.unregister()


def _numba_cache_in_user_folder() -> None:
    """numba caches compiled kernels beside their source by default: inside the installed extension, which
    may be read-only and is replaced by an update. Keep them in the extension's user folder instead (unless
    NUMBA_CACHE_DIR is set already)."""
    import os
    import sys

    import bpy

    try:
        path = bpy.utils.extension_path_user(ADDON_PACKAGE, path="numba-cache", create=True)
    except (ValueError, RuntimeError, TypeError, AttributeError) as err:  # not enabled as an extension
        log.debug("numba cache stays beside the kernels: %s", err)
        return
    os.environ.setdefault("NUMBA_CACHE_DIR", path)
    if "numba" in sys.modules:  # imported already: its config was read; set it where the cache looks
        from numba.core import config

        if not config.CACHE_DIR:
            config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]


def _register_cli():
    global _cli_handle
    import bpy

    try:
        from .cli import blender_command as execute
    except ImportError as err:
        log.info("`blender --command stillflow` is not available: %s", err)
        return
    try:
        _cli_handle = bpy.utils.register_cli_command("stillflow", execute)
    except (RuntimeError, ValueError) as err:  # e.g. already registered by another copy
        log.warning("could not register `blender --command stillflow`: %s", err)


def _unregister_cli():
    global _cli_handle
    if _cli_handle is None:
        return
    import bpy

    bpy.utils.unregister_cli_command(_cli_handle)
    _cli_handle = None
