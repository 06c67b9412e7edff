"""The guard around user code (oracle/pair/guard.py) and the global settings it keeps
(oracle/pair/settings.py): each setting put back after the call and reported once, on
the side that changed it; a time-out on the side that was running."""

from __future__ import annotations

import time
import timeit

import jax
import pytest
import torch

from oracle.pair.guard import Guard, SideError
from oracle.pair.settings import SETTINGS, restore, snapshot


def _grad_off():
    torch.set_grad_enabled(False)


def _anomaly_on():
    torch.set_anomaly_enabled(True)


def _matmul_medium():
    torch.set_float32_matmul_precision("medium")


def _one_thread():
    torch.set_num_threads(1 if torch.get_num_threads() != 1 else 2)


def _tf32_on():
    torch.backends.cuda.matmul.allow_tf32 = not torch.backends.cuda.matmul.allow_tf32


def _float64_default():
    torch.set_default_dtype(torch.float64)


def _x64_flipped():
    jax.config.update("jax_enable_x64", not jax.config.jax_enable_x64)


def _jax_bfloat16_matmuls():
    jax.config.update("jax_default_matmul_precision", "bfloat16")


@pytest.mark.parametrize(
    ("change", "name"),
    [
        pytest.param(_grad_off, "grad mode", id="grad-mode"),
        pytest.param(_anomaly_on, "anomaly mode", id="anomaly-mode"),
        pytest.param(_matmul_medium, "float32 matmul precision", id="torch-matmul-precision"),
        pytest.param(_one_thread, "number of threads", id="threads"),
        pytest.param(_tf32_on, "TF32", id="tf32"),
        pytest.param(_float64_default, "default dtype", id="default-dtype"),
        pytest.param(_x64_flipped, "x64", id="jax-x64"),
        pytest.param(_jax_bfloat16_matmuls, "JAX's default matmul precision", id="jax-matmul"),
    ],
)
def test_a_global_setting_changed_by_user_code_is_put_back_and_reported(change, name):
    before = snapshot()
    guard = Guard(timeout=None)
    guard.call("torch", "forward", change)
    assert snapshot() == before
    # (torch ties the float32 matmul precision and the TF32 switch: one moves the other)
    assert {side for side, _ in guard.changes} == {"torch"}
    assert any(name in text and "torch_fn" in text for _, text in guard.changes), guard.changes


def test_a_change_is_put_back_every_time_and_reported_once():
    guard = Guard(timeout=None)
    for _ in range(3):
        guard.call("twin", "vjp", _grad_off)
        assert torch.is_grad_enabled()
    assert [side for side, _ in guard.changes] == ["twin"]


def test_a_change_inside_a_twin_scope_is_the_twins_even_within_a_torch_call():
    guard = Guard(timeout=None)

    def extra_checks():
        with guard.scope("twin", "jvp"):
            _jax_bfloat16_matmuls()

    guard.call("torch", "checks beyond the vjp", extra_checks)
    assert [side for side, _ in guard.changes] == ["twin"]
    assert "the JAX twin" in guard.changes[0][1] and "jvp" in guard.changes[0][1]


def test_a_time_out_inside_a_twin_scope_is_the_twins_even_within_a_torch_call():
    guard = Guard(timeout=0.3)

    def extra_checks():
        try:  # the oracle's own checks catch what the twin raises: the alarm still counts
            with guard.scope("twin", "jvp"):
                while True:
                    time.sleep(0.01)
        except Exception:
            pass

    with pytest.raises(SideError) as err:
        guard.call("torch", "checks beyond the vjp", extra_checks)
    assert err.value.timed_out and (err.value.side, err.value.stage) == ("twin", "jvp")


def test_every_setting_can_be_read_and_written_back():
    for setting in SETTINGS:
        setting.set(setting.get())
    assert restore(snapshot()) == []


def test_reading_and_restoring_every_setting_costs_a_few_microseconds():
    # the guard does this around every call of user code. Measured (min of 9 repeats,
    # a shared 2-core machine): 4.6 to 4.9 microseconds; the bound leaves room for a
    # slow machine
    n = 2000
    cost = min(timeit.repeat(lambda: restore(snapshot()), number=n, repeat=9)) / n
    print(f"snapshot + restore: {cost * 1e6:.1f} microseconds")
    assert cost < 50e-6
