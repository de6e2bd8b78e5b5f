"""The privacy loss of a sweep's runs together (``privacy.json``).

Each run's ``dp_epsilon`` is the loss of that run alone. A sweep runs every setting once per seed
on the same clients, and its directory holds every run's models, so whoever holds the sweep faces
the composition of all its runs (docs/privacy.md, "A sweep's runs compose"). This module computes
it from the runs' own records:

* **exact**: when every run adds noise and all share the data (``data.path``,
  ``data.max_clients``), the sample size K, the population N, the sampling model and delta, all
  their releases go into one call of the accountant
  (:func:`fl.aggregation.privacy.fixed_size_rdp_epsilon`, which takes ``{z: rounds}``). A round's client
  sample is a function of ``(run.seed, round)`` alone (given N and K), so runs with the same seed
  (the settings of a grid) used the *same* sample in a round, and a round a resumed run released
  again used its sample twice: every release of a sample used more than once is accounted as the
  plain Gaussian mechanism, without amplification by sampling (the rule of "Resuming a run");
  a sample used once stays sampled. Each run's accountant is rebuilt from its config exactly as
  the run built it, and must reproduce the run's recorded final ``dp_epsilon``;
* **basic**: otherwise (runs on other data or of another shape, or a recorded epsilon the
  rebuilt accountant does not reproduce), the sum of the runs' final epsilons and the sum of
  their deltas: basic composition, a valid upper bound;
* **unbounded**: some run released models without noise, so no finite epsilon covers the sweep.

``privacy.json`` holds ``composition``, ``dp_epsilon_composed`` and ``dp_delta_composed`` (an
infinite epsilon is written ``"inf"``, as the CSV files write it; ``null`` where there is no
delta), ``reason``, ``runs_counted``, ``releases_counted`` and, per run, its own final
``dp_epsilon`` and ``dp_delta``.
"""
from __future__ import annotations

import collections
import csv
import json
import math
from pathlib import Path
from typing import Any, Sequence

from fl.aggregation.build import build_pipeline
from fl.aggregation.privacy import fixed_size_rdp_epsilon
from fl.config import parse_config, read_toml
from fl.experiment import open_dataset, resolve_data_path
from fl.model import num_params
from fl.rundir import RunDirectory, read_rereleased, write_atomic

__all__ = ["sweep_privacy", "write_privacy", "describe", "PRIVACY_FILE"]

PRIVACY_FILE = "privacy.json"
#: how close a rebuilt accountant must come to a run's recorded epsilon (both are the same
#: computation; anything larger means the records and the accountant disagree)
_REPRODUCED = 1e-9


