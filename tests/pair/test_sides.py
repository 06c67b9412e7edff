"""oracle.pair.sides: the pair as the judges see it."""

from __future__ import annotations

from oracle.inputs.specs import ChoiceSpec, ConstantSpec, IntegersSpec, TensorSpec
from oracle.pair.sides import Sides
from oracle.pair.torch_side import TorchSide
from oracle.pair.twin_side import TwinSide


def test_diff_positions_are_the_differentiated_arguments_in_order():
    specs = (
        TensorSpec(("n",)),
        IntegersSpec(("n",), 0, 2),
        TensorSpec(("n",), grad=False),
        ConstantSpec(1.0),
        ChoiceSpec(("n",), (1.0, 2.0), grad=True),
    )
    sides = Sides(TorchSide(abs, specs), TwinSide(abs, specs), specs)
    assert sides.diff_positions == [0, 4]
    assert sides.user_tol is None  # no override: the oracle's own rule
