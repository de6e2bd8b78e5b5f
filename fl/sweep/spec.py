"""The sweep file: a base config, fixed overrides, a grid, and seeds.

::

    base = "fig4a_bound3"            # a bundled config name or a path (or a list of them)
    seeds = [0, 1, 2]                # run.seed of each run
    [set]                            # fixed overrides, as with --set
    "run.rounds" = 50
    [grid]                           # every combination of these values
    "aggregation.norm_bound" = [3.0, 5.0, 10.0]

A *setting* is one base with one combination of grid values; every setting runs once per seed.
``base`` may be a list of configs (a figure whose settings are separate bundled configs, such
as Figure 4a's three bounds and its no-attack reference): every base is crossed with the grid.
:func:`load_sweep` checks the file and every run's config before anything runs, so a typo in a
key fails at once with the key named.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path
from typing import Any, Mapping

from fl.config import (
    ConfigError,
    ExperimentConfig,
    _toml_value,
    apply_overrides,
    find_config,
    parse_config,
    read_toml,
    tomllib,
)

__all__ = ["SweepSpec", "Setting", "RunSpec", "load_sweep", "find_sweep", "parse_sweep", "BUNDLED_SWEEPS"]

#: the sweep files shipped with the package
BUNDLED_SWEEPS = Path(__file__).resolve().parent.parent / "configs" / "sweeps"

_TOP_KEYS = ("base", "seeds", "set", "grid", "description")
_KEY_RE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One point of the sweep: a base config and the grid values chosen for it.

    Attributes:
      name: the setting's name, also its directory under ``runs/`` (``base`` or
        ``base__key=value__...``).
      base: the base config as the sweep file names it.
      values: the grid values of this setting, ``{"section.key": value}`` in the grid's order.
    """

    name: str
    base: str
    values: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of the sweep: a setting with one seed.

    Attributes:
      setting: the :class:`Setting`.
      seed: ``run.seed``.
      config: the run's validated config (base, then ``[set]``, then the grid values, then the seed).
      rel_dir: the run directory relative to the sweep directory.
    """

    setting: Setting
    seed: int
    config: ExperimentConfig
    rel_dir: str


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file.

    Attributes:
      source: the file.
      bases: the base configs as named in the file.
      base_paths: the files they refer to.
      seeds: the seeds, in the file's order.
      fixed: the ``[set]`` overrides.
      grid: the ``[grid]`` axes, ``{"section.key": [values]}`` in the file's order.
      description: free text from the file (``""`` if none).
    """

    source: Path
    bases: tuple[str, ...]
    base_paths: tuple[Path, ...]
    seeds: tuple[int, ...]
    fixed: dict[str, Any]
    grid: dict[str, list[Any]]
    description: str = ""

    def settings(self) -> list[Setting]:
        """Every setting: each base crossed with every combination of the grid, in file order."""
        keys = list(self.grid)
        short = _short_names(keys)
        out = []
        for base in self.bases:
            stem = _stem(base)
            for combo in itertools.product(*(self.grid[k] for k in keys)):
                values = dict(zip(keys, combo))
                name = stem + "".join(f"__{short[k]}={_name_value(v)}" for k, v in values.items())
                out.append(Setting(_UNSAFE.sub("_", name), base, values))
        names = [s.name for s in out]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})[0]
            raise ConfigError(f"{self.source}: two settings share the name {dup!r} (a base listed twice, "
                              f"or grid values that print alike)")
        return out

    def runs(self) -> list[RunSpec]:
        """Every run, setting by setting and seed by seed, with its validated config.

        Raises:
          ConfigError: a run's config is invalid (the message names the setting and the key).
        """
        out = []
        for setting in self.settings():
            path = self.base_paths[self.bases.index(setting.base)]
            for seed in self.seeds:
                cfg = _run_config(path, {**self.fixed, **setting.values, "run.seed": seed},
                                  where=f"{self.source}: setting {setting.name}, seed {seed}")
                out.append(RunSpec(setting, seed, cfg, f"runs/{setting.name}/seed_{seed}"))
        return out


