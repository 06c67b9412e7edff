"""The checks: the first-order vjp (:mod:`.vjp`, run on every example by the search) and
one module per check beyond it (:mod:`.jvp`, :mod:`.hvp`, :mod:`.vmap`, :mod:`.contract`),
each with a ``CHECK`` (:class:`.base.Check`), registered in
:data:`oracle.vocabulary.CHECKS`."""

from __future__ import annotations

import importlib

from ...vocabulary import CHECKS
from .base import Check

__all__ = ["registered"]


def registered(name: str) -> Check:
    """The ``CHECK`` of the module registered for ``name``."""
    return importlib.import_module(f".{CHECKS[name].module}", __name__).CHECK
