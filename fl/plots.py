"""Accuracy-per-round plots of one or more runs, in the style of Sun et al. (2019).

Main-task accuracy is drawn for every run. When a run's ``metrics.csv`` has a ``backdoor_acc``
column, the figure follows the paper: main task dotted, backdoor accuracy solid, and the
cumulative mean of the backdoor accuracy (``mean_{s <= t} backdoor_acc_s``) in green.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from fl.rundir import read_metrics
from rangeproof.blame import SabreError

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ["plot_runs", "BACKDOOR_COLUMN", "PlotError"]

#: the metrics.csv column holding backdoor accuracy
BACKDOOR_COLUMN = "backdoor_acc"


class PlotError(SabreError, ValueError):
    """A run directory cannot be plotted (no metrics.csv, or no main_acc column)."""


def _load(run_dir: Path) -> dict[str, np.ndarray]:
    path = run_dir / "metrics.csv" if run_dir.is_dir() else run_dir
    try:
        rows = read_metrics(path)
    except FileNotFoundError:
        raise PlotError(f"{run_dir}: no metrics.csv (is it a run directory?)") from None
    if not rows or "main_acc" not in rows[0]:
        raise PlotError(f"{path}: no evaluated rounds to plot")
    columns = {key for row in rows for key in row}
    return {key: np.array([row.get(key, np.nan) for row in rows], dtype=float) for key in columns}


def _label(run_dir: Path) -> str:
    return (run_dir if run_dir.is_dir() else run_dir.parent).resolve().name


def plot_runs(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw accuracy per round of the given runs into one PNG.

    Args:
      run_dirs: run directories (or their ``metrics.csv`` files).
      out: the PNG to write.
      labels: legend names, one per run; defaults to the directory names.
      title: figure title; none by default.

    Returns:
      The path written.

    Raises:
      PlotError: a run has no metrics to plot.
      ValueError: ``labels`` does not match ``run_dirs``.
    """
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise ValueError("plot_runs: no run to plot")
    if labels is not None and len(labels) != len(dirs):
        raise ValueError(f"plot_runs: {len(labels)} labels for {len(dirs)} runs")
    names = list(labels) if labels is not None else [_label(d) for d in dirs]
    data = [_load(d) for d in dirs]
    single = len(dirs) == 1
    colors = plt.get_cmap("tab10")
    greens = plt.get_cmap("Greens")

    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=120)
    for k, (name, cols) in enumerate(zip(names, data)):
        rounds = cols["round"] + 1  # rounds completed
        has_backdoor = BACKDOOR_COLUMN in cols and not np.all(np.isnan(cols[BACKDOOR_COLUMN]))
        main_color = "tab:blue" if single else colors(k % 10)
        ax.plot(rounds, cols["main_acc"], linestyle=":" if has_backdoor else "-", color=main_color,
                label=f"{name}: main task" if has_backdoor or single else name)
        if has_backdoor:
            backdoor = cols[BACKDOOR_COLUMN]
            valid = ~np.isnan(backdoor)
            cumulative = np.cumsum(np.where(valid, backdoor, 0.0)) / np.maximum(np.cumsum(valid), 1)
            ax.plot(rounds[valid], backdoor[valid], linestyle="-", color="tab:red" if single else colors(k % 10),
                    label=f"{name}: backdoor")
            ax.plot(rounds[valid], cumulative[valid], linestyle="-" if single else "--",
                    color="green" if single else greens(0.45 + 0.5 * k / max(len(dirs) - 1, 1)),
                    label=f"{name}: backdoor, cumulative mean")
    ax.set_xlabel("rounds trained")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    # below the axes, so that it never hides a curve
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small", frameon=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out