def find_sweep(name: str | Path) -> Path:
    """The sweep file ``name`` refers to: an existing path, else a bundled sweep.

    Raises:
      ConfigError: neither (the message lists the bundled sweeps).
    """
    path = Path(name)
    if path.is_file():
        return path
    stem = path.name[: -len(".toml")] if path.name.endswith(".toml") else path.name
    if path.parent in (Path("."), Path("sweeps"), Path("configs/sweeps"), Path("fl/configs/sweeps")):
        bundled = BUNDLED_SWEEPS / f"{stem}.toml"
        if bundled.is_file():
            return bundled
    known = ", ".join(sorted(p.stem for p in BUNDLED_SWEEPS.glob("*.toml")))
    raise ConfigError(f"{name}: no such sweep file, nor a bundled sweep (bundled: {known})")


def load_sweep(name: str | Path) -> SweepSpec:
    """Read and check a sweep file (a path or a bundled sweep's name).

    Raises:
      ConfigError: the file does not parse, has an unknown or malformed entry, or one of its
        runs' configs is invalid.
    """
    path = find_sweep(name)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the sweep file ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    spec = parse_sweep(table, source=path)
    spec.runs()  # every run's config is valid before anything starts
    return spec


def parse_sweep(table: Mapping[str, Any], source: Path) -> SweepSpec:
    """Check a parsed sweep document and resolve its bases (run configs are not built here).

    Raises:
      ConfigError: naming the offending entry.
    """
    where = str(source)
    unknown = sorted(set(table) - set(_TOP_KEYS))
    if unknown:
        raise ConfigError(f"{where}: {unknown[0]}: unknown entry (known: {', '.join(_TOP_KEYS)})")
    base = table.get("base")
    bases = [base] if isinstance(base, str) else base
    if not isinstance(bases, list) or not bases or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(f"{where}: base: expected a config name or path, or a non-empty list of them, got {base!r}")
    paths = []
    for b in bases:
        candidate = Path(b)
        if not candidate.is_absolute() and (source.parent / candidate).is_file():
            candidate = source.parent / candidate  # a path relative to the sweep file
        try:
            paths.append(find_config(str(candidate)))
        except ConfigError as e:
            raise ConfigError(f"{where}: base: {e}") from None
    seeds = table.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int and s >= 0 for s in seeds):
        raise ConfigError(f"{where}: seeds: expected a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds: a seed is listed twice ({seeds!r})")
    fixed = table.get("set", {})
    if not isinstance(fixed, Mapping):
        raise ConfigError(f"{where}: set: expected a table of \"section.key\" = value, got {fixed!r}")
    for key in fixed:
        _check_key(where, "set", key)
    grid = table.get("grid", {})
    if not isinstance(grid, Mapping):
        raise ConfigError(f"{where}: grid: expected a table of \"section.key\" = [values], got {grid!r}")
    for key, values in grid.items():
        _check_key(where, "grid", key)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid.{key}: expected a non-empty list of values, got {values!r}")
        if len({_toml_value(v) for v in values}) != len(values):
            raise ConfigError(f"{where}: grid.{key}: a value is listed twice ({values!r})")
        if key in fixed:
            raise ConfigError(f"{where}: grid.{key}: also set in [set]; give it in one place")
    for key in ("run.seed",):
        if key in fixed or key in grid:
            raise ConfigError(f"{where}: {key}: the seeds come from 'seeds', not from [set] or [grid]")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: description: expected a string")
    return SweepSpec(source=source, bases=tuple(bases), base_paths=tuple(paths), seeds=tuple(seeds),
                     fixed=dict(fixed), grid={k: list(v) for k, v in grid.items()}, description=description)


def _check_key(where: str, table: str, key: str) -> None:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ConfigError(f"{where}: {table}: {key!r}: expected a key of the form \"section.key\" "
                          f"(for example \"run.rounds\")")


def _run_config(path: Path, values: Mapping[str, Any], where: str) -> ExperimentConfig:
    try:
        overrides = [f"{key}={_toml_value(value)}" for key, value in values.items()]
        table = apply_overrides(read_toml(path), overrides)
        return parse_config(table, source=path)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _stem(base: str) -> str:
    name = Path(base).name
    return name[: -len(".toml")] if name.endswith(".toml") else name


def _short_names(keys: list[str]) -> dict[str, str]:
    """``section.key`` -> ``key`` where that is unambiguous among the grid's keys."""
    last = [k.split(".", 1)[1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _name_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return _toml_value(value).replace(" ", "")
