"""The Bulletproofs inner-product argument (Bunz et al. 2018, section 3), dalek-style.

Statement, for public generators ``G, H`` (length ``n``, a power of two), public scalar factors
``g, h`` and a public point ``Q``: the prover knows vectors ``a, b`` with ::

    P = <a ∘ g, G> + <b ∘ h, H> + <a, b> Q

The argument has ``lg n`` rounds, each sending ``L_j, R_j`` and halving the vectors with the
challenge ``u_j`` (``docs/bulletproofs.md``, "Inner-product argument"); the proof is
``(L_1, R_1, ..., L_k, R_k, a, b)``. The verifier never folds generators: it expands the
challenges into per-generator scalars ``s_i`` (:meth:`InnerProductProof.verification_scalars`) and
checks one multi-exponentiation ::

    sum_j (u_j^2 L_j + u_j^-2 R_j) + P  ==  a sum_i s_i g_i G_i + b sum_i s_i^-1 h_i H_i + a b Q

Callers that check a larger equation (range proofs, batches) take the scalars and fold the
whole check into their own single multi-exponentiation.
"""
from __future__ import annotations

from typing import Sequence

from petlib.ec import EcPt

from .errors import EncodingError, ProvingError, VerificationError
from .group import (
    COMPACT_POINT_BYTES,
    ORDER,
    POINT_BYTES,
    SCALAR_BYTES,
    batch_inverse,
    msm,
    point_from_bytes,
    point_from_bytes_compact,
    point_to_bytes,
    point_to_bytes_compact,
    scalar_from_bytes,
    scalar_to_bytes,
)
from .labels import INNER_PRODUCT
from .ipa_fold import LazyGenerators
from .transcript import Transcript

__all__ = ["InnerProductProof", "MAX_LG_N"]

MAX_LG_N = 31
"""Largest accepted number of rounds (``lg n < 32``), so a proof cannot ask for a huge ``n``."""

_DOMAIN = INNER_PRODUCT


def _inner(a: Sequence[int], b: Sequence[int]) -> int:
    return sum(x * y for x, y in zip(a, b)) % ORDER


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


