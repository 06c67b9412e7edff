"""The PyTorch side of a pair, called on one example: the forward, then
``torch.autograd.grad`` with the example's cotangents. Takes argument values (numpy
arrays and plain values, as drawn) and returns numpy results; judges nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .bridge import autocast_scope, call_copies, to_torch, torch_to_numpy
from .factories import Factory
from .guard import Guard, SideError
from .outputs import Outputs, flatten_torch

__all__ = ["TorchSide"]


class TorchSide:
    def __init__(self, fn: Callable | Factory, specs: Sequence[Any], guard: Guard | None = None):
        self.fn = fn
        self.specs = specs
        self.guard = guard or Guard()

    def callable_for(self, dtype: str, device: str) -> Callable:
        """``fn``, or what the factory ``fn`` builds for this dtype and device."""
        return self.fn.build(dtype, device) if isinstance(self.fn, Factory) else self.fn

    def run(
        self,
        values: Sequence[Any],
        dtype: str,
        device: str,
        cotangents: Sequence[np.ndarray | None] | None,
        *,
        backward: bool = True,
    ) -> Outputs:
        """Forward, then ``torch.autograd.grad`` with ``cotangents`` (one per output
        leaf, None for non-floating ones). Call inside ``precision_scope``.

        torch_fn gets private tensors (see :func:`~oracle.pair.bridge.call_copies`): its
        arguments and cotangents share no memory with ``values``, ``cotangents`` or
        anything the oracle keeps. What it writes into is found by value (against
        ``values`` after the forward, against the forward's results after the backward)
        and by version counter, and listed in :attr:`Outputs.mutations`."""
        leaves_in = to_torch(values, self.specs, dtype, device)
        args = call_copies(leaves_in)
        diff = [a for a, s in zip(leaves_in, self.specs, strict=True) if getattr(s, "grad", False)]
        versions = [a._version if isinstance(a, torch.Tensor) else None for a in args]
        with torch.enable_grad(), autocast_scope(dtype, device):
            # a factory is user code too: built under the guard
            out = self.guard.call(
                "torch", "forward", lambda *a: self.callable_for(dtype, device)(*a), *args
            )
        try:
            leaves = flatten_torch(out)
        except Exception as exc:
            raise SideError("torch", "forward", exc) from exc
        # copies now: a backward may write into an output's memory
        results = [np.array(torch_to_numpy(leaf), copy=True) for leaf in leaves]
        dirty = {i for i, a in enumerate(args) if any(a is leaf for leaf in leaves)}
        mutations = _written(args, values, versions, dirty, "forward")
        connected = [leaf.requires_grad for leaf in leaves]
        grads: list[np.ndarray | None] = [None] * len(diff)
        # cotangents shaped after the twin's outputs: when the outputs differ in
        # structure, the forward check reports it (torch's backward would only raise)
        if backward and diff and any(connected) and _fits(leaves, cotangents):
            pairs = [
                # torch.tensor copies: the backward may write into grad_output
                (k, leaf, torch.tensor(c, dtype=leaf.dtype, device=leaf.device))
                for k, (leaf, c, conn) in enumerate(
                    zip(leaves, cotangents, connected, strict=False)
                )
                if conn and c is not None and leaf.is_floating_point()
            ]
            if pairs:
                after = [
                    np.array(torch_to_numpy(a), copy=True) if isinstance(a, torch.Tensor) else None
                    for a in args
                ]
                versions = [a._version if isinstance(a, torch.Tensor) else None for a in args]
                cot_versions = [p[2]._version for p in pairs]
                got = self.guard.call(
                    "torch",
                    "backward",
                    lambda: torch.autograd.grad(
                        [p[1] for p in pairs], diff, [p[2] for p in pairs], allow_unused=True
                    ),
                )
                grads = [None if g is None else torch_to_numpy(g) for g in got]
                mutations += _written(args, after, versions, set(), "backward")
                for (k, _, c), v in zip(pairs, cot_versions, strict=True):
                    pristine = np.asarray(cotangents[k])
                    now = torch_to_numpy(c)
                    if c._version != v or not _same(now, pristine.astype(now.dtype)):
                        mutations.append(("grad_output", k, "backward"))
        return Outputs(results, grads, connected, mutations)

    def phi(
        self, values: Sequence[Any], device: str, cotangents: Sequence[np.ndarray | None]
    ) -> float:
        """<cotangent, f(x)> in float64, no graph: the scalar finite differences use."""
        args = [
            a.detach() if isinstance(a, torch.Tensor) else a
            for a in to_torch(values, self.specs, "float64", device)
        ]
        with torch.no_grad():
            fn = self.guard.call("torch", "forward", self.callable_for, "float64", device)
            leaves = flatten_torch(self.guard.call("torch", "forward", fn, *args))
        total = 0.0
        for leaf, c in zip(leaves, cotangents, strict=False):
            if c is not None and leaf.is_floating_point():
                total += float(np.sum(torch_to_numpy(leaf).astype(np.float64) * c))
        return total


def _fits(leaves: Sequence[Any], cotangents: Sequence[np.ndarray | None] | None) -> bool:
    """Whether there is one cotangent per output, each of its output's shape (and no
    complex output: the cotangents are real, and complex outputs are not judged yet)."""
    if cotangents is None or len(cotangents) != len(leaves):
        return False
    return all(
        c is None or (tuple(c.shape) == tuple(leaf.shape) and not leaf.is_complex())
        for leaf, c in zip(leaves, cotangents, strict=True)
    )


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise the same values (NaN equal to NaN)."""
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _written(
    args: Sequence[Any], before: Sequence[Any], versions: Sequence[Any], dirty: set[int], stage: str
) -> list[tuple[str, int, str]]:
    """The arguments torch_fn changed (values or version counter), except those it
    returned marked dirty (``ctx.mark_dirty`` hands back the very tensor)."""
    found = []
    for i, (a, b, v) in enumerate(zip(args, before, versions, strict=True)):
        if not isinstance(a, torch.Tensor) or i in dirty:
            continue
        now = torch_to_numpy(a)
        ref = np.asarray(b)
        if a._version != v or not _same(
            now, ref.astype(now.dtype) if ref.dtype != now.dtype else ref
        ):
            found.append(("input", i, stage))
    return found
