"""`sabre sweep`: the sweep file, the local engine, resuming, the statistics across seeds, the plot."""
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from fl.cli import main
from fl.config import ConfigError
from fl.sweep import load_sweep
from fl.sweep.runner import parse_resources, run_sweep
from fl.sweep.spec import BUNDLED_SWEEPS
from fl.sweep.summary import seed_stats

SWEEP = """
base = "synthetic_small"
seeds = [0, 1]
[set]
"run.rounds" = {rounds}
"run.checkpoint_every" = 1
"data.path" = "synthetic:8:0"
"fedavg.clients_per_round" = 3
[grid]
"fedavg.client_lr" = [0.05, 0.1]
"""


def write_sweep(tmp_path: Path, rounds: int = 2, text: str = SWEEP, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text.format(rounds=rounds))
    return path


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------- the sweep file
def test_settings_cross_bases_and_grid(tmp_path):
    spec = load_sweep(write_sweep(tmp_path))
    settings = spec.settings()
    assert [s.name for s in settings] == ["synthetic_small__client_lr=0.05", "synthetic_small__client_lr=0.1"]
    runs = spec.runs()
    assert [(r.setting.name, r.seed) for r in runs] == [(s.name, k) for s in settings for k in (0, 1)]
    cfg = runs[3].config
    assert cfg.run.seed == 1 and cfg.fedavg.client_lr == 0.1 and cfg.run.rounds == 2
    assert cfg.fedavg.clients_per_round == 3 and cfg.data.path == "synthetic:8:0"
    assert runs[3].rel_dir == "runs/synthetic_small__client_lr=0.1/seed_1"


def test_a_list_of_bases(tmp_path):
    path = write_sweep(tmp_path, text='base = ["synthetic_small", "demo"]\nseeds = [3]\n')
    spec = load_sweep(path)
    assert [s.name for s in spec.settings()] == ["synthetic_small", "demo"]
    assert [r.config.run.seed for r in spec.runs()] == [3, 3]


@pytest.mark.parametrize("text, words", [
    ('seeds = [0]\n', "base"),
    ('base = "synthetic_small"\n', "seeds"),
    ('base = "synthetic_small"\nseeds = [0, 0]\n', "listed twice"),
    ('base = "synthetic_small"\nseeds = [-1]\n', "seeds"),
    ('base = "no_such_config"\nseeds = [0]\n', "no_such_config"),
    ('base = "synthetic_small"\nseeds = [0]\nrounds = 3\n', "rounds: unknown entry"),
    ('base = "synthetic_small"\nseeds = [0]\n[set]\nrounds = 3\n', "section.key"),
    ('base = "synthetic_small"\nseeds = [0]\n[set]\n"run.seed" = 3\n', "run.seed"),
    ('base = "synthetic_small"\nseeds = [0]\n[grid]\n"fedavg.epochs" = []\n', "non-empty list"),
    ('base = "synthetic_small"\nseeds = [0]\n[grid]\n"fedavg.epochs" = 2\n', "non-empty list"),
    ('base = "synthetic_small"\nseeds = [0]\n[set]\n"fedavg.epochs" = 1\n[grid]\n"fedavg.epochs" = [1, 2]\n', "one place"),
    ('base = "synthetic_small"\nseeds = [0]\n[grid]\n"fedavg.epochz" = [1, 2]\n', "epochz"),
    ('base = "synthetic_small"\nseeds = [0]\n[grid]\n"fedavg.epochs" = [0]\n', "fedavg.epochs"),
    ('base = "synthetic_small"\nseeds = [0\n', "not valid TOML"),
])
def test_bad_sweep_files_are_refused_with_the_entry_named(tmp_path, text, words):
    with pytest.raises(ConfigError, match=None) as info:
        load_sweep(write_sweep(tmp_path, text=text))
    assert words in str(info.value)


