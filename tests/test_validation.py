"""oracle.validation: the public API's argument checks, each naming its argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oracle.validation import (
    InputSpecError,
    InputSpecTypeError,
    check_int,
    check_non_negative,
    check_number,
    check_timeout,
    normalize_checks,
    normalize_dtypes,
)


def test_check_int_takes_ints_and_numpy_ints_and_returns_an_int():
    assert check_int(3, "max_examples", 1) == 3
    value = check_int(np.int64(5), "seed", 0)
    assert value == 5 and type(value) is int


@pytest.mark.parametrize(
    "value, error, message",
    [
        pytest.param(True, TypeError, "max_examples must be an int; got True", id="bool"),
        pytest.param(2.0, TypeError, "max_examples must be an int; got 2.0", id="float"),
        pytest.param(0, ValueError, "max_examples=0 must be at least 1", id="too-small"),
    ],
)
def test_check_int_refuses(value, error, message):
    with pytest.raises(error, match=message):
        check_int(value, "max_examples", 1)


def test_check_number_returns_a_float():
    value = check_number(np.float32(0.5), "low")
    assert value == 0.5 and type(value) is float


@pytest.mark.parametrize(
    "value, error, message",
    [
        pytest.param(False, TypeError, "tensor 'n': low must be a number; got False", id="bool"),
        pytest.param("1", TypeError, "low must be a number; got '1'", id="string"),
        pytest.param(float("inf"), ValueError, "tensor 'n': low=inf must be finite", id="inf"),
        pytest.param(float("nan"), ValueError, "low=nan must be finite", id="nan"),
    ],
)
def test_check_number_refuses_with_where_it_was(value, error, message):
    with pytest.raises(error, match=message):
        check_number(value, "low", "tensor 'n'")


def test_check_non_negative_takes_zero_and_refuses_negatives_nan_and_bools():
    assert check_non_negative(0, "atol") == 0.0
    for bad in (-1e-9, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="atol must be a non-negative number"):
            check_non_negative(bad, "atol")


def test_check_timeout_takes_none_and_positive_numbers():
    assert check_timeout(None) is None
    assert check_timeout(2) == 2.0


@pytest.mark.parametrize(
    "value, error",
    [
        pytest.param(0, ValueError, id="zero"),
        pytest.param(-1.0, ValueError, id="negative"),
        pytest.param(float("inf"), ValueError, id="inf"),
        pytest.param(float("nan"), ValueError, id="nan"),
        pytest.param(True, TypeError, id="bool"),
        pytest.param("5", TypeError, id="string"),
    ],
)
def test_check_timeout_refuses(value, error):
    with pytest.raises(error, match="timeout"):
        check_timeout(value)


def test_normalize_checks_takes_none_a_list_or_comma_separated_text():
    assert normalize_checks(None) is None
    assert normalize_checks("hvp, vjp") == ("vjp", "hvp")
    assert normalize_checks(("vmap", "vmap")) == ("vmap",)


@pytest.mark.parametrize(
    "checks, error, message",
    [
        pytest.param(
            ["vjp", "grad"], ValueError, "unknown check 'grad'; expected a subset of", id="unknown"
        ),
        pytest.param([], ValueError, "expected at least one of", id="empty"),
        pytest.param(" , ", ValueError, "expected at least one of", id="blank-text"),
        pytest.param(3, TypeError, "checks must be None or a list", id="number"),
    ],
)
def test_normalize_checks_refuses(checks, error, message):
    with pytest.raises(error, match=message):
        normalize_checks(checks)


def test_normalize_dtypes_takes_names_and_torch_dtypes_once_each_in_order():
    assert normalize_dtypes("float64") == ("float64",)
    assert normalize_dtypes([torch.float64, "float32", "float64"]) == ("float64", "float32")


@pytest.mark.parametrize(
    "dtypes, message",
    [
        pytest.param(["float8"], "unknown dtype 'float8'", id="unknown"),
        pytest.param([], "expected at least one", id="empty"),
    ],
)
def test_normalize_dtypes_refuses(dtypes, message):
    with pytest.raises(ValueError, match=message):
        normalize_dtypes(dtypes)


def test_input_spec_errors_are_the_usual_misuse_errors():
    # callers catching ValueError / TypeError catch them too
    assert issubclass(InputSpecError, ValueError)
    assert issubclass(InputSpecTypeError, TypeError)
