"""``curves.png``: held-out greedy success against env steps and against wall time.

One line per algorithm: the mean over seeds, each seed's curve linearly interpolated on a common
grid that spans the range every seed covers; the shaded band is the range (min to max) across
seeds. Where the seeds share no range (one evaluation each), the mean point is drawn with a bar
from the lowest to the highest seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.files import atomic_write

WIDTH_IN, HEIGHT_IN, DPI = 11.0, 4.2, 120
GRID_POINTS = 100


def mean_curve(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, mean, low, high)`` of curves ``(x, y)`` (x increasing) on a common grid."""
    lo = max(float(x[0]) for x, _ in curves)
    hi = min(float(x[-1]) for x, _ in curves)
    if hi > lo:
        grid = np.linspace(lo, hi, GRID_POINTS)
        ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    else:  # no common range: the last evaluation of each seed
        grid = np.array([np.mean([x[-1] for x, _ in curves])])
        ys = np.array([[y[-1]] for _, y in curves])
    return grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def plot_curves(records: dict[str, list[dict[str, Any]]], path: Path, title: str) -> dict[str, Any]:
    """Draw the two panels into ``path``; returns ``{"file", "width", "height"}`` in pixels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    for i, (algo, runs) in enumerate(records.items()):
        color = f"C{i}"
        for ax, x_of in ((axes[0], lambda r, row: row[r["curve_x"]]), (axes[1], lambda r, row: row["wall_time"] / 60)):
            curves = []
            for r in runs:
                x = np.array([x_of(r, row) for row in r["curve"]], dtype=float)
                y = np.array([row["success_rate"] for row in r["curve"]], dtype=float)
                order = np.argsort(x, kind="stable")
                curves.append((x[order], y[order]))
            grid, mean, low, high = mean_curve(curves)
            label = f"{algo} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"
            if len(grid) > 1:
                ax.plot(grid, mean, color=color, label=label)
                if len(runs) > 1:
                    ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
                for x, y in curves if len(runs) == 1 else ():
                    ax.plot(x, y, ".", color=color)
            else:
                ax.errorbar(grid, mean, yerr=[mean - low, high - mean], fmt="o", color=color, capsize=3, label=label)
    axes[0].set_xlabel("env steps (bc: solver-labelled steps)")
    axes[1].set_xlabel("wall time (minutes)")
    for ax in axes:
        ax.set_ylabel("held-out greedy success")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(title + " — mean over seeds, shaded: range across seeds", fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, dpi=DPI, format="png"))
    plt.close(fig)
    return {"file": path.name, "width": int(round(WIDTH_IN * DPI)), "height": int(round(HEIGHT_IN * DPI))}