def test_resources():
    assert parse_resources(None) == {"cpu": 1.0}
    assert parse_resources("cpu=2,gpu=0.5,big_memory=1") == {"cpu": 2.0, "gpu": 0.5, "big_memory": 1.0}
    for bad in ("cpu", "cpu=x", "gpu=-1", "cpu=0", "cpu=1.5", "=2"):
        with pytest.raises(ConfigError):
            parse_resources(bad)


def test_the_cli_refuses_bad_options_in_one_line(tmp_path, capsys):
    path = write_sweep(tmp_path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "s"), "--address", "127.0.0.1:1"]) == 2
    assert "--address" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.toml")]) == 2
    assert "no such sweep file" in capsys.readouterr().err


# ---------------------------------------------------------------------------- statistics
def test_seed_stats_is_the_student_t_interval():
    from scipy import stats

    x = [0.2, 0.35, 0.5, 0.41]
    s = seed_stats(x)
    assert s["mean"] == pytest.approx(np.mean(x))
    assert s["std"] == pytest.approx(np.std(x, ddof=1))
    low, high = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (s["ci95_low"], s["ci95_high"]) == (pytest.approx(low), pytest.approx(high))
    one = seed_stats([0.3])
    assert one["mean"] == 0.3 and all(math.isnan(one[k]) for k in ("std", "ci95_low", "ci95_high"))
    assert seed_stats([0.3, math.nan])["mean"] == 0.3  # a seed without the metric is left out
    assert math.isnan(seed_stats([])["mean"])


# ---------------------------------------------------------------------------- the local engine
def test_local_sweep_writes_runs_summary_curves_and_plot(tmp_path):
    spec = load_sweep(write_sweep(tmp_path))
    out = tmp_path / "sweep"
    result = run_sweep(spec, out, progress=False)
    assert (result.total, result.skipped, result.ran) == (4, 0, 4)
    for r in spec.runs():
        run = out / r.rel_dir
        assert (run / "checkpoints" / "round_000002.pt").is_file() and (run / "metrics.csv").is_file()
    manifest = json.loads((out / "sweep.json").read_text())
    assert [s["name"] for s in manifest["settings"]] == [s.name for s in spec.settings()]
    summary = rows(out / "summary.csv")
    assert [r["setting"] for r in summary] == [s.name for s in spec.settings()]
    assert all(r["n"] == "2" and r["round"] == "1" and r["seeds"] == "0 1" for r in summary)
    assert [r["fedavg.client_lr"] for r in summary] == ["0.05", "0.1"]
    assert "seconds_mean" not in summary[0]  # wall times differ between machines: left out

    # the statistics are those of the seeds' own metrics.csv
    from fl.experiment import read_metrics

    last = [read_metrics(out / r.rel_dir / "metrics.csv")[-1]["main_acc"] for r in spec.runs()[:2]]
    expected = seed_stats(last)
    for stat in ("mean", "std", "ci95_low", "ci95_high"):
        assert float(summary[0][f"main_acc_{stat}"]) == expected[stat]
    curves = rows(out / "curves.csv")
    assert [(c["setting"], c["round"]) for c in curves] == [(s.name, str(k)) for s in spec.settings() for k in (0, 1)]
    assert curves[-1] == summary[-1]
    assert (out / "plot.png").stat().st_size > 10_000

    # a second start skips every finished run and gives the same summary
    before = (out / "summary.csv").read_bytes()
    again = run_sweep(spec, out, progress=False)
    assert (again.skipped, again.ran) == (4, 0)
    assert (out / "summary.csv").read_bytes() == before


