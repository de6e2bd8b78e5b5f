"""A run on disk: its directory, metrics, log, checkpoints, resume and progress bar.

Each run writes one directory (``runs/<name>-<timestamp>/`` unless told otherwise)::

    config.toml     the resolved configuration (defaults and overrides filled in)
    metrics.csv     one row per evaluated round (see METRIC_COLUMNS)
    rounds.csv      one row per round: time, clients, rejections, failures, pipeline measurements
    run.log         what happened, in words (pipeline, data, failed rounds, evaluations)
    plot.png        main-task (and backdoor) accuracy per round
    checkpoints/    round_000010.pt ...: everything needed to continue the run

A checkpoint holds the global parameters, the index of the next round, the rows written so far
and the adversary's state (if it has any); with the per-round seeding of
:class:`~fl.simulation.Simulation` that is all a resumed run needs to reproduce the rows and the
final parameters of an uninterrupted one, bit for bit (``seconds`` aside).
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from fl.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    config_to_toml,
    parse_config,
    read_toml,
)
from fl.simulation import RoundResult, Simulation

__all__ = [
    "RunDirectory",
    "RunSummary",
    "run_experiment",
    "resume_experiment",
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
RESUME_OVERRIDABLE = ("run.rounds", "run.device", "run.checkpoint_every")

_CHECKPOINT_FORMAT = 1
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


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
    from fl.data import load_dataset

    ds = load_dataset(resolve_data_path(cfg.data.path, cfg.source))
    if cfg.data.max_clients is not None:
        keep = ds.train_clients()[: cfg.data.max_clients]
        ds = ds.subset(keep)
    return ds


def _build_adversary(cfg: ExperimentConfig, dataset) -> Any:
    if cfg.attack is None or not cfg.attack.enabled:
        return None
    import attacks

    try:
        return attacks.build_adversary(cfg.attack, dataset, cfg.run.seed,
                                       norm_bound=(cfg.aggregation.norm_bound or cfg.aggregation.server_clip
                                                   or cfg.aggregation.server_threshold or None),
                                       weighting=cfg.aggregation.weighting,
                                       clients_per_round=cfg.fedavg.clients_per_round)
    except ValueError as e:
        raise ConfigError(str(e)) from None


# ---------------------------------------------------------------------------- the directory
@dataclasses.dataclass(frozen=True)
class RunDirectory:
    """The files of one run (see the module docstring)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def rounds(self) -> Path:
        return self.root / "rounds.csv"

    @property
    def log(self) -> Path:
        return self.root / "run.log"

    @property
    def plot(self) -> Path:
        return self.root / "plot.png"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, next_round: int) -> Path:
        """The checkpoint taken after ``next_round`` rounds."""
        return self.checkpoints / f"round_{next_round:06d}.pt"

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint with the most rounds, or ``None``."""
        found = sorted(self.checkpoints.glob("round_*.pt"))
        return found[-1] if found else None

    @staticmethod
    def check_free(out: str | Path) -> Path:
        """``out`` as a path, if a new run may be written there (absent or an empty directory).

        Raises:
          ConfigError: ``out`` exists and is not an empty directory.
        """
        root = Path(out)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise ConfigError(f"--out {root}: exists and is not an empty directory")
        return root

    @classmethod
    def create(cls, name: str, out: str | Path | None = None, base: str | Path = "runs") -> "RunDirectory":
        """Make a fresh run directory: ``out`` if given (it must be empty or absent), else
        ``base/<name>-<UTC timestamp>`` (with a numeric suffix if that exists).

        Raises:
          ConfigError: ``out`` exists and is not an empty directory.
        """
        if out is not None:
            root = cls.check_free(out)
        else:
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
            root = Path(base) / f"{name}-{stamp}"
            n = 2
            while root.exists():
                root = Path(base) / f"{name}-{stamp}-{n}"
                n += 1
        (root / "checkpoints").mkdir(parents=True, exist_ok=True)
        return cls(root)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _file_mode())  # mkstemp makes it private; give it the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_bytes(rows: Sequence[dict[str, Any]], leading: Sequence[str], groups: Sequence[Iterable[str]]) -> bytes:
    """Rows as CSV: the ``leading`` columns, then each group of extra keys, sorted."""
    columns = list(leading)
    for group in groups:
        columns += sorted(set(group) - set(columns))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buf.getvalue().encode()


def _cell(value: Any) -> str:
    # repr of a float round-trips exactly, so two runs compare bit for bit through the CSV
    return repr(value) if isinstance(value, float) else str(value)


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` (or ``rounds.csv``) as floats (empty cells left out).

    Raises:
      FileNotFoundError: the file does not exist.
    """
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


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


