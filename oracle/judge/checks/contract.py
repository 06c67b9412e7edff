"""The rules of ``torch.autograd.Function`` beyond its values, on one example.

* inputs unchanged unless marked dirty (values and ``_version`` counters): "mutates_input";
* ``grad_output`` unchanged by backward: "mutates_grad_output" (both found on every
  example by the vjp check's own call, on private copies: :func:`mutation_findings`);
* transposed, sliced and expanded (stride-0) inputs and cotangents give the results of
  the same values laid out contiguously: "layout" (a forward that raises on a layout is
  a refusal: "unsupported", a capability unless the contract was asked for);
* each output used alone (the others' gradients undefined) gives the twin's vjp with
  the others' cotangents zero;
* a second backward through the same graph (``retain_graph=True``) gives the first's
  result: "nondeterministic";
* an output marked non-differentiable has no gradient in the twin either.

Most rules compare torch with itself (same values, another layout or call), so they need
no reference; the two that need one use the twin's compiled vjp.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ...inputs.specs import ChoiceSpec, TensorSpec
from ...pair.bridge import (
    DTYPES,
    call_copies,
    cast_values,
    precision_scope,
    to_torch,
    torch_to_numpy,
)
from ...pair.outputs import cotangents_for, flatten_torch
from ...report.records import Divergence
from ..findings import Verdict, divergence
from ..tolerance import Tolerance, compare
from .base import Check
from .transform import tolerance_for

__all__ = ["check_before", "check_contract", "mutation_findings"]


def _finding(
    diagnosis: str,
    detail: str,
    dtype: str,
    device: str,
    argument=None,
    *,
    phase: str = "",
    reason: str = "",
    **kw,
) -> Divergence:
    verdict = Verdict("torch", diagnosis, detail, phase=phase, reason=reason)
    return divergence("contract", verdict, dtype=dtype, device=device, argument=argument, **kw)


def _is_float(spec: Any) -> bool:
    return isinstance(spec, (TensorSpec, ChoiceSpec))


def check_before(
    sides: Any, values: Sequence[Any], cot_seed: int, dtype: str, device: str
) -> list[Divergence]:
    """The rule checked before the example's own check, from one forward on private
    copies: no gradient in the twin through an output torch marks non-differentiable
    (which would otherwise show as a vjp mismatch). Inputs changed in place are found
    on every example by the vjp check's own call (:func:`mutation_findings`)."""
    specs = sides.specs
    with precision_scope(dtype, device):
        args = call_copies(to_torch(cast_values(values, specs, dtype), specs, dtype, device))
        try:
            with torch.enable_grad():
                leaves = flatten_torch(sides.torch.callable_for(dtype, device)(*args))
        except Exception:
            return []  # the ordinary check reports errors
    try:
        cots_np = _cotangents(sides, values, cot_seed, dtype, device)
    except Exception:
        return []  # the twin raises: the ordinary check reports it
    return _non_differentiable(sides, values, leaves, cots_np, dtype, device)


def _cotangents(sides, values, cot_seed, dtype, device) -> list[np.ndarray | None]:
    vals = cast_values(values, sides.specs, dtype)
    with precision_scope(dtype, device):
        shapes = sides.twin.output_shapes(vals, dtype, device)
    dt = DTYPES[dtype][0]
    return [None if c is None else c.astype(dt) for c in cotangents_for(shapes, cot_seed)]


def mutation_findings(
    mutations: Sequence[tuple[str, int, str]], dtype: str, device: str
) -> list[Divergence]:
    """The contract findings for what torch_fn wrote into (see
    :attr:`oracle.pair.outputs.Outputs.mutations`), one per input or output, first
    stage first."""
    out, seen = [], set()
    for what, i, stage in mutations:
        if (what, i) in seen:
            continue
        seen.add((what, i))
        if what == "input":
            where = "forward" if stage == "forward" else "backward"
            detail = (
                f"torch_fn's {where} changes argument {i} in place without returning it as an "
                "output marked with ctx.mark_dirty (found by its values or its version counter: "
                "a write through .data, a raw pointer or an in-place op): later uses of that "
                "tensor see the new values and get wrong gradients"
            )
            out.append(_finding("mutates_input", detail, dtype, device, argument=i))
        else:
            detail = (
                f"the backward changes grad_output (of output {i}) in place: another branch "
                "of the graph that receives the same tensor (F(x) + w: the gradient of w) "
                "gets the changed values"
            )
            out.append(_finding("mutates_grad_output", detail, dtype, device))
    return out


