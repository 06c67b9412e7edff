"""``python -m oracle``: check every registered pair of the given modules."""

import os
import sys

from .cli import EXIT_INTERRUPTED, main

code = main(program=True)
if code == EXIT_INTERRUPTED:
    # Ctrl-C: the report is out; leave now (tearing torch and JAX down takes seconds)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