def _prepare(cfg: ExperimentConfig, dataset=None) -> Simulation:
    """Load the data and build the adversary and the simulation (no files written)."""
    dataset = dataset if dataset is not None else open_dataset(cfg)
    adversary = _build_adversary(cfg, dataset)
    sim = Simulation(cfg, dataset, adversary=adversary)
    if cfg.run.init_from:
        sim.params = load_initial_params(cfg.run.init_from, cfg.source, sim.dim).to(sim.device)
    return sim


def load_initial_params(spec: str, source: Path | None, dim: int) -> torch.Tensor:
    """The parameters ``run.init_from`` names: a run directory's latest checkpoint or a checkpoint.

    Raises:
      ConfigError: nothing readable there, or parameters of another model (length != ``dim``).
    """
    path = Path(resolve_data_path(spec, source))
    if path.is_dir():
        found = RunDirectory(path).latest_checkpoint()
        if found is None:
            raise ConfigError(f"run.init_from: {spec} is a directory without checkpoints")
        path = found
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        params = state["params"]
    except Exception as e:  # missing, truncated or foreign file
        raise ConfigError(f"run.init_from: cannot read a sabre checkpoint from {spec} ({type(e).__name__})") from None
    if not isinstance(params, torch.Tensor) or params.dtype != torch.float32 or params.shape != (dim,):
        raise ConfigError(f"run.init_from: {spec} holds parameters of another model (expected {dim} float32 values)")
    return params.clone()


