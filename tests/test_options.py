"""oracle.options: option values shared by the command line and the plugin, and
reproducer files."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from oracle.options import (
    enable_compile_cache,
    parse_checks,
    parse_timeout,
    reproducer_filename,
    torch_built_for_gpu,
    write_reproducers,
)


def test_parse_checks_splits_strips_and_drops_repeats_in_the_given_order():
    assert parse_checks(" jvp, vjp ,jvp") == ("jvp", "vjp")


@pytest.mark.parametrize(
    "text, message",
    [
        pytest.param(
            "vjp,grad",
            r"'vjp,grad': expected a comma-separated list .* \(unknown: grad\)",
            id="unknown",
        ),
        pytest.param(",", "expected a comma-separated list", id="empty"),
    ],
)
def test_parse_checks_refuses_as_an_argparse_type_error(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_checks(text)


def test_parse_timeout_takes_a_positive_number_of_seconds():
    assert parse_timeout("2.5") == 2.5


@pytest.mark.parametrize("text", ["0", "-1", "inf", "nan", "soon", ""])
def test_parse_timeout_refuses_what_is_not_a_positive_finite_number(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a positive number of seconds"):
        parse_timeout(text)


def _finding(name="smooth_l1", argument=0, check="vjp", reproducer="print('replay')\n"):
    return SimpleNamespace(
        name=name,
        dtype="float32",
        device="cpu",
        check=check,
        argument=argument,
        reproducer=reproducer,
    )


@pytest.mark.parametrize(
    "finding, filename",
    [
        pytest.param(_finding(), "smooth_l1-float32-cpu-vjp-arg0.py", id="argument"),
        pytest.param(
            _finding(argument=None, check="forward"),
            "smooth_l1-float32-cpu-forward.py",
            id="outputs",
        ),
        pytest.param(_finding(name=""), "pair-float32-cpu-vjp-arg0.py", id="no-name"),
        pytest.param(
            _finding(name="a/b c", argument="lin.weight"),
            "a_b_c-float32-cpu-vjp-arglin.weight.py",
            id="unsafe",
        ),
    ],
)
def test_reproducer_filename_names_pair_dtype_device_check_and_argument(finding, filename):
    assert reproducer_filename(finding) == filename


def test_write_reproducers_keeps_two_findings_of_one_kind_and_skips_those_without_a_script(
    tmp_path,
):
    reports = [
        SimpleNamespace(findings=[_finding(reproducer="a = 1\n"), _finding(reproducer="b = 2\n")]),
        SimpleNamespace(findings=[_finding(reproducer="")]),  # a kink: nothing to replay
    ]
    paths = write_reproducers(reports, str(tmp_path / "out"))
    names = [p.rsplit("/", 1)[1] for p in paths]
    assert names == ["smooth_l1-float32-cpu-vjp-arg0.py", "smooth_l1-float32-cpu-vjp-arg0-2.py"]
    assert [open(p).read() for p in paths] == ["a = 1\n", "b = 2\n"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names)


def test_torch_built_for_gpu_reads_what_torch_itself_says():
    import torch

    built = torch.version.cuda is not None or torch.version.hip is not None
    assert torch_built_for_gpu() is built


@pytest.fixture
def jax_cache_config():
    """The three settings enable_compile_cache touches, put back afterwards."""
    import jax

    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    saved = {n: getattr(jax.config, n) for n in names}
    yield jax.config
    for n, v in saved.items():
        jax.config.update(n, v)


def test_enable_compile_cache_keeps_a_directory_the_user_chose(jax_cache_config, tmp_path):
    jax_cache_config.update("jax_compilation_cache_dir", str(tmp_path / "users"))
    assert enable_compile_cache(str(tmp_path / "ours")) == str(tmp_path / "users")
    assert jax_cache_config.jax_compilation_cache_dir == str(tmp_path / "users")


def test_enable_compile_cache_keeps_every_program_in_the_given_directory(
    jax_cache_config, tmp_path
):
    jax_cache_config.update("jax_compilation_cache_dir", None)
    assert enable_compile_cache(str(tmp_path)) == str(tmp_path)
    assert jax_cache_config.jax_compilation_cache_dir == str(tmp_path)
    assert jax_cache_config.jax_persistent_cache_min_compile_time_secs == 0
    assert jax_cache_config.jax_persistent_cache_min_entry_size_bytes == 0
