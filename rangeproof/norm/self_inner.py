"""Zero-knowledge argument that a committed scalar is the squared norm of a committed vector.

Statement: ``C_z = <z, H> + rho B~`` (``K`` generators ``H``, ``K`` a power of two) and
``C_S = S B + sigma B~`` with ``S = <z, z> (mod q)``. The prover knows ``z, rho, sigma``.

1. Masking (as in Bulletproofs): random ``a``, ``alpha``, ``tau_1``, ``tau_2``;
   ``A = <a, H> + alpha B~``, ``T_1 = 2<a, z> B + tau_1 B~``, ``T_2 = <a, a> B + tau_2 B~``.
   Challenge ``e``; ``f = z + e a`` is uniform and may be revealed, with
   ``t = <f, f> = S + 2e<a, z> + e^2 <a, a>``, ``tau = sigma + e tau_1 + e^2 tau_2``,
   ``mu = rho + e alpha``. The verifier checks ``t B + tau B~ = C_S + e T_1 + e^2 T_2``.
2. Instead of sending ``f`` (``K`` scalars), a folding argument shows that
   ``P = C_z + e A - mu B~`` opens to some ``f`` with ``<f, f> = t``. Each round, with ``f``
   split in halves, the prover sends ``L = <f_lo, H_hi>``, ``R = <f_hi, H_lo>``,
   ``t_lo = <f_lo, f_lo>`` and ``c = <f_lo, f_hi>``; on challenge ``u``::

       f' = f_lo + u f_hi      H' = H_lo + u^-1 H_hi      P' = P + u^-1 L + u R
       t' = t_lo + 2 u c + u^2 (t - t_lo)

   ``<f', f'>`` is exactly that quadratic in ``u``, so a false claim survives a round with
   probability at most ``2/q``. At the end the prover reveals the scalar ``f_0``; the verifier
   checks ``P_final = f_0 sum_i s_i H_i`` and ``t_final = f_0^2`` (``docs/proofs.md``).

Size: 3 points and 3 scalars, then per round 2 points and 2 scalars, then 1 scalar.
"""
from __future__ import annotations

from typing import Callable, Sequence

from petlib.ec import EcPt

from ..errors import EncodingError, ProvingError, VerificationError
from ..generators import pedersen_bases
from ..group import (
    COMPACT_POINT_BYTES,
    ORDER,
    SCALAR_BYTES,
    batch_inverse,
    msm,
    point_from_bytes_compact,
    point_to_bytes_compact,
    random_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
)
from ..labels import NORM_SELF_INNER
from ..transcript import Transcript
from .terms import Accumulator

__all__ = ["SelfInnerProof"]

_DOMAIN = NORM_SELF_INNER
_MAX_ROUNDS = 16

Rng = Callable[[int], int]


def _ip(a: Sequence[int], b: Sequence[int]) -> int:
    return sum(x * y for x, y in zip(a, b)) % ORDER


