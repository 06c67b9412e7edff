"""oracle.registration: the registry of twins, declared findings, catalog rows."""

from __future__ import annotations

from types import SimpleNamespace

import jax.numpy as jnp
import pytest
import torch

from oracle import registration
from oracle.inputs.specs import TensorSpec
from oracle.registration import Known, Pair, Registry, _compact, registry, twin
from oracle.report.records import Divergence, RunSummary


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch):
    """Each test registers into a registry of its own."""
    monkeypatch.setattr(registration, "_REGISTRY", {})


def finding(dtype="float32", blame="torch", diagnosis="scaled", factor=2.0, argument=0):
    return Divergence(
        "vjp", argument, blame, diagnosis, "off", dtype, "cpu", factor=factor, max_abs_error=1.5
    )


# --- Known ------------------------------------------------------------------------


def test_known_matches_on_every_field_it_names_and_any_value_of_a_tuple():
    known = Known("doubles", argument=(0, 1), diagnosis="scaled", factor=2.0)
    assert known.matches(finding())
    assert known.matches(finding(argument=1))
    assert not known.matches(finding(argument=2))
    assert not known.matches(finding(diagnosis="zero"))
    assert not known.matches(finding(factor=2.1))  # the factor within 1e-3 relative
    assert known.matches(finding(factor=2.0005))
    assert not known.matches(finding(factor=None))


def test_known_never_matches_a_kink():
    assert not Known("any").matches(finding(blame="kink"))


def test_known_describes_what_it_asks_for():
    assert (
        Known("x", check="vjp", argument=(0, 1), factor=2.0).describe()
        == "check=vjp, argument=0|1, factor=2"
    )
    assert Known("x").describe() == "any finding"


def test_known_dtypes_say_where_the_finding_must_show():
    assert Known("x", dtypes="float32").expected_in("float32")
    assert not Known("x", dtypes="float32").expected_in("float64")
    assert Known("x").expected_in("float64")


def test_known_needs_a_sentence_saying_what_is_wrong():
    with pytest.raises(TypeError, match="why must be a non-empty sentence"):
        Known("")


# --- outcomes: one row per run, judged against the declaration -------------------


def pair(known=None):
    return Pair("p", torch.sin, jnp.sin, (TensorSpec(("n",)),), None, known, "tests")


def report(*divergences):
    runs = [
        RunSummary(
            "float32",
            "cpu",
            examples=10,
            kinks=1,
            capabilities={"vjp": "ok", "jvp": "unsupported: no jvp"},
        ),
        RunSummary("float64", "cpu", examples=12),
    ]
    return SimpleNamespace(runs=runs, divergences=list(divergences))


def rows(p, rep):
    return [(r.dtype, r.outcome, r.expected) for r in p.outcomes(rep)]


def test_a_clean_pair_is_clean_and_expected():
    (row32, _) = pair().outcomes(report())
    assert (row32.outcome, row32.expected, row32.examples, row32.kinks) == ("clean", True, 10, 1)
    assert row32.capabilities == "jvp=no"


def test_an_unexpected_finding_is_diverged_with_its_detail():
    (row32, row64) = pair().outcomes(report(finding("float32")))
    assert (row32.outcome, row32.expected, row32.note) == ("diverged", False, "off")
    assert (row32.blame, row32.diagnosis, row32.worst_error) == ("torch", "scaled", 1.5)
    assert row64.outcome == "clean"


def test_a_specimen_flagged_as_declared_is_expected_and_missed_where_it_must_show():
    p = pair(Known("doubles", diagnosis="scaled"))
    assert rows(p, report(finding("float32"))) == [
        ("float32", "flagged", True),
        ("float64", "missed", False),
    ]
    assert p.outcomes(report())[1].note == "expected: diagnosis=scaled"


def test_a_specimen_flagged_otherwise_is_not_expected():
    p = pair(Known("doubles", diagnosis="scaled"))
    (row32, _) = p.outcomes(report(finding("float32", diagnosis="zero")))
    assert (row32.outcome, row32.expected) == ("flagged", False)
    assert row32.note == "flagged, but not as declared (diagnosis=scaled)"


def test_a_specimen_declared_for_one_dtype_is_expected_clean_in_the_other():
    p = pair(Known("float32 only", dtypes="float32"))
    assert rows(p, report(finding("float32"))) == [
        ("float32", "flagged", True),
        ("float64", "clean", True),
    ]


def test_compact_capabilities_leave_out_the_vjp_and_shorten_statuses():
    table = {
        "vjp": "ok",
        "jvp": "unsupported: x",
        "hvp": "diverged",
        "vmap": "not checked",
        "contract": "ok",
    }
    assert _compact(table) == "jvp=no,hvp=X,vmap=-,contract=ok"


# --- the registry and @twin -------------------------------------------------------


class DoubleSin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        return g


class Scaled(torch.nn.Module):
    def __init__(self, factor=1.0):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return self.factor * x


def test_twin_registers_under_the_snake_case_name_and_returns_the_object_unchanged():
    out = twin(jnp.sin, inputs=[TensorSpec(("n",))], max_examples=7)(DoubleSin)
    assert out is DoubleSin
    p = registry()["double_sin"]
    assert p.torch_fn == DoubleSin.apply and p.module == __name__
    assert p.options == {"max_examples": 7}


def test_a_module_class_is_built_with_its_module_kwargs():
    twin(lambda x: 3 * x, inputs=[TensorSpec(("n",))], module_kwargs={"factor": 3.0})(Scaled)
    assert registry()["scaled"].torch_fn.factor == 3.0


def test_a_known_divergence_given_as_text_becomes_a_known():
    twin(jnp.sin, inputs=[TensorSpec(("n",))], known_divergence="wrong on purpose")(DoubleSin)
    assert registry()["double_sin"].known_divergence == Known("wrong on purpose")


def test_a_name_taken_by_another_module_is_refused():
    twin(jnp.sin, inputs=[TensorSpec(("n",))])(DoubleSin)
    registration._REGISTRY["double_sin"].module = "elsewhere"
    with pytest.raises(
        ValueError, match="'double_sin' is already registered by elsewhere; pass name="
    ):
        twin(jnp.sin, inputs=[TensorSpec(("n",))])(DoubleSin)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"jax_fn": "manual"}, 'jax_fn must be callable or "auto"', id="jax-fn"),
        pytest.param(
            {"jax_fn": jnp.sin, "known_divergence": 3},
            "known_divergence must be a string",
            id="known",
        ),
    ],
)
def test_twin_misuse_is_a_type_error(kwargs, message):
    with pytest.raises(TypeError, match=message):
        twin(inputs=[TensorSpec(("n",))], **kwargs)


def test_the_registry_names_what_is_registered_when_a_name_is_missing():
    reg = Registry({"a": pair(), "b": pair()})
    with pytest.raises(KeyError, match="no registered pair named 'c'; registered: a, b"):
        reg["c"]
    assert reg.names() == ["a", "b"] and len(reg) == 2 and "a" in reg


def test_in_modules_keeps_the_pairs_of_a_module_and_its_submodules():
    def at(module):
        return Pair(module, torch.sin, jnp.sin, (), None, None, module)

    reg = Registry({m: at(m) for m in ("losses", "losses.cross", "losses_extra", "other")})
    assert reg.in_modules(["losses"]).names() == ["losses", "losses.cross"]
