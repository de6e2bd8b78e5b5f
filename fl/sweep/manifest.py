"""The sweep directory's manifest, ``sweep.json``: what the sweep is, written once, read by the plot."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from fl.config import ConfigError
from fl.rundir import write_atomic
from fl.sweep.spec import RunSpec, SweepSpec

__all__ = ["MANIFEST", "write_manifest", "read_manifest"]

MANIFEST = "sweep.json"
_MANIFEST_FORMAT = 1


def write_manifest(out: Path, spec: SweepSpec, runs: Sequence[RunSpec], engine: str,
                   resources: Mapping[str, float]) -> None:
    """Write ``sweep.json``: what the sweep is (its file, settings, seeds, run directories)."""
    settings: dict[str, dict[str, Any]] = {}
    for r in runs:
        entry = settings.setdefault(r.setting.name, {"name": r.setting.name, "base": r.setting.base,
                                                     "values": r.setting.values, "runs": []})
        entry["runs"].append({"seed": r.seed, "dir": r.rel_dir})
    manifest = {
        "format": _MANIFEST_FORMAT,
        "sweep": spec.source.name,
        "description": spec.description,
        "bases": list(spec.bases),
        "seeds": list(spec.seeds),
        "set": spec.fixed,
        "grid": spec.grid,
        "grid_keys": list(spec.grid),
        "engine": engine,
        "resources": dict(resources),
        "settings": list(settings.values()),
    }
    write_atomic(out / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode())


def read_manifest(out: str | Path) -> dict[str, Any]:
    """The sweep directory's ``sweep.json``.

    Raises:
      ConfigError: absent or malformed.
    """
    path = Path(out) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{out}: not a sweep directory (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({e})") from None
    if not isinstance(data, dict) or data.get("format") != _MANIFEST_FORMAT or not isinstance(data.get("settings"), list):
        raise ConfigError(f"{path}: not a sabre sweep manifest of format {_MANIFEST_FORMAT}")
    return data