class InnerProductProof:
    """An inner-product proof: the rounds' ``L`` and ``R`` points and the final scalars.

    Attributes:
      L: the left cross terms, one per round.
      R: the right cross terms, one per round.
      a: the final folded ``a`` (a scalar).
      b: the final folded ``b`` (a scalar).
    """

    __slots__ = ("L", "R", "a", "b")

    def __init__(self, L: list[EcPt], R: list[EcPt], a: int, b: int):
        self.L = L
        self.R = R
        self.a = a
        self.b = b

    @classmethod
    def create(cls, transcript: Transcript, Q: EcPt, G_factors: Sequence[int],
               H_factors: Sequence[int], G: list[EcPt], H: list[EcPt], a: list[int],
               b: list[int]) -> "InnerProductProof":
        """Proves knowledge of ``a, b`` for ``P = <a∘g, G> + <b∘h, H> + <a,b> Q``.

        ``P`` itself is not an input: the caller has bound it (or the commitments it is made of)
        to ``transcript`` already.

        Args:
          transcript: the transcript, in the state the verifier will reproduce.
          Q: the inner-product base.
          G_factors: the factors ``g`` (length ``n``).
          H_factors: the factors ``h`` (length ``n``).
          G: the generators ``G`` (length ``n``, a power of two).
          H: the generators ``H`` (length ``n``).
          a: the witness ``a`` (length ``n``).
          b: the witness ``b`` (length ``n``).

        Returns:
          The proof.

        Raises:
          ProvingError: the lengths differ or are not a power of two.
        """
        n = len(G)
        if not (len(H) == len(a) == len(b) == len(G_factors) == len(H_factors) == n):
            raise ProvingError("inner-product proof: G, H, a, b and the factors must have the "
                               "same length")
        if not _is_power_of_two(n) or n.bit_length() - 1 > MAX_LG_N:
            raise ProvingError(f"inner-product proof: n = {n} is not a power of two below 2^32")
        q = ORDER
        transcript.domain_sep(_DOMAIN, n=n)
        a = [x % q for x in a]
        b = [x % q for x in b]
        gens = LazyGenerators(G, H, G_factors, H_factors)
        Ls: list[EcPt] = []
        Rs: list[EcPt] = []
        while n > 1:
            half = n // 2
            a_L, a_R = a[:half], a[half:]
            b_L, b_R = b[:half], b[half:]
            c_L = _inner(a_L, b_R)
            c_R = _inner(a_R, b_L)
            L, R = gens.cross_terms(a, b, c_L, c_R, Q)
            Ls.append(L)
            Rs.append(R)
            transcript.validate_and_append_point(b"L", L)
            transcript.validate_and_append_point(b"R", R)
            u = transcript.challenge_scalar(b"u")
            u_inv = pow(u, -1, q)
            a = [(x * u + y * u_inv) % q for x, y in zip(a_L, a_R)]
            b = [(x * u_inv + y * u) % q for x, y in zip(b_L, b_R)]
            gens.fold(u, u_inv)
            n = half
        return cls(Ls, Rs, a[0], b[0])

    def verification_scalars(self, n: int, transcript: Transcript
                             ) -> tuple[list[int], list[int], list[int]]:
        """Replays the transcript and expands the challenges.

        Args:
          n: the statement's vector length.
          transcript: the transcript, in the state the prover started from.

        Returns:
          ``(u_sq, u_inv_sq, s)``: the squared challenges, their inverses, and the ``n`` scalars
          ``s_i = prod_j u_j^{+1 if bit (k-j) of i is set else -1}`` (``s_i^-1 = s_{n-1-i}``).

        Raises:
          VerificationError: ``n`` does not match the number of rounds, or a cross term is the
            identity.
        """
        lg_n = len(self.L)
        if lg_n > MAX_LG_N or len(self.R) != lg_n or n != 1 << lg_n:
            raise VerificationError()
        q = ORDER
        transcript.domain_sep(_DOMAIN, n=n)
        us = []
        for L, R in zip(self.L, self.R):
            transcript.validate_and_append_point(b"L", L)
            transcript.validate_and_append_point(b"R", R)
            us.append(transcript.challenge_scalar(b"u"))
        u_invs = batch_inverse(us)
        u_sq = [u * u % q for u in us]
        u_inv_sq = [v * v % q for v in u_invs]
        all_inv = 1
        for v in u_invs:
            all_inv = all_inv * v % q
        s = [all_inv] * n
        for i in range(1, n):
            lg_i = i.bit_length() - 1
            s[i] = s[i - (1 << lg_i)] * u_sq[lg_n - 1 - lg_i] % q
        return u_sq, u_inv_sq, s

    def verify(self, n: int, transcript: Transcript, G_factors: Sequence[int],
               H_factors: Sequence[int], P: EcPt, Q: EcPt, G: Sequence[EcPt],
               H: Sequence[EcPt]) -> None:
        """Checks the proof with one multi-exponentiation.

        Args:
          n: the vector length.
          transcript: the transcript, in the state the prover started from.
          G_factors: the factors ``g`` (length ``n``).
          H_factors: the factors ``h`` (length ``n``).
          P: the statement's point.
          Q: the inner-product base.
          G: the generators ``G`` (at least ``n``; the first ``n`` are used).
          H: the generators ``H`` (at least ``n``).

        Raises:
          VerificationError: the proof does not verify.
        """
        if len(G) < n or len(H) < n or len(G_factors) != n or len(H_factors) != n:
            raise VerificationError()
        q = ORDER
        u_sq, u_inv_sq, s = self.verification_scalars(n, transcript)
        a, b = self.a, self.b
        scalars = [a * s_i * g_i % q for s_i, g_i in zip(s, G_factors)]
        scalars += [b * s_i * h_i % q for s_i, h_i in zip(reversed(s), H_factors)]
        scalars += [a * b % q, q - 1]
        scalars += [q - x for x in u_sq] + [q - x for x in u_inv_sq]
        points = list(G[:n]) + list(H[:n]) + [Q, P] + list(self.L) + list(self.R)
        if not msm(scalars, points).is_infinite():
            raise VerificationError()

    # --- serialization -------------------------------------------------------------------------

    def _encode(self, point_enc) -> bytes:
        parts = []
        for L, R in zip(self.L, self.R):
            parts.append(point_enc(L))
            parts.append(point_enc(R))
        parts.append(scalar_to_bytes(self.a))
        parts.append(scalar_to_bytes(self.b))
        return b"".join(parts)

    @classmethod
    def _decode(cls, data: bytes, point_size: int, point_dec) -> "InnerProductProof":
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise EncodingError("inner-product proof must be bytes")
        data = bytes(data)
        body = len(data) - 2 * SCALAR_BYTES
        if body < 0 or body % (2 * point_size):
            raise EncodingError(f"inner-product proof: bad length {len(data)}")
        lg_n = body // (2 * point_size)
        if lg_n > MAX_LG_N:
            raise EncodingError("inner-product proof: too many rounds")
        Ls, Rs = [], []
        pos = 0
        for _ in range(lg_n):
            Ls.append(point_dec(data[pos:pos + point_size]))
            Rs.append(point_dec(data[pos + point_size:pos + 2 * point_size]))
            pos += 2 * point_size
        a = scalar_from_bytes(data[pos:pos + SCALAR_BYTES])
        b = scalar_from_bytes(data[pos + SCALAR_BYTES:])
        return cls(Ls, Rs, a, b)

    def to_bytes(self) -> bytes:
        """Serializes with 65-byte points.

        Layout: ``L_1 || R_1 || ... || L_k || R_k || a || b``; points 65 bytes (uncompressed),
        scalars 32 bytes big-endian; ``130 k + 64`` bytes in all.
        """
        return self._encode(point_to_bytes)

    @classmethod
    def from_bytes(cls, data: bytes) -> "InnerProductProof":
        """Parses :meth:`to_bytes` output strictly.

        Raises:
          EncodingError: bad length, ``k > 31``, a non-canonical scalar, or a point that is
            malformed, off the curve, non-canonical or the identity.
        """
        return cls._decode(data, POINT_BYTES, point_from_bytes)

    def to_bytes_compact(self) -> bytes:
        """Serializes with 33-byte compressed points (``66 k + 64`` bytes); layout as
        :meth:`to_bytes`."""
        return self._encode(point_to_bytes_compact)

    @classmethod
    def from_bytes_compact(cls, data: bytes) -> "InnerProductProof":
        """Parses :meth:`to_bytes_compact` output strictly (errors as :meth:`from_bytes`)."""
        return cls._decode(data, COMPACT_POINT_BYTES, point_from_bytes_compact)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InnerProductProof):
            return NotImplemented
        return (self.a, self.b) == (other.a, other.b) and self.L == other.L and \
            self.R == other.R
