"""oracle.pair.guard: user code under a time limit, its exceptions and its changes of
global settings turned into records."""

from __future__ import annotations

import signal
import time

import jax
import pytest
import torch

from oracle.pair.guard import Guard, SideError
from oracle.pair.jax_internals import x64_global


def test_returns_what_the_call_returns():
    assert Guard().call("torch", "forward", lambda a, b: a + b, 2, 3) == 5


def test_an_exception_becomes_a_side_error_naming_side_and_stage():
    def broken():
        raise KeyError("w")

    with pytest.raises(SideError) as info:
        Guard().call("twin", "vjp", broken)
    err = info.value
    assert (err.side, err.stage, err.timed_out) == ("twin", "vjp", False)
    assert isinstance(err.exc, KeyError)
    assert str(err) == "twin vjp: KeyError: 'w'"


def test_system_exit_from_user_code_does_not_end_the_run():
    with pytest.raises(SideError) as info:
        Guard().call("torch", "backward", lambda: exit(3))
    assert isinstance(info.value.exc, SystemExit)


def test_a_side_error_from_a_nested_call_passes_through_unchanged():
    inner = SideError("twin", "forward", ValueError("x"))

    def nested():
        raise inner

    with pytest.raises(SideError) as info:
        Guard().call("torch", "checks beyond the vjp", nested)
    assert info.value is inner


def test_keyboard_interrupt_is_not_swallowed():
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Guard().call("torch", "forward", interrupted)


def test_a_call_past_the_timeout_is_interrupted_and_marked_timed_out():
    start = time.perf_counter()
    with pytest.raises(SideError) as info:
        Guard(timeout=0.2).call("torch", "backward", time.sleep, 5)
    assert time.perf_counter() - start < 2  # interrupted, not waited out
    assert info.value.timed_out and info.value.stage == "backward"
    assert isinstance(info.value.exc, TimeoutError)
    assert "timed out after 0.2 s" in str(info.value)


def test_a_timeout_swallowed_by_the_users_own_except_is_still_a_timeout():
    def stubborn():
        try:
            time.sleep(5)
        except Exception:
            pass
        return 1

    with pytest.raises(SideError) as info:
        Guard(timeout=0.2).call("twin", "forward", stubborn)
    assert info.value.timed_out


def test_the_alarm_is_put_back_after_the_call():
    before = signal.getsignal(signal.SIGALRM)
    Guard(timeout=5).call("torch", "forward", lambda: None)
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_someone_elses_later_alarm_is_rearmed_after_the_call():
    handler = lambda signum, frame: None  # noqa: E731
    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 30.0)
    try:
        Guard(timeout=5).call("torch", "forward", lambda: None)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25.0 < left <= 30.0
        assert signal.getsignal(signal.SIGALRM) is handler
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_without_a_timeout_a_slow_call_finishes():
    assert Guard(timeout=None).call("torch", "forward", lambda: (time.sleep(0.05), 7)[1]) == 7


def test_a_changed_default_dtype_is_put_back_and_reported():
    guard = Guard()
    before = torch.get_default_dtype()
    guard.call("torch", "forward", torch.set_default_dtype, torch.float64)
    assert torch.get_default_dtype() == before
    assert guard.changes == [
        (
            "torch",
            "torch_fn changed torch's default dtype from torch.float32 to torch.float64 "
            "globally in its forward (the oracle put it back)",
        )
    ]


def test_a_changed_dtype_is_put_back_even_when_the_call_raises():
    def change_then_fail():
        torch.set_default_dtype(torch.float64)
        raise RuntimeError("late")

    guard = Guard()
    with pytest.raises(SideError):
        guard.call("torch", "backward", change_then_fail)
    assert torch.get_default_dtype() == torch.float32
    assert len(guard.changes) == 1 and "in its backward" in guard.changes[0][1]


def test_jax_x64_turned_on_globally_is_put_back_and_blamed_on_the_twin():
    assert not x64_global()
    guard = Guard()
    guard.call("twin", "forward", jax.config.update, "jax_enable_x64", True)
    assert not x64_global()
    assert guard.changes == [
        (
            "twin",
            "the JAX twin changed JAX's x64 mode from off to on globally in its forward (the "
            "oracle put it back)",
        )
    ]


def test_a_call_that_changes_nothing_records_nothing():
    guard = Guard()
    guard.call("torch", "forward", torch.zeros, 3)
    assert guard.changes == []
