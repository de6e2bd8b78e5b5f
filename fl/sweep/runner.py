"""Running a sweep: one run directory per (setting, seed), on the local engine or on Ray.

The sweep directory::

    sweep.json      what the sweep is: its file, settings, seeds and run directories
    runs/<setting>/seed_<n>/   one ordinary run directory per run (fl.experiment)
    summary.csv     every metric at each setting's last round: mean, std and 95 % CI over seeds
                    (the privacy accountant's dp_* columns aside: runs compose, see privacy.json)
    privacy.json    the privacy loss of all the runs together (fl.sweep.privacy)
    curves.csv      the same for every evaluated round (what `sabre plot` draws)
    plot.png        each setting's mean curves with their 95 % bands
    .sabre.lock     held by the one process driving the sweep

Every run goes through :func:`fl.experiment.run_experiment` or, when its directory already
holds a run, :func:`fl.experiment.resume_experiment` (from its newest good checkpoint), so a
killed sweep started again skips its finished runs and continues the others. A run counts as
finished when its final checkpoint (``round_<run.rounds>.pt``) verifies.

Both engines call :func:`execute_run` with the same payload; each run sets torch's thread count
and numpy's BLAS/OpenMP pools (threadpoolctl) to the CPUs it is given (``--resources cpu=N``, 1
by default), because the CPU kernels' sums depend on the thread count: so the two engines give
the same rows, bit for bit.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from fl.config import ConfigError, config_to_toml, parse_config, read_toml, tomllib
from fl.experiment import read_checkpoint, resolve_data_path, resume_experiment, run_experiment
from fl.rundir import RESUMABLE_KEYS, BadCheckpoint, RunDirectory, RunDirError, RunLock, config_differences, read_pin
from fl.sweep.manifest import MANIFEST, read_manifest, write_manifest
from fl.sweep.plot import plot_sweep
from fl.sweep.privacy import describe, write_privacy
from fl.sweep.spec import RunSpec, SweepSpec
from fl.sweep.summary import write_summary
from rangeproof.blame import SabreError

__all__ = ["run_sweep", "execute_run", "parse_resources", "SweepResult", "SweepFailed", "ENGINES",
           "MANIFEST", "run_state", "read_manifest"]

ENGINES = ("local", "ray")


class SweepFailed(SabreError):
    """Some runs of a sweep failed; the others finished (or were already done).

    Attributes:
      failures: ``(run directory, one-line reason)`` of each failed run.
    """

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        lines = "; ".join(f"{d}: {why}" for d, why in failures)
        super().__init__(f"{len(failures)} run(s) failed: {lines}")


@dataclasses.dataclass
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes:
      out: the sweep directory.
      total: runs in the sweep.
      skipped: runs already finished when the sweep started.
      ran: runs started or continued here.
      summary: ``summary.csv``.
      curves: ``curves.csv``.
      plot: ``plot.png``.
      privacy: ``privacy.json``: the runs' composed privacy loss.
      privacy_text: one line saying what it holds.
    """

    out: Path
    total: int
    skipped: int
    ran: int
    summary: Path
    curves: Path
    plot: Path
    privacy: Path | None = None
    privacy_text: str = ""


def parse_resources(text: str | None) -> dict[str, float]:
    """``--resources``: ``cpu=N,gpu=G,NAME=X`` (each a non-negative number; ``cpu`` default 1).

    ``cpu`` is the CPUs of each run (its torch threads, and its Ray ``num_cpus``); ``gpu`` its
    Ray ``num_gpus``; other names are custom Ray resources.

    Raises:
      ConfigError: a malformed entry.
    """
    out: dict[str, float] = {"cpu": 1.0}
    for entry in filter(None, (e.strip() for e in (text or "").split(","))):
        name, sep, raw = entry.partition("=")
        name = name.strip()
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not sep or not name or not value >= 0 or value == float("inf"):
            raise ConfigError(f"--resources {entry!r}: expected NAME=NUMBER (for example cpu=1,gpu=1)")
        out[name] = value
    if out["cpu"] < 1 or out["cpu"] != int(out["cpu"]):
        raise ConfigError(f"--resources cpu={out['cpu']:g}: expected a whole number of CPUs, at least 1")
    return out


