"""Zero-knowledge argument that a committed vector has a given (committed) linear form.

Statement, for public generators ``G_0..G_{d-1}``, the Pedersen bases ``(B, B~)`` and a public
vector ``v``: the prover knows ``x, r, s`` with ::

    C = <x, G> + r B~          Y = <x, v> B + s B~

The argument is the Bulletproofs inner-product argument with a *public* second vector and
blinded cross terms (as in Hyrax's zero-knowledge variant), followed by a Schnorr proof for the
last folded element (``docs/proofs.md``, "Linear-form argument"):

1. ``w <- H(...)``, ``Q = w B``, ``P = C + w Y = <x, G> + <x, v> Q + (r + w s) B~``.
2. For each of ``k = ceil(lg d)`` rounds, with ``x, v, G`` split into halves::

       L = <x_lo, G_hi> + <x_lo, v_hi> Q + rho_L B~      R = <x_hi, G_lo> + <x_hi, v_lo> Q + rho_R B~
       u <- H(L, R);  x' = u x_lo + u^-1 x_hi,  v' = u^-1 v_lo + u v_hi,  G' = u^-1 G_lo + u G_hi

   Lengths that are not a power of two are padded with zero coordinates whose generators are
   the identity; the prover never touches them.
3. With ``a, g, v_f`` the folded scalar, generator and vector entry and
   ``P_f = P + sum_j (u_j^2 L_j + u_j^-2 R_j) = a (g + v_f Q) + rho_f B~``, a Schnorr proof of
   ``(a, rho_f)``: ``A = k_1 (g + v_f Q) + k_2 B~``, ``e <- H(A)``, ``z_1 = k_1 + e a``,
   ``z_2 = k_2 + e rho_f``.

The verifier checks one multi-exponentiation (``g = sum_i s_i G_i`` with the usual challenge
products ``s_i``)::

    z_1 sum_i s_i G_i + z_1 v_f Q + z_2 B~ - A - e (C + w Y + sum_j (u_j^2 L_j + u_j^-2 R_j)) = 0

Size: ``2k + 1`` points and 2 scalars.

Work: the prover computes the first rounds' cross terms from the small committed vector by
point additions, then folds its generators symbolically and materializes them on a planned
schedule (:mod:`.generator_fold`); the verifier forms
the challenge products as a tensor product and, when ``v`` comes as limbs (the projection),
computes ``<s, v>`` without forming ``v`` (:mod:`.challenge_products`). ``docs/proofs.md``,
"The prover's work", has the details; none of it changes the proof bytes.
"""
from __future__ import annotations

import dataclasses
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
from ..labels import NORM_LINEAR_FORM
from ..transcript import Transcript
from .challenge_products import challenge_products, challenge_products_unreduced
from .generator_fold import FoldedGenerators

__all__ = ["LinearFormProof", "LinearFormTerms", "challenge_products"]  # the last re-exported

_DOMAIN = NORM_LINEAR_FORM
_MAX_ROUNDS = 31

Rng = Callable[[int], int]


@dataclasses.dataclass
class LinearFormTerms:
    """The verification equation as scalars: ``sum_i g[i] G_{offset+i} + b B + b_blinding B~ +
    extras = 0``.

    ``g`` is ``g_scale`` times the challenge products of ``us`` (``dim`` of them); it is formed
    only when asked for (:attr:`g`, reduced) or by the caller that sums several
    (:func:`.challenge_products.challenge_products_unreduced`).
    """

    us: list[int]
    g_scale: int
    dim: int
    b: int
    b_blinding: int
    extra_scalars: list[int]
    extra_points: list[EcPt]
    lo_one: bool = False  # round factors (1, u^-1) (the norm-linear argument) instead of (u^-1, u)
    offset: int = 0  # g[i] sits on the vector generator G_{offset + i}

    @property
    def g(self) -> list[int]:
        """The ``dim`` scalars on the generators, reduced mod q."""
        return challenge_products(self.us, self.dim, self.g_scale, lo_one=self.lo_one)


def _scaled(scale: int, scalars: list[int], points: list[EcPt], extra_scalars: list[int],
            extra_points: list[EcPt]) -> EcPt:
    """``scale * msm(scalars, points) + msm(extra_scalars, extra_points)``."""
    inner = msm(scalars, points)
    if inner.is_infinite():
        return msm(extra_scalars, extra_points)
    return msm([scale] + extra_scalars, [inner] + extra_points)


