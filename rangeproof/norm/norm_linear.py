"""Zero-knowledge argument that a committed vector has a given linear form *and* a given square norm.

Statement, for public generators ``G_0..G_{d-1}``, the Pedersen bases ``(B, B~)`` and a public
vector ``v``: the prover knows ``x, r, s, sigma`` with ::

    C = <x, G> + r B~        Y = <x, v> B + s B~        C_S = <x, x> B + sigma B~

(all mod q). ``docs/proofs.md``, "Norm-linear argument", has the derivation and the soundness
argument; in short:

1. ``w1, w2 <- H(...)``; ``P = C + w1 Y + w2 C_S = <x, G> + f(x, v) B + rho B~`` with
   ``f(x, v) = w1 <x, v> + w2 <x, x>`` and ``rho = r + w1 s + w2 sigma``.
2. For each of ``k = ceil(lg d)`` rounds, with ``x, v, G`` split into halves::

       L = <x_lo, G_hi> + w1 <x_lo, v_hi> B + rho_L B~
       R = <x_hi, G_lo> + (w1 <x_hi, v_lo> + 2 w2 <x_lo, x_hi>) B + rho_R B~
       W = w2 <x_hi, x_hi> B + rho_W B~
       u <- H(L, R, W)
       x' = x_lo + u x_hi      v' = v_lo + u^-1 v_hi      G' = G_lo + u^-1 G_hi
       P' = P + u^-1 L + u R + (u^2 - 1) W

   (``<x', x'> = <x, x> + 2u <x_lo, x_hi> + (u^2 - 1) <x_hi, x_hi>``.) Lengths that are not a
   power of two are padded with zero coordinates whose generators are the identity.
3. With ``a``, ``g``, ``v_f`` the folded scalar, generator and vector entry,
   ``P_f = a g + (w1 a v_f + w2 a^2) B + rho_f B~``. The prover closes with a proof of that
   quadratic relation: ``A1 = k g + (w1 k v_f + 2 w2 a k) B + s1 B~``,
   ``A2 = w2 k^2 B + s2 B~``, ``e <- H(A1, A2)``, ``z = k + e a``,
   ``rho' = s2 + e s1 + e^2 rho_f``; the verifier checks ::

       e z g + (w1 e z v_f + w2 z^2) B + rho' B~ = A2 + e A1 + e^2 P_f

   with ``g = sum_i s_i G_i`` and ``v_f = <s, v>``, ``s_i`` the products of ``1`` (low half)
   or ``u_j^-1`` (high half) over the rounds (:mod:`.challenge_products`, ``lo_one``).

Every cross term carries its own blinding, so nothing about ``x`` is revealed beyond the
statement, without a masking vector of length ``d``. Size: ``3k + 2`` points and 2 scalars.

Work: the generator parts of ``L`` and ``R`` are those of the linear-form argument's prover
(:mod:`.generator_fold`: bucket rounds on the small committed vector, symbolic folding, a planned
materialization schedule); the scalar cross terms are four inner products of the current halves.
"""
from __future__ import annotations

import operator
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
from ..labels import NORM_LINEAR
from ..transcript import Transcript
from .challenge_products import challenge_products_unreduced
from .generator_fold import FoldedGenerators
from .linear_form import LinearFormTerms

__all__ = ["NormLinearProof", "YTerms"]

_DOMAIN = NORM_LINEAR
_MAX_ROUNDS = 31

Rng = Callable[[int], int]

YTerms = tuple[list[int], list[EcPt], int]
"""``Y`` given as ``msm(scalars, points) + b B`` (the verifier's ``sum_k gamma_k (V_k - T B)``)."""


def _rounds(d: int) -> int:
    return max(0, (d - 1).bit_length())


def _dot(a: Sequence[int], b: Sequence[int]) -> int:
    return sum(map(operator.mul, a, b))


def _scaled(scale: int, scalars: list[int], points: list[EcPt], extra_scalars: list[int],
            extra_points: list[EcPt]) -> EcPt:
    """``scale * msm(scalars, points) + msm(extra_scalars, extra_points)``."""
    inner = msm(scalars, points) if scalars else None
    if inner is None or inner.is_infinite():
        return msm(extra_scalars, extra_points)
    return msm([scale] + extra_scalars, [inner] + extra_points)


