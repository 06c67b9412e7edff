r"""Functions on structured inputs and outputs: an SPD solve, the projection onto the
simplex, and the rotation of a 3-vector (Rodrigues' formula).

Each has a hand-written ``backward``, its JAX twin (the forward alone) beside it, and a
specimen with a plausible mistake in ``backward``, registered with the finding the
oracle must show. The SPD solve draws its matrix with ``tensor(..., domain="spd")``: no
reparametrisation inside either side.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import torch
from torch.autograd import Function

import oracle
from oracle import tensor

__all__ = [
    "SPDSolve",
    "SPDSolveHalfSolve",
    "spd_solve_jax",
    "SimplexProjection",
    "SimplexProjectionMeanOverAll",
    "simplex_projection_jax",
    "Rodrigues",
    "RodriguesConstantCoefficients",
    "rodrigues_jax",
]


# ----------------------------------------------------------------------------- SPD solve

# Every new shape costs the twin a compilation: a batch of 1 or 3 tests batching as well
# as 1, 2 and 3 would, with a third fewer shapes.
_SPD_INPUTS = [tensor("b k k", domain="spd"), tensor("b k")]
_SPD_DIMS = {"b": [1, 3], "k": (1, 5)}


def spd_solve_jax(matrix: jax.Array, rhs: jax.Array) -> jax.Array:
    """JAX twin of :class:`SPDSolve`: a general solve of the symmetrised system."""
    sym = 0.5 * (matrix + jnp.swapaxes(matrix, -1, -2))
    return jnp.linalg.solve(sym, rhs[..., None])[..., 0]


def _spd_forward(ctx: Any, matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    # Cholesky reads one triangle only; solving with sym(A) makes the function the same
    # on both sides of the diagonal, also at the non-symmetric points finite
    # differences visit
    chol = torch.linalg.cholesky(0.5 * (matrix + matrix.mT))
    solution = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
    # the matrix, not its Cholesky factor: a factor made here has no graph (forward runs
    # without one), so a backward built on it has a silently wrong derivative itself
    # (gradient penalties; the oracle's hvp check shows it). backward factors it again.
    ctx.save_for_backward(matrix, solution)
    return solution


def _factor(matrix: torch.Tensor) -> torch.Tensor:
    return torch.linalg.cholesky(0.5 * (matrix + matrix.mT))


@oracle.twin(spd_solve_jax, inputs=_SPD_INPUTS, dims=_SPD_DIMS, name="spd_solve")
class SPDSolve(Function):
    r"""Solve :math:`S x = b` for a symmetric positive definite :math:`S = (A + A^\top)/2`
    by Cholesky (batched over leading dimensions), with its gradient by hand.

    .. math::

        x = S^{-1} b, \qquad \lambda = S^{-1} g, \qquad
        \frac{\partial L}{\partial b} = \lambda, \qquad
        \frac{\partial L}{\partial A} = -\tfrac12 \left(\lambda x^\top + x \lambda^\top\right)

    from :math:`dx = S^{-1}(db - dS\, x)` and :math:`dS = (dA + dA^\top)/2`, with
    :math:`g = \partial L / \partial x`; :math:`\lambda` comes from a Cholesky factor
    (:math:`S^{-1} = L^{-\top} L^{-1}`) made again in ``backward``, from the saved matrix,
    so that the backward is itself differentiable.
    """

    @staticmethod
    def forward(ctx: Any, matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
        return _spd_forward(ctx, matrix, rhs)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        matrix, solution = ctx.saved_tensors
        lam = torch.cholesky_solve(grad_output.unsqueeze(-1), _factor(matrix)).squeeze(-1)
        outer = lam.unsqueeze(-1) * solution.unsqueeze(-2)
        return -0.5 * (outer + outer.mT), lam


@oracle.twin(
    spd_solve_jax,
    inputs=_SPD_INPUTS,
    dims=_SPD_DIMS,
    known_divergence=oracle.Known(
        why="the backward applies only L^-1 to grad_output, forgetting the L^-T half of "
        "S^-1 = L^-T L^-1",
        argument=1,
        check="vjp",
        blame="torch",
    ),
    name="spd_solve_half_solve",
)
class SPDSolveHalfSolve(Function):
    r""":class:`SPDSolve` with half a solve in ``backward``, a specimen.

    .. math::

        \frac{\partial L}{\partial b} = \lambda = L^{-\top} L^{-1} g

    What is wrong: ``backward`` computes :math:`\lambda = L^{-1} g` with one triangular
    solve, the forward substitution of a Cholesky solve without the back substitution.
    Both gradients are wrong unless :math:`L = I`; on the scaled identity
    :math:`A = cI` that shrinking favours, :math:`\partial L / \partial b` is off by the
    factor :math:`\sqrt{c}`.
    """

    @staticmethod
    def forward(ctx: Any, matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
        return _spd_forward(ctx, matrix, rhs)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        matrix, solution = ctx.saved_tensors
        lam = torch.linalg.solve_triangular(_factor(matrix), grad_output.unsqueeze(-1), upper=False)
        lam = lam.squeeze(-1)
        outer = lam.unsqueeze(-1) * solution.unsqueeze(-2)
        return -0.5 * (outer + outer.mT), lam


# ------------------------------------------------------------ projection onto the simplex

# Rows of 1, 2, 3, 5 and 8 entries (a row of 1 is always [1]); sizes listed rather than a
# range, to keep the number of shapes, and of the twin's compilations, small.
_SIMPLEX_INPUTS = [tensor("b n", low=-3.0, high=3.0)]
_SIMPLEX_DIMS = {"b": [1, 3], "n": [1, 2, 3, 5, 8]}


def simplex_projection_jax(x: jax.Array) -> jax.Array:
    """JAX twin of :class:`SimplexProjection` (the same sort-based algorithm)."""
    n = x.shape[-1]
    u = -jnp.sort(-x, axis=-1)
    css = jnp.cumsum(u, axis=-1) - 1.0
    k = jnp.arange(1, n + 1, dtype=x.dtype)
    rho = jnp.sum(u - css / k > 0, axis=-1, keepdims=True)
    tau = jnp.take_along_axis(css, rho - 1, axis=-1) / rho.astype(x.dtype)
    return jnp.maximum(x - tau, 0.0)


def _simplex_forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
    n = x.shape[-1]
    u = torch.sort(x, dim=-1, descending=True).values
    css = u.cumsum(-1) - 1.0
    k = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    # the support is the leading run of sorted values that stay above the threshold
    rho = (u - css / k > 0).sum(-1, keepdim=True)
    tau = css.gather(-1, rho - 1) / rho.to(x.dtype)
    p = (x - tau).clamp_min(0.0)
    ctx.save_for_backward(p)
    return p


@oracle.twin(
    simplex_projection_jax, inputs=_SIMPLEX_INPUTS, dims=_SIMPLEX_DIMS, name="simplex_projection"
)
class SimplexProjection(Function):
    r"""The Euclidean projection of each row onto the probability simplex, with its
    gradient by hand (sort-based, Held et al. 1974; Duchi et al. 2008).

    .. math::

        p = \max(x - \tau, 0), \quad \textstyle\sum_i p_i = 1, \qquad
        \frac{\partial L}{\partial x_i} = [i \in S]\Big(g_i - \frac{1}{|S|}
        \sum_{j \in S} g_j\Big)

    with :math:`S = \{i : p_i > 0\}` the support and :math:`g = \partial L / \partial p`:
    on :math:`S`, :math:`\tau = (\sum_{j \in S} x_j - 1)/|S|`, so
    :math:`\partial p_i / \partial x_j = \delta_{ij} - 1/|S|` for :math:`i, j \in S` and
    0 elsewhere. Where some :math:`x_i = \tau` exactly the support changes: a kink.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return _simplex_forward(ctx, x)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        (p,) = ctx.saved_tensors
        support = (p > 0).to(grad_output.dtype)
        mean = (grad_output * support).sum(-1, keepdim=True) / support.sum(-1, keepdim=True)
        return support * (grad_output - mean)


