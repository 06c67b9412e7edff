r"""The checks beyond the first-order vjp, on one example: jvp, hvp, vmap (and contract).

Each compares torch under a transform with the same transform of the twin in JAX:

* ``jvp``: forward-mode AD of ``torch_fn`` (``torch.autograd.forward_ad``: a Function's
  ``jvp`` staticmethod) against ``jax.jvp`` of the twin, with random tangents;
* ``hvp``: torch's backward differentiated again (``create_graph=True``) with respect to
  the inputs and to the cotangent, against ``jax.vjp`` of the twin's vjp: for a random
  :math:`w`, :math:`\partial \langle w, J(x)^T v\rangle / \partial x` and
  :math:`\partial \langle w, J(x)^T v\rangle / \partial v = J w`;
* ``vmap``: ``torch.func.vmap`` of ``torch_fn`` with the batch dimension at every position,
  and of its per-example vjp, against ``jax.vmap`` of the twin.

The rule: a wrong value is always a finding; a transform torch refuses (it raises under
it, while the plain call works) is ``"unsupported: <reason>"``, a finding (diagnosis
``"unsupported"``) only when that check was asked for. A float32 disagreement is judged
again in float64 (float32's own rounding is not a bug); a float64 one is blamed by
finite differences (of the forward for jvp, of the twin's vjp for hvp).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import torch
import torch.autograd.forward_ad as fwAD

from ..pair.bridge import DTYPES, cast_values, jax_device, precision_scope, to_torch, torch_to_numpy
from .capability import NOT_CHECKED
from ..pair.compiling import options_for
from .findings import Verdict, divergence
from ..report.records import Divergence
from ..pair.sides import _assemble, _flatten_torch, _twin_vjp, cotangents_for
from .tolerance import Comparison, Tolerance, compare, default_tolerance, forward_tolerance
from .verdicts import directional_derivative

__all__ = ["run_transform", "unsupported_reason", "tolerance_for", "Judged"]

#: batch size of the vmap check: 3 so that a batch is never square with a 2-long dim
#: by accident, and a wrong ``out_dims`` cannot hide behind equal sizes in the small
#: examples shrinking goes to
BATCH = 3
#: how far the batch members sit from the example (relative): different values, same signs
_SPREAD = 0.1
#: a float64 disagreement this small relative to the quantity is rounding, not a bug
_ROUNDING = 1e-9
#: the grad_fn of a @once_differentiable backward's results (torch's DelayedError node)
_DELAYED = ("Error", "DelayedError")  # one-off programs: compile fast (as sides.py)


# --- the twin's programs, jit-compiled once per signature ---------------------------------


def _twin_jvp(jax_fn, layout, statics, diff, arrays, scalars, tangents):
    def f(*d):
        return jax_fn(*_assemble(layout, d, arrays, scalars, statics))

    out, tout = jax.jvp(f, tuple(diff), tuple(tangents))
    return jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(tout)


def _twin_hvp(jax_fn, layout, statics, diff, arrays, scalars, cots, ws):
    def grads(d, c):
        return tuple(_twin_vjp(jax_fn, layout, statics, d, arrays, scalars, c)[1])

    _, pull = jax.vjp(grads, tuple(diff), tuple(cots))
    dx, dc = pull(tuple(ws))
    return list(dx), list(dc)


def _twin_vmap(jax_fn, layout, statics, in_diff, in_arr, diff, arrays, scalars):
    def f(d, a):
        return jax.tree_util.tree_leaves(jax_fn(*_assemble(layout, d, a, scalars, statics)))

    return jax.vmap(f, in_axes=(in_diff, in_arr), out_axes=0)(tuple(diff), tuple(arrays))


def _twin_vmap_grad(jax_fn, layout, statics, in_diff, in_arr, diff, arrays, scalars, cots):
    def g(d, a, c):
        return tuple(_twin_vjp(jax_fn, layout, statics, d, a, scalars, c)[1])

    return jax.vmap(g, in_axes=(in_diff, in_arr, 0))(tuple(diff), tuple(arrays), tuple(cots))


#: the programs, and their static arguments; compiled per pair by its TwinSide (which
#: frees them when the pair's verify ends)
_PROGRAMS = {
    "jvp": (_twin_jvp, (0, 1, 2)),
    "hvp": (_twin_hvp, (0, 1, 2)),
    "vmap": (_twin_vmap, (0, 1, 2, 3, 4)),
    "vmap_grad": (_twin_vmap_grad, (0, 1, 2, 3, 4)),
}


def _twin(twin: Any, which: str, values: Sequence[Any], dtype: str, device: str, *extra, axes=()):
    layout, g = twin._split(values, dtype, device)
    args = (twin.fn, layout, tuple(g["static"]), *axes)
    with jax.default_device(jax_device(device)):
        fn, statics = _PROGRAMS[which]
        program = twin.program((which, device), fn, statics, options_for(True, device))
        out = program(*args, tuple(g["diff"]), tuple(g["array"]), tuple(g["scalar"]), *extra)
    return jax.tree_util.tree_map(np.asarray, out)


# --- small helpers ----------------------------------------------------------------------


class _Skip(Exception):
    """Nothing to compare on this example (its outputs differ in structure)."""


class _Refused(Exception):
    """torch (or the twin) raised under a transform: the reason, for the capability table."""

    def __init__(self, side: str, reason: str):
        super().__init__(reason)
        self.side, self.reason = side, reason


def unsupported_reason(exc: BaseException) -> str:
    """A short reason for a transform torch refuses, from the exception it raised."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    low = str(exc).lower()
    if "setup_context" in low:
        return "forward(ctx, ...) without setup_context (torch.func transforms need it)"
    if "once_differentiable" in low:
        return "backward is @once_differentiable (no double backward)"
    if isinstance(exc, NotImplementedError) and "jvp" in low:
        return "no jvp staticmethod (forward-mode AD)"
    if "generate_vmap_rule" in low or ("vmap" in low and "staticmethod" in low):
        return "no vmap staticmethod and generate_vmap_rule=False"
    if "requires_grad_()" in low:
        return "calls requires_grad_() inside (torch.func transforms refuse it)"
    if ".item()" in low:
        return "calls .item() inside (vmap refuses it)"
    if "data pointer" in low or "numpy" in low:
        return "reads a tensor's memory (.numpy(), data_ptr) inside (transforms refuse it)"
    return f"{type(exc).__name__}: {msg[:160]}"


