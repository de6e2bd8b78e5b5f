"""The ``sabre`` command line: run, resume, plot, data info, bench dispatch, and clean errors."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rangeproof.bench
import secagg.bench
from fl.cli import find_config, main
from fl.config import ConfigError
from fl.experiment import read_metrics
from fl.plots import plot_runs

REPO = Path(__file__).resolve().parent.parent
TINY = ["--set", "run.rounds=2", "--set", "data.path=synthetic:5:2", "--set", "fedavg.clients_per_round=2",
        "--set", "fedavg.batch_size=50", "-q"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """``sabre run configs/synthetic_small.toml`` from outside the repository."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code = main(["run", "configs/synthetic_small.toml", "--out", "out", *TINY])
    finally:
        os.chdir(old)
    assert code == 0
    return cwd / "out"


def test_run_of_a_bundled_config_writes_the_run_directory(tiny_run):
    for name in ("config.toml", "metrics.csv", "rounds.csv", "run.log", "plot.png"):
        assert (tiny_run / name).is_file(), name
    assert (tiny_run / "plot.png").read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in (tiny_run / "checkpoints").iterdir()] != []
    rows = read_metrics(tiny_run / "metrics.csv")
    assert [r["round"] for r in rows] == [0, 1]  # --set run.rounds=2 took effect
    text = (tiny_run / "config.toml").read_text()
    assert 'path = "synthetic:5:2"' in text and "clients_per_round = 2" in text


@pytest.mark.parametrize("name", ["configs/demo.toml", "demo", "demo.toml", "fl/configs/demo.toml"])
def test_bundled_configs_resolve_from_anywhere(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_config(name) == REPO / "fl" / "configs" / "demo.toml"


def test_an_existing_file_wins_over_a_bundled_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "demo.toml").write_text("")
    assert find_config("configs/demo.toml") == Path("configs/demo.toml")


def test_bad_key_exits_2_with_the_key_and_one_line(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", "configs/synthetic_small.toml", "--out", str(tmp_path / "x"),
                             "--set", "fedavg.clients_per_round=-3")
    assert code == 2
    assert err == "sabre: error: fedavg.clients_per_round: expected a positive integer, got -3\n"
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["run", "no/such/config.toml"], "no/such/config.toml: no such config file"),
        (["run", "configs/synthetic_small.toml", "--set", "nosection"], "expected section.key=value"),
        (["run", "configs/synthetic_small.toml", "--set", "data.path=no/such/data.npz"], "no/such/data.npz"),
        (["run"], "give a CONFIG file"),
        (["data", "info", "synthetic:x"], "bad synthetic spec"),
        (["plot", "no/such/run", "--out", "p.png"], "no/such/run: no metrics.csv"),
    ],
)
def test_errors_exit_2_with_one_line(capsys, argv, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_console_entry_point_exits_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fl", "run", "configs/synthetic_small.toml",
                           "--set", "fedavg.clients_per_round=-3"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "sabre: error: fedavg.clients_per_round: expected a positive integer, got -3"


def test_resume_continues_a_run_to_more_rounds(capsys, tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    code, out, err = run_cli(capsys, "run", "--resume", str(copy), "--set", "run.rounds=3", "-q")
    assert code == 0 and "finished after 3 rounds" in out
    assert [r["round"] for r in read_metrics(copy / "metrics.csv")] == [0, 1, 2]
    code, out, err = run_cli(capsys, "run", "configs/demo.toml", "--resume", str(copy))
    assert code == 2 and "give only the run directory" in err


def test_data_info_synthetic(capsys):
    code, out, err = run_cli(capsys, "data", "info", "synthetic:7:0")
    assert code == 0 and "7" in out and "writers" in out


def test_plot_of_runs_with_and_without_backdoor_columns(capsys, tiny_run, tmp_path):
    attacked = tmp_path / "attacked"
    attacked.mkdir()
    with open(attacked / "metrics.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["round", "main_acc", "main_loss", "backdoor_acc"])
        for r in range(6):
            writer.writerow([r, 0.5 + 0.05 * r, 1.0, [0.0, 1.0, 0.2, 0.9, 0.1, 0.8][r]])
    out = tmp_path / "both.png"
    code, stdout, err = run_cli(capsys, "plot", str(tiny_run), str(attacked), "--out", str(out))
    assert code == 0 and out.read_bytes().startswith(PNG_MAGIC)
    single = plot_runs([attacked], tmp_path / "one.png", labels=["attack"])
    assert single.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="2 labels for 1 runs"):
        plot_runs([attacked], tmp_path / "x.png", labels=["a", "b"])


def test_bench_passes_the_remaining_arguments_through(capsys, monkeypatch):
    calls = []
    for module in (secagg.bench, rangeproof.bench):
        monkeypatch.setattr(module, "main", lambda argv, name=module.__name__: calls.append((name, argv)) or 0)
    assert run_cli(capsys, "bench", "secagg", "--clients", "10", "--dim", "1000")[0] == 0
    assert run_cli(capsys, "bench", "proof", "--dim", "64")[0] == 0
    assert calls == [("secagg.bench", ["--clients", "10", "--dim", "1000"]), ("rangeproof.bench", ["--dim", "64"])]


def test_find_config_lists_the_bundled_configs():
    with pytest.raises(ConfigError, match="bundled: .*demo.*emnist_baseline.*synthetic_small"):
        find_config("configs/nope.toml")


def test_a_run_that_cannot_start_leaves_no_directory(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", "configs/synthetic_small.toml", "--out", str(tmp_path / "x"),
                             "--set", "data.path=synthetic:3:0")  # 4 clients per round, 3 writers
    assert code == 2 and "fedavg.clients_per_round: 4 exceeds the 3 clients" in err
    assert not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("")
    code, out, err = run_cli(capsys, "run", "configs/synthetic_small.toml", "--out", str(tmp_path / "full"))
    assert code == 2 and "exists and is not an empty directory" in err


@pytest.mark.slow
def test_demo_tells_the_story(capsys, tmp_path):
    # the story cut to one clean and one attack round of four clients, to keep the suite fast
    code, out, err = run_cli(capsys, "demo", "--out", str(tmp_path / "demo"), "--data", "synthetic:12:0",
                             "--clients", "4", "--epochs", "1", "--clean-rounds", "1", "--attack-rounds", "1")
    assert code == 0, err
    assert "rejected before unmasking: syn" in out and "(norm_proof_failed)" in out
    assert "binding check (sum of commitments = commitment to the unmasked sum): ok" in out and "no defense" in out
    for name in ("story.csv", "story.png", "story.txt"):
        assert (tmp_path / "demo" / name).is_file()
    code, out, err = run_cli(capsys, "demo", "--clients", "2")
    assert code == 2 and "at least 3 clients" in err
