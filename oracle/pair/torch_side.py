"""The PyTorch side of a pair, called on one example: the forward, then
``torch.autograd.grad`` with the example's cotangents. Takes argument values (numpy
arrays and plain values, as drawn) and returns numpy results; judges nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .bridge import autocast_scope, to_torch, torch_to_numpy
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
        leaf, None for non-floating ones). Call inside ``precision_scope``."""
        args = to_torch(values, self.specs, dtype, device)
        diff = [a for a, s in zip(args, self.specs, strict=True) if getattr(s, "grad", False)]
        with torch.enable_grad(), autocast_scope(dtype, device):
            # a factory is user code too: built under the guard
            out = self.guard.call(
                "torch", "forward", lambda *a: self.callable_for(dtype, device)(*a), *args
            )
        try:
            leaves = flatten_torch(out)
        except Exception as exc:
            raise SideError("torch", "forward", exc) from exc
        connected = [leaf.requires_grad for leaf in leaves]
        grads: list[np.ndarray | None] = [None] * len(diff)
        # cotangents shaped after the twin's outputs: when the outputs differ in
        # structure, the forward check reports it (torch's backward would only raise)
        if backward and diff and any(connected) and _fits(leaves, cotangents):
            pairs = [
                (leaf, torch.as_tensor(c, dtype=leaf.dtype, device=leaf.device))
                for leaf, c, conn in zip(leaves, cotangents, connected, strict=False)
                if conn and c is not None and leaf.is_floating_point()
            ]
            if pairs:
                got = self.guard.call(
                    "torch",
                    "backward",
                    lambda: torch.autograd.grad(
                        [p[0] for p in pairs], diff, [p[1] for p in pairs], allow_unused=True
                    ),
                )
                grads = [None if g is None else torch_to_numpy(g) for g in got]
        return Outputs([torch_to_numpy(leaf) for leaf in leaves], grads, connected)

    def phi(
        self, values: Sequence[Any], device: str, cotangents: Sequence[np.ndarray | None]
    ) -> float:
        """<cotangent, f(x)> in float64, no graph: the scalar finite differences use."""
        args = to_torch(values, self.specs, "float64", device)
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
