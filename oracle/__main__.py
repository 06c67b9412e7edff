"""``python -m oracle``: check every registered pair of the given modules."""

import faulthandler
import os
import sys

from .cli import EXIT_INTERRUPTED, main

# a segfault in user code (a native kernel) ends the process: at least say where
# (--isolate survives it and reports it as a finding)
faulthandler.enable()
code = main(program=True)
if code == EXIT_INTERRUPTED:
    # Ctrl-C: the report is out; leave now (tearing torch and JAX down takes seconds)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
