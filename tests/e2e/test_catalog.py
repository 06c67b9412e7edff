"""The catalog against the oracle: clean pairs are clean, specimens are flagged as declared.

The expected outcome of every entry is the public table in ``losses/CATALOG.md``; each
specimen's finding is derived in its docstring (``losses/_*.py``).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

import losses  # (importing the catalog registers its pairs)
import oracle

DTYPES = ("float32", "float64")

CLEAN = [
    "weighted_cross_entropy",
    "double_sin",
    "proxy_round_l1",
    "scaled_mse",
    "thresholded_mse",
    "matrix_power",
    "exp_ratio",
    "max_concat",
    "weighted_mse",
    "hinge_margin",
    "sigmoid_weighted_abs",
    "conditional_op",
    "smooth_round_corrected",
    "spd_solve",
    "simplex_projection",
    "rodrigues",
]

# The declared finding of each specimen, field by field (None: any), as in CATALOG.md.
SPECIMENS = {
    "weighted_cross_entropy_seed": dict(check=("error", "forward")),
    "matrix_power_simplified": dict(argument=(0,), check=("vjp",), blame=("torch",)),
    "matrix_power_loss": dict(argument=(2,), check=("vjp",), blame=("torch",)),
    "exp_ratio_cut_graph": dict(check=("vjp",), diagnosis=("disconnected",)),
    "max_concat_indices": dict(diagnosis=("error", "disconnected")),
    "no_grad_l1": dict(diagnosis=("disconnected", "error")),
    "custom_exp": dict(
        argument=(0,), check=("vjp",), diagnosis=("scaled",), blame=("torch",), factor=2.0
    ),
    "smooth_round": dict(
        argument=(0,), check=("vjp",), diagnosis=("scaled",), blame=("torch",), factor=2.0
    ),
    "spd_solve_half_solve": dict(argument=(1,), check=("vjp",), blame=("torch",)),
    "simplex_projection_mean_over_all": dict(argument=(0,), check=("vjp",), blame=("torch",)),
    "rodrigues_constant_coefficients": dict(argument=(0,), check=("vjp",), blame=("torch",)),
}


def _ids(names):
    return [pytest.param(name, id=name) for name in names]


def _real(report) -> list:
    return [d for d in report.divergences if d.blame != "kink"]


@pytest.fixture(scope="module")
def specimen_report():
    """One oracle run per specimen, shared by the tests that read it."""
    cache = {}

    def get(name: str):
        if name not in cache:
            pair = oracle.registry()[name]
            cache[name] = pair.verify(max_examples=50, seed=0, devices=["cpu"])
        return cache[name]

    return get


def test_every_entry_of_the_public_table_is_registered():
    registered = {pair.name for pair in oracle.registry()}
    missing = (set(CLEAN) | set(SPECIMENS)) - registered
    assert not missing, f"not registered: {sorted(missing)}"


@pytest.mark.parametrize("name", _ids(CLEAN))
def test_a_clean_entry_declares_no_divergence(name):
    assert oracle.registry()[name].known_divergence is None


@pytest.mark.parametrize("name", _ids(SPECIMENS))
def test_a_specimen_declares_the_finding_of_the_public_table(name):
    known = oracle.registry()[name].known_divergence
    assert known is not None
    for field in ("argument", "check", "diagnosis", "blame", "factor"):
        assert getattr(known, field) == SPECIMENS[name].get(field), field
    assert known.dtypes is None  # every specimen is wrong in both dtypes


@pytest.fixture(scope="module")
def clean_report():
    """One oracle run per clean entry, shared by the tests that read it."""
    cache = {}

    def get(name: str):
        if name not in cache:
            pair = oracle.registry()[name]
            cache[name] = pair.verify(max_examples=60, seed=0, dtypes=DTYPES, devices=["cpu"])
        return cache[name]

    return get


@pytest.mark.parametrize("name", _ids(CLEAN))
def test_a_clean_entry_is_clean_in_both_dtypes(name, clean_report):
    report = clean_report(name)
    assert report.ok, str(report)
    assert {(run.dtype, run.device) for run in report.runs} == {(d, "cpu") for d in DTYPES}


@pytest.mark.parametrize("name", _ids(SPECIMENS))
def test_a_specimen_is_flagged_with_its_declared_finding_in_both_dtypes(name, specimen_report):
    pair = oracle.registry()[name]
    report = specimen_report(name)
    assert not report.ok
    for dtype in DTYPES:
        found = [d for d in _real(report) if d.dtype == dtype]
        assert any(pair.known_divergence.matches(d) for d in found), (dtype, str(report))
    assert all(row.expected for row in pair.outcomes(report)), pair.outcomes(report)


def test_the_simplified_matrix_power_is_blamed_on_its_matrix_gradient(specimen_report):
    # SpectralNormalizationFunction.backward: G * n A^(n-1), element-wise (seed 001)
    real = _real(specimen_report("matrix_power_simplified"))
    assert {d.dtype for d in real} == set(DTYPES)
    assert all((d.check, d.argument, d.blame) == ("vjp", 0, "torch") for d in real), real


def test_the_matrix_power_loss_flags_the_matrix_and_never_prediction_or_target(specimen_report):
    # prediction (0) and target (1) are differentiated by autograd; only the matrix (2)
    # goes through the simplified backward
    real = _real(specimen_report("matrix_power_loss"))
    assert {d.dtype for d in real} == set(DTYPES)
    assert {d.argument for d in real} == {2}, real


@pytest.mark.parametrize("name", _ids(["custom_exp", "smooth_round"]))
def test_a_doubled_derivative_is_diagnosed_as_scaled_by_two(name, specimen_report):
    # CustomExp returns 2 exp(x); SmoothRound drops the forward's factor 1/2 (seed 004)
    real = _real(specimen_report(name))
    for dtype in DTYPES:
        found = [d for d in real if d.dtype == dtype]
        assert found, dtype
        assert all(d.argument == 0 and d.diagnosis == "scaled" for d in found), found
        assert all(d.factor == pytest.approx(2.0, rel=1e-3) for d in found), found


def test_a_graph_cut_through_numpy_is_diagnosed_as_disconnected_for_both_inputs(specimen_report):
    # .detach().numpy() then requires_grad_() makes a new leaf (seed 002)
    real = _real(specimen_report("exp_ratio_cut_graph"))
    for dtype in DTYPES:
        # (the jvp, judged on that example too, shows the same cut as a zero tangent)
        found = [d for d in real if d.dtype == dtype and d.check == "vjp"]
        assert {d.argument for d in found} == {0, 1}, found
        assert all(d.diagnosis == "disconnected" and d.blame == "torch" for d in found), found


def test_the_seed_cross_entropy_fails_when_batch_and_classes_differ(specimen_report):
    # F.cross_entropy(weight=) wants one weight per class, not one per sample (seed 000)
    real = _real(specimen_report("weighted_cross_entropy_seed"))
    errors = [d for d in real if d.check == "error"]
    assert {d.dtype for d in errors} == set(DTYPES), real
    assert all(d.blame == "torch" for d in errors), errors


def test_the_command_line_checks_the_whole_catalog_and_exits_0():
    import io

    from oracle.cli import main

    out, err = io.StringIO(), io.StringIO()
    # fewer examples than the default, to keep the suite short; clean entries get 60 above
    # (and 50 random seeds x 20 examples in `make campaign`)
    code = main(["losses", "--seed", "0", "--max-examples", "12", "--device", "cpu"], out, err)
    assert code == 0, out.getvalue()
    rows = {
        (line.split()[0], line.split()[1]): line.split()[3]
        for line in out.getvalue().splitlines()
        if line.split() and line.split()[0] in oracle.registry()
    }
    names = [p.name for p in oracle.registry().in_modules(["losses"])]
    assert len(names) == 34
    for name in names:
        known = oracle.registry()[name].known_divergence
        for dtype in ("float32", "float64"):
            # the low-precision specimens are wrong in bfloat16, float16 or float64 only
            want = "flagged" if known and known.expected_in(dtype) else "clean"
            assert rows[(name, dtype)] == want, (name, dtype)


def test_the_half_solve_spd_backward_is_blamed_on_torch_at_an_spd_matrix(specimen_report):
    # SPDSolveHalfSolve: lambda = L^-1 g, without the L^-T half (losses/_linalg.py)
    real = _real(specimen_report("spd_solve_half_solve"))
    assert {d.dtype for d in real} == set(DTYPES)
    assert all((d.check, d.blame) == ("vjp", "torch") and d.argument in (0, 1) for d in real)
    for d in real:
        # the shrunk example is drawn from domain="spd": still symmetric positive definite
        a = d.example["args"][0]
        assert np.array_equal(a, np.swapaxes(a, -1, -2))
        assert np.all(np.linalg.eigvalsh(a) > 0)


def test_the_simplex_projection_mean_over_all_is_caught_where_an_entry_is_clipped(
    specimen_report,
):
    # the mean over the row equals the mean over the support when nothing is clipped,
    # so the shrunk example must clip some entry to 0 (losses/_linalg.py)
    from losses import simplex_projection_jax

    real = _real(specimen_report("simplex_projection_mean_over_all"))
    assert {d.dtype for d in real} == set(DTYPES)
    for d in real:
        assert (d.check, d.argument, d.blame) == ("vjp", 0, "torch")
        with jax.enable_x64(True):  # the example is float64; scoped, as the oracle does
            p = np.asarray(simplex_projection_jax(d.example["args"][0]))
        assert np.any(p == 0), p


def test_the_rodrigues_constant_coefficients_are_caught_away_from_zero(specimen_report):
    # exact at w = 0, where shrinking goes: the shrunk rotation vector is not zero
    real = _real(specimen_report("rodrigues_constant_coefficients"))
    assert {d.dtype for d in real} == set(DTYPES)
    for d in real:
        assert (d.check, d.argument, d.blame) == ("vjp", 0, "torch")
        assert np.any(d.example["args"][0] != 0)


def _capability_rows() -> dict[str, dict[str, str]]:
    """The capability rows of losses/CATALOG.md: per pair, each transform's cell
    ("yes", "-" or "no: <reason>")."""
    text = (Path(losses.__file__).parent / "CATALOG.md").read_text()
    rows = {}
    for line in text.split("## Capabilities", 1)[1].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = dict(zip(("jvp", "hvp", "vmap"), cells[1:], strict=True))
    return rows


def _declared_refusals() -> dict[str, dict[str, str]]:
    """Per pair, the transforms its row says torch refuses, with the reason."""
    return {
        name: {c: cell.removeprefix("no: ") for c, cell in row.items() if cell.startswith("no: ")}
        for name, row in _capability_rows().items()
    }


def _refusals(report) -> dict[str, str]:
    return {
        check: status.removeprefix("unsupported: ")
        for check, status in report.capabilities.items()
        if status.startswith("unsupported: ")
    }


def test_every_registered_pair_has_a_capability_row():
    names = {p.name for p in oracle.registry().in_modules(["losses"])}
    assert set(_declared_refusals()) == names


@pytest.mark.parametrize("name", _ids(CLEAN))
def test_a_clean_entry_refuses_the_transforms_its_capability_row_declares(name, clean_report):
    assert _refusals(clean_report(name)) == _declared_refusals()[name]


@pytest.mark.parametrize("name", _ids(SPECIMENS))
def test_a_specimen_refuses_the_transforms_its_capability_row_declares(name, specimen_report):
    # A specimen's run may stop at its finding before any example passes, leaving the
    # transforms not checked: those its row marks "-" are not judged.
    report = specimen_report(name)
    unmarked = {c for c, cell in _capability_rows()[name].items() if cell == "-"}
    got = {c: r for c, r in _refusals(report).items() if c not in unmarked}
    assert got == _declared_refusals()[name]
