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

   (``<x', x'> = <x, x> + 2u <x_lo, x_hi> + (u^2 - 1) <x_hi, x_hi>``.) The length is a power
   of two: every coordinate has a partner in every round. (A coordinate without one is bound by
   a single generator, so a prover can give it free ``u^-1`` and ``u`` parts through ``L`` and
   ``R``, whose product lands in the constant term of ``<x', x'>``: the square norm is then
   unbound. Identity generators on padding coordinates were broken that way.)
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

**Any length** (:class:`NormLinearArgument`): ``d`` is cut into power-of-two chunks
(:func:`chunk_layout`: the largest power of two that fits, again on the rest, at most
:data:`MAX_CHUNKS` chunks; the last one is rounded up to a power of two with *real* generators
``G_d, G_{d+1}, ...`` and zero coordinates, which the commitment then binds to zero). The prover
commits to each chunk ``j >= 1`` separately, ``C_j = <x_j, G_j> + r_j B~``,
``Y_j = <x_j, v_j> B + s_j B~``, ``C_S,j = <x_j, x_j> B + sigma_j B~``; chunk 0's are the
differences ``C - sum C_j`` (and so on), so the chunks add up to the statement by construction.
Each chunk then gets its own argument above, in the same transcript. Its verification equation
involves only its own generators, so no coordinate is ever without a partner.


