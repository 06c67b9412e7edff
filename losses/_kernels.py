r"""Triton-backed ``torch.autograd.Function``\ s in the style of fused training kernels.

Four kernels as fused-kernel libraries write them (one program per row, the forward
saving what the backward needs, ``@once_differentiable`` backwards), each with a correct
backward and a specimen carrying a defect such libraries have shipped:

* :class:`TritonCrossEntropy`: softmax cross-entropy per row, the gradient computed in
  the forward's pass over the logits. Specimens: :class:`TritonCrossEntropyGradInLogits`
  writes that gradient into the caller's logits; :class:`TritonCrossEntropyContiguousCopy`
  decides whether to compute it from ``x.contiguous().requires_grad``.
* :class:`TritonRMSNorm`: root-mean-square normalisation with a weight. Specimen:
  :class:`TritonRMSNormOverwritesGradOutput` writes its ``dx`` into ``grad_output``.
* :class:`TritonRotary`: rotary position embedding (the ``rotate_half`` convention).
  Specimen: :class:`TritonRotaryInplace` rotates its input in place and returns it.
* :class:`TritonGelu`: GELU, tanh approximation, autotuned, with a table of compute
  dtypes. Specimen: :class:`TritonGeluFloat32Table`, whose table knows no float64.

On a machine without a GPU the kernels run in Triton's interpreter: set it up before this
module is imported (``oracle.pair.triton.use_interpreter()``, ``TRITON_INTERPRET=1``). The
RMSNorm and GELU kernels use what the interpreter lacks without the oracle's compatibility
layer (a Python ``float`` argument, ``libdevice``, ``@triton.autotune``).

This module is not imported by ``losses/__init__.py`` yet: its specimens write into
inputs and ``grad_output`` through raw pointers, which the oracle is still learning to
find, and the catalog's tests require every specimen to be flagged.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
import triton
import triton.language as tl
from torch.autograd import Function
from torch.autograd.function import once_differentiable
from triton.language.extra import libdevice

import oracle
from oracle import integers, tensor
from oracle.pair.triton import interpreting

__all__ = [
    "TritonCrossEntropy",
    "TritonCrossEntropyGradInLogits",
    "TritonCrossEntropyContiguousCopy",
    "cross_entropy_jax",
    "TritonRMSNorm",
    "TritonRMSNormOverwritesGradOutput",
    "rms_norm_jax",
    "TritonRotary",
    "TritonRotaryInplace",
    "rotary_jax",
    "TritonGelu",
    "TritonGeluFloat32Table",
    "gelu_tanh_jax",
]

# RMSNorm's epsilon, float32-representable: compiled Triton passes a Python float
# argument as an fp32 scalar (so does the interpreter with the oracle's layer), so a
# float64 run computes with fp32(1e-6), and the twin must get that same number.
RMS_EPS = float(np.float32(1e-6))


def _launchable(*tensors: torch.Tensor) -> None:
    """Kernels run on CUDA tensors, or on any in Triton's interpreter; say so up front
    rather than let a CPU pointer reach a GPU kernel."""
    if not interpreting() and not all(t.is_cuda for t in tensors):
        raise RuntimeError(
            "these Triton kernels need CUDA tensors, or Triton's interpreter for CPU tensors: "
            "call oracle.pair.triton.use_interpreter() (or set TRITON_INTERPRET=1) before "
            "importing losses._kernels"
        )


def _block(n: int) -> int:
    return triton.next_power_of_2(max(n, 1))


@triton.jit
def _scale_rows_kernel(g_ptr, s_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    # out[r, :] = g[r, :] * s[r]: the chain rule through a per-row output
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    g = tl.load(g_ptr + row * n_cols + cols, mask=mask, other=0.0)
    s = tl.load(s_ptr + row)
    tl.store(out_ptr + row * n_cols + cols, g * s, mask=mask)


def _scale_rows(g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(g)
    _scale_rows_kernel[(g.shape[0],)](g, s.contiguous(), out, g.shape[1], BLOCK=_block(g.shape[1]))
    return out


# --- softmax cross-entropy -----------------------------------------------------------------


@triton.jit
def _cross_entropy_kernel(
    logits_ptr,
    target_ptr,
    loss_ptr,
    grad_ptr,
    n_cols,
    WRITE_GRAD: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(logits_ptr + row * n_cols + cols, mask=mask, other=-float("inf"))
    t = tl.load(target_ptr + row)
    # logsumexp shifted by the row's maximum: exp never overflows
    m = tl.max(x, axis=0)
    e = tl.exp(x - m)
    s = tl.sum(e, axis=0)
    x_t = tl.sum(tl.where(cols == t, x, 0.0), axis=0)
    tl.store(loss_ptr + row, m + tl.log(s) - x_t)
    if WRITE_GRAD:
        # d loss / d x = softmax(x) - onehot(t), while the row is loaded
        tl.store(grad_ptr + row * n_cols + cols, e / s - tl.where(cols == t, 1.0, 0.0), mask=mask)


def _cross_entropy(x: torch.Tensor, target: torch.Tensor, grad: torch.Tensor | None):
    n, c = x.shape
    loss = torch.empty(n, dtype=x.dtype, device=x.device)
    _cross_entropy_kernel[(n,)](
        x, target.contiguous(), loss, x if grad is None else grad, c,
        WRITE_GRAD=grad is not None, BLOCK=_block(c),
    )  # fmt: skip
    return loss


def cross_entropy_jax(logits: jax.Array, target: jax.Array) -> jax.Array:
    """JAX twin of :class:`TritonCrossEntropy` and its specimens."""
    picked = jnp.take_along_axis(logits, target[:, None], axis=-1)[:, 0]
    return jax.nn.logsumexp(logits, axis=-1) - picked


_CE_INPUTS = [tensor("b c", low=-8.0, high=8.0), integers("b", low=0, high="c")]
_CE_DIMS = {"c": (2, 10)}


@oracle.twin(cross_entropy_jax, inputs=_CE_INPUTS, dims=_CE_DIMS, name="triton_cross_entropy")
class TritonCrossEntropy(Function):
    r"""Softmax cross-entropy of each row, its gradient computed in the forward's kernel.

    .. math::

        \ell_r = \log \sum_j e^{x_{rj}} - x_{r t_r}, \qquad
        \frac{\partial L}{\partial x_{rj}} = \frac{\partial L}{\partial \ell_r}
        \big(\operatorname{softmax}(x_r)_j - [j = t_r]\big)

    The forward writes :math:`\operatorname{softmax}(x_r) - e_{t_r}` into a buffer of its
    own while the row is loaded; the backward scales its rows by ``grad_output``, into a
    new tensor, so a second backward sees the same buffer.
    """

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _launchable(logits, target)
        x = logits.contiguous()
        grad = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        loss = _cross_entropy(x, target, grad)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (grad,) = ctx.saved_tensors
        return _scale_rows(grad, grad_output), None


@oracle.twin(
    cross_entropy_jax,
    inputs=_CE_INPUTS,
    dims=_CE_DIMS,
    known_divergence=oracle.Known(
        why="the forward writes softmax(x) - onehot(t) into the caller's logits (a contiguous "
        "x.contiguous() is x itself) without ctx.mark_dirty",
        check="contract",
        diagnosis="mutates_input",
        argument=0,
    ),
    name="triton_cross_entropy_grad_in_logits",
)
class TritonCrossEntropyGradInLogits(Function):
    r"""A specimen: :class:`TritonCrossEntropy` that stores the gradient in the logits.

    Same formula and gradient. What is wrong: to save a buffer of the logits' size, the
    forward writes :math:`\operatorname{softmax}(x_r) - e_{t_r}` over ``x =
    logits.contiguous()``, which *is* the caller's tensor when it is contiguous: the
    caller's logits are gone after the forward (a second loss on them, or a metric, reads
    the gradient), and no ``ctx.mark_dirty`` tells autograd. The write goes through a raw
    pointer, so the tensor's version counter does not move. The gradient itself is right.
    """

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _launchable(logits, target)
        x = logits.contiguous()
        loss = _cross_entropy(x, target, x)
        ctx.save_for_backward(x)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (grad,) = ctx.saved_tensors
        return _scale_rows(grad, grad_output), None


@oracle.twin(
    cross_entropy_jax,
    inputs=_CE_INPUTS,
    dims=_CE_DIMS,
    known_divergence=oracle.Known(
        why="x = logits.contiguous() copies a non-contiguous input under the forward's no-grad "
        "mode, so x.requires_grad is False and the gradient is never computed for it",
        check="contract",
        diagnosis="layout",
    ),
    name="triton_cross_entropy_contiguous_copy",
)
class TritonCrossEntropyContiguousCopy(Function):
    r"""A specimen: :class:`TritonCrossEntropy` that asks the copy whether to differentiate.

    Same formula and gradient. What is wrong: the forward decides whether to compute the
    gradient from ``x.requires_grad`` *after* ``x = logits.contiguous()``. For a
    contiguous ``logits`` that is the caller's tensor, which requires grad; for a
    transposed, sliced or expanded one it is a copy made inside ``forward``, where grad
    mode is off, so ``x.requires_grad`` is ``False``: no gradient is computed and
    ``backward`` returns ``None`` for the logits, which autograd treats as zero. Right for
    contiguous logits, zero for the others. ``ctx.needs_input_grad[0]`` is the question
    to ask.
    """

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _launchable(logits, target)
        x = logits.contiguous()
        grad = torch.empty_like(x) if x.requires_grad else None
        loss = _cross_entropy(x, target, grad)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, None]:
        (grad,) = ctx.saved_tensors
        return (None if grad is None else _scale_rows(grad, grad_output)), None


# --- RMSNorm -------------------------------------------------------------------------------


@triton.jit
def _rms_norm_fwd_kernel(x_ptr, w_ptr, y_ptr, rstd_ptr, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0)
    # eps arrives as an fp32 scalar (compiled Triton's type for a Python float)
    rstd = libdevice.rsqrt(tl.sum(x * x, axis=0) / n_cols + eps.to(x.dtype))
    tl.store(rstd_ptr + row, rstd)
    tl.store(y_ptr + row * n_cols + cols, x * rstd * w, mask=mask)


@triton.jit
def _rms_norm_bwd_kernel(
    dy_ptr, x_ptr, w_ptr, rstd_ptr, dx_ptr, dw_rows_ptr, n_cols, BLOCK: tl.constexpr
):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    dy = tl.load(dy_ptr + row * n_cols + cols, mask=mask, other=0.0)
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0)
    r = tl.load(rstd_ptr + row)
    dyw = dy * w
    c = tl.sum(dyw * x, axis=0) / n_cols
    tl.store(dx_ptr + row * n_cols + cols, r * dyw - r * r * r * c * x, mask=mask)
    # each row's share of dw, summed over rows outside: no atomics, the same sum every call
    tl.store(dw_rows_ptr + row * n_cols + cols, dy * x * r, mask=mask)


def rms_norm_jax(x: jax.Array, weight: jax.Array, eps: float = RMS_EPS) -> jax.Array:
    """JAX twin of :class:`TritonRMSNorm` and its specimen."""
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * weight


_RMS_INPUTS = [tensor("b n", low=-3.0, high=3.0), tensor("n", low=-2.0, high=2.0), RMS_EPS]


def _rms_norm_forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, eps: float):
    _launchable(x, weight)
    x, weight = x.contiguous(), weight.contiguous()
    n, d = x.shape
    y = torch.empty_like(x)
    rstd = torch.empty(n, dtype=x.dtype, device=x.device)
    _rms_norm_fwd_kernel[(n,)](x, weight, y, rstd, d, eps, BLOCK=_block(d))
    ctx.save_for_backward(x, weight, rstd)
    return y


def _rms_norm_backward(ctx: Any, dy: torch.Tensor, dx: torch.Tensor):
    x, weight, rstd = ctx.saved_tensors
    n, d = x.shape
    dw_rows = torch.empty_like(x)
    _rms_norm_bwd_kernel[(n,)](dy, x, weight, rstd, dx, dw_rows, d, BLOCK=_block(d))
    return dx, dw_rows.sum(0), None


@oracle.twin(rms_norm_jax, inputs=_RMS_INPUTS, name="triton_rms_norm")
class TritonRMSNorm(Function):
    r"""RMSNorm of each row, with a weight.

    .. math::

        y_j = x_j\, r\, w_j, \quad r = \Big(\tfrac1n \sum_k x_k^2 + \varepsilon\Big)^{-1/2};
        \qquad
        \frac{\partial L}{\partial x_k} = r\, w_k\, g_k - \frac{r^3 x_k}{n}
        \sum_j g_j w_j x_j, \quad
        \frac{\partial L}{\partial w_j} = \sum_{\text{rows}} g_j\, x_j\, r

    with :math:`g = \partial L / \partial y`. The forward saves :math:`r` per row; the
    backward writes ``dx`` into a new tensor.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        return _rms_norm_forward(ctx, x, weight, eps)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor):
        dy = grad_output.contiguous()
        return _rms_norm_backward(ctx, dy, torch.empty_like(dy))


