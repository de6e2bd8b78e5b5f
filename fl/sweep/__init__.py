"""Sweeps: a grid of settings x seeds, run locally or on Ray, summarised across seeds.

* :mod:`fl.sweep.spec`: the sweep file (base config, ``[set]``, ``[grid]``, seeds);
* :mod:`fl.sweep.runner`: one run directory per (setting, seed), the local and Ray engines,
  resuming a killed sweep;
* :mod:`fl.sweep.summary`: mean, standard deviation and 95 % interval of every metric across
  seeds (``summary.csv``, ``curves.csv``);
* :mod:`fl.sweep.privacy`: the privacy loss of all the runs together (``privacy.json``);
* :mod:`fl.sweep.plot`: mean curves with bands.

See docs/sweeps.md.
"""
from fl.sweep.spec import RunSpec, Setting, SweepSpec, find_sweep, load_sweep

__all__ = ["RunSpec", "Setting", "SweepSpec", "find_sweep", "load_sweep"]
