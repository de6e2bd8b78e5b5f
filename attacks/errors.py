"""The errors :mod:`attacks` raises at run time."""
from __future__ import annotations

from rangeproof.blame import SabreError

__all__ = ["AttackError", "BackdoorTaskError"]


class AttackError(SabreError):
    """Base class of every run-time error raised by :mod:`attacks`."""


class BackdoorTaskError(AttackError):
    """The dataset cannot support the requested backdoor task (too few writers with the digit)."""
