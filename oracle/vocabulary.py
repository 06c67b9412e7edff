"""The oracle's words: the checks, diagnoses, blames, reasons and phases of a finding.

Plain names and no imports: the command line and the pytest plugin (which stay light),
the registry's :class:`~oracle.registration.Known`, the judges and the report read them from
here. Code branches on these codes, never on a message: messages are for people.

To add a check, write its module under ``oracle/judge/checks/`` (a ``CHECK`` object, see
:class:`oracle.judge.checks.base.Check`) and add one line to :data:`CHECKS`; to add a
diagnosis, add one line to :data:`DIAGNOSES` and return it from the judge that finds it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CheckName",
    "CHECKS",
    "CHECK_NAMES",
    "EXTRA",
    "FINDING_CHECKS",
    "DIAGNOSES",
    "BLAMES",
    "REASONS",
    "DTYPE_NAMES",
    "LOW_DTYPES",
    "AUTOCAST_DTYPES",
    "DEFAULT_DTYPES",
]

#: the dtypes checked when none are named
DEFAULT_DTYPES: tuple[str, ...] = ("float32", "float64")
#: the dtypes kernels are written for: judged by the error budget (oracle.judge.budget)
LOW_DTYPES: tuple[str, ...] = ("bfloat16", "float16")
#: float32 inputs, torch run under ``torch.autocast`` to the named low dtype; judged by
#: the same error budget
AUTOCAST_DTYPES: tuple[str, ...] = ("autocast-bfloat16", "autocast-float16")
#: the dtypes ``dtypes=`` accepts
DTYPE_NAMES: tuple[str, ...] = DEFAULT_DTYPES + LOW_DTYPES + AUTOCAST_DTYPES


@dataclass(frozen=True)
class CheckName:
    """A check ``checks=`` accepts: its name, what it compares (for messages), the
    module of ``oracle.judge.checks`` that implements it, and whether the default set
    runs it (False: only when asked for; its capability row shows only then)."""

    name: str
    compares: str
    module: str
    default: bool = True


#: every check ``checks=`` accepts, in the order the capability table shows them; the
#: first is the first-order vjp, run on every example by the search itself
CHECKS: dict[str, CheckName] = {
    c.name: c
    for c in (
        CheckName("vjp", "Gradients", "vjp"),
        CheckName("jvp", "Tangents", "jvp"),
        CheckName("hvp", "Second derivatives", "hvp"),
        CheckName("vmap", "Batched results", "vmap"),
        CheckName("contract", "Results", "contract"),
        CheckName("opcheck", "Registrations", "opcheck", default=False),
        CheckName("compile", "Compiled results", "compiled", default=False),
    )
}
CHECK_NAMES: tuple[str, ...] = tuple(CHECKS)
#: the checks beyond the first-order vjp (scheduled by ``oracle.judge.plan``)
EXTRA: tuple[str, ...] = CHECK_NAMES[1:]
#: what ``Divergence.check`` may say: the checks, plus the forward and errors
FINDING_CHECKS: tuple[str, ...] = ("forward", *CHECK_NAMES, "error")

#: ``Divergence.diagnosis``: what a finding looks like (the contract's vocabulary)
DIAGNOSES: dict[str, str] = {
    "scaled": "torch = c x the reference, c != 1, -1 (the factor is in .factor)",
    "sign_flipped": "torch = -1 x the reference",
    "transposed": "torch gives the transpose of the reference",
    "zero": "torch gives zeros where the reference does not",
    "disconnected": "no gradient reaches the input at all (the graph is cut inside)",
    "ignores_grad_output": "the backward gives the same result whatever grad_output",
    "not_linear_in_grad_output": "the backward is not linear in grad_output",
    "nonfinite": "NaN or inf on one side only",
    "error": "one side raised (or ran past its time limit)",
    "precision": "torch computes at a lower precision than the dtype under test",
    "nondeterministic": "the same call twice gives different answers",
    "mutates_input": "the Function changes an input in place without mark_dirty",
    "mutates_grad_output": "the backward changes grad_output in place",
    "layout": "wrong for transposed, sliced or expanded tensors only",
    "unsupported": "torch refuses a transform that was asked for",
    "mismatch": "none of the above",
}

#: ``Divergence.blame``: which side finite differences side with
BLAMES: tuple[str, ...] = ("torch", "twin", "kink", "unknown")

#: ``Divergence.reason``: the kind of a finding within its check, for code to branch on
#: ("" for an ordinary disagreement of values)
REASONS: dict[str, str] = {
    "timeout": "a side ran past its time limit (the run ends there: a hang is not shrunk)",
    "raised": "a side raised",
    "autocast": "torch raised under torch.autocast only (the same example runs without it)",
    "refused": "torch (or the twin) refuses a transform that was asked for",
    "setting_changed": "user code changed a global setting (put back by the oracle)",
    "spec_failed": "an input spec failed on a drawn value",
    "oracle_failed": "the oracle itself failed on this pair",
    "nothing_compared": "no output or gradient was compared in the whole run",
    "structure": "the outputs differ in structure (count, shape, kind)",
    "float32_output": "torch returned a float32 output in a float64 run",
    "output_precision": "a float64 output off by float32's rounding of the terms it is made of",
    "not_supported": "the pair uses what the oracle cannot check yet (complex outputs): the run ends there",
}
