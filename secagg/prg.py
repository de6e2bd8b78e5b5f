"""Mask expansion: AES-128-CTR keystreams read as vectors over Z_(2^k) or over a prime field.

Internal primitive. The mask of a 16-byte key is the AES-128-CTR keystream (initial counter
block 0) under that key, read as little-endian ``uint32`` words (``k <= 32``) or ``uint64``
words (``k > 32``); reduction to ``k`` bits happens once, at the end of a sum. Each key is used
for one mask only (keys are derived per round, pair and purpose by :mod:`secagg.keys`), so the
fixed counter block never repeats under one key.

Field masks (the side vector modulo a prime ``q`` of at most 256 bits) read 48 keystream bytes
per element as a big-endian integer and reduce it modulo ``q``: the statistical distance from
uniform is below ``q / 2^384 <= 2^-128``.
"""
from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["MaskExpander", "ring_dtype", "reduce_ring", "expand_ring", "expand_field", "FIELD_DRAW_BYTES"]

_ZERO_COUNTER = bytes(16)
#: keystream bytes per field element
FIELD_DRAW_BYTES = 48


def ring_dtype(mask_bits: int) -> np.dtype:
    """The little-endian unsigned word holding Z_(2^k) elements: uint32 for k <= 32, else uint64."""
    return np.dtype("<u4") if mask_bits <= 32 else np.dtype("<u8")


def reduce_ring(acc: np.ndarray, mask_bits: int) -> None:
    """Reduce an accumulator of :func:`ring_dtype` words to ``k`` bits, in place."""
    dtype = acc.dtype
    if mask_bits < dtype.itemsize * 8:
        np.bitwise_and(acc, dtype.type((1 << mask_bits) - 1), out=acc)


def _encryptor(key: bytes):
    if len(key) != 16:
        raise ValueError("mask key: expected 16 bytes")
    return Cipher(algorithms.AES(key), modes.CTR(_ZERO_COUNTER)).encryptor()


class MaskExpander:
    """Adds and subtracts keystream masks into an accumulator in place, with reusable buffers.

    Args:
      dim: vector length.
      mask_bits: k; selects the word size (see :func:`ring_dtype`).
    """

    def __init__(self, dim: int, mask_bits: int):
        self.dim = int(dim)
        self.dtype = ring_dtype(mask_bits)
        self._nbytes = self.dim * self.dtype.itemsize
        self._zeros = bytes(self._nbytes)
        self._out = bytearray(self._nbytes + 15)  # update_into needs block_size - 1 spare bytes
        self._view = np.frombuffer(self._out, dtype=self.dtype, count=self.dim)

    def mask(self, key: bytes) -> np.ndarray:
        """The mask of ``key`` in the shared buffer (valid until the next call)."""
        _encryptor(key).update_into(self._zeros, self._out)
        return self._view

    def add(self, acc: np.ndarray, key: bytes, sign: int) -> None:
        """``acc += sign * mask(key)`` with wrap-around (``sign`` is +1 or -1)."""
        m = self.mask(key)
        if sign == 1:
            np.add(acc, m, out=acc)
        elif sign == -1:
            np.subtract(acc, m, out=acc)
        else:
            raise ValueError("sign: expected +1 or -1")


def expand_ring(key: bytes, dim: int, mask_bits: int) -> np.ndarray:
    """A fresh copy of the ring mask of ``key`` (not reduced to ``k`` bits)."""
    return MaskExpander(dim, mask_bits).mask(key).copy()


def expand_field(key: bytes, count: int, modulus: int) -> list[int]:
    """``count`` field elements modulo ``modulus`` from the keystream of ``key``."""
    stream = _encryptor(key).update(bytes(count * FIELD_DRAW_BYTES))
    return [
        int.from_bytes(stream[i : i + FIELD_DRAW_BYTES], "big") % modulus
        for i in range(0, count * FIELD_DRAW_BYTES, FIELD_DRAW_BYTES)
    ]
