"""Checks beyond the first derivative: jvp, hvp, vmap, the Function contract, Modules.

Each wrong specimen (tests/contract_specimens.py) has a right first-order backward, so
the vjp check alone passes it; each test asks for the finding it must produce, and the
correct ones for no false alarm.
"""

from __future__ import annotations

import pytest

import oracle
from oracle import choice, integers, tensor
from oracle.vocabulary import CHECKS as _TABLE
from tests import contract_specimens as cs

#: the default set's checks (the capability table's rows unless others are asked for)
CHECKS = [c for c, info in _TABLE.items() if info.default]

# small dims and few examples: every new shape costs the twin a compilation
FAST = {"devices": ["cpu"], "seed": 0, "max_examples": 8}
VEC = [tensor("n", low=-3, high=3)]
MAT = [tensor("m n", low=-3, high=3)]
# one size per dimension: one compilation per program and dtype
SMALL = {"n": (3, 3), "m": (2, 2)}


def verify(fn, twin, inputs, **kw):
    used = {d for s in inputs for d in getattr(s, "shape", ()) if isinstance(d, str)}
    dims = {k: v for k, v in SMALL.items() if k in used}
    return oracle.verify(fn, twin, inputs, **{"dims": dims, **FAST, **kw})


def only(report, check):
    """The findings of one check, asserting there are some in every dtype."""
    found = [d for d in report.findings if d.check == check]
    assert {d.dtype for d in found} == {"float32", "float64"}, report
    return found


# --- correct Functions: no false alarm ------------------------------------------------


@pytest.mark.parametrize("fn, twin", [(cs.Exp, cs.exp_twin), (cs.XSinX, cs.x_sin_x_twin)])
def test_a_correct_function_passes_every_check_on_every_example(fn, twin):
    report = verify(fn.apply, twin, MAT, checks=list(CHECKS))
    assert report.ok, report
    assert report.capabilities == dict.fromkeys(CHECKS, "ok")


def test_a_correct_function_passes_the_default_set_with_every_transform_looked_at():
    report = verify(cs.XSinX.apply, cs.x_sin_x_twin, VEC)
    assert report.ok, report
    assert report.capabilities == dict.fromkeys(CHECKS, "ok")


def test_the_extra_checks_skip_kinks_and_raise_no_false_alarm_there():
    # elements drawn from {-1, 0, 1}: x = 0 is abs's kink, where torch and JAX differ
    inputs = [choice("n", [-1.0, 0.0, 1.0], grad=True)]
    report = verify(cs.Abs.apply, cs.abs_twin, inputs, checks=list(CHECKS), max_examples=20)
    assert report.ok, report
    assert report.kinks


# --- jvp ------------------------------------------------------------------------------


def test_flags_a_jvp_off_by_two_whose_backward_is_right():
    report = verify(cs.ExpJvpDoubled.apply, cs.exp_twin, VEC)
    for d in only(report, "jvp"):
        # the forward-mode tangent is 2 t exp(x) where jax.jvp gives t exp(x)
        assert (d.argument, d.blame, d.diagnosis, d.factor) == (0, "torch", "scaled", 2.0)
    assert report.capabilities["vjp"] == "ok"
    assert report.capabilities["jvp"] == "diverged"


def test_a_function_without_jvp_is_unsupported_not_a_finding_by_default():
    report = verify(cs.SinOldStyle.apply, cs.sin_twin, VEC)
    assert report.ok, report
    assert report.capabilities["jvp"].startswith("unsupported: no jvp staticmethod")


def test_a_function_without_jvp_is_a_finding_when_jvp_is_asked_for():
    report = verify(cs.SinOldStyle.apply, cs.sin_twin, VEC, checks=["jvp"])
    for d in only(report, "jvp"):
        assert (d.diagnosis, d.blame) == ("unsupported", "torch")


def test_an_asked_check_torch_refuses_is_one_finding_and_the_others_still_run():
    report = verify(cs.SinOldStyle.apply, cs.sin_twin, VEC, checks=["jvp", "hvp", "contract"])
    assert [(d.check, d.diagnosis) for d in report.findings] == [("jvp", "unsupported")] * 2
    # the refusal does not stop the search: hvp and contract saw every example
    assert report.capabilities["hvp"] == report.capabilities["contract"] == "ok"
    assert all(r.examples == FAST["max_examples"] for r in report.runs)