# ---------------------------------------------------------------------------- one run
def _finished(directory: RunDirectory, rounds: int) -> bool:
    """Whether the run's final checkpoint exists and verifies."""
    path = directory.checkpoint(rounds)
    if not path.is_file():
        return False
    try:
        return read_checkpoint(path).get("next_round") == rounds
    except BadCheckpoint:
        return False


def run_state(root: Path, spec: RunSpec) -> str:
    """``"new"``, ``"partial"`` or ``"done"`` for the run ``spec`` in ``root``.

    Raises:
      ConfigError: the directory holds a run of another configuration (outside the keys a
        resume may change), or is not a run directory.
    """
    directory = RunDirectory(root)
    if not root.exists() or (root.is_dir() and directory.is_unused()):
        return "new"
    if not directory.config.is_file():
        raise ConfigError(f"{root}: not a run directory (no config.toml) and not empty; move it away "
                          f"to let the sweep run there")
    try:
        pinned = read_pin(directory)
    except RunDirError:  # a damaged pin: resume restores it from a checkpoint; compare config.toml
        pinned = None
    if pinned is None:
        pinned = parse_config(read_toml(directory.config), source=directory.config)
    changed = config_differences(pinned, spec.config)
    if changed:
        raise ConfigError(f"{root}: holds a run of another configuration ({', '.join(changed)}); the sweep "
                          f"file changed since it ran there. Use another --out, or move that run away")
    return "done" if _finished(directory, spec.config.run.rounds) else "partial"


