"""`sabre sweep --engine ray` on a local 2-CPU Ray: the same summary as the local engine, and a
Ray sweep killed midway finishes, when started again, with the same summary.

Each test starts its own local Ray (2 CPUs, no dashboard, on 127.0.0.1) and shuts it down.
"""
import contextlib
import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from fl.cli import main  # noqa: E402
from fl.rundir import RunDirError, RunLock  # noqa: E402
from test_sweep import write_sweep  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.network]

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture(autouse=True)
def no_usage_report(monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    yield
    if ray.is_initialized():
        ray.shutdown()


def sweep_file(tmp_path: Path, rounds: int) -> Path:
    return write_sweep(tmp_path, rounds=rounds)  # the same tiny sweep as tests/test_sweep.py


def test_ray_and_local_engines_give_identical_summaries(tmp_path):
    path = sweep_file(tmp_path, rounds=2)
    assert main(["sweep", str(path), "--out", str(tmp_path / "local"), "-q"]) == 0
    assert main(["sweep", str(path), "--engine", "ray", "--ray-cpus", "2", "--out", str(tmp_path / "ray"), "-q"]) == 0
    assert not ray.is_initialized()  # the Ray it started is shut down
    for name in ("summary.csv", "curves.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    # and so is every run's metrics.csv (wall times aside)
    for local in sorted((tmp_path / "local" / "runs").glob("*/seed_*/metrics.csv")):
        other = tmp_path / "ray" / local.relative_to(tmp_path / "local")
        strip = lambda p: [",".join(c for i, c in enumerate(line.split(",")) if i != 3)  # noqa: E731
                           for line in p.read_text().splitlines()]
        assert strip(other) == strip(local)


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, read from /proc (children first found, any depth)."""
    parents: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _wait_unlocked(directory: Path, timeout: float = 60.0) -> None:
    """Wait until no process of the killed sweep holds the run directory's lock."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            RunLock.acquire(directory).release()
            return
        except RunDirError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_killed_ray_sweep_started_again_finishes_with_the_same_summary(tmp_path):
    rounds = 4
    path = sweep_file(tmp_path, rounds=rounds)
    out = tmp_path / "ray"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "RAY_USAGE_STATS_ENABLED": "0"}
    # one run at a time (2 CPUs per run on a 2-CPU Ray), so the kill comes between a finished
    # run and one half-way
    cmd = [sys.executable, "-m", "fl", "sweep", str(path), "--engine", "ray", "--ray-cpus", "2",
           "--resources", "cpu=2", "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    final = f"round_{rounds:06d}.pt"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            done = glob.glob(str(out / "runs" / "*" / "seed_*" / "checkpoints" / final))
            # a run past its second checkpoint: its first one is complete and sealed (a kill while
            # the first is being written would leave nothing to resume from)
            started = glob.glob(str(out / "runs" / "*" / "seed_*" / "checkpoints" / "round_000002.pt"))
            if done and len(started) > len(done):
                break
            time.sleep(0.02)
    finally:
        # the sweep's driver and everything it started: its session, and the local Ray's
        # processes, which run in sessions of their own (a Ray worker left alive would finish its
        # run after the kill)
        doomed = _descendants(proc.pid)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    runs = sorted((out / "runs").glob("*/seed_*"))
    finished = [r for r in runs if (r / "checkpoints" / final).is_file()]
    assert finished and len(finished) < 4, "the sweep was not killed midway"
    halfway = [r for r in runs if r not in finished and (r / "checkpoints" / "round_000002.pt").is_file()]
    for run in runs:
        _wait_unlocked(run)

    # started again, it skips the finished runs and continues the others from their checkpoints
    assert main(["sweep", str(path), "--engine", "ray", "--ray-cpus", "2", "--resources", "cpu=2",
                 "--out", str(out), "-q"]) == 0
    for run in finished:
        assert "resumed from" not in (run / "run.log").read_text()
    for run in halfway:
        assert "resumed from round_" in (run / "run.log").read_text()
    assert len(list((out / "runs").glob(f"*/seed_*/checkpoints/{final}"))) == 4

    # the same summary as an uninterrupted sweep
    assert main(["sweep", str(path), "--resources", "cpu=2", "--out", str(tmp_path / "local"), "-q"]) == 0
    for name in ("summary.csv", "curves.csv"):
        assert (out / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
