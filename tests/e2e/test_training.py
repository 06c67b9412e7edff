"""Training with the catalog's losses, the way the seeds use them: torch only.

Each loss family trains a small model with a few SGD steps (seeded), and the loss goes
down. Beside them, the seeds' own usage snippets where they go wrong: a cut graph trains
nothing, and three seed snippets fail or silently compute something else.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn as nn

import losses

Case = Callable[[], tuple[nn.Module, Callable[[nn.Module], torch.Tensor]]]


def _train(model: nn.Module, loss_of: Callable, steps: int = 25, lr: float = 0.05) -> list[float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_of(model)
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history


def _weighted_cross_entropy():
    x = torch.randn(64, 4)
    y = (x @ torch.randn(4, 3)).argmax(1)
    criterion = losses.ClassWeightedCrossEntropyLoss([0.1, 0.9, 0.5])  # seed 000's weights
    return nn.Linear(4, 3), lambda m: criterion(m(x), y)


def _hinge_margin():
    x = torch.randn(64, 10)
    y = torch.sign(x @ torch.randn(10))
    criterion = losses.HingeLossMargin(margin=0.5)  # seed 003's margin
    return nn.Linear(10, 1), lambda m: criterion(m(x).view(-1), y.view(-1))


def _regression(criterion: nn.Module, reduce: bool = False):
    def case():
        x = torch.randn(64, 10)
        y = x @ torch.randn(10, 1) * 0.3
        if reduce:
            return nn.Linear(10, 1), lambda m: criterion(m(x), y).mean()
        return nn.Linear(10, 1), lambda m: criterion(m(x), y)

    return case


def _weighted_mse():
    x = torch.randn(10, 1)
    y = torch.randn(10, 1)
    # seed 003's weights, shaped like the predictions (see test_the_seed_weighted_mse_...)
    weights = torch.tensor([1.0, 2, 1, 1, 3, 1, 1, 2, 1, 1]).view(10, 1)
    criterion = losses.WeightedMSE(weights)
    return nn.Linear(1, 1), lambda m: criterion(m(x), y)


class _TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(4, 3), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return losses.max_concat(self.first(x), self.second(x))


def _max_concat():
    x = torch.randn(32, 4)
    # q_error = max - 1 (seed 002): drive each row's best score to 1
    return _TwoHeads(), lambda m: m(x).pow(2).mean()


def _through(function: Callable[[torch.Tensor], torch.Tensor], binary: bool = False):
    """A linear model whose output goes through ``function``, fit by squared error."""

    def case():
        x = torch.randn(64, 4)
        z = x @ torch.randn(4, 1) * 0.5
        y = (z > 0).to(z.dtype) if binary else function(z).detach()
        return nn.Linear(4, 1), lambda m: (function(m(x)) - y).pow(2).mean()

    return case


class _Matrix(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.eye(3) + 0.1 * torch.randn(3, 3))


def _matrix_power():
    target = torch.linalg.matrix_power(torch.eye(3) + 0.3 * torch.randn(3, 3), 3)
    return _Matrix(), lambda m: (losses.MatrixPower.apply(m.weight, 3) - target).pow(2).mean()


CASES: dict[str, Case] = {
    "weighted_cross_entropy": _weighted_cross_entropy,
    "hinge_margin": _hinge_margin,
    "scaled_mse": _regression(losses.ScaledMSELoss(scale_factor=2.0)),
    "thresholded_mse": _regression(losses.ThresholdedLoss(threshold=1.0)),
    "weighted_mse": _weighted_mse,
    "sigmoid_weighted_abs": _regression(losses.SigmoidWeightedAbsLoss()),
    # ProxyLoss returns one value per element (see its docstring): reduce it to train
    "proxy_round_l1": _regression(losses.ProxyLoss(), reduce=True),
    "exp_ratio": _regression(losses.ExpRatioLoss()),
    "max_concat": _max_concat,
    "double_sin": _through(losses.MyCustomFunction.apply),
    "conditional_op": _through(losses.ConditionalOp.apply),
    "smooth_round_corrected": _through(lambda z: losses.SmoothRoundCorrected.apply(z, 4.0), True),
    "matrix_power": _matrix_power,
}


@pytest.mark.parametrize("case", [pytest.param(c, id=name) for name, c in CASES.items()])
def test_a_few_sgd_steps_lower_the_loss(case: Case):
    torch.manual_seed(0)
    model, loss_of = case()
    history = _train(model, loss_of)
    assert history[-1] < 0.95 * history[0], history


def test_a_loss_cut_off_the_graph_leaves_the_model_untrained():
    # seed 002: .detach().numpy() then requires_grad_(): backward runs, nothing learns
    torch.manual_seed(0)
    model, x, y = nn.Linear(10, 1), torch.randn(8, 10), torch.randn(8, 1)
    before = model.weight.detach().clone()
    history = _train(model, lambda m: losses.ExpRatioLossCutGraph()(m(x), y), steps=3)
    assert model.weight.grad is None
    assert torch.equal(model.weight, before)
    assert history[0] == history[-1]


def test_a_loss_computed_under_no_grad_cannot_be_backpropagated():
    # seed 002's monitoring loss (torch.no_grad() and .item()) used as the loss
    torch.manual_seed(0)
    model, x, y = nn.Linear(10, 1), torch.randn(8, 10), torch.randn(8, 1)
    loss = losses.no_grad_l1(model(x), y)
    with pytest.raises(RuntimeError, match="does not require grad"):
        loss.backward()


def test_the_seed_weighted_cross_entropy_raises_with_its_own_example():
    # seed 000: 10 samples, 3 classes; weight= gets 10 per-sample weights
    torch.manual_seed(0)
    criterion = losses.WeightedCrossEntropyLoss([0.1, 0.9, 0.5])
    inputs, targets = torch.randn(10, 3), torch.randint(0, 3, (10,))
    with pytest.raises(RuntimeError, match="weight tensor should be defined"):
        criterion(inputs, targets)


def test_the_seed_weighted_mse_shapes_give_every_sample_the_mean_weight():
    # seed 003: weights (10,) times predictions (10, 1) broadcast to a (10, 10) matrix
    torch.manual_seed(0)
    weights = [1, 2, 1, 1, 3, 1, 1, 2, 1, 1]
    y_pred, y_true = torch.randn(10, 1), torch.randn(10, 1)
    as_written = losses.WeightedMSE(weights)(y_pred, y_true)
    squared = (y_pred - y_true).pow(2).view(-1)
    mean_weight = torch.tensor(weights, dtype=torch.float32).mean()
    per_sample = (torch.tensor(weights) * squared).mean()
    torch.testing.assert_close(as_written, mean_weight * squared.mean())
    assert not torch.isclose(as_written, per_sample)


def test_the_seed_proxy_loss_is_not_a_scalar_so_its_backward_call_raises():
    # seed 000: L1Loss (a scalar) + 0.5 |x - round(x)| (one value per element)
    torch.manual_seed(0)
    inputs, targets = torch.randn(10, requires_grad=True), torch.randn(10)
    loss = losses.ProxyLoss()(inputs, targets)
    assert loss.shape == (10,)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        loss.backward()
