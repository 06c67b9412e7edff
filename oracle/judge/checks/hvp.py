r"""``hvp``: torch's backward differentiated again (``create_graph=True``) with respect to
the inputs and to the cotangent, against ``jax.vjp`` of the twin's vjp: for a random
:math:`w`, :math:`\partial \langle w, J(x)^T v\rangle / \partial x` and
:math:`\partial \langle w, J(x)^T v\rangle / \partial v = J w`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import torch

from ...pair.bridge import (
    DTYPES,
    call_copies,
    cast_values,
    precision_scope,
    to_torch,
    torch_to_numpy,
)
from ...pair.outputs import cotangents_for, flatten_torch
from ...pair.twin_side import twin_vjp
from .base import Check
from .transform import (
    Judged,
    Refused,
    Skip,
    Transform,
    again_in_float64,
    compare_all,
    diff_positions,
    rng_for,
    side_of,
    torch_refusal,
    twin_program,
    uniform,
    unsupported_reason,
)

#: the grad_fn of a @once_differentiable backward's results (torch's DelayedError node)
_DELAYED = ("Error", "DelayedError")  # one-off programs: compile fast (as sides.py)


def _twin_hvp(jax_fn, layout, statics, diff, arrays, scalars, cots, ws):
    def grads(d, c):
        return tuple(twin_vjp(jax_fn, layout, statics, d, arrays, scalars, c)[1])

    _, pull = jax.vjp(grads, tuple(diff), tuple(cots))
    dx, dc = pull(tuple(ws))
    return list(dx), list(dc)


def _torch_hvp(sides, vals, pos, cots, ws, dtype: str, device: str):
    """torch's second derivatives, with respect to the inputs and to the cotangents, and
    which outputs are differentiable (``live``); call inside ``precision_scope``."""
    args = to_torch(vals, sides.specs, dtype, device)
    diff = [args[i] for i in pos]
    try:
        with torch.enable_grad():
            leaves = [
                x
                for x in flatten_torch(sides.torch.callable_for(dtype, device)(*call_copies(args)))
                if x.is_floating_point()
            ]
            if len(leaves) != len(cots):
                raise Skip()  # the ordinary check reports the outputs' structure
            live = [k for k, x in enumerate(leaves) if x.requires_grad]
            vs = [torch.tensor(cots[k], device=leaves[k].device).requires_grad_() for k in live]
            grads = torch.autograd.grad(
                [leaves[k] for k in live], diff, vs, create_graph=True, allow_unused=True
            )
            # @once_differentiable hands back gradients whose grad_fn only raises, and
            # with allow_unused the second backward would silently give None instead
            if any(g is not None and type(g.grad_fn).__name__ in _DELAYED for g in grads):
                raise Refused("torch", "backward is @once_differentiable (no double backward)")
            wt = [torch.tensor(w, device=d.device) for w, d in zip(ws, diff, strict=True)]
            use = [
                (g, w) for g, w in zip(grads, wt, strict=True) if g is not None and g.requires_grad
            ]
            second: list[Any] = [None] * (len(diff) + len(vs))
            if use:
                gs, ws_used = [g for g, _ in use], [w for _, w in use]
                second = list(torch.autograd.grad(gs, diff + vs, ws_used, allow_unused=True))
    except (Refused, Skip):
        raise
    except Exception as exc:
        raise torch_refusal(exc) from exc
    t_dx = [None if s is None else torch_to_numpy(s) for s in second[: len(pos)]]
    t_dv: list[np.ndarray | None] = [None] * len(cots)
    for k, s in zip(live, second[len(pos) :], strict=True):
        t_dv[k] = None if s is None else torch_to_numpy(s)
    return t_dx, t_dv, live


def _hvp_both(sides, values, seed: int, dtype: str, device: str, twin_only: bool = False):
    specs = sides.specs
    vals = cast_values(values, specs, dtype)
    pos = diff_positions(specs)
    np_dtype = DTYPES[dtype][0]
    with precision_scope(dtype, device):
        shapes = sides.twin.output_shapes(vals, dtype, device)
        cots = [c.astype(np_dtype) for c in cotangents_for(shapes, seed) if c is not None]
        ws = uniform(rng_for(seed, 2), [np.shape(vals[i]) for i in pos], np_dtype)
        t_dx: list[np.ndarray | None] | None = None
        t_dv: list[np.ndarray | None] | None = None
        live = list(range(len(cots)))
        if not twin_only:
            t_dx, t_dv, live = _torch_hvp(sides, vals, pos, cots, ws, dtype, device)
        try:
            j_dx, j_dv = twin_program(
                sides.twin, "hvp", _twin_hvp, (0, 1, 2), vals, dtype, device, tuple(cots), tuple(ws)
            )
        except Exception as exc:
            raise Refused(
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
    pos = diff_positions(sides.specs)

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
    bad = compare_all(sides, labels, t, j, dtype)
    if bad and dtype == "float32":
        bad = again_in_float64(lambda twin_only: run("float64", twin_only), t, sides, labels)
    return bad


def _hvp_blame(sides, values, seed, device, judged: Judged) -> str:
    """Finite differences of the twin's <w, vjp(x, v)> along the gap, in float64."""
    pos = diff_positions(sides.specs)
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
    return side_of(phi, xs, u, float(np.sum(a * u)), float(np.sum(e * u)), device, k)


def _compare(sides, values, seed, dtype, device, thorough) -> list[Judged]:
    return _check_hvp(sides, values, seed, dtype, device)


CHECK = Check(
    "hvp",
    run=Transform("hvp", _compare, _hvp_blame).run,
    # it differentiates the backward again: under the default set, a run whose vjp
    # diverged does not report it (its capability still says "diverged")
    follows_vjp=lambda d: True,
    probes_refusal=True,
    needs_right_vjp=True,
)