class SelfInnerProof:
    """``(A, T_1, T_2, t, tau, mu, L, R, t_lo, c, f_0)`` as in the module docstring."""

    __slots__ = ("A", "T1", "T2", "t", "tau", "mu", "L", "R", "t_lo", "c", "f0")

    def __init__(self, A, T1, T2, t, tau, mu, L, R, t_lo, c, f0):
        self.A, self.T1, self.T2 = A, T1, T2
        self.t, self.tau, self.mu = t, tau, mu
        self.L, self.R, self.t_lo, self.c, self.f0 = L, R, t_lo, c, f0

    @classmethod
    def create(cls, transcript: Transcript, H: Sequence[EcPt], z: Sequence[int], rho: int,
               sigma: int, *, rng: Rng | None = None) -> "SelfInnerProof":
        """Proves the statement; ``C_z`` and ``C_S`` must already be in ``transcript``.

        Raises:
          ProvingError: ``len(z)`` is not a power of two or differs from ``len(H)``.
        """
        K = len(z)
        if K == 0 or K & (K - 1) or len(H) != K or K.bit_length() - 1 > _MAX_ROUNDS:
            raise ProvingError("self inner product: K must be a power of two and match H")
        q = ORDER
        B, Bt = pedersen_bases()
        transcript.domain_sep(_DOMAIN, K=K)
        z = [v % q for v in z]
        a = [random_scalar(rng) for _ in range(K)]
        alpha, tau1, tau2 = random_scalar(rng), random_scalar(rng), random_scalar(rng)
        A = msm(a + [alpha], list(H) + [Bt])
        T1 = msm([2 * _ip(a, z), tau1], [B, Bt])
        T2 = msm([_ip(a, a), tau2], [B, Bt])
        for label, P in ((b"A", A), (b"T_1", T1), (b"T_2", T2)):
            transcript.validate_and_append_point(label, P)
        e = transcript.challenge_scalar(b"e")
        f = [(zi + e * ai) % q for zi, ai in zip(z, a)]
        t = _ip(f, f)
        tau = (sigma + e * tau1 + e * e * tau2) % q
        mu = (rho + e * alpha) % q
        for label, s in ((b"t", t), (b"tau", tau), (b"mu", mu)):
            transcript.append_scalar(label, s)
        Hs = list(H)
        Ls, Rs, tlos, cs = [], [], [], []
        while len(f) > 1:
            half = len(f) // 2
            f_lo, f_hi = f[:half], f[half:]
            L = msm(f_lo, Hs[half:])
            R = msm(f_hi, Hs[:half])
            t_lo = _ip(f_lo, f_lo)
            c = _ip(f_lo, f_hi)
            transcript.validate_and_append_point(b"L", L)
            transcript.validate_and_append_point(b"R", R)
            transcript.append_scalar(b"t_lo", t_lo)
            transcript.append_scalar(b"c", c)
            u = transcript.challenge_scalar(b"u")
            ui = pow(u, -1, q)
            Ls.append(L)
            Rs.append(R)
            tlos.append(t_lo)
            cs.append(c)
            f = [(x + u * y) % q for x, y in zip(f_lo, f_hi)]
            Hs = [msm([1, ui], [g, h]) for g, h in zip(Hs[:half], Hs[half:])]
        return cls(A, T1, T2, t, tau, mu, Ls, Rs, tlos, cs, f[0])

    def add_to(self, acc: Accumulator, transcript: Transcript, H: Sequence[EcPt], C_z: EcPt,
               C_S: EcPt) -> None:
        """Replays the transcript, checks the scalar equation, adds the group equations to ``acc``.

        Raises:
          VerificationError: wrong shape or the scalar check fails.
        """
        K = len(H)
        k = len(self.L)
        if K != 1 << k or len(self.R) != k or len(self.t_lo) != k or len(self.c) != k:
            raise VerificationError()
        q = ORDER
        transcript.domain_sep(_DOMAIN, K=K)
        for label, P in ((b"A", self.A), (b"T_1", self.T1), (b"T_2", self.T2)):
            transcript.validate_and_append_point(label, P)
        e = transcript.challenge_scalar(b"e")
        for label, s in ((b"t", self.t), (b"tau", self.tau), (b"mu", self.mu)):
            transcript.append_scalar(label, s)
        us = []
        t = self.t
        for L, R, t_lo, c in zip(self.L, self.R, self.t_lo, self.c):
            transcript.validate_and_append_point(b"L", L)
            transcript.validate_and_append_point(b"R", R)
            transcript.append_scalar(b"t_lo", t_lo)
            transcript.append_scalar(b"c", c)
            u = transcript.challenge_scalar(b"u")
            us.append(u)
            t = (t_lo + 2 * u * c + u * u * (t - t_lo)) % q
        if t != self.f0 * self.f0 % q:
            raise VerificationError()
        # s_i = prod over rounds j where bit (k-1-j) of i is set of u_j^-1
        inv = batch_inverse(us) if us else []
        s = [1] * K
        for i in range(1, K):
            top = i.bit_length() - 1
            s[i] = s[i - (1 << top)] * inv[k - 1 - top] % q
        B, Bt = pedersen_bases()
        # (1) t B + tau B~ - C_S - e T_1 - e^2 T_2 = 0
        acc.add_points([self.t, self.tau, q - 1, q - e, q - e * e % q], [B, Bt, C_S, self.T1, self.T2])
        # (2) f_0 sum_i s_i H_i - (C_z + e A - mu B~ + sum_j (u_j^-1 L_j + u_j R_j)) = 0
        scalars = [self.f0 * si % q for si in s] + [q - 1, q - e, self.mu]
        points = list(H) + [C_z, self.A, Bt]
        scalars += [q - w for w in inv] + [q - u for u in us]
        points += list(self.L) + list(self.R)
        acc.add_points(scalars, points)

    def to_bytes(self) -> bytes:
        """``u8 k || A || T_1 || T_2 || t || tau || mu || (L || R || t_lo || c) x k || f_0``."""
        parts = [bytes([len(self.L)])]
        parts += [point_to_bytes_compact(P) for P in (self.A, self.T1, self.T2)]
        parts += [scalar_to_bytes(s) for s in (self.t, self.tau, self.mu)]
        for L, R, t_lo, c in zip(self.L, self.R, self.t_lo, self.c):
            parts += [point_to_bytes_compact(L), point_to_bytes_compact(R),
                      scalar_to_bytes(t_lo), scalar_to_bytes(c)]
        parts.append(scalar_to_bytes(self.f0))
        return b"".join(parts)

    @staticmethod
    def encoded_size(rounds: int) -> int:
        """Bytes taken by a proof with ``rounds`` rounds."""
        P, S = COMPACT_POINT_BYTES, SCALAR_BYTES
        return 1 + 3 * P + 3 * S + rounds * (2 * P + 2 * S) + S

    @classmethod
    def from_bytes(cls, data: bytes) -> "SelfInnerProof":
        """Parses :meth:`to_bytes` output strictly.

        Raises:
          EncodingError: wrong length, bad round count, malformed point or scalar.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < 1:
            raise EncodingError("self-inner-product proof: empty or not bytes")
        data = bytes(data)
        k = data[0]
        if k > _MAX_ROUNDS or len(data) != cls.encoded_size(k):
            raise EncodingError("self-inner-product proof: wrong length for its round count")
        P, S = COMPACT_POINT_BYTES, SCALAR_BYTES
        o = 1
        pts = []
        for _ in range(3):
            pts.append(point_from_bytes_compact(data[o:o + P]))
            o += P
        sc = []
        for _ in range(3):
            sc.append(scalar_from_bytes(data[o:o + S]))
            o += S
        Ls, Rs, tl, cs = [], [], [], []
        for _ in range(k):
            Ls.append(point_from_bytes_compact(data[o:o + P]))
            Rs.append(point_from_bytes_compact(data[o + P:o + 2 * P]))
            tl.append(scalar_from_bytes(data[o + 2 * P:o + 2 * P + S]))
            cs.append(scalar_from_bytes(data[o + 2 * P + S:o + 2 * P + 2 * S]))
            o += 2 * P + 2 * S
        f0 = scalar_from_bytes(data[o:o + S])
        return cls(*pts, *sc, Ls, Rs, tl, cs, f0)
