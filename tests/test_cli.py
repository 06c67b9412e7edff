"""oracle.cli in process: options, usage errors, what is passed to verify and the exit
status, with verify faked (the command line end to end: tests/e2e/test_cli.py)."""

from __future__ import annotations

import io
import json

import pytest

from oracle import cli, registration
from oracle.pair.bridge import available_devices
from oracle.report.records import Divergence, Report, RunSummary

PAIRS = "tests.pairs_good"  # cli_good_sin (clean) and cli_scaled_exp (a declared finding)


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def fake_verify(monkeypatch):
    """Pair.verify answers a report without a search: the scaled exp flagged as declared,
    everything else clean (``found`` overrides). Records the keyword arguments."""
    calls = []

    def verify(pair, **kwargs):
        calls.append((pair.name, kwargs))
        dtypes = kwargs.get("dtypes", ("float32", "float64"))
        runs = [RunSummary(d, "cpu", examples=4) for d in dtypes]
        found = [
            Divergence("vjp", 0, "torch", "scaled", "x2", d, "cpu", factor=2.0)
            for d in dtypes
            if pair.name == "cli_scaled_exp" or pair.name in fake.wrong
        ]
        return Report(pair.name, runs, found, seed=kwargs.get("seed"))

    fake = type("Fake", (), {"calls": calls, "wrong": set()})
    monkeypatch.setattr(registration.Pair, "verify", verify)
    return fake


def test_help_exits_0_and_an_unknown_option_2():
    assert run("--help")[0] == 0
    assert run("--frobnicate")[0] == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        pytest.param(
            ["--max-examples", "0", PAIRS], "--max-examples=0 must be at least 1", id="examples"
        ),
        pytest.param(["--seed", "-3", PAIRS], "--seed=-3 must be non-negative", id="seed"),
        pytest.param(
            ["no_such_module_for_the_oracle"],
            "cannot import module 'no_such_module_for_the_oracle'",
            id="module",
        ),
        pytest.param(
            [PAIRS, "-k", "nothing_like_it"],
            "no registered pairs in tests.pairs_good matching 'nothing_like_it'",
            id="pattern",
        ),
    ],
)
def test_usage_errors_exit_2_with_the_reason(argv, message):
    code, _, err = run(*argv)
    assert code == 2
    assert err.startswith(f"python -m oracle: error: {message}") and err.count("\n") == 1


def test_list_names_each_pair_its_module_and_its_declared_divergence():
    code, out, _ = run(PAIRS, "--list")
    assert code == 0
    assert out.splitlines() == [
        "cli_good_sin  (tests.pairs_good)",
        "cli_scaled_exp  (tests.pairs_good)  known divergence: backward doubles the derivative",
    ]


def test_only_the_options_given_are_passed_to_verify(fake_verify):
    code, _, err = run(PAIRS, "-k", "sin", "--seed", "5")
    assert code == 0
    assert fake_verify.calls == [("cli_good_sin", {"devices": available_devices(), "seed": 5})]
    assert "seed 5 (pass --seed 5 to replay)" in err


def test_every_option_reaches_verify(fake_verify):
    run(
        PAIRS,
        "-k",
        "sin",
        "--seed",
        "1",
        "--dtype",
        "float64",
        "--max-examples",
        "3",
        "--checks",
        "jvp,vjp",
        "--timeout",
        "2.5",
        "--device",
        "cpu",
    )
    ((_, kwargs),) = fake_verify.calls
    assert kwargs == {
        "devices": ("cpu",),
        "seed": 1,
        "dtypes": ("float64",),
        "max_examples": 3,
        "checks": ("jvp", "vjp"),
        "timeout": 2.5,
    }


def test_a_seed_is_drawn_and_printed_when_not_given(fake_verify):
    _, _, err = run(PAIRS, "-k", "sin")
    seed = fake_verify.calls[0][1]["seed"]
    assert isinstance(seed, int) and f"seed {seed} (pass --seed {seed} to replay)" in err


def test_exits_0_when_every_outcome_is_as_expected_and_writes_the_json(fake_verify, tmp_path):
    path = tmp_path / "sub" / "out.json"
    code, out, _ = run(PAIRS, "--seed", "2", "--json", str(path))
    assert code == 0
    assert "4 of 4 outcomes as expected" in out
    payload = json.loads(path.read_text())
    assert payload["ok"] and payload["seed"] == 2
    assert {(r["name"], r["dtype"], r["outcome"]) for r in payload["rows"]} == {
        ("cli_good_sin", "float32", "clean"),
        ("cli_good_sin", "float64", "clean"),
        ("cli_scaled_exp", "float32", "flagged"),
        ("cli_scaled_exp", "float64", "flagged"),
    }


def test_exits_1_on_an_unexpected_finding_and_prints_its_report(fake_verify):
    fake_verify.wrong.add("cli_good_sin")
    code, out, _ = run(PAIRS, "--seed", "2")
    assert code == 1
    assert "2 of 4 outcomes as expected" in out
    assert "[oracle] cli_good_sin: 2 divergences in 8 examples (seed 2)" in out


def test_asking_for_cuda_without_a_gpu_is_a_usage_error():
    if "cuda" in available_devices():
        pytest.skip("needs a machine without a GPU")
    with pytest.raises(cli._UsageError, match="--device cuda was asked for, but"):
        cli._devices(["cuda"])
    assert cli._devices(["cpu", "cpu"]) == ("cpu",)
    assert cli._devices(None) == available_devices()


@pytest.mark.parametrize(
    "x, text", [(None, "-"), (float("nan"), "-"), (0.000123456, "0.000123"), (3, "3")]
)
def test_numbers_in_the_table_have_three_significant_digits(x, text):
    assert cli._fmt(x) == text


def test_progress_to_a_file_writes_final_lines_only():
    out = io.StringIO()
    cli._progress(out, "working ...")
    cli._progress(out, "done", final=True)
    assert out.getvalue() == "done\n"
