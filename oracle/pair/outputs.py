"""What each side returns and what both sides are given besides the example: output
leaves and gradients as numpy arrays (:class:`Outputs`), the kind of each argument
(:func:`layout_of`), the random cotangents (:func:`cotangents_for`), and a torch output
flattened to its tensors (:func:`flatten_torch`).

Arguments are split by kind: ``diff`` (differentiated float tensors), ``array`` (float
tensors with ``grad=False`` and integer tensors: traced, not baked into the program),
``scalar`` (Python floats from strategies: traced as weak-typed scalars so a drawn
hyper-parameter does not recompile, unless the twin needs its concrete value) and
``static`` (everything else: part of the compiled program's key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..inputs.specs import ChoiceSpec, IntegersSpec, TensorSpec

__all__ = ["Outputs", "layout_of", "cotangents_for", "flatten_torch"]


@dataclass
class Outputs:
    """One side's results: output leaves and one gradient per differentiated argument
    (``None`` where torch gave no gradient at all)."""

    leaves: list[np.ndarray]
    grads: list[np.ndarray | None]
    #: per leaf: does it carry a gradient (torch: requires_grad; twin: inexact dtype)
    connected: list[bool]
    #: torch only: what torch_fn wrote into, found by value against pristine copies and
    #: by version counter: ``(what, index, stage)`` with what "input" (index: argument
    #: position; not one returned under ``ctx.mark_dirty``) or "grad_output" (index:
    #: output leaf), stage "forward" or "backward"
    mutations: list[tuple[str, int, str]] = field(default_factory=list)


def layout_of(specs: Sequence[Any], values: Sequence[Any]) -> tuple[str, ...]:
    kinds = []
    for spec, value in zip(specs, values, strict=True):
        if isinstance(spec, (TensorSpec, ChoiceSpec)):
            kinds.append("diff" if spec.grad else "array")
        elif isinstance(spec, IntegersSpec):
            kinds.append("array")
        elif isinstance(value, float):
            kinds.append("scalar")
        else:
            kinds.append("static")
    return tuple(kinds)


def cotangents_for(shapes: Sequence[tuple[int, ...] | None], seed: int) -> list[np.ndarray | None]:
    """A random cotangent per floating output (None for the others), uniform in
    [-1, 1) and float32 so both dtypes see the same one (uniform float32 draws are 8x
    cheaper than normal ones). Never all ones: a backward that ignores ``grad_output``
    would pass a ones cotangent on a summed loss."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray | None] = []
    for shape in shapes:
        if shape is None:
            out.append(None)
        else:
            out.append(rng.random(shape, dtype=np.float32) * np.float32(2) - np.float32(1))
    return out


def flatten_torch(out: Any) -> list[Any]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in flatten_torch(o)]
    if isinstance(out, dict):
        return [leaf for k in sorted(out) for leaf in flatten_torch(out[k])]
    if isinstance(out, float):  # a Python float carries no gradient, and is a double
        return [torch.tensor(out, dtype=torch.float64)]
    if isinstance(out, (int, np.number)):
        return [torch.tensor(out)]
    raise TypeError(f"returned {type(out).__name__}; expected a tensor or a tuple/list of tensors")
