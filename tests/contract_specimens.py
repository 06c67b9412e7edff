r"""autograd.Functions that keep or break the contract beyond the first derivative.

Each wrong one has a right first-order backward (the vjp check passes it) and exactly one
defect, named in its docstring; tests/judge/test_checks_beyond_the_vjp.py checks that the oracle flags it for
that reason. Importable, so that reproducers can find them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import nn
from torch.autograd import Function
from torch.autograd.function import once_differentiable

# --- correct: every transform supported ----------------------------------------------


class Exp(Function):
    r"""A correct exponential with every transform: :math:`y = e^x`, backward
    :math:`g\,y` (y saved as an output, so the backward is differentiable again), jvp
    :math:`t\,y`, vmap rule generated."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.exp(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y

    @staticmethod
    def jvp(ctx, t):
        (y,) = ctx.saved_tensors
        return t * y


class XSinX(Function):
    r"""A correct :math:`y = x \sin x` with every transform: backward
    :math:`g(\sin x + x\cos x)` from the saved input, jvp the same times the tangent."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * torch.sin(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (torch.sin(x) + x * torch.cos(x))

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return t * (torch.sin(x) + x * torch.cos(x))


class Abs(Function):
    """A correct absolute value with every transform; torch's sign(0) = 0 at the kink,
    where jnp.abs takes 1: a kink, not a finding, for every check."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x.abs()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.sign()

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return t * x.sign()


def abs_twin(x):
    return jnp.abs(x)


def exp_twin(x):
    return jnp.exp(x)


def x_sin_x_twin(x):
    return x * jnp.sin(x)


def sin_twin(x):
    return jnp.sin(x)


# --- jvp ------------------------------------------------------------------------------


class ExpJvpDoubled(Exp):
    """Wrong jvp: ``2 t y`` (the backward is right, so gradcheck's default passes it)."""

    @staticmethod
    def jvp(ctx, t):
        (y,) = ctx.saved_tensors
        return 2 * t * y


# --- hvp ------------------------------------------------------------------------------


class SinSavedCos(Function):
    """Wrong second derivative: forward saves ``cos(x)``, computed without a graph (a
    Function's forward runs under no_grad), so the backward ``g cos(x)`` has no
    derivative with respect to x; the true one is ``-g sin(x)``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x.cos())
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (c,) = ctx.saved_tensors
        return g * c


class SinDetachedBackward(Function):
    """Wrong second derivative: the backward computes ``cos(x)`` from ``x.detach()``
    (as a numpy round trip would), cutting the graph of the backward itself."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.from_numpy(np.cos(x.detach().cpu().numpy())).to(g)


class SinOnceDifferentiable(Function):
    """Right first derivative, refuses the second: ``@once_differentiable``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.cos()


# --- vmap -----------------------------------------------------------------------------


class SinOldStyle(Function):
    """Right, old-style ``forward(ctx, x)``: torch.func transforms refuse it (no
    setup_context); no jvp staticmethod either."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.cos()


class SinWrongOutDims(Function):
    """Wrong vmap rule: returns ``out_dims=0`` whatever ``in_dims`` was, so a batch at
    dimension 1 comes back with the wrong shape (or, when square, the wrong values)."""

    @staticmethod
    def forward(x):
        return x.sin()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.cos()

    @staticmethod
    def vmap(info, in_dims, x):
        return SinWrongOutDims.apply(x), 0


# --- contract -------------------------------------------------------------------------


class SinMutatesInput(Function):
    """Changes its input in place (``x.data.mul_(1)`` style through ``.data``, here an
    ``add_`` on a view of the same memory) without ``ctx.mark_dirty``: the value and
    gradient it returns are right, but the caller's tensor is changed."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x.clone())
        y = x.sin()
        x.data.add_(1.0)
        return y

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.cos()


class SinMutatesGradOutput(Function):
    """Writes into ``grad_output`` (``g.mul_(cos x)``) and returns it: its own gradient is
    right, but a sibling branch sharing that tensor sees the change."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g.mul_(x.cos())


class ScaleByRowStrided(Function):
    r""":math:`y = x \odot s` for a weight ``s`` (not differentiated); the backward reads
    ``s`` through contiguous strides (``as_strided``), which is wrong for a transposed
    or sliced ``s``."""

    @staticmethod
    def forward(ctx, x, s):
        ctx.save_for_backward(s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        stride = [1] * s.dim()
        for i in range(s.dim() - 2, -1, -1):
            stride[i] = stride[i + 1] * s.shape[i + 1]
        return g * s.as_strided(s.shape, stride), None


def scale_twin(x, s):
    return x * s


class SinViewGrad(Function):
    """Calls ``.view`` on ``grad_output``, which raises for a transposed one."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g.view(-1).view(x.shape) * x.cos()


class SinCosNoneBranch(Function):
    """Two outputs, ``(sin x, cos x)``, with ``set_materialize_grads(False)``; the branch
    for an undefined ``grad_cos`` doubles ``grad_sin``'s term (right when both outputs
    are used, off by 2 when ``sin x`` is used alone)."""

    @staticmethod
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x)
        return x.sin(), x.cos()

    @staticmethod
    def backward(ctx, gs, gc):
        (x,) = ctx.saved_tensors
        if gc is None:
            return 2 * gs * x.cos()
        if gs is None:
            return -gc * x.sin()
        return gs * x.cos() - gc * x.sin()


def sin_cos_twin(x):
    return jnp.sin(x), jnp.cos(x)


class SinChangesCtx(Function):
    """Changes ``ctx`` in its backward (a counter that scales the result), so a second
    backward with ``retain_graph=True`` differs from the first."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.calls = 0
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        ctx.calls += 1
        return g * x.cos() * ctx.calls