def execute_run(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Run (or continue) one run of a sweep; what both engines call, in a worker or in process.

    Args:
      payload: ``dir`` (absolute run directory), ``config`` (the run's TOML), ``source`` (the
        base config's path, for relative paths), ``threads`` (torch threads).

    Returns:
      ``{"dir", "rounds_done", "finished"}``.
    """
    threads = int(payload["threads"])
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):  # numpy's BLAS and OpenMP pools too
            return _execute(payload)
    finally:
        torch.set_num_threads(before)


def _execute(payload: Mapping[str, Any]) -> dict[str, Any]:
    cfg = parse_config(tomllib.loads(payload["config"]), source=Path(payload["source"]))
    root = Path(payload["dir"])
    directory = RunDirectory(root)
    if root.is_dir() and directory.config.is_file():
        current = read_toml(directory.config).get("run", {})
        wanted = {key: getattr(cfg.run, key.split(".", 1)[1]) for key in RESUMABLE_KEYS}
        overrides = [f"{key}={json.dumps(value)}" for key, value in wanted.items()
                     if current.get(key.split(".", 1)[1]) != value]
        summary = resume_experiment(root, overrides, progress=False)
    else:
        summary = run_experiment(cfg, out=root, progress=False)
    return {"dir": str(root), "rounds_done": int(summary.rounds_done), "finished": bool(summary.finished)}


def _payload(out: Path, spec: RunSpec, threads: int) -> dict[str, Any]:
    return {"dir": str((out / spec.rel_dir).resolve()), "config": config_to_toml(spec.config),
            "source": str(Path(spec.config.source).resolve()), "threads": threads}


def _resolved(spec: RunSpec) -> RunSpec:
    """``spec`` with its data path and start resolved as ``run_experiment`` records them."""
    cfg = spec.config
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=resolve_data_path(cfg.data.path, cfg.source)))
    if cfg.run.init_from:
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(
            cfg.run, init_from=resolve_data_path(cfg.run.init_from, cfg.source)))
    return dataclasses.replace(spec, config=cfg)


# ---------------------------------------------------------------------------- the sweep
def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    engine: str = "local",
    address: str | None = None,
    resources: Mapping[str, float] | None = None,
    ray_cpus: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every (setting, seed) of ``spec`` that is not finished, then write the summary.

    Args:
      spec: the sweep.
      out: the sweep directory (made if absent; a sweep there is continued).
      engine: ``"local"`` (one run after another, in this process) or ``"ray"`` (one Ray task
        per run, on a local Ray started here or on the cluster at ``address``).
      address: a Ray cluster's address (``engine="ray"`` only).
      resources: :func:`parse_resources`'s result (default: one CPU per run).
      ray_cpus: CPUs of the local Ray started here (default: Ray's, all of the machine's).
      progress: a progress bar over runs on stderr.
      log: called with one-line notes (runs skipped, resumed); nothing by default.

    Returns:
      The :class:`SweepResult`.

    Raises:
      ConfigError: a bad engine or option, a run directory holding another config, the sweep
        directory in use, or Ray not installed.
      SweepFailed: some runs failed (the others are finished; no summary is written).
    """
    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if engine != "ray" and (address is not None or ray_cpus is not None):
        raise ConfigError("--address and --ray-cpus go with --engine ray")
    resources = dict(resources or parse_resources(None))
    say = log or (lambda text: None)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create the sweep directory ({e.strerror or e})") from None
    runs = [_resolved(r) for r in spec.runs()]
    lock = RunLock.acquire(out)  # one driver per sweep directory
    try:
        states = [run_state(out / r.rel_dir, r) for r in runs]
        write_manifest(out, spec, runs, engine, resources)
        pending = [r for r, s in zip(runs, states) if s != "done"]
        skipped = len(runs) - len(pending)
        if skipped:
            say(f"{skipped} of {len(runs)} runs already finished: skipped")
        resumed = sum(s == "partial" for s in states)
        if resumed:
            say(f"{resumed} run(s) continue from their last checkpoint")
        payloads = [_payload(out, r, int(resources["cpu"])) for r in pending]
        bar = tqdm(total=len(runs), initial=skipped, unit="run", desc=f"sweep {spec.source.stem}",
                   disable=not progress, dynamic_ncols=True)
        try:
            if engine == "local":
                failures = _run_local(payloads, bar)
            else:
                failures = _run_ray(payloads, bar, address=address, resources=resources, ray_cpus=ray_cpus)
        finally:
            bar.close()
        if failures:
            raise SweepFailed([(str(Path(d).relative_to(out.resolve())), why) for d, why in failures])
        summary, curves = write_summary(out, runs)
        privacy, composed = write_privacy(out, runs)
        plot = plot_sweep(out, out / "plot.png")
        return SweepResult(out=out, total=len(runs), skipped=skipped, ran=len(pending),
                           summary=summary, curves=curves, plot=plot, privacy=privacy,
                           privacy_text=describe(composed))
    finally:
        lock.release()


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: " + " ".join(str(error).split())


def _run_local(payloads: Sequence[dict[str, Any]], bar) -> list[tuple[str, str]]:
    failures = []
    for payload in payloads:
        bar.set_postfix_str(Path(payload["dir"]).parent.name)
        try:
            execute_run(payload)
        except Exception as e:  # one run's failure does not stop the others
            failures.append((payload["dir"], _one_line(e)))
        bar.update(1)
    return failures


def _run_ray(payloads: Sequence[dict[str, Any]], bar, *, address: str | None, resources: Mapping[str, float],
             ray_cpus: int | None) -> list[tuple[str, str]]:
    try:
        import ray  # noqa: PLC0415 - optional extra (sabre[ray]): only --engine ray needs it
    except ImportError:
        raise ConfigError("--engine ray: Ray is not installed (pip install 'sabre[ray]')") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
    started = False
    if not ray.is_initialized():
        if address is not None:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(num_cpus=ray_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     _node_ip_address="127.0.0.1")
        started = True
    try:
        custom = {k: v for k, v in resources.items() if k not in ("cpu", "gpu")}
        task = ray.remote(execute_run).options(num_cpus=resources["cpu"], num_gpus=resources.get("gpu", 0),
                                               resources=custom or None, max_retries=2)
        refs = {task.remote(p): p for p in payloads}
        failures = []
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                payload = refs.pop(ref)
                try:
                    ray.get(ref)
                except Exception as e:  # noqa: BLE001  a run's failure, or its worker's death
                    cause = getattr(e, "cause", None)
                    failures.append((payload["dir"], _one_line(cause if isinstance(cause, BaseException) else e)))
                bar.set_postfix_str(Path(payload["dir"]).parent.name)
                bar.update(1)
        return failures
    finally:
        if started:
            ray.shutdown()