@oracle.twin(
    simplex_projection_jax,
    inputs=_SIMPLEX_INPUTS,
    dims=_SIMPLEX_DIMS,
    known_divergence=oracle.Known(
        why="the backward subtracts the mean of grad_output over the whole row instead of "
        "over the support",
        argument=0,
        check="vjp",
        blame="torch",
    ),
    name="simplex_projection_mean_over_all",
)
class SimplexProjectionMeanOverAll(Function):
    r""":class:`SimplexProjection` with the mean taken over the whole row, a specimen.

    .. math::

        \frac{\partial L}{\partial x_i} = [i \in S]\Big(g_i - \frac{1}{|S|}
        \sum_{j \in S} g_j\Big)

    What is wrong: ``backward`` returns :math:`[i \in S](g_i - \frac1n \sum_j g_j)`, the
    mean over all :math:`n` entries. It is right whenever the support is the whole row
    (the all-equal rows that shrinking favours), and wrong as soon as a projection
    clips an entry to 0.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return _simplex_forward(ctx, x)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        (p,) = ctx.saved_tensors
        support = (p > 0).to(grad_output.dtype)
        return support * (grad_output - grad_output.mean(-1, keepdim=True))


# ---------------------------------------------------------- rotation of a 3-vector (exp map)

# Below this squared angle the coefficients come from their Taylor series (to s^8, an
# error under 1e-17 at s = 1): the closed forms cancel there, (cos t - sin t / t) / t^2
# loses all of float32's digits by t = 1e-2.
_SERIES_BELOW = 1.0
_TERMS = 9
_A_SERIES = [(-1) ** k / math.factorial(2 * k + 1) for k in range(_TERMS)]
_B_SERIES = [(-1) ** k / math.factorial(2 * k + 2) for k in range(_TERMS)]
_ROTATION_INPUTS = [tensor("b 3", low=-4.0, high=4.0)]
_ROTATION_DIMS = {"b": [1, 4]}


def _poly(coefs: list[float], s: Any) -> Any:
    out = coefs[-1] + 0 * s
    for c in reversed(coefs[:-1]):
        out = out * s + c
    return out


def _derivative(coefs: list[float]) -> list[float]:
    return [k * c for k, c in enumerate(coefs)][1:]


def _hat_jax(w: jax.Array) -> jax.Array:
    x, y, z = w[..., 0], w[..., 1], w[..., 2]
    o = jnp.zeros_like(x)
    return jnp.stack(
        [jnp.stack([o, -z, y], -1), jnp.stack([z, o, -x], -1), jnp.stack([-y, x, o], -1)], -2
    )


def rodrigues_jax(w: jax.Array) -> jax.Array:
    """JAX twin of :class:`Rodrigues`: the same coefficients, differentiated by JAX."""
    s = jnp.sum(w * w, axis=-1)[..., None, None]
    small = s < _SERIES_BELOW
    # the double where: the unused branch gets a harmless argument, so no NaN leaks
    # into the gradient through it
    s_small, s_big = jnp.where(small, s, 0.0), jnp.where(small, 1.0, s)
    t = jnp.sqrt(s_big)
    a = jnp.where(small, _poly(_A_SERIES, s_small), jnp.sin(t) / t)
    b = jnp.where(small, _poly(_B_SERIES, s_small), 2.0 * jnp.sin(0.5 * t) ** 2 / s_big)
    k = _hat_jax(w)
    return jnp.eye(3, dtype=w.dtype) + a * k + b * (k @ k)


def _hat(w: torch.Tensor) -> torch.Tensor:
    x, y, z = w.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack(
        [torch.stack([o, -z, y], -1), torch.stack([z, o, -x], -1), torch.stack([-y, x, o], -1)],
        -2,
    )


def _vee(m: torch.Tensor) -> torch.Tensor:
    """The vector v with <M, hat(u)> = v . u for every u."""
    return torch.stack(
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]],
        -1,
    )


def _coefficients(s: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A = sin t / t, B = (1 - cos t) / t^2 and their derivatives in s = t^2."""
    small = s < _SERIES_BELOW
    s_big = torch.where(small, torch.ones_like(s), s)
    t = s_big.sqrt()
    a_big = t.sin() / t
    b_big = 2.0 * (0.5 * t).sin() ** 2 / s_big  # 1 - cos t without the cancellation
    a = torch.where(small, _poly(_A_SERIES, s), a_big)
    b = torch.where(small, _poly(_B_SERIES, s), b_big)
    da = torch.where(small, _poly(_derivative(_A_SERIES), s), (t.cos() - a_big) / (2 * s_big))
    db = torch.where(small, _poly(_derivative(_B_SERIES), s), (a_big - 2 * b_big) / (2 * s_big))
    return a, b, da, db


