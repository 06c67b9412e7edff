"""The global settings user code can change, read before each call and put back after it.

:func:`snapshot` reads every setting in :data:`SETTINGS` (a tuple of plain values);
:func:`restore` puts back each one that differs and says, in words, what had changed.
:class:`oracle.pair.guard.Guard` does both around every call of user code, so a
``torch.set_grad_enabled(False)`` in a forward, or a twin that turns JAX's x64 mode on,
neither leaks into the rest of the run (or the user's process) nor passes unreported.

Reading them before a call and comparing after costs about 5 microseconds (4.6 to 4.9,
the best of 9 repeats on a shared 2-core machine; tests/pair/test_guard.py prints it),
against a guarded call's 7 (no time limit) to 30 (with ``SIGALRM``) before. TF32 is read through ``torch._C`` (the public property costs 2.4
microseconds alone, through a deprecation path); JAX's global values (not the value in
force inside the oracle's own ``jax.enable_x64`` and ``default_matmul_precision``
scopes) through :mod:`oracle.pair.jax_internals`.

Random states are not here: drawing a random number changes them, which is no fault.
:func:`oracle.api.verify` keeps torch's, numpy's and Python's global generators as they
were around the whole run instead.

To add a setting: one :class:`Setting` line in :data:`SETTINGS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .jax_internals import matmul_precision_global, set_matmul_precision_global, x64_global

__all__ = ["Setting", "SETTINGS", "snapshot", "restore"]


@dataclass(frozen=True)
class Setting:
    """One global setting: what it is called in messages, how to read and write it."""

    name: str
    get: Callable[[], Any]
    set: Callable[[Any], None]


def _set_anomaly(state: tuple[bool, bool]) -> None:
    torch.set_anomaly_enabled(*state)


def _set_x64(on: bool) -> None:
    import jax

    jax.config.update("jax_enable_x64", on)


#: in restore order: the float32 matmul precision before the TF32 switches it also sets
SETTINGS: tuple[Setting, ...] = (
    Setting("torch's grad mode", torch.is_grad_enabled, torch.set_grad_enabled),
    Setting(
        "torch's anomaly mode (enabled, check_nan)",
        lambda: (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()),
        _set_anomaly,
    ),
    Setting("torch's default dtype", torch.get_default_dtype, torch.set_default_dtype),
    Setting(
        "torch's float32 matmul precision",
        torch.get_float32_matmul_precision,
        torch.set_float32_matmul_precision,
    ),
    Setting(
        "torch's TF32 switch for CUDA matmuls (torch.backends.cuda.matmul.allow_tf32)",
        torch._C._get_cublas_allow_tf32,
        torch._C._set_cublas_allow_tf32,
    ),
    Setting(
        "torch's TF32 switch for cuDNN (torch.backends.cudnn.allow_tf32)",
        torch._C._get_cudnn_allow_tf32,
        torch._C._set_cudnn_allow_tf32,
    ),
    Setting("torch's number of threads", torch.get_num_threads, torch.set_num_threads),
    Setting("JAX's x64 mode", x64_global, _set_x64),
    Setting(
        "JAX's default matmul precision",
        matmul_precision_global,
        set_matmul_precision_global,
    ),
)


_GETTERS = tuple(s.get for s in SETTINGS)


def snapshot() -> tuple[Any, ...]:
    """Every setting's value now."""
    return tuple([get() for get in _GETTERS])


def restore(saved: tuple[Any, ...]) -> list[tuple[str, Any, Any]]:
    """Put back every setting that differs from ``saved``: (name, was, had become) each."""
    now = snapshot()
    if now == saved:  # the common case: one comparison
        return []
    changed = []
    for setting, was, became in zip(SETTINGS, saved, now, strict=True):
        if became != was:
            setting.set(was)
            changed.append((setting.name, was, became))
    return changed
