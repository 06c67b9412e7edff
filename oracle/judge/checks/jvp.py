r"""``jvp``: forward-mode AD of ``torch_fn`` (``torch.autograd.forward_ad``: a Function's
``jvp`` staticmethod) against ``jax.jvp`` of the twin, with random tangents."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import jax
import numpy as np
import torch
import torch.autograd.forward_ad as fwAD

from ...pair.bridge import DTYPES, cast_values, precision_scope, to_torch, torch_to_numpy
from ...pair.custom_ops import NO_FORWARD_MODE, custom_op_name
from ...pair.outputs import flatten_torch
from ...pair.twin_side import assemble
from .base import Check
from .transform import (
    Judged,
    Refused,
    Transform,
    again_in_float64,
    compare_all,
    diff_positions,
    flatten,
    rng_for,
    side_of,
    structure,
    torch_refusal,
    twin_program,
    unflatten,
    uniform,
    unsupported_reason,
)


def _twin_jvp(jax_fn, layout, statics, diff, arrays, scalars, tangents):
    def f(*d):
        return jax_fn(*assemble(layout, d, arrays, scalars, statics))

    out, tout = jax.jvp(f, tuple(diff), tuple(tangents))
    return jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(tout)


@functools.cache
def _load_jvp_decompositions() -> None:
    """torch loads its forward-mode decompositions on the first ``make_dual`` and
    scripts each with ``torch.jit.script``, which warns that it is deprecated: 18
    warnings in the user's test summary that are torch's doing, not theirs. Load them
    here once, with that warning silenced for this import only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", DeprecationWarning)
        import torch._decomp.decompositions_for_jvp  # noqa: F401


def _jvp_both(
    sides,
    values,
    seed: int,
    dtype: str,
    device: str,
    only: int | None = None,
    twin_only: bool = False,
):
    _load_jvp_decompositions()
    specs = sides.specs
    vals = cast_values(values, specs, dtype)
    pos = diff_positions(specs)
    np_dtype = DTYPES[dtype][0]
    tangents = uniform(rng_for(seed, 1), [np.shape(vals[i]) for i in pos], np_dtype)
    if only is not None:
        tangents = [t if k == only else np.zeros_like(t) for k, t in enumerate(tangents)]
    with precision_scope(dtype, device):
        t_out = None if twin_only else _torch_jvp(sides, vals, pos, tangents, dtype, device)
        try:
            j_leaves, j_tan = twin_program(
                sides.twin, "jvp", _twin_jvp, (0, 1, 2), vals, dtype, device, tuple(tangents)
            )
        except Exception as exc:
            raise Refused(
                "twin", f"the twin raised under jax.jvp: {unsupported_reason(exc)}"
            ) from exc
    j_out = [tan for leaf, tan in zip(j_leaves, j_tan, strict=True) if leaf.dtype.kind in "fc"]
    return t_out, j_out, tangents


def _torch_jvp(sides, vals, pos, tangents, dtype: str, device: str) -> list[np.ndarray | None]:
    """torch's output tangents (forward-mode AD); call inside ``precision_scope``."""
    args = to_torch(vals, sides.specs, dtype, device)
    try:
        with fwAD.dual_level(), torch.enable_grad():
            for k, i in enumerate(pos):
                args[i] = fwAD.make_dual(
                    args[i].detach(), torch.tensor(tangents[k], device=args[i].device)
                )
            leaves = flatten_torch(sides.torch.callable_for(dtype, device)(*args))
            tangents_out = [fwAD.unpack_dual(x).tangent for x in leaves if x.is_floating_point()]
    except Exception as exc:
        raise torch_refusal(exc) from exc
    op = custom_op_name(sides.torch.fn)
    if op is not None and any(x is None for x in tangents_out):
        # no error from torch, no tangent either: a refusal, not a wrong value of zero
        raise Refused("torch", NO_FORWARD_MODE(op))
    return [None if x is None else torch_to_numpy(x) for x in tangents_out]


def _check_jvp(sides, values, seed, dtype, device) -> list[Judged]:
    t, j, _ = _jvp_both(sides, values, seed, dtype, device)
    if len(t) != len(j):
        return [structure(len(t), len(j))]
    labels = [(f"tangent of output {i}", None) for i in range(len(j))]
    bad = compare_all(sides, labels, t, j, dtype)
    if bad and dtype == "float32":
        again = lambda twin_only: _jvp_both(  # noqa: E731
            sides, values, seed, "float64", device, twin_only=twin_only
        )
        bad = again_in_float64(again, t, sides, labels)
    if not bad:
        return []
    # which input's tangent is wrong: one at a time (the twin's program is the same)
    pos = diff_positions(sides.specs)
    for k in range(len(pos)):
        try:
            t1, j1, _ = _jvp_both(sides, values, seed, "float64", device, only=k)
        except Refused:
            return bad  # torch_fn does not run in float64: the inputs stay together
        one = compare_all(sides, labels, t1, j1, "float64")
        if one:
            for b in one:
                b.argument = pos[k]
            return one
    return bad


def _jvp_blame(sides, values, seed, device, judged: Judged) -> str:
    """Finite differences of <c, f(x)> along the tangent, in float64: which side's
    directional derivative they contradict (c: a random weight per output element)."""
    pos = diff_positions(sides.specs)
    k = pos.index(judged.argument) if judged.argument in pos else None
    try:
        t, j, tangents = _jvp_both(sides, values, seed, "float64", device, only=k)
    except Refused as r:
        if r.side != "torch":
            raise
        # torch_fn does not run in float64: its float32 tangents against the twin's
        t = _jvp_both(sides, values, seed, "float32", device, only=k)[0]
        _, j, tangents = _jvp_both(sides, values, seed, "float64", device, k, twin_only=True)
    weights = uniform(rng_for(seed, 5), [np.shape(x) for x in j], np.float64)
    vals64 = cast_values(values, sides.specs, "float64")
    xs = [np.asarray(vals64[i], np.float64) for i in pos]
    flat, shapes = flatten(xs)

    def phi(v: Sequence[np.ndarray]) -> float:
        moved = list(vals64)
        for i, x in zip(pos, unflatten(v[0], shapes), strict=True):
            moved[i] = x
        with precision_scope("float64", device):
            leaves = sides.twin.forward(moved, device)
        leaves = [x for x in leaves if x.dtype.kind in "fc"]
        return float(sum(np.sum(w * x) for w, x in zip(weights, leaves, strict=True)))

    u, _ = flatten(tangents)
    claim_t = sum(
        float(np.sum(w * (np.zeros_like(w) if a is None else a)))
        for w, a in zip(weights, t, strict=True)
    )
    claim_j = sum(float(np.sum(w * a)) for w, a in zip(weights, j, strict=True))
    return side_of(phi, [flat], u, claim_t, claim_j, device)


def _compare(sides, values, seed, dtype, device, thorough) -> list[Judged]:
    return _check_jvp(sides, values, seed, dtype, device)


CHECK = Check("jvp", run=Transform("jvp", _compare, _jvp_blame).run, probes_refusal=True)
