"""oracle.pair.bridge: the scopes the two sides run in, and the example made into
torch tensors and JAX arrays."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from oracle.inputs.specs import ChoiceSpec, ConstantSpec, IntegersSpec, TensorSpec
from oracle.pair.bridge import (
    cast_values,
    normalize_devices,
    precision_scope,
    to_jax,
    to_torch,
    torch_to_numpy,
)

X = TensorSpec(("n",), grad=True)
FIXED = TensorSpec(("n",), grad=False)
IDX = IntegersSpec(("n",), 0, 3)
CHOICE = ChoiceSpec(("n",), (0.5, 1.5))
CONST = ConstantSpec(2)


def _settings():
    return (
        bool(jax.config.jax_enable_x64),
        jax.config.jax_default_matmul_precision,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )


@pytest.fixture
def tf32_on():
    """TF32 switched on, as a user may have it, and put back afterwards."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("dtype, x64", [("float64", True), ("float32", False)])
def test_precision_scope_sets_x64_for_float64_only_and_highest_matmul_precision(dtype, x64):
    with precision_scope(dtype, "cpu"):
        assert bool(jax.config.jax_enable_x64) is x64
        assert jax.config.jax_default_matmul_precision == "highest"


def test_precision_scope_restores_jax_and_torch_settings_after_the_block(tf32_on):
    before = _settings()
    # "cuda" only flips torch's flags (no GPU is touched), so it is testable on a CPU
    with precision_scope("float64", "cuda"):
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is False
        assert _settings() != before
    assert _settings() == before


def test_precision_scope_restores_the_settings_after_an_exception(tf32_on):
    before = _settings()
    with pytest.raises(RuntimeError, match="in the block"), precision_scope("float64", "cuda"):
        raise RuntimeError("in the block")
    assert _settings() == before


def test_precision_scope_on_the_cpu_leaves_tf32_alone(tf32_on):
    with precision_scope("float32", "cpu"):
        assert torch.backends.cuda.matmul.allow_tf32 is True


@pytest.mark.parametrize(
    "dtype, torch_dtype", [("float32", torch.float32), ("float64", torch.float64)]
)
def test_to_torch_casts_floats_to_the_dtype_and_integers_to_int64(dtype, torch_dtype):
    values = [
        np.array([1.0, 2.0]),  # float64 drawn, cast to the dtype under test
        np.array([3.0, 4.0], dtype=np.float32),
        np.array([0, 2], dtype=np.int8),
        np.array([0.5, 1.5]),
        2,
    ]
    x, fixed, idx, choice, const = to_torch(values, [X, FIXED, IDX, CHOICE, CONST], dtype, "cpu")
    assert x.dtype == fixed.dtype == choice.dtype == torch_dtype
    assert idx.dtype == torch.int64
    assert x.requires_grad and not fixed.requires_grad and not choice.requires_grad
    assert const == 2 and type(const) is int  # a constant is passed as it is
    assert idx.tolist() == [0, 2] and x.tolist() == [1.0, 2.0]


def test_to_torch_copies_a_non_differentiated_array_so_user_code_cannot_change_the_example():
    value = np.array([1.0, 2.0])
    (t,) = to_torch([value], [FIXED], "float64", "cpu")
    t.add_(1.0)
    assert value.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("dtype, int_dtype", [("float32", np.int32), ("float64", np.int64)])
def test_to_jax_casts_floats_to_the_dtype_and_integers_to_the_modes_int(dtype, int_dtype):
    values = [np.array([1.0, 2.0]), np.array([0, 2]), 2]
    with precision_scope(dtype, "cpu"):
        x, idx, const = to_jax(values, [X, IDX, CONST], dtype, "cpu")
    assert x.dtype == np.dtype(dtype)
    assert idx.dtype == int_dtype  # JAX's 32-bit mode has no int64
    assert const == 2


def test_cast_values_casts_only_the_float_arguments():
    values = [np.array([1.0]), np.array([1]), 3.5]
    x, idx, scalar = cast_values(values, [X, IDX, CONST], "float32")
    assert x.dtype == np.float32
    assert idx.dtype == np.array([1]).dtype
    assert scalar == 3.5


def test_torch_to_numpy_detaches_and_resolves_a_negated_view():
    t = torch.tensor([1.0, -2.0], requires_grad=True)
    assert torch_to_numpy(t).tolist() == [1.0, -2.0]  # .numpy() alone refuses this leaf
    neg = torch.tensor([1 + 2j, 3 - 4j]).conj().imag  # a view with torch's negative bit
    assert neg.is_neg()
    assert torch_to_numpy(neg).tolist() == [-2.0, 4.0]


@pytest.mark.parametrize(
    "devices, message",
    [
        pytest.param(["tpu"], "unknown device 'tpu'", id="unknown"),
        pytest.param([], "at least one", id="empty"),
    ],
)
def test_normalize_devices_refuses_misuse_with_the_expected_values(devices, message):
    with pytest.raises(ValueError, match=message):
        normalize_devices(devices)


def test_normalize_devices_takes_a_string_and_drops_repeats():
    assert normalize_devices("cpu") == ("cpu",)
    assert normalize_devices(["cpu", "cpu"]) == ("cpu",)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_normalize_devices_says_why_cuda_is_not_available():
    with pytest.raises(ValueError, match="torch sees no GPU"):
        normalize_devices(["cuda"])