def _torch_refusal(exc: BaseException) -> _Refused:
    return _Refused("torch", unsupported_reason(exc))


def _rng(seed: int, tag: int) -> np.random.Generator:
    return np.random.default_rng([seed, tag])


def _uniform(rng: np.random.Generator, shapes, np_dtype) -> list[np.ndarray]:
    return [(rng.random(s) * 2 - 1).astype(np_dtype) for s in shapes]


def _diff_positions(specs) -> list[int]:
    return [i for i, s in enumerate(specs) if getattr(s, "grad", False)]


class Judged:
    """One compared quantity that disagrees: what it is, which argument, the numbers."""

    def __init__(self, what: str, argument: Any, c: Comparison, actual, expected):
        self.what, self.argument, self.c = what, argument, c
        self.actual, self.expected = actual, expected


#: float64 for the checks beyond the vjp: they look for wrong transforms (off by O(1))
#: and have no rounding model; the vjp's float64 tolerance (1e-10, tight for the precision
#: diagnosis) would flag the rounding of a second derivative (a saturated softmax's hvp:
#: 4.6e-11 made from terms of size 1, off by 2e-17 between torch and JAX). Values below
#: the floor, 1e-12, are below what float64 rounding lets anyone referee there.
_EXTRA_FLOAT64 = Tolerance(rtol=1e-7, atol=1e-7, k=None, floor=1e-12)


def tolerance_for(
    sides: Any, dtype: str, *, forward: bool = False, argument: Any = None
) -> Tolerance:
    """The tolerance of the pair in ``dtype``: the user's (``rtol``/``atol``; for one
    ``argument`` if given per argument) if given, else the oracle's rule (float64:
    ``_EXTRA_FLOAT64``)."""
    user = (getattr(sides, "user_tol", None) or {}).get(dtype, {})
    if argument in user or None in user:
        return sides.tolerance(dtype, forward=forward, argument=argument)
    if dtype == "float64" and not forward:
        return _EXTRA_FLOAT64
    return forward_tolerance(dtype) if forward else default_tolerance(dtype)


