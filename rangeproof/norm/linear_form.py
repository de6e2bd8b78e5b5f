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
"""
from __future__ import annotations

import dataclasses
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
from ..transcript import Transcript

__all__ = ["LinearFormProof", "LinearFormTerms", "challenge_products"]

_DOMAIN = b"sabre linear form v1"
_MAX_ROUNDS = 31
_FOLD_EVERY = 2

Rng = Callable[[int], int]


@dataclasses.dataclass
class LinearFormTerms:
    """The verification equation as scalars: ``sum_i g[i] G_i + b B + b_blinding B~ + extras = 0``."""

    g: list[int]
    b: int
    b_blinding: int
    extra_scalars: list[int]
    extra_points: list[EcPt]


def _rounds(d: int) -> int:
    return max(0, (d - 1).bit_length())


def challenge_products(us: Sequence[int], d: int) -> list[int]:
    """``s_i = prod_j u_j^{+1 if bit (k-1-j) of i is set else -1}`` for ``i < d``.

    Round ``j`` (0-based) splits on bit ``k-1-j`` of the index, so ``sum_i s_i G_i`` is the
    folded generator and ``sum_i s_i v_i`` the folded public vector.
    """
    q = ORDER
    k = len(us)
    inv = batch_inverse(us) if us else []
    first = 1
    for w in inv:
        first = first * w % q
    sq = [u * u % q for u in us]
    s = [first] * d
    for i in range(1, d):
        top = i.bit_length() - 1
        s[i] = s[i - (1 << top)] * sq[k - 1 - top] % q
    return s


class _LazyFolder:
    """The prover's generators, folded lazily (materialized every :data:`_FOLD_EVERY` rounds).

    With ``N`` the current (power-of-two) length, the current generator ``k`` is
    ``sum_{i < len(pts), i mod N = k} coef[i] pts[i]``; indices beyond ``len(pts)`` are the
    identity (padding). Folding only multiplies coefficients; materializing replaces each group
    of indices that agree mod ``N`` by one point (a small multi-exponentiation), keeping lone
    points with their coefficient. This saves about a third of the group work of folding every
    round (``rangeproof/ipa_fold.py`` does the same for the two-sided argument).
    """

    def __init__(self, G: list[EcPt]):
        self.pts = G
        self.coef = [1] * len(G)
        self.lazy = 0

    def cross_terms(self, n: int, xs: list[int], c_L: int, c_R: int, rho_L: int, rho_R: int,
                    Q: EcPt, Bt: EcPt) -> tuple[EcPt, EcPt]:
        q = ORDER
        half = n // 2
        mask = n - 1
        lx = len(xs)
        coef, pts = self.coef, self.pts
        Ls, Lp, Rs, Rp = [c_L, rho_L], [Q, Bt], [c_R, rho_R], [Q, Bt]
        for i in range(len(pts)):
            k = i & mask
            if k >= half:
                j = k - half
                if j < lx and xs[j]:
                    Ls.append(xs[j] * coef[i] % q)
                    Lp.append(pts[i])
            else:
                j = k + half
                if j < lx and xs[j]:
                    Rs.append(xs[j] * coef[i] % q)
                    Rp.append(pts[i])
        return msm(Ls, Lp), msm(Rs, Rp)

    def fold(self, n: int, u: int, ui: int) -> None:
        q = ORDER
        half = n // 2
        mask = n - 1
        self.coef = [c * (ui if (i & mask) < half else u) % q for i, c in enumerate(self.coef)]
        self.lazy += 1
        if self.lazy >= _FOLD_EVERY and half > 1:
            self._materialize(half)

    def _materialize(self, n: int) -> None:
        pts, coef = self.pts, self.coef
        size = len(pts)
        new_pts, new_coef = [], []
        for k in range(min(n, size)):
            idx = range(k, size, n)
            if len(idx) == 1:
                new_pts.append(pts[k])
                new_coef.append(coef[k])
            else:
                new_pts.append(msm([coef[i] for i in idx], [pts[i] for i in idx]))
                new_coef.append(1)
        self.pts, self.coef, self.lazy = new_pts, new_coef, 0

    def final(self) -> EcPt:
        """The single folded generator (length 1)."""
        return msm(self.coef, self.pts)


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
          x: the committed vector (ints; reduced mod q here).
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
        folder = _LazyFolder(list(G))
        rho = (r + w * s) % q
        n = 1 << _rounds(d)
        Ls: list[EcPt] = []
        Rs: list[EcPt] = []
        while n > 1:
            half = n // 2
            ell = len(xs)
            hi = ell - half  # coordinates with a partner in the upper half (may be <= 0)
            rho_L = random_scalar(rng)
            rho_R = random_scalar(rng)
            c_L = sum(xs[i] * vs[half + i] for i in range(max(hi, 0))) % q
            c_R = sum(xs[half + i] * vs[i] for i in range(max(hi, 0))) % q
            L, R = folder.cross_terms(n, xs, c_L, c_R, rho_L, rho_R, Q, Bt)
            Ls.append(L)
            Rs.append(R)
            transcript.validate_and_append_point(b"L", L)
            transcript.validate_and_append_point(b"R", R)
            u = transcript.challenge_scalar(b"u")
            ui = pow(u, -1, q)
            m = min(ell, half)
            xs = [(xs[i] * u + xs[half + i] * ui) % q if i < hi else xs[i] * u % q for i in range(m)]
            vs = [(vs[i] * ui + vs[half + i] * u) % q if i < hi else vs[i] * ui % q for i in range(m)]
            folder.fold(n, u, ui)
            rho = (rho + u * u * rho_L + ui * ui * rho_R) % q
            n = half
        a, v_f = xs[0], vs[0]
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
        s = challenge_products(us, d)
        v_f = sum(si * vi for si, vi in zip(s, v)) % q
        z1, z2 = self.z1, self.z2
        g = [z1 * si % q for si in s]
        u_inv = batch_inverse(us) if us else []
        extra_scalars = [q - 1, q - e, (q - e) * w % q]
        extra_points = [self.A, C, Y]
        extra_scalars += [(q - e) * u * u % q for u in us] + [(q - e) * ui * ui % q for ui in u_inv]
        extra_points += list(self.L) + list(self.R)
        return LinearFormTerms(g, z1 * v_f % q * w % q, z2, extra_scalars, extra_points)

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
