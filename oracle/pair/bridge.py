"""From one drawn example to torch tensors and JAX arrays, and the scopes they run in.

* :func:`precision_scope` is the only place that touches framework settings: JAX's x64
  mode for float64 work, matmul precision "highest", and torch's TF32 switches on
  CUDA. Each is restored on exit, so a user's global settings never change outside
  the oracle's own calls.
* :func:`to_torch` and :func:`to_jax` make the two sides' arguments. Float values are
  cast to the dtype under test (never silently changed after that); integer tensors
  are int64 for torch and, in JAX's 32-bit mode, int32 (JAX has no int64 there).
* The low dtypes (``bfloat16``, ``float16``): :func:`cast_values` rounds the drawn values
  to the dtype once, so both sides (and the float64 reference) see the same numbers.
  numpy holds bfloat16 as ``ml_dtypes.bfloat16`` (JAX's own); torch takes it through
  float32, which holds every bfloat16 exactly. An ``autocast-*`` dtype runs float32
  values, with torch under ``torch.autocast`` (:func:`autocast_scope`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import ml_dtypes
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
    "round_to",
    "autocast_scope",
    "low_dtype_of",
    "plain_numpy",
    "call_copies",
]

DTYPES = {
    "float32": (np.float32, torch.float32),
    "float64": (np.float64, torch.float64),
    "bfloat16": (ml_dtypes.bfloat16, torch.bfloat16),
    "float16": (np.float16, torch.float16),
    # the values and torch's arguments are float32; torch computes under autocast
    "autocast-bfloat16": (np.float32, torch.float32),
    "autocast-float16": (np.float32, torch.float32),
}


def low_dtype_of(dtype: str) -> str | None:
    """The low dtype a run is judged against: ``"bfloat16"`` for ``"bfloat16"`` and
    ``"autocast-bfloat16"``..., None for float32 and float64."""
    name = dtype.removeprefix("autocast-")
    return name if name in ("bfloat16", "float16") else None


def round_to(value: Any, dtype: str) -> np.ndarray:
    """``value`` rounded to ``dtype`` (to nearest, ties to even), held in float32 for
    the low dtypes (exact) so that every later cast is exact too."""
    arr = np.asarray(value, dtype=DTYPES[dtype][0])
    return arr.astype(np.float32) if low_dtype_of(dtype) else arr


@contextlib.contextmanager
def autocast_scope(dtype: str, device: str) -> Iterator[None]:
    """``torch.autocast`` to the low dtype of an ``autocast-*`` run; nothing otherwise."""
    if not dtype.startswith("autocast-"):
        yield
        return
    with torch.autocast(device_type=device, dtype=DTYPES[low_dtype_of(dtype)][1]):
        yield


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
            if np_dtype is ml_dtypes.bfloat16:  # torch reads no ml_dtypes array
                t = torch.from_numpy(arr.astype(np.float32)).to(device, torch.bfloat16)
                out.append(t.requires_grad_(spec.grad))
                continue
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
    t = t.detach().cpu().resolve_conj().resolve_neg()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: as float32, which holds it exactly
        return t.float().numpy()
    return t.numpy()


def plain_numpy(x: Any) -> np.ndarray:
    """``x`` as a numpy array whose floats numpy knows: ml_dtypes' bfloat16 as float32
    (exact)."""
    a = np.asarray(x)
    return a.astype(np.float32) if a.dtype == ml_dtypes.bfloat16 else a