class SinWithNonDifferentiableCopy(Function):
    """Returns ``(sin x, 2 sin x)`` and marks the second output non-differentiable,
    although the twin (rightly) differentiates it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        y = x.sin()
        z = 2 * y
        ctx.mark_non_differentiable(z)
        return y, z

    @staticmethod
    def backward(ctx, gy, gz):
        (x,) = ctx.saved_tensors
        return gy * x.cos()


def sin_double_twin(x):
    return jnp.sin(x), 2 * jnp.sin(x)


# --- nn.Module parameters ---------------------------------------------------------------


class _TemperatureCE(Function):
    """Cross-entropy of ``logits / T`` with a hand-written backward for both; built from
    values saved without a graph, so it is marked once-differentiable (honestly)."""

    @staticmethod
    def forward(ctx, logits, temperature, target, flip):
        z = logits / temperature
        # softmax by hand: torch.softmax and max(dim) start threads even for a 2x3 tensor,
        # which costs milliseconds per call on a loaded machine
        e = (z - z.amax(-1, keepdim=True)).exp()
        total = e.sum(-1, keepdim=True)
        p = e / total
        ctx.save_for_backward(z, p, temperature, target)
        ctx.flip = flip
        logp = (e / total).log()
        return -logp.gather(-1, target[:, None]).mean()

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        z, p, temperature, target = ctx.saved_tensors
        onehot = torch.nn.functional.one_hot(target, z.shape[-1]).to(z)
        dz = g * (p - onehot) / z.shape[0]
        # dL/dT = sum dz * dz/dT, with dz/dT = -z / T
        d_t = -(dz * z).sum() / temperature
        return dz / temperature, (-d_t if ctx.flip else d_t), None, None


class TemperatureCrossEntropy(nn.Module):
    """Cross-entropy with a learnt temperature: ``CE(logits / T, target)``.
    ``flip=True`` is the specimen whose temperature gradient has the wrong sign."""

    def __init__(self, temperature: float = 1.5, flip: bool = False):
        super().__init__()
        self.temperature = nn.Parameter(torch.tensor(temperature))
        self.flip = flip

    def forward(self, logits, target):
        return _TemperatureCE.apply(logits, self.temperature, target, self.flip)


def temperature_ce_twin(params, logits, target):
    z = logits / params["temperature"]
    logp = jax.nn.log_softmax(z, -1)
    return -jnp.mean(jnp.take_along_axis(logp, target[:, None], -1))


# --- float32 only: torch_fn cannot run in float64 -------------------------------------
# A Function with a float32 weight of its own raises on float64 inputs ("expected m1 and
# m2 to have the same dtype"). A float32 disagreement of a transform is judged again in
# float64; there, that error is torch_fn's float32-only nature, not a refusal of the
# transform, so its float32 values are judged against the twin's float64 ones instead.

W_F32 = np.array([[1.0, -2.0], [0.5, 1.5]], dtype=np.float32)


def _w32(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(W_F32, device=like.device)  # float32 whatever the input's dtype


def tanh_linear_twin(x):
    return jnp.tanh(x @ jnp.asarray(W_F32))


class TanhLinearF32(Function):
    r"""A correct :math:`y = \tanh(x W)` with a float32 :math:`W` (float32 inputs only):
    backward :math:`(g (1 - y^2)) W^\top`, jvp :math:`(t W)(1 - y^2)`, vmap rule
    generated."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.tanh(x @ _w32(x))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return (g * (1 - y * y)) @ _w32(g).T

    @staticmethod
    def jvp(ctx, t):
        (y,) = ctx.saved_tensors
        return (t @ _w32(t)) * (1 - y * y)


class TanhLinearF32JvpDoubled(TanhLinearF32):
    """Wrong jvp: twice the tangent (float32 only)."""

    @staticmethod
    def jvp(ctx, t):
        (y,) = ctx.saved_tensors
        return 2 * (t @ _w32(t)) * (1 - y * y)


class TanhLinearF32DetachedGrad(TanhLinearF32):
    """Wrong second derivative: the backward detaches ``grad_output``, so its derivative
    with respect to the cotangent is lost (float32 only)."""

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return (g.detach() * (1 - y * y)) @ _w32(g).T


# --- memory tricks (issue 18): in-place writes, aliasing, layouts ----------------------
# Fused kernels write gradients into their inputs, overwrite grad_output, return views
# and assume contiguous memory. A write "through a raw pointer" (Triton, CUDA, data_ptr)
# is simulated by a write through numpy or ``.data``, which no version counter sees.


