"""A run's configuration: typed TOML sections, validated key by key, with ``--set`` overrides.

A run is described by one TOML file with the sections ``[run]``, ``[data]``, ``[model]``,
``[fedavg]``, ``[eval]``, ``[aggregation]`` and ``[attack]``. Every section is a dataclass whose
fields carry a :class:`Check`; :func:`parse_config` rejects unknown keys, wrong types and bad
values with a :class:`ConfigError` that names the full key, for example::

    fedavg.clients_per_round: expected a positive integer, got -3

Every key has a default, so an empty file is a valid (synthetic, clean) run. The defaults of
``[fedavg]`` are the paper's text (Sun et al. 2019, section 5): 30 clients per round, 5 local
epochs, batch 20, client learning rate 0.1, server learning rate 1.

Public API: :class:`ExperimentConfig` and its sections, :func:`load_config`,
:func:`parse_config`, :func:`apply_overrides`, :func:`config_to_toml`, :class:`ConfigError`,
and the small validation kit (:class:`Check`, :func:`setting`, :func:`parse_section`), which
lives in :mod:`fl.settings` (``fl.aggregation.config`` builds on it there) and is re-exported.
"""
from __future__ import annotations

import dataclasses
import json
import math
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the backport, declared in pyproject.toml
    import tomli as tomllib
from pathlib import Path
from typing import Any, Mapping, Sequence

from attacks.config import AttackConfig
from fl.aggregation.config import AggregationConfig
from fl.model import MODELS
from fl.settings import (  # the validation kit, re-exported: section parsers import it from fl.settings
    BOOL,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    RUN_NAME,
    TEXT,
    Check,
    ConfigError,
    parse_section,
    section_table,
    setting,
)

__all__ = [
    "ConfigError",
    "Check",
    "setting",
    "parse_section",
    "RunConfig",
    "DataConfig",
    "ModelConfig",
    "FedAvgConfig",
    "EvalConfig",
    "ExperimentConfig",
    "SECTIONS",
    "load_config",
    "check_secure_sample",
    "SECURE_MIN_CLIENTS",
    "parse_config",
    "apply_overrides",
    "parse_override",
    "config_to_toml",
    "read_toml",
    "find_config",
    "BUNDLED_CONFIGS",
]



# ---------------------------------------------------------------------------- the sections
@dataclasses.dataclass
class RunConfig:
    """``[run]``: identity, length and machinery of a run.

    Attributes:
      name: the run's name; its directory is ``runs/<name>-<timestamp>``.
      seed: the run seed; every random choice of round ``t`` is derived from ``(seed, t)``.
      rounds: number of FedAvg rounds.
      device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
      checkpoint_every: write a checkpoint every this many rounds (0: only at the end).
      training_path: how clients are trained: ``"loop"`` (one at a time), ``"batched"`` (all
        clients of a round at once) or ``"auto"`` (``fl.training`` decides).
      init_from: start from the parameters of another run (its directory, for its latest
        checkpoint, or a checkpoint file) instead of a fresh initialisation; "" (default) for a
        fresh start. Used for the quick scale of the paper's figures: one shared pre-trained model.
      init_from_public: the user's statement that the ``init_from`` parameters are public or
        independent of this run's clients' data. The accountant counts only the noised rounds of
        this run, not how the start was made (a start trained without noise on the same clients
        carries no guarantee), so with ``aggregation.noise`` an ``init_from`` without this
        statement is refused (docs/privacy.md); the statement is recorded in config.toml and
        run.log.
    """

    name: str = setting("run", RUN_NAME)
    seed: int = setting(0, NON_NEGATIVE_INT)
    rounds: int = setting(10, POSITIVE_INT)
    device: str = setting("auto", Check.one_of(["auto", "cpu", "cuda"]))
    checkpoint_every: int = setting(10, NON_NEGATIVE_INT)
    training_path: str = setting("auto", Check.one_of(["auto", "loop", "batched"]))
    init_from: str = setting("", Check("a path (or \"\")", lambda v: isinstance(v, str)))
    init_from_public: bool = setting(False, BOOL)


@dataclasses.dataclass
class DataConfig:
    """``[data]``: which federated dataset.

    Attributes:
      path: a spec for ``fl.data.load_dataset``: ``"synthetic"``, ``"synthetic:N[:SEED]"``, a
        ``.npz`` file, a TFF h5 directory or a LEAF directory. A relative path is looked up from
        the working directory, then from the config file's directory, then from the project root.
      max_clients: keep only the first this many clients that have training data (all if unset).
    """

    path: str = setting("synthetic", TEXT)
    max_clients: int | None = setting(None, Check.optional(POSITIVE_INT))


