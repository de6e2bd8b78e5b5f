"""A fault injector for crash tests: kill (or stop) the process at a named point of a run.

Set ``SABRE_FAULT`` to a comma-separated list of ``POINT[@N][:ACTION]``:

* ``POINT`` is one of :data:`POINTS` (a typo is an error, so a test cannot pass by never
  reaching its point);
* ``N`` (default 1) picks the ``N``-th time the process reaches the point;
* ``ACTION`` is ``kill`` (default: ``SIGKILL``, as ``kill -9`` would; no ``finally`` block,
  buffer flush or exit handler runs) or ``stop`` (``SIGSTOP``: the process stays alive,
  holding what it holds, until someone sends ``SIGCONT`` or kills it).

For example ``SABRE_FAULT=checkpoint.partial@2`` kills a run half-way through writing its second
checkpoint. Without the variable :func:`point` does nothing. Tests use it
(``tests/test_rundir_integrity.py``); so can an operator who wants to see a crash for themselves.
"""
from __future__ import annotations

import os
import signal

from rangeproof.blame import SabreError

__all__ = ["ENV", "POINTS", "FaultSpecError", "point", "parse"]

ENV = "SABRE_FAULT"

#: files written atomically by a run: each has the points ``<file>.partial`` (half the bytes
#: in the temporary file, not yet synced), ``<file>.before_rename`` (temporary file complete)
#: and ``<file>.after_rename`` (the new file in place)
ATOMIC_FILES = ("config", "pin", "rounds", "metrics", "checkpoint")
#: every point a run passes; ``run.started``: the run directory is locked and its config and
#: pin written, no round trained; ``round.done``: a round's rows are on disk (after any
#: evaluation, before any checkpoint)
POINTS = ("run.started", "round.done") + tuple(
    f"{name}.{stage}" for name in ATOMIC_FILES for stage in ("partial", "before_rename", "after_rename"))

_ACTIONS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}


class FaultSpecError(SabreError, ValueError):
    """``SABRE_FAULT`` does not parse or names an unknown point."""


def parse(spec: str) -> dict[str, tuple[int, str]]:
    """``SABRE_FAULT``'s value as ``{point: (n, action)}``.

    Raises:
      FaultSpecError: a malformed entry, an unknown point or action, or ``N < 1``.
    """
    faults: dict[str, tuple[int, str]] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        rest, _, action = entry.partition(":")
        name, _, count = rest.partition("@")
        action = action or "kill"
        if name not in POINTS:
            raise FaultSpecError(f"{ENV}: unknown point {name!r} (known: {', '.join(POINTS)})")
        if action not in _ACTIONS:
            raise FaultSpecError(f"{ENV}: unknown action {action!r} (kill or stop)")
        try:
            n = int(count) if count else 1
        except ValueError:
            n = 0
        if n < 1:
            raise FaultSpecError(f"{ENV}: {entry!r}: the count after @ must be a positive integer")
        faults[name] = (n, action)
    return faults


_spec: str = ""
_faults: dict[str, tuple[int, str]] = {}
_hits: dict[str, int] = {}


def point(name: str) -> None:
    """Mark that the process reached ``name``; act if ``SABRE_FAULT`` asks for it here.

    Hits are counted from the last time ``SABRE_FAULT`` changed.

    Raises:
      FaultSpecError: ``SABRE_FAULT`` is malformed, or ``name`` is not in :data:`POINTS`.
    """
    global _spec, _faults
    if name not in POINTS:
        raise FaultSpecError(f"fault point {name!r} is not declared in fl.faults.POINTS")
    spec = os.environ.get(ENV, "")
    if spec != _spec:
        _spec, _faults = spec, parse(spec)
        _hits.clear()
    if name not in _faults:
        return
    _hits[name] = _hits.get(name, 0) + 1
    n, action = _faults[name]
    if _hits[name] == n:
        os.kill(os.getpid(), _ACTIONS[action])
