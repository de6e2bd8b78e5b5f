"""The validation kit of a configuration section: typed settings, each with its check.

A section is a dataclass whose fields are declared with :func:`setting` (a default and a
:class:`Check`); :func:`parse_section` builds it from one TOML table and rejects unknown keys,
wrong types and bad values with a :class:`ConfigError` that names the full key, for example::

    fedavg.clients_per_round: expected a positive integer, got -3

The run's sections (:mod:`fl.config`) and the ``[aggregation]`` section
(:mod:`fl.aggregation.config`) are built with it.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Mapping, Sequence

from rangeproof.blame import ConfigError  # the one ConfigError of the project (re-exported)

__all__ = [
    "ConfigError",
    "Check",
    "setting",
    "parse_section",
    "section_table",
    "POSITIVE_INT",
    "NON_NEGATIVE_INT",
    "POSITIVE_NUMBER",
    "NON_NEGATIVE_NUMBER",
    "FRACTION",
    "BOOL",
    "TEXT",
    "RUN_NAME",
]

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclasses.dataclass(frozen=True)
class Check:
    """What one key accepts: a description for error messages, a test, and a conversion.

    Attributes:
      expected: completes "expected ..." in error messages (``"a positive integer"``).
      accept: returns whether a raw TOML value is acceptable.
      convert: turns an accepted value into the stored one (``int`` -> ``float`` for numbers).
    """

    expected: str
    accept: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda value: value

    def __call__(self, key: str, value: Any) -> Any:
        """Return the converted ``value`` of ``key``.

        Raises:
          ConfigError: ``value`` is not acceptable; the message names ``key``.
        """
        if not self.accept(value):
            raise ConfigError(f"{key}: expected {self.expected}, got {value!r}")
        return self.convert(value)

    @staticmethod
    def one_of(choices: Sequence[str] | Mapping[str, Any]) -> "Check":
        """A string among ``choices``."""
        names = sorted(choices)
        return Check(f"one of {names}", lambda v: isinstance(v, str) and v in names)

    @staticmethod
    def int_in(low: int, high: int) -> "Check":
        """An integer in ``[low, high]``."""
        return Check(f"an integer in [{low}, {high}]", lambda v: _is_int(v) and low <= v <= high)

    @staticmethod
    def optional(inner: "Check") -> "Check":
        """``inner``, or nothing (the key is left out of the file)."""
        return Check(f"{inner.expected} or nothing", lambda v: v is None or inner.accept(v),
                     lambda v: None if v is None else inner.convert(v))


POSITIVE_INT = Check("a positive integer", lambda v: _is_int(v) and v > 0)
NON_NEGATIVE_INT = Check("a non-negative integer", lambda v: _is_int(v) and v >= 0)
POSITIVE_NUMBER = Check("a positive number", lambda v: _is_number(v) and v > 0, float)
NON_NEGATIVE_NUMBER = Check("a non-negative number", lambda v: _is_number(v) and v >= 0, float)
FRACTION = Check("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1, float)
BOOL = Check("true or false", lambda v: isinstance(v, bool))
TEXT = Check("a non-empty string", lambda v: isinstance(v, str) and v.strip() != "")
RUN_NAME = Check(
    "a name of letters, digits, '.', '_' or '-'",
    lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9._-]+", v) is not None and v not in (".", ".."),
)


def setting(default: Any, check: Check) -> Any:
    """A dataclass field with a default and the :class:`Check` its TOML value must pass."""
    return dataclasses.field(default=default, metadata={"check": check})


def parse_section(cls: type, table: Any, section: str) -> Any:
    """Build the dataclass ``cls`` from one TOML table, checking every key.

    Args:
      cls: a dataclass whose fields were declared with :func:`setting`.
      table: the TOML table (``None`` or missing means all defaults).
      section: the section's name, used as the key prefix in error messages.

    Returns:
      An instance of ``cls``; keys absent from ``table`` keep their defaults.

    Raises:
      ConfigError: ``table`` is not a table, has an unknown key, or a value fails its check.
    """
    if table is None:
        table = {}
    if not isinstance(table, Mapping):
        raise ConfigError(f"{section}: expected a table of settings, got {table!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in table:
        if key not in fields:
            raise ConfigError(f"{section}.{key}: unknown key (known: {', '.join(fields)})")
    values = {key: fields[key].metadata["check"](f"{section}.{key}", value) for key, value in table.items()}
    return cls(**values)


def section_table(obj: Any) -> dict[str, Any]:
    """A section dataclass as a TOML table; ``None`` values (absent keys) are left out."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if getattr(obj, f.name) is not None}
