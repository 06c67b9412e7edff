"""From one drawn example to torch tensors and JAX arrays, and the scopes they run in.

* :func:`precision_scope` is the only place that touches framework settings: JAX's x64
  mode for float64 work, matmul precision "highest", and torch's TF32 switches on
  CUDA. Each is restored on exit, so a user's global settings never change outside
  the oracle's own calls.
* :func:`to_torch` and :func:`to_jax` make the two sides' arguments. Float values are
  cast to the dtype under test (never silently changed after that); integer tensors
  are int64 for torch and, in JAX's 32-bit mode, int32 (JAX has no int64 there).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
import torch

from ..inputs.specs import ChoiceSpec, IntegersSpec, TensorSpec
from .jax_internals import forget_traces

__all__ = [
    "DTYPES",
    "precision_scope",
    "to_torch",
    "to_jax",
    "jax_device",
    "available_devices",
    "normalize_devices",
    "cast_values",
    "call_copies",
]

DTYPES = {"float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64)}


def _jax_has_gpu() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def available_devices() -> tuple[str, ...]:
    """ "cpu", plus "cuda" when both torch and JAX see a GPU."""
    return ("cpu", "cuda") if torch.cuda.is_available() and _jax_has_gpu() else ("cpu",)


def normalize_devices(devices: Any) -> tuple[str, ...]:
    if devices is None:
        return available_devices()
    if isinstance(devices, str):
        devices = (devices,)
    out = []
    for d in devices:
        name = str(d)
        if name not in ("cpu", "cuda"):
            raise ValueError(f"devices: unknown device {d!r}; expected 'cpu' or 'cuda'")
        if name == "cuda" and name not in available_devices():
            raise ValueError(
                "devices: 'cuda' was asked for, but "
                + (
                    "torch sees no GPU"
                    if not torch.cuda.is_available()
                    else "JAX sees no GPU (install a CUDA jaxlib)"
                )
                + "; pass devices=None to check on every device present"
            )
        out.append(name)
    if not out:
        raise ValueError("devices: expected at least one of 'cpu', 'cuda'")
    return tuple(dict.fromkeys(out))


def jax_device(device: str) -> Any:
    return jax.devices("gpu")[0] if device == "cuda" else jax.devices("cpu")[0]


@contextlib.contextmanager
def precision_scope(dtype: str, device: str) -> Iterator[None]:
    """JAX x64 for float64 only, full-precision matmuls on both sides, all restored.

    A change of x64 mode, on entry and on exit, forgets JAX's traces: JAX hands a trace
    made in one mode back in the other (see :mod:`oracle._jax_internals`)."""
    x64 = dtype == "float64"
    with contextlib.ExitStack() as stack:
        if bool(jax.config.jax_enable_x64) != x64:
            forget_traces()
            stack.callback(forget_traces)
        stack.enter_context(jax.enable_x64(x64))
        stack.enter_context(jax.default_matmul_precision("highest"))
        if device == "cuda":
            saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            stack.callback(_restore_tf32, saved)
        yield


def _restore_tf32(saved: tuple[bool, bool]) -> None:
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _is_float_spec(spec: Any) -> bool:
    return isinstance(spec, (TensorSpec, ChoiceSpec))


def to_torch(values: Sequence[Any], specs: Sequence[Any], dtype: str, device: str) -> list[Any]:
    """Torch arguments: floats in ``dtype`` (requires_grad per spec), int64 for integers."""
    np_dtype = DTYPES[dtype][0]
    out = []
    for value, spec in zip(values, specs, strict=True):
        if _is_float_spec(spec):
            arr = np.asarray(value, dtype=np_dtype)
            # always a copy of its own: torch_fn may write into it through a raw pointer
            # (Triton, CUDA, data_ptr, .data), which no version counter sees
            t = torch.from_numpy(arr.copy()).to(device)
            out.append(t.requires_grad_(spec.grad))
        elif isinstance(spec, IntegersSpec):
            out.append(torch.tensor(value, dtype=torch.int64, device=device))
        else:
            out.append(value)
    return out


def call_copies(args: Sequence[Any]) -> list[Any]:
    """What torch_fn is called on: each differentiated leaf of :func:`to_torch` as a
    differentiable copy (a non-leaf, as PyTorch's own documentation calls in-place
    Functions: ``ctx.mark_dirty`` raises on a leaf that requires grad); gradients are
    taken with respect to the leaves. Other arguments are passed as they are (already
    private copies)."""
    with torch.enable_grad():
        return [
            _differentiable_copy(a) if isinstance(a, torch.Tensor) and a.requires_grad else a
            for a in args
        ]


def _differentiable_copy(a: torch.Tensor) -> torch.Tensor:
    """A non-leaf copy of ``a`` with its sizes and strides (a transposed, sliced or
    expanded argument stays so: the layout check depends on it)."""
    copy = a.clone()  # keeps the strides of a dense tensor (preserve_format)
    if copy.stride() == a.stride() or a.numel() == 0:
        return copy
    if 0 in a.stride():
        return a.view_as(a)  # overlapping memory: nothing may be written into it anyway
    extent = 1 + sum((n - 1) * st for n, st in zip(a.shape, a.stride(), strict=True))
    base = torch.zeros(extent, dtype=a.dtype, device=a.device)
    out = base.as_strided(a.shape, a.stride())
    out.copy_(a)
    return out


def to_jax(values: Sequence[Any], specs: Sequence[Any], dtype: str, device: str) -> list[Any]:
    """JAX arrays for the array arguments (call inside :func:`precision_scope`)."""
    np_dtype = DTYPES[dtype][0]
    # on the CPU, numpy arrays go straight into the compiled call (one copy, made by
    # XLA); elsewhere they are put on the device first
    put = (lambda a: a) if device == "cpu" else (lambda a: jax.device_put(a, jax_device(device)))
    out = []
    for value, spec in zip(values, specs, strict=True):
        if _is_float_spec(spec):
            out.append(put(np.asarray(value, dtype=np_dtype)))
        elif isinstance(spec, IntegersSpec):
            idtype = np.int64 if dtype == "float64" else np.int32
            out.append(put(np.asarray(value, dtype=idtype)))
        else:
            out.append(value)
    return out


def cast_values(values: Sequence[Any], specs: Sequence[Any], dtype: str) -> list[Any]:
    """The example's float arrays in ``dtype``, cast once for both sides."""
    np_dtype = DTYPES[dtype][0]
    return [
        np.asarray(v, dtype=np_dtype) if _is_float_spec(s) else v
        for v, s in zip(values, specs, strict=True)
    ]


def torch_to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().resolve_conj().resolve_neg().numpy()
