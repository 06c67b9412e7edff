"""The referee's record: false alarms and misses over many random seeds (``make campaign``).

Every clean pair of the catalog and of the test suite's correct specimens runs in both
dtypes under each of ``--seeds`` random seeds (default 50), their wrong ones (the catalog's
specimens, the suite's wrong specimens) under ``--wrong-seeds`` (20); the mutation set's
23 originals and 35 mutants under ``--mutant-seeds`` (10). A clean pair flagged under any seed is a **false alarm**; a wrong one
not flagged (in a dtype where it is wrong) is a **miss**. Target: 0 and 0.

A pair's compiled programs are kept across its seeds (a fresh ``verify`` per seed would
recompile them each time); wrong pairs are not shrunk (finding the bug is the question
here, the shrunk example is the suite's business). Seeds are drawn from ``--seed`` so a
campaign can be replayed: each false alarm is printed with the seed and dtype that
showed it, and ``oracle.verify(..., seed=S, dtypes=D)`` replays it.

    python tests/benchmarks/campaign.py --seeds 50 --wrong-seeds 20 --json bench-results/campaign.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402
from hypothesis import Phase, settings  # noqa: E402

import oracle  # noqa: E402
from oracle import choice, integers, tensor  # noqa: E402
from oracle.inputs.specs import example_strategy, normalize_dims, normalize_inputs  # noqa: E402
from oracle.judge.tolerance import user_tolerance  # noqa: E402
from oracle.pair.guard import Guard  # noqa: E402
from oracle.pair.sides import Sides  # noqa: E402
from oracle.pair.torch_side import TorchSide  # noqa: E402
from oracle.pair.twin_side import TwinSide  # noqa: E402
from oracle.search.runner import run_config  # noqa: E402


@dataclass
class Case:
    name: str
    source: str
    torch_fn: Callable
    jax_fn: Callable
    inputs: Sequence[Any]
    dims: dict | None = None
    #: dtypes where it must be flagged (wrong pairs), or () for a clean pair
    wrong_in: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)
    #: for a wrong pair: dtypes where it is right, so that a flag there is a false alarm
    #: (a float32 constant in a float64 backward is right in float32). In the others a
    #: flag is never a false alarm, owed or not: the function is wrong there too, if
    #: below what the oracle owes (gelu_tanh's 1e-5 constant typo in float32)
    clean_in: tuple[str, ...] = ()
    #: the low dtypes it runs in too (the catalog's clean pairs and low-precision specimens)
    low: tuple[str, ...] = ()


#: the low dtypes the catalog runs in (``--low-seeds`` seeds each)
LOW_DTYPES = ("bfloat16", "float16", "autocast-bfloat16", "autocast-float16")


def _kernels() -> bool:
    """The Triton kernels of ``losses/_kernels.py`` join the catalog when triton is
    installed (in Triton's interpreter without a GPU: set up before triton is imported)."""
    try:
        from oracle.pair.triton import prepare

        prepare("auto")
        import losses._kernels  # noqa: F401  (registers the kernel pairs)
    except (ImportError, RuntimeError) as exc:
        print(f"the Triton kernels are left out: {exc}", file=sys.stderr)
        return False
    return True


def _catalog() -> list[Case]:
    import losses  # noqa: F401  (registers the pairs)

    _kernels()
    out = []
    for p in oracle.registry().in_modules(["losses"]):
        known = p.known_divergence
        wrong = () if known is None else tuple(known.dtypes or ("float32", "float64"))
        opts = {k: v for k, v in p.options.items() if k in ("rtol", "atol")}
        # clean pairs, and specimens wrong in some low dtype, run in the low dtypes too
        # (not the Triton kernels: their dtype tables stop at float32 and float64)
        low = LOW_DTYPES if not wrong or set(wrong) & set(LOW_DTYPES) else ()
        if p.module == "losses._kernels":
            low = ()
        clean = (
            ()
            if known is None or known.dtypes is None
            else tuple(d for d in ("float32", "float64", *low) if d not in wrong)
        )
        out.append(
            Case(p.name, "catalog", p.torch_fn, p.jax_fn, p.inputs, p.dims, wrong, opts, clean, low)
        )
    return out


def _suite() -> list[Case]:
    from tests import specimens as sp

    both = ("float32", "float64")
    f64 = ("float64",)
    n = [tensor("n")]
    clean = [
        Case("good_sin", "suite", sp.GoodSin.apply, jnp.sin, n),
        Case(
            "matrix_power",
            "suite",
            sp.MatrixPower.apply,
            sp.matrix_power_twin,
            [tensor("b k k", low=-2, high=2), 3],
            {"k": (1, 5), "b": (1, 3)},
        ),
        Case(
            "exp_ratio",
            "suite",
            sp.exp_ratio_loss,
            sp.exp_ratio_twin,
            [tensor("n", low=-20, high=20), tensor("n", low=-20, high=20, grad=False)],
        ),
        Case(
            "cross_entropy",
            "suite",
            sp.cross_entropy,
            sp.cross_entropy_twin,
            [tensor("b c", low=-50, high=50), integers("b", low=0, high="c")],
            {"c": (2, 6)},
        ),
        Case(
            "saturated_cross_entropy",
            "suite",
            sp.saturated_cross_entropy,
            sp.saturated_cross_entropy_twin,
            [tensor("b 2", low=-50, high=50)],
        ),
        Case("abs_at_0", "suite", sp.abs_loss, sp.abs_loss_twin, [tensor("n", low=-2, high=2)]),
        Case(
            "hinge_at_margin",
            "suite",
            sp.hinge,
            sp.hinge_twin,
            [choice("n", [-1.0, 1.0, 0.5, 2.0], grad=True), choice("n", [-1.0, 1.0]), 1.0],
        ),
        Case(
            "max_ties",
            "suite",
            sp.max_dim,
            sp.max_dim_twin,
            [choice("b n", [0.0, 1.0, 2.0], grad=True)],
        ),
        Case(
            "clamp_bounds",
            "suite",
            sp.clamp,
            sp.clamp_twin,
            [choice("n", [-1.0, 1.0, 0.5, -2.0], grad=True)],
        ),
        Case(
            "norm_of_zero_row",
            "suite",
            sp.row_norm,
            sp.row_norm_twin,
            [choice("b n", [0.0, 0.0, 1.5, -2.0], grad=True)],
        ),
        Case(
            "sparsemax",
            "suite",
            sp.sparsemax,
            sp.sparsemax_twin,
            [choice("b n", [0.0, 0.5, 1.0, -0.5, 1.5], grad=True)],
            {"n": (2, 5)},
        ),
        Case("huber", "suite", sp.Huber.apply, sp.huber_twin, [tensor("n", low=-4, high=4)]),
        Case("numpy_constant", "suite", _weighted_sum, _weighted_sum_twin, [tensor("b 4")]),
    ]
    wrong = [
        Case(
            "scaled_exp",
            "suite",
            sp.ScaledExp.apply,
            jnp.exp,
            [tensor("n", low=-3, high=3)],
            None,
            both,
        ),
        Case("flipped_sin", "suite", sp.FlippedSin.apply, jnp.sin, n, None, both),
        Case("ignores_grad", "suite", sp.SquareIgnoresGrad.apply, sp.square, n, None, both),
        Case(
            "softplus_zero",
            "suite",
            sp.SoftplusZeroNegative.apply,
            lambda x: jnp.logaddexp(x, 0.0),
            n,
            None,
            both,
        ),
        Case(
            "naive_sigmoid",
            "suite",
            sp.NaiveSigmoid.apply,
            lambda x: 1 / (1 + jnp.exp(-x)),
            [tensor("n", low=750, high=1000)],
            None,
            both,
        ),
        Case("shifted_sin", "suite", sp.ShiftedSin.apply, jnp.sin, n, None, both),
        Case(
            "matvec_transposed",
            "suite",
            sp.MatVecTransposed.apply,
            sp.matvec_twin,
            [tensor("k k"), tensor("k")],
            None,
            both,
        ),
        Case(
            "matrix_power_simplified",
            "suite",
            sp.MatrixPowerSimplified.apply,
            sp.matrix_power_twin,
            [tensor("k k", low=-2, high=2), 3],
            {"k": (1, 5)},
            both,
        ),
        Case(
            "second_argument_scaled",
            "suite",
            sp.ScaledSecondArgument.apply,
            sp.product_twin,
            [tensor("n"), tensor("n")],
            None,
            both,
        ),
        Case(
            "abs_wrong_below_minus_1",
            "suite",
            sp.AbsWrongBelowMinusOne.apply,
            jnp.abs,
            [tensor("n", low=-3, high=3)],
            None,
            both,
        ),
        Case(
            "huber_boundary_at_2",
            "suite",
            sp.HuberWrongBoundary.apply,
            sp.huber_twin,
            [tensor("n", low=-4, high=4)],
            None,
            both,
        ),
        Case(
            "float32_constant",
            "suite",
            sp.Float32Constant.apply,
            sp._c_sin_twin,
            [tensor("n", low=-3, high=3)],
            None,
            f64,
        ),
        Case(
            "ndarray_round_trip",
            "suite",
            sp.NdarrayRoundTrip.apply,
            jnp.exp,
            [tensor("n", low=-5, high=5)],
            None,
            f64,
        ),
        Case("adds_term", "suite", sp.AddsTerm.apply, jnp.sin, n, None, both),
        Case("noisy_backward", "suite", sp.NoisyBackward.apply, jnp.sin, n, None, both),
        Case(
            "sign_over_abs",
            "suite",
            sp.SignOverAbs.apply,
            jnp.abs,
            [choice("n", [0.0, 1.0, -2.0], grad=True)],
            None,
            both,
        ),
    ]
    return clean + wrong


def _beyond() -> list[Case]:
    """Functions for the checks beyond the vjp and the memory tricks of issue 18
    (tests/contract_specimens.py): each wrong one has one defect that only a check beyond
    the vjp (or the judging of what torch_fn writes into) sees, each right one uses
    in-place writes, views, mark_dirty or contiguous copies correctly."""
    from tests import contract_specimens as cs

    both = ("float32", "float64")
    v = [tensor("n", low=-3, high=3)]
    m = [tensor("m n", low=-3, high=3)]
    md = {"m": (1, 4), "n": (1, 4)}
    rows = [tensor("m n", low=0.5, high=3)]
    scale = [tensor("m n", low=-3, high=3), tensor("m n", low=-3, high=3, grad=False)]

    def case(name, fn, twin, inputs=v, dims=None, wrong=both):
        return Case(name, "beyond", fn, twin, inputs, dims, wrong)

    clean = [
        case("exp_every_transform", cs.Exp.apply, cs.exp_twin, m, md, ()),
        case("x_sin_x_every_transform", cs.XSinX.apply, cs.x_sin_x_twin, m, md, ()),
        case("double_in_place_mark_dirty", cs.DoubleInPlace.apply, cs.double_twin, m, md, ()),
        case("sin_into_fresh_buffers", cs.SinGradIntoGradOutput.apply, cs.sin_twin, m, md, ()),
        case("square_contiguous_copy", cs.SquareContiguousCopy.apply, cs.square_twin, m, md, ()),
        case("square_refuses_strides", cs.SquareRefusesStrides.apply, cs.square_twin, m, md, ()),
        case(
            "exact_zero_divergence",
            cs.self_divergence,
            cs.self_divergence_twin,
            [tensor("b n", low=0.1, high=2)],
            {"b": (1, 3), "n": (1, 8)},
            (),
        ),
    ]
    wrong = [
        # one per check beyond the vjp, and per contract rule
        case("jvp_doubled", cs.ExpJvpDoubled.apply, cs.exp_twin),
        case("hvp_saved_cos", cs.SinSavedCos.apply, cs.sin_twin),
        case("hvp_detached_backward", cs.SinDetachedBackward.apply, cs.sin_twin),
        case("vmap_wrong_out_dims", cs.SinWrongOutDims.apply, cs.sin_twin),
        case("contract_mutates_input", cs.SinMutatesInput.apply, cs.sin_twin),
        case("contract_mutates_grad_output", cs.SinMutatesGradOutput.apply, cs.sin_twin),
        case("contract_strided_weight", cs.ScaleByRowStrided.apply, cs.scale_twin, scale, md),
        case("contract_view_grad", cs.SinViewGrad.apply, cs.sin_twin, m, md),
        case("contract_none_branch", cs.SinCosNoneBranch.apply, cs.sin_cos_twin),
        case("contract_changes_ctx", cs.SinChangesCtx.apply, cs.sin_twin),
        case("contract_non_diff", cs.SinWithNonDifferentiableCopy.apply, cs.sin_double_twin),
        # issue 18's items
        case("raw_write_grad_output", cs.SinRawWriteGradOutput.apply, cs.sin_twin),
        case("raw_write_input", cs.SinRawWriteInput.apply, cs.sin_twin),
        case("in_place_no_mark_dirty", cs.DoubleInPlaceNoDirty.apply, cs.double_twin),
        case("in_place_wrong_grad", cs.DoubleInPlaceWrongGrad.apply, cs.double_twin),
        case("assumes_contiguous", cs.SquareAssumesContiguous.apply, cs.square_twin, m, md),
        case("contiguous_copy_flag", cs.SquareContiguousCopyFlag.apply, cs.square_twin, m, md),
        case("row_normalize_hvp", cs.RowNormalize.apply, cs.row_normalize_twin, rows, md),
        case("clone_scaled_two_modes", cs.CloneScaledBothModes.apply, cs.identity_twin),
    ]
    return clean + wrong


def _weighted_sum(x):
    return (x * torch.linspace(0.5, 2.0, 4, dtype=x.dtype)).sum(-1)


_W = __import__("numpy").linspace(0.5, 2.0, 4)


def _weighted_sum_twin(x):
    return (x * _W).sum(-1)


def _mutation_set() -> list[Case]:
    sys.path.insert(0, os.path.join(ROOT, "tests", "benchmarks"))
    from mutants import MUTANTS, originals

    both = ("float32", "float64")
    out = [
        Case(name, "mutation original", m.original, m.twin, m.inputs, m.dims)
        for name, m in originals().items()
    ]
    # a bug smaller than float32's tolerance (gelu_tanh.constant_typo: 1e-5) is owed in
    # float64 only (its description says so); a float32 flag is right all the same
    out += [
        Case(
            m.name,
            "mutant",
            m.mutated,
            m.twin,
            m.inputs,
            m.dims,
            ("float64",) if "below float32's tolerance" in m.bug else both,
        )
        for m in MUTANTS
    ]
    return out


def _cannot_run(case: Case, dtype: str, finding: Any) -> str | None:
    """Why a pair cannot run in a low dtype (a side raised on the plain call: an op without
    bfloat16 on the CPU; or, for a pair not declared wrong there, torch raised under
    autocast only: an old-style Function without custom_bwd), or None. Such a run is
    skipped, not scored."""
    if dtype not in LOW_DTYPES or finding.check != "error":
        return None
    if finding.reason in ("raised", "nothing_compared"):
        return finding.detail[:200]
    if finding.reason == "autocast" and dtype not in case.wrong_in:
        return finding.detail[:200]
    return None


def run_case(
    case: Case, seeds: Sequence[int], max_examples: int, low_seeds: Sequence[int] = ()
) -> list[dict[str, Any]]:
    """One row per seed and dtype: what the oracle said (a low-dtype run the pair cannot
    make is a row with ``skipped``: its reason)."""
    specs = normalize_inputs(case.inputs)
    bounds = normalize_dims(specs, case.dims)
    user_tol = None
    if "rtol" in case.options or "atol" in case.options:
        user_tol = {
            d: user_tolerance(case.options.get("rtol"), case.options.get("atol"), d)
            for d in ("float32", "float64")
        }
    guard = Guard()
    sides = Sides(
        TorchSide(case.torch_fn, specs, guard), TwinSide(case.jax_fn, specs, guard), specs, user_tol
    )
    strategy = example_strategy(specs, bounds)
    phases = [Phase.explicit, Phase.generate]
    if case.wrong_in:
        parent = settings(database=None, phases=phases)  # no shrinking: found is enough
    else:
        parent = settings(database=None, phases=phases + [Phase.shrink])
    rows = []
    try:
        with torch.random.fork_rng(devices=[]):
            runs = [(seed, d) for seed in seeds for d in ("float32", "float64")]
            runs += [(seed, d) for seed in low_seeds for d in case.low]
            for seed, dtype in runs:
                if True:
                    res = run_config(
                        sides,
                        strategy,
                        name=case.name,
                        dtype=dtype,
                        device="cpu",
                        max_examples=max_examples,
                        seed=seed,
                        parent=parent,
                        fn_refs={},
                        bounds=bounds,
                    )
                    real = [d for d in res.divergences if d.blame != "kink"]
                    why = _cannot_run(case, dtype, real[0]) if real else None
                    if why is not None:
                        rows.append({"seed": seed, "dtype": dtype, "skipped": why})
                        continue
                    rows.append(
                        {
                            "seed": seed,
                            "dtype": dtype,
                            "flagged": bool(real),
                            "examples": res.summary.examples,
                            "finding": None
                            if not real
                            else f"{real[0].check}/{real[0].blame}/{real[0].diagnosis}: "
                            f"{real[0].detail[:200]}",
                        }
                    )
    finally:
        sides.twin.release()
    return rows


def score(case: Case, rows: list[dict[str, Any]]) -> tuple[list, list, int, str]:
    """(false alarms, misses, runs counted, one-line verdict) of one case's rows."""
    rows = [r for r in rows if "skipped" not in r]
    if case.wrong_in:
        mine = [r for r in rows if r["dtype"] in case.wrong_in]
        missed = [r for r in mine if not r["flagged"]]
        alarms = [r for r in rows if r["dtype"] in case.clean_in and r["flagged"]]
        return alarms, missed, len(mine), f"missed {len(missed)}/{len(mine)}"
    flagged = [r for r in rows if r["flagged"]]
    return flagged, [], len(rows), f"false alarms {len(flagged)}/{len(rows)}"


def rescore(paths: Sequence[str], cases: Sequence[Case]) -> int:
    """The summary of saved runs, scored by today's case definitions; a later file's rows
    for a pair replace an earlier one's (a pair run again after a fix)."""
    by_key = {(c.name, c.source): c for c in cases}
    rows: dict[tuple[str, str], list] = {}
    for path in paths:
        with open(path) as fh:
            for res in json.load(fh)["results"]:
                rows[(res["name"], res["source"])] = res["rows"]
    alarms, misses, clean_runs, wrong_runs = [], [], 0, 0
    for key, rs in rows.items():
        case = by_key[key]
        a, m, n, _ = score(case, rs)
        alarms += [(case, r) for r in a]
        misses += [(case, r) for r in m]
        if case.wrong_in:
            wrong_runs += n
        else:
            clean_runs += n
    n_clean = sum(1 for k in rows if not by_key[k].wrong_in)
    print(f"clean pairs: {n_clean}, runs {clean_runs}, false alarms: {len(alarms)}")
    print(f"wrong pairs: {len(rows) - n_clean}, runs {wrong_runs}, misses: {len(misses)}")
    for case, r in alarms:
        print(f"FALSE ALARM {case.name} seed={r['seed']} dtype={r['dtype']}: {r['finding']}")
    for case, r in misses:
        print(f"MISS {case.name} seed={r['seed']} dtype={r['dtype']}")
    return 1 if alarms or misses else 0


def _low_figures(cases: Sequence[Case], results: Sequence[dict[str, Any]]) -> None:
    """The low dtypes' share of the record: per dtype, clean runs and false alarms, wrong
    runs and misses, and the pairs skipped with their reason."""
    by_name = {(c.name, c.source): c for c in cases}
    skipped: dict[str, set[str]] = {}
    for dtype in LOW_DTYPES:
        clean = alarms = wrong = missed = 0
        for res in results:
            case = by_name[(res["name"], res["source"])]
            for r in res["rows"]:
                if r["dtype"] != dtype:
                    continue
                if "skipped" in r:
                    skipped.setdefault(case.name, set()).add(f"{dtype}: {r['skipped'][:120]}")
                elif dtype in case.wrong_in:
                    wrong += 1
                    missed += not r["flagged"]
                else:
                    clean += 1
                    alarms += r["flagged"]
        print(
            f"{dtype}: clean runs {clean}, false alarms {alarms}; wrong runs {wrong}, "
            f"misses {missed}"
        )
    for name, whys in sorted(skipped.items()):
        print(
            f"skipped {name}: {sorted(whys)[0]}"
            + (f" (+{len(whys) - 1} dtypes)" if len(whys) > 1 else "")
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=50, help="random seeds per clean pair")
    p.add_argument("--wrong-seeds", type=int, default=20, help="random seeds per wrong pair")
    p.add_argument(
        "--mutant-seeds",
        type=int,
        default=10,
        help="random seeds per pair of the mutation set (originals and mutants)",
    )
    p.add_argument(
        "--low-seeds",
        type=int,
        default=5,
        help="random seeds per catalog pair in each low dtype (bfloat16, float16, autocast)",
    )
    p.add_argument("--max-examples", type=int, default=20, help="examples per seed and dtype")
    p.add_argument("--seed", type=int, default=2026, help="draws the seeds (replayable)")
    p.add_argument("-k", dest="pattern", default=None, help="only pairs whose name contains this")
    p.add_argument("--no-mutants", action="store_true", help="leave out the mutation set")
    p.add_argument("--json", dest="json_path", default=None)
    p.add_argument(
        "--rescore",
        nargs="+",
        metavar="JSON",
        help="print the summary of saved runs (later files replace a pair's earlier rows)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    cases = _catalog() + _suite() + _beyond() + ([] if args.no_mutants else _mutation_set())
    if args.rescore:
        return rescore(args.rescore, cases)
    if args.pattern:
        cases = [c for c in cases if args.pattern in c.name]
    rng = random.Random(args.seed)
    seeds = [rng.randrange(2**31) for _ in range(args.seeds)]
    wrong_seeds = seeds[: args.wrong_seeds]
    mutant_seeds = seeds[: args.mutant_seeds]
    start = time.perf_counter()
    results = []
    alarms, misses, clean_runs, wrong_runs = [], [], 0, 0
    for i, case in enumerate(cases, 1):
        t0 = time.perf_counter()
        if case.source in ("mutant", "mutation original"):
            mine_seeds = mutant_seeds
        else:
            mine_seeds = wrong_seeds if case.wrong_in else seeds
        rows = run_case(case, mine_seeds, args.max_examples, seeds[: args.low_seeds])
        found_alarms, missed, counted, verdict = score(case, rows)
        alarms += [(case, r) for r in found_alarms]
        misses += [(case, r) for r in missed]
        if case.wrong_in:
            wrong_runs += counted
        else:
            clean_runs += counted
        results.append(
            {"name": case.name, "source": case.source, "wrong_in": case.wrong_in, "rows": rows}
        )
        print(
            f"[{i}/{len(cases)}] {case.name} ({case.source}): {verdict} "
            f"({time.perf_counter() - t0:.1f}s)",
            flush=True,
        )
    elapsed = time.perf_counter() - start
    n_clean = sum(1 for c in cases if not c.wrong_in)
    n_wrong = len(cases) - n_clean
    print(
        f"\nclean pairs: {n_clean}, runs {clean_runs} ({args.seeds} seeds x 2 dtypes; the "
        f"mutation set's originals {args.mutant_seeds} seeds), false alarms: {len(alarms)}"
    )
    print(
        f"wrong pairs: {n_wrong}, runs {wrong_runs} ({args.wrong_seeds} seeds, mutants "
        f"{args.mutant_seeds}, x the dtypes where each is wrong), misses: {len(misses)}"
    )
    _low_figures(cases, results)
    print(f"examples per run: {args.max_examples}; time: {elapsed:.0f} s")
    for case, r in alarms:
        print(f"FALSE ALARM {case.name} seed={r['seed']} dtype={r['dtype']}: {r['finding']}")
    for case, r in misses:
        print(f"MISS {case.name} seed={r['seed']} dtype={r['dtype']}")
    if args.json_path:
        os.makedirs(os.path.dirname(args.json_path) or ".", exist_ok=True)
        with open(args.json_path, "w") as fh:
            json.dump(
                {
                    "seeds": seeds,
                    "max_examples": args.max_examples,
                    "seconds": elapsed,
                    "false_alarms": len(alarms),
                    "misses": len(misses),
                    "clean_runs": clean_runs,
                    "wrong_runs": wrong_runs,
                    "results": results,
                },
                fh,
                indent=1,
            )
    return 1 if alarms or misses else 0


if __name__ == "__main__":
    sys.exit(main())
