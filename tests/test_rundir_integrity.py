"""Run directories that cannot silently go wrong: verified checkpoints, a pinned config, one writer,
file system errors as one line, stale temporary files, restart in place, and kill -9 at named points.

Each test drives the real run and resume paths (``fl.cli.main`` in process; a subprocess where a
process must die or hold the lock). The helpers only use what the run directory offered before
sealed checkpoints existed, so every test here also runs, and fails, against the code before them.
"""
import csv
import io
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fl.cli import main
from fl.config import ConfigError, config_to_toml, parse_config
from fl.data import load_dataset
from fl.experiment import read_metrics, resume_experiment, run_experiment

REPO = Path(__file__).resolve().parent.parent
ROOT = os.geteuid() == 0


def table(**run):
    """4 rounds of the small CNN on 6 synthetic writers, 2 clients a round, checkpoints after 2 and 4."""
    return {
        "run": {"name": "integrity", "seed": 5, "rounds": 4, "device": "cpu", "checkpoint_every": 2, **run},
        "data": {"path": "synthetic:6:1"},
        "model": {"name": "small_cnn"},
        "fedavg": {"clients_per_round": 2, "epochs": 1, "batch_size": 50},
    }


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic:6:1")


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "integrity.toml"
    path.write_text(config_to_toml(parse_config(table())))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synthetic):
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("ref") / "run"
    return run_experiment(parse_config(table()), out=out, progress=False, dataset=synthetic)


@pytest.fixture
def copy(reference, tmp_path):
    """A copy of the finished reference run to damage."""
    target = tmp_path / "run"
    shutil.copytree(reference.run_dir, target)
    return target


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    return code == 2 and err.startswith("sabre: error: ") and err.count("\n") == 1 and "Traceback" not in err


def rows(path):
    """A CSV file's rows without the wall-clock column."""
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def final_params(run_dir):
    """The parameters of the run's newest checkpoint, through the public resume path's reader."""
    try:
        from fl.experiment import read_checkpoint
    except ImportError:  # before sealed checkpoints
        return torch.load(sorted((run_dir / "checkpoints").glob("round_*.pt"))[-1], weights_only=True)["params"]
    return read_checkpoint(sorted((run_dir / "checkpoints").glob("round_*.pt"))[-1])["params"]


def same_as_reference(run_dir, reference):
    assert torch.equal(final_params(run_dir), reference.params)
    for name in ("metrics.csv", "rounds.csv"):
        assert rows(run_dir / name) == rows(reference.run_dir / name), name


def rewrite_checkpoint(path, target=None, **changes):
    """Change fields of a checkpoint and write it as sabre would (sealed if the file was), so
    that only the checks on its meaning can catch it."""
    data = path.read_bytes()
    try:
        from fl.rundir import seal, unseal
    except ImportError:  # before sealed checkpoints
        seal = unseal = None
    payload = unseal(data) if unseal else data
    state = torch.load(io.BytesIO(payload), weights_only=True)
    state.update(changes)
    buf = io.BytesIO()
    torch.save(state, buf)
    (target or path).write_bytes(seal(buf.getvalue()) if seal else buf.getvalue())


def tmp_files(run_dir):
    return sorted(p.name for p in run_dir.rglob("*.tmp"))


# ---------------------------------------------------------------------------- checkpoint bytes
def test_flipped_bytes_in_the_newest_checkpoint_fall_back_to_the_previous_one(copy, reference, capsys):
    latest = copy / "checkpoints" / "round_000004.pt"
    data = bytearray(latest.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 8):  # inside the parameters' bytes
        data[i] ^= 0xFF
    latest.write_bytes(bytes(data))
    before = (copy / "config.toml").read_bytes()
    code, out, err = cli(capsys, "run", "--resume", copy, "-q")
    assert code == 0, err
    assert "round_000004.pt is bad (digest mismatch" in err and "resuming from round_000002.pt" in err
    assert (copy / "checkpoints" / "round_000004.pt.bad").read_bytes() == bytes(data)  # kept for inspection
    log = (copy / "run.log").read_text()
    assert "WARNING checkpoint round_000004.pt is bad (digest mismatch" in log
    assert "resumed from round_000002.pt: next round 2" in log
    same_as_reference(copy, reference)
    assert (copy / "config.toml").read_bytes() == before


