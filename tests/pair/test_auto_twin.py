"""The automatic twin (``jax_fn="auto"``): built from torch_fn's forward by torchax.

Its tests skip when torchax is not installed (``pip install 'gradient-oracle[auto]'``);
``make test`` installs it with the ``dev`` extra. The eager path for twins that cannot
be traced (data-dependent shapes) serves hand twins too and is tested without torchax.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import Phase, settings

import losses
import oracle
from oracle import tensor
from oracle.pair.auto_twin import _named_overload_fallback, auto_twin
from tests import auto_pairs as ap
from tests import specimens as sp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

needs_torchax = pytest.mark.skipif(
    importlib.util.find_spec("torchax") is None,
    reason="torchax is not installed: pip install 'gradient-oracle[auto]'",
)


def auto_verify(torch_fn, inputs, **kwargs):
    kwargs = {"seed": 0, "max_examples": 10, "devices": "cpu", **kwargs}
    return oracle.verify(torch_fn, "auto", inputs, **kwargs)


def run_python(code: str, tmp_path) -> str:
    path = tmp_path / "snippet.py"
    path.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# --- the catalog's Functions -------------------------------------------------------


@needs_torchax
@pytest.mark.parametrize("name", ["custom_exp", "smooth_round"])
def test_flags_the_catalogs_doubled_backwards_as_scaled_by_2_blamed_on_torch(name):
    # CustomExp and SmoothRound double their derivative on purpose (losses/_functions.py);
    # the automatic twin differentiates their forward, so it sees the factor 2.
    pair = oracle.registry()[name]
    report = auto_verify(pair.torch_fn, pair.inputs, dims=pair.dims)
    assert {d.dtype for d in report.findings} == {"float32", "float64"}, report
    for d in report.findings:
        assert (d.check, d.argument, d.blame, d.diagnosis) == ("vjp", 0, "torch", "scaled")
        assert d.factor == pytest.approx(2.0, rel=1e-3)
        assert pair.known_divergence.matches(d)


@needs_torchax
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", ["smooth_round_corrected", "double_sin"])
def test_finds_nothing_in_the_catalogs_correct_functions(name, seed):
    pair = oracle.registry()[name]
    report = auto_verify(pair.torch_fn, pair.inputs, dims=pair.dims, seed=seed)
    assert report.ok, report
    assert sum(r.examples for r in report.runs) == 20  # 10 per dtype: nothing skipped


@needs_torchax
def test_its_gradient_is_the_forwards_not_the_hand_written_backwards():
    # CustomExp's backward returns 2 exp(x); the twin's vjp must be exp(x)
    twin = auto_twin(losses.CustomExp.apply)
    x = jnp.array([0.0, 1.0, -2.0])
    out, pull = jax.vjp(twin, x)
    np.testing.assert_allclose(pull(jnp.ones(3))[0], np.exp([0.0, 1.0, -2.0]), rtol=1e-6)


@needs_torchax
def test_is_a_jax_callable_for_jvp_hessian_and_vmap_like_the_hand_twin():
    # every check that takes a twin takes the automatic one: forward mode, second
    # derivatives and batching agree with the catalog's hand-written twin
    twin = auto_twin(losses.SmoothRoundCorrected.apply)
    hand = losses.smooth_round_jax
    x, v = jnp.array([0.2, 0.5, 0.9]), jnp.array([1.0, -0.5, 2.0])
    for got, want in [
        (jax.jvp(lambda a: twin(a, 7.0), (x,), (v,)), jax.jvp(lambda a: hand(a, 7.0), (x,), (v,))),
        (
            jax.hessian(lambda a: twin(a, 7.0).sum())(x),
            jax.hessian(lambda a: hand(a, 7.0).sum())(x),
        ),
        (
            jax.vmap(lambda a: twin(a, 7.0))(x[:, None]),
            jax.vmap(lambda a: hand(a, 7.0))(x[:, None]),
        ),
    ]:
        for g, w in zip(
            jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True
        ):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@needs_torchax
def test_translates_a_forward_that_makes_its_own_tensors():
    # torch.arange(...) with no device is a CPU tensor in torch; the twin makes it in JAX
    report = auto_verify(ap.RangeWeighted.apply, [tensor("b n")])
    assert report.ok, report


@needs_torchax
def test_computes_in_float64_when_the_run_is_float64():
    twin = auto_twin(losses.MyCustomFunction.apply)
    with jax.enable_x64(True):
        x = jnp.array([0.1, 0.2], dtype=jnp.float64)
        out, pull = jax.vjp(twin, x)
        assert out.dtype == jnp.float64
        assert pull(jnp.ones(2, jnp.float64))[0].dtype == jnp.float64


# --- what it cannot see, by construction ------------------------------------------


@needs_torchax
def test_reports_a_deliberate_straight_through_estimator_as_a_divergence():
    # the twin differentiates round itself (0 almost everywhere), not the surrogate
    report = auto_verify(ap.RoundSTE.apply, [tensor("n", low=-3, high=3)], dtypes="float64")
    assert [(d.check, d.blame) for d in report.findings] == [("vjp", "torch")], report


@needs_torchax
def test_cannot_find_a_bug_in_the_forward_it_shares_but_a_hand_twin_can():
    inputs = [tensor("n")]
    auto = auto_verify(ap.ForgetsTheTwo.apply, inputs, dtypes="float64")
    assert auto.ok, auto
    hand = oracle.verify(
        ap.ForgetsTheTwo.apply,
        losses.double_sin_jax,
        inputs,
        seed=0,
        max_examples=10,
        dtypes="float64",
    )
    assert "forward" in {d.check for d in hand.findings}, hand


# --- what it says about itself ---------------------------------------------------


@needs_torchax
def test_the_report_says_the_twin_was_automatic():
    report = auto_verify(sp.ScaledExp.apply, [tensor("n", low=-3, high=3)], dtypes="float64")
    assert str(report).splitlines()[0].startswith("[oracle] ScaledExp (automatic twin): ")
    assert report.to_dict()["twin"] == "auto"
    assert [d.to_dict()["twin"] for d in report.findings] == ["auto"]
    assert "twin=auto" in report.findings[0].headline()


def test_a_hand_twin_report_says_hand():
    report = oracle.verify(
        sp.GoodSin.apply, jnp.sin, [tensor("n")], seed=0, max_examples=5, dtypes="float32"
    )
    assert report.to_dict()["twin"] == "hand"
    assert "automatic" not in str(report)


@needs_torchax
def test_a_reproducer_of_an_automatic_twins_finding_replays_it(tmp_path):
    report = auto_verify(sp.ScaledExp.apply, [tensor("n", low=-3, high=3)], dtypes="float64")
    finding = report.findings[0]
    assert "auto_twin(torch_fn)" in finding.reproducer
    out = run_python(finding.reproducer, tmp_path)
    # ScaledExp doubles the derivative: torch's gradient is twice the twin's
    torch_g = float(out.split("torch:")[1].split()[0].strip("[]"))
    twin_g = float(out.split("twin:")[1].split()[0].strip("[]"))
    assert torch_g == pytest.approx(2 * twin_g, rel=1e-6)  # printed to 8 digits


# --- forwards it cannot translate ------------------------------------------------


@needs_torchax
@pytest.mark.parametrize(
    ("fn", "says"),
    [
        pytest.param(ap.NumpyDouble, "calls .numpy()", id="numpy"),
        pytest.param(ap.ItemScale, "calls .item()", id="item"),
        pytest.param(ap.ToListScale, "calls .tolist()", id="tolist"),
        pytest.param(ap.FloatScale, "calls float(tensor)", id="float"),
        pytest.param(ap.CpuNumpyDouble, "calls .cpu() or np.asarray(tensor)", id="cpu"),
    ],
)
def test_a_forward_that_leaves_jax_is_an_error_blamed_on_the_twin_never_a_pass(fn, says):
    report = auto_verify(fn.apply, [tensor("n")], max_examples=3)
    assert not report.ok
    assert {d.dtype for d in report.findings} == {"float32", "float64"}
    for d in report.findings:
        assert (d.check, d.blame, d.diagnosis) == ("error", "twin", "error")
        assert "the twin cannot be built automatically: " in d.detail
        assert says in d.detail


@needs_torchax
def test_an_operator_torchax_lacks_is_an_error_blamed_on_the_twin():
    report = auto_verify(ap.Geqrf.apply, [tensor("n n")], max_examples=3)
    assert {(d.dtype, d.check, d.blame) for d in report.findings} == {
        ("float32", "error", "twin"),
        ("float64", "error", "twin"),
    }
    assert "the twin cannot be built automatically: torchax does not implement" in (
        report.findings[0].detail
    )
    assert "geqrf" in report.findings[0].detail


@needs_torchax
def test_an_operator_computed_in_float32_is_reported_in_float64_runs_only():
    # torchax 0.0.13 computes lgamma in float32 even in a float64 run: judging a float64
    # gradient against it would be a false verdict, so the float64 run says so instead
    report = auto_verify(ap.LogGamma.apply, [tensor("n", low=0.5, high=5.0)])
    assert [d.dtype for d in report.findings] == ["float64"], report
    (d,) = report.findings
    assert (d.check, d.blame) == ("error", "twin")
    assert "computed in float32 inside a float64 run" in d.detail
    assert "lgamma" in d.detail


@needs_torchax
def test_a_forward_with_a_boolean_mask_is_checked_eagerly():
    # x[x > 0] has a data-dependent shape: jax.jit cannot trace it, the eager path can
    report = auto_verify(
        ap.MaskedSquare.apply, [tensor("n", low=-2, high=2)], dims={"n": (3, 3)}, max_examples=5
    )
    assert report.ok, report
    assert sum(r.examples for r in report.runs) == 10


@needs_torchax
def test_a_boolean_mask_forward_with_a_wrong_backward_is_still_flagged():
    wrong = ap._fn(ap._masked_square, lambda x, g: g * x * (x > 0), "HalfMaskedSquare")
    report = auto_verify(
        wrong.apply,
        [tensor("n", low=-2, high=2)],
        dims={"n": (3, 3)},
        dtypes="float64",
        # shrinking re-runs the eager twin many times, and the finding is the same without
        settings=settings(phases=[Phase.generate]),
    )
    assert {(d.check, d.blame, d.diagnosis) for d in report.findings} == {
        ("vjp", "torch", "scaled")
    }, report


def test_a_hand_twin_with_a_boolean_mask_runs_eagerly():
    def twin(x):
        return jnp.zeros_like(x).at[x > 0].set(x[x > 0] ** 2)

    report = oracle.verify(
        ap.MaskedSquare.apply,
        twin,
        [tensor("n", low=-2, high=2)],
        dims={"n": (3, 3)},
        seed=0,
        max_examples=5,
    )
    assert report.ok, report
    assert sum(r.examples for r in report.runs) == 10


# --- misuse and the environment --------------------------------------------------


@pytest.mark.parametrize("bad", ["Auto", "automatic", ""])
def test_jax_fn_must_be_callable_or_exactly_auto(bad):
    with pytest.raises(TypeError, match='jax_fn must be callable .* or "auto"'):
        oracle.verify(sp.GoodSin.apply, bad, [tensor("n")])


def test_registering_a_string_other_than_auto_is_a_type_error():
    with pytest.raises(TypeError, match='jax_fn must be callable or "auto"'):
        oracle.twin("autom", inputs=[tensor("n")])


def test_without_torchax_auto_is_an_import_error_saying_how_to_install(monkeypatch):
    import importlib.metadata

    real = importlib.metadata.version

    def version(name):
        if name == "torchax":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr("oracle.pair.auto_twin._torchax", None)
    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(ImportError, match=r"pip install 'gradient-oracle\[auto\]'"):
        oracle.verify(sp.GoodSin.apply, "auto", [tensor("n")])


def test_the_removed_overload_fallback_resolves_only_during_the_import():
    # the one torch internal the import relies on (torch._ops.OpOverloadPacket.__getattr__)
    prod = torch.ops.aten.prod
    with pytest.raises(AttributeError):
        _ = prod.dim_Dimname  # removed in torch 2.13: what torchax 0.0.13 asks for
    with _named_overload_fallback():
        got = prod.dim_Dimname
        # an existing overload, the very object torch has cached (not a copy)
        assert got is getattr(prod, prod.overloads()[0])
        with pytest.raises(AttributeError):
            _ = prod.no_such_overload  # other missing names still fail
    with pytest.raises(AttributeError):
        _ = prod.dim_Dimname


_AFTER_AUTO = """
import json, os, sys, torch, torch._decomp as decomp
import oracle, oracle.api, oracle.pair.auto_twin, oracle.cli, losses, tests.auto_pairs
from oracle import tensor
from tests import specimens as sp

