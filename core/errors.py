"""Errors a user can act on. Their message is one line that says what went wrong and what to do."""


class StillflowError(Exception):
    """A failure caused by input or environment, reported to the user without a traceback."""


class InputError(StillflowError):
    """Bad input: a missing or unreadable file, a wrong size, NaN values, hints outside the image."""


class Cancelled(StillflowError):
    """The user cancelled the work (Esc in Blender, Ctrl-C on the command line)."""


class OutputError(StillflowError):
    """An output could not be written: the disk is full, a folder is not writable, an encoder failed."""