@dataclasses.dataclass
class ModelConfig:
    """``[model]``: the network.

    Attributes:
      name: a key of :data:`fl.model.MODELS`: ``"paper_cnn"`` (the paper's CNN) or ``"small_cnn"``.
    """

    name: str = setting("paper_cnn", Check.one_of(MODELS))


@dataclasses.dataclass
class FedAvgConfig:
    """``[fedavg]``: federated averaging (defaults: the paper's text, section 5).

    Attributes:
      clients_per_round: C*K, the clients sampled each round (30 in the paper, 5 in its code).
      sampling: ``"without_replacement"`` (default) or ``"with_replacement"`` (the authors' code).
      server_lr: eta in ``w_{t+1} = w_t + eta * aggregate``.
      epochs: E, local epochs per client and round.
      batch_size: B, the local batch size.
      client_lr: the clients' SGD learning rate.
      shuffle: whether clients shuffle their data each epoch (the authors' code does not).
    """

    clients_per_round: int = setting(30, POSITIVE_INT)
    sampling: str = setting("without_replacement", Check.one_of(["with_replacement", "without_replacement"]))
    server_lr: float = setting(1.0, POSITIVE_NUMBER)
    epochs: int = setting(5, POSITIVE_INT)
    batch_size: int = setting(20, POSITIVE_INT)
    client_lr: float = setting(0.1, POSITIVE_NUMBER)
    shuffle: bool = setting(False, BOOL)


@dataclasses.dataclass
class EvalConfig:
    """``[eval]``: the evaluation schedule.

    Attributes:
      every: evaluate after every this many rounds (and always after the last round).
      batch_size: evaluation batch size (does not change the numbers beyond float rounding).
    """

    every: int = setting(1, POSITIVE_INT)
    batch_size: int = setting(500, POSITIVE_INT)