class _Run:
    """One execution of a run (fresh or resumed): the loop, its files and its log.

    Everything that can fail on bad input (data, adversary, pipeline) is built by
    :func:`_prepare` before the run directory is touched.
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: RunDirectory, sim: Simulation):
        self.cfg = cfg
        self.dir = run_dir
        self.sim = sim
        self.dataset = sim.dataset
        self.adversary = sim.adversary
        self.log = _open_log(run_dir.log)
        self.metric_rows: list[dict[str, Any]] = []
        self.round_rows: list[dict[str, Any]] = []
        self.metric_groups: tuple[set[str], set[str]] = (set(), set())

    # -- checkpoints
    def save_checkpoint(self) -> Path:
        state = {
            "format": _CHECKPOINT_FORMAT,
            "next_round": self.sim.next_round,
            "params": self.sim.params.detach().to("cpu").clone(),
            "metric_rows": self.metric_rows,
            "round_rows": self.round_rows,
            "metric_groups": [sorted(g) for g in self.metric_groups],
            "adversary": self.adversary.state_dict() if hasattr(self.adversary, "state_dict") else None,
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        path = self.dir.checkpoint(self.sim.next_round)
        _write_atomic(path, buf.getvalue())
        self.log.info("checkpoint %s (after %d rounds)", path.name, self.sim.next_round)
        return path

    def load_checkpoint(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a truncated or foreign file
            raise ConfigError(f"--resume: cannot read checkpoint {path} ({e})") from None
        if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
            raise ConfigError(f"--resume: {path} is not a sabre checkpoint of format {_CHECKPOINT_FORMAT}")
        try:
            self.sim.restore(state["params"], state["next_round"], state["round_rows"])
            self.metric_rows = [dict(r) for r in state["metric_rows"]]
            self.round_rows = [dict(r) for r in state["round_rows"]]
            self.metric_groups = tuple(set(g) for g in state["metric_groups"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ConfigError(f"--resume: {path} is damaged ({type(e).__name__}: {e})") from None
        if len(self.metric_groups) != 2 or not 0 <= self.sim.next_round <= self.cfg.run.rounds:
            raise ConfigError(f"--resume: {path} does not fit this run ({self.sim.next_round} rounds done, "
                              f"run.rounds = {self.cfg.run.rounds})")
        if state.get("adversary") is not None:
            if not hasattr(self.adversary, "load_state_dict"):
                raise ConfigError(f"--resume: {path} holds adversary state but the run's adversary takes none")
            self.adversary.load_state_dict(state["adversary"])
        self.log.info("resumed from %s: next round %d", path.name, self.sim.next_round)
        # drop rows a killed process wrote after its last checkpoint
        self._write_tables()

    # -- the loop
    def loop(self, *, progress: bool, stop_after: int | None) -> RunSummary:
        from tqdm import tqdm

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
                every = cfg.run.checkpoint_every
                if every and self.sim.next_round % every == 0 and self.sim.next_round < total:
                    self.save_checkpoint()
                bar.update(1)
            self.save_checkpoint()
            from fl.plots import plot_runs

            plot_runs([self.dir.root], self.dir.plot)
            self.log.info("finished %d rounds; plot in %s", total, self.dir.plot.name)
            return self._summary(finished=True)
        finally:
            bar.close()
            self._close_log()

    def _record_round(self, result: RoundResult) -> None:
        self.round_rows.append(result.row())
        _write_atomic(self.dir.rounds, self._rounds_csv())
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
        _write_atomic(self.dir.metrics, self._metrics_csv())
        self.log.info("round %d: %s", result.round_index,
                      ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        return row

    def _rounds_csv(self) -> bytes:
        return _csv_bytes(self.round_rows, ROUND_COLUMNS, [set().union(*(r.keys() for r in self.round_rows))])

    def _metrics_csv(self) -> bytes:
        return _csv_bytes(self.metric_rows, METRIC_COLUMNS, self.metric_groups)

    def _write_tables(self) -> None:
        _write_atomic(self.dir.rounds, self._rounds_csv())
        _write_atomic(self.dir.metrics, self._metrics_csv())

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


def run_experiment(
    cfg: ExperimentConfig,
    *,
    out: str | Path | None = None,
    base: str | Path = "runs",
    progress: bool = True,
    stop_after: int | None = None,
    dataset=None,
) -> RunSummary:
    """Run ``cfg`` from round 0 in a new run directory.

    Args:
      cfg: the validated configuration.
      out: the run directory (must be empty or absent); ``base/<name>-<timestamp>`` if ``None``.
      base: parent of generated run directories.
      progress: show a tqdm progress bar on stderr.
      stop_after: stop once this many rounds are done, without the final checkpoint and plot,
        as if the process had been killed (for testing resume).
      dataset: an already loaded dataset (``cfg.data`` is then only recorded).

    Returns:
      The :class:`RunSummary`.

    Raises:
      ConfigError, DataError: the configuration or its data is invalid.
    """
    resolved = dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, path=resolve_data_path(cfg.data.path, cfg.source)))
    if cfg.run.init_from:
        resolved = dataclasses.replace(resolved, run=dataclasses.replace(
            cfg.run, init_from=resolve_data_path(cfg.run.init_from, cfg.source)))
    if out is not None:
        RunDirectory.check_free(out)
    sim = _prepare(resolved, dataset)
    run_dir = RunDirectory.create(cfg.run.name, out, base)
    _write_atomic(run_dir.config, config_to_toml(resolved).encode())
    run = _Run(resolved, run_dir, sim)
    run.log.info("run %s, seed %d, %d rounds, device %s", cfg.run.name, cfg.run.seed, cfg.run.rounds, run.sim.device)
    run.log.info("data %s: %d clients with training data, %d test images", run.dataset.name,
                 len(run.sim.population), run.sim.num_test)
    run.log.info("model %s (%d parameters); pipeline: %s", cfg.model.name, run.sim.dim,
                 " -> ".join(run.sim.pipeline.describe()))
    if run.adversary is not None:
        run.log.info("adversary: %r", run.adversary)
    return run.loop(progress=progress, stop_after=stop_after)


def resume_experiment(
    run_dir: str | Path,
    overrides: Sequence[str] = (),
    *,
    progress: bool = True,
    stop_after: int | None = None,
    dataset=None,
) -> RunSummary:
    """Continue a stopped run from its last checkpoint, in the same directory.

    Args:
      run_dir: the run directory to continue.
      overrides: ``--set`` overrides, limited to :data:`RESUME_OVERRIDABLE`.
      progress, stop_after, dataset: as for :func:`run_experiment`.

    Returns:
      The :class:`RunSummary`.

    Raises:
      ConfigError: not a run directory, no checkpoint, or an override outside
        :data:`RESUME_OVERRIDABLE`.
    """
    directory = RunDirectory(Path(run_dir))
    if not directory.config.is_file():
        raise ConfigError(f"--resume {run_dir}: not a run directory (no config.toml)")
    for text in overrides:
        key = text.partition("=")[0].strip()
        if key not in RESUME_OVERRIDABLE:
            raise ConfigError(f"{key}: cannot be changed when resuming (allowed: {', '.join(RESUME_OVERRIDABLE)})")
    table = apply_overrides(read_toml(directory.config), overrides)
    cfg = parse_config(table, source=directory.config)
    checkpoint = directory.latest_checkpoint()
    if checkpoint is None:
        raise ConfigError(f"--resume {run_dir}: no checkpoint to resume from")
    sim = _prepare(cfg, dataset)
    if overrides:
        _write_atomic(directory.config, config_to_toml(cfg).encode())
    run = _Run(cfg, directory, sim)
    run.load_checkpoint(checkpoint)
    return run.loop(progress=progress, stop_after=stop_after)