class NormLinearProof:
    """A norm-linear argument: per round ``L, R, W``; then ``A1, A2`` and the responses ``z, rho'``."""

    __slots__ = ("L", "R", "W", "A1", "A2", "z", "rho")

    def __init__(self, L: list[EcPt], R: list[EcPt], W: list[EcPt], A1: EcPt, A2: EcPt, z: int,
                 rho: int):
        self.L = L
        self.R = R
        self.W = W
        self.A1 = A1
        self.A2 = A2
        self.z = z
        self.rho = rho

    @classmethod
    def create(cls, transcript: Transcript, G: Sequence[EcPt], x: Sequence[int], r: int,
               v: Sequence[int], s: int, sigma: int, *, rng: Rng | None = None) -> "NormLinearProof":
        """Proves the statement of the module docstring; ``C``, ``Y`` (or what determines it) and
        ``C_S`` must already be in ``transcript``.

        Args:
          transcript: the transcript.
          G: the generators, length ``d``.
          x: the committed vector (ints, signed or residues). When its centered entries are
            small, the first rounds' generator parts use point additions (faster only).
          r: the blinding of ``C``.
          v: the public vector, length ``d`` (ints).
          s: the blinding of ``Y``.
          sigma: the blinding of ``C_S``.
          rng: optional deterministic randomness (tests).

        Returns:
          The proof.

        Raises:
          ProvingError: the lengths differ or are zero.
        """
        d = len(G)
        if len(x) != d or len(v) != d or d == 0 or _rounds(d) > _MAX_ROUNDS:
            raise ProvingError("norm-linear argument: G, x and v must have the same non-zero length")
        q = ORDER
        half_q = q // 2
        B, Bt = pedersen_bases()
        transcript.domain_sep(_DOMAIN, d=d)
        w1 = transcript.challenge_scalar(b"w1")
        w2 = transcript.challenge_scalar(b"w2")
        xs = [int(a) % q for a in x]
        xs = [a - q if a > half_q else a for a in xs]  # centered: small ints stay small
        vs = [int(a) % q for a in v]
        folder = FoldedGenerators(G, small_x=xs)
        e = [1]  # bucket rounds: the current x is sum_a e_a x0[a n + k]
        rho = (r + w1 * s + w2 * sigma) % q
        n = folder.length
        Ls: list[EcPt] = []
        Rs: list[EcPt] = []
        Ws: list[EcPt] = []
        while n > 1:
            half = n // 2
            ell = len(xs)
            hi = max(ell - half, 0)  # coordinates with a partner in the upper half
            x_lo, x_hi = xs[:hi], xs[half:ell]
            v_lo, v_hi = vs[:hi], vs[half:ell]
            c_L = w1 * _dot(x_lo, v_hi) % q
            c_R = (w1 * _dot(x_hi, v_lo) + 2 * w2 * _dot(x_lo, x_hi)) % q
            c_W = w2 * _dot(x_hi, x_hi) % q
            rho_L, rho_R, rho_W = random_scalar(rng), random_scalar(rng), random_scalar(rng)
            buckets = folder.uses_buckets()
            if buckets:
                l_s, l_p, r_s, r_p = folder.small_cross_terms(e)
            else:
                l_s, l_p, r_s, r_p = folder.cross_terms(xs)
            L = _scaled(folder.scale, l_s, l_p, [c_L, rho_L], [B, Bt])
            R = _scaled(folder.scale, r_s, r_p, [c_R, rho_R], [B, Bt])
            W = msm([c_W, rho_W], [B, Bt])
            for label, P, out in ((b"L", L, Ls), (b"R", R, Rs), (b"W", W, Ws)):
                transcript.validate_and_append_point(label, P)
                out.append(P)
            u = transcript.challenge_scalar(b"u")
            ui = pow(u, -1, q)
            m = min(ell, half)
            xs = [(a + u * b) % q for a, b in zip(x_lo, x_hi)] + xs[hi:m]
            vs = [(a + ui * b) % q for a, b in zip(v_lo, v_hi)] + vs[hi:m]
            if buckets:
                e = [c for a in e for c in (a, a * u % q)]
            folder.fold_by(ui, 1)
            rho = (rho + ui * rho_L + u * rho_R + (u * u - 1) * rho_W) % q
            n = half
        a, v_f = xs[0] % q, vs[0] % q
        g = folder.final()
        k, s1, s2 = random_scalar(rng), random_scalar(rng), random_scalar(rng)
        A1 = _scaled(k, [1], [g], [(w1 * k * v_f + 2 * w2 * a * k) % q, s1], [B, Bt])
        A2 = msm([w2 * k * k % q, s2], [B, Bt])
        transcript.validate_and_append_point(b"A1", A1)
        transcript.validate_and_append_point(b"A2", A2)
        ch = transcript.challenge_scalar(b"e")
        return cls(Ls, Rs, Ws, A1, A2, (k + ch * a) % q, (s2 + ch * s1 + ch * ch * rho) % q)

    def verification_terms(self, transcript: Transcript, d: int, v: Sequence[int], C: EcPt,
                           Y: EcPt | YTerms, C_S: EcPt) -> LinearFormTerms:
        """Replays the transcript and returns the check as scalars: ``sum_i g[i] G_i + b B +
        b_blinding B~ + extras = 0`` with ``g = e z s`` (``s`` the ``lo_one`` challenge products).

        Args:
          transcript: as the prover's at :meth:`create`.
          d: the dimension.
          v: the public vector: ints, or an object with ``dot_challenge_products(us, scale,
            lo_one=True)`` (the projection's limbs).
          C: the commitment to ``x``.
          Y: the point ``Y``, or ``(scalars, points, b)`` with ``Y = msm(scalars, points) + b B``.
          C_S: the commitment to ``<x, x>``.

        Raises:
          VerificationError: the number of rounds does not match ``d``, or a point is the
            identity.
        """
        k = _rounds(d)
        if (len(self.L) != k or len(self.R) != k or len(self.W) != k or len(v) != d
                or k > _MAX_ROUNDS):
            raise VerificationError()
        q = ORDER
        transcript.domain_sep(_DOMAIN, d=d)
        w1 = transcript.challenge_scalar(b"w1")
        w2 = transcript.challenge_scalar(b"w2")
        us = []
        for L, R, W in zip(self.L, self.R, self.W):
            transcript.validate_and_append_point(b"L", L)
            transcript.validate_and_append_point(b"R", R)
            transcript.validate_and_append_point(b"W", W)
            us.append(transcript.challenge_scalar(b"u"))
        transcript.validate_and_append_point(b"A1", self.A1)
        transcript.validate_and_append_point(b"A2", self.A2)
        e = transcript.challenge_scalar(b"e")
        z = self.z
        ez = e * z % q
        dot = getattr(v, "dot_challenge_products", None)
        if dot is not None:  # v as limbs (the projection): <e z s, v> without forming v
            zv = dot(us, ez, lo_one=True)
        else:
            zv = _dot(challenge_products_unreduced(us, d, ez, lo_one=True), v) % q
        e2 = e * e % q
        ne2 = q - e2
        b = (w1 * zv + w2 * z * z) % q
        scalars = [q - 1, q - e, ne2, ne2 * w2 % q]
        points = [self.A2, self.A1, C, C_S]
        if isinstance(Y, tuple):
            y_s, y_p, y_b = Y
            f = ne2 * w1 % q
            scalars += [f * c % q for c in y_s]
            points += list(y_p)
            b = (b + f * y_b) % q
        else:
            scalars.append(ne2 * w1 % q)
            points.append(Y)
        u_inv = batch_inverse(us) if us else []
        scalars += [ne2 * ui % q for ui in u_inv]
        scalars += [ne2 * u % q for u in us]
        scalars += [ne2 * (u * u - 1) % q for u in us]
        points += list(self.L) + list(self.R) + list(self.W)
        return LinearFormTerms(us, ez, d, b, self.rho, scalars, points, lo_one=True)

    def verify(self, transcript: Transcript, G: Sequence[EcPt], v: Sequence[int], C: EcPt,
               Y: EcPt | YTerms, C_S: EcPt) -> None:
        """Verifies with one multi-exponentiation.

        Raises:
          VerificationError: the proof does not verify.
        """
        d = len(v)
        if len(G) < d:
            raise VerificationError()
        t = self.verification_terms(transcript, d, v, C, Y, C_S)
        B, Bt = pedersen_bases()
        total = msm(t.g + [t.b, t.b_blinding] + t.extra_scalars,
                    list(G[:d]) + [B, Bt] + t.extra_points)
        if not total.is_infinite():
            raise VerificationError()

    # --- serialization ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """``u8 k || L_1..L_k || R_1..R_k || W_1..W_k || A1 || A2 || z || rho'`` (33-byte points)."""
        parts = [bytes([len(self.L)])]
        for pts in (self.L, self.R, self.W):
            parts += [point_to_bytes_compact(P) for P in pts]
        parts += [point_to_bytes_compact(self.A1), point_to_bytes_compact(self.A2),
                  scalar_to_bytes(self.z), scalar_to_bytes(self.rho)]
        return b"".join(parts)

    @staticmethod
    def encoded_size(rounds: int) -> int:
        """Bytes taken by a proof with ``rounds`` rounds."""
        return 1 + (3 * rounds + 2) * COMPACT_POINT_BYTES + 2 * SCALAR_BYTES

    @classmethod
    def from_bytes(cls, data: bytes) -> "NormLinearProof":
        """Parses :meth:`to_bytes` output strictly.

        Raises:
          EncodingError: wrong length, bad round count, malformed point or scalar.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < 1:
            raise EncodingError("norm-linear proof: empty or not bytes")
        data = bytes(data)
        k = data[0]
        if k > _MAX_ROUNDS or len(data) != cls.encoded_size(k):
            raise EncodingError("norm-linear proof: wrong length for its round count")
        P = COMPACT_POINT_BYTES
        pts = [point_from_bytes_compact(data[1 + i * P:1 + (i + 1) * P]) for i in range(3 * k + 2)]
        off = 1 + (3 * k + 2) * P
        z = scalar_from_bytes(data[off:off + SCALAR_BYTES])
        rho = scalar_from_bytes(data[off + SCALAR_BYTES:])
        return cls(pts[:k], pts[k:2 * k], pts[2 * k:3 * k], pts[3 * k], pts[3 * k + 1], z, rho)
