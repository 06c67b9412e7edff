"""``torch.library`` custom ops as ``torch_fn``: the op object (``@custom_op``), its
``torch.ops.ns.name`` packet or an overload (``.default``).

What torch does with such an op under the checks beyond the vjp, measured on torch 2.13:
the reverse mode works through ``register_autograd``; forward-mode AD gives *no* tangent
and no error (the op has no forward-mode rule, and ``register_autograd`` cannot give it
one); ``torch.func.vmap`` of the op works (with torch's per-example fallback unless
``register_vmap`` gives a batching rule), but ``torch.func`` transforms of its gradient
raise, since the Function ``register_autograd`` builds has no ``setup_context``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["custom_op_name", "NO_FORWARD_MODE", "NO_FUNC_GRADIENT"]


def custom_op_name(fn: Any) -> str | None:
    """``"ns::name"`` when ``fn`` is a ``torch.library`` custom op (or one of its
    packets or overloads), else None."""
    import torch

    try:
        from torch._library.custom_ops import CustomOpDef
    except ImportError:  # pragma: no cover (torch without torch.library custom ops)
        CustomOpDef = ()  # noqa: N806
    if CustomOpDef and isinstance(fn, CustomOpDef):
        return fn._qualname
    if isinstance(fn, torch._ops.OpOverloadPacket):
        return fn._qualified_op_name
    if isinstance(fn, torch._ops.OpOverload):
        return fn.name()
    return None


def NO_FORWARD_MODE(name: str) -> str:  # noqa: N802  (a message, named as a constant)
    return (
        f"torch.library custom op {name} has no forward-mode AD rule: torch gives no tangent "
        "(as if zero) without an error, and register_autograd covers the reverse mode only; "
        "to check a jvp, call the op inside a torch.autograd.Function with a jvp staticmethod"
    )


def NO_FUNC_GRADIENT(name: str) -> str:  # noqa: N802
    return (
        f"torch.func transforms cannot differentiate torch.library custom op {name} "
        "(register_autograd's backward is not a torch.func Function: torch 2.13 asks for "
        "setup_context); vmap of the op itself works"
    )
