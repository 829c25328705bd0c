"""The command line's exit codes."""

EXIT_OK = 0  # done
EXIT_ITEMS_FAILED = 1  # some batch items failed
EXIT_USAGE = 2  # usage error or bad input: one line on stderr, no traceback
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM; no partial files are left