def double_twin(x):
    return 2 * x


def square_twin(x):
    return x * x


class DoubleInPlaceNoDirty(Function):
    """Wrong: ``x.mul_(2); return x`` without ``ctx.mark_dirty`` (the caller's tensor is
    changed behind autograd's back)."""

    @staticmethod
    def forward(ctx, x):
        x.mul_(2)
        return x

    @staticmethod
    def backward(ctx, g):
        return 2 * g


class DoubleInPlace(Function):
    """Correct: ``x.mul_(2)`` with ``ctx.mark_dirty(x)``, returning ``x`` (PyTorch's own
    example of an in-place Function)."""

    @staticmethod
    def forward(ctx, x):
        ctx.mark_dirty(x)
        x.mul_(2)
        return x

    @staticmethod
    def backward(ctx, g):
        return 2 * g


class DoubleInPlaceWrongGrad(DoubleInPlace):
    """Wrong gradient (3 g) of a correct in-place Function: must still be judged."""

    @staticmethod
    def backward(ctx, g):
        return 3 * g


class SinRawWriteInput(Function):
    """Wrong: the backward writes into its saved input through numpy (a raw pointer);
    its own values and gradient are right."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        out = g * x.cos()
        x.detach().cpu().numpy()[...] = 0.5  # through the memory, past the version counter
        return out


class SinRawWriteGradOutput(Function):
    """Wrong: the backward scales ``grad_output`` in place through numpy (a fused
    kernel's trick) and then divides it out: right gradient, caller's grad_output
    changed."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        g.detach().numpy()[...] *= 100.0
        return g * x.cos() / 100.0


class SinGradIntoGradOutput(Function):
    """Correct: the backward computes into a fresh buffer, never into its arguments;
    the forward returns a view of a fresh tensor (``y.view(shape)``)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        y = torch.empty_like(x)
        torch.sin(x, out=y)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        out = torch.empty_like(g)
        torch.mul(g, x.cos(), out=out)
        return out


class SquareAssumesContiguous(Function):
    """Wrong: the backward reads ``x`` through contiguous strides
    (``x.as_strided(x.shape, (x.shape[1], 1))``), wrong for a transposed or sliced ``x``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * x.as_strided(x.shape, (x.shape[1], 1))


class SquareContiguousCopyFlag(Function):
    """Wrong for non-contiguous inputs: the forward makes a contiguous copy
    (``x = x.contiguous()``) and then reads ``x.requires_grad`` (False for the copy
    made inside forward) to decide whether to keep what the gradient needs."""

    @staticmethod
    def forward(ctx, x):
        x = x.contiguous()
        ctx.needs = x.requires_grad
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * x if ctx.needs else torch.zeros_like(g)


class SquareContiguousCopy(Function):
    """Correct: the forward makes a contiguous copy and asks ``ctx.needs_input_grad``."""

    @staticmethod
    def forward(ctx, x):
        x = x.contiguous()
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g.contiguous() * x if ctx.needs_input_grad[0] else None


class SquareRefusesStrides(Function):
    """Correct but loud: refuses a non-unit last stride (like ``torch.view_as_complex``),
    right on every layout it accepts: a capability, not a finding."""

    @staticmethod
    def forward(ctx, x):
        if x.dim() and x.stride(-1) != 1:
            raise ValueError("expects a last stride of 1")
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * x


class RowNormalize(Function):
    r"""Wrong second derivative (first derivative right): :math:`y = x / \|x\|` per
    row, backward :math:`(g - y\langle g, y\rangle)/\|x\|` from the saved output ``y`` and
    the norm saved *without a graph* (``detach``): the derivative of the backward misses
    the norm's dependence on x. Invisible for rows of one element."""

    @staticmethod
    def forward(ctx, x):
        n = x.norm(dim=-1, keepdim=True)
        y = x / n
        ctx.save_for_backward(y, n.detach())
        return y

    @staticmethod
    def backward(ctx, g):
        y, n = ctx.saved_tensors
        return (g - y * (g * y).sum(-1, keepdim=True)) / n


def row_normalize_twin(x):
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


class CloneScaledBothModes(Function):
    """PyTorch's autograd_function_db ``ScaleGradGenVmap``-like specimen: the forward is
    ``x.clone()``, the backward and the jvp both scale by 3.14: wrong in both modes."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        return g * 3.14

    @staticmethod
    def jvp(ctx, t):
        return t * 3.14


def identity_twin(x):
    return x


def self_divergence(p):
    """Correct: a divergence of ``p`` from itself, exactly 0 in torch (``p log(p/p)``,
    term by term)."""
    return (p * (p.log() - p.log())).sum(-1)


def self_divergence_twin(p):
    """The same 0 as a difference of two sums of size 1 (a JSD at p = q): off by about
    1e-16, rounding (``sin^2 + cos^2`` keeps XLA from folding it away)."""
    m = p * (jnp.sin(p) ** 2 + jnp.cos(p) ** 2)
    return jnp.sum(p * jnp.log(p), -1) - jnp.sum(m * jnp.log(m), -1)