def test_a_stopped_sweep_continues_each_run_from_its_checkpoint(tmp_path):
    out = tmp_path / "sweep"
    full = run_sweep(load_sweep(write_sweep(tmp_path, rounds=3, name="full.toml")), tmp_path / "full", progress=False)
    # the same sweep stopped after 2 rounds (run.rounds may change on resume), then continued to 3
    run_sweep(load_sweep(write_sweep(tmp_path, rounds=2)), out, progress=False)
    notes = []
    result = run_sweep(load_sweep(write_sweep(tmp_path, rounds=3)), out, progress=False, log=notes.append)
    assert (result.skipped, result.ran) == (0, 4)
    assert any("continue from their last checkpoint" in n for n in notes)
    assert (out / "summary.csv").read_bytes() == (full.out / "summary.csv").read_bytes()
    assert (out / "curves.csv").read_bytes() == (full.out / "curves.csv").read_bytes()
    log = (out / "runs" / "synthetic_small__client_lr=0.1" / "seed_1" / "run.log").read_text()
    assert "resumed from round_000002.pt" in log


def test_a_run_directory_of_another_config_is_refused(tmp_path):
    out = tmp_path / "sweep"
    run_sweep(load_sweep(write_sweep(tmp_path)), out, progress=False)
    changed = SWEEP.replace('"fedavg.clients_per_round" = 3', '"fedavg.clients_per_round" = 4')
    with pytest.raises(ConfigError, match="another configuration.*fedavg.clients_per_round"):
        run_sweep(load_sweep(write_sweep(tmp_path, text=changed)), out, progress=False)


