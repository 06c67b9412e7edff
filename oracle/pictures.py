"""Pictures of a gradient divergence: the directional derivative along a line.

Through the finding's example :math:`x`, along the direction :math:`u` in which torch
and the twin disagree, the derivative of :math:`s \\mapsto \\varphi(x + s u)` (with
:math:`\\varphi = \\langle v, f \\rangle`) is drawn three ways: torch's backward, the
twin's ``jax.vjp`` and float64 finite differences. "Scaled by 2", a wrong branch
boundary or a kink show at a glance. matplotlib is optional (``pip install .[plot]``);
only its object-oriented API is used, so no global pyplot state is touched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .judge.probe import Probe, direction, directional_derivative, shift
from .pair.bridge import precision_scope
from .pair.outputs import cotangents_for
from .pair.torch_side import TorchSide
from .pair.twin_side import TwinSide

__all__ = ["plot", "plot_divergence", "line_data"]


def line_data(d: Any, points: int = 61) -> dict[str, np.ndarray]:
    """The three curves for finding ``d`` (pure data; what the plot draws)."""
    data = d.replay_data
    if not data:
        raise ValueError(f"{d.name or 'pair'}: this finding carries no example to plot")
    specs, values, device = data["specs"], data["values"], d.device
    torch_side, twin = TorchSide(data["torch_fn"], specs), TwinSide(data["jax_fn"], specs)
    diff_pos = [i for i, spec in enumerate(specs) if getattr(spec, "grad", False)]
    k = diff_pos.index(d.argument)
    try:
        with precision_scope("float64", device):
            shapes = twin.output_shapes(values, "float64", device)
        cots = cotangents_for(shapes, data["cotangent_seed"])
        probe = Probe(torch_side, twin, values, diff_pos, cots, device)
        return _lines(probe, k, points)
    finally:
        twin.release()


def _lines(probe: Probe, k: int, points: int) -> dict[str, np.ndarray]:
    t, j = probe.grads(probe.x)
    diff = (t[k] - j[k]) if t[k] is not None else j[k]
    u = direction(diff) if np.any(diff != 0) else np.ones_like(j[k])
    width = 0.5 * max(1.0, float(np.max(np.abs(probe.x[k]))) if probe.x[k].size else 1.0)
    s = np.linspace(-width, width, points)
    torch_line, twin_line, fd_line = [], [], []
    for si in s:
        xs = shift(probe.x, k, u, float(si))
        tg, jg = probe.grads(xs)
        torch_line.append(float(np.sum(tg[k] * u)) if tg[k] is not None else 0.0)
        twin_line.append(float(np.sum(jg[k] * u)))
        fd_line.append(directional_derivative(lambda x: probe.phi(x, "twin"), xs, k, u)[0])
    return {
        "s": s,
        "torch": np.array(torch_line),
        "twin": np.array(twin_line),
        "fd": np.array(fd_line),
    }


def plot_divergence(d: Any, path: str, points: int = 61) -> str:
    """Write the picture of finding ``d`` to ``path`` (PNG) and return the path."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "plots need matplotlib: pip install 'gradient-oracle[plot]' (or pip install matplotlib)"
        ) from exc
    data = line_data(d, points)
    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(
        data["s"], data["fd"], color="0.55", lw=5, alpha=0.6, label="finite differences (float64)"
    )
    ax.plot(data["s"], data["twin"], color="tab:blue", lw=1.8, label="twin: jax.vjp")
    ax.plot(
        data["s"],
        data["torch"],
        color="tab:red",
        lw=1.4,
        ls="--",
        label="torch: hand-written backward",
    )
    ax.axvline(0.0, color="0.3", lw=0.8, ls=":")
    ax.set_xlabel("s  (the example is at s = 0; u = direction of the disagreement)")
    ax.set_ylabel("d/ds <v, f(x + s u)>")
    ax.set_title(
        f"{d.name or 'pair'}: argument {d.argument}, {d.dtype} on {d.device}: "
        f"blame {d.blame}, {d.diagnosis}",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot(found: Any, path: str, index: int = 0) -> str:
    """Draw a gradient finding into a PNG at ``path`` and return the path.

    ``found`` is a :class:`~oracle.report.records.Report` (its ``index``-th gradient
    divergence is drawn) or one :class:`~oracle.report.records.Divergence`. Along a line
    through the finding's example: torch's backward, the twin's ``jax.vjp`` and finite
    differences."""
    if hasattr(found, "findings"):
        candidates = [d for d in found.findings if d.check == "vjp" and d.replay_data]
        if not candidates:
            raise ValueError(f"{found.name}: no gradient divergence to plot")
        found = candidates[min(index, len(candidates) - 1)]
    return plot_divergence(found, path)
