"""losses/_kernels.py: each Triton kernel's forward and backward against plain torch,
and each specimen's defect shown directly (without the oracle)."""

from __future__ import annotations

import pytest

from tests.kernels import _setup

if _setup.SKIP_REASON:
    pytest.skip(_setup.SKIP_REASON, allow_module_level=True)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

K = _setup.kernels
DEVICE = _setup.DEVICE
DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]


def _rand(*shape, dtype, scale=1.0, grad=True):
    g = torch.Generator().manual_seed(sum(shape) * 7 + 1)
    t = (scale * torch.randn(*shape, generator=g, dtype=dtype)).to(DEVICE)
    return t.requires_grad_(grad)


def _grads(out, inputs, cot):
    return torch.autograd.grad(out, inputs, cot)


# torch.testing's defaults per dtype (float32: rtol 1.3e-6, atol 1e-5; float64: 1e-7, 1e-7)
close = torch.testing.assert_close


# --- cross-entropy ---------------------------------------------------------------------------


def _ce_case(dtype):
    logits = _rand(5, 7, dtype=dtype, scale=3.0)
    target = torch.tensor([0, 6, 3, 3, 1], device=DEVICE)
    cot = _rand(5, dtype=dtype, grad=False)
    ref = F.cross_entropy(logits, target, reduction="none")
    return logits, target, cot, ref, _grads(ref, logits, cot)[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "fn",
    [K.TritonCrossEntropy, K.TritonCrossEntropyGradInLogits, K.TritonCrossEntropyContiguousCopy],
    ids=lambda f: f.__name__,
)
def test_cross_entropy_matches_torch_on_contiguous_logits(fn, dtype):
    logits, target, cot, ref, ref_grad = _ce_case(dtype)
    x = logits.detach().clone().requires_grad_()
    loss = fn.apply(x, target)
    close(loss, ref.detach())
    close(_grads(loss, x, cot)[0], ref_grad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_leaves_the_logits_alone(dtype):
    logits, target, *_ = _ce_case(dtype)
    before = logits.detach().clone()
    K.TritonCrossEntropy.apply(logits, target)
    assert torch.equal(logits.detach(), before)


def test_cross_entropy_grad_in_logits_overwrites_them_with_the_gradient_unseen():
    logits, target, *_ = _ce_case(torch.float32)
    before, version = logits.detach().clone(), logits._version
    K.TritonCrossEntropyGradInLogits.apply(logits, target)
    # softmax(x) - onehot(t): what the caller's logits now hold
    onehot = F.one_hot(target, 7).to(before.dtype)
    close(logits.detach(), torch.softmax(before, -1) - onehot)
    assert logits._version == version  # a raw-pointer write: autograd's counter never moves


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_gives_the_gradient_of_transposed_logits(dtype):
    logits, target, cot, _, ref_grad = _ce_case(dtype)
    # the same values, stored transposed: logits.T.contiguous().T
    x = logits.detach().T.contiguous().T.requires_grad_()
    assert not x.is_contiguous()
    close(_grads(K.TritonCrossEntropy.apply(x, target), x, cot)[0], ref_grad)


def test_cross_entropy_contiguous_copy_gives_no_gradient_for_transposed_logits():
    logits, target, cot, _, ref_grad = _ce_case(torch.float32)
    x = logits.detach().T.contiguous().T.requires_grad_()
    loss = K.TritonCrossEntropyContiguousCopy.apply(x, target)
    (grad,) = torch.autograd.grad(loss, x, cot, materialize_grads=True)
    assert ref_grad.abs().max() > 0.1
    assert torch.equal(grad, torch.zeros_like(grad))  # backward returned None: no gradient


# --- RMSNorm ---------------------------------------------------------------------------------


def _rms_case(dtype):
    x = _rand(4, 6, dtype=dtype, scale=2.0)
    w = _rand(6, dtype=dtype)
    cot = _rand(4, 6, dtype=dtype, grad=False)
    ref = F.rms_norm(x, (6,), w, K.RMS_EPS)
    return x, w, cot, ref, _grads(ref, (x, w), cot)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "fn", [K.TritonRMSNorm, K.TritonRMSNormOverwritesGradOutput], ids=lambda f: f.__name__
)
def test_rms_norm_matches_torch(fn, dtype):
    x, w, cot, ref, (ref_dx, ref_dw) = _rms_case(dtype)
    y = fn.apply(x, w, K.RMS_EPS)
    close(y, ref.detach())
    dx, dw = _grads(y, (x, w), cot.clone())
    close(dx, ref_dx)
    close(dw, ref_dw)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_leaves_grad_output_alone(dtype):
    x, w, cot, *_ = _rms_case(dtype)
    before = cot.clone()
    _grads(K.TritonRMSNorm.apply(x, w, K.RMS_EPS), (x, w), cot)
    assert torch.equal(cot, before)


