"""Fiat-Shamir transcripts with domain separation, on SHAKE-256.

A :class:`Transcript` is a running SHAKE-256 state (from :mod:`hashlib`). Every operation absorbs
an unambiguous, length-prefixed record::

    record = op (1 byte) || len(label) (u32 BE) || label || len(data) (u64 BE) || data

with ``op`` one of ``M`` (message) or ``C`` (challenge request). A challenge absorbs its own
request record (label and output length) and then squeezes a copy of the state, so two
challenges drawn back to back differ, and every challenge depends on everything absorbed before
it, including the labels. Prover and verifier must make the same calls in the same order; the
labels used by the proofs (``b"A"``, ``b"S"``, ``b"y"``, ...) match the symbols in
``docs/bulletproofs.md``.

The application picks the outermost label and binds its context (round id, client id, public
parameters) with :meth:`Transcript.domain_sep` or :meth:`Transcript.append_message` *before*
handing the transcript to a proof; a proof made under one context then does not verify under
another.
"""
from __future__ import annotations

import hashlib

from petlib.ec import EcPt

from .errors import VerificationError
from .group import ORDER, point_to_bytes, scalar_to_bytes
from .labels import TRANSCRIPT

__all__ = ["Transcript"]

_VERSION = TRANSCRIPT
_OP_MESSAGE = b"M"
_OP_CHALLENGE = b"C"


def _encode_param(value: int | bytes) -> bytes:
    """Type-tagged encoding of a domain-separation parameter."""
    if isinstance(value, bool):
        raise TypeError("domain parameters must be int or bytes, not bool")
    if isinstance(value, int):
        length = (value.bit_length() + 8) // 8  # room for the sign bit
        return b"i" + value.to_bytes(length, "big", signed=True)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"b" + bytes(value)
    raise TypeError(f"domain parameters must be int or bytes, not {type(value).__name__}")


class Transcript:
    """A Fiat-Shamir transcript (SHAKE-256 with length-prefixed, labelled records).

    Args:
      label: the outermost label, one of :mod:`rangeproof.labels` (for example ``NORM_TRANSCRIPT``).
    """

    __slots__ = ("_state",)

    def __init__(self, label: bytes):
        self._state = hashlib.shake_256()
        self._state.update(_VERSION)
        self.append_message(b"transcript-label", label)

    def _absorb(self, op: bytes, label: bytes, data: bytes) -> None:
        if not isinstance(label, (bytes, bytearray)):
            raise TypeError(f"labels must be bytes, not {type(label).__name__}")
        self._state.update(op + len(label).to_bytes(4, "big") + bytes(label)
                           + len(data).to_bytes(8, "big"))
        self._state.update(data)

    def domain_sep(self, protocol: bytes, **params: int | bytes) -> None:
        """Binds a protocol name and its public parameters.

        Args:
          protocol: the protocol and its version, e.g. ``b"rangeproof v1"``.
          **params: public parameters (ints of any size and sign, or bytes), absorbed in sorted
            name order with a type tag, e.g. ``n=64, m=8``.
        """
        self.append_message(b"dom-sep", protocol)
        for name in sorted(params):
            self.append_message(b"param:" + name.encode("utf-8"), _encode_param(params[name]))

    def append_message(self, label: bytes, data: bytes) -> None:
        """Absorbs a labelled byte string."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        self._absorb(_OP_MESSAGE, label, bytes(data))

    def append_u64(self, label: bytes, n: int) -> None:
        """Absorbs an unsigned 64-bit integer (8 bytes, big-endian).

        Raises:
          ValueError: ``n`` is outside ``[0, 2^64)``.
        """
        if not 0 <= n < 1 << 64:
            raise ValueError(f"append_u64: {n} is not an unsigned 64-bit integer")
        self._absorb(_OP_MESSAGE, label, n.to_bytes(8, "big"))

    def append_point(self, label: bytes, P: EcPt) -> None:
        """Absorbs a point in its canonical 65-byte encoding (identity allowed)."""
        self._absorb(_OP_MESSAGE, label, point_to_bytes(P))

    def validate_and_append_point(self, label: bytes, P: EcPt) -> None:
        """Absorbs a point that must not be the identity.

        Raises:
          VerificationError: ``P`` is the identity.
        """
        if P.is_infinite():
            raise VerificationError()
        self.append_point(label, P)

    def append_scalar(self, label: bytes, s: int) -> None:
        """Absorbs a scalar (32 bytes big-endian, reduced mod q)."""
        self._absorb(_OP_MESSAGE, label, scalar_to_bytes(s))

    def challenge_bytes(self, label: bytes, n: int) -> bytes:
        """Squeezes ``n`` challenge bytes bound to everything absorbed so far.

        Args:
          label: the challenge's label.
          n: how many bytes, at least 1.

        Returns:
          ``n`` bytes.
        """
        if n < 1:
            raise ValueError("challenge_bytes: n must be at least 1")
        self._absorb(_OP_CHALLENGE, label, n.to_bytes(8, "big"))
        return self._state.copy().digest(n)

    def challenge_scalar(self, label: bytes) -> int:
        """Squeezes a challenge scalar: 64 bytes reduced mod q (bias < 2^-256), never 0.

        A zero draw (probability about 2^-256) is replaced by the next draw under the same label.
        """
        while True:
            c = int.from_bytes(self.challenge_bytes(label, 64), "big") % ORDER
            if c:
                return c

    def fork(self) -> "Transcript":
        """Returns an independent copy of this transcript in its current state."""
        other = Transcript.__new__(Transcript)
        other._state = self._state.copy()
        return other
