"""Errors a user can act on. Their message is one line that says what went wrong and what to do."""

import errno


class StillflowError(Exception):
    """A failure caused by input or environment, reported to the user without a traceback."""


class InputError(StillflowError):
    """Bad input: a missing or unreadable file, a wrong size, NaN values, hints outside the image."""


class Cancelled(StillflowError):
    """The user cancelled the work (Esc in Blender, Ctrl-C on the command line)."""


class OutputError(StillflowError):
    """An output could not be written: the disk is full, a folder is not writable, an encoder failed."""


def write_error(what: str, err: Exception) -> OutputError:
    """One line for a failed write (a full disk says so; OpenEXR reports it as a RuntimeError)."""
    if getattr(err, "errno", None) == errno.ENOSPC or "No space left" in str(err):
        return OutputError(f"the disk is full: {what} could not be written; free some space and run again")
    text = str(getattr(err, "strerror", None) or err)
    return OutputError(f"{what} could not be written ({text[:120]})")
