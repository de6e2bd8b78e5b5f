"""Statistics across seeds: each metric's mean, standard deviation and 95 % confidence interval.

For a setting run with seeds s_1..s_n, at a round where every seed was evaluated, a metric's
values x_1..x_n give

* ``mean`` = (1/n) sum x_i;
* ``std`` = sqrt(sum (x_i - mean)^2 / (n - 1)), the sample standard deviation;
* ``ci95_low``, ``ci95_high`` = mean -/+ t_{0.975, n-1} * std / sqrt(n), Student's t interval
  for the mean (the seeds' runs are independent draws of the same experiment).

With one seed, ``std`` and the interval are empty. The metrics are every numeric column of the
runs' ``metrics.csv`` except ``round``, wall times (``seconds`` and columns ending in ``_s``
or ``_seconds``, which differ from machine to machine) and the privacy accountant's ``dp_*``
columns (each run's ``dp_epsilon`` is that run's loss alone, and the runs of a sweep compose
rather than average: :mod:`fl.sweep.privacy` writes their composition), plus, for every backdoor accuracy column
(``backdoor*_acc``), its cumulative mean over the evaluated rounds so far (``..._cummean``: the
paper's green curve and its tables' figure of merit), computed per seed before averaging.

``curves.csv`` holds one row per (setting, round); ``summary.csv`` one row per setting at its
last round. Cells are written with ``repr`` so that two sweeps compare bit for bit.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fl.rundir import csv_bytes, read_metrics, write_atomic

__all__ = ["seed_stats", "write_summary", "metric_columns", "STATS", "read_curves"]

#: the statistics written for every metric, in column order
STATS = ("mean", "std", "ci95_low", "ci95_high")


def seed_stats(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation and the Student-t 95 % interval of ``values``.

    NaN values (a metric a seed did not record) are left out. With one value, ``std`` and the
    interval are NaN; with none, everything is NaN.
    """
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    n = x.size
    if n == 0:
        return {k: math.nan for k in STATS}
    mean = float(np.mean(x))
    if n == 1:
        return {"mean": mean, "std": math.nan, "ci95_low": math.nan, "ci95_high": math.nan}
    from scipy.stats import t  # noqa: PLC0415 - slow to import (seconds): only a multi-seed statistic needs it

    std = float(np.std(x, ddof=1))
    half = float(t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}


def _is_timing(column: str) -> bool:
    return column == "seconds" or column.endswith("_s") or column.endswith("_seconds")


def _is_privacy(column: str) -> bool:
    return column.startswith("dp_")


def metric_columns(rows: Sequence[dict[str, float]]) -> list[str]:
    """The metrics of a run's rows (see the module docstring), sorted, ``main_*`` first."""
    columns = {k for row in rows for k in row if k != "round" and not _is_timing(k) and not _is_privacy(k)}
    columns |= {f"{k}_cummean" for k in columns if k.startswith("backdoor") and k.endswith("_acc")}
    return sorted(columns, key=lambda c: (not c.startswith("main_"), c))


def _with_cummean(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """Rows with the cumulative mean of each backdoor accuracy added (over rows that have it)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    out = []
    for row in rows:
        row = dict(row)
        for key in [k for k in row if k.startswith("backdoor") and k.endswith("_acc")]:
            value = row[key]
            if not math.isnan(value):
                sums[key] = sums.get(key, 0.0) + value
                counts[key] = counts.get(key, 0) + 1
            if counts.get(key):
                row[f"{key}_cummean"] = sums[key] / counts[key]
        out.append(row)
    return out


def _blank_nan(row: dict[str, Any]) -> dict[str, Any]:
    """A statistic that is not defined (NaN: one seed's std, say) is an empty cell."""
    return {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def write_summary(out: Path, runs: Sequence[Any]) -> tuple[Path, Path]:
    """Write ``summary.csv`` and ``curves.csv`` of a finished sweep.

    Args:
      out: the sweep directory.
      runs: the sweep's :class:`~fl.sweep.spec.RunSpec` list (settings in order, seeds in order).

    Returns:
      The two paths.

    Raises:
      FileNotFoundError: a run has no metrics.csv.
    """
    by_setting: dict[str, list[Any]] = {}
    for r in runs:
        by_setting.setdefault(r.setting.name, []).append(r)
    grid_keys = list(runs[0].setting.values) if runs else []
    all_metrics: set[str] = set()
    curve_rows, summary_rows = [], []
    for name, group in by_setting.items():
        per_seed = [_with_cummean(read_metrics(out / r.rel_dir / "metrics.csv")) for r in group]
        metrics = sorted({m for rows in per_seed for m in metric_columns(rows)})
        all_metrics.update(metrics)
        indexed = [{int(row["round"]): row for row in rows} for rows in per_seed]
        rounds = sorted(set.intersection(*(set(ix) for ix in indexed)))
        head = {"setting": name, "base": group[0].setting.base, **group[0].setting.values,
                "seeds": " ".join(str(r.seed) for r in group), "n": len(group)}
        for rnd in rounds:
            row: dict[str, Any] = {**head, "round": rnd}
            for m in metrics:
                stats = seed_stats([float(ix[rnd].get(m, math.nan)) for ix in indexed])
                row.update({f"{m}_{s}": v for s, v in stats.items()})
            curve_rows.append(row)
        if rounds:
            summary_rows.append(curve_rows[-1])
    ordered = sorted(all_metrics, key=lambda c: (not c.startswith("main_"), c))
    columns = ["setting", "base", *grid_keys, "seeds", "n", "round"] + [f"{m}_{s}" for m in ordered for s in STATS]
    summary, curves = out / "summary.csv", out / "curves.csv"
    write_atomic(curves, csv_bytes([_blank_nan(r) for r in curve_rows], columns))
    write_atomic(summary, csv_bytes([_blank_nan(r) for r in summary_rows], columns))
    return summary, curves


def read_curves(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``curves.csv`` (cells as text)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