# --- float32-only Functions: a float64 error is no refusal of the transform -------------

F32_ONLY = {"dtypes": ["float32"], "checks": ["vjp", "jvp", "hvp", "vmap"]}
ROWS = [tensor("n 2", low=-1, high=1)]


def test_a_correct_float32_only_function_passes_the_transforms():
    report = verify(cs.TanhLinearF32.apply, cs.tanh_linear_twin, ROWS, **F32_ONLY)
    assert report.ok, report
    assert {report.capabilities[c] for c in ("jvp", "hvp", "vmap")} == {"ok"}


def test_a_float32_only_function_with_a_wrong_jvp_is_flagged_not_called_unsupported():
    """Judging the float32 disagreement again in float64 makes torch_fn raise (its own
    float32 weight); that used to be reported as torch refusing the jvp."""
    report = verify(cs.TanhLinearF32JvpDoubled.apply, cs.tanh_linear_twin, ROWS, **F32_ONLY)
    assert report.capabilities["jvp"] == "diverged", report
    (d,) = [d for d in report.findings if d.check == "jvp"]
    assert (d.blame, d.diagnosis, d.factor) == ("torch", "scaled", 2.0)


def test_a_float32_only_function_whose_backward_detaches_grad_output_is_flagged():
    report = verify(cs.TanhLinearF32DetachedGrad.apply, cs.tanh_linear_twin, ROWS, **F32_ONLY)
    assert report.capabilities["hvp"] == "diverged", report
    (d,) = [d for d in report.findings if d.check == "hvp"]
    assert (d.blame, d.diagnosis) == ("torch", "zero")
    assert "with respect to the cotangent of output 0" in d.detail


# --- hvp ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(cs.SinSavedCos, id="cos-saved-without-graph"),
        pytest.param(cs.SinDetachedBackward, id="backward-through-numpy"),
    ],
)
def test_flags_a_backward_whose_own_derivative_is_lost(fn):
    report = verify(fn.apply, cs.sin_twin, VEC)
    for d in only(report, "hvp"):
        # d/dx of g cos(x) is -g sin(x); torch's backward has no graph, so it gives none
        assert (d.argument, d.blame, d.diagnosis) == (0, "torch", "zero")
    assert report.capabilities["vjp"] == "ok"


def test_once_differentiable_is_unsupported_not_a_finding_by_default():
    report = verify(cs.SinOnceDifferentiable.apply, cs.sin_twin, VEC)
    assert report.ok, report
    assert report.capabilities["hvp"] == (
        "unsupported: backward is @once_differentiable (no double backward)"
    )


def test_once_differentiable_is_a_finding_when_hvp_is_asked_for():
    report = verify(cs.SinOnceDifferentiable.apply, cs.sin_twin, VEC, checks=["hvp"])
    for d in only(report, "hvp"):
        assert (d.diagnosis, d.blame) == ("unsupported", "torch")
        assert "once_differentiable" in d.detail


# --- vmap -----------------------------------------------------------------------------


def test_an_old_style_function_is_unsupported_under_vmap():
    report = verify(cs.SinOldStyle.apply, cs.sin_twin, VEC, checks=["vmap"])
    for d in only(report, "vmap"):
        assert d.diagnosis == "unsupported"
        assert "setup_context" in d.detail


def test_flags_a_vmap_rule_with_the_wrong_out_dims():
    report = verify(cs.SinWrongOutDims.apply, cs.sin_twin, VEC)
    for d in only(report, "vmap"):
        # right with the batch first; wrong shape or values with the batch last
        assert (d.blame, d.diagnosis) == ("torch", "mismatch")
        assert "position 1" in d.detail
    assert report.capabilities["vmap"] == "diverged"


# --- contract -------------------------------------------------------------------------


def test_flags_a_forward_that_changes_its_input_without_mark_dirty():
    report = verify(cs.SinMutatesInput.apply, cs.sin_twin, VEC)
    for d in only(report, "contract"):
        assert (d.argument, d.blame, d.diagnosis) == (0, "torch", "mutates_input")