# --- torch with itself ------------------------------------------------------------------


def _grads(fn, args, diff_pos, cots, *, keep=None, retain=False):
    """Outputs and gradients of torch_fn for cotangent tensors ``cots`` (None: skip)."""
    with torch.enable_grad():
        leaves = flatten_torch(fn(*call_copies(args)))
        keep = range(len(leaves)) if keep is None else keep
        pairs = [
            (leaves[k], cots[k])
            for k in keep
            if cots[k] is not None and leaves[k].is_floating_point() and leaves[k].requires_grad
        ]
        diff = [args[i] for i in diff_pos]
        if not pairs:
            return leaves, pairs, [None] * len(diff)
        outs, cts = [p[0] for p in pairs], [p[1] for p in pairs]
        got = torch.autograd.grad(outs, diff, cts, allow_unused=True, retain_graph=retain)
    return leaves, pairs, list(got)


def _np(xs) -> list[np.ndarray | None]:
    return [None if x is None else torch_to_numpy(x) for x in xs]


def _layout(t: torch.Tensor, how: str) -> torch.Tensor | None:
    """The same values (expanded: its first column repeated) in another memory layout."""
    t = t.detach()
    if how == "transposed":
        return (
            t.mT.contiguous().mT if t.dim() >= 2 and t.shape[-1] > 1 and t.shape[-2] > 1 else None
        )
    if how == "sliced":
        if t.dim() == 0 or t.numel() == 0:
            return None
        buf = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype, device=t.device)
        buf[..., ::2] = t
        return buf[..., ::2]
    if t.dim() == 0 or t.shape[-1] < 2:
        return None
    return t[..., :1].expand(t.shape)


def _first_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}"


def _differs(a: list, b: list, tol: Tolerance) -> str | None:
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        if x is None and y is None:
            continue
        if x is None or y is None or x.shape != y.shape:
            sx, sy = ("missing" if v is None else np.shape(v) for v in (x, y))
            return f"result {k} is {sx} vs {sy}"
        if x.dtype.kind != "f":
            if not np.array_equal(x, y):
                return f"result {k} differs"
            continue
        c = compare(x, y, tol)
        if not c.ok:
            return (
                f"result {k} differs by {c.max_abs_error:.4g} at index {c.worst_index} "
                f"({c.actual_at_worst:.6g} vs {c.expected_at_worst:.6g})"
            )
    return None


def _varies(fn, args, diff_pos, cots, first, tol, calls: int = 5) -> bool:
    """Whether the same call, repeated, gives another gradient than ``first``."""
    for _ in range(calls):
        try:
            _, _, g = _grads(fn, args, diff_pos, cots)
        except Exception:
            return False
        if _differs(_np(g), first, tol):
            return True
    return False