Work: the generator parts of ``L`` and ``R`` are those of the linear-form argument's prover
(:mod:`.generator_fold`: bucket rounds on the small committed vector, symbolic folding, a planned
materialization schedule); the scalar cross terms are four inner products of the current halves.
"""
from __future__ import annotations

import dataclasses
import operator
from typing import Callable, Sequence

from petlib.ec import EcPt

from ..errors import EncodingError, ProvingError, VerificationError
from ..generators import are_generators, pedersen_bases
from ..group import (
    COMPACT_POINT_BYTES,
    ORDER,
    SCALAR_BYTES,
    batch_inverse,
    msm,
    msm_small,
    point_from_bytes_compact,
    point_to_bytes_compact,
    random_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
)
from ..labels import NORM_LINEAR, NORM_LINEAR_SPLIT
from ..native_msm import label_small_sum
from ..transcript import Transcript
from .challenge_products import challenge_products_unreduced
from .commitment import VECTOR_LABEL
from .generator_fold import FoldedGenerators
from .linear_form import LinearFormTerms

__all__ = ["Chunk", "MAX_CHUNKS", "NormLinearArgument", "NormLinearProof", "YTerms", "chunk_layout",
           "padded_dim"]

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
               v: Sequence[int], s: int, sigma: int, *, rng: Rng | None = None, index: int = 0,
               offset: int = 0, pad_v: Sequence[int] = (),
               label: bytes | None = None) -> "NormLinearProof":
        """Proves the statement of the module docstring for one power-of-two chunk; ``C``, ``Y``
        (or what determines them) and ``C_S`` must already be in ``transcript``.

        Args:
          transcript: the transcript.
          G: the generators; their number ``n`` is a power of two.
          x: the committed vector (ints, signed or residues), at most ``n`` long: the missing
            coordinates are zero (their generators are real, so ``C`` binds them to zero).
            When its centered entries are small, the first rounds' generator parts use point
            additions (faster only).
          r: the blinding of ``C``.
          v: the public vector (ints), as long as ``x``.
          s: the blinding of ``Y``.
          sigma: the blinding of ``C_S``.
          rng: optional deterministic randomness (tests).
          index, offset: the chunk's place in :func:`chunk_layout` (bound in the transcript).
          pad_v: the public vector's entries on the padding coordinates (``x`` is zero there).
          label: when ``G`` are ``generators(label)[offset:]`` themselves (checked), the first
            rounds' sums use the label's affine table (faster only).

        Returns:
          The proof.

        Raises:
          ProvingError: ``n`` is not a power of two, or ``x`` and ``v`` do not fit it.
        """
        n = len(G)
        if (n == 0 or n & (n - 1) or len(x) + len(pad_v) > n or len(v) != len(x) or len(x) == 0
                or _rounds(n) > _MAX_ROUNDS):
            raise ProvingError("norm-linear argument: G must be a power of two long, x and v of "
                               "the same non-zero length at most len(G)")
        q = ORDER
        half_q = q // 2
        B, Bt = pedersen_bases()
        transcript.domain_sep(_DOMAIN, index=index, offset=offset, size=n)
        w1 = transcript.challenge_scalar(b"w1")
        w2 = transcript.challenge_scalar(b"w2")
        pad = [0] * (n - len(x))
        xs = [int(a) % q for a in x]
        xs = [a - q if a > half_q else a for a in xs] + pad  # centered: small ints stay small
        vs = [int(a) % q for a in v] + [int(a) % q for a in pad_v]
        vs += [0] * (n - len(vs))
        folder = FoldedGenerators(G, small_x=xs, label=label, offset=offset)
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

    def verification_terms(self, transcript: Transcript, size: int, v: Sequence[int], C: EcPt,
                           Y: EcPt | YTerms, C_S: EcPt, *, index: int = 0,
                           offset: int = 0, pad_v: Sequence[int] = ()) -> LinearFormTerms:
        """Replays the transcript and returns the check as scalars: ``sum_i g[i] G_{offset+i} +
        b B + b_blinding B~ + extras = 0`` with ``g = e z s`` (``s`` the ``lo_one`` challenge
        products, ``size`` of them).

        Args:
          transcript: as the prover's at :meth:`create`.
          size: the chunk's number of generators, a power of two.
          v: the public vector, at most ``size`` long (the rest is zero): ints, or an object
            with ``dot_challenge_products(us, scale, lo_one=True)`` (the projection's limbs).
          C: the commitment to ``x``.
          Y: the point ``Y``, or ``(scalars, points, b)`` with ``Y = msm(scalars, points) + b B``.
          C_S: the commitment to ``<x, x>``.
          index, offset: the chunk's place in :func:`chunk_layout`.
          pad_v: the public vector's entries right after ``v`` (the padding coordinates).

        Raises:
          VerificationError: ``size`` is not a power of two, the number of rounds does not match
            it, or a point is the identity.
        """
        k = _rounds(size)
        if (size <= 0 or size & (size - 1) or len(self.L) != k or len(self.R) != k
                or len(self.W) != k or len(v) + len(pad_v) > size or len(v) == 0
                or k > _MAX_ROUNDS):
            raise VerificationError()
        q = ORDER
        transcript.domain_sep(_DOMAIN, index=index, offset=offset, size=size)
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
            zv = _dot(challenge_products_unreduced(us, len(v), ez, lo_one=True), v) % q
        if pad_v:
            n_v = len(v)
            s_all = challenge_products_unreduced(us, n_v + len(pad_v), ez, lo_one=True)
            zv = (zv + _dot(s_all[n_v:], pad_v)) % q
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
        return LinearFormTerms(us, ez, size, b, self.rho, scalars, points, lo_one=True,
                               offset=offset)

    def verify(self, transcript: Transcript, G: Sequence[EcPt], v: Sequence[int], C: EcPt,
               Y: EcPt | YTerms, C_S: EcPt, *, index: int = 0, offset: int = 0) -> None:
        """Verifies one chunk (``len(G)`` a power of two) with one multi-exponentiation.

        Raises:
          VerificationError: the proof does not verify.
        """
        t = self.verification_terms(transcript, len(G), v, C, Y, C_S, index=index, offset=offset)
        _check_terms([t], G)

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


def _check_terms(terms: Sequence[LinearFormTerms], G: Sequence[EcPt]) -> None:
    """Evaluates each chunk's equation on the explicit generators ``G`` (tests and small ``d``;
    the L2 proof adds its terms to an :class:`~.terms.Accumulator` instead)."""
    B, Bt = pedersen_bases()
    for t in terms:
        if len(G) < t.offset + t.dim:
            raise VerificationError()
        total = msm(t.g + [t.b, t.b_blinding] + t.extra_scalars,
                    list(G[t.offset:t.offset + t.dim]) + [B, Bt] + t.extra_points)
        if not total.is_infinite():
            raise VerificationError()


# --- any length: power-of-two chunks ---------------------------------------------------------

MAX_CHUNKS = 4
"""At most this many chunks; the last one takes the rest, rounded up to a power of two."""

_PAD_SHARE = 64
_PAD_FLOOR = 256


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Coordinates ``offset .. offset + length - 1`` of ``x``, proven on the ``size`` generators
    ``G_offset .. G_{offset+size-1}`` (``size`` a power of two, ``length <= size``)."""

    offset: int
    size: int
    length: int