imported_before = "torchax" in sys.modules
tables = {k: dict(v) for k, v in decomp.global_decomposition_table.items()}
fastpath = torch.backends.mha.get_fastpath_enabled()
report = oracle.verify(sp.GoodSin.apply, "auto", [tensor("n")], seed=0, max_examples=3)
state = {
    "imported_before": imported_before,
    "imported_after": "torchax" in sys.modules,
    "ok": report.ok,
    "telemetry_var": os.environ.get("ENABLE_RUNTIME_UPTIME_TELEMETRY"),
    "fastpath_restored": torch.backends.mha.get_fastpath_enabled() == fastpath,
    "decompositions_restored": tables == decomp.global_decomposition_table,
    "privateuse1": torch._C._get_privateuse1_backend_name(),
}
try:
    compiled = torch.compile(lambda x: x.sin() * 2, backend="eager")
except Exception as exc:  # torch.compile unavailable here: not what is tested
    state["compile"] = "unavailable: " + str(exc)
else:
    state["compile"] = float(compiled(torch.zeros(3)).sum())
print(json.dumps(state))
"""


@pytest.fixture(scope="module")
def after_auto(tmp_path_factory):
    """Process state before and after a verify with the automatic twin, in a fresh
    interpreter."""
    if importlib.util.find_spec("torchax") is None:
        pytest.skip("torchax is not installed: pip install 'gradient-oracle[auto]'")
    out = run_python(_AFTER_AUTO, tmp_path_factory.mktemp("after_auto"))
    return json.loads(out.strip().splitlines()[-1])


def test_importing_oracle_and_the_catalog_does_not_import_torchax(after_auto):
    assert after_auto["imported_before"] is False
    assert after_auto["imported_after"] is True  # (the test would prove nothing otherwise)


def test_torch_compile_still_works_after_an_automatic_twin(after_auto):
    assert after_auto["ok"]
    if str(after_auto["compile"]).startswith("unavailable"):
        pytest.skip(f"torch.compile is {after_auto['compile']}")
    assert after_auto["compile"] == 0.0  # sin(0) * 2, summed


def test_importing_torchax_leaves_the_environment_variable_unset(after_auto):
    assert after_auto["telemetry_var"] is None


def test_importing_torchax_leaves_torchs_global_switches_and_tables_as_they_were(after_auto):
    assert after_auto["fastpath_restored"]
    assert after_auto["decompositions_restored"]


def test_importing_torchax_renames_torchs_privateuse1_device_for_good(after_auto):
    # what cannot be undone (torch allows one rename per process), as docs/how-to/auto-twin.md says
    assert after_auto["privateuse1"] == "jax"


# --- the registry and the command line --------------------------------------------


@needs_torchax
def test_a_registered_automatic_pair_verifies_with_the_automatic_twin():
    pair = oracle.registry()["cli_auto_scaled_exp"]
    assert pair.jax_fn == "auto"
    report = pair.verify(seed=0, dtypes="float32", devices="cpu")
    assert report.twin == "auto"
    assert [r.outcome for r in pair.outcomes(report)] == ["flagged"]
    assert all(r.expected for r in pair.outcomes(report))
    # its reproducer looks the pair up in the registry, then builds the automatic twin
    code = report.findings[0].reproducer
    assert "oracle.registry()['cli_auto_scaled_exp']" in code
    assert code.index("_pair.jax_fn") < code.index("jax_fn = auto_twin(torch_fn)")
    compile(code, "reproducer", "exec")


@needs_torchax
def test_the_command_line_checks_automatic_pairs():
    import io

    from oracle.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["tests.auto_pairs", "--seed", "0", "--device", "cpu"], stdout=out, stderr=err)
    assert code == 0, out.getvalue() + err.getvalue()
    rows = sorted(
        (r[0], r[1], r[3])
        for r in map(str.split, out.getvalue().splitlines())
        if r and r[0].startswith("cli_auto")
    )
    assert rows == [
        ("cli_auto_scaled_exp", "float32", "flagged"),
        ("cli_auto_scaled_exp", "float64", "flagged"),
        ("cli_auto_sin", "float32", "clean"),
        ("cli_auto_sin", "float64", "clean"),
    ]


@needs_torchax
def test_the_pytest_plugin_checks_automatic_pairs(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", ROOT)
    pytester.makepyfile(
        test_twins="def test_twins(oracle_pair, oracle_check):\n    oracle_check(oracle_pair)\n"
    )
    result = pytester.runpytest_subprocess(
        "--oracle-modules=tests.auto_pairs",
        "--oracle-dtype=float64",
        "--oracle-device=cpu",
        "--oracle-seed=0",
        "-p",
        "no:cacheprovider",
    )
    # the clean pair passes, and so does the specimen, flagged as declared
    result.assert_outcomes(passed=2)
