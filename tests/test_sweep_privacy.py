"""A sweep's runs compose: summary.csv carries no across-seed statistics of dp_*, and
privacy.json (and the printed summary) gives the privacy loss of all the runs together
(third privacy audit, F3; docs/privacy.md, "A sweep's runs compose")."""
import json
import math
from pathlib import Path

import pytest

from fl.aggregation.privacy import fixed_size_gaussian_epsilon
from fl.cli import main
from fl.sweep import load_sweep
from fl.sweep.runner import run_sweep
from run_records import accounting, rows

NOISED = """
base = "synthetic_small"
seeds = {seeds}
[set]
"run.rounds" = {rounds}
{data}"aggregation.weighting" = "fixed"
"aggregation.client_clip" = 1.0
"aggregation.noise" = "central"
{extra}
"""


def write(tmp_path: Path, seeds="[0, 1]", rounds=2, extra='"aggregation.noise_std" = 2.0',
          data='"data.path" = "synthetic:12:0"\n') -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(NOISED.format(seeds=seeds, rounds=rounds, extra=extra, data=data))
    return path



def test_seeds_of_one_setting_compose_exactly_and_leave_the_statistics(tmp_path, capsys):
    """The auditor's sweep: one noised setting, two seeds, two rounds each, on the same 12 writers.
    Its summary reported dp_epsilon_mean (one run's 5.02) as if it described the sweep."""
    path = write(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "-q"]) == 0
    summary = rows(out / "summary.csv")
    assert summary and not [c for c in summary[0] if c.startswith("dp_")]
    assert "main_acc_mean" in summary[0]
    privacy = json.loads((out / "privacy.json").read_text())
    spec = load_sweep(path)
    acct = accounting(spec.runs()[0].config)
    per_run = [rows(out / r.rel_dir / "rounds.csv") for r in spec.runs()]
    z = {float(r["dp_noise_multiplier"]) for table in per_run for r in table}
    assert len(z) == 1
    z = z.pop()
    # four rounds, each with its own sample (seeds 0 and 1), through one accountant call
    expected = fixed_size_gaussian_epsilon({z: 4}, acct.sample_size, acct.population, acct.delta)
    assert privacy["composition"] == "exact"
    assert privacy["dp_epsilon_composed"] == pytest.approx(expected, rel=1e-12)
    assert privacy["dp_delta_composed"] == acct.delta
    assert (privacy["runs_counted"], privacy["releases_counted"]) == (2, 4)
    own = [float(table[-1]["dp_epsilon"]) for table in per_run]
    assert [r["dp_epsilon"] for r in privacy["runs"]] == own
    assert privacy["dp_epsilon_composed"] > max(own)
    printed = capsys.readouterr().out
    assert f"privacy of the 2 runs together: epsilon {expected:.4g} at delta" in printed
    assert "exact composition of 4 noised releases" in printed


def test_settings_with_the_same_seed_share_samples_and_lose_amplification(tmp_path):
    """Two grid points with seed 0 draw the same clients in every round: each such round's
    releases are accounted as the plain Gaussian mechanism, as a round released twice on resume."""
    path = write(tmp_path, seeds="[0]", extra='[grid]\n"aggregation.noise_std" = [2.0, 4.0]')
    out = tmp_path / "out"
    run_sweep(load_sweep(path), out, progress=False)
    spec = load_sweep(path)
    accts = [accounting(r.config) for r in spec.runs()]
    zs = [float(rows(out / r.rel_dir / "rounds.csv")[0]["dp_noise_multiplier"]) for r in spec.runs()]
    left = accts[0].delta  # the exact sampler leaves no tail to pay out of delta
    expected = fixed_size_gaussian_epsilon({}, accts[0].sample_size, accts[0].population, left,
                                           unsampled={zs[0]: 2, zs[1]: 2})
    privacy = json.loads((out / "privacy.json").read_text())
    assert privacy["composition"] == "exact"
    assert privacy["dp_epsilon_composed"] == pytest.approx(expected, rel=1e-12)
    sampled = fixed_size_gaussian_epsilon({zs[0]: 2, zs[1]: 2}, accts[0].sample_size, accts[0].population,
                                          accts[0].delta)
    assert privacy["dp_epsilon_composed"] > sampled


def test_runs_on_other_data_compose_basically_and_noiseless_runs_are_unbounded(tmp_path):
    path = write(tmp_path, seeds="[0]", rounds=1, data="",
                 extra='"aggregation.noise_std" = 2.0\n[grid]\n"data.path" = ["synthetic:12:0", "synthetic:10:0"]')
    out = tmp_path / "out"
    spec = load_sweep(path)
    run_sweep(spec, out, progress=False)
    privacy = json.loads((out / "privacy.json").read_text())
    last = [rows(out / r.rel_dir / "rounds.csv")[-1] for r in spec.runs()]
    assert privacy["composition"] == "basic" and "differ in their data" in privacy["reason"]
    assert privacy["dp_epsilon_composed"] == math.fsum(float(r["dp_epsilon"]) for r in last)
    assert privacy["dp_delta_composed"] == math.fsum(float(r["dp_delta"]) for r in last)

    plain = tmp_path / "plain.toml"
    plain.write_text('base = "synthetic_small"\nseeds = [0]\n[set]\n"run.rounds" = 1\n')
    run_sweep(load_sweep(plain), tmp_path / "plain", progress=False)
    privacy = json.loads((tmp_path / "plain" / "privacy.json").read_text())
    assert privacy["composition"] == "unbounded" and privacy["dp_epsilon_composed"] == "inf"
    assert privacy["dp_delta_composed"] is None and "without noise" in privacy["reason"]