def _rodrigues_forward(ctx: Any, w: torch.Tensor) -> torch.Tensor:
    s = (w * w).sum(-1)[..., None, None]
    a, b, _, _ = _coefficients(s)
    k = _hat(w)
    ctx.save_for_backward(w)
    return torch.eye(3, dtype=w.dtype, device=w.device) + a * k + b * (k @ k)


@oracle.twin(rodrigues_jax, inputs=_ROTATION_INPUTS, dims=_ROTATION_DIMS, name="rodrigues")
class Rodrigues(Function):
    r"""The rotation matrix of a rotation vector :math:`\omega` (the exponential map of
    SO(3), Rodrigues' formula), batched, with its gradient by hand.

    .. math::

        R = I + A(s) K + B(s) K^2, \quad K = [\omega]_\times,\ s = \lVert\omega\rVert^2,\
        A = \frac{\sin\theta}{\theta},\ B = \frac{1 - \cos\theta}{\theta^2}

    .. math::

        \frac{\partial L}{\partial \omega} = 2\omega\,\big(A'(s)\langle G, K\rangle
        + B'(s)\langle G, K^2\rangle\big)
        + \operatorname{vee}\big(A G + B (G K^\top + K^\top G)\big)

    with :math:`G = \partial L / \partial R`, :math:`A' = (\cos\theta - A)/(2s)`,
    :math:`B' = (A - 2B)/(2s)`, and :math:`\operatorname{vee}(M) = (M_{32} - M_{23},
    M_{13} - M_{31}, M_{21} - M_{12})`, the vector with
    :math:`\langle M, [u]_\times \rangle = \operatorname{vee}(M) \cdot u`. Below
    :math:`s = 1` the coefficients and derivatives come from their Taylor series, so
    :math:`\omega = 0` (where :math:`\theta` is not differentiable, but :math:`R` is)
    needs no special case.
    """

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor) -> torch.Tensor:
        return _rodrigues_forward(ctx, w)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        (w,) = ctx.saved_tensors
        s = (w * w).sum(-1)[..., None, None]
        a, b, da, db = _coefficients(s)
        k = _hat(w)
        g = grad_output
        radial = da * (g * k).sum((-1, -2), keepdim=True) + db * (g * (k @ k)).sum(
            (-1, -2), keepdim=True
        )
        tangent = _vee(a * g + b * (g @ k.mT + k.mT @ g))
        return 2 * w * radial[..., 0] + tangent