def _compare_all(
    sides: Any,
    labels: Sequence[tuple[str, Any]],
    t: Sequence[np.ndarray | None],
    j: Sequence[np.ndarray],
    dtype: str,
    *,
    forward: bool = False,
) -> list[Judged]:
    """Every (label, argument) whose torch value is not close to the twin's.
    ``None`` (torch gave nothing) counts as zeros, so it is wrong only where the twin
    is not zero."""
    scale = max(
        (float(np.max(np.abs(x))) for x in j if x.size and np.all(np.isfinite(x))), default=0
    )
    bad = []
    for (what, arg), a, e in zip(labels, t, j, strict=True):
        a = np.zeros_like(e) if a is None else a
        if np.shape(a) != np.shape(e):
            n = int(np.size(e))
            c = Comparison(False, n, n, np.inf, np.inf, (), 0.0, np.nan, np.nan, False)
            shapes = f"shape {np.shape(a)} in torch, {np.shape(e)} in the twin"
            bad.append(Judged(f"{what}: {shapes}", arg, c, None, None))
            continue
        tol = tolerance_for(sides, dtype, forward=forward, argument=arg)
        c = compare(a, e, tol, scale=lambda: scale)
        if not c.ok:
            bad.append(Judged(what, arg, c, a, e))
    return bad


def _again_in_float64(
    run: Callable, t32: Sequence[Any], sides: Any, labels, *, forward: bool = False
) -> list[Judged]:
    """A float32 disagreement judged again in float64. ``run(twin_only)`` gives torch's
    values and the twin's in float64 (its first two items).

    When torch_fn cannot run in float64 (a float32 constant of its own, say), torch's
    float32 values ``t32`` are judged against the twin's float64 ones instead, as the
    vjp's are: the float32 run has shown that torch supports the transform, so its
    float64 error is no refusal of it."""
    try:
        t, j = run(False)[:2]
    except _Refused as r:
        if r.side != "torch":
            raise
        j = run(True)[1]
        return _compare_all(sides, labels, t32, j, "float32", forward=forward)
    return _compare_all(sides, labels, t, j, "float64", forward=forward)


# --- jvp ----------------------------------------------------------------------------------


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
    pos = _diff_positions(specs)
    np_dtype = DTYPES[dtype][0]
    tangents = _uniform(_rng(seed, 1), [np.shape(vals[i]) for i in pos], np_dtype)
    if only is not None:
        tangents = [t if k == only else np.zeros_like(t) for k, t in enumerate(tangents)]
    with precision_scope(dtype, device):
        t_out = None if twin_only else _torch_jvp(sides, vals, pos, tangents, dtype, device)
        try:
            j_leaves, j_tan = _twin(sides.twin, "jvp", vals, dtype, device, tuple(tangents))
        except Exception as exc:
            raise _Refused(
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
                    args[i].detach(), torch.as_tensor(tangents[k], device=args[i].device)
                )
            leaves = _flatten_torch(sides.torch.callable_for(dtype, device)(*args))
            tangents_out = [fwAD.unpack_dual(x).tangent for x in leaves if x.is_floating_point()]
            return [None if x is None else torch_to_numpy(x) for x in tangents_out]
    except Exception as exc:
        raise _torch_refusal(exc) from exc


def _check_jvp(sides, values, seed, dtype, device) -> list[Judged]:
    t, j, _ = _jvp_both(sides, values, seed, dtype, device)
    if len(t) != len(j):
        return [_structure(len(t), len(j))]
    labels = [(f"tangent of output {i}", None) for i in range(len(j))]
    bad = _compare_all(sides, labels, t, j, dtype)
    if bad and dtype == "float32":
        again = lambda twin_only: _jvp_both(  # noqa: E731
            sides, values, seed, "float64", device, twin_only=twin_only
        )
        bad = _again_in_float64(again, t, sides, labels)
    if not bad:
        return []
    # which input's tangent is wrong: one at a time (the twin's program is the same)
    pos = _diff_positions(sides.specs)
    for k in range(len(pos)):
        try:
            t1, j1, _ = _jvp_both(sides, values, seed, "float64", device, only=k)
        except _Refused:
            return bad  # torch_fn does not run in float64: the inputs stay together
        one = _compare_all(sides, labels, t1, j1, "float64")
        if one:
            for b in one:
                b.argument = pos[k]
            return one
    return bad


