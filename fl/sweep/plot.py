"""The plot of a sweep: each setting's mean curves over seeds, with the seeds' 95 % band.

In the style of Sun et al. (2019) and of :mod:`fl.plots`: main-task accuracy dotted, backdoor
accuracy solid, the cumulative mean of the backdoor accuracy dashed, one colour per setting;
the shaded band around each curve is the Student-t 95 % interval of the mean across seeds
(``curves.csv``, :mod:`fl.sweep.summary`). With one seed there is no band.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from fl.plots import PlotError  # noqa: E402
from fl.sweep.manifest import MANIFEST, read_manifest  # noqa: E402
from fl.sweep.summary import read_curves  # noqa: E402

__all__ = ["plot_sweep", "is_sweep_dir"]

#: (metric, line style, legend suffix)
_CURVES = (("main_acc", ":", "main task"), ("backdoor_acc", "-", "backdoor"),
           ("backdoor_acc_cummean", "--", "backdoor, cumulative mean"))


def is_sweep_dir(path: str | Path) -> bool:
    """Whether ``path`` is a sweep directory (it holds ``sweep.json``)."""
    return (Path(path) / MANIFEST).is_file()


def _number(text: str | None) -> float:
    if text is None or text == "":
        return math.nan
    return float(text)


def plot_sweep(sweep_dir: str | Path, out: str | Path, *, title: str | None = None,
               settings: Sequence[str] | None = None, labels: Sequence[str] | None = None) -> Path:
    """Draw the settings of a finished sweep into one PNG.

    Args:
      sweep_dir: the sweep directory (with ``curves.csv``).
      out: the PNG to write.
      title: the figure's title (default: the sweep file's name and the seeds).
      settings: the settings to draw, in this order (default: all, in the sweep's order); one
        figure of a suite sweep that holds several figures' settings.
      labels: the legend name of each drawn setting, in order (default: the setting's name).

    Returns:
      The path written.

    Raises:
      PlotError: no ``curves.csv`` (the sweep has not finished) or nothing in it; a setting the
        sweep does not hold; labels that do not match the settings one to one.
    """
    sweep_dir = Path(sweep_dir)
    try:
        rows = read_curves(sweep_dir / "curves.csv")
    except FileNotFoundError:
        raise PlotError(f"{sweep_dir}: no curves.csv (the sweep has not finished: run it again to continue)") from None
    if not rows:
        raise PlotError(f"{sweep_dir}/curves.csv: no evaluated rounds to plot")
    manifest = read_manifest(sweep_dir)
    held: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        held.setdefault(row["setting"], []).append(row)
    chosen = list(held) if not settings else list(settings)
    missing = [name for name in chosen if name not in held]
    if missing:
        raise PlotError(f"{sweep_dir}: no setting {', '.join(missing)} (it holds: {', '.join(held)})")
    if labels and len(labels) != len(chosen):
        raise PlotError(f"plot: {len(labels)} label(s) for {len(chosen)} setting(s); give one --label per setting")
    names = dict(zip(chosen, labels or chosen))
    colors = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=120)
    for k, (setting, group) in enumerate((name, held[name]) for name in chosen):
        name = names[setting]
        color = colors(k % 10)
        rounds = np.array([int(r["round"]) for r in group]) + 1  # rounds completed
        for metric, style, what in _CURVES:
            mean = np.array([_number(r.get(f"{metric}_mean")) for r in group])
            if np.all(np.isnan(mean)):
                continue
            low = np.array([_number(r.get(f"{metric}_ci95_low")) for r in group])
            high = np.array([_number(r.get(f"{metric}_ci95_high")) for r in group])
            ax.plot(rounds, mean, linestyle=style, color=color, label=f"{name}: {what}")
            if not np.all(np.isnan(low)):
                ax.fill_between(rounds, np.clip(low, 0, 1), np.clip(high, 0, 1), color=color,
                                alpha=0.12 if metric != "main_acc" else 0.08, linewidth=0)
    ax.set_xlabel("rounds trained")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy (mean over seeds, 95 % band)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    seeds = manifest.get("seeds", [])
    ax.set_title(title or f"{Path(str(manifest.get('sweep') or sweep_dir.name)).stem}: {len(seeds)} seed(s)", fontsize="medium")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="x-small", frameon=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out
