"""A run on disk: its directory, metrics, log, checkpoints, resume and progress bar.

Each run writes one directory (``runs/<name>-<timestamp>/`` unless told otherwise)::

    config.toml     the effective configuration (defaults and overrides filled in)
    metrics.csv     one row per evaluated round (see METRIC_COLUMNS)
    rounds.csv      one row per round: time, clients, rejections, failures, pipeline measurements
    run.log         what happened, in words (pipeline, data, failed rounds, evaluations)
    plot.png        main-task (and backdoor) accuracy per round
    checkpoints/    round_000010.pt ...: everything needed to continue the run, sealed with a
                    SHA-256; config.pin: the configuration the run started with
    rereleased.csv  noised rounds a killed run released after its last checkpoint (CSPRNG noise
                    only): the accountant counts them again (docs/privacy.md)
    .sabre.lock     locked (flock) by the one process writing the run

A checkpoint holds the global parameters, the index of the next round, the rows written so far,
the adversary's state (if it has any) and the digest of the run's configuration; with the
per-round seeding of :class:`~fl.simulation.Simulation` that is all a resumed run needs to
reproduce the rows and the final parameters of an uninterrupted one, bit for bit (``seconds``
aside). Resume verifies all of it before it writes anything (``docs/simulation.md``, "Run
directory integrity"); the file machinery is in :mod:`fl.rundir`, the crash points in
:mod:`fl.faults`.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from tqdm import tqdm

import attacks
from fl import faults
from fl.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    check_private_start,
    config_to_toml,
    parse_config,
    read_toml,
    tomllib,
)
from fl.data import load_dataset
from fl.plots import plot_runs
from fl.rundir import (
    RESUMABLE_KEYS,
    BadCheckpoint,
    RunDirectory,
    RunDirError,
    RunLock,
    clean_stale_tmp,
    config_differences,
    config_digest,
    csv_bytes,
    csv_cell,
    os_error_text,
    read_metrics,
    read_pin,
    read_rereleased,
    released_rounds,
    seal,
    unseal,
    write_atomic,
    write_pin,
    write_rereleased,
)
from fl.simulation import RoundResult, Simulation

__all__ = [
    "RunDirectory",
    "RunDirError",
    "RunSummary",
    "run_experiment",
    "resume_experiment",
    "read_checkpoint",
    "open_dataset",
    "resolve_data_path",
    "read_metrics",
    "METRIC_COLUMNS",
    "RESUME_OVERRIDABLE",
]

#: the leading columns of metrics.csv, in order; adversary metrics (sorted) and pipeline
#: measurements (sorted) follow
METRIC_COLUMNS = ("round", "main_acc", "main_loss", "seconds", "clients", "rejected", "round_failed", "malicious")
#: the leading columns of rounds.csv
ROUND_COLUMNS = ("round", "seconds", "clients", "rejected", "round_failed", "malicious")
#: keys ``--set`` may change when resuming (they do not change what is computed)
RESUME_OVERRIDABLE = RESUMABLE_KEYS

#: 1: a bare torch file (no digest, no config); 2: sealed, with the config's digest
_CHECKPOINT_FORMAT = 2
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------- data
def resolve_data_path(spec: str, source: Path | None = None) -> str:
    """Where ``data.path`` points: synthetic specs as they are, files as an absolute path.

    A relative path is looked up from the working directory, then next to the config file,
    then from the project root (so the bundled configs' ``../shared/data/...`` works from any
    directory in a source checkout). If none exists the spec is returned unchanged and the data
    loader reports it.
    """
    if spec == "synthetic" or spec.startswith("synthetic:"):
        return spec
    path = Path(spec).expanduser()
    if path.is_absolute():
        return str(path)
    bases = [Path.cwd()] + ([source.resolve().parent] if source is not None else []) + [_PROJECT_ROOT]
    for base in bases:
        if (base / path).exists():
            return str((base / path).resolve())
    return spec


def open_dataset(cfg: ExperimentConfig):
    """Load the run's :class:`~fl.data.FederatedDataset` (honouring ``data.max_clients``).

    Raises:
      DataError: the data cannot be read.
    """
    ds = load_dataset(resolve_data_path(cfg.data.path, cfg.source))
    if cfg.data.max_clients is not None:
        keep = ds.train_clients()[: cfg.data.max_clients]
        ds = ds.subset(keep)
    return ds


def _public_mean_weight(agg) -> float | None:
    """The average weight the attacker's boost may assume without reading anyone's data: under
    noise with ``"examples"`` the server divides by the public ``K * max_weight``, so
    ``max_weight``; otherwise ``None`` (the participants' mean count; no privacy claim then)."""
    if agg.noise != "none" and agg.weighting == "examples" and agg.max_weight:
        return float(agg.max_weight)
    return None


def build_run_adversary(cfg: ExperimentConfig, dataset) -> Any:
    """The adversary of ``cfg.attack`` on ``dataset`` (``None`` for a clean run), as a run builds it."""
    if cfg.attack is None or not cfg.attack.enabled:
        return None
    try:
        return attacks.build_adversary(cfg.attack, dataset, cfg.run.seed,
                                       norm_bound=(cfg.aggregation.norm_bound or cfg.aggregation.server_clip
                                                   or cfg.aggregation.server_threshold or None),
                                       weighting=cfg.aggregation.weighting,
                                       clients_per_round=cfg.fedavg.clients_per_round,
                                       norm_kind=cfg.aggregation.norm_kind,
                                       mean_client_weight=_public_mean_weight(cfg.aggregation))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _csv_bytes(rows: Sequence[dict[str, Any]], leading: Sequence[str], groups: Sequence[Iterable[str]]) -> bytes:
    """Rows as CSV: the ``leading`` columns, then each group of extra keys, sorted."""
    columns = list(leading)
    for group in groups:
        columns += sorted(set(group) - set(columns))
    return csv_bytes(rows, columns)


# ---------------------------------------------------------------------------- running
@dataclasses.dataclass
class RunSummary:
    """What a finished (or stopped) run reports.

    Attributes:
      run_dir: the run's directory.
      rounds_done: rounds trained so far (including those before a resume).
      finished: whether all ``run.rounds`` were trained.
      last_metrics: the last metrics.csv row (empty if nothing was evaluated).
      failed_rounds: rounds in which the pipeline raised ``RoundFailed``.
      params: the final global parameters (on the CPU).
    """

    run_dir: Path
    rounds_done: int
    finished: bool
    last_metrics: dict[str, Any]
    failed_rounds: list[int]
    params: torch.Tensor


def _prepare(cfg: ExperimentConfig, dataset=None, simulation: Callable[..., Simulation] | None = None) -> Simulation:
    """Load the data and build the adversary and the simulation (no files written)."""
    check_private_start(cfg)  # configs built in code skip parse_config
    dataset = dataset if dataset is not None else open_dataset(cfg)
    adversary = build_run_adversary(cfg, dataset)
    sim = (simulation or Simulation)(cfg, dataset, adversary=adversary)
    if cfg.run.init_from:
        sim.params = load_initial_params(cfg.run.init_from, cfg.source, sim.dim).to(sim.device)
    return sim


def load_initial_params(spec: str, source: Path | None, dim: int) -> torch.Tensor:
    """The parameters ``run.init_from`` names: a run directory's latest checkpoint or a checkpoint.

    The checkpoint must verify (a run directory's newest one: an older one would silently give
    another start); checkpoints written before sealed checkpoints are read unverified.

    Raises:
      ConfigError: nothing readable there, a checkpoint that fails verification, or parameters
        of another model (length != ``dim``).
    """
    path = Path(resolve_data_path(spec, source))
    if path.is_dir():
        found = RunDirectory(path).latest_checkpoint()
        if found is None:
            raise ConfigError(f"run.init_from: {spec} is a directory without checkpoints")
        path = found
    try:
        state = read_checkpoint(path)
    except BadCheckpoint as e:
        if "unsealed" not in str(e):
            raise ConfigError(f"run.init_from: {path}: {e}") from None
        try:  # format 1: a bare torch file
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or foreign file
            raise ConfigError(f"run.init_from: cannot read a sabre checkpoint from {spec} "
                              f"({type(e).__name__})") from None
    params = state.get("params") if isinstance(state, dict) else None
    if not isinstance(params, torch.Tensor) or params.dtype != torch.float32 or params.shape != (dim,):
        raise ConfigError(f"run.init_from: {spec} holds parameters of another model (expected {dim} float32 values)")
    return params.clone()


# ---------------------------------------------------------------------------- checkpoints
def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's state, if the file verifies (its frame, digest and format).

    This checks the file alone; whether it belongs to a run directory is :func:`_verify`'s
    business.

    Raises:
      BadCheckpoint: unreadable, damaged, foreign or of another format (the message says which).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BadCheckpoint(f"cannot be read ({e.strerror or e})") from None
    payload = unseal(data)
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:  # a sealed file whose payload torch cannot load: not written by sabre
        raise BadCheckpoint(f"its payload does not load ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise BadCheckpoint(f"not a sabre checkpoint of format {_CHECKPOINT_FORMAT}")
    return state


def _verify(state: dict[str, Any], named_round: int, digest: str, directory: RunDirectory) -> None:
    """Check a verified file's state against its name, the run's pinned config and the CSV files.

    Raises:
      BadCheckpoint: the state does not fit this run directory.
    """
    next_round = state.get("next_round")
    if type(next_round) is not int or next_round != named_round:
        raise BadCheckpoint(f"its round counter ({next_round!r}) disagrees with its file name ({named_round})")
    if state.get("config_sha256") != digest:
        raise BadCheckpoint("written for another configuration (its config digest differs from the run's pin)")
    params, round_rows, metric_rows = state.get("params"), state.get("round_rows"), state.get("metric_rows")
    if not isinstance(params, torch.Tensor) or params.dtype != torch.float32 or params.dim() != 1:
        raise BadCheckpoint("its parameters are not a float32 vector")
    if not isinstance(round_rows, list) or not isinstance(metric_rows, list) \
            or not all(isinstance(r, dict) for r in round_rows + metric_rows):
        raise BadCheckpoint("its rows are not lists of rows")
    if [r.get("round") for r in round_rows] != list(range(next_round)):
        raise BadCheckpoint(f"its round rows are not rounds 0..{next_round - 1}")
    evaluated = [r.get("round") for r in metric_rows]
    if any(type(r) is not int for r in evaluated) or evaluated != sorted(set(evaluated)) \
            or any(not 0 <= r < next_round for r in evaluated):
        raise BadCheckpoint("its metric rows are not increasing rounds below its round counter")
    groups = state.get("metric_groups")
    if not isinstance(groups, list) or len(groups) != 2 or not all(isinstance(g, list) for g in groups):
        raise BadCheckpoint("its column groups are damaged")
    for table, rows in ((directory.rounds, round_rows), (directory.metrics, metric_rows)):
        mismatch = _table_mismatch(table, rows, next_round)
        if mismatch is not None:
            raise BadCheckpoint(f"{table.name} disagrees with it at round {mismatch}")


def _table_mismatch(path: Path, rows: list[dict[str, Any]], next_round: int) -> int | str | None:
    """The first round below ``next_round`` at which the CSV file's row is not the checkpoint's.

    Rows missing from the file (it was cut short or removed) are not a mismatch: the checkpoint
    restores them. A file that does not parse is.
    """
    try:
        with open(path, newline="") as f:
            on_disk = [{k: v for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
    except FileNotFoundError:
        return None
    except (OSError, csv.Error, UnicodeDecodeError):
        return "?"  # unreadable
    expected = {int(r["round"]): {k: c for k, v in r.items() if (c := csv_cell(v)) != ""} for r in rows}
    for row in on_disk:
        try:
            index = int(row.get("round", ""))
        except ValueError:
            return row.get("round", "?")
        if index >= next_round:
            continue  # written after this checkpoint (by a killed process): recomputed
        if expected.get(index) != row:
            return index
    return None


# ---------------------------------------------------------------------------- the run
class _Run:
    """One execution of a run (fresh or resumed): the loop, its files and its log.

    Everything that can fail on bad input (data, adversary, pipeline) is built by
    :func:`_prepare`, and everything resume checks is checked, before the run directory is
    written; the caller holds the directory's :class:`~fl.rundir.RunLock` throughout.
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: RunDirectory, sim: Simulation):
        self.cfg = cfg
        self.dir = run_dir
        self.sim = sim
        self.dataset = sim.dataset
        self.adversary = sim.adversary
        self.config_sha256 = config_digest(cfg)
        self.log = _open_log(run_dir.log)
        self.metric_rows: list[dict[str, Any]] = []
        self.round_rows: list[dict[str, Any]] = []
        self.metric_groups: tuple[set[str], set[str]] = (set(), set())

    # -- checkpoints
    def save_checkpoint(self) -> Path:
        state = {
            "format": _CHECKPOINT_FORMAT,
            "next_round": self.sim.next_round,
            "config_sha256": self.config_sha256,
            "config": config_to_toml(self.cfg),
            "device": str(self.sim.device),  # where the rounds after it ran (a record; nothing relies on it)
            "params": self.sim.params.detach().to("cpu").clone(),
            "metric_rows": self.metric_rows,
            "round_rows": self.round_rows,
            "metric_groups": [sorted(g) for g in self.metric_groups],
            "adversary": self.adversary.state_dict() if hasattr(self.adversary, "state_dict") else None,
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        path = self.dir.checkpoint(self.sim.next_round)
        write_atomic(path, seal(buf.getvalue()), fault="checkpoint")
        self.log.info("checkpoint %s (after %d rounds)", path.name, self.sim.next_round)
        return path

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's state (already verified by :func:`_verify`).

        Raises:
          BadCheckpoint: it does not fit the model or the adversary.
        """
        try:
            self.sim.restore(state["params"], state["next_round"], state["round_rows"])
        except ValueError as e:
            raise BadCheckpoint(str(e)) from None
        self.metric_rows = [dict(r) for r in state["metric_rows"]]
        self.round_rows = [dict(r) for r in state["round_rows"]]
        self.metric_groups = tuple(set(g) for g in state["metric_groups"])
        if state.get("adversary") is not None:
            if not hasattr(self.adversary, "load_state_dict"):
                raise BadCheckpoint("it holds adversary state but the run's adversary takes none")
            try:
                self.adversary.load_state_dict(state["adversary"])
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise BadCheckpoint(f"its adversary state does not load ({type(e).__name__}: {e})") from None

    # -- the loop
    def loop(self, *, progress: bool, stop_after: int | None) -> RunSummary:
        cfg = self.cfg
        total = cfg.run.rounds
        bar = tqdm(total=total, initial=self.sim.next_round, unit="round", disable=not progress,
                   dynamic_ncols=True, desc=cfg.run.name)
        try:
            while self.sim.next_round < total:
                if stop_after is not None and self.sim.next_round >= stop_after:
                    self.log.info("stopped after %d rounds (as asked)", self.sim.next_round)
                    return self._summary(finished=False)
                result = self.sim.run_round()
                self._record_round(result)
                if self.sim.should_evaluate(result.round_index):
                    row = self._evaluate(result)
                    bar.set_postfix(acc=f"{row['main_acc']:.4f}")
                faults.point("round.done")
                every = cfg.run.checkpoint_every
                if every and self.sim.next_round % every == 0 and self.sim.next_round < total:
                    self.save_checkpoint()
                bar.update(1)
            self.save_checkpoint()
            plot_runs([self.dir.root], self.dir.plot)
            self.log.info("finished %d rounds; plot in %s", total, self.dir.plot.name)
            return self._summary(finished=True)
        finally:
            bar.close()
            self._close_log()

    def _record_round(self, result: RoundResult) -> None:
        self.round_rows.append(result.row())
        write_atomic(self.dir.rounds, self._rounds_csv(), fault="rounds")
        for event in result.events:
            self.log.info("round %d: %s", result.round_index, event)
        for cid, reason in sorted(result.rejected.items()):
            self.log.info("round %d: client %d rejected: %s", result.round_index, cid, reason)
        if result.failure is not None:
            self.log.warning("round %d failed (%s); model not updated", result.round_index, result.failure)

    def _evaluate(self, result: RoundResult) -> dict[str, Any]:
        metrics = self.sim.evaluate_global()
        row = {**result.row(), **metrics}
        self.metric_rows.append(row)
        adversary_keys = set(metrics) - {"main_acc", "main_loss"}
        self.metric_groups[0].update(adversary_keys)
        self.metric_groups[1].update(result.measurements)
        write_atomic(self.dir.metrics, self._metrics_csv(), fault="metrics")
        self.log.info("round %d: %s", result.round_index,
                      ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        return row

    def _rounds_csv(self) -> bytes:
        return _csv_bytes(self.round_rows, ROUND_COLUMNS, [set().union(*(r.keys() for r in self.round_rows))])

    def _metrics_csv(self) -> bytes:
        return _csv_bytes(self.metric_rows, METRIC_COLUMNS, self.metric_groups)

    def _write_tables(self) -> None:
        write_atomic(self.dir.rounds, self._rounds_csv(), fault="rounds")
        write_atomic(self.dir.metrics, self._metrics_csv(), fault="metrics")

    def _close_log(self) -> None:
        for handler in list(self.log.handlers):
            handler.close()
            self.log.removeHandler(handler)

    def _summary(self, *, finished: bool) -> RunSummary:
        return RunSummary(
            run_dir=self.dir.root,
            rounds_done=self.sim.next_round,
            finished=finished,
            last_metrics=dict(self.metric_rows[-1]) if self.metric_rows else {},
            failed_rounds=[int(r["round"]) for r in self.round_rows if r["round_failed"]],
            params=self.sim.params.detach().to("cpu").clone(),
        )


def _open_log(path: Path) -> logging.Logger:
    logger = logging.getLogger(f"sabre.run.{path.parent.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    logger.addHandler(handler)
    return logger


@contextlib.contextmanager
def _filesystem_errors(root: Path) -> Iterator[None]:
    """Turn an ``OSError`` from the run directory's files into one :class:`RunDirError` line."""
    try:
        yield
    except OSError as e:
        raise RunDirError(f"run directory {root}: {os_error_text(e)}") from None


def _log_start(run: _Run, cfg: ExperimentConfig) -> None:
    run.log.info("run %s, seed %d, %d rounds, device %s", cfg.run.name, cfg.run.seed, cfg.run.rounds, run.sim.device)
    run.log.info("data %s: %d clients with training data, %d test images", run.dataset.name,
                 len(run.sim.population), run.sim.num_test)
    if cfg.run.init_from:
        run.log.info("start: parameters of %s%s", cfg.run.init_from,
                     " (stated public / independent of these clients' data: run.init_from_public = true)"
                     if cfg.run.init_from_public else "")
    run.log.info("model %s (%d parameters); pipeline: %s", cfg.model.name, run.sim.dim,
                 " -> ".join(run.sim.pipeline.describe()))
    if run.adversary is not None:
        run.log.info("adversary: %r", run.adversary)


def run_experiment(
    cfg: ExperimentConfig,
    *,
    out: str | Path | None = None,
    base: str | Path = "runs",
    progress: bool = True,
    stop_after: int | None = None,
    dataset=None,
    simulation: Callable[..., Simulation] | None = None,
) -> RunSummary:
    """Run ``cfg`` from round 0 in a new run directory.

    Args:
      cfg: the validated configuration.
      out: the run directory (absent, empty, or one a run was killed while starting in);
        ``base/<name>-<timestamp>`` if ``None``.
      base: parent of generated run directories.
      progress: show a tqdm progress bar on stderr.
      stop_after: stop once this many rounds are done, without the final checkpoint and plot,
        as if the process had been killed (for testing resume).
      dataset: an already loaded dataset (``cfg.data`` is then only recorded).
      simulation: builds the simulation as ``simulation(cfg, dataset, adversary=...)``
        (default :class:`~fl.simulation.Simulation`; ``fl.net.server.NetworkSimulation`` for a
        run whose clients are other processes).

    Returns:
      The :class:`RunSummary`.

    Raises:
      ConfigError, DataError: the configuration or its data is invalid.
      RunDirError: the run directory cannot be made, is taken, or a file in it cannot be written.
    """
    faults.parse(os.environ.get(faults.ENV, ""))  # a bad SABRE_FAULT fails before any work
    resolved = dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, path=resolve_data_path(cfg.data.path, cfg.source)))
    if cfg.run.init_from:
        resolved = dataclasses.replace(resolved, run=dataclasses.replace(
            cfg.run, init_from=resolve_data_path(cfg.run.init_from, cfg.source)))
    if out is not None:
        RunDirectory.check_free(out)
    sim = _prepare(resolved, dataset, simulation)
    run_dir = RunDirectory.create(cfg.run.name, out, base)
    lock = RunLock.acquire(run_dir.root)
    try:
        with _filesystem_errors(run_dir.root):
            if not run_dir.is_unused():  # another process started a run here since check_free
                raise RunDirError(f"--out {run_dir.root}: exists and is not an empty directory")
            clean_stale_tmp(run_dir)
            write_atomic(run_dir.config, config_to_toml(resolved).encode(), fault="config")
            write_pin(run_dir, resolved)
            run = _Run(resolved, run_dir, sim)
            _log_start(run, resolved)
            faults.point("run.started")
            return run.loop(progress=progress, stop_after=stop_after)
    finally:
        lock.release()


def resume_experiment(
    run_dir: str | Path,
    overrides: Sequence[str] = (),
    *,
    progress: bool = True,
    stop_after: int | None = None,
    dataset=None,
    warn: Callable[[str], None] | None = None,
) -> RunSummary:
    """Continue a stopped run from its newest good checkpoint, in the same directory.

    Under the directory's lock, and before anything in it is written: config.toml (with
    ``overrides``) must equal the pinned config outside :data:`RESUME_OVERRIDABLE` (a missing
    or damaged pin is restored from the config sealed in a checkpoint); checkpoints are verified
    newest first (frame and digest, format, round counter against the file name and the rows,
    config digest, the CSV rows on disk) and the newest good one is taken; the data and the
    simulation are built. Only then are the temporary files of killed writes removed, bad newer
    checkpoints moved aside to ``<name>.bad`` (named in run.log and through ``warn``), config.toml
    rewritten (if ``overrides`` change it) and the tables rewritten from the checkpoint. A run
    with no checkpoint yet starts over from round 0.

    Args:
      run_dir: the run directory to continue.
      overrides: ``--set`` overrides, limited to :data:`RESUME_OVERRIDABLE`.
      progress, stop_after, dataset: as for :func:`run_experiment`.
      warn: called with each warning (a bad checkpoint passed over) besides run.log.

    Returns:
      The :class:`RunSummary`.

    Raises:
      ConfigError: an override outside :data:`RESUME_OVERRIDABLE`, or an invalid config.toml.
      RunDirError: not a run directory, locked by another process, config.toml changed since
        the run started, no checkpoint verifies, a file cannot be read or written, or noised
        releases the records cannot account for (rounds.csv lost or cut short, ``run.rounds``
        below the rounds released, a seeded round to recompute: docs/privacy.md).
    """
    faults.parse(os.environ.get(faults.ENV, ""))
    for text in overrides:
        key = text.partition("=")[0].strip()
        if key not in RESUME_OVERRIDABLE:
            raise ConfigError(f"{key}: cannot be changed when resuming (allowed: {', '.join(RESUME_OVERRIDABLE)})")
    directory = RunDirectory(Path(run_dir))
    try:
        is_run = directory.config.is_file()
    except OSError as e:
        raise RunDirError(f"--resume {run_dir}: {os_error_text(e)}") from None
    if not is_run:
        raise RunDirError(f"--resume {run_dir}: not a run directory (no config.toml); if a run was killed "
                          f"while starting there, start it again: sabre run CONFIG --out {run_dir}")
    lock = RunLock.acquire(directory.root)
    try:
        with _filesystem_errors(directory.root):
            return _resume_locked(directory, list(overrides), progress=progress, stop_after=stop_after,
                                  dataset=dataset, warn=warn)
    finally:
        lock.release()


def _resume_locked(directory: RunDirectory, overrides: list[str], *, progress: bool, stop_after: int | None,
                   dataset, warn: Callable[[str], None] | None) -> RunSummary:
    name = directory.root
    cfg = parse_config(apply_overrides(read_toml(directory.config), overrides), source=directory.config)
    candidates = directory.checkpoint_files()
    pinned, repinned = _pinned_config(directory, candidates)
    if pinned is not None:
        changed = config_differences(pinned, cfg)
        if changed:
            raise RunDirError(
                f"--resume {name}: config.toml differs from the config the run started with in "
                f"{', '.join(changed)}; only {', '.join(RESUME_OVERRIDABLE)} may change when resuming "
                f"(undo the edit, or start a new run)")
    digest = config_digest(pinned if pinned is not None else cfg)

    chosen: tuple[Path, dict[str, Any]] | None = None
    bad: list[tuple[Path, str]] = []
    for named_round, path in candidates:
        try:
            state = read_checkpoint(path)
            _verify(state, named_round, digest, directory)
        except BadCheckpoint as e:
            bad.append((path, str(e)))
            continue
        chosen = (path, state)
        break
    if candidates and chosen is None:
        raise RunDirError(f"--resume {name}: no checkpoint verifies: "
                          + "; ".join(f"{p.name}: {why}" for p, why in bad)
                          + "; see 'When a checkpoint is bad' in docs/simulation.md")
    if chosen is not None and chosen[1]["next_round"] > cfg.run.rounds:
        raise RunDirError(f"--resume {name}: {chosen[0].name} has {chosen[1]['next_round']} rounds done, "
                          f"more than run.rounds = {cfg.run.rounds}")
    # noised rounds a killed run released after the checkpoint are recomputed with fresh noise:
    # every release is counted (docs/privacy.md, "Resuming a run")
    next_round = chosen[1]["next_round"] if chosen is not None else 0
    noised = cfg.aggregation.noise != "none"
    counts_releases = noised and not cfg.aggregation.noise_seeded
    earlier_ledger = read_rereleased(directory) if counts_releases else []
    released = released_rounds(directory, checkpoint_round=candidates[0][0] if candidates else 0) if noised else {}
    _check_rounds_cover(name, cfg.run.rounds, released, earlier_ledger)
    new_releases = [(r, z) for r, z in released.items() if r >= next_round] if counts_releases else []
    ledger = earlier_ledger + new_releases
    if noised and cfg.aggregation.noise_seeded:
        _check_seeded_recompute(name, [(r, z) for r, z in released.items() if r >= next_round])
    sim = _prepare(cfg, dataset)
    run = None
    try:
        run = _Run(cfg, directory, sim)
        if chosen is not None:
            run.restore(chosen[1])
        if ledger:
            sim.count_rereleases(ledger)
    except BadCheckpoint as e:
        if run is not None:
            run._close_log()
        raise RunDirError(f"--resume {name}: {chosen[0].name}: {e}") from None

    # everything is checked: from here on the directory is written
    for path in clean_stale_tmp(directory):
        run.log.info("removed %s, left by a write that was killed", path.relative_to(directory.root))
    if overrides:
        write_atomic(directory.config, config_to_toml(cfg).encode(), fault="config")
        run.log.info("config.toml: %s", ", ".join(overrides))
    if pinned is None:  # killed before it pinned its config: nothing was computed from it
        write_pin(directory, cfg)
    elif repinned is not None:
        write_pin(directory, pinned)
        run.log.warning(repinned)
        if warn is not None:
            warn(repinned)
    for path, why in bad:
        aside = _move_aside(path)
        message = f"checkpoint {path.name} is bad ({why}); moved to {aside.name}"
        run.log.warning(message)
        if warn is not None:
            warn(message)
    if chosen is None:
        run.log.info("no checkpoint yet: starting over from round 0")
        _log_start(run, cfg)
        if warn is not None:
            warn(f"{name}: no checkpoint yet; starting the run over from round 0")
    else:
        run.log.info("resumed from %s: next round %d", chosen[0].name, run.sim.next_round)
        if bad and warn is not None:
            warn(f"resuming from {chosen[0].name}, the newest good checkpoint")
    if new_releases:
        write_rereleased(directory, ledger)  # before the rows go: privacy spent is never forgotten
        message = (f"{len(new_releases)} noised round(s) released after the checkpoint "
                   f"({', '.join(str(r) for r, _ in new_releases)}) are recomputed with fresh noise; counted as "
                   f"extra releases in {directory.rereleased.name} (those rounds are accounted without "
                   "amplification by sampling)")
        run.log.warning(message)
        if warn is not None:
            warn(message)
    elif ledger:
        run.log.info("%d earlier re-released round(s) counted from %s", len(ledger), directory.rereleased.name)
    run._write_tables()  # drop rows a killed process wrote after the checkpoint
    return run.loop(progress=progress, stop_after=stop_after)


def _check_rounds_cover(name: Path, rounds: int, released: dict[int, float],
                        ledger: list[tuple[int, float]]) -> None:
    """Refuse a ``run.rounds`` that would leave noised rounds already released out of the run.

    The resumed run rewrites its tables from the checkpoint and accounts only the rounds it runs,
    so a released round at or beyond ``run.rounds`` would be dropped from every record and never
    recomputed: no ``dp_epsilon`` would count it (docs/privacy.md, "Resuming a run").

    Raises:
      RunDirError: a noised round at or after ``run.rounds`` was released.
    """
    done = sorted(set(released) | {r for r, _ in ledger})
    if done and done[-1] >= rounds:
        raise RunDirError(
            f"--resume {name}: run.rounds = {rounds} is below the {done[-1] + 1} rounds this run has already "
            f"released with noise ({len(done)} noised round(s), the last round {done[-1]}); a resume would drop "
            f"the released rounds from every record and no dp_epsilon would count them. Resume with "
            f"run.rounds >= {done[-1] + 1}")


def _check_seeded_recompute(name: Path, recomputed: list[tuple[int, float]]) -> None:
    """Refuse a resume that would recompute rounds released with seeded noise.

    Seeded noise is the same in the recomputed round as in the killed run's release of it, so
    if the recomputed sum differs at all, the difference of the two releases is the difference of
    the sums with no noise in it (docs/privacy.md, "Resuming a run"). No device is safe to
    recompute on: CUDA kernels are not bit-reproducible, and on the CPU the torch and BLAS thread
    counts change the floating-point results too (a sweep sets them per run); and the device a
    checkpoint records says nothing about rows a later process wrote after it. (The CSPRNG's fresh
    noise is different: there every release is counted.)

    Raises:
      RunDirError: noised rounds after the checkpoint would be recomputed.
    """
    if not recomputed:
        return
    rounds = ", ".join(str(r) for r, _ in recomputed)
    raise RunDirError(
        f"--resume {name}: round(s) {rounds} were released with seeded noise (aggregation.noise_seeded = true) "
        "after the last checkpoint; a resume would recompute them with the same noise, and a recomputed sum "
        "that differs at all (another device, another thread count) would publish the difference of the two "
        "sums without noise. Start a new run (or move this one away), or run with the CSPRNG's fresh noise "
        "(aggregation.noise_seeded = false), whose re-releases are counted")


def _pinned_config(directory: RunDirectory, candidates: list[tuple[int, Path]]
                   ) -> tuple[ExperimentConfig | None, str | None]:
    """The run's pinned config (``None`` if it has none and no checkpoint: killed while it
    started), and, when the pin had to be restored from a checkpoint, why.

    Raises:
      RunDirError: the pin is damaged and there is no checkpoint, or it is missing or damaged
        and no checkpoint holds a verified config.
    """
    try:
        pinned = read_pin(directory)
        problem = "missing"
    except RunDirError as e:
        if not candidates:
            raise
        pinned, problem = None, f"damaged ({e})"
    if pinned is not None or not candidates:
        return pinned, None
    pinned, source, why = _pin_from_checkpoints(candidates, directory)
    if pinned is None:
        raise RunDirError(f"--resume {directory.root}: checkpoints/config.pin is {problem} and no checkpoint "
                          f"holds a verified config to pin again ({'; '.join(why)}); see 'When a checkpoint "
                          f"is bad' in docs/simulation.md")
    return pinned, f"checkpoints/config.pin was {problem}; pinned again from the config sealed in {source.name}"


def _pin_from_checkpoints(candidates: list[tuple[int, Path]], directory: RunDirectory
                          ) -> tuple[ExperimentConfig | None, Path | None, list[str]]:
    """The config sealed in the newest checkpoint that verifies and whose config matches its own
    digest (every checkpoint of a run agrees on it outside the resumable keys), its file, and
    why the newer ones could not give it."""
    why = []
    for _, path in candidates:
        try:
            state = read_checkpoint(path)
            cfg = parse_config(tomllib.loads(state["config"]), source=directory.config)
        except BadCheckpoint as e:
            why.append(f"{path.name}: {e}")
            continue
        except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError):
            why.append(f"{path.name}: its config does not parse")
            continue
        if config_digest(cfg) == state.get("config_sha256"):
            return cfg, path, why
        why.append(f"{path.name}: its config does not match its digest")
    return None, None, why


def _move_aside(path: Path) -> Path:
    aside, n = path.with_name(path.name + ".bad"), 2
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.bad{n}"), n + 1
    path.rename(aside)
    return aside
