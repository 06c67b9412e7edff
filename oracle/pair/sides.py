"""The pair under test as the judges see it: both sides, the input specs, and the
user's tolerance override (plain data; the judges decide what it means)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .torch_side import TorchSide
from .twin_side import TwinSide

__all__ = ["Sides"]


@dataclass
class Sides:
    """What the checks need of a pair: both sides, the specs, the tolerance override."""

    torch: TorchSide
    twin: TwinSide
    specs: Sequence[Any]
    #: per dtype, by argument index or parameter name (None: outputs and every argument);
    #: values are :class:`oracle.judge.tolerance.Tolerance`
    user_tol: dict[str, dict[Any, Any]] | None = None

    @property
    def diff_positions(self) -> list[int]:
        return [i for i, s in enumerate(self.specs) if getattr(s, "grad", False)]
