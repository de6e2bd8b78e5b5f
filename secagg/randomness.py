"""Where the protocol's secret randomness comes from: the OS, or a seeded stream for replays.

Every function that draws secrets takes a :class:`RandomSource`. Production code uses
:class:`SystemRandom` (``os.urandom``); simulations and tests that must replay bytes exactly pass
:class:`SeededRandom`, an AES-256-CTR keystream keyed by SHA-256 of the seed (predictable to
anyone who knows the seed: never use it for real deployments).
"""
from __future__ import annotations

import hashlib
import os
from typing import Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from rangeproof.labels import SECAGG_SEEDED_RANDOM

__all__ = ["RandomSource", "SystemRandom", "SeededRandom", "randbelow"]


class RandomSource(Protocol):
    """Anything that returns uniformly random bytes."""

    def bytes(self, n: int) -> bytes:
        """``n`` uniformly random bytes."""


class SystemRandom:
    """The operating system's CSPRNG."""

    def bytes(self, n: int) -> bytes:
        return os.urandom(n)

    def __repr__(self) -> str:
        return "SystemRandom()"


class SeededRandom:
    """A deterministic stream: AES-256-CTR (counter 0) under
    ``SHA-256(SECAGG_SEEDED_RANDOM || tag || seed)``, with ``tag`` ``b"i"`` and the seed's minimal
    big-endian bytes for an int, ``b"b"`` and the bytes themselves for bytes (so an int seed and a
    byte string never give the same stream).

    Args:
      seed: an int (any size, non-negative) or bytes.
    """

    def __init__(self, seed: int | bytes):
        if isinstance(seed, bool):
            raise TypeError("seed: expected an int or bytes")
        if isinstance(seed, int):
            if seed < 0:
                raise ValueError("seed: expected a non-negative int")
            encoded = b"i" + seed.to_bytes(max(1, (seed.bit_length() + 7) // 8), "big")
        else:
            encoded = b"b" + bytes(seed)
        key = hashlib.sha256(SECAGG_SEEDED_RANDOM + encoded).digest()
        self._enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()

    def bytes(self, n: int) -> bytes:
        return self._enc.update(bytes(n))

    def __repr__(self) -> str:
        return "SeededRandom(...)"


def randbelow(rng: RandomSource, bound: int) -> int:
    """A uniform integer in ``[0, bound)`` by rejection sampling (no modulo bias)."""
    if bound < 1:
        raise ValueError("bound: expected >= 1")
    bits = bound.bit_length()
    nbytes = (bits + 7) // 8
    excess = nbytes * 8 - bits
    while True:
        value = int.from_bytes(rng.bytes(nbytes), "big") >> excess
        if value < bound:
            return value
