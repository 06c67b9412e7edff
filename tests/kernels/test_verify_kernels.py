"""oracle.verify on the Triton kernels of losses/_kernels.py: the correct ones clean in
float32 and float64, the specimens flagged with the finding they declare.

Few examples and a fixed seed: each kernel launch runs program by program in Triton's
interpreter (without a GPU), and these tests are part of ``make test``."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings

from tests.kernels import _setup

if _setup.SKIP_REASON:
    pytest.skip(_setup.SKIP_REASON, allow_module_level=True)
if _setup.DEVICE == "cuda" and not _setup.jax_sees_gpu():
    pytest.skip(
        "the kernels run compiled on CUDA tensors here, and JAX sees no GPU to run the twin "
        "beside them (install a CUDA jaxlib, or set TRITON_INTERPRET=1)",
        allow_module_level=True,
    )

CORRECT = ["triton_cross_entropy", "triton_rms_norm", "triton_rotary", "triton_gelu"]
SPECIMENS = [
    "triton_cross_entropy_grad_in_logits",
    "triton_cross_entropy_contiguous_copy",
    "triton_rms_norm_overwrites_grad_output",
    "triton_gelu_float32_table",
    "triton_rotary_inplace",
]


_NO_SHRINK = settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])


def _verify(name: str, **kwargs):
    pair = _setup.PAIRS[name]
    return pair, pair.verify(seed=0, devices=[_setup.DEVICE], **kwargs)


@pytest.fixture(scope="module")
def clean_report():
    """One oracle run per correct kernel, shared by the tests that read it."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = _verify(name, max_examples=10)[1]
        return cache[name]

    return get


@pytest.mark.parametrize("name", CORRECT)
def test_a_correct_kernel_is_clean_in_both_dtypes(name, clean_report):
    report = clean_report(name)
    assert report.ok, str(report)
    assert {run.dtype for run in report.runs} == {"float32", "float64"}


@pytest.mark.parametrize("name", CORRECT)
def test_a_correct_kernel_refuses_only_what_a_fused_kernel_lacks(name, clean_report):
    # no jvp staticmethod, a @once_differentiable backward, forward(ctx, ...) without
    # setup_context: torch refuses forward mode, double backward and vmap, clearly
    report = clean_report(name)
    assert report.capabilities["vjp"] == report.capabilities["contract"] == "ok"
    for check in ("jvp", "hvp", "vmap"):
        assert report.capabilities[check].startswith("unsupported: "), report.capabilities


@pytest.mark.parametrize("name", SPECIMENS)
def test_a_specimen_is_flagged_with_its_declared_finding(name):
    # fewer examples, and no shrinking (each step reruns the kernels in the interpreter):
    # each defect shows on nearly every example, and the finding, not the smallest
    # example, is what is checked here
    pair, report = _verify(name, max_examples=5, settings=_NO_SHRINK)
    assert not report.ok
    rows = pair.outcomes(report)
    assert rows and all(row.expected for row in rows), rows


def test_the_kernel_pairs_stay_out_of_the_catalog_until_it_imports_them():
    # tests/test_catalog.py counts the pairs under `losses` in the same process
    import oracle

    assert set(_setup.PAIRS) == set(CORRECT) | {getattr(s, "values", [s])[0] for s in SPECIMENS}
    assert not any(pair.module == "losses._kernels" for pair in oracle.registry())
    assert "double_sin" in oracle.registry()  # the catalog's own pairs are all there


def test_verify_takes_triton_interpret_and_checks_on_the_cpu():
    """``verify(..., triton="interpret")``: the interpreter is checked to be on, and the
    run defaults to the CPU (the interpreter runs kernels on CPU tensors)."""
    if _setup.DEVICE != "cpu":
        pytest.skip("a GPU is present: the kernels run compiled")
    import oracle

    pair = _setup.PAIRS["triton_gelu"]
    report = oracle.verify(
        pair.torch_fn,
        pair.jax_fn,
        list(pair.inputs),
        dims=pair.dims,
        triton="interpret",
        max_examples=5,
        seed=0,
        dtypes=["float32"],
    )
    assert report.ok, str(report)
    assert [(r.device, r.examples > 0) for r in report.runs] == [("cpu", True)]


@pytest.mark.parametrize(
    "workers", [pytest.param([], id="in-process"), pytest.param(["--jobs", "2"], id="jobs")]
)
def test_the_command_line_checks_a_kernel_module_through_the_interpreter(tmp_path, workers):
    """``python -m oracle losses._kernels --triton interpret -k ...`` in a fresh process:
    the switch is set before the module defines its kernels (with ``--jobs``, in each
    worker process: they raised "0 active drivers" without it)."""
    if _setup.DEVICE != "cpu":
        pytest.skip("a GPU is present: the kernels run compiled")
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = root
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "oracle",
            "losses._kernels",
            "--triton",
            "interpret",
            "-k",
            "triton_gelu",
            "--max-examples",
            "5",
            "--seed",
            "0",
            "--dtype",
            "float32",
            *workers,
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "triton_gelu " in out.stdout and "triton_gelu_float32_table" in out.stdout


@pytest.mark.parametrize("name", ["triton_gelu", "triton_gelu_float32_table"])
def test_a_float32_output_where_the_formula_cancels_is_rounding_in_both_kernels(name):
    # the catalog's false alarm (python -m oracle losses._kernels --seed 1): at x = -4.9,
    # 1 + tanh(u) cancels (tanh(u) = -1 + 1.8e-7) and float32 GELU is 31% off, whatever the
    # code; the correct kernel was excused by its right float64 forward, the specimen (whose
    # float64 forward runs in float32) was flagged in float32, where it is right. Both are
    # judged by the size of the formula's terms now; the specimen's float64 stays flagged
    import numpy as np

    from oracle.judge.checks.vjp import check_example
    from oracle.pair.guard import Guard
    from oracle.pair.sides import Sides
    from oracle.pair.torch_side import TorchSide
    from oracle.pair.twin_side import TwinSide

    pair = _setup.PAIRS[name]
    specs = pair_specs(pair)
    guard = Guard()
    sides = Sides(
        TorchSide(pair.torch_fn, specs, guard), TwinSide(pair.jax_fn, specs, guard), specs, None
    )
    x = np.array([[np.float64(np.float32(-4.9))]])
    assert check_example(sides, (x,), 1, "float32", _setup.DEVICE) == []
    found = check_example(sides, (x,), 1, "float64", _setup.DEVICE)
    if name == "triton_gelu":
        assert found == []
    else:
        assert [f.diagnosis for f in found] == ["precision"], found


def pair_specs(pair):
    from oracle.inputs.specs import normalize_inputs

    return normalize_inputs(pair.inputs)
