"""The `stillflow` command line: a face of its own beside the Blender operators, over the same pipeline.

It sits in `operators/` because the product's layout puts both faces there; it is a package of its own
because it runs without Blender (`stillflow ...` from a plain Python, and `blender --command stillflow`):
`commands` (the commands; `codes` the exit codes), `parser` (options made from `core.job.PARAMS`), `item` (one photo),
`batch` (many photos, resumable: `items` what a batch works on and its shards, `journal` its record in OUT_DIR,
`worker` one item in a worker process, `ray_runner` the items as Ray tasks), `progress` (the progress bar).
Ctrl-C and SIGTERM become KeyboardInterrupt through core.interrupts, which also holds them where needed.
"""

from .codes import EXIT_INTERRUPTED, EXIT_ITEMS_FAILED, EXIT_OK, EXIT_USAGE


def main(argv: list[str] | None = None, prog: str = "stillflow") -> int:
    """The `stillflow` command (see `commands.main`); imported lazily so that batch workers, which import
    this package first, start fast."""
    from .commands import main as run

    return run(argv, prog)


def blender_command(argv: list[str]) -> int:
    """`blender --command stillflow ...`, registered with bpy.utils.register_cli_command."""
    from .commands import blender_command as run

    return run(argv)

__all__ = ["main", "blender_command", "EXIT_OK", "EXIT_ITEMS_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED"]
