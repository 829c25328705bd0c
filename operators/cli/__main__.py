"""`python -m stillflow.operators.cli ...`: the same as the `stillflow` command."""

import sys

from .commands import main

if __name__ == "__main__":  # batch workers (spawned) import this module as __mp_main__: run nothing then
    sys.exit(main())