def _jvp_blame(sides, values, seed, device, judged: Judged) -> str:
    """Finite differences of <c, f(x)> along the tangent, in float64: which side's
    directional derivative they contradict (c: a random weight per output element)."""
    pos = _diff_positions(sides.specs)
    k = pos.index(judged.argument) if judged.argument in pos else None
    try:
        t, j, tangents = _jvp_both(sides, values, seed, "float64", device, only=k)
    except _Refused as r:
        if r.side != "torch":
            raise
        # torch_fn does not run in float64: its float32 tangents against the twin's
        t = _jvp_both(sides, values, seed, "float32", device, only=k)[0]
        _, j, tangents = _jvp_both(sides, values, seed, "float64", device, k, twin_only=True)
    weights = _uniform(_rng(seed, 5), [np.shape(x) for x in j], np.float64)
    vals64 = cast_values(values, sides.specs, "float64")
    xs = [np.asarray(vals64[i], np.float64) for i in pos]
    flat, shapes = _flatten(xs)

    def phi(v: Sequence[np.ndarray]) -> float:
        moved = list(vals64)
        for i, x in zip(pos, _unflatten(v[0], shapes), strict=True):
            moved[i] = x
        with precision_scope("float64", device):
            leaves = sides.twin.forward(moved, device)
        leaves = [x for x in leaves if x.dtype.kind in "fc"]
        return float(sum(np.sum(w * x) for w, x in zip(weights, leaves, strict=True)))

    u, _ = _flatten(tangents)
    claim_t = sum(
        float(np.sum(w * (np.zeros_like(w) if a is None else a)))
        for w, a in zip(weights, t, strict=True)
    )
    claim_j = sum(float(np.sum(w * a)) for w, a in zip(weights, j, strict=True))
    return _side(phi, [flat], u, claim_t, claim_j, device)


# --- hvp ----------------------------------------------------------------------------------


def _torch_hvp(sides, vals, pos, cots, ws, dtype: str, device: str):
    """torch's second derivatives, with respect to the inputs and to the cotangents, and
    which outputs are differentiable (``live``); call inside ``precision_scope``."""
    args = to_torch(vals, sides.specs, dtype, device)
    diff = [args[i] for i in pos]
    try:
        with torch.enable_grad():
            leaves = [
                x
                for x in _flatten_torch(sides.torch.callable_for(dtype, device)(*args))
                if x.is_floating_point()
            ]
            if len(leaves) != len(cots):
                raise _Skip()  # the ordinary check reports the outputs' structure
            live = [k for k, x in enumerate(leaves) if x.requires_grad]
            vs = [torch.as_tensor(cots[k], device=leaves[k].device).requires_grad_() for k in live]
            grads = torch.autograd.grad(
                [leaves[k] for k in live], diff, vs, create_graph=True, allow_unused=True
            )
            # @once_differentiable hands back gradients whose grad_fn only raises, and
            # with allow_unused the second backward would silently give None instead
            if any(g is not None and type(g.grad_fn).__name__ in _DELAYED for g in grads):
                raise _Refused("torch", "backward is @once_differentiable (no double backward)")
            wt = [torch.as_tensor(w, device=d.device) for w, d in zip(ws, diff, strict=True)]
            use = [
                (g, w) for g, w in zip(grads, wt, strict=True) if g is not None and g.requires_grad
            ]
            second: list[Any] = [None] * (len(diff) + len(vs))
            if use:
                gs, ws_used = [g for g, _ in use], [w for _, w in use]
                second = list(torch.autograd.grad(gs, diff + vs, ws_used, allow_unused=True))
    except (_Refused, _Skip):
        raise
    except Exception as exc:
        raise _torch_refusal(exc) from exc
    t_dx = [None if s is None else torch_to_numpy(s) for s in second[: len(pos)]]
    t_dv: list[np.ndarray | None] = [None] * len(cots)
    for k, s in zip(live, second[len(pos) :], strict=True):
        t_dv[k] = None if s is None else torch_to_numpy(s)
    return t_dx, t_dv, live