def chunk_layout(d: int) -> tuple[Chunk, ...]:
    """How the norm-linear argument cuts ``d`` coordinates into power-of-two chunks.

    Greedy: while the rest is not a power of two, and rounding it up would add more than
    ``max(d / 64, 256)`` padding generators (verifier work), and fewer than :data:`MAX_CHUNKS`
    chunks are taken, split off the largest power of two below it. The last chunk is the rest,
    rounded up. At ``d = 1,199,882``: ``2^20 + 2^17 + 2^15`` with 12,534 padding generators (1 %).

    Raises:
      ValueError: ``d < 1``.
    """
    if d < 1:
        raise ValueError("chunk_layout: d must be positive")
    out: list[Chunk] = []
    offset, rest = 0, d
    while True:
        n = 1 << _rounds(rest)
        if (n == rest or len(out) == MAX_CHUNKS - 1
                or n - rest <= max(d // _PAD_SHARE, _PAD_FLOOR)):
            out.append(Chunk(offset, n, rest))
            return tuple(out)
        top = n >> 1
        out.append(Chunk(offset, top, top))
        offset += top
        rest -= top


def padded_dim(d: int) -> int:
    """The number of generators the argument on ``d`` coordinates uses (``>= d``)."""
    last = chunk_layout(d)[-1]
    return last.offset + last.size


def _padding_vector(transcript: Transcript, last: Chunk) -> list[int]:
    """``beta, beta^2, ..., beta^p`` on the ``p`` padding coordinates of the last chunk, ``beta``
    a challenge drawn after ``C`` and the split: the argument then shows
    ``<x, v> + sum_i beta^i x_{d+i-1} = Y``, while ``Y`` holds ``<x, v>`` over the real coordinates
    alone, so the padding coordinates form the zero polynomial in ``beta``, except with
    probability ``p / q``. Without it a prover could put a component on the padding generators
    into ``C``, unprojected, so not range-checked: its square could wrap the norm around q."""
    p = last.size - last.length
    if not p:
        return []
    q = ORDER
    beta = transcript.challenge_scalar(b"padding")
    out = [beta]
    for _ in range(p - 1):
        out.append(out[-1] * beta % q)
    return out


def _slice(v, start: int, stop: int):
    """``v[start:stop]`` for a list, or the sliced limbs of a transposed projection."""
    sliced = getattr(v, "sliced", None)
    return sliced(start, stop) if sliced is not None else v[start:stop]


def _small_or_msm(values: list[int], points: Sequence[EcPt], tabled: bool, offset: int) -> EcPt | None:
    """``<values, points>`` (centered ints), or ``None`` for the identity; ``tabled``: the
    points are the vector generators from ``offset`` on (their affine table is used)."""
    if not values:
        return None
    P = label_small_sum(VECTOR_LABEL, offset, values) if tabled else msm_small(values, points)
    return None if P.is_infinite() else P


class NormLinearArgument:
    """The norm-linear argument for any ``d``: per chunk of :func:`chunk_layout` one
    :class:`NormLinearProof`, and the split ``(C_j, Y_j, C_S,j)`` of chunks ``1 ..``.

    The statement is the module docstring's, on ``G_0 .. G_{d-1}``; the generators up to
    :func:`padded_dim` carry zero coordinates.
    """

    __slots__ = ("splits", "parts")

    def __init__(self, splits: list[tuple[EcPt, EcPt, EcPt]], parts: list[NormLinearProof]):
        self.splits = splits
        self.parts = parts

    @staticmethod
    def _bind_layout(transcript: Transcript, d: int, layout: Sequence[Chunk]) -> None:
        transcript.domain_sep(NORM_LINEAR_SPLIT, d=d, chunks=len(layout),
                              sizes=b"".join(c.size.to_bytes(8, "big") for c in layout))

    @classmethod
    def create(cls, transcript: Transcript, G: Sequence[EcPt], x: Sequence[int], r: int,
               v: Sequence[int], s: int, sigma: int, *,
               rng: Rng | None = None) -> "NormLinearArgument":
        """Proves the statement for ``x`` of any length ``d`` (``C``, ``Y`` and ``C_S`` already in
        ``transcript``).

        Args:
          transcript: the transcript.
          G: at least :func:`padded_dim` ``(d)`` generators.
          x, r, v, s, sigma: as for :meth:`NormLinearProof.create`, ``x`` and ``v`` of length
            ``d``.
          rng: optional deterministic randomness (tests).

        Raises:
          ProvingError: lengths that do not match.
        """
        d = len(x)
        if d == 0 or len(v) != d or _rounds(d) > _MAX_ROUNDS or len(G) < padded_dim(d):
            raise ProvingError("norm-linear argument: x and v must have the same non-zero "
                               "length and G at least padded_dim(d) generators")
        q = ORDER
        half_q = q // 2
        B, Bt = pedersen_bases()
        layout = chunk_layout(d)
        tabled = are_generators(G[:padded_dim(d)], VECTOR_LABEL, 0)
        cls._bind_layout(transcript, d, layout)
        xs = [int(a) % q for a in x]
        xs = [a - q if a > half_q else a for a in xs]
        blind = [[r, s, sigma]]
        splits = []
        for j, ch in enumerate(layout):
            if j == 0:
                continue
            xj = xs[ch.offset:ch.offset + ch.length]
            vj = v[ch.offset:ch.offset + ch.length]
            rj, sj, gj = random_scalar(rng), random_scalar(rng), random_scalar(rng)
            Cx = _small_or_msm(xj, G[ch.offset:ch.offset + ch.length], tabled, ch.offset)
            Cj = msm([rj], [Bt]) if Cx is None else Cx + msm([rj], [Bt])
            Yj = msm([_dot(xj, [int(a) for a in vj]) % q, sj], [B, Bt])
            Sj = msm([_dot(xj, xj) % q, gj], [B, Bt])
            for label, P in ((b"C_j", Cj), (b"Y_j", Yj), (b"C_S_j", Sj)):
                transcript.validate_and_append_point(label, P)
            splits.append((Cj, Yj, Sj))
            blind.append([rj, sj, gj])
        for c in range(3):
            blind[0][c] = (blind[0][c] - sum(b[c] for b in blind[1:])) % q
        pad_v = _padding_vector(transcript, layout[-1])
        parts = []
        for j, ch in enumerate(layout):
            rj, sj, gj = blind[j]
            parts.append(NormLinearProof.create(
                transcript, G[ch.offset:ch.offset + ch.size], xs[ch.offset:ch.offset + ch.length],
                rj, v[ch.offset:ch.offset + ch.length], sj, gj, rng=rng, index=j, offset=ch.offset,
                pad_v=pad_v if j == len(layout) - 1 else (), label=VECTOR_LABEL))
        return cls(splits, parts)

    def verification_terms(self, transcript: Transcript, d: int, v, C: EcPt, Y: EcPt | YTerms,
                           C_S: EcPt) -> list[LinearFormTerms]:
        """One equation per chunk (see :meth:`NormLinearProof.verification_terms`); each must be
        checked on its own, or all combined with independent random weights.

        Raises:
          VerificationError: the layout does not match ``d``, or a point is the identity.
        """
        if d < 1 or len(v) != d or _rounds(d) > _MAX_ROUNDS:
            raise VerificationError()
        layout = chunk_layout(d)
        if len(self.parts) != len(layout) or len(self.splits) != len(layout) - 1:
            raise VerificationError()
        q = ORDER
        self._bind_layout(transcript, d, layout)
        for Cj, Yj, Sj in self.splits:
            transcript.validate_and_append_point(b"C_j", Cj)
            transcript.validate_and_append_point(b"Y_j", Yj)
            transcript.validate_and_append_point(b"C_S_j", Sj)
        # chunk 0 holds what the others do not: C_0 = C - sum_j C_j, and so for Y and C_S
        C0, S0 = C, C_S
        for Cj, _, Sj in self.splits:
            C0 = C0 - Cj
            S0 = S0 - Sj
        Ys = [Yj for _, Yj, _ in self.splits]
        if isinstance(Y, tuple):
            y_s, y_p, y_b = Y
            Y0: EcPt | YTerms = (list(y_s) + [q - 1] * len(Ys), list(y_p) + Ys, y_b)
        else:
            Y0 = Y
            for Yj in Ys:
                Y0 = Y0 - Yj
        chunk_statements = [(C0, Y0, S0)] + list(self.splits)
        pad_v = _padding_vector(transcript, layout[-1])
        out = []
        for j, (ch, part, (Cj, Yj, Sj)) in enumerate(zip(layout, self.parts, chunk_statements)):
            if Cj.is_infinite() or Sj.is_infinite():
                raise VerificationError()
            out.append(part.verification_terms(transcript, ch.size,
                                               _slice(v, ch.offset, ch.offset + ch.length),
                                               Cj, Yj, Sj, index=j, offset=ch.offset,
                                               pad_v=pad_v if j == len(layout) - 1 else ()))
        return out

    def verify(self, transcript: Transcript, G: Sequence[EcPt], v, C: EcPt, Y: EcPt | YTerms,
               C_S: EcPt) -> None:
        """Verifies every chunk's equation on the explicit generators ``G``.

        Raises:
          VerificationError: the argument does not verify.
        """
        _check_terms(self.verification_terms(transcript, len(v), v, C, Y, C_S), G)

    # --- serialization ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """``u8 c || (C_j || Y_j || C_S,j) for j = 1..c-1 || chunk 0's proof || ... ||
        chunk c-1's proof`` (33-byte points; each chunk proof as :meth:`NormLinearProof.to_bytes`,
        whose first byte gives its length)."""
        parts = [bytes([len(self.parts)])]
        for triple in self.splits:
            parts += [point_to_bytes_compact(P) for P in triple]
        parts += [p.to_bytes() for p in self.parts]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> "NormLinearArgument":
        """Parses :meth:`to_bytes` output strictly.

        Raises:
          EncodingError: wrong length, bad chunk or round count, malformed point or scalar.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < 1:
            raise EncodingError("norm-linear argument: empty or not bytes")
        data = bytes(data)
        c = data[0]
        if not 1 <= c <= MAX_CHUNKS:
            raise EncodingError("norm-linear argument: bad number of chunks")
        P = COMPACT_POINT_BYTES
        off = 1
        if len(data) < off + 3 * (c - 1) * P:
            raise EncodingError("norm-linear argument: truncated")
        pts = [point_from_bytes_compact(data[off + i * P:off + (i + 1) * P])
               for i in range(3 * (c - 1))]
        off += 3 * (c - 1) * P
        splits = [tuple(pts[3 * i:3 * i + 3]) for i in range(c - 1)]
        parts = []
        for _ in range(c):
            if off >= len(data):
                raise EncodingError("norm-linear argument: truncated")
            size = NormLinearProof.encoded_size(data[off]) if data[off] <= _MAX_ROUNDS else 0
            if not size or off + size > len(data):
                raise EncodingError("norm-linear argument: bad chunk proof length")
            parts.append(NormLinearProof.from_bytes(data[off:off + size]))
            off += size
        if off != len(data):
            raise EncodingError("norm-linear argument: trailing bytes")
        return cls(splits, parts)  # type: ignore[arg-type]

    @staticmethod
    def encoded_size(d: int) -> int:
        """Bytes taken by the argument on ``d`` coordinates."""
        layout = chunk_layout(d)
        return (1 + 3 * (len(layout) - 1) * COMPACT_POINT_BYTES
                + sum(NormLinearProof.encoded_size(_rounds(c.size)) for c in layout))