def _rounds(d: int) -> int:
    return max(0, (d - 1).bit_length())


class LinearFormProof:
    """A linear-form argument: cross terms, the Schnorr commitment and the two responses."""

    __slots__ = ("L", "R", "A", "z1", "z2")

    def __init__(self, L: list[EcPt], R: list[EcPt], A: EcPt, z1: int, z2: int):
        self.L = L
        self.R = R
        self.A = A
        self.z1 = z1
        self.z2 = z2

    @classmethod
    def create(cls, transcript: Transcript, G: Sequence[EcPt], x: Sequence[int], r: int,
               v: Sequence[int], s: int, *, rng: Rng | None = None) -> "LinearFormProof":
        """Proves ``C = <x, G> + r B~`` and ``Y = <x, v> B + s B~`` (both bound by the caller).

        Args:
          transcript: the transcript, with ``C`` and ``Y`` (or what determines them) absorbed.
          G: the generators, length ``d``.
          x: the committed vector (ints, signed or as residues; reduced mod q here). When its
            centered entries are small, the first rounds use point additions (faster only).
          r: the blinding of ``C``.
          v: the public vector, length ``d``.
          s: the blinding of ``Y``.
          rng: optional deterministic randomness (tests).

        Returns:
          The proof.

        Raises:
          ProvingError: the lengths differ.
        """
        d = len(G)
        if len(x) != d or len(v) != d or d == 0:
            raise ProvingError("linear form: G, x and v must have the same non-zero length")
        q = ORDER
        B, Bt = pedersen_bases()
        transcript.domain_sep(_DOMAIN, d=d)
        w = transcript.challenge_scalar(b"w")
        Q = msm([w], [B])
        xs = [int(a) % q for a in x]
        vs = [int(a) % q for a in v]
        half_q = q // 2
        folder = FoldedGenerators(G, small_x=[a - q if a > half_q else a for a in xs])
        e = [1]  # bucket rounds: the current xs is sum_a e_a x0[a n + k], x0 the original vector
        rho = (r + w * s) % q
        n = folder.length
        # The current x and v are fx * xs and fv * vs: a fold then costs one product per pair,
        # x' = fx u (xs_lo + u^-2 xs_hi), v' = fv u^-1 (vs_lo + u^2 vs_hi), and none per lone
        # coordinate (a padded length's first round leaves most coordinates without a partner).
        fx = fv = 1
        Ls: list[EcPt] = []
        Rs: list[EcPt] = []
        while n > 1:
            half = n // 2
            ell = len(xs)
            hi = max(ell - half, 0)  # coordinates with a partner in the upper half
            rho_L = random_scalar(rng)
            rho_R = random_scalar(rng)
            fxv = fx * fv % q
            c_L = sum(map(operator.mul, xs[:hi], vs[half:half + hi])) * fxv % q
            c_R = sum(map(operator.mul, xs[half:half + hi], vs[:hi])) * fxv % q
            buckets = folder.uses_buckets()
            if buckets:
                l_s, l_p, r_s, r_p = folder.small_cross_terms(e)
            else:
                l_s, l_p, r_s, r_p = folder.cross_terms(xs)
            gen_scale = folder.scale * fx % q
            L = _scaled(gen_scale, l_s, l_p, [c_L, rho_L], [Q, Bt])
            R = _scaled(gen_scale, r_s, r_p, [c_R, rho_R], [Q, Bt])
            Ls.append(L)
            Rs.append(R)
            transcript.validate_and_append_point(b"L", L)
            transcript.validate_and_append_point(b"R", R)
            u = transcript.challenge_scalar(b"u")
            ui = pow(u, -1, q)
            m = min(ell, half)
            u2, ui2 = u * u % q, ui * ui % q
            xs = [(a + b * ui2) % q for a, b in zip(xs[:hi], xs[half:ell])] + xs[hi:m]
            vs = [(a + b * u2) % q for a, b in zip(vs[:hi], vs[half:ell])] + vs[hi:m]
            fx = fx * u % q
            fv = fv * ui % q
            if buckets:
                e = [c for a in e for c in (a, a * ui2 % q)]
            folder.fold(u, ui)
            rho = (rho + u2 * rho_L + ui2 * rho_R) % q
            n = half
        a, v_f = xs[0] * fx % q, vs[0] * fv % q
        g_f = folder.final()
        base = g_f + msm([v_f], [Q])
        k1 = random_scalar(rng)
        k2 = random_scalar(rng)
        A = msm([k1, k2], [base, Bt])
        transcript.validate_and_append_point(b"A", A)
        e = transcript.challenge_scalar(b"e")
        return cls(Ls, Rs, A, (k1 + e * a) % q, (k2 + e * rho) % q)

    def verification_terms(self, transcript: Transcript, d: int, v: Sequence[int], C: EcPt,
                           Y: EcPt) -> LinearFormTerms:
        """Replays the transcript and returns the check as scalars (see the module docstring).

        Raises:
          VerificationError: the number of rounds does not match ``d``, or a point is the
            identity.
        """
        k = _rounds(d)
        if len(self.L) != k or len(self.R) != k or len(v) != d or k > _MAX_ROUNDS:
            raise VerificationError()
        q = ORDER
        transcript.domain_sep(_DOMAIN, d=d)
        w = transcript.challenge_scalar(b"w")
        us = []
        for L, R in zip(self.L, self.R):
            transcript.validate_and_append_point(b"L", L)
            transcript.validate_and_append_point(b"R", R)
            us.append(transcript.challenge_scalar(b"u"))
        transcript.validate_and_append_point(b"A", self.A)
        e = transcript.challenge_scalar(b"e")
        z1, z2 = self.z1, self.z2
        dot = getattr(v, "dot_challenge_products", None)
        if dot is not None:  # v given as limbs (the projection): <z1 s, v> without forming v
            zv = dot(us, z1)
        else:
            zv = sum(map(operator.mul, challenge_products_unreduced(us, d, z1), v)) % q
        u_inv = batch_inverse(us) if us else []
        extra_scalars = [q - 1, q - e, (q - e) * w % q]
        extra_points = [self.A, C, Y]
        extra_scalars += [(q - e) * u * u % q for u in us] + [(q - e) * ui * ui % q for ui in u_inv]
        extra_points += list(self.L) + list(self.R)
        return LinearFormTerms(us, z1, d, zv * w % q, z2, extra_scalars, extra_points)

    def verify(self, transcript: Transcript, G: Sequence[EcPt], v: Sequence[int], C: EcPt,
               Y: EcPt) -> None:
        """Verifies with one multi-exponentiation.

        Raises:
          VerificationError: the proof does not verify.
        """
        d = len(v)
        if len(G) < d:
            raise VerificationError()
        t = self.verification_terms(transcript, d, v, C, Y)
        B, Bt = pedersen_bases()
        total = msm(t.g + [t.b, t.b_blinding] + t.extra_scalars,
                    list(G[:d]) + [B, Bt] + t.extra_points)
        if not total.is_infinite():
            raise VerificationError()

    # --- serialization ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """``u8 k || L_1..L_k || R_1..R_k || A || z1 || z2`` with 33-byte points."""
        parts = [bytes([len(self.L)])]
        parts += [point_to_bytes_compact(P) for P in self.L]
        parts += [point_to_bytes_compact(P) for P in self.R]
        parts += [point_to_bytes_compact(self.A), scalar_to_bytes(self.z1), scalar_to_bytes(self.z2)]
        return b"".join(parts)

    @staticmethod
    def encoded_size(rounds: int) -> int:
        """Bytes taken by a proof with ``rounds`` rounds."""
        return 1 + (2 * rounds + 1) * COMPACT_POINT_BYTES + 2 * SCALAR_BYTES

    @classmethod
    def from_bytes(cls, data: bytes) -> "LinearFormProof":
        """Parses :meth:`to_bytes` output strictly.

        Raises:
          EncodingError: wrong length, bad round count, malformed point or scalar.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < 1:
            raise EncodingError("linear-form proof: empty or not bytes")
        data = bytes(data)
        k = data[0]
        if k > _MAX_ROUNDS or len(data) != cls.encoded_size(k):
            raise EncodingError("linear-form proof: wrong length for its round count")
        P = COMPACT_POINT_BYTES
        pts = [point_from_bytes_compact(data[1 + i * P:1 + (i + 1) * P]) for i in range(2 * k + 1)]
        off = 1 + (2 * k + 1) * P
        z1 = scalar_from_bytes(data[off:off + SCALAR_BYTES])
        z2 = scalar_from_bytes(data[off + SCALAR_BYTES:])
        return cls(pts[:k], pts[k:2 * k], pts[2 * k], z1, z2)