def _hvp_both(sides, values, seed: int, dtype: str, device: str, twin_only: bool = False):
    specs = sides.specs
    vals = cast_values(values, specs, dtype)
    pos = _diff_positions(specs)
    np_dtype = DTYPES[dtype][0]
    with precision_scope(dtype, device):
        shapes = sides.twin.output_shapes(vals, dtype, device)
        cots = [c.astype(np_dtype) for c in cotangents_for(shapes, seed) if c is not None]
        ws = _uniform(_rng(seed, 2), [np.shape(vals[i]) for i in pos], np_dtype)
        t_dx: list[np.ndarray | None] | None = None
        t_dv: list[np.ndarray | None] | None = None
        live = list(range(len(cots)))
        if not twin_only:
            t_dx, t_dv, live = _torch_hvp(sides, vals, pos, cots, ws, dtype, device)
        try:
            j_dx, j_dv = _twin(sides.twin, "hvp", vals, dtype, device, tuple(cots), tuple(ws))
        except Exception as exc:
            raise _Refused(
                "twin", f"the twin raised under vjp-of-vjp: {unsupported_reason(exc)}"
            ) from exc
    # an output torch marks non-differentiable has no d/dv to compare (contract's concern)
    dead = [k for k in range(len(cots)) if k not in live]
    return t_dx, t_dv, list(j_dx), list(j_dv), cots, ws, dead


def _hvp_labels(pos, n_out):
    return [("second derivative with respect to the input", p) for p in pos] + [
        (f"derivative of the backward with respect to the cotangent of output {k}", ("cot", k))
        for k in range(n_out)
    ]


def _check_hvp(sides, values, seed, dtype, device) -> list[Judged]:
    pos = _diff_positions(sides.specs)

    dead: list[int] = []

    def run(dt, twin_only=False):
        t_dx, t_dv, j_dx, j_dv, cots, _, dead_ = _hvp_both(
            sides, values, seed, dt, device, twin_only
        )
        if not twin_only:
            dead[:] = dead_
        for k in dead:
            j_dv[k] = np.zeros_like(j_dv[k])
            if t_dv is not None:
                t_dv[k] = np.zeros_like(j_dv[k])
        t = None if t_dx is None or t_dv is None else t_dx + t_dv
        return t, j_dx + j_dv, len(cots)

    t, j, n = run(dtype)
    labels = _hvp_labels(pos, n)
    bad = _compare_all(sides, labels, t, j, dtype)
    if bad and dtype == "float32":
        bad = _again_in_float64(lambda twin_only: run("float64", twin_only), t, sides, labels)
    return bad


def _hvp_blame(sides, values, seed, device, judged: Judged) -> str:
    """Finite differences of the twin's <w, vjp(x, v)> along the gap, in float64."""
    pos = _diff_positions(sides.specs)
    _, _, _, _, cots, ws, _ = _hvp_both(sides, values, seed, "float64", device, twin_only=True)
    vals64 = cast_values(values, sides.specs, "float64")
    on_cotangent = isinstance(judged.argument, tuple)
    if on_cotangent:  # along the cotangent of one output: <w, J^T v> is linear in v
        k = judged.argument[1]
        xs = [np.asarray(c, np.float64) for c in cots]
    else:
        k = pos.index(judged.argument)
        xs = [np.asarray(vals64[i], np.float64) for i in pos]

    def phi(v: Sequence[np.ndarray]) -> float:
        moved, cv = list(vals64), cots
        if on_cotangent:
            cv = list(v)
        else:
            for i, x in zip(pos, v, strict=True):
                moved[i] = x
        with precision_scope("float64", device):
            grads = sides.twin.run(moved, "float64", device, cv).grads
        return float(sum(np.sum(w * g) for w, g in zip(ws, grads, strict=True)))

    a, e = np.asarray(judged.actual, np.float64), np.asarray(judged.expected, np.float64)
    u = np.nan_to_num(a - e)
    u = u / np.max(np.abs(u)) if np.any(u) else np.ones_like(u)
    return _side(phi, xs, u, float(np.sum(a * u)), float(np.sum(e * u)), device, k)


# --- vmap ---------------------------------------------------------------------------------


def _batch(values, specs, kinds, seed: int):
    """BATCH members per batched argument: the example first, then copies moved by up to
    10% of each element (same signs: a positive domain stays positive)."""
    rng = _rng(seed, 3)
    out = []
    for v, kind in zip(values, kinds, strict=True):
        if kind == "diff" or (kind == "array" and np.asarray(v).dtype.kind == "f"):
            x = np.asarray(v, np.float64)
            members = [x] + [
                x * (1 + _SPREAD * rng.uniform(-1, 1, np.shape(x))) for _ in range(BATCH - 1)
            ]
            out.append(np.stack(members).astype(np.float32).astype(np.float64))
        elif kind == "array":
            out.append(np.stack([np.asarray(v)] * BATCH))
        else:
            out.append(v)
    return out