@oracle.twin(
    rodrigues_jax,
    inputs=_ROTATION_INPUTS,
    dims=_ROTATION_DIMS,
    known_divergence=oracle.Known(
        why="the backward treats the coefficients sin(t)/t and (1 - cos t)/t^2 as constants, "
        "dropping their dependence on the angle",
        argument=0,
        check="vjp",
        blame="torch",
    ),
    name="rodrigues_constant_coefficients",
)
class RodriguesConstantCoefficients(Function):
    r""":class:`Rodrigues` with the angle's own derivative left out, a specimen.

    .. math::

        \frac{\partial L}{\partial \omega} = 2\omega\,\big(A'\langle G, K\rangle
        + B'\langle G, K^2\rangle\big)
        + \operatorname{vee}\big(A G + B (G K^\top + K^\top G)\big)

    What is wrong: ``backward`` returns only the last term, as if :math:`A` and
    :math:`B` did not depend on :math:`\omega`. It is exact at :math:`\omega = 0`, where
    shrinking goes, and off by :math:`O(\lVert\omega\rVert^2)` relative away from it.
    """

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor) -> torch.Tensor:
        return _rodrigues_forward(ctx, w)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        (w,) = ctx.saved_tensors
        s = (w * w).sum(-1)[..., None, None]
        a, b, _, _ = _coefficients(s)
        k = _hat(w)
        g = grad_output
        return _vee(a * g + b * (g @ k.mT + k.mT @ g))
