"""Aggregated Bulletproofs range proofs (Bunz et al. 2018, section 4), dalek-style.

One proof shows that each of ``m`` Pedersen commitments ``V_j = v_j B + gamma_j B_blinding``
opens to a value in ``[0, 2^n)``. A single proof is the case ``m = 1``; there is one code path.
The protocol, the verification equation and the byte layout are in ``docs/bulletproofs.md``
("Range proof"); the transcript labels below (``b"V"``, ``b"A"``, ``b"S"``, ``b"y"``, ...) are the
symbols used there.

Sizes (``k = lg(n m)``): :meth:`RangeProof.to_bytes` (65-byte points) is ``65 (2k + 4) + 5 * 32``
bytes; :meth:`RangeProof.to_bytes_compact` (33-byte points) is ``33 (2k + 4) + 5 * 32 =
32 (2k + 9) + (2k + 4)`` bytes, dalek's ``32 (2k + 9)`` plus one prefix byte per point.
"""
from __future__ import annotations

import dataclasses
import operator
from typing import Callable, Sequence

from petlib.ec import EcPt

from .errors import EncodingError, ProvingError, VerificationError
from .generators import generators, pedersen_bases
from .group import (
    COMPACT_POINT_BYTES,
    ORDER,
    POINT_BYTES,
    SCALAR_BYTES,
    curve,
    is_group_point,
    msm,
    point_from_bytes,
    point_from_bytes_compact,
    point_to_bytes,
    point_to_bytes_compact,
    random_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
)
from .labels import RANGE_G, RANGE_H, RANGE_PROOF
from .inner_product import InnerProductProof
from .transcript import Transcript

__all__ = ["RangeProof", "VerificationTerms", "ALLOWED_BITS", "range_generators"]

ALLOWED_BITS = (8, 16, 32, 64)
"""The accepted bit lengths ``n``."""

MAX_AGGREGATION = 1 << 16
"""The largest accepted number of values ``m`` in one proof."""

_DOMAIN = RANGE_PROOF
_G_LABEL = RANGE_G
_H_LABEL = RANGE_H

Rng = Callable[[int], int]


def range_generators(count: int) -> tuple[list[EcPt], list[EcPt]]:
    """Returns the first ``count`` generators ``(G, H)`` that range proofs use.

    Value ``j`` of an aggregated ``n``-bit proof uses ``G[j n:(j+1) n]`` and ``H[j n:(j+1) n]``,
    so a party's generators do not depend on ``m``.
    """
    return generators(_G_LABEL, count), generators(_H_LABEL, count)


def _params_ok(n_bits: int, m: int) -> bool:
    return n_bits in ALLOWED_BITS and 1 <= m <= MAX_AGGREGATION and m & (m - 1) == 0


def _powers(x: int, count: int) -> list[int]:
    q = ORDER
    out = [1] * count
    for i in range(1, count):
        out[i] = out[i - 1] * x % q
    return out


def _z_and_2(z: int, n_bits: int, m: int) -> list[int]:
    """The vector ``z^{2+j} 2^k`` at index ``i = j n + k``."""
    q = ORDER
    twos = [1 << k for k in range(n_bits)]
    out = []
    zj = z * z % q
    for _ in range(m):
        out.extend(zj * t % q for t in twos)
        zj = zj * z % q
    return out


def _delta(y: int, z: int, n_bits: int, m: int) -> int:
    """``delta(y, z) = (z - z^2) <1, y^{nm}> - sum_j z^{3+j} (2^n - 1)``."""
    q = ORDER
    nm = n_bits * m
    sum_y = 0
    yi = 1
    for _ in range(nm):
        sum_y += yi
        yi = yi * y % q
    sum_z = 0
    zj = pow(z, 3, q)
    for _ in range(m):
        sum_z += zj
        zj = zj * z % q
    return ((z - z * z) * sum_y - sum_z * ((1 << n_bits) - 1)) % q


@dataclasses.dataclass
class VerificationTerms:
    """A range proof's verification equation, as scalars for one multi-exponentiation.

    The proof is valid iff ``sum_i g[i] G_i + sum_i h[i] H_i + b B + b_blinding B_blinding +
    sum_k extra_scalars[k] extra_points[k]`` is the identity, where ``G, H`` are the first
    ``len(g)`` points of :func:`range_generators` and ``(B, B_blinding) = pedersen_bases()``.
    Independent equations combine by random linear combination (:mod:`rangeproof.batch_verify`).
    """

    g: list[int]
    h: list[int]
    b: int
    b_blinding: int
    extra_scalars: list[int]
    extra_points: list[EcPt]