def _number(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    value = float(text)
    return None if math.isnan(value) else value


def _run_record(out: Path, spec: Any) -> dict[str, Any]:
    """What the run's records say: its config, each noised round's multiplier, its ledger and its
    final epsilon and delta."""

    root = out / spec.rel_dir
    directory = RunDirectory(root)
    cfg = parse_config(read_toml(directory.config), source=directory.config)
    multipliers: dict[int, float] = {}
    epsilon = delta = None
    with open(directory.rounds, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            z = _number(row.get("dp_noise_multiplier"))
            if z is not None:
                multipliers[int(row["round"])] = z
            if _number(row.get("dp_epsilon")) is not None:
                epsilon, delta = _number(row.get("dp_epsilon")), _number(row.get("dp_delta"))
    return {"spec": spec, "cfg": cfg, "multipliers": multipliers,
            "ledger": read_rereleased(directory) if cfg.aggregation.noise != "none" else [],
            "dp_epsilon": epsilon, "dp_delta": delta}


def _accountant(cfg, populations: dict) -> Any:
    """The run's accountant, built from its config as :class:`~fl.simulation.Simulation` builds
    it (``None`` if its pipeline has none)."""

    key = _data_key(cfg)
    if key not in populations:
        populations[key] = len(open_dataset(cfg).train_clients())
    stage = build_pipeline(cfg.aggregation, clients_per_round=cfg.fedavg.clients_per_round,
                           dim=num_params(cfg.model.name), population=populations[key],
                           with_replacement=cfg.fedavg.sampling == "with_replacement")
    while stage is not None and getattr(stage, "accounting", None) is None:
        stage = getattr(stage, "inner", None)
    return None if stage is None else stage.accounting


def _data_key(cfg) -> tuple[str, Any]:

    return resolve_data_path(cfg.data.path, cfg.source), cfg.data.max_clients


def _releases(record: dict[str, Any]) -> list[tuple[tuple[int, int], float]]:
    """``((seed, round), multiplier)`` of every noised release of the run, its ledger's included."""
    seed = record["cfg"].run.seed
    return [((seed, r), z) for r, z in record["multipliers"].items()] + \
        [((seed, r), z) for r, z in record["ledger"]]


def _composed_epsilon(parts: list[tuple[Any, list[tuple[tuple[int, int], float]]]]) -> float:
    """Epsilon of the releases of runs that share one accountant's shape (``parts``: each run's
    accountant and releases); samples used more than once are accounted unsampled."""

    uses = collections.Counter(key for _, releases in parts for key, _ in releases)
    sampled: collections.Counter = collections.Counter()
    plain: collections.Counter = collections.Counter()
    for _, releases in parts:
        for key, z in releases:
            (plain if uses[key] > 1 else sampled)[z] += 1
    first = parts[0][0]
    return float(fixed_size_rdp_epsilon(dict(sampled), first.sample_size, first.population, first.delta,
                                        unsampled=dict(plain)))


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return False
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= _REPRODUCED * max(1.0, abs(b))


def sweep_privacy(out: str | Path, runs: Sequence[Any]) -> dict[str, Any]:
    """The composed privacy loss of the sweep's runs (see the module docstring).

    Args:
      out: the sweep directory.
      runs: its :class:`~fl.sweep.spec.RunSpec` list.

    Returns:
      What ``privacy.json`` holds.
    """
    out = Path(out)
    records = [_run_record(out, spec) for spec in runs]
    per_run = [{"run": r["spec"].rel_dir, "setting": r["spec"].setting.name, "seed": r["spec"].seed,
                "noise": r["cfg"].aggregation.noise, "dp_epsilon": r["dp_epsilon"], "dp_delta": r["dp_delta"],
                "noised_releases": len(_releases(r))} for r in records]
    result: dict[str, Any] = {"runs_counted": len(records),
                              "releases_counted": sum(p["noised_releases"] for p in per_run)}
    noiseless = [r["spec"].rel_dir for r in records if r["cfg"].aggregation.noise == "none" or r["dp_epsilon"] is None]
    if noiseless:
        why = (f"{len(noiseless)} of {len(records)} run(s) release models without noise or record no dp_epsilon "
               f"({', '.join(noiseless[:3])}{' ...' if len(noiseless) > 3 else ''}): no finite epsilon covers "
               "the sweep")
        result.update(composition="unbounded", dp_epsilon_composed=math.inf, dp_delta_composed=None, reason=why)
        return {**result, "runs": per_run}
    basic = {"composition": "basic",
             "dp_epsilon_composed": math.fsum(r["dp_epsilon"] for r in records),
             "dp_delta_composed": math.fsum(r["dp_delta"] or 0.0 for r in records)}
    populations: dict = {}
    parts, why = [], None
    for record in records:
        acct = _accountant(record["cfg"], populations)
        name = record["spec"].rel_dir
        if acct is None or acct.sampling != "fixed_size":
            why = f"{name}: its accountant is not the fixed-size one"
            break
        own = _composed_epsilon([(acct, _releases(record))])
        if not _same(own, record["dp_epsilon"]):
            why = (f"{name}: its recorded dp_epsilon {record['dp_epsilon']!r} is not what its rebuilt accountant "
                   f"gives ({own!r})")
            break
        parts.append((acct, _releases(record)))
    if why is None:
        shapes = {(_data_key(r["cfg"]), a.population, a.sample_size, a.delta, a.sampling)
                  for r, (a, _) in zip(records, parts)}
        if len(shapes) > 1:
            why = "the runs differ in their data, population, clients per round or delta"
    if why is not None:
        result.update(basic, reason=f"basic composition (sum of the runs' epsilons and deltas), an upper bound: {why}")
        return {**result, "runs": per_run}
    result.update(composition="exact", dp_epsilon_composed=_composed_epsilon(parts),
                  dp_delta_composed=parts[0][0].delta,
                  reason="one accountant over every release of every run (same data, population, clients per "
                         "round and delta); a round's sample used by more than one release (runs with the same "
                         "seed, rounds released again on resume) is accounted without amplification by sampling")
    return {**result, "runs": per_run}


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def write_privacy(out: str | Path, runs: Sequence[Any]) -> tuple[Path, dict[str, Any]]:
    """Write ``privacy.json`` in the sweep directory; its path and contents."""
    privacy = sweep_privacy(out, runs)
    path = Path(out) / PRIVACY_FILE
    write_atomic(path, (json.dumps(_json_value(privacy), indent=2, allow_nan=False) + "\n").encode())
    return path, privacy


def describe(privacy: dict[str, Any]) -> str:
    """One line for the sweep's printed summary."""
    eps, delta = privacy["dp_epsilon_composed"], privacy["dp_delta_composed"]
    runs = privacy["runs_counted"]
    if privacy["composition"] == "unbounded":
        return f"privacy of the {runs} runs together: unbounded ({privacy['reason']})"
    return (f"privacy of the {runs} runs together: epsilon {eps:.4g} at delta "
            f"{delta:.3g}, {privacy['composition']} composition of {privacy['releases_counted']} noised "
            f"releases; each run's dp_epsilon is its loss alone")
