"""``compile``: ``torch_fn`` under ``torch.compile`` on the same example, its outputs and
gradients against the twin's, as the eager ones are (only when asked: it compiles).

Compiled with ``dynamic=True`` (the oracle draws many sizes: one graph for them, not a
recompilation each) inside :func:`dynamo_scope`: torch's recompile limit raised to
:data:`RECOMPILE_LIMIT` and made an error, so that hitting it is reported instead of
torch silently running the rest eagerly. A function ``torch.compile`` cannot compile is
``unsupported`` with torch's reason; a compiled result that differs from the twin where
the eager one agreed is blamed on torch's compiled path.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from ...pair.bridge import DTYPES, cast_values, precision_scope
from ...pair.guard import SideError
from ...pair.outputs import cotangents_for
from ...pair.torch_side import TorchSide
from .base import Check
from .transform import Judged, Refused, Transform, again_in_float64, compare_all, unsupported_reason

__all__ = ["CHECK", "dynamo_scope", "RECOMPILE_LIMIT"]

#: recompilations allowed per compiled function inside the oracle's calls (torch's
#: default, 8, is reached by the sizes and dtypes of one verify)
RECOMPILE_LIMIT = 64

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def dynamo_scope() -> Iterator[None]:
    """torch._dynamo's recompile limit raised and made an error, for the oracle's calls
    only (nothing is imported when dynamo is not loaded: then nothing is compiled)."""
    dynamo = sys.modules.get("torch._dynamo")
    if dynamo is None:
        yield
        return
    config = dynamo.config
    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    patch = {limit: max(getattr(config, limit), RECOMPILE_LIMIT)}
    if hasattr(config, "fail_on_recompile_limit_hit"):
        patch["fail_on_recompile_limit_hit"] = True
    with config.patch(**patch):
        yield


def _compiled(fn: Any) -> Any:
    import torch

    try:
        if fn not in _COMPILED:
            _COMPILED[fn] = torch.compile(fn, dynamic=True)
        return _COMPILED[fn]
    except TypeError:  # not weak-referenceable: compiled each time (dynamo caches by code)
        return torch.compile(fn, dynamic=True)


def _both(sides: Any, values: Sequence[Any], seed: int, dtype: str, device: str, twin_only: bool):
    """(compiled torch's outputs and gradients, the twin's), in ``dtype``."""
    specs = sides.specs
    vals = cast_values(values, specs, dtype)
    np_dtype = DTYPES[dtype][0]
    with precision_scope(dtype, device), dynamo_scope(), warnings.catch_warnings():
        # Inductor's own use of torch.jit (imported on its first compilation): torch's
        # warning, not the user's
        warnings.filterwarnings("ignore", r"`torch\.jit\.script", DeprecationWarning)
        shapes = sides.twin.output_shapes(vals, dtype, device)
        cots = [None if c is None else c.astype(np_dtype) for c in cotangents_for(shapes, seed)]
        t = None
        if not twin_only:
            fn = sides.torch.callable_for(dtype, device)
            side = TorchSide(_compiled(fn), specs, sides.torch.guard)
            try:
                t = side.run(vals, dtype, device, cots)
            except SideError as err:
                raise Refused("torch", f"torch.compile: {unsupported_reason(err.exc)}") from err
        j = sides.twin.run(vals, dtype, device, cots)
    return t, j


def _compare(sides, values, seed, dtype, device, thorough) -> list[Judged]:
    t, j = _both(sides, values, seed, dtype, device, False)
    floating = [i for i, x in enumerate(j.leaves) if x.dtype.kind == "f"]
    outs = [(f"compiled output {i}", None) for i in floating]
    grads = [(f"compiled gradient of argument {p}", p) for p in sides.diff_positions]

    def pick(r):
        return [r.leaves[i] for i in floating] if r is not None else None

    if len(t.leaves) != len(j.leaves):
        return []  # the ordinary check reports the outputs' structure
    bad = compare_all(sides, outs, pick(t), pick(j), dtype, forward=True)
    bad += compare_all(sides, grads, t.grads, j.grads, dtype)
    if bad and dtype != "float64":

        def again(twin_only: bool, part: str):
            t64, j64 = _both(sides, values, seed, "float64", device, twin_only)
            if part == "out":
                return pick(t64), pick(j64)
            return (None if t64 is None else t64.grads), j64.grads

        bad = again_in_float64(lambda to: again(to, "out"), pick(t), sides, outs, forward=True)
        bad += again_in_float64(lambda to: again(to, "grad"), t.grads, sides, grads)
    return bad


def _blame(sides, values, seed, device, first) -> str:
    # the same function ran eagerly against the twin on this example: what differs is
    # torch's compiled path
    return "torch"


CHECK = Check("compile", run=Transform("compile", _compare, _blame).run)