def _check_layouts(fn, specs, vals, diff_pos, cots_np, dtype, device, tol) -> list[Divergence]:
    """A wrong value on some layout (the first), else the first layout torch_fn's
    forward refuses (a capability), else nothing."""
    out: list[Divergence] = []
    refused: list[Divergence] = []
    for how in ("transposed", "sliced", "expanded"):
        args = to_torch(vals, specs, dtype, device)
        laid = []
        for a, s in zip(args, specs, strict=True):
            new = _layout(a, how) if _is_float(s) else None
            laid.append(a if new is None else new.requires_grad_(bool(s.grad)))
        ct = [None if c is None else torch.as_tensor(c, device=device) for c in cots_np]
        ct_laid = [None if c is None else _layout(c, how) for c in ct]
        ct_laid = [c if n is None else n for c, n in zip(ct, ct_laid, strict=True)]
        moved = [i for i, (a, b) in enumerate(zip(args, laid, strict=True)) if a is not b] + [
            f"cotangent {k}" for k, (c, n) in enumerate(zip(ct, ct_laid, strict=True)) if c is not n
        ]
        if not moved:
            continue
        # the reference: the very same values, contiguous
        ref_args = [
            b.detach().contiguous().requires_grad_(b.requires_grad) if a is not b else a
            for a, b in zip(args, laid, strict=True)
        ]
        ref_cots = [None if c is None else c.contiguous() for c in ct_laid]
        try:
            leaves0, _, g0 = _grads(fn, ref_args, diff_pos, ref_cots)
        except Exception:
            continue  # the values of the expanded example are outside the function's domain
        what = f"{how} tensors ({', '.join(map(str, moved))})"
        try:
            with torch.enable_grad():
                fn(*call_copies(laid))
        except Exception as exc:
            # a loud refusal of the layout in the forward: a capability, not a wrong value
            # (a finding only when the contract was asked for)
            moved_in = [m for m in moved if isinstance(m, int)]
            why = f"raises on {how} input ({', '.join(map(str, moved_in))}): {_first_line(exc)}"
            refused = refused or [_finding("unsupported", why, dtype, device, reason="refused")]
            continue
        try:
            leaves1, _, g1 = _grads(fn, laid, diff_pos, ct_laid)
        except Exception as exc:
            out.append(
                _finding(
                    "layout",
                    f"torch_fn raises on {what} but not on the same values laid out "
                    f"contiguously: {_first_line(exc)}",
                    dtype,
                    device,
                )
            )
            break
        why = _differs(_np(leaves1) + _np(g1), _np(leaves0) + _np(g0), tol)
        if why and _varies(fn, ref_args, diff_pos, ref_cots, _np(g0), tol):
            # the same contiguous call gives another answer too: not the layout's doing
            out.append(
                _finding(
                    "nondeterministic",
                    "torch's backward gives different answers when called again on the same "
                    "inputs and grad_output: random numbers or state kept between calls",
                    dtype,
                    device,
                )
            )
            break
        if why:
            out.append(
                _finding(
                    "layout",
                    f"torch_fn gives other results on {what} than on the same values laid out "
                    f"contiguously: {why} (a backward that assumes contiguous strides: "
                    "as_strided, .view, data_ptr arithmetic)",
                    dtype,
                    device,
                )
            )
            break
    return out or refused


def check_contract(
    sides: Any, values: Sequence[Any], cot_seed: int, dtype: str, device: str
) -> list[Divergence]:
    """The other rules (see :func:`check_before`) on one example whose vjp was found right."""
    specs, fn = sides.specs, sides.torch.callable_for(dtype, device)
    vals = cast_values(values, specs, dtype)
    diff_pos = [i for i, s in enumerate(specs) if getattr(s, "grad", False)]
    np_dtype = DTYPES[dtype][0]
    with precision_scope(dtype, device):
        shapes = sides.twin.output_shapes(vals, dtype, device)
        cots_np = [
            None if c is None else c.astype(np_dtype) for c in cotangents_for(shapes, cot_seed)
        ]
        if not diff_pos:
            return []
        # grad_output unchanged, and a second backward gives the first's result
        args = to_torch(vals, specs, dtype, device)
        # torch's own copies: as_tensor would share the arrays compared with afterwards
        cots = [None if c is None else torch.tensor(c, device=device) for c in cots_np]
        versions = [None if c is None else c._version for c in cots]
        try:
            leaves, pairs, g1 = _grads(fn, args, diff_pos, cots, retain=True)
        except Exception:
            return []
        for k, c in enumerate(cots):
            # the version counter too: g.mul_(cos x) changes nothing where cos x = 1
            if c is not None and (
                c._version != versions[k] or not np.array_equal(torch_to_numpy(c), cots_np[k])
            ):
                return [
                    _finding(
                        "mutates_grad_output",
                        f"the backward changes grad_output (of output {k}) in place: another "
                        "branch of the graph that receives the same tensor (F(x) + w: the "
                        "gradient of w) gets the changed values",
                        dtype,
                        device,
                    )
                ]
        if pairs:
            outs, cts = [p[0] for p in pairs], [p[1] for p in pairs]
            try:
                g2 = torch.autograd.grad(outs, [args[i] for i in diff_pos], cts, allow_unused=True)
            except Exception as exc:
                why = f"a second backward (retain_graph=True) raises: {type(exc).__name__}: {exc}"
                return [_finding("error", why, dtype, device)]
            why = _differs(_np(g2), _np(g1), tolerance_for(sides, dtype))
            if why:
                return [
                    _finding(
                        "nondeterministic",
                        f"a second backward through the same graph (retain_graph=True) gives "
                        f"another gradient: {why} (a backward that changes ctx, or a random one)",
                        dtype,
                        device,
                    )
                ]
        found = _check_layouts(
            fn, specs, vals, diff_pos, cots_np, dtype, device, tolerance_for(sides, dtype)
        )
        if found:
            return found
        return _check_outputs(sides, values, vals, leaves, diff_pos, cots_np, dtype, device)