@oracle.twin(
    rms_norm_jax,
    inputs=_RMS_INPUTS,
    known_divergence=oracle.Known(
        why="the backward writes dx over grad_output (dy = grad_output.contiguous() is "
        "grad_output itself) to save a buffer",
        check="contract",
        diagnosis="mutates_grad_output",
    ),
    name="triton_rms_norm_overwrites_grad_output",
)
class TritonRMSNormOverwritesGradOutput(Function):
    r"""A specimen: :class:`TritonRMSNorm` whose backward reuses ``grad_output`` for ``dx``.

    Same formula and gradient, and the returned values are right. What is wrong: the
    backward passes ``dy = grad_output.contiguous()`` as the kernel's output too (each
    program reads its row of ``dy`` before it writes ``dx`` there), which overwrites the
    caller's ``grad_output`` whenever it is contiguous. Autograd may hand the same tensor
    to another branch of the graph (``y = norm(x); loss = f(y) + g(y)`` gives both
    backward edges one buffer), which then sees ``dx`` instead of ``dy``.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        return _rms_norm_forward(ctx, x, weight, eps)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor):
        dy = grad_output.contiguous()
        return _rms_norm_backward(ctx, dy, dy)


# --- rotary embedding ----------------------------------------------------------------------


@triton.jit
def _rotary_kernel(
    x_ptr, cos_ptr, sin_ptr, y_ptr, seq_len, half, BACKWARD: tl.constexpr, BLOCK: tl.constexpr
):
    row = tl.program_id(0)  # one (batch, position) per program
    pos = row % seq_len
    cols = tl.arange(0, BLOCK)
    mask = cols < half
    base, cs = row * 2 * half, pos * 2 * half
    x1 = tl.load(x_ptr + base + cols, mask=mask, other=0.0)
    x2 = tl.load(x_ptr + base + half + cols, mask=mask, other=0.0)
    c1 = tl.load(cos_ptr + cs + cols, mask=mask, other=0.0)
    c2 = tl.load(cos_ptr + cs + half + cols, mask=mask, other=0.0)
    s1 = tl.load(sin_ptr + cs + cols, mask=mask, other=0.0)
    s2 = tl.load(sin_ptr + cs + half + cols, mask=mask, other=0.0)
    if BACKWARD:  # the transpose of the forward's 2x2 blocks
        y1 = x1 * c1 + x2 * s2
        y2 = x2 * c2 - x1 * s1
    else:
        y1 = x1 * c1 - x2 * s1
        y2 = x2 * c2 + x1 * s2
    tl.store(y_ptr + base + cols, y1, mask=mask)
    tl.store(y_ptr + base + half + cols, y2, mask=mask)


def _rotary(x, cos, sin, out, *, backward: bool) -> torch.Tensor:
    b, s, d = x.shape
    if d % 2:
        raise ValueError(f"rotary embedding: the last dimension must be even; got {d}")
    _rotary_kernel[(b * s,)](
        x,
        cos.contiguous(),
        sin.contiguous(),
        out,
        s,
        d // 2,
        BACKWARD=backward,
        BLOCK=_block(d // 2),
    )
    return out


def rotary_jax(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """JAX twin of :class:`TritonRotary` and its specimen."""
    x1, x2 = jnp.split(x, 2, axis=-1)
    return x * cos + jnp.concatenate([-x2, x1], axis=-1) * sin


# cos and sin are the model's tables, never differentiated; any values do for the check
# (the map is linear in x for every table), so they are drawn in [-1, 1]
_ROTARY_INPUTS = [
    tensor("b s d", low=-4.0, high=4.0),
    tensor("s d", low=-1.0, high=1.0, grad=False),
    tensor("s d", low=-1.0, high=1.0, grad=False),
]
_ROTARY_DIMS = {"d": [2, 4, 6, 8], "s": (1, 5), "b": (1, 3)}


@oracle.twin(rotary_jax, inputs=_ROTARY_INPUTS, dims=_ROTARY_DIMS, name="triton_rotary")
class TritonRotary(Function):
    r"""Rotary position embedding, ``rotate_half`` convention, tables of full width.

    With :math:`x = (x_1, x_2)` split in halves and :math:`c = (c_1, c_2)`,
    :math:`s = (s_1, s_2)` likewise:

    .. math::

        y = x \odot c + \operatorname{rotate\_half}(x) \odot s:\quad
        y_1 = x_1 c_1 - x_2 s_1,\ y_2 = x_2 c_2 + x_1 s_2; \qquad
        \frac{\partial L}{\partial x_1} = g_1 c_1 + g_2 s_2,\
        \frac{\partial L}{\partial x_2} = g_2 c_2 - g_1 s_1

    (the transposed map; :math:`g = \partial L / \partial y`). ``cos`` and ``sin`` get no
    gradient. The forward writes into a new tensor.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        _launchable(x, cos, sin)
        ctx.save_for_backward(cos, sin)
        x = x.contiguous()
        return _rotary(x, cos, sin, torch.empty_like(x), backward=False)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor):
        cos, sin = ctx.saved_tensors
        dy = grad_output.contiguous()
        return _rotary(dy, cos, sin, torch.empty_like(dy), backward=True), None, None