@pytest.mark.parametrize("damage, reason", [
    (lambda b: b"", "empty file"),
    (lambda b: b[:100], "truncated"),
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\0", "extended"),
    (lambda b: b"garbage " * 50, "not a sabre checkpoint"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "digest mismatch"),
])
def test_a_checkpoint_that_fails_verification_is_named_with_the_reason(copy, capsys, damage, reason):
    for path in (copy / "checkpoints").glob("round_*.pt"):
        path.write_bytes(damage(path.read_bytes()))
    code, out, err = cli(capsys, "run", "--resume", copy, "-q")
    assert one_line_error(code, err)
    assert f"round_000004.pt: {reason}" in err and "round_000002.pt" in err and "docs/simulation.md" in err
    assert not err.rstrip().endswith("()")


def test_every_single_byte_flip_of_a_sealed_frame_is_refused():
    from fl.rundir import BadCheckpoint, seal, unseal

    payload = bytes(range(97))
    sealed = seal(payload)
    assert unseal(sealed) == payload
    for i in range(len(sealed)):
        for bit in (0x01, 0x80):
            flipped = bytearray(sealed)
            flipped[i] ^= bit
            with pytest.raises(BadCheckpoint):
                unseal(bytes(flipped))


def test_a_checkpoint_of_another_configuration_is_passed_over(copy, reference, tmp_path, synthetic, capsys):
    other = run_experiment(parse_config(table(seed=6)), out=tmp_path / "other", progress=False, dataset=synthetic)
    shutil.copy(other.run_dir / "checkpoints" / "round_000004.pt", copy / "checkpoints" / "round_000004.pt")
    code, out, err = cli(capsys, "run", "--resume", copy, "-q")
    assert code == 0 and "round_000004.pt is bad (written for another configuration" in err
    same_as_reference(copy, reference)


# ---------------------------------------------------------------------------- the round counter
def test_a_round_counter_that_disagrees_with_the_file_name_is_passed_over(copy, reference, capsys):
    rewrite_checkpoint(copy / "checkpoints" / "round_000004.pt", next_round=3)  # its rows still say 4
    code, out, err = cli(capsys, "run", "--resume", copy, "-q")
    assert code == 0 and "round counter (3) disagrees with its file name (4)" in err
    assert [r["round"] for r in read_metrics(copy / "rounds.csv")] == [0, 1, 2, 3]  # none twice
    same_as_reference(copy, reference)


def test_a_round_counter_that_disagrees_with_its_rows_is_passed_over(copy, reference, capsys):
    source = copy / "checkpoints" / "round_000002.pt"
    rewrite_checkpoint(source, target=copy / "checkpoints" / "round_000003.pt", next_round=3)
    code, out, err = cli(capsys, "run", "--resume", copy, "--set", "run.rounds=4", "-q")
    # round_000004.pt is fine and newest: taken; now make it the bad one
    assert code == 0
    (copy / "checkpoints" / "round_000004.pt").unlink()
    code, out, err = cli(capsys, "run", "--resume", copy, "-q")
    assert code == 0 and "round_000003.pt is bad (its round rows are not rounds 0..2)" in err
    same_as_reference(copy, reference)


def test_rows_on_disk_that_disagree_with_every_checkpoint_are_refused(copy, capsys):
    text = (copy / "metrics.csv").read_text().splitlines()
    cells = text[1].split(",")
    cells[1] = "0.99"  # round 0's main_acc
    (copy / "metrics.csv").write_text("\n".join([text[0], ",".join(cells), *text[2:]]) + "\n")
    code, out, err = cli(capsys, "run", "--resume", copy, "--set", "run.rounds=5", "-q")
    assert one_line_error(code, err) and "metrics.csv disagrees with it at round 0" in err
    assert "rounds = 4" in (copy / "config.toml").read_text()
    (copy / "metrics.csv").unlink()  # the documented remedy: the checkpoint restores the rows
    code, out, err = cli(capsys, "run", "--resume", copy, "--set", "run.rounds=5", "-q")
    assert code == 0 and [r["round"] for r in read_metrics(copy / "metrics.csv")] == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------- the pinned config