def _torch_vmap(sides, vals, kinds, in_dims, cots, grads: bool, dtype: str, device: str):
    """torch.func.vmap of torch_fn (or of its per-example vjp when ``grads``); call
    inside ``precision_scope``."""
    args = to_torch(vals, sides.specs, dtype, device)
    args = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]
    try:
        if not grads:
            t = [
                torch_to_numpy(x)
                for x in _flatten_torch(
                    torch.func.vmap(sides.torch.callable_for(dtype, device), in_dims=in_dims)(*args)
                )
            ]
        else:
            per_example = _per_example(sides.torch.callable_for(dtype, device), kinds)
            tcots = tuple(torch.as_tensor(c, device=device) for c in cots)
            out = torch.func.vmap(per_example, in_dims=(*in_dims, 0))(*args, tcots)
            t = [torch_to_numpy(x) for x in out]
    except Exception as exc:
        raise _torch_refusal(exc) from exc
    return t


def _vmap_both(
    sides,
    values,
    seed: int,
    dtype: str,
    device: str,
    position: int,
    grads: bool,
    twin_only: bool = False,
):
    from ..pair.sides import layout_of

    specs = sides.specs
    kinds = layout_of(specs, values)
    batched = _batch(values, specs, kinds, seed)
    axes = []
    for v, kind in zip(batched, kinds, strict=True):
        if kind in ("diff", "array"):
            p = min(position, np.ndim(v) - 1)
            axes.append(p)
        else:
            axes.append(None)
    moved = [
        np.moveaxis(v, 0, a) if a is not None else v for v, a in zip(batched, axes, strict=True)
    ]
    vals = cast_values(moved, specs, dtype)
    np_dtype = DTYPES[dtype][0]
    in_diff = tuple(a for a, k in zip(axes, kinds, strict=True) if k == "diff")
    in_arr = tuple(a for a, k in zip(axes, kinds, strict=True) if k == "array")
    with precision_scope(dtype, device):
        shapes = sides.twin.output_shapes(cast_values(values, specs, dtype), dtype, device)
        # member b's cotangent is (b + 1) times the example's: different per member
        cots = [
            (np.stack([c * (b + 1) for b in range(BATCH)])).astype(np_dtype)
            for c in cotangents_for(shapes, seed)
            if c is not None
        ]
        in_dims = tuple(axes)
        t = (
            None
            if twin_only
            else _torch_vmap(sides, vals, kinds, in_dims, cots, grads, dtype, device)
        )
        try:
            if not grads:
                j = list(_twin(sides.twin, "vmap", vals, dtype, device, axes=(in_diff, in_arr)))
            else:
                axes_ = (in_diff, in_arr)
                j = list(
                    _twin(sides.twin, "vmap_grad", vals, dtype, device, tuple(cots), axes=axes_)
                )
        except Exception as exc:
            raise _Refused(
                "twin", f"the twin raised under jax.vmap: {unsupported_reason(exc)}"
            ) from exc
    return t, j


def _per_example(fn: Callable, kinds: Sequence[str]) -> Callable:
    """The vjp of ``fn`` with respect to its differentiated arguments, for one example."""

    def per_example(*args_and_cots):
        *args, cots = args_and_cots
        pos = [i for i, k in enumerate(kinds) if k == "diff"]

        def f(*d):
            full = list(args)
            for i, x in zip(pos, d, strict=True):
                full[i] = x
            return fn(*full)

        out, pull = torch.func.vjp(f, *[args[i] for i in pos])
        ct = cots[0] if isinstance(out, torch.Tensor) else type(out)(cots)
        return pull(ct)

    return per_example


def _check_vmap(sides, values, seed, dtype, device, positions: Sequence[int]) -> list[Judged]:
    pos = _diff_positions(sides.specs)
    for position in positions:
        for grads in (False, True):
            if grads and (position != 0 or not pos):
                continue  # the per-example gradient with the batch first is enough

            def run(dt, twin_only=False, position=position, grads=grads):
                return _vmap_both(sides, values, seed, dt, device, position, grads, twin_only)

            t, j = run(dtype)
            where = f"(batch dimension at position {position})"
            if grads:
                labels = [(f"per-example gradient {where}", p) for p in pos]
            else:
                labels = [(f"output {i} {where}", None) for i in range(len(j))]
            if len(t) != len(j):
                return [_structure(len(t), len(j))]
            bad = _compare_all(sides, labels, t, j, dtype, forward=not grads)
            if bad and dtype == "float32":
                bad = _again_in_float64(
                    lambda twin_only, run=run: run("float64", twin_only),
                    t,
                    sides,
                    labels,
                    forward=not grads,
                )
            if bad:
                return bad
    return []