def test_flags_a_backward_that_writes_into_grad_output():
    # why the rule matters: in F(x) + w, d/dw is the incoming gradient, which F's
    # backward would have multiplied by cos(x) in place
    report = verify(cs.SinMutatesGradOutput.apply, cs.sin_twin, VEC)
    for d in only(report, "contract"):
        assert (d.blame, d.diagnosis) == ("torch", "mutates_grad_output")


def test_flags_a_backward_that_reads_its_input_through_contiguous_strides():
    inputs = [tensor("m n", low=-3, high=3), tensor("m n", low=-3, high=3, grad=False)]
    report = verify(cs.ScaleByRowStrided.apply, cs.scale_twin, inputs)
    for d in only(report, "contract"):
        assert (d.blame, d.diagnosis) == ("torch", "layout")
    assert report.capabilities["vjp"] == "ok"


def test_flags_a_backward_that_calls_view_on_a_transposed_grad_output():
    report = verify(cs.SinViewGrad.apply, cs.sin_twin, MAT)
    for d in only(report, "contract"):
        assert d.diagnosis == "layout"
        assert "raises on transposed" in d.detail and "view" in d.detail


def test_flags_a_wrong_branch_for_an_undefined_output_gradient():
    report = verify(cs.SinCosNoneBranch.apply, cs.sin_cos_twin, VEC)
    for d in only(report, "contract"):
        assert (d.blame, d.diagnosis) == ("torch", "mismatch")
        assert "only output 0 used" in d.detail


def test_flags_a_backward_that_gives_another_answer_the_second_time():
    report = verify(cs.SinChangesCtx.apply, cs.sin_twin, VEC)
    for d in only(report, "contract"):
        assert (d.blame, d.diagnosis) == ("torch", "nondeterministic")


def test_flags_a_non_differentiable_output_the_twin_differentiates():
    report = verify(cs.SinWithNonDifferentiableCopy.apply, cs.sin_double_twin, VEC)
    for d in only(report, "contract"):
        assert (d.blame, d.diagnosis) == ("torch", "disconnected")
        assert "output 1 is non-differentiable" in d.detail


# --- nn.Module parameters -------------------------------------------------------------

CE_INPUTS = [tensor("b c", low=-3, high=3), integers("b", low=0, high="c")]
CE_DIMS = {"b": (2, 2), "c": (3, 3)}


def test_flags_a_module_whose_temperature_gradient_has_the_wrong_sign():
    module = cs.TemperatureCrossEntropy(flip=True)
    report = verify(module, cs.temperature_ce_twin, CE_INPUTS, dims=CE_DIMS)
    found = only(report, "vjp")
    for d in found:
        assert (d.argument, d.blame, d.diagnosis) == ("temperature", "torch", "sign_flipped")
        assert set(d.example["params"]) == {"temperature"}


def test_a_correct_module_passes_with_its_parameters_differentiated():
    module = cs.TemperatureCrossEntropy()
    report = verify(module, cs.temperature_ce_twin, CE_INPUTS, dims=CE_DIMS)
    assert report.ok, report


def test_param_specs_draws_the_parameter_values():
    module = cs.TemperatureCrossEntropy(flip=True)
    specs = {"temperature": tensor("", low=0.5, high=3.0)}
    report = verify(module, cs.temperature_ce_twin, CE_INPUTS, dims=CE_DIMS, param_specs=specs)
    (d, *_) = only(report, "vjp")
    # drawn, then shrunk toward the low end of [0.5, 3], not the module's 1.5
    assert d.example["params"]["temperature"] != 1.5


@pytest.mark.parametrize(
    "param_specs, error, match",
    [
        pytest.param({"tau": tensor("")}, ValueError, "not a trainable parameter", id="name"),
        pytest.param({"temperature": tensor("3")}, ValueError, "shape", id="shape"),
        pytest.param({"temperature": 1.0}, TypeError, "oracle.tensor", id="spec"),
    ],
)
def test_param_specs_misuse_names_the_argument(param_specs, error, match):
    with pytest.raises(error, match=match):
        verify(
            cs.TemperatureCrossEntropy(), cs.temperature_ce_twin, CE_INPUTS, param_specs=param_specs
        )


# --- checks= and the capability table --------------------------------------------------