def test_an_edited_config_is_refused_naming_the_keys(copy, capsys):
    path = copy / "config.toml"
    original = path.read_text()
    edited = original.replace("client_lr = 0.1", "client_lr = 0.2").replace("seed = 5", "seed = 7") \
        .replace("clients_per_round = 2", "clients_per_round = 3").replace("rounds = 4", "rounds = 6")
    path.write_text(edited)
    listing = sorted(p.name for p in (copy / "checkpoints").iterdir())
    code, out, err = cli(capsys, "run", "--resume", copy, "-q")
    assert one_line_error(code, err)
    assert "fedavg.client_lr (0.1 -> 0.2)" in err and "run.seed (5 -> 7)" in err \
        and "fedavg.clients_per_round (2 -> 3)" in err and "run.rounds" not in err.split("only")[0]
    assert path.read_text() == edited and sorted(p.name for p in (copy / "checkpoints").iterdir()) == listing
    assert len(read_metrics(copy / "rounds.csv")) == 4


def test_the_resumable_keys_may_be_edited_in_the_file(copy, reference, tmp_path, synthetic, capsys):
    path = copy / "config.toml"
    path.write_text(path.read_text().replace("rounds = 4", "rounds = 5").replace("checkpoint_every = 2",
                                                                                 "checkpoint_every = 1"))
    code, out, err = cli(capsys, "run", "--resume", copy, "-q")
    assert code == 0 and "finished after 5 rounds" in out
    straight = run_experiment(parse_config(table(rounds=5)), out=tmp_path / "five", progress=False,
                              dataset=synthetic)
    assert torch.equal(final_params(copy), straight.params)


def test_a_refused_resume_leaves_config_toml_as_it_was(copy, capsys):
    before = (copy / "config.toml").read_bytes()
    code, out, err = cli(capsys, "run", "--resume", copy, "--set", "run.rounds=3", "-q")
    assert code == 2 and (copy / "config.toml").read_bytes() == before
    assert one_line_error(code, err) and "4 rounds done, more than run.rounds = 3" in err


def test_a_damaged_or_missing_pin_is_pinned_again_from_a_checkpoint(copy, capsys):
    pin = copy / "checkpoints" / "config.pin"
    original = pin.read_bytes()
    pin.write_text(pin.read_text().replace("seed = 5", "seed = 6"))
    code, out, err = cli(capsys, "run", "--resume", copy, "--set", "run.rounds=5", "-q")
    assert code == 0 and "config.pin was damaged" in err and "pinned again from the config sealed in " \
        "round_000004.pt" in err
    assert pin.read_bytes() == original
    pin.unlink()  # and config.toml edited: the checkpoints' config still catches it
    path = copy / "config.toml"
    path.write_text(path.read_text().replace("seed = 5", "seed = 6"))
    code, out, err = cli(capsys, "run", "--resume", copy, "-q")
    assert one_line_error(code, err) and "run.seed (5 -> 6)" in err and not pin.exists()


def test_a_missing_pin_and_no_checkpoint_that_verifies_is_refused(copy, capsys):
    (copy / "checkpoints" / "config.pin").unlink()
    for path in (copy / "checkpoints").glob("round_*.pt"):
        path.write_bytes(path.read_bytes()[:-1])
    code, out, err = cli(capsys, "run", "--resume", copy, "-q")
    assert one_line_error(code, err) and "config.pin is missing and no checkpoint holds a verified config" in err
    assert "round_000004.pt: truncated" in err


def test_a_run_from_before_sealed_checkpoints_is_refused_and_can_seed_init_from(copy, synthetic, tmp_path, capsys):
    from fl.experiment import read_checkpoint

    (copy / "checkpoints" / "config.pin").unlink()
    for path in (copy / "checkpoints").glob("round_*.pt"):  # as the previous sabre wrote them
        state = read_checkpoint(path)
        torch.save({k: v for k, v in state.items() if k not in ("config", "config_sha256")} | {"format": 1}, path)
    code, out, err = cli(capsys, "run", "--resume", copy, "-q")
    assert one_line_error(code, err) and "an unsealed checkpoint (written before sealed checkpoints" in err
    params = torch.load(copy / "checkpoints" / "round_000004.pt", weights_only=True)["params"]
    started = run_experiment(parse_config(table(init_from=str(copy), rounds=1)), out=tmp_path / "x",
                             progress=False, dataset=synthetic)
    assert started.rounds_done == 1 and not torch.equal(started.params, params)
    from fl.experiment import load_initial_params

    assert torch.equal(load_initial_params(str(copy), None, params.numel()), params)