@oracle.twin(
    rotary_jax,
    inputs=_ROTARY_INPUTS,
    dims=_ROTARY_DIMS,
    known_divergence=oracle.Known(
        why="the forward rotates x in place (x.contiguous() is x) and returns it without "
        "ctx.mark_dirty",
        check="contract",
        diagnosis="mutates_input",
        argument=0,
    ),
    name="triton_rotary_inplace",
)
class TritonRotaryInplace(Function):
    r"""A specimen: :class:`TritonRotary` that rotates its input in place and returns it.

    Same formula and gradient, and the output and gradient are right. What is wrong: the
    forward writes :math:`y` over ``x = x.contiguous()`` (the caller's tensor when it is
    contiguous), to save the memory of queries and keys, and returns it without
    ``ctx.mark_dirty(x)``: the caller's ``x`` now holds :math:`y` (a residual branch that
    reads ``x`` gets the rotated values), and autograd is not told, so nothing checks
    that ``x`` was not needed elsewhere. The write goes through a raw pointer: the version
    counter does not move either.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        _launchable(x, cos, sin)
        ctx.save_for_backward(cos, sin)
        x = x.contiguous()
        return _rotary(x, cos, sin, x, backward=False)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor):
        cos, sin = ctx.saved_tensors
        dy = grad_output.contiguous()
        return _rotary(dy, cos, sin, torch.empty_like(dy), backward=True), None, None


# --- GELU, tanh approximation ------------------------------------------------------------

# the block size is tuned; the interpreter's layer runs each config once and keeps the first
_GELU_CONFIGS = [triton.Config({"BLOCK": 32}), triton.Config({"BLOCK": 128})]

# the dtype each input dtype is computed in: half precisions in float32, as fused-kernel
# libraries do, float32 and float64 in themselves
_COMPUTE_DTYPE = {
    torch.float16: tl.float32,
    torch.bfloat16: tl.float32,
    torch.float32: tl.float32,
    torch.float64: tl.float64,
}
# the same table as written for float16/bfloat16/float32 training only: float64 falls
# through to the default
_COMPUTE_DTYPE_FLOAT32_ONLY = {
    torch.float16: tl.float32,
    torch.bfloat16: tl.float32,
    torch.float32: tl.float32,
}


@triton.autotune(configs=_GELU_CONFIGS, key=["n"])
@triton.jit
def _gelu_fwd_kernel(x_ptr, y_ptr, n, COMPUTE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(COMPUTE)
    u = 0.7978845608028654 * (x + 0.044715 * x * x * x)  # sqrt(2/pi) (x + a x^3)
    tl.store(y_ptr + offs, 0.5 * x * (1.0 + libdevice.tanh(u)), mask=mask)


@triton.autotune(configs=_GELU_CONFIGS, key=["n"])
@triton.jit
def _gelu_bwd_kernel(dy_ptr, x_ptr, dx_ptr, n, COMPUTE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(COMPUTE)
    dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(COMPUTE)
    t = libdevice.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))
    du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x)
    tl.store(dx_ptr + offs, dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du), mask=mask)


def _gelu_launch(kernel, compute, *args: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(args[0])
    n = out.numel()
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK"]),)  # noqa: E731
    kernel[grid](*args, out, n, COMPUTE=compute)
    return out


def gelu_tanh_jax(x: jax.Array) -> jax.Array:
    """JAX twin of :class:`TritonGelu` and its specimen."""
    return jax.nn.gelu(x, approximate=True)


_GELU_INPUTS = [tensor("b n", low=-6.0, high=6.0)]


def _gelu_forward(ctx: Any, x: torch.Tensor, table: dict) -> torch.Tensor:
    _launchable(x)
    x = x.contiguous()
    ctx.save_for_backward(x)
    # a dtype the table does not know is computed in float32
    return _gelu_launch(_gelu_fwd_kernel, table.get(x.dtype, tl.float32), x)


def _gelu_backward(ctx: Any, grad_output: torch.Tensor, table: dict) -> torch.Tensor:
    (x,) = ctx.saved_tensors
    compute = table.get(x.dtype, tl.float32)
    return _gelu_launch(_gelu_bwd_kernel, compute, grad_output.contiguous(), x)


@oracle.twin(gelu_tanh_jax, inputs=_GELU_INPUTS, name="triton_gelu")
class TritonGelu(Function):
    r"""GELU, tanh approximation, element-wise; the block size autotuned.

    .. math::

        y = \tfrac12 x\,(1 + \tanh u), \quad u = \sqrt{2/\pi}\,(x + a x^3),\ a = 0.044715;
        \qquad
        \frac{\partial L}{\partial x} = g\Big(\tfrac12 (1 + \tanh u)
        + \tfrac12 x\,(1 - \tanh^2 u)\,\sqrt{2/\pi}\,(1 + 3 a x^2)\Big)

    Each input dtype is computed in the dtype ``_COMPUTE_DTYPE`` gives it (half
    precisions in float32, float32 and float64 in themselves); the result is stored in
    the input's dtype.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return _gelu_forward(ctx, x, _COMPUTE_DTYPE)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        return _gelu_backward(ctx, grad_output, _COMPUTE_DTYPE)


@oracle.twin(
    gelu_tanh_jax,
    inputs=_GELU_INPUTS,
    known_divergence=oracle.Known(
        why="the compute-dtype table has no float64 entry, so float64 inputs are computed "
        "in float32 and only stored as float64",
        check=("forward", "vjp"),
        diagnosis="precision",
        dtypes=("float64",),
    ),
    name="triton_gelu_float32_table",
)
class TritonGeluFloat32Table(Function):
    r"""A specimen: :class:`TritonGelu` with a compute-dtype table written for float32.

    Same formula and gradient. What is wrong: its table (``_COMPUTE_DTYPE_FLOAT32_ONLY``)
    lists float16, bfloat16 and float32, and a dtype it does not list falls through to
    float32, so a float64 input is loaded, computed and differentiated in float32 and only
    the result is widened: float64 outputs and gradients with float32's ~1e-7 relative
    error, and no error message. Right in float32.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return _gelu_forward(ctx, x, _COMPUTE_DTYPE_FLOAT32_ONLY)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        return _gelu_backward(ctx, grad_output, _COMPUTE_DTYPE_FLOAT32_ONLY)
