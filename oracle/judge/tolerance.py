r"""Where tolerances are decided.

The rule, per element :math:`i` of one output or one argument's gradient, with
:math:`t` torch's value, :math:`j` the twin's in the same dtype, :math:`r` the twin's
in float64 and :math:`s = \max_i |r_i|` (the tensor's scale):

* fast path (every dtype): agree when :math:`|t_i - j_i| \le \mathrm{rtol}|j_i| + \mathrm{atol}\,s`;
* float32 only, when the fast path fails: take the float64 twin as the reference and
  allow torch the twin's own float32 error, times ``K``, on top of the floor:
  :math:`|t_i - r_i| \le K|j_i - r_i| + \mathrm{rtol}|r_i| + \mathrm{atol}\,s`.

So an ill-conditioned but correct pair (where float32 itself loses digits) needs no
tuning, while a wrong gradient, which is off by a multiple of itself, is not excused.
Users who pass ``rtol``/``atol`` get torch.testing semantics instead, in the dtype under
test: :math:`|t_i - j_i| \le \mathrm{atol} + \mathrm{rtol}|j_i|`. Both or none, as in
``torch.testing.assert_close``: ``atol=0`` would still let ``rtol`` through, so one
without the other is refused rather than filled in. Numbers apply to the outputs and
every gradient; dicts (``rtol={2: 1e-3}, atol={2: 1e-6}``, the same keys in both)
apply to the gradients of the arguments they name, and everything else keeps the rule
above.

NaN matches NaN and an infinity matches the same infinity; a non-finite value on one
side only is a mismatch. This module knows numpy and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..validation import check_non_negative, check_user_tolerances

__all__ = [
    "Tolerance",
    "tolerance_of",
    "float64_first",
    "Comparison",
    "default_tolerance",
    "forward_tolerance",
    "user_tolerance",
    "user_tolerances",
    "compare",
]


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    #: how many times the twin's own float32 error torch may have; None: no slow path
    k: float | None
    #: atol is relative to the tensor's scale (the oracle's rule) or absolute (user's)
    scaled_atol: bool = True
    #: an absolute floor added to what is allowed (0: none)
    floor: float = 0.0

    def describe(self) -> str:
        if not self.scaled_atol:
            return f"atol={self.atol:.1e}, rtol={self.rtol:.1e}"
        s = f"rtol={self.rtol:.1e}, atol={self.atol:.1e} x scale"
        return s + (f", plus {self.k:g} x the twin's float32 error" if self.k else "")


_DEFAULTS = {
    # about 80 ulp of float32 on each element, and of the tensor's largest element
    "float32": Tolerance(rtol=1e-5, atol=1e-5, k=8.0),
    # tight enough that float32 arithmetic inside a float64 backward (errors of ~1e-8 of
    # every element) leaves the fast path; what leaves it is judged by the rounding
    # model (oracle.judge.rounding), which knows the size of each element's terms
    "float64": Tolerance(rtol=1e-10, atol=1e-10, k=None),
}


#: Outputs in float64 get more room than gradients: two formulas for one forward can
#: differ in the 6th digit of an output that cancellation made tiny (0.5 x (1 + tanh(..))
#: at x = -6 is 1e-11), and no finite-difference arbiter exists for a forward value.
_FORWARD = {"float32": _DEFAULTS["float32"], "float64": Tolerance(rtol=1e-5, atol=1e-7, k=None)}


def default_tolerance(dtype: str) -> Tolerance:
    return _DEFAULTS[dtype]


def forward_tolerance(dtype: str) -> Tolerance:
    return _FORWARD[dtype]


def user_tolerance(rtol: float, atol: float, dtype: str) -> Tolerance:
    """torch.testing's rule with the user's ``rtol`` and ``atol`` (both required)."""
    if dtype not in _DEFAULTS:
        raise ValueError(f"unknown dtype {dtype!r}")
    rtol, atol = check_non_negative(rtol, "rtol"), check_non_negative(atol, "atol")
    return Tolerance(rtol=rtol, atol=atol, k=None, scaled_atol=False)


def user_tolerances(
    rtol: Any, atol: Any, dtypes: Sequence[str], arguments: Collection[int | str]
) -> dict[str, dict[int | str | None, Tolerance]] | None:
    """Per dtype, the user's tolerance by argument (``None``: outputs and every argument).

    ``arguments``: the keys a dict may use (differentiated argument indices, parameter
    names). Returns None when neither ``rtol`` nor ``atol`` is given.
    """
    if rtol is None and atol is None:
        return None
    check_user_tolerances(rtol, atol, arguments)
    if not isinstance(rtol, Mapping):
        return {d: {None: user_tolerance(rtol, atol, d)} for d in dtypes}
    return {d: {k: user_tolerance(rtol[k], atol[k], d) for k in rtol} for d in dtypes}


@dataclass(frozen=True)
class Comparison:
    ok: bool
    mismatched: int
    total: int
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    allowed_at_worst: float
    actual_at_worst: float
    expected_at_worst: float
    nonfinite_mismatch: bool


def _scale(x: np.ndarray) -> float:
    """The largest finite magnitude in ``x`` (one pass unless ``x`` holds NaN/inf)."""
    if not x.size:
        return 0.0
    m = float(np.max(np.abs(x)))
    if np.isfinite(m):
        return m
    finite = np.abs(x[np.isfinite(x)])
    return float(finite.max()) if finite.size else 0.0


def compare(
    actual: np.ndarray,
    expected: np.ndarray,
    tol: Tolerance,
    *,
    twin_lowp: np.ndarray | None = None,
    scale: float | Callable[[], float] | None = None,
) -> Comparison:
    """Compare ``actual`` (torch) to ``expected`` (the twin, or its float64 reference).

    ``twin_lowp``: the twin's own value in the low precision, to allow ``tol.k`` times
    its error against ``expected``. ``scale``: fallback scale when ``expected`` is all
    zeros (the largest gradient of the other arguments, say), or a function giving it.
    """
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        raise ValueError(f"compare: shapes differ: {a.shape} vs {e.shape}")
    s = _scale(e) or (scale() if callable(scale) else scale or 0.0) or 1.0
    if twin_lowp is None and a.size:
        # the common case, in one pass in the arrays' own dtype: everything within
        # tolerance (NaN fails this test and takes the full path below)
        atol = tol.atol * s if tol.scaled_atol else tol.atol
        with np.errstate(invalid="ignore", over="ignore"):
            a1, e1 = np.atleast_1d(a), np.atleast_1d(e)  # in-place ops need arrays, not scalars
            err = np.subtract(a1, e1)
            np.abs(err, out=err)
            allowed = np.abs(e1)
            allowed *= tol.rtol
            allowed += atol + tol.floor
            # an infinite reference allows nothing here (rtol x inf would allow any value):
            # only the same infinity passes, on the full path below
            allowed[~np.isfinite(allowed)] = 0.0
            if bool(np.less_equal(err, allowed).all()):
                return Comparison(True, 0, int(a.size), 0.0, 0.0, (), 0.0, 0.0, 0.0, False)
    a, e = a.astype(np.float64, copy=False), e.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        both_nan = np.isnan(a) & np.isnan(e)
        same_inf = np.isinf(a) & np.isinf(e) & (np.sign(a) == np.sign(e))
        finite = np.isfinite(a) & np.isfinite(e)
        err = np.where(finite, np.abs(a - e), np.inf)
        err = np.where(both_nan | same_inf, 0.0, err)
        if tol.scaled_atol:
            allowed = tol.rtol * np.abs(e) + tol.atol * s + tol.floor
        else:
            allowed = tol.rtol * np.abs(e) + tol.atol + tol.floor
        if twin_lowp is not None and tol.k is not None:
            lowp = np.asarray(twin_lowp, dtype=np.float64)
            twin_err = np.where(np.isfinite(lowp) & np.isfinite(e), np.abs(lowp - e), 0.0)
            allowed = allowed + tol.k * twin_err
        allowed = np.where(np.isfinite(allowed), allowed, 0.0)
        bad = err > allowed
        rel = np.where(
            np.abs(e) > 0,
            err / np.where(np.abs(e) > 0, np.abs(e), 1.0),
            np.where(err > 0, np.inf, 0.0),
        )
    n_bad = int(bad.sum())
    total = int(a.size)
    if a.size == 0:
        return Comparison(True, 0, 0, 0.0, 0.0, (), 0.0, 0.0, 0.0, False)
    # the worst element: the largest excess over what was allowed
    excess = np.where(bad, err - allowed, -np.inf) if n_bad else err
    flat = int(np.argmax(np.where(np.isnan(excess), np.inf, excess)))
    idx = tuple(int(i) for i in np.unravel_index(flat, a.shape))
    nonfinite_mismatch = bool(np.any((np.isfinite(a) != np.isfinite(e)) & ~both_nan & ~same_inf))
    return Comparison(
        ok=n_bad == 0,
        mismatched=n_bad,
        total=total,
        max_abs_error=float(err.max()),
        max_rel_error=float(rel.max()),
        worst_index=idx,
        allowed_at_worst=float(allowed.flat[flat]),
        actual_at_worst=float(a.flat[flat]),
        expected_at_worst=float(e.flat[flat]),
        nonfinite_mismatch=nonfinite_mismatch,
    )


def float64_first(sides: Any, dtype: str) -> bool:
    """Whether a float32 example is first compared with the twin in float64, under the
    oracle's own tolerances: what the float32 judgement passes in any case (it allows the
    tolerance around the float64 reference, plus the twin's float32 error). A user's
    ``rtol``/``atol`` are applied in the dtype under test, as documented: not then."""
    return dtype == "float32" and not (getattr(sides, "user_tol", None) or {}).get(dtype)


def tolerance_of(
    sides: Any, dtype: str, *, forward: bool = False, argument: int | str | None = None
) -> Tolerance:
    """The pair's tolerance for the outputs (``forward``) or one argument's gradient: the
    user's (``rtol``/``atol``) where given, else the oracle's rule."""
    user = (sides.user_tol or {}).get(dtype, {})
    if not forward and argument in user:
        return user[argument]
    if None in user:
        return user[None]
    return forward_tolerance(dtype) if forward else default_tolerance(dtype)