def test_rms_norm_overwrites_grad_output_with_dx():
    x, w, cot, _, (ref_dx, _) = _rms_case(torch.float32)
    before = cot.clone()
    dx, _ = _grads(K.TritonRMSNormOverwritesGradOutput.apply(x, w, K.RMS_EPS), (x, w), cot)
    assert not torch.equal(cot, before)
    close(cot, ref_dx)  # the caller's grad_output now holds dx
    assert dx.data_ptr() == cot.data_ptr()


def test_rms_norm_overwriting_grad_output_corrupts_another_branch():
    # y + b: AddBackward hands y's backward and b's gradient one tensor (the contract
    # check's example, oracle/contract.py)
    x, w, cot, *_ = _rms_case(torch.float32)
    for fn, right in ((K.TritonRMSNorm, True), (K.TritonRMSNormOverwritesGradOutput, False)):
        b = torch.zeros(4, 6, requires_grad=True, device=DEVICE)
        (fn.apply(x, w, K.RMS_EPS) + b).backward(cot)
        assert torch.equal(b.grad, cot) is right, fn.__name__


# --- rotary ----------------------------------------------------------------------------------


def _rotary_ref(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def _rotary_case(dtype):
    x = _rand(2, 3, 8, dtype=dtype, scale=2.0)
    pos = torch.arange(3, dtype=dtype, device=DEVICE)[:, None]
    freqs = pos / 10000 ** (torch.arange(4, dtype=dtype, device=DEVICE) / 4)
    angles = torch.cat([freqs, freqs], dim=-1)  # the tables a model computes
    cos, sin = angles.cos(), angles.sin()
    cot = _rand(2, 3, 8, dtype=dtype, grad=False)
    ref = _rotary_ref(x, cos, sin)
    return x, cos, sin, cot, ref, _grads(ref, x, cot)[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [K.TritonRotary, K.TritonRotaryInplace], ids=lambda f: f.__name__)
def test_rotary_matches_torch(fn, dtype):
    x, cos, sin, cot, ref, ref_grad = _rotary_case(dtype)
    xx = x.detach().clone().requires_grad_()
    y = fn.apply(xx, cos, sin)
    close(y, ref.detach())
    close(_grads(y, xx, cot)[0], ref_grad)


def test_rotary_leaves_its_input_alone():
    x, cos, sin, *_ = _rotary_case(torch.float32)
    before = x.detach().clone()
    y = K.TritonRotary.apply(x, cos, sin)
    assert torch.equal(x.detach(), before)
    assert y.data_ptr() != x.data_ptr()


def test_rotary_inplace_returns_its_input_rotated_unseen():
    x, cos, sin, _, ref, _ = _rotary_case(torch.float32)
    version = x._version
    y = K.TritonRotaryInplace.apply(x, cos, sin)
    assert y.data_ptr() == x.data_ptr()  # the output is the caller's x
    close(x.detach(), ref.detach())  # which now holds the rotated values
    assert x._version == version  # a raw-pointer write, and no mark_dirty


# --- GELU ------------------------------------------------------------------------------------


def _gelu_case(dtype):
    x = _rand(5, 9, dtype=dtype, scale=3.0)
    cot = _rand(5, 9, dtype=dtype, grad=False)
    ref = F.gelu(x, approximate="tanh")
    return x, cot, ref, _grads(ref, x, cot)[0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_matches_torch(dtype):
    x, cot, ref, ref_grad = _gelu_case(dtype)
    y = K.TritonGelu.apply(x)
    close(y, ref.detach())
    close(_grads(y, x, cot)[0], ref_grad)


def test_gelu_float32_table_is_right_in_float32():
    x, cot, ref, ref_grad = _gelu_case(torch.float32)
    y = K.TritonGeluFloat32Table.apply(x)
    close(y, ref.detach())
    close(_grads(y, x, cot)[0], ref_grad)


def test_gelu_float32_table_computes_float64_in_float32():
    x, cot, ref, ref_grad = _gelu_case(torch.float64)
    y = K.TritonGeluFloat32Table.apply(x)
    assert y.dtype == torch.float64
    # float32's rounding (eps 1.2e-7) on values of order 1, about 1e9 x float64's (2.2e-16)
    assert 1e-9 < (y - ref).abs().max() < 1e-5
    assert 1e-9 < (_grads(y, x, cot)[0] - ref_grad).abs().max() < 1e-5
    # the correct table computes it in float64
    assert (K.TritonGelu.apply(x) - ref).abs().max() < 1e-13
