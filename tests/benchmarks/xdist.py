"""When does ``pytest -n 2`` pay on a user's project? Serial against two xdist workers
over projects of 2, 4 and 8 registered pairs, with a warm compilation cache.

Each project (written into a temporary directory) has N small elementwise Functions
with their twins and one test function, in one of the two layouts of docs/how-to/pytest.md: the pair
module named in ``pytest.ini`` (``oracle_modules``: the xdist controller, which runs no
test, never imports torch or JAX) or imported by ``conftest.py`` (every process imports
them, the controller too). Each configuration runs once cold (filling
``.oracle_cache/jax``), then ``--rounds`` times warm; the table shows the median warm
wall time. No ``--oracle-device``: the header finds the devices, as for a user.

    .venv/bin/python tests/benchmarks/xdist.py [--pairs 2 4 8] [--rounds 2] [--layout ini conftest]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: (torch expression, its derivative, JAX expression) of x
_FUNCTIONS = [
    ("torch.tanh(x)", "1 - torch.tanh(x) ** 2", "jnp.tanh(x)"),
    ("torch.sin(x)", "torch.cos(x)", "jnp.sin(x)"),
    ("x * x", "2 * x", "x * x"),
    ("torch.exp(x / 4)", "torch.exp(x / 4) / 4", "jnp.exp(x / 4)"),
    ("torch.sigmoid(x)", "torch.sigmoid(x) * (1 - torch.sigmoid(x))", "jax.nn.sigmoid(x)"),
    ("torch.atan(x)", "1 / (1 + x * x)", "jnp.arctan(x)"),
    ("x ** 3", "3 * x * x", "x ** 3"),
    ("torch.cos(x)", "-torch.sin(x)", "jnp.cos(x)"),
]


def _module(n: int) -> str:
    out = [
        "import jax",
        "import jax.numpy as jnp",
        "import torch",
        "import oracle",
        "from oracle import tensor",
        "",
    ]
    for i in range(n):
        f, df, jf = _FUNCTIONS[i % len(_FUNCTIONS)]
        scale = 1 + i // len(_FUNCTIONS)  # distinct twins past the eighth
        out += [
            f"def twin_{i}(x):",
            f"    return {scale} * {jf}",
            "",
            f"@oracle.twin(twin_{i}, inputs=[tensor('b n', low=-3, high=3)], name='pair_{i}')",
            f"class Pair{i}(torch.autograd.Function):",
            "    @staticmethod",
            "    def forward(ctx, x):",
            "        ctx.save_for_backward(x)",
            f"        return {scale} * {f}",
            "",
            "    @staticmethod",
            "    def backward(ctx, g):",
            "        (x,) = ctx.saved_tensors",
            f"        return g * {scale} * ({df})",
            "",
        ]
    return "\n".join(out)


def _project(path: Path, n: int, layout: str = "ini") -> None:
    path.mkdir(parents=True)
    (path / "mypairs.py").write_text(_module(n))
    if layout == "ini":
        (path / "pytest.ini").write_text("[pytest]\noracle_modules = mypairs\n")
    else:
        (path / "conftest.py").write_text("import mypairs  # noqa: F401\n")
    (path / "test_twins.py").write_text(
        "def test_twins(oracle_pair, oracle_check):\n    oracle_check(oracle_pair)\n"
    )


def _pytest(path: Path, workers: int) -> float:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--oracle-seed=3"]
    cmd += ["-n", str(workers)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}"}
    env.pop("ORACLE_CACHE_DIR", None)  # the project's own .oracle_cache
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=path, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(out.stdout[-2000:] + out.stderr[-2000:])
    return wall


def measure(pairs: list[int], rounds: int, layout: str = "ini") -> list[dict[str, Any]]:
    rows = []
    for n in pairs:
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp) / "project"
            _project(project, n, layout)
            _pytest(project, 0)  # fills the compile cache (both configurations share it)
            walls: dict[int, list[float]] = {0: [], 2: []}
            for _ in range(rounds):
                for workers in (0, 2):
                    walls[workers].append(_pytest(project, workers))
        serial, parallel = statistics.median(walls[0]), statistics.median(walls[2])
        rows.append(
            {
                "layout": layout,
                "pairs": n,
                "serial_s": serial,
                "n2_s": parallel,
                "speedup": serial / parallel,
            }
        )
        print(
            f"{layout}, {n} pairs: serial {serial:.1f} s, -n 2 {parallel:.1f} s ({serial / parallel:.2f}x)",
            file=sys.stderr,
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--layout", nargs="+", choices=("ini", "conftest"), default=["ini"])
    args = ap.parse_args()
    rows = [row for layout in args.layout for row in measure(args.pairs, args.rounds, layout)]
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
