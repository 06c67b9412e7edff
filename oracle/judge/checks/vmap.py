r"""``vmap``: ``torch.func.vmap`` of ``torch_fn`` with the batch dimension at every position,
and of its per-example vjp, against ``jax.vmap`` of the twin."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import torch

from ...pair.bridge import DTYPES, cast_values, precision_scope, to_torch, torch_to_numpy
from ...pair.custom_ops import NO_FUNC_GRADIENT, custom_op_name
from ...pair.outputs import cotangents_for, flatten_torch, layout_of
from ...pair.twin_side import assemble, twin_vjp
from ..rounding import ROUNDING, magnitudes_of_jaxpr
from .base import Check
from .transform import (
    Judged,
    Refused,
    Transform,
    again_in_float64,
    compare_all,
    diff_positions,
    rng_for,
    structure,
    torch_refusal,
    twin_program,
    unsupported_reason,
)

#: batch size of the vmap check: 3 so that a batch is never square with a 2-long dim
#: by accident, and a wrong ``out_dims`` cannot hide behind equal sizes in the small
#: examples shrinking goes to
BATCH = 3
#: how far the batch members sit from the example (relative): different values, same signs
_SPREAD = 0.1


def _twin_vmap(jax_fn, layout, statics, in_diff, in_arr, diff, arrays, scalars):
    def f(d, a):
        return jax.tree_util.tree_leaves(jax_fn(*assemble(layout, d, a, scalars, statics)))

    return jax.vmap(f, in_axes=(in_diff, in_arr), out_axes=0)(tuple(diff), tuple(arrays))


def _twin_vmap_grad(jax_fn, layout, statics, in_diff, in_arr, diff, arrays, scalars, cots):
    def g(d, a, c):
        return tuple(twin_vjp(jax_fn, layout, statics, d, a, scalars, c)[1])

    return jax.vmap(g, in_axes=(in_diff, in_arr, 0))(tuple(diff), tuple(arrays), tuple(cots))


#: the programs, and their static arguments; compiled per pair by its TwinSide (which


def _batch(values, specs, kinds, seed: int):
    """BATCH members per batched argument: the example first, then copies moved by up to
    10% of each element (same signs: a positive domain stays positive)."""
    rng = rng_for(seed, 3)
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
                for x in flatten_torch(
                    torch.func.vmap(sides.torch.callable_for(dtype, device), in_dims=in_dims)(*args)
                )
            ]
        else:
            per_example = _per_example(sides.torch.callable_for(dtype, device), kinds)
            tcots = tuple(torch.tensor(c, device=device) for c in cots)
            out = torch.func.vmap(per_example, in_dims=(*in_dims, 0))(*args, tcots)
            t = [torch_to_numpy(x) for x in out]
    except Exception as exc:
        op = custom_op_name(sides.torch.fn)
        if op is not None and grads and "setup_context" in str(exc):
            raise Refused("torch", NO_FUNC_GRADIENT(op)) from exc
        raise torch_refusal(exc) from exc
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
                j = list(
                    twin_program(
                        sides.twin,
                        "vmap",
                        _twin_vmap,
                        (0, 1, 2, 3, 4),
                        vals,
                        dtype,
                        device,
                        axes=(in_diff, in_arr),
                    )
                )
            else:
                axes_ = (in_diff, in_arr)
                j = list(
                    twin_program(
                        sides.twin,
                        "vmap_grad",
                        _twin_vmap_grad,
                        (0, 1, 2, 3, 4),
                        vals,
                        dtype,
                        device,
                        tuple(cots),
                        axes=axes_,
                    )
                )
        except Exception as exc:
            raise Refused(
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
    pos = diff_positions(sides.specs)
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
                return [structure(len(t), len(j))]
            bad = compare_all(sides, labels, t, j, dtype, forward=not grads)
            if bad and dtype == "float32":
                bad = again_in_float64(
                    lambda twin_only, run=run: run("float64", twin_only),
                    t,
                    sides,
                    labels,
                    forward=not grads,
                )
            if bad and not grads:
                bad = _beyond_rounding(sides, values, seed, device, position, labels, bad)
            for b in bad:
                b.phase = "per_example" if grads else ""
            if bad:
                return bad
    return []


def _beyond_rounding(sides, values, seed, device, position, labels, bad) -> list[Judged]:
    """The batched outputs judged with the rounding model, as the unbatched ones are
    (:func:`oracle.judge.rounding.magnitudes_of_jaxpr` of the twin's vmap in float64):
    an exact 0 against the twin's 2e-17 made from terms of size 1 is rounding."""
    try:
        terms = _vmap_terms(sides, values, seed, device, position)
    except Exception:
        return bad
    index = {what: i for i, (what, _) in enumerate(labels)}
    kept = []
    for b in bad:
        i = index.get(b.what)
        m = terms[i] if i is not None and i < len(terms) else None
        if m is None or b.actual is None or b.expected is None:
            kept.append(b)
            continue
        a = np.asarray(b.actual, np.float64)
        e = np.asarray(b.expected, np.float64)
        finite = np.all(np.isfinite(a)) and np.all(np.isfinite(e))
        if not (finite and a.shape == e.shape == np.shape(m)) or np.any(
            np.abs(a - e) > ROUNDING * _EPS64 * m
        ):
            kept.append(b)
    return kept


_EPS64 = float(np.finfo(np.float64).eps)


def _vmap_terms(sides, values, seed, device, position) -> list[np.ndarray | None]:
    """Per batched output of the twin, the magnitude of the terms of its float64 value."""
    specs = sides.specs
    kinds = layout_of(specs, values)
    batched = _batch(values, specs, kinds, seed)
    axes = [
        min(position, np.ndim(v) - 1) if kind in ("diff", "array") else None
        for v, kind in zip(batched, kinds, strict=True)
    ]
    moved = [
        np.moveaxis(v, 0, a) if a is not None else v for v, a in zip(batched, axes, strict=True)
    ]
    vals = cast_values(moved, specs, "float64")
    in_diff = tuple(a for a, k in zip(axes, kinds, strict=True) if k == "diff")
    in_arr = tuple(a for a, k in zip(axes, kinds, strict=True) if k == "array")
    twin = sides.twin
    with precision_scope("float64", device):
        layout, g = twin.split(vals, "float64", device)
        statics = tuple(g["static"])

        def batched_fn(diff, arrays, scalars):
            return _twin_vmap(twin.fn, layout, statics, in_diff, in_arr, diff, arrays, scalars)

        args = (tuple(g["diff"]), tuple(g["array"]), tuple(g["scalar"]))
        closed = jax.make_jaxpr(batched_fn)(*args)
        return magnitudes_of_jaxpr(closed, jax.tree_util.tree_leaves(args))


def _ends(values: Sequence[Any]) -> list[int]:
    ndim = max((np.ndim(v) for v in values if isinstance(v, np.ndarray)), default=0)
    return sorted({0, ndim})


def _compare(sides, values, seed, dtype, device, thorough) -> list[Judged]:
    """The batch dimension at every position (``thorough``), or first and last."""
    ndim = max((np.ndim(v) for v in values if isinstance(v, np.ndarray)), default=0)
    positions = range(ndim + 1) if thorough else _ends(values)
    return _check_vmap(sides, values, seed, dtype, device, positions)


def _blame(sides, values, seed, device, first) -> str:
    # the plain call was checked against the twin on this very example, and jax.vmap
    # of a pure function is its loop over the batch: the batching rule is torch's
    return "torch"


CHECK = Check(
    "vmap",
    run=Transform("vmap", _compare, _blame).run,
    # the per-example gradient runs the backward: under the default set, a run whose vjp
    # diverged does not report it
    follows_vjp=lambda d: d.phase == "per_example",
    probes_refusal=True,
    needs_right_vjp=True,
)