# --- verdicts -----------------------------------------------------------------------------


def _structure(nt: int, nj: int) -> Judged:
    c = Comparison(
        False, 0, 0, float("nan"), float("nan"), (), 0.0, float("nan"), float("nan"), False
    )
    return Judged(
        f"torch gave {nt} result(s) under the transform, the twin {nj}", None, c, None, None
    )


def _flatten(xs: Sequence[np.ndarray]):
    shapes = [np.shape(x) for x in xs]
    flat = np.concatenate([np.ravel(x) for x in xs]) if xs else np.zeros(0)
    return flat, shapes


def _unflatten(flat: np.ndarray, shapes) -> list[np.ndarray]:
    out, at = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(flat[at : at + n].reshape(s))
        at += n
    return out


def _side(phi, xs, u, claim_t: float, claim_j: float, device: str, k: int = 0) -> str:
    """Which claim of a directional derivative finite differences contradict."""
    try:
        # phi runs in float64: one x64 scope around all its evaluations, so that JAX is
        # not switched (and its traces forgotten) twice per evaluation
        with precision_scope("float64", device):
            est, err = directional_derivative(phi, xs, k, u)
    except Exception:
        return "unknown"

    def agrees(claim: float) -> bool:
        tol = 20 * err + 1e-5 * max(abs(est), abs(claim)) + 1e-12
        return bool(np.isfinite(claim) and abs(est - claim) <= tol)

    t_ok, j_ok = agrees(claim_t), agrees(claim_j)
    if j_ok and not t_ok:
        return "torch"
    if t_ok and not j_ok:
        return "twin"
    # both match the finite differences: the elementwise gap was rounding (a saturated
    # cross-entropy's second derivative of 1e-14, made by cancelling terms of order 1)
    return "none" if t_ok else "unknown"


def _diagnosis(actual, expected) -> tuple[str, float | None]:
    """zero / disconnected / nonfinite / sign_flipped / scaled (with the factor) / mismatch."""
    if actual is None or expected is None:
        return "mismatch", None
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape != e.shape:
        return "mismatch", None
    if np.any(np.isfinite(a) != np.isfinite(e)):
        return "nonfinite", None
    if not np.any(a) and np.any(e):
        return "zero", None
    c = _ratio(a, e)
    if c is not None:
        if abs(c + 1) < 1e-6:
            return "sign_flipped", None
        if abs(c - 1) > 1e-6:
            return "scaled", float(f"{c:.6g}")
    return "mismatch", None


def _ratio(a: np.ndarray, e: np.ndarray) -> float | None:
    """The constant c with a = c e, if there is one."""
    ee = float(np.vdot(e, e))
    if ee == 0 or not np.all(np.isfinite(a)) or not np.all(np.isfinite(e)):
        return None
    c = float(np.vdot(a, e)) / ee
    if np.linalg.norm(a - c * e) <= 1e-6 * max(float(np.linalg.norm(a)), 1e-300):
        return c
    return None


def _same_ratio_elsewhere(run: Callable, sides, values, first: Judged, c: float) -> bool:
    """One element cannot tell a factor from any other error: the same ratio must hold
    at three random points around the example (in float64)."""
    rng = np.random.default_rng(3)
    pos = _diff_positions(sides.specs)
    for _ in range(3):
        moved = list(values)
        for i in pos:
            x = np.asarray(values[i], np.float64)
            moved[i] = x + 0.25 * (1 + np.abs(x)) * rng.standard_normal(x.shape)
        again = [b for b in run(moved) if (b.what, b.argument) == (first.what, first.argument)]
        if not again or again[0].actual is None:
            return False
        c2 = _ratio(
            np.asarray(again[0].actual, np.float64), np.asarray(again[0].expected, np.float64)
        )
        if c2 is None or abs(c2 - c) > 1e-6 * abs(c):
            return False
    return True


