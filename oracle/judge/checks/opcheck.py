"""``opcheck``: ``torch.library.opcheck`` on the drawn examples of a ``torch.library``
custom op, each failure a ``contract`` finding.

The oracle checks an op's values (its gradient against the twin's); ``opcheck`` checks
its registration: the schema (aliasing, mutation), the fake kernel against the real one,
the autograd registration, and the compiled path (``test_aot_dispatch_dynamic``). A
wrong backward passes ``opcheck``; a wrong fake kernel passes the value checks: one call
with ``checks=["vjp", "opcheck"]`` covers both. Only when asked (it compiles).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from ...pair.bridge import cast_values, precision_scope, to_torch
from ...pair.custom_ops import custom_op_name
from ...report.records import Divergence
from ..findings import Verdict, divergence
from .base import Check
from .transform import Refused, refusal_finding


def _run(
    sides: Any,
    values: Sequence[Any],
    seed: int,
    dtype: str,
    device: str,
    *,
    asked: bool,
    thorough: bool,
) -> tuple[list[Divergence], str]:
    op = custom_op_name(sides.torch.fn)
    if op is None:
        r = Refused(
            "torch",
            "torch_fn is not a torch.library custom op (opcheck checks an op's registration)",
        )
        return ([refusal_finding("opcheck", r, dtype, device)] if asked else []), (
            f"unsupported: {r.reason}"
        )
    specs = sides.specs
    with precision_scope(dtype, device):
        args = to_torch(cast_values(values, specs, dtype), specs, dtype, device)
        args = [
            a.detach().requires_grad_(getattr(s, "grad", False)) if torch.is_tensor(a) else a
            for a, s in zip(args, specs, strict=True)
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = sides.torch.guard.call(
                "torch",
                "opcheck",
                lambda: torch.library.opcheck(sides.torch.fn, tuple(args), raise_exception=False),
            )
    failed = {k: v for k, v in result.items() if v != "SUCCESS"}
    found = [
        divergence(
            "contract",
            Verdict(
                "torch",
                "mismatch",
                f"torch.library.opcheck({op}): {test} fails: "
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}",
                phase="opcheck",
            ),
            dtype=dtype,
            device=device,
        )
        for test, exc in failed.items()
    ]
    return found, "diverged" if found else "ok"


CHECK = Check("opcheck", run=_run)