@pytest.mark.parametrize("checks", [["jvp", "hessian"], [], 3])
def test_checks_misuse_names_the_argument_and_the_allowed_values(checks):
    with pytest.raises((ValueError, TypeError), match="checks"):
        verify(cs.Exp.apply, cs.exp_twin, VEC, checks=checks)


def test_checks_not_asked_for_are_not_checked():
    report = verify(cs.SinSavedCos.apply, cs.sin_twin, VEC, checks=["vjp"])
    assert report.ok, report  # its second derivative is wrong, but hvp was not asked for
    assert report.capabilities == {**dict.fromkeys(CHECKS, "not checked"), "vjp": "ok"}


def test_the_capability_table_is_in_the_text_and_the_json():
    report = verify(cs.SinOnceDifferentiable.apply, cs.sin_twin, VEC)
    text = str(report)
    assert "capability" in text
    assert "hvp       unsupported: backward is @once_differentiable" in text
    assert report.to_dict()["capabilities"] == report.capabilities
    assert all(r["capabilities"] for r in report.to_dict()["runs"])


def test_known_declares_the_new_checks_and_diagnoses():
    known = oracle.Known("jvp doubled", check="jvp", diagnosis="scaled", argument="temperature")
    assert known.check == ("jvp",) and known.argument == ("temperature",)
    for diagnosis in ("mutates_input", "mutates_grad_output", "layout", "unsupported"):
        assert oracle.Known("x", check="contract", diagnosis=diagnosis).diagnosis == (diagnosis,)


# --- the pieces, on hand-worked values ----------------------------------------------------


def test_statuses_combine_to_the_one_that_says_most():
    from oracle.report.capabilities import merge, worse

    assert worse("ok", "unsupported: no jvp") == "unsupported: no jvp"
    assert worse("diverged", "unsupported: no jvp") == "diverged"
    assert worse("not checked", "ok") == "ok"
    # one run refused vmap, the other never got that far: the refusal shows
    runs = [{"vmap": "unsupported: no setup_context"}, {"vmap": "not checked", "vjp": "ok"}]
    assert merge(runs)["vmap"] == "unsupported: no setup_context"
    assert merge(runs)["vjp"] == "ok" and merge(runs)["hvp"] == "not checked"


def test_checks_given_as_text_are_validated_and_put_in_order():
    from oracle.validation import normalize_checks

    assert normalize_checks("vmap, jvp") == ("jvp", "vmap")
    assert normalize_checks(None) is None


@pytest.mark.parametrize(
    "exc, reason",
    [
        pytest.param(
            RuntimeError("... it must override the setup_context staticmethod ..."),
            "forward(ctx, ...) without setup_context (torch.func transforms need it)",
            id="setup_context",
        ),
        pytest.param(
            NotImplementedError("You must implement the jvp function for custom ..."),
            "no jvp staticmethod (forward-mode AD)",
            id="jvp",
        ),
        pytest.param(
            RuntimeError("vmap: It looks like you're calling .item() on a Tensor"),
            "calls .item() inside (vmap refuses it)",
            id="item",
        ),
        pytest.param(ValueError("odd\nsecond line"), "ValueError: odd", id="other"),
    ],
)
def test_a_refusal_is_named_from_torchs_error(exc, reason):
    from oracle.judge.checks.transform import unsupported_reason

    assert unsupported_reason(exc) == reason


def test_the_campaign_profile_looks_at_every_example_with_the_default_set():
    from hypothesis import settings

    from oracle.judge.plan import DEFAULT_EXAMPLES, Beyond
    from oracle.search.profiles import CAMPAIGN_PROFILE
    from oracle.search.runner import campaign_profile_loaded
    from oracle.vocabulary import EXTRA

    previous = settings.get_current_profile_name()
    settings.load_profile(CAMPAIGN_PROFILE)
    try:
        every = campaign_profile_loaded()
    finally:
        settings.load_profile(previous)
    assert every
    beyond = Beyond(None, every=every)
    beyond.done = DEFAULT_EXAMPLES  # past the default set's few examples
    # every example, with the default set (opcheck and compile run only when asked)
    assert beyond._due(None, ("any signature",)) == [c for c in EXTRA if _TABLE[c].default]
    assert not campaign_profile_loaded()  # under the test suite's own profile
    assert not Beyond(None, every=campaign_profile_loaded()).every
