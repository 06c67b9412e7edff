"""oracle/pair/triton.py: the interpreter switch, and each gap of Triton's interpreter
reproduced with a tiny kernel, then closed by the compatibility layer."""

from __future__ import annotations

import warnings

import pytest

from tests.kernels import _setup

if _setup.SKIP_REASON:
    pytest.skip(_setup.SKIP_REASON, allow_module_level=True)
if not _setup.INTERPRETED:
    pytest.skip(
        "kernels run compiled on this GPU: the interpreter's gaps are not in play",
        allow_module_level=True,
    )

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.language.extra import libdevice  # noqa: E402
from triton.runtime.errors import InterpreterError  # noqa: E402

from oracle.pair import triton as oracle_triton  # noqa: E402


@triton.jit
def _add_eps_kernel(x_ptr, y_ptr, eps, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs) + eps.to(tl.float32))


@triton.jit
def _tanh_rsqrt_kernel(x_ptr, y_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + offs)
    tl.store(y_ptr + offs, libdevice.tanh(x) + libdevice.rsqrt(x * x + 1.0))


@triton.autotune(configs=[triton.Config({"B": 4}), triton.Config({"B": 8})], key=["n"])
@triton.jit
def _double_kernel(x_ptr, y_ptr, n, B: tl.constexpr):
    offs = tl.program_id(0) * B + tl.arange(0, B)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2, mask=mask)


def _double(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(n, dtype=torch.float32)
    y = torch.zeros(n)
    _double_kernel[lambda meta: (triton.cdiv(n, meta["B"]),)](x, y, n)
    return x, y


def test_the_tested_release_gets_the_whole_layer():
    # the session's use_interpreter() (tests/kernels/_setup.py) on triton 3.9.0
    assert oracle_triton.installed_version() in oracle_triton.TESTED_VERSIONS
    assert set(oracle_triton.patches_installed()) == {"float_args", "libdevice", "autotune"}
    assert oracle_triton.interpreting()


def test_a_python_float_argument_has_no_to_without_the_layer():
    x, y = torch.ones(4), torch.empty(4)
    with oracle_triton.compat_patches(False):
        with pytest.raises(InterpreterError, match="'float' object has no attribute 'to'"):
            _add_eps_kernel[(1,)](x, y, 0.25, N=4)


def test_a_python_float_argument_is_an_fp32_scalar_with_the_layer():
    x, y = torch.ones(4), torch.empty(4)
    with oracle_triton.compat_patches(True):
        _add_eps_kernel[(1,)](x, y, 0.25, N=4)
    assert torch.equal(y, torch.full((4,), 1.25))


def test_libdevice_functions_return_none_without_the_layer():
    x, y = torch.ones(4), torch.empty(4)
    with oracle_triton.compat_patches(False):
        with pytest.raises(InterpreterError, match="NoneType"):
            _tanh_rsqrt_kernel[(1,)](x, y, N=4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_libdevice_functions_compute_in_their_arguments_dtype_with_the_layer(dtype):
    x = torch.linspace(-3, 3, 8, dtype=dtype)
    y = torch.empty_like(x)
    with oracle_triton.compat_patches(True):
        _tanh_rsqrt_kernel[(1,)](x, y, N=8)
    # numpy's tanh and 1/sqrt in the same dtype: within a few ulps of torch's
    torch.testing.assert_close(y, torch.tanh(x) + torch.rsqrt(x * x + 1))


def test_libdevice_stubs_are_back_after_a_launch():
    # outside a launch the stubs are what compiled Triton resolves
    stub = libdevice.tanh
    with oracle_triton.compat_patches(True):
        _tanh_rsqrt_kernel[(1,)](torch.ones(4), torch.empty(4), N=4)
        assert libdevice.tanh is stub


def test_autotune_asks_for_a_gpu_driver_without_the_layer():
    with oracle_triton.compat_patches(False):
        with pytest.raises(RuntimeError, match="0 active drivers"):
            _double(5)  # n=5: a key no other test tunes, so the configs are benchmarked


def test_autotune_runs_and_keeps_the_first_config_with_the_layer():
    with oracle_triton.compat_patches(True):
        x, y = _double(7)
    assert torch.equal(y, 2 * x)
    assert _double_kernel.best_config.kwargs == {"B": 4}  # the first of the configs


def test_compat_patches_restores_the_layer_it_found():
    before = oracle_triton.patches_installed()
    with oracle_triton.compat_patches(False):
        assert oracle_triton.patches_installed() == ()
    assert oracle_triton.patches_installed() == before


def test_another_release_leaves_the_layer_off_with_a_warning_naming_the_tested_ones(
    monkeypatch,
):
    monkeypatch.setattr(oracle_triton, "installed_version", lambda: "3.10.0")
    with oracle_triton.compat_patches(False):
        with pytest.warns(oracle_triton.TritonCompatWarning, match=r"3\.9\.0.*layer is OFF"):
            assert oracle_triton.use_interpreter() is False
        assert oracle_triton.patches_installed() == ()


def test_another_release_gets_the_layer_when_forced(monkeypatch):
    monkeypatch.setattr(oracle_triton, "installed_version", lambda: "3.10.0")
    with oracle_triton.compat_patches(False):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # forcing is not warned about
            assert oracle_triton.use_interpreter(patches=True) is True
        assert len(oracle_triton.patches_installed()) == 3


def test_triton_imported_without_the_variable_is_refused_with_the_fix(monkeypatch):
    # triton is imported in this process; with the variable unset its knobs say "compiled"
    monkeypatch.setenv(oracle_triton.ENV, "0")
    with pytest.raises(RuntimeError, match=r"TRITON_INTERPRET=1 was set.*--triton interpret"):
        oracle_triton.use_interpreter()


def test_no_triton_is_a_missing_module_error_naming_the_extra(monkeypatch):
    monkeypatch.setattr(oracle_triton, "installed_version", lambda: None)
    with pytest.raises(ModuleNotFoundError, match=r"gradient-oracle\[triton\]"):
        oracle_triton.use_interpreter()


@pytest.mark.parametrize(
    ("mode", "error", "match"),
    [
        pytest.param("interpreted", ValueError, "is not one of 'interpret'", id="unknown-mode"),
        pytest.param("compiled", RuntimeError, "TRITON_INTERPRET is set", id="compiled-here"),
    ],
)
def test_prepare_refuses_a_mode_it_cannot_give(mode, error, match):
    with pytest.raises(error, match=match):
        oracle_triton.prepare(mode)


@pytest.mark.parametrize("mode", ["interpret", "auto"])
def test_prepare_says_kernels_run_in_the_interpreter(mode):
    assert oracle_triton.prepare(mode) is True


def test_a_reproducer_sets_up_the_interpreter_and_its_layer_before_its_imports():
    preamble = oracle_triton.reproducer_preamble()
    assert "use_interpreter()" in preamble
    exec(compile(preamble, "<preamble>", "exec"), {})  # again in this process: a no-op
    assert len(oracle_triton.patches_installed()) == 3


def test_a_patch_that_does_not_fit_the_release_says_which_and_why(monkeypatch):
    def moved():
        raise AttributeError("module 'triton.runtime.interpreter' has no attribute '_implicit_cvt'")

    with oracle_triton.compat_patches(False):
        with monkeypatch.context() as m:  # undone before the layer is put back
            m.setitem(oracle_triton._PATCHES, "float_args", moved)
            with pytest.raises(RuntimeError, match=r"'float_args' does not fit triton 3\.\d\.\d"):
                oracle_triton.use_interpreter(patches=True)
