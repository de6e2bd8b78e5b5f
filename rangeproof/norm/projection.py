"""Verifier-chosen ternary projections, expanded from a transcript challenge.

After the commitment to ``x`` is in the transcript, a 32-byte challenge ``seed`` defines a
``K x d`` matrix ``P`` with independent entries ::

    P[k, j] = 0 with probability 1/2,  +1 or -1 with probability 1/4 each

(two keystream bits per entry: ``b0 = 0`` gives 0, else ``b1`` picks the sign). The ``1/2`` mass
at 0 is what makes the smallness argument work for *every* ``x`` in ``Z_q^d``
(``docs/proofs.md``, step 1): with entries in ``{-1, +1}`` only, the vector with every
coordinate ``(q+1)/2`` has small projections.

Derivation (``docs/proofs.md``, "Where every challenge and every stream comes from")::

    key    = HKDF-SHA256(ikm = seed, salt = none, info = NORM_PROJECTION_KEY || u32 K || u64 d)
    stream = AES-256-CTR(key, initial counter block 0), one keystream for the whole matrix
    P[k, j] = entry of the two bits at bit offset 2 (j K + k) of the stream (low bits first)

Every entry of every matrix comes from its own keystream position: entry ``(k, j)`` reads bits
``2 (j K + k)`` and ``2 (j K + k) + 1`` and no other entry reads them, and matrices of different
challenges, shapes or labels use different keys. Under AES as a PRF the entries are therefore
independent draws. (Version 1 started the counter of column block ``b`` at ``b``, so block ``b``
re-read block 0's keystream shifted by ``b`` AES blocks, and columns ``64 K - 1`` apart were
equal: vectors in the kernel of ``P`` passed with any norm.)

The matrix is never stored: it is regenerated in column blocks of :data:`BLOCK` columns (block
``b`` starts at AES block ``b * BLOCK * K / 64`` of the one keystream), so the prover's
``z = P x`` and the verifier's ``v = P^T gamma`` cost one pass over ``K d`` entries each, in
float32 BLAS calls on 8-bit limbs that are exact because every partial sum stays below 2^24.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..group import ORDER, native_switched_off
from ..labels import NORM_PROJECTION_KEY
from .blas_threads import single_threaded
from .challenge_products import dot_limbs

__all__ = ["BLOCK", "Projection", "TransposedProjection", "projection_key"]

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
_TABLE_BYTES = _TABLE.tobytes()  # the C transpose reads the same table

try:  # v = P^T gamma in C (optional; rangeproof/_p256msm.c)
    from .._p256msm import ternary_transpose as _native_transpose
except ImportError:
    _native_transpose = None

_AES_BLOCK = 16


def projection_key(seed: bytes, rows: int, dim: int) -> bytes:
    """The AES-256 key of the projection matrix: HKDF-SHA256 of the challenge, bound to the shape.

    Args:
      seed: the 32-byte challenge.
      rows: ``K``.
      dim: ``d``.

    Returns:
      32 bytes.
    """
    info = NORM_PROJECTION_KEY + rows.to_bytes(4, "big") + dim.to_bytes(8, "big")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(bytes(seed))


_CHUNK = 256
"""Columns expanded to float32 at a time: 1 MB at K = 1024, so the expansion and the matrix
product that reads it stay in the core's cache (about twice as fast as whole 16 MB blocks)."""


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
        if rows < 8 or rows % 8 or rows >= 1 << 32:
            raise ValueError("Projection: rows must be a positive multiple of 8 below 2^32")
        if not 1 <= dim < 1 << 63:
            raise ValueError("Projection: dim must be in [1, 2^63)")
        self._key = projection_key(seed, rows, dim)
        self.rows = rows
        self.dim = dim

    def keystream_offset(self, b: int) -> int:
        """The byte offset in the matrix's one keystream where column block ``b`` starts."""
        return b * BLOCK * self.rows // 4

    def _stream(self, b: int, cols: int) -> np.ndarray:
        """Keystream bytes ``[offset(b), offset(b) + cols K / 4)``: block ``b``'s own slice."""
        start = self.keystream_offset(b)
        assert start % _AES_BLOCK == 0  # K is a multiple of 8 and BLOCK of 8
        counter = (start // _AES_BLOCK).to_bytes(_AES_BLOCK, "big")
        enc = Cipher(algorithms.AES(self._key), modes.CTR(counter)).encryptor()
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

    def _chunks32(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yields ``(first column, P[:, cols].T as float32)`` over the matrix, :data:`_CHUNK`
        columns at a time, in one reused buffer (use each chunk before asking for the next)."""
        width = self.rows // 4
        buf = np.empty((_CHUNK, self.rows), dtype=np.float32)
        for b in range(self._nblocks()):
            cols = self._cols(b)
            stream = self._stream(b, cols).reshape(cols, width)
            for c in range(0, cols, _CHUNK):
                n = min(_CHUNK, cols - c)
                out = buf[:n]
                np.take(_TABLE32, stream[c:c + n], axis=0, out=out.reshape(n, width, 4))
                yield b * BLOCK + c, out

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
        with single_threaded():
            for j0, chunk in self._chunks32():
                acc += (chunk.T @ limbs[j0:j0 + chunk.shape[0]]).astype(np.int64)
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
        """``v = P^T gamma mod q`` as ``d`` Python ints in ``[0, q)`` (see :meth:`transpose`)."""
        return self.transpose(gamma).residues()

    def transpose(self, gamma: Sequence[int]) -> "TransposedProjection":
        """``v = P^T gamma`` for coefficients ``0 <= gamma_k < 2^96``.

        The coefficients are split into twelve 8-bit limbs, so each float32 product sums at most
        ``K * 255 < 2^24`` in magnitude and is exact; the products are kept as int64 limbs.

        Args:
          gamma: ``K`` coefficients below 2^96.

        Returns:
          ``v`` as limbs (:class:`TransposedProjection`).

        Raises:
          ValueError: wrong number of coefficients or one outside ``[0, 2^96)``.
        """
        if len(gamma) != self.rows:
            raise ValueError("Projection.transpose: wrong number of coefficients")
        if any(g < 0 or g >> 96 for g in gamma):
            raise ValueError("Projection.transpose: coefficients must be in [0, 2^96)")
        if _native_transpose is not None and not native_switched_off():
            # the same v in C: per keystream byte position a table of the four entries' sums,
            # one lookup and one 128-bit addition per byte (seven 16-bit limbs per column)
            gam = b"".join(int(g).to_bytes(16, "little") for g in gamma)
            out = np.empty((self.dim, 7), dtype=np.int32)
            for b in range(self._nblocks()):
                cols = self._cols(b)
                _native_transpose(self._stream(b, cols), self.rows, gam, _TABLE_BYTES,
                                  out[b * BLOCK:b * BLOCK + cols])
            return TransposedProjection(out, limb_bits=16)
        limbs = np.array([[(g >> (8 * i)) & 255 for i in range(12)] for g in gamma], dtype=np.float32)
        prod32 = np.empty((self.dim, 12), dtype=np.float32)
        with single_threaded():
            for j0, chunk in self._chunks32():
                np.matmul(chunk, limbs, out=prod32[j0:j0 + chunk.shape[0]])
        return TransposedProjection(prod32)


class TransposedProjection:
    """``v = P^T gamma`` as integer limbs: ``v_j = sum_l limbs[j, l] 2^(limb_bits l)`` (not
    reduced).

    Two layouts, the same ``v``: twelve float32 products of ``P^T`` with the 8-bit limbs of
    ``gamma`` (integers below ``2^24`` in magnitude, so exact), or, from the C transpose, seven
    int32 limbs of 16 bits (the last one signed). They are converted only where needed.

    The prover needs ``v`` as residues (:meth:`residues`); the verifier only needs ``<s, v>``
    for the challenge products ``s`` of the linear-form argument, which
    :meth:`dot_challenge_products` computes from the limbs without forming ``v``.
    """

    LIMB_BITS = 8

    def __init__(self, limbs: np.ndarray, limb_bits: int = LIMB_BITS):
        self.limbs = limbs
        self.limb_bits = limb_bits

    def __len__(self) -> int:
        return self.limbs.shape[0]

    def residues(self) -> list[int]:
        """``v`` as ``d`` Python ints in ``[0, q)``."""
        q = ORDER
        lim = self.limbs
        if (self.limb_bits == 16 and lim.ndim == 2 and lim.shape[1] == 7 and lim.dtype == np.int32
                and ((lim[:, :6] >> 16) == 0).all()):
            # the C layout: six limbs in [0, 2^16) and a signed int32 rest are, written out
            # little-endian (each limb as 2 bytes, the rest as 4), v_j's 16-byte two's complement
            raw = np.empty((lim.shape[0], 16), dtype=np.uint8)
            raw[:, :12] = np.ascontiguousarray(lim[:, :6], dtype="<u2").view(np.uint8).reshape(-1, 12)
            raw[:, 12:] = np.ascontiguousarray(lim[:, 6:], dtype="<i4").view(np.uint8).reshape(-1, 4)
            buf = raw.tobytes()
            frm = int.from_bytes
            return [frm(buf[i:i + 16], "little", signed=True) % q for i in range(0, len(buf), 16)]
        prod = self.limbs.astype(np.int64)
        b = self.limb_bits
        per = (62 - 24 - 1) // b + 1  # limbs per int64 partial sum (|limb| < 2^24): no overflow
        n = prod.shape[1]
        parts = []
        for g0 in range(0, n, per):
            shifts = np.array([b * i for i in range(min(per, n - g0))], dtype=np.int64)
            parts.append(((prod[:, g0:g0 + len(shifts)] << shifts).sum(axis=1).tolist(), b * g0))
        total = [0] * prod.shape[0]
        for vals, shift in parts:
            total = [t + (v << shift) for t, v in zip(total, vals)]
        return [t % q for t in total]

    def sliced(self, start: int, stop: int) -> "TransposedProjection":
        """``v[start:stop]`` (a view of the limbs)."""
        return TransposedProjection(self.limbs[start:stop], self.limb_bits)

    def dot_challenge_products(self, us: Sequence[int], scale: int, *, lo_one: bool = False) -> int:
        """``<scale * s, v> mod q`` (:func:`.challenge_products.dot_limbs`)."""
        return dot_limbs(self.limbs, self.limb_bits, us, scale, lo_one=lo_one)