@dataclasses.dataclass
class ExperimentConfig:
    """A whole run: one attribute per TOML section.

    ``attack`` may be ``None`` when built in code (no attack, as with ``kind = "none"``).
    ``source`` is the file the config was read from (``None`` when built in code); relative
    data paths are also looked up next to it.
    """

    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    fedavg: FedAvgConfig = dataclasses.field(default_factory=FedAvgConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    aggregation: AggregationConfig = dataclasses.field(default_factory=AggregationConfig)
    attack: AttackConfig | None = dataclasses.field(default_factory=AttackConfig)
    source: Path | None = dataclasses.field(default=None, compare=False)


#: section name -> dataclass, in file order (``aggregation`` and ``attack`` are parsed by their packages)
SECTIONS: dict[str, type] = {
    "run": RunConfig,
    "data": DataConfig,
    "model": ModelConfig,
    "fedavg": FedAvgConfig,
    "eval": EvalConfig,
}
_ALL_SECTIONS = (*SECTIONS, "aggregation", "attack")


# ---------------------------------------------------------------------------- reading
def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file.

    Raises:
      ConfigError: the file is missing, unreadable or not valid TOML.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None


def parse_config(table: Mapping[str, Any], source: Path | None = None) -> ExperimentConfig:
    """Build and validate an :class:`ExperimentConfig` from a parsed TOML document.

    Args:
      table: the document, one table per section; missing sections take their defaults.
      source: the file it came from, kept for resolving relative data paths.

    Returns:
      The validated config.

    Raises:
      ConfigError: an unknown section or key, or an invalid value (naming the key).
    """
    for name in table:
        if name not in _ALL_SECTIONS:
            raise ConfigError(f"{name}: unknown section (known: {', '.join(_ALL_SECTIONS)})")
    sections = {name: parse_section(cls, table.get(name), name) for name, cls in SECTIONS.items()}
    aggregation = AggregationConfig.from_table(table.get("aggregation"))
    attack = _parse_attack(table.get("attack"))
    cfg = ExperimentConfig(**sections, aggregation=aggregation, attack=attack, source=source)
    check_private_start(cfg)
    check_secure_sample(cfg)
    return cfg


#: the fewest clients a secure sum takes (with two, each would learn the other's update from the
#: sum; fl.aggregation.secure_sum.SecureSum fails such a round with "secagg_too_few")
SECURE_MIN_CLIENTS = 3


def check_secure_sample(cfg: ExperimentConfig) -> None:
    """Refuse secure aggregation with fewer clients per round than the protocol takes.

    Raises:
      ConfigError: ``aggregation.secure`` with ``fedavg.clients_per_round`` below
        :data:`SECURE_MIN_CLIENTS` (every round would fail and nothing would be trained).
    """
    if getattr(cfg.aggregation, "secure", False) and cfg.fedavg.clients_per_round < SECURE_MIN_CLIENTS:
        raise ConfigError(
            f"fedavg.clients_per_round: {cfg.fedavg.clients_per_round} with aggregation.secure = true; a secure sum "
            f"needs at least {SECURE_MIN_CLIENTS} clients (with two, each learns the other's update from the sum), "
            f"so every round would fail")


def check_private_start(cfg: ExperimentConfig) -> None:
    """Refuse noise on top of a start the accountant does not cover.

    Raises:
      ConfigError: ``aggregation.noise`` with ``run.init_from`` and no ``run.init_from_public``.
    """
    noise = getattr(cfg.aggregation, "noise", "none")
    if cfg.run.init_from and noise != "none" and not cfg.run.init_from_public:
        raise ConfigError(
            f"run.init_from: aggregation.noise = {noise!r} reports an epsilon for this run's noised rounds only; "
            f"a start ({cfg.run.init_from}) trained on the same clients without noise is not covered, so the "
            "epsilon would be false. Start fresh, or, only if those parameters are public or independent of "
            "these clients' data, say so with run.init_from_public = true")
    if cfg.run.init_from_public and not cfg.run.init_from:
        raise ConfigError("run.init_from_public: set without run.init_from")


def _parse_attack(table: Any) -> AttackConfig:
    if table is not None and not isinstance(table, Mapping):
        raise ConfigError(f"attack: expected a table of settings, got {table!r}")
    try:
        return AttackConfig.from_mapping(table)
    except (TypeError, ValueError) as e:
        message = str(e)
        raise ConfigError(message if message.startswith("attack") else f"attack: {message}") from None


#: the directory of the configs shipped with the package
BUNDLED_CONFIGS = Path(__file__).resolve().parent / "configs"  # fl/configs/


def find_config(name: str) -> Path:
    """The config file ``name`` refers to: an existing path, else a bundled config.

    ``configs/NAME.toml``, ``NAME.toml`` and ``NAME`` are looked up in :data:`BUNDLED_CONFIGS`.

    Raises:
      ConfigError: neither a file nor a bundled config (the message lists the bundled ones).
    """
    path = Path(name)
    if path.is_file():
        return path
    stem = path.name[: -len(".toml")] if path.name.endswith(".toml") else path.name
    if path.parent in (Path("."), Path("configs"), Path("fl/configs")):
        bundled = BUNDLED_CONFIGS / f"{stem}.toml"
        if bundled.is_file():
            return bundled
    known = ", ".join(sorted(p.stem for p in BUNDLED_CONFIGS.glob("*.toml")))
    raise ConfigError(f"{name}: no such config file, nor a bundled config (bundled: {known})")


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read a config file, apply ``key=value`` overrides, and validate the result.

    Args:
      path: the TOML file.
      overrides: ``"section.key=value"`` strings (see :func:`parse_override`), applied in order.

    Returns:
      The validated config, with ``source`` set to ``path``.

    Raises:
      ConfigError: the file or an override is invalid (naming the key).
    """
    table = apply_overrides(read_toml(path), overrides)
    return parse_config(table, source=Path(path))


# ---------------------------------------------------------------------------- overrides
def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``"section.key=value"`` into ``(section, key, value)``.

    The value is read as a TOML literal (``true``, ``3``, ``0.5``, ``"text"``, ``[1, 2]``);
    anything that is not a valid TOML literal is taken as a bare string, so
    ``data.path=../shared/data/x.npz`` needs no quotes.

    Raises:
      ConfigError: the text is not of the form ``section.key=value``.
    """
    name, sep, raw = text.partition("=")
    parts = name.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set {text!r}: expected section.key=value (for example fedavg.epochs=1)")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return parts[0], parts[1], value


def apply_overrides(table: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``table`` with each ``section.key=value`` override set.

    Unknown sections and keys are not rejected here but by :func:`parse_config`, with the
    same message as for a key written in the file.

    Raises:
      ConfigError: an override is malformed or its section is not a table.
    """
    result = {name: dict(value) if isinstance(value, Mapping) else value for name, value in table.items()}
    for text in overrides:
        section, key, value = parse_override(text)
        target = result.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{section}: expected a table of settings, got {target!r}")
        target[key] = value
    return result


# ---------------------------------------------------------------------------- writing
def config_to_table(cfg: ExperimentConfig) -> dict[str, dict[str, Any]]:
    """The config as a TOML document (one table per section, absent keys left out)."""
    table = {name: section_table(getattr(cfg, name)) for name in SECTIONS}
    table["aggregation"] = section_table(cfg.aggregation)
    if cfg.attack is not None:
        table["attack"] = {k: v for k, v in dataclasses.asdict(cfg.attack).items() if v is not None}
    return table


def config_to_toml(cfg: ExperimentConfig) -> str:
    """The resolved config as TOML text; :func:`parse_config` of it gives ``cfg`` back."""
    lines: list[str] = []
    for name, values in config_to_table(cfg).items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
