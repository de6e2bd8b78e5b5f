"""Verifier-chosen ternary projections, expanded from a transcript challenge.

After the commitment to ``x`` is in the transcript, a 32-byte challenge seeds AES-256-CTR, whose
keystream defines a ``K x d`` matrix ``P`` with independent entries ::

    P[k, j] = 0 with probability 1/2,  +1 or -1 with probability 1/4 each

(two keystream bits per entry: ``b0 = 0`` gives 0, else ``b1`` picks the sign). The ``1/2`` mass
at 0 is what makes the smallness argument work for *every* ``x`` in ``Z_q^d``
(``docs/proofs.md``, step 1): with entries in ``{-1, +1}`` only, the vector with every
coordinate ``(q+1)/2`` has small projections.

The matrix is never stored: it is regenerated in column blocks of :data:`BLOCK` columns (block
``b`` uses AES-CTR with the nonce ``b``), so the prover's ``z = P x`` and the verifier's
``v = P^T gamma`` cost one pass over ``K d`` entries each, in float32 BLAS calls on 8-bit limbs
that are exact because every partial sum stays below 2^24.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..group import ORDER

__all__ = ["BLOCK", "Projection"]

BLOCK = 4096
"""Columns per regenerated block (a power of two, so blocks align with ``K`` multiples of 4)."""

_LIMB = 16
_LIMB_MASK = (1 << _LIMB) - 1

# byte -> four ternary entries (two bits each, low bits first)
_TABLE = np.zeros((256, 4), dtype=np.int8)
for _byte in range(256):
    for _slot in range(4):
        _two = (_byte >> (2 * _slot)) & 3
        _TABLE[_byte, _slot] = 0 if not (_two & 1) else (1 if _two & 2 else -1)
_TABLE32 = _TABLE.astype(np.float32)
# little-endian u16 -> eight entries (low byte first), for np.take: about twice as fast as
# fancy-indexing the byte table
_TABLE16 = np.concatenate([_TABLE32[np.arange(65536) & 255], _TABLE32[np.arange(65536) >> 8]], axis=1)


class Projection:
    """The ``K x d`` ternary matrix ``P`` defined by a 32-byte seed.

    Args:
      seed: 32 bytes (a transcript challenge).
      rows: ``K``, a multiple of 8.
      dim: ``d``.
    """

    def __init__(self, seed: bytes, rows: int, dim: int):
        if len(seed) != 32:
            raise ValueError("Projection: the seed must be 32 bytes")
        if rows < 8 or rows % 8:
            raise ValueError("Projection: rows must be a positive multiple of 8")
        self._seed = bytes(seed)
        self.rows = rows
        self.dim = dim

    def _stream(self, b: int, cols: int) -> np.ndarray:
        nonce = b.to_bytes(16, "big")
        enc = Cipher(algorithms.AES(self._seed), modes.CTR(nonce)).encryptor()
        return np.frombuffer(enc.update(bytes(cols * self.rows // 4)), dtype=np.uint8)

    def _cols(self, b: int) -> int:
        cols = min(BLOCK, self.dim - b * BLOCK)
        if cols <= 0:
            raise IndexError(b)
        return cols

    def block(self, b: int) -> np.ndarray:
        """Columns ``[b BLOCK, (b+1) BLOCK)`` of ``P`` (cut at ``d``), shape ``(cols, K)``, int8."""
        cols = self._cols(b)
        return _TABLE[self._stream(b, cols)].reshape(cols, self.rows)

    def _block32(self, b: int) -> np.ndarray:
        cols = self._cols(b)
        return np.take(_TABLE16, self._stream(b, cols).view("<u2"), axis=0).reshape(cols, self.rows)

    def _nblocks(self) -> int:
        return (self.dim + BLOCK - 1) // BLOCK

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yields ``(first column, block)`` over the whole matrix."""
        for b in range(self._nblocks()):
            yield b * BLOCK, self.block(b)

    def dense(self) -> np.ndarray:
        """The whole matrix, shape ``(K, d)`` (for tests at small ``d``)."""
        return np.concatenate([blk for _, blk in self.blocks()], axis=0).T.copy()

    def apply(self, x: np.ndarray) -> list[int]:
        """``z = P x`` over the integers, for an integer vector with ``|x_j| < 2^31``.

        ``x + 2^31`` is split into four 8-bit limbs; each float32 product over a block sums at
        most ``BLOCK * 255 < 2^24`` in magnitude, so it is exact; blocks are summed in int64.

        Args:
          x: integer vector of length ``d``.

        Returns:
          ``K`` Python ints.

        Raises:
          ValueError: wrong shape, or an entry of size ``2^31`` or more.
        """
        x = np.asarray(x)
        if x.shape != (self.dim,) or x.dtype.kind not in "iu":
            raise ValueError(f"Projection.apply: expected an integer vector of shape ({self.dim},)")
        if self.dim and (int(x.max()) >= 1 << 31 or int(x.min()) <= -(1 << 31)):  # before any cast
            raise ValueError("Projection.apply: entries must be below 2^31 in magnitude")
        x = x.astype(np.int64)
        off = (x + (1 << 31)).astype(np.uint64)
        limbs = np.empty((self.dim, 5), dtype=np.float32)
        for i in range(4):
            limbs[:, i] = ((off >> np.uint64(8 * i)) & np.uint64(255)).astype(np.float32)
        limbs[:, 4] = 1.0
        acc = np.zeros((self.rows, 5), dtype=np.int64)
        for b in range(self._nblocks()):
            blk = self._block32(b)
            j0 = b * BLOCK
            acc += (blk.T @ limbs[j0:j0 + blk.shape[0]]).astype(np.int64)
        rows = acc.tolist()
        return [r[0] + (r[1] << 8) + (r[2] << 16) + (r[3] << 24) - (r[4] << 31) for r in rows]

    def apply_mod_q(self, x: Sequence[int]) -> list[int]:
        """``z = P x mod q`` for arbitrary residues (cheating provers in tests; slow)."""
        out = [0] * self.rows
        xs = [int(v) % ORDER for v in x]
        for j0, blk in self.blocks():
            for jj in range(blk.shape[0]):
                xj = xs[j0 + jj]
                if xj:
                    row = blk[jj]
                    for k in np.nonzero(row)[0]:
                        out[k] += xj if row[k] > 0 else -xj
        return [v % ORDER for v in out]

    def transpose_apply(self, gamma: Sequence[int]) -> list[int]:
        """``v = P^T gamma mod q`` for coefficients ``0 <= gamma_k < 2^96``.

        The coefficients are split into twelve 8-bit limbs, so each float32 product sums at most
        ``K * 255 < 2^24`` in magnitude and is exact; limbs are recombined in int64 (five at a
        time) and then as Python ints.

        Args:
          gamma: ``K`` coefficients below 2^96.

        Returns:
          ``d`` Python ints in ``[0, q)``.
        """
        if len(gamma) != self.rows:
            raise ValueError("Projection.transpose_apply: wrong number of coefficients")
        if any(g < 0 or g >> 96 for g in gamma):
            raise ValueError("Projection.transpose_apply: coefficients must be in [0, 2^96)")
        limbs = np.array([[(g >> (8 * i)) & 255 for i in range(12)] for g in gamma], dtype=np.float32)
        shifts = np.array([8 * i for i in range(5)], dtype=np.int64)
        parts = [[], [], []]
        for b in range(self._nblocks()):
            prod = (self._block32(b) @ limbs).astype(np.int64)  # (cols, 12), |.| < 2^24
            parts[0].append((prod[:, 0:5] << shifts).sum(axis=1))
            parts[1].append((prod[:, 5:10] << shifts).sum(axis=1))
            parts[2].append((prod[:, 10:12] << shifts[:2]).sum(axis=1))
        lo, mid, hi = (np.concatenate(p).tolist() for p in parts)
        q = ORDER
        return [(a + (b << 40) + (c << 80)) % q for a, b, c in zip(lo, mid, hi)]
