"""The project's one exception root, and the blame a protocol fault carries.

This module sits at the bottom of the project, beside :mod:`rangeproof.labels`: it imports
nothing from the project, so the crypto libraries (:mod:`secagg`, :mod:`rangeproof`) and the
framework (:mod:`fl`, :mod:`attacks`) all derive their errors from it without importing each
other (and without torch).

::

    SabreError                      every error the project raises on purpose
    +-- ConfigError (ValueError)    a configuration or parameter choice refused up front
    +-- AggregationError            the aggregation pipeline
    |   +-- RoundFailed             the round yields no aggregate; the model stays as it was
    +-- InvalidUpdate               one client's update cannot enter the round: it is excluded
    +-- secagg.SecAggError          the secure-aggregation protocol
    +-- rangeproof.ProofError       proofs, commitments, encodings
    +-- fl.data.DataError           datasets
    +-- attacks.AttackError         attacks
    +-- ...                         run directories, plots, fault injection

Every :class:`SabreError` carries

``blamed``
    the ids of the clients at fault, sorted, as a tuple (empty when nobody in particular is:
    a configuration error, a dropout, a fault of the server);
``reason``
    a short machine-readable tag (``snake_case``): by default the class name in snake case, or
    the tag given when raised. Callers branch on ``reason`` and ``blamed``, never on the text.
"""
from __future__ import annotations

import re
from typing import Iterable

__all__ = ["SabreError", "ConfigError", "AggregationError", "RoundFailed", "InvalidUpdate", "blamed_ids"]


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def blamed_ids(ids: Iterable[int]) -> tuple[int, ...]:
    """``ids`` as the canonical ``blamed`` tuple: distinct ints, sorted.

    Raises:
      TypeError: an id that is not an int (a bool is not an id either).
    """
    out = set()
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"blamed: client ids are ints, got {type(i).__name__}")
        out.add(int(i))
    return tuple(sorted(out))


class SabreError(Exception):
    """Base class of every error the project raises on purpose.

    Args:
      *args: as for :class:`Exception` (the message).
      blamed: the ids of the clients at fault (any iterable of ints; stored sorted, distinct).
      reason: a machine-readable tag overriding the class default.

    Attributes:
      blamed: ``tuple[int, ...]``, sorted.
      reason: ``str``.
    """

    #: the default tag of the class (set from the class name unless a class defines its own)
    reason: str = "sabre_error"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "reason" not in cls.__dict__:
            cls.reason = _snake(cls.__name__)

    def __init__(self, *args, blamed: Iterable[int] = (), reason: str | None = None):
        super().__init__(*args)
        self.blamed: tuple[int, ...] = blamed_ids(blamed)
        if reason is not None:
            self.reason = str(reason)


class ConfigError(SabreError, ValueError):
    """A configuration, override or parameter choice that cannot give a correct or secure run.

    Rejected up front, before any state changes; the message starts with the offending key.
    """


class AggregationError(SabreError):
    """Base class of every error raised by the aggregation pipeline."""


class RoundFailed(AggregationError):
    """The round cannot produce an aggregate (too few clients, failed binding check, ...).

    The server must not update the model. ``reason`` is a short machine-readable tag;
    ``blamed`` names the clients whose faults made the round fail, where there are such.

    Args:
      reason: the tag.
      message: the text.
      blamed: client ids at fault.
    """

    def __init__(self, reason: str, message: str, *, blamed: Iterable[int] = ()):
        super().__init__(message, blamed=blamed, reason=reason)


class InvalidUpdate(SabreError):
    """One client's update (or what a pipeline stage made of it) cannot enter the round: values
    that are not finite, out of the ring, of the wrong length.

    Not a failed round: the pipeline leaves that client out (``AggregateResult.rejected``, with
    :attr:`reason`) and goes on with the others. ``blamed`` names the client where the raiser
    knows its id.
    """
