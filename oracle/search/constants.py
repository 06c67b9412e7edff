"""The constants hypothesis mixes into its draws: the pair's own, whatever else is loaded.

Hypothesis draws, with a small probability, numbers that appear as literals in the
source of the "local" modules loaded in the process (not the standard library, not
site-packages, not test files), which helps it hit boundaries such as ``x > 1.1``. But
the pool is whatever happens to be in ``sys.modules`` when an example is drawn, so the
same seed drew different examples for one pair depending on what else had been imported
(the catalog, other tests, the oracle's own source in an editable install, where every
edit to the oracle changed the draws): a verdict depended on what ran before. Measured:
the campaign's ``smooth_l1.boundary_1.1`` mutant was found with one seed when run alone
and missed with the same seed after ``import losses``.

During the oracle's runs the pool is pinned to the literals of the modules that define
the pair (its Function or function, and its twin), test files included: the boundaries
of the code under test, and nothing else. This reaches into hypothesis's internals (the
one place that does); if they change shape, hypothesis's own pool is left as it is.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["pair_constants", "pinned_constants"]


def _modules_of(fn: Any) -> list[Any]:
    """The modules that define ``fn``: a function's, a ``Function.apply``'s class's, a
    factory's or a wrapper's target's, each outside the standard library and
    site-packages."""
    seen, out = set(), []
    todo = [fn]
    while todo:
        obj = todo.pop()
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        module = inspect.getmodule(obj)
        path = getattr(module, "__file__", None) or ""
        top = (getattr(module, "__name__", "") or "").split(".")[0]
        if path and "/site-packages/" not in path and top not in sys.stdlib_module_names:
            if module not in out:
                out.append(module)
        for attr in ("__self__", "__wrapped__", "fn", "func"):
            inner = getattr(obj, attr, None)
            if inner is not None and not isinstance(inner, (int, float, str, bytes)):
                todo.append(inner)
    return out


def pair_constants(*fns: Any) -> Any | None:
    """The literals of the modules defining ``fns`` as hypothesis's ``Constants`` (None
    when hypothesis has no such pool)."""
    try:
        from hypothesis.internal.constants_ast import Constants, constants_from_module
    except ImportError:
        return None
    pool = Constants()
    for fn in fns:
        for module in _modules_of(fn):
            pool |= constants_from_module(module)
    return pool


@contextlib.contextmanager
def pinned_constants(pool: Any | None) -> Iterator[None]:
    """Hypothesis draws its local constants from ``pool`` alone inside this block."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:
        providers = None
    original = getattr(providers, "_get_local_constants", None)
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if pool is None or original is None or cache is None:
        yield
        return
    providers._get_local_constants = lambda: pool
    cache.clear()  # the permitted constants per kind were computed from the old pool
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.clear()
