"""Draw the pictures of the documentation site with the oracle itself: ``make pictures``.

Each picture is a real finding, drawn by ``oracle.plot`` (the directional
derivative along a line through the shrunk example: torch's backward, the twin's
``jax.vjp``, float64 finite differences), from a fixed seed:

* ``img/custom_exp.png``: the seeds' ``CustomExp``, whose backward is twice the derivative
  (the tutorial's failing report);
* ``img/smooth_round.png``: the seeds' ``SmoothRound``, whose backward drops a factor 0.5;
* ``img/huber_boundary.png``: a Huber backward clipped at 2 instead of 1
  (``tests/specimens.py``);
* ``img/kink_abs.png``: ``abs`` at 0, where torch and JAX pick different derivatives and
  both are right (a kink, not a divergence).

Run from the repository root: ``python docs/_tools/draw_pictures.py [--out docs/img]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the catalog `losses` and the test specimens

import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402

import oracle  # noqa: E402
from oracle import choice, tensor  # noqa: E402


def custom_exp(out: Path) -> Path:
    from losses import CustomExp, custom_exp_jax

    report = oracle.verify(
        CustomExp.apply,
        custom_exp_jax,
        [tensor("b n", low=-20, high=20)],
        dtypes=("float64",),
        max_examples=50,
        seed=0,
    )
    return Path(oracle.plot(report.findings[0], str(out / "custom_exp.png")))


def smooth_round(out: Path) -> Path:
    from losses import SmoothRound, smooth_round_jax

    report = oracle.verify(
        SmoothRound.apply,
        smooth_round_jax,
        [tensor("n", low=-2, high=3), 10.0],
        dtypes=("float64",),
        max_examples=30,
        seed=0,
    )
    return Path(oracle.plot(report.findings[0], str(out / "smooth_round.png")))


def huber_boundary(out: Path) -> Path:
    from tests.specimens import HuberWrongBoundary, huber_twin

    report = oracle.verify(
        HuberWrongBoundary.apply,
        huber_twin,
        [tensor("n", low=-3, high=3)],
        dtypes=("float64",),
        max_examples=50,
        seed=0,
    )
    return Path(oracle.plot(report.findings[0], str(out / "huber_boundary.png")))


def kink_abs(out: Path) -> Path:
    report = oracle.verify(
        lambda x: torch.abs(x).sum(),
        lambda x: jnp.abs(x).sum(),
        [choice("n", [0.0, 1.0], grad=True)],
        name="abs",
        dtypes=("float64",),
        max_examples=20,
        seed=0,
    )
    return Path(oracle.plot(report.kinks[0], str(out / "kink_abs.png")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "img"), help="directory for the PNGs")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for draw in (custom_exp, smooth_round, huber_boundary, kink_abs):
        print(f"wrote {draw(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
