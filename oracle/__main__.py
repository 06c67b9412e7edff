"""``python -m oracle``: check every registered pair of the given modules."""

from .cli import main

raise SystemExit(main(program=True))