class RangeProof:
    """An aggregated range proof for ``m`` values of ``n`` bits each.

    Attributes:
      A: commitment to the bit vectors ``a_L, a_R``.
      S: commitment to the blinding vectors ``s_L, s_R``.
      T_1: commitment to ``t_1``.
      T_2: commitment to ``t_2``.
      t_x: ``t(x)``, the polynomial's value at the challenge.
      t_x_blinding: the blinding of ``t(x)``.
      e_blinding: the blinding of the opened vector commitment.
      ipp_proof: the inner-product proof for ``l(x)``, ``r(x)``.
    """

    __slots__ = ("A", "S", "T_1", "T_2", "t_x", "t_x_blinding", "e_blinding", "ipp_proof")

    def __init__(self, A: EcPt, S: EcPt, T_1: EcPt, T_2: EcPt, t_x: int, t_x_blinding: int,
                 e_blinding: int, ipp_proof: InnerProductProof):
        self.A = A
        self.S = S
        self.T_1 = T_1
        self.T_2 = T_2
        self.t_x = t_x
        self.t_x_blinding = t_x_blinding
        self.e_blinding = e_blinding
        self.ipp_proof = ipp_proof

    # --- proving -------------------------------------------------------------------------------

    @classmethod
    def prove(cls, transcript: Transcript, values: Sequence[int], blindings: Sequence[int],
              n_bits: int, *, rng: Rng | None = None) -> tuple["RangeProof", list[EcPt]]:
        """Proves that every ``values[j]`` lies in ``[0, 2^n_bits)``.

        Args:
          transcript: the transcript, with the caller's context bound already.
          values: the ``m`` values (``m`` a power of two).
          blindings: their ``m`` blinding factors (uniform mod q for hiding).
          n_bits: the bit length ``n``, one of :data:`ALLOWED_BITS`.
          rng: optional deterministic source ``rng(k) -> k-bit int`` for tests (for example
            ``random.Random(seed).getrandbits``); default :mod:`secrets`.

        Returns:
          ``(proof, commitments)`` with ``commitments[j] = values[j] B + blindings[j] B_blinding``.

        Raises:
          ProvingError: a value outside ``[0, 2^n_bits)``, ``n_bits`` not allowed, ``m`` not a
            power of two, or ``len(blindings) != len(values)``.
        """
        m = len(values)
        if n_bits not in ALLOWED_BITS:
            raise ProvingError(f"range proof: n_bits must be one of {ALLOWED_BITS}, got {n_bits}")
        if not _params_ok(n_bits, m):
            raise ProvingError(f"range proof: the number of values must be a power of two "
                               f"between 1 and {MAX_AGGREGATION}, got {m}")
        if len(blindings) != m:
            raise ProvingError(f"range proof: {m} values but {len(blindings)} blindings")
        checked = []
        for j, v in enumerate(values):
            try:
                if isinstance(v, bool):
                    raise TypeError
                v = operator.index(v)  # ints and integer scalars such as numpy.int64
            except TypeError:
                raise ProvingError(f"range proof: value {j} is not an integer") from None
            if not 0 <= v < 1 << n_bits:
                raise ProvingError(f"range proof: value {j} is outside [0, 2^{n_bits})")
            checked.append(v)
        return cls._prove(transcript, checked, [operator.index(r) for r in blindings], n_bits,
                          rng)

    @classmethod
    def _prove(cls, transcript: Transcript, values: Sequence[int], blindings: Sequence[int],
               n_bits: int, rng: Rng | None) -> tuple["RangeProof", list[EcPt]]:
        """The prover's computation, on inputs :meth:`prove` has checked.

        Tests call it directly to play a cheating prover: with a value outside the range, the bit
        vector holds only its low ``n_bits`` bits and the proof does not verify.
        """
        m = len(values)
        q = ORDER
        nm = n_bits * m
        B, B_blinding = pedersen_bases()
        G, H = range_generators(nm)

        commitments = [msm([v, gamma], [B, B_blinding]) for v, gamma in zip(values, blindings)]
        transcript.domain_sep(_DOMAIN, n=n_bits, m=m)
        for V in commitments:
            transcript.append_point(b"V", V)

        # Bit commitment A = <a_L, G> + <a_R, H> + alpha B_blinding, a_R = a_L - 1 (entries ±1
        # or 0, so point additions suffice).
        a_L = [(v >> k) & 1 for v in values for k in range(n_bits)]
        alpha = random_scalar(rng)
        ones = [G[i] for i in range(nm) if a_L[i]]
        zeros = [H[i] for i in range(nm) if not a_L[i]]
        A = msm([alpha], [B_blinding])
        if ones:
            A = A + curve().sum(ones)
        if zeros:
            A = A - curve().sum(zeros)
        s_L = [random_scalar(rng) for _ in range(nm)]
        s_R = [random_scalar(rng) for _ in range(nm)]
        rho = random_scalar(rng)
        S = msm(s_L + s_R + [rho], G + H + [B_blinding])
        transcript.validate_and_append_point(b"A", A)
        transcript.validate_and_append_point(b"S", S)
        y = transcript.challenge_scalar(b"y")
        z = transcript.challenge_scalar(b"z")

        # l(x) = l0 + l1 x, r(x) = r0 + r1 x, t(x) = <l(x), r(x)> = t0 + t1 x + t2 x^2.
        y_pows = _powers(y, nm)
        z2 = _z_and_2(z, n_bits, m)
        l0 = [(bit - z) % q for bit in a_L]
        r0 = [(yi * (bit - 1 + z) + zz) % q for yi, bit, zz in zip(y_pows, a_L, z2)]
        r1 = [yi * s % q for yi, s in zip(y_pows, s_R)]
        t1 = (sum(x * y_ for x, y_ in zip(l0, r1)) + sum(x * y_ for x, y_ in zip(s_L, r0))) % q
        t2 = sum(x * y_ for x, y_ in zip(s_L, r1)) % q
        tau_1 = random_scalar(rng)
        tau_2 = random_scalar(rng)
        T_1 = msm([t1, tau_1], [B, B_blinding])
        T_2 = msm([t2, tau_2], [B, B_blinding])
        transcript.validate_and_append_point(b"T_1", T_1)
        transcript.validate_and_append_point(b"T_2", T_2)
        x = transcript.challenge_scalar(b"x")

        l_vec = [(a + s * x) % q for a, s in zip(l0, s_L)]
        r_vec = [(a + s * x) % q for a, s in zip(r0, r1)]
        t_x = sum(a * b for a, b in zip(l_vec, r_vec)) % q
        z_pow = z * z % q
        gamma_sum = 0
        for gamma in blindings:
            gamma_sum += z_pow * gamma
            z_pow = z_pow * z % q
        t_x_blinding = (tau_2 * x * x + tau_1 * x + gamma_sum) % q
        e_blinding = (alpha + rho * x) % q
        transcript.append_scalar(b"t_x", t_x)
        transcript.append_scalar(b"t_x_blinding", t_x_blinding)
        transcript.append_scalar(b"e_blinding", e_blinding)
        w = transcript.challenge_scalar(b"w")
        Q = msm([w], [B])

        y_inv_pows = _powers(pow(y, -1, q), nm)
        ipp = InnerProductProof.create(transcript, Q, [1] * nm, y_inv_pows, G, H, l_vec, r_vec)
        return cls(A, S, T_1, T_2, t_x, t_x_blinding, e_blinding, ipp), commitments

    # --- verifying -----------------------------------------------------------------------------

    def verification_terms(self, transcript: Transcript, commitments: Sequence[EcPt],
                           n_bits: int, *, rng: Rng | None = None) -> VerificationTerms:
        """Replays the transcript and returns the verification equation's scalars.

        The two checks of the protocol (the inner-product check and the ``t(x)`` check) are
        combined with a random weight ``c`` drawn from ``rng``.

        Args:
          transcript: the transcript, in the state the prover started from.
          commitments: the ``m`` value commitments ``V_j``.
          n_bits: the bit length ``n``.
          rng: optional deterministic source for ``c`` (tests); default :mod:`secrets`.

        Returns:
          The terms; the proof is valid iff their multi-exponentiation is the identity.

        Raises:
          VerificationError: the parameters do not match the proof.
        """
        m = len(commitments)
        if not _params_ok(n_bits, m) or not all(map(is_group_point, commitments)):
            raise VerificationError()
        q = ORDER
        nm = n_bits * m
        transcript.domain_sep(_DOMAIN, n=n_bits, m=m)
        for V in commitments:
            transcript.append_point(b"V", V)
        transcript.validate_and_append_point(b"A", self.A)
        transcript.validate_and_append_point(b"S", self.S)
        y = transcript.challenge_scalar(b"y")
        z = transcript.challenge_scalar(b"z")
        transcript.validate_and_append_point(b"T_1", self.T_1)
        transcript.validate_and_append_point(b"T_2", self.T_2)
        x = transcript.challenge_scalar(b"x")
        transcript.append_scalar(b"t_x", self.t_x)
        transcript.append_scalar(b"t_x_blinding", self.t_x_blinding)
        transcript.append_scalar(b"e_blinding", self.e_blinding)
        w = transcript.challenge_scalar(b"w")
        u_sq, u_inv_sq, s = self.ipp_proof.verification_scalars(nm, transcript)

        c = random_scalar(rng) or 1
        a, b = self.ipp_proof.a, self.ipp_proof.b
        g = [(-z - a * s_i) % q for s_i in s]
        y_inv = pow(y, -1, q)
        z2 = _z_and_2(z, n_bits, m)
        h = []
        y_inv_i = 1
        for s_inv_i, zz in zip(reversed(s), z2):
            h.append((z + y_inv_i * (zz - b * s_inv_i)) % q)
            y_inv_i = y_inv_i * y_inv % q
        b_scalar = (w * (self.t_x - a * b) + c * (_delta(y, z, n_bits, m) - self.t_x)) % q
        b_blinding = (-self.e_blinding - c * self.t_x_blinding) % q
        extra_scalars = [1, x, c * x % q, c * x * x % q]
        extra_points = [self.A, self.S, self.T_1, self.T_2]
        z_pow = c * z * z % q
        for V in commitments:
            extra_scalars.append(z_pow)
            extra_points.append(V)
            z_pow = z_pow * z % q
        extra_scalars += u_sq + u_inv_sq
        extra_points += list(self.ipp_proof.L) + list(self.ipp_proof.R)
        return VerificationTerms(g, h, b_scalar, b_blinding, extra_scalars, extra_points)

    def verify(self, transcript: Transcript, commitments: Sequence[EcPt], n_bits: int, *,
               rng: Rng | None = None) -> None:
        """Verifies the proof with one multi-exponentiation.

        Args:
          transcript: the transcript, in the state the prover started from (same context).
          commitments: the ``m`` value commitments ``V_j``.
          n_bits: the bit length ``n``.
          rng: optional deterministic source for the verifier's random weight (tests).

        Raises:
          VerificationError: the proof does not verify (one type, whatever failed).
        """
        terms = self.verification_terms(transcript, commitments, n_bits, rng=rng)
        nm = len(terms.g)
        G, H = range_generators(nm)
        B, B_blinding = pedersen_bases()
        total = msm(terms.g + terms.h + [terms.b, terms.b_blinding] + terms.extra_scalars,
                    G + H + [B, B_blinding] + terms.extra_points)
        if not total.is_infinite():
            raise VerificationError()

    # --- serialization -------------------------------------------------------------------------

    def _encode(self, point_enc, ipp_enc) -> bytes:
        return b"".join([point_enc(self.A), point_enc(self.S), point_enc(self.T_1),
                         point_enc(self.T_2), scalar_to_bytes(self.t_x),
                         scalar_to_bytes(self.t_x_blinding), scalar_to_bytes(self.e_blinding),
                         ipp_enc()])

    @classmethod
    def _decode(cls, data: bytes, point_size: int, point_dec, ipp_dec) -> "RangeProof":
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise EncodingError("range proof must be bytes")
        data = bytes(data)
        head = 4 * point_size + 3 * SCALAR_BYTES
        if len(data) < head + 2 * SCALAR_BYTES:
            raise EncodingError(f"range proof: too short ({len(data)} bytes)")
        pts = [point_dec(data[i * point_size:(i + 1) * point_size]) for i in range(4)]
        off = 4 * point_size
        scalars = [scalar_from_bytes(data[off + i * SCALAR_BYTES:off + (i + 1) * SCALAR_BYTES])
                   for i in range(3)]
        ipp = ipp_dec(data[head:])
        return cls(*pts, *scalars, ipp)

    def to_bytes(self) -> bytes:
        """Serializes with 65-byte points: ``65 (2k + 4) + 160`` bytes, ``k = lg(n m)``.

        Layout: ``A || S || T_1 || T_2 || t_x || t_x_blinding || e_blinding || ipp_proof`` with
        the inner-product proof as in :meth:`InnerProductProof.to_bytes`.
        """
        return self._encode(point_to_bytes, self.ipp_proof.to_bytes)

    @classmethod
    def from_bytes(cls, data: bytes) -> "RangeProof":
        """Parses :meth:`to_bytes` output strictly.

        Raises:
          EncodingError: a bad length, a non-canonical scalar, or a point that is malformed,
            off the curve, non-canonical or the identity.
        """
        return cls._decode(data, POINT_BYTES, point_from_bytes, InnerProductProof.from_bytes)

    def to_bytes_compact(self) -> bytes:
        """Serializes with 33-byte points: ``32 (2k + 9) + (2k + 4)`` bytes; layout as
        :meth:`to_bytes`."""
        return self._encode(point_to_bytes_compact, self.ipp_proof.to_bytes_compact)

    @classmethod
    def from_bytes_compact(cls, data: bytes) -> "RangeProof":
        """Parses :meth:`to_bytes_compact` output strictly (errors as :meth:`from_bytes`)."""
        return cls._decode(data, COMPACT_POINT_BYTES, point_from_bytes_compact,
                           InnerProductProof.from_bytes_compact)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeProof):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()
