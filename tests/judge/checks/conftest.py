"""One example, one dtype: each check module's CHECK called directly on hand-picked
values (the specimens of tests/contract_specimens.py), shapes of 2 x 3 at most."""

from __future__ import annotations

import numpy as np
import pytest

from oracle.inputs.specs import TensorSpec
from oracle.judge.checks import registered
from oracle.pair.guard import Guard
from oracle.pair.sides import Sides
from oracle.pair.torch_side import TorchSide
from oracle.pair.twin_side import TwinSide

MAT = (TensorSpec(("m", "n"), -3.0, 3.0),)
#: a 2 x 3 matrix away from any special point (no zeros, no ties)
X = np.array([[0.3, -1.2, 2.1], [-0.7, 1.6, -2.4]])


@pytest.fixture
def run_check():
    """``run_check(name, torch_fn, twin, dtype=..., asked=...)``: (findings, status)."""
    made = []

    def run(name, torch_fn, twin, *, dtype="float32", asked=False, values=(X,), specs=MAT):
        guard = Guard(10.0)
        sides = Sides(TorchSide(torch_fn, specs, guard), TwinSide(twin, specs, guard), specs)
        made.append(sides)
        return registered(name).run(sides, values, 0, dtype, "cpu", asked=asked, thorough=asked)

    yield run
    for sides in made:
        sides.twin.release()