def _twin_grads(sides, values, cots_np, dtype, device) -> list[np.ndarray]:
    dt = DTYPES[dtype][0]
    vals = cast_values(values, sides.specs, dtype)
    cots = [None if c is None else c.astype(dt) for c in cots_np]
    with precision_scope(dtype, device):
        return sides.twin.run(vals, dtype, device, cots).grads


def _only(cots_np, k):
    return [
        None if c is None else (c if j == k else np.zeros_like(c)) for j, c in enumerate(cots_np)
    ]


def _non_differentiable(sides, values, leaves, cots_np, dtype, device) -> list[Divergence]:
    if len(leaves) != len(cots_np):
        return []  # the ordinary check reports a difference in structure
    floating = [k for k, x in enumerate(leaves) if x.is_floating_point() and cots_np[k] is not None]
    live = [k for k in floating if leaves[k].requires_grad]
    if not live or not any(getattr(s, "grad", False) for s in sides.specs):
        return []  # nothing differentiable at all: the vjp check's "disconnected"
    for k in floating:
        if leaves[k].requires_grad:
            continue
        # torch says no gradient flows through output k: the twin must agree
        try:
            j = _twin_grads(sides, values, _only(cots_np, k), dtype, device)
        except Exception:
            continue
        scale = max((float(np.max(np.abs(x))) for x in j if x.size), default=0.0)
        if scale > 0 and np.isfinite(scale):
            return [
                _finding(
                    "disconnected",
                    f"output {k} is non-differentiable in torch (ctx.mark_non_differentiable, or "
                    f"computed without a graph), but the twin's gradient through it is not zero "
                    f"(up to {scale:.4g})",
                    dtype,
                    device,
                    max_abs_error=scale,
                )
            ]
    return []


def _check_outputs(
    sides, values, vals, leaves, diff_pos, cots_np, dtype, device
) -> list[Divergence]:
    """Each output used alone."""
    fn, specs = sides.torch.callable_for(dtype, device), sides.specs
    floating = [k for k, x in enumerate(leaves) if x.is_floating_point() and cots_np[k] is not None]
    live = [k for k in floating if leaves[k].requires_grad]
    if len(live) < 2:
        return []
    for k in live:
        # the twin's vjp is linear in the cotangent (JAX builds it so), and the full one was
        # checked: a disagreement here is torch's handling of the undefined gradients
        for dt in (dtype, "float64") if dtype != "float64" else (dtype,):
            args = to_torch(cast_values(values, specs, dt), specs, dt, device)
            cots = [
                None if c is None else torch.as_tensor(c.astype(DTYPES[dt][0]), device=device)
                for c in cots_np
            ]
            try:
                _, _, g = _grads(fn, args, diff_pos, cots, keep=[k])
            except Exception as exc:
                why = (
                    f"the backward raises when only output {k} is used: {type(exc).__name__}: {exc}"
                )
                return [_finding("error", why, dtype, device)]
            j = _twin_grads(sides, values, _only(cots_np, k), dt, device)
            t = [np.zeros_like(b) if a is None else a for a, b in zip(_np(g), j, strict=True)]
            why = _differs(t, j, tolerance_for(sides, dt))
            if not why:
                break
        else:
            return [
                _finding(
                    "mismatch",
                    f"with only output {k} used (the others' gradients undefined: None under "
                    "ctx.set_materialize_grads(False)), the gradient differs from the twin's: "
                    + why,
                    dtype,
                    device,
                    phase="output_alone",
                )
            ]
    return []


def _run(
    sides: Any,
    values: Sequence[Any],
    seed: int,
    dtype: str,
    device: str,
    *,
    asked: bool,
    thorough: bool,
) -> tuple[list[Divergence], str]:
    found = check_contract(sides, values, seed, dtype, device)
    refused = [d for d in found if d.reason == "refused"]
    if refused:
        # the plan keeps an asked check's refusal aside as one finding, and drops it
        # from the default set's findings: there it is the capability alone
        status = f"unsupported: {refused[0].detail}"
        return (refused if asked else []), status
    return found, "diverged" if found else "ok"


CHECK = Check(
    "contract",
    run=_run,
    before=check_before,
    # each output used alone is compared with the twin's vjp: wrong when the vjp is
    follows_vjp=lambda d: d.phase == "output_alone",
)