def test_a_failing_run_is_named_and_the_others_finish(tmp_path, capsys):
    path = write_sweep(tmp_path, rounds=3, name="three.toml")
    out = tmp_path / "sweep"
    run_sweep(load_sweep(write_sweep(tmp_path, rounds=2)), out, progress=False)
    broken = out / "runs" / "synthetic_small__client_lr=0.05" / "seed_1"
    for checkpoint in (broken / "checkpoints").glob("round_*.pt"):
        checkpoint.write_bytes(b"not a checkpoint")
    assert main(["sweep", str(path), "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "run runs/synthetic_small__client_lr=0.05/seed_1 failed" in err and "no checkpoint verifies" in err
    others = [d for d in (out / "runs").glob("*/seed_*") if d != broken]
    assert len(others) == 3 and all((d / "checkpoints" / "round_000003.pt").is_file() for d in others)


def test_a_directory_that_is_no_run_is_refused_before_anything_runs(tmp_path, capsys):
    path = write_sweep(tmp_path)
    out = tmp_path / "sweep"
    stray = out / "runs" / "synthetic_small__client_lr=0.1" / "seed_0"
    stray.mkdir(parents=True)
    (stray / "notes.txt").write_text("mine")
    assert main(["sweep", str(path), "--out", str(out), "-q"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert not list((out / "runs").glob("*/seed_*/config.toml"))


# ---------------------------------------------------------------------------- plots
def test_sabre_plot_of_a_sweep_draws_bands(tmp_path, capsys):
    out = tmp_path / "sweep"
    run_sweep(load_sweep(write_sweep(tmp_path)), out, progress=False)
    png = tmp_path / "fig.png"
    assert main(["plot", str(out), "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000
    assert main(["plot", str(out), str(out / "runs" / "synthetic_small__client_lr=0.1" / "seed_0"),
                 "--out", str(png)]) == 2
    assert "one sweep directory" in capsys.readouterr().err


def test_sweep_plot_draws_mean_and_band_of_every_curve(tmp_path, monkeypatch):
    import matplotlib.axes

    out = tmp_path / "sweep"
    run_sweep(load_sweep(write_sweep(tmp_path)), out, progress=False)
    drawn, bands = [], []
    real_plot, real_fill = matplotlib.axes.Axes.plot, matplotlib.axes.Axes.fill_between
    monkeypatch.setattr(matplotlib.axes.Axes, "plot",
                        lambda self, *a, **k: drawn.append((k.get("label"), k.get("linestyle"))) or real_plot(self, *a, **k))
    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between",
                        lambda self, *a, **k: bands.append(a) or real_fill(self, *a, **k))
    from fl.sweep.plot import plot_sweep

    plot_sweep(out, tmp_path / "p.png")
    assert ("synthetic_small__client_lr=0.05: main task", ":") in drawn
    assert len(bands) == len(drawn) == 2  # a clean sweep: main task only, each with its band


# ---------------------------------------------------------------------------- bundled sweeps
BUNDLED = sorted(BUNDLED_SWEEPS.glob("*.toml"))


def test_every_figure_has_a_full_and_a_quick_sweep():
    names = {p.stem for p in BUNDLED}
    for fig in ("fig1", "fig2", "fig3", "fig4a", "fig4b"):
        assert {fig, f"{fig}_quick"} <= names


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_sweeps_parse_and_keep_the_paper_settings(path):
    spec = load_sweep(path.stem)
    runs = spec.runs()
    assert len(spec.seeds) >= 3
    for r in runs:
        assert r.config.model.name == "paper_cnn" and r.config.fedavg.clients_per_round == 30
        assert r.config.attack.training == "blocks" or not r.config.attack.enabled
        assert r.config.run.rounds == (300 if not path.stem.endswith("_quick") else spec.fixed["run.rounds"])
    if path.stem.endswith("_quick"):
        # the quick variant cuts only rounds
        assert set(spec.fixed) == {"run.rounds"} and not spec.grid
        full = load_sweep(path.stem.removesuffix("_quick"))
        assert full.bases == spec.bases and full.seeds == spec.seeds


def test_a_damaged_pin_does_not_stop_the_sweep(tmp_path):
    out = tmp_path / "sweep"
    run_sweep(load_sweep(write_sweep(tmp_path, rounds=2)), out, progress=False)
    run = out / "runs" / "synthetic_small__client_lr=0.1" / "seed_0"
    (run / "checkpoints" / "config.pin").write_text("damaged")
    result = run_sweep(load_sweep(write_sweep(tmp_path, rounds=3, name="three.toml")), out, progress=False)
    assert result.ran == 4
    assert "pinned again from the config sealed in round_000002.pt" in (run / "run.log").read_text()


SUITE_TWINS = {"fig2_fixed_eps3p3_bound10": "fig4a_bound10", "fig3_tasks30": "fig4a_bound10",
               "fig4b_bound5_noise0": "fig4a_bound5"}


def test_the_suite_runs_every_figure_setting_once():
    """The suite leaves out exactly the figure settings that repeat another under a new name: their
    configs equal their twins' but for run.name (so the run would be the same, bit for bit)."""
    from fl.config import config_to_toml, find_config, load_config

    figure_bases = set()
    for fig in ("fig1", "fig2", "fig3", "fig4a", "fig4b"):
        figure_bases |= set(load_sweep(fig).bases)
    for name in ("suite", "suite_quick"):
        suite = load_sweep(name)
        assert len(set(suite.bases)) == len(suite.bases)
        assert set(suite.bases) == figure_bases - set(SUITE_TWINS)
    for twin, kept in SUITE_TWINS.items():
        a, b = load_config(find_config(twin)), load_config(find_config(kept))
        strip = lambda cfg: "\n".join(line for line in config_to_toml(cfg).splitlines() if not line.startswith("name ="))
        assert a.run.name != b.run.name and strip(a) == strip(b)


def test_sabre_plot_draws_chosen_settings_of_a_sweep_with_labels(tmp_path, capsys):
    out = tmp_path / "sweep"
    run_sweep(load_sweep(write_sweep(tmp_path, rounds=2)), out, progress=False)
    png = tmp_path / "one.png"
    assert main(["plot", str(out), "--setting", "synthetic_small__client_lr=0.1", "--label", "lr 0.1",
                 "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000
    capsys.readouterr()
    assert main(["plot", str(out), "--setting", "nope", "--out", str(png)]) == 2
    assert "no setting nope" in capsys.readouterr().err
    assert main(["plot", str(out), "--setting", "synthetic_small__client_lr=0.1", "--label", "a", "--label", "b",
                 "--out", str(png)]) == 2
    assert "one --label per setting" in capsys.readouterr().err