# ---------------------------------------------------------------------------- one writer, kills
def start_stopped(argv, cwd, point):
    """A ``sabre`` process stopped (SIGSTOP, alive, holding its lock) at fault point ``point``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "SABRE_FAULT": f"{point}:stop"}
    proc = subprocess.Popen([sys.executable, "-m", "fl", *map(str, argv)], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), proc.stderr.read()
    return proc


def test_one_writer_and_restart_in_place_of_a_run_killed_before_its_first_checkpoint(
        config_file, reference, tmp_path, capsys):
    out = tmp_path / "run"
    holder = start_stopped(["run", config_file, "--out", out, "-q"], tmp_path, "run.started")
    try:
        code, _, err = cli(capsys, "run", "--resume", out, "--set", "run.rounds=8", "-q")
        assert one_line_error(code, err) and f"in use by another sabre process (pid {holder.pid} " in err
        code, _, err = cli(capsys, "run", config_file, "--out", out, "-q")
        assert one_line_error(code, err) and "not an empty directory" in err
        assert "rounds = 4" in (out / "config.toml").read_text()  # the refused --set wrote nothing
    finally:
        holder.kill()  # kill -9 before any checkpoint: the kernel drops the lock
        holder.wait()
    assert not list((out / "checkpoints").glob("round_*"))
    code, stdout, err = cli(capsys, "run", "--resume", out, "-q")
    assert code == 0 and "no checkpoint yet; starting the run over from round 0" in err
    same_as_reference(out, reference)


def test_concurrent_resumes_one_is_refused(copy, capsys):
    from fl.rundir import RunLock

    with RunLock.acquire(copy):  # a lock taken in this process conflicts like another process's
        code, _, err = cli(capsys, "run", "--resume", copy, "--set", "run.rounds=6", "-q")
        assert one_line_error(code, err) and f"pid {os.getpid()}" in err
    assert "rounds = 4" in (copy / "config.toml").read_text()
    code, _, err = cli(capsys, "run", "--resume", copy, "--set", "run.rounds=5", "-q")
    assert code == 0 and len(read_metrics(copy / "rounds.csv")) == 5


@pytest.mark.parametrize("point", [
    "pin.before_rename",           # config.toml written, no pin, no checkpoint: starts over
    "checkpoint.partial",          # half of round_000002.pt in a temporary file
    "checkpoint.after_rename",     # round_000002.pt in place, nothing after it
    "metrics.before_rename@4",     # the last round's row complete in a temporary file
])
def test_kill_at_a_named_point_then_resume_is_bit_identical(point, config_file, reference, tmp_path, capsys):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SABRE_FAULT": point}
    proc = subprocess.run([sys.executable, "-m", "fl", "run", str(config_file), "--out", str(out), "-q"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if "partial" in point or "before_rename" in point:
        assert tmp_files(out)  # the killed write left its temporary file
    code, stdout, err = cli(capsys, "run", "--resume", out, "-q")
    assert code == 0, err
    assert tmp_files(out) == []
    same_as_reference(out, reference)


def test_a_run_killed_while_writing_its_config_is_started_again_in_place(config_file, reference, tmp_path,
                                                                          capsys):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SABRE_FAULT": "config.partial"}
    proc = subprocess.run([sys.executable, "-m", "fl", "run", str(config_file), "--out", str(out), "-q"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    code, _, err = cli(capsys, "run", "--resume", out, "-q")
    assert one_line_error(code, err) and f"start it again: sabre run CONFIG --out {out}" in err
    code, _, err = cli(capsys, "run", config_file, "--out", out, "-q")
    assert code == 0, err
    assert tmp_files(out) == []
    same_as_reference(out, reference)


def test_a_bad_fault_spec_is_an_error():
    from fl.faults import FaultSpecError, parse

    assert parse("checkpoint.partial@2:stop, run.started") == {"checkpoint.partial": (2, "stop"),
                                                               "run.started": (1, "kill")}
    for spec in ("no.such.point", "run.started@0", "run.started@x", "run.started:explode"):
        with pytest.raises(FaultSpecError):
            parse(spec)


def test_a_misspelt_fault_point_stops_the_run_before_it_starts(config_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SABRE_FAULT", "checkpoint.partail")
    code, _, err = cli(capsys, "run", config_file, "--out", tmp_path / "run", "-q")
    assert one_line_error(code, err) and "unknown point 'checkpoint.partail'" in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- the file system
def test_stale_temporary_files_are_removed_at_start(copy, capsys):
    (copy / ".metrics.csv.k1ll3d.tmp").write_text("half a table")
    (copy / "checkpoints" / ".round_000006.pt.x7.tmp").write_bytes(b"half a checkpoint")
    code, _, err = cli(capsys, "run", "--resume", copy, "--set", "run.rounds=5", "-q")
    assert code == 0 and tmp_files(copy) == []
    assert "removed checkpoints/.round_000006.pt.x7.tmp" in (copy / "run.log").read_text()


def test_out_under_a_file_is_one_line(config_file, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    code, _, err = cli(capsys, "run", config_file, "--out", tmp_path / "afile" / "run", "-q")
    assert one_line_error(code, err) and "is not a directory" in err
    code, _, err = cli(capsys, "run", config_file, "--out", tmp_path / "afile", "-q")
    assert one_line_error(code, err) and "not a directory" in err


def test_out_a_dangling_symlink_is_one_line(config_file, tmp_path, capsys):
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    code, _, err = cli(capsys, "run", config_file, "--out", tmp_path / "link", "-q")
    assert one_line_error(code, err) and "which does not exist" in err


def _deny_writes_under(monkeypatch, root):
    """Make the file system refuse to create anything under ``root`` (as a read-only directory
    would; the tests run as root, which file permissions do not stop)."""
    import tempfile

    real_open, real_mkstemp, real_mkdir = os.open, tempfile.mkstemp, Path.mkdir
    root = str(root)

    def denied(path):
        return PermissionError(13, "Permission denied", str(path))

    def fake_open(path, flags, *args, **kwargs):
        if str(path).startswith(root) and flags & os.O_CREAT and not os.path.exists(path):
            raise denied(path)
        return real_open(path, flags, *args, **kwargs)

    def fake_mkstemp(*args, dir=None, **kwargs):
        if dir is not None and str(dir).startswith(root):
            raise denied(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    def fake_mkdir(self, *args, **kwargs):
        if str(self).startswith(root) and not self.exists():
            raise denied(self)
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(tempfile, "mkstemp", fake_mkstemp)
    monkeypatch.setattr(Path, "mkdir", fake_mkdir)


def test_out_in_a_read_only_directory_is_one_line(config_file, tmp_path, capsys, monkeypatch):
    (tmp_path / "ro").mkdir()
    _deny_writes_under(monkeypatch, tmp_path / "ro")
    code, _, err = cli(capsys, "run", config_file, "--out", tmp_path / "ro" / "run", "-q")
    assert one_line_error(code, err) and "Permission denied" in err


@pytest.mark.parametrize("with_lock_file", [False, True])
def test_resume_of_a_read_only_run_directory_is_one_line(copy, capsys, monkeypatch, with_lock_file):
    if not with_lock_file:  # a run from before the lock
        (copy / ".sabre.lock").unlink()
    _deny_writes_under(monkeypatch, copy)
    before = sorted(p.name for p in copy.rglob("*"))
    code, _, err = cli(capsys, "run", "--resume", copy, "--set", "run.rounds=5", "-q")
    assert one_line_error(code, err) and "Permission denied" in err
    assert sorted(p.name for p in copy.rglob("*")) == before


def test_resume_when_only_the_tables_cannot_be_written_is_one_line(copy, capsys, monkeypatch):
    import tempfile

    real = tempfile.mkstemp

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", no_space)
    code, _, err = cli(capsys, "run", "--resume", copy, "--set", "run.rounds=5", "-q")
    assert one_line_error(code, err) and "No space left on device" in err
    monkeypatch.setattr(tempfile, "mkstemp", real)


@pytest.mark.skipif(ROOT, reason="file permissions do not stop root")
def test_really_read_only_run_directory_is_one_line(copy, capsys):
    (copy / ".sabre.lock").unlink(missing_ok=True)
    modes = {}
    for path in [copy, copy / "checkpoints"]:
        modes[path] = path.stat().st_mode
        path.chmod(0o555)
    try:
        code, _, err = cli(capsys, "run", "--resume", copy, "--set", "run.rounds=5", "-q")
        assert one_line_error(code, err) and "Permission denied" in err
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def test_init_from_refuses_a_damaged_newest_checkpoint(copy, synthetic, tmp_path):
    latest = copy / "checkpoints" / "round_000004.pt"
    latest.write_bytes(latest.read_bytes()[:-5])
    with pytest.raises(ConfigError, match="round_000004.pt: truncated"):
        run_experiment(parse_config(table(init_from=str(copy))), out=tmp_path / "x", progress=False,
                       dataset=synthetic)
    assert not (tmp_path / "x").exists()