def _finding(check: str, j: Judged, blame: str, dtype: str, device: str, confirm) -> Divergence:
    diag, factor = _diagnosis(j.actual, j.expected)
    if diag in ("scaled", "sign_flipped"):
        c = -1.0 if factor is None else factor
        if not _safe_bool(lambda: confirm(c)):
            diag, factor = "mismatch", None
    if diag == "zero" and j.actual is not None and not np.any(j.actual):
        what = "torch gives zeros (or no gradient at all)"
    else:
        what = f"{j.c.mismatched} of {j.c.total} elements beyond tolerance"
    detail = f"{check}: {j.what} differs from the twin's: {what}" + (
        f" (torch = {factor:g} x the twin)" if factor is not None else ""
    )
    verdict = Verdict(blame, diag, detail, factor)
    argument = None if isinstance(j.argument, tuple) else j.argument  # a cotangent: none
    return divergence(check, verdict, dtype=dtype, device=device, argument=argument, comparison=j.c)


def _refusal_finding(check: str, r: _Refused, dtype: str, device: str) -> Divergence:
    detail = (
        f"{check} was asked for, and "
        + ("torch refuses it" if r.side == "torch" else "the twin cannot do it")
        + f": {r.reason}"
    )
    return divergence(check, Verdict(r.side, "unsupported", detail), dtype=dtype, device=device)


def run_transform(
    check: str,
    sides: Any,
    values: Sequence[Any],
    seed: int,
    dtype: str,
    device: str,
    *,
    asked: bool,
    vmap_positions: Sequence[int] | None = None,
) -> tuple[list[Divergence], str]:
    """One of jvp/hvp/vmap on one example: (findings, capability status)."""
    try:
        if check == "jvp":
            bad = _check_jvp(sides, values, seed, dtype, device)
        elif check == "hvp":
            bad = _check_hvp(sides, values, seed, dtype, device)
        elif check == "vmap":
            ndim = max((np.ndim(v) for v in values if isinstance(v, np.ndarray)), default=0)
            positions = vmap_positions if vmap_positions is not None else range(ndim + 1)
            bad = _check_vmap(sides, values, seed, dtype, device, positions)
        else:
            raise ValueError(f"run_transform: unknown check {check!r}")
    except _Skip:
        return [], NOT_CHECKED
    except _Refused as r:
        status = f"unsupported: {r.reason}"
        return ([_refusal_finding(check, r, dtype, device)] if asked else []), status
    if not bad:
        return [], "ok"
    first = bad[0]
    if check == "jvp":
        blame = _safe(lambda: _jvp_blame(sides, values, seed, device, first))
        again = lambda v, dt: _check_jvp(sides, v, seed, dt, device)  # noqa: E731
    elif check == "hvp":
        blame = _safe(lambda: _hvp_blame(sides, values, seed, device, first))
        again = lambda v, dt: _check_hvp(sides, v, seed, dt, device)  # noqa: E731
    else:
        # the plain call was checked against the twin on this very example, and jax.vmap
        # of a pure function is its loop over the batch: the batching rule is torch's
        blame = "torch"
        every = range(max((np.ndim(v) for v in values if isinstance(v, np.ndarray)), default=0) + 1)
        again = lambda v, dt: _check_vmap(sides, v, seed, dt, device, every)  # noqa: E731

    def rerun(v):
        try:
            return again(v, "float64")
        except _Refused as r:
            if r.side != "torch" or dtype == "float64":
                raise
            return again(v, dtype)  # torch_fn does not run in float64 (see _again_in_float64)

    if blame == "none" or _rounding(first):
        return [], "ok"

    def confirm(c: float) -> bool:
        return _same_ratio_elsewhere(rerun, sides, values, first, c)

    return [_finding(check, first, blame, dtype, device, confirm)], "diverged"


def _rounding(j: Judged) -> bool:
    """A float64 gap far below the quantity's own size: rounding, whatever the check (a
    wrong rule is off by a multiple of the value)."""
    if j.expected is None or j.actual is None:
        return False
    e = np.asarray(j.expected, np.float64)
    size = float(np.max(np.abs(e))) if e.size and np.all(np.isfinite(e)) else np.inf
    return bool(j.c.max_abs_error <= _ROUNDING * max(size, 1e-300))


def _safe(fn: Callable[[], str]) -> str:
    try:
        return fn()
    except Exception:
        return "unknown"


def _safe_bool(fn: Callable[[], bool]) -> bool:
    try:
        return fn()
    except Exception:
        return False
