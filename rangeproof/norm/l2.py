"""The L2 norm proof: ``||x||_2 <= slack * M`` for a committed ``x``, by ternary projections.

Protocol (``docs/proofs.md``, "L2 proof", has the equations and the soundness argument):

1. The transcript binds the statement and ``C = <x, G> + r B~``; a challenge seeds the ternary
   projection matrix ``P`` (``K x d``, :mod:`.projection`).
2. The prover commits to ``z = P x`` as one vector, ``C_z = <z, H> + rho B~`` (``K`` generators
   ``H``), and to its first :data:`.params.SMALLNESS_PROJECTIONS` entries one by one,
   ``V_k = (z_k + T) B + s_k B~``.
3. Challenges ``gamma_k < 2^96`` batch the ``K`` relations ``z_k = <p_k, x>``:
   ``Y = <gamma, z> B + s_Y B~``. A linear-form argument on ``C_z`` shows that ``Y`` holds
   ``<gamma, z>`` and that the ``V_k`` hold ``z_k + T`` (random ``delta``, ``c``); another one,
   on ``C``, that ``Y`` holds ``<P^T gamma, x>`` (:mod:`.linear_form`).
4. ``C_S = S B + sigma B~`` with ``S = <z, z>``, proven by :mod:`.self_inner`.
5. An aggregated range proof puts each ``z_k + T`` (``k < 128``) in ``[0, 2T)``, which rules out
   any large coordinate of ``x`` and so any wrap-around modulo q; another puts ``tau - S`` in
   ``[0, 2^64)``.

In the rare case that an honest prover's own ``S`` exceeds ``tau`` it raises
:class:`ProjectionRetry`; :func:`rangeproof.norm.commit_and_prove` then re-randomizes the
commitment (a fresh transcript, hence a fresh projection) and tries again.
"""
from __future__ import annotations

import struct
import time
from typing import Callable

import numpy as np
from petlib.ec import EcPt

from ..errors import EncodingError, ProvingError, VerificationError
from ..generators import generators, pedersen_bases
from ..group import (
    COMPACT_POINT_BYTES,
    ORDER,
    msm,
    point_from_bytes_compact,
    point_to_bytes_compact,
    random_scalar,
)
from ..labels import NORM_PROJECTION_H
from ..range_proof import RangeProof
from ..transcript import Transcript
from .commitment import to_residues, vector_generators
from .linear_form import LinearFormProof
from .params import GAMMA_BITS, MAX_ATTEMPTS, SMALLNESS_PROJECTIONS, SUM_BITS, L2Params
from .projection import Projection
from .self_inner import SelfInnerProof
from .statement import NormStatement, check_attempt
from .terms import Accumulator

__all__ = ["L2Proof", "ProjectionRetry", "projection_generators", "projection_for", "exact_square_norm"]

_MAGIC = b"NL2\x03"
_H_LABEL = NORM_PROJECTION_H

Rng = Callable[[int], int]


class ProjectionRetry(ProvingError):
    """This projection's ``S`` exceeds ``tau`` for an in-bound vector; re-randomize and retry."""


def projection_generators(K: int) -> list[EcPt]:
    """The ``K`` generators ``H`` of the projection commitment ``C_z``."""
    return generators(_H_LABEL, K)


def projection_for(t: Transcript, prm: L2Params, dim: int) -> Projection:
    """The projection matrix of a proof: its seed is the first challenge after the statement and
    the commitment (prover, verifier and the tests' cheating provers all take it from here)."""
    return Projection(t.challenge_bytes(b"projection seed", 32), prm.projections, dim)


def _gammas(t: Transcript, K: int) -> list[int]:
    width = GAMMA_BITS // 8
    raw = t.challenge_bytes(b"gamma", width * K)
    return [int.from_bytes(raw[i * width:(i + 1) * width], "big") for i in range(K)]


def _link_challenges(t: Transcript) -> tuple[list[int], int]:
    width = GAMMA_BITS // 8
    raw = t.challenge_bytes(b"delta", width * SMALLNESS_PROJECTIONS)
    delta = [int.from_bytes(raw[i * width:(i + 1) * width], "big") for i in range(SMALLNESS_PROJECTIONS)]
    return delta, t.challenge_scalar(b"c")


class _Clock:
    """Adds elapsed wall time per phase into ``sink`` (a dict), when one is given."""

    def __init__(self, sink: dict | None):
        self.sink = sink
        self.t = time.perf_counter()

    def lap(self, phase: str) -> None:
        if self.sink is not None:
            now = time.perf_counter()
            self.sink[phase] = self.sink.get(phase, 0.0) + now - self.t
            self.t = now


def exact_square_norm(x: np.ndarray) -> int:
    """The exact ``sum_j x_j^2`` of an integer vector (any integer dtype, no wrap-around).

    With ``m = max_j |x_j|`` (taken from ``x.max()`` and ``x.min()`` as Python ints, so neither
    ``INT64_MIN`` nor a large ``uint64`` wraps), squares are summed in int64 over chunks of
    ``c = floor((2^63 - 1) / m^2)`` coordinates: each square is at most ``m^2``, so no partial
    sum of a chunk exceeds ``c m^2 <= 2^63 - 1``; the chunk sums are added as Python ints. When
    chunks would be short (``c < 4096``, which includes ``m >= 2^31.5``) Python ints are used
    throughout.

    Args:
      x: a one-dimensional integer array.

    Returns:
      The squared L2 norm, as a Python int.
    """
    if not x.size:
        return 0
    m = max(int(x.max()), -int(x.min()), 0)
    chunk = (2 ** 63 - 1) // (m * m) if m else x.size
    if chunk < 4096:
        return int(np.square(x.astype(object)).sum())
    x64 = x.astype(np.int64)  # exact: m < 2^26 here
    total = 0
    for start in range(0, x64.size, chunk):
        part = x64[start:start + chunk]
        total += int(np.dot(part, part))
    return total


class L2Proof:
    """A proof that the vector behind a commitment has L2 norm within the statement's bound.

    Attributes:
      attempt: the attempt counter (always 0).
      C_z: vector commitment to the ``K`` projections.
      V: commitments to ``z_k + T`` for the first 128 projections.
      Y: commitment to ``<gamma, z>``.
      C_S: commitment to ``S = <z, z>``.
      link: linear-form argument on ``C_z`` (ties ``Y`` and ``V``).
      squares: the self-inner-product argument for ``C_S``.
      range_z: the aggregated range proof on ``z_k + T``, ``k < 128``.
      range_s: the range proof on ``tau - S``.
      linear: the linear-form argument on ``C`` (ties ``Y`` to ``x``).
    """

    __slots__ = ("attempt", "C_z", "V", "Y", "C_S", "link", "squares", "range_z", "range_s", "linear")

    def __init__(self, attempt: int, C_z: EcPt, V: list[EcPt], Y: EcPt, C_S: EcPt,
                 link: LinearFormProof, squares: SelfInnerProof, range_z: RangeProof,
                 range_s: RangeProof, linear: LinearFormProof):
        self.attempt = attempt
        self.C_z = C_z
        self.V = V
        self.Y = Y
        self.C_S = C_S
        self.link = link
        self.squares = squares
        self.range_z = range_z
        self.range_s = range_s
        self.linear = linear

    # --- proving ---------------------------------------------------------------------------

    @classmethod
    def prove(cls, statement: NormStatement, x: np.ndarray, commitment: EcPt, blinding: int,
              *, rng: Rng | None = None, timings: dict | None = None) -> "L2Proof":
        """Proves ``statement`` for ``x`` behind ``commitment = <x, G> + blinding B~``.

        Args:
          statement: an ``"l2"`` statement.
          x: the integer vector (int64 array of length ``statement.dim``).
          commitment: the commitment the server will see.
          blinding: its blinding ``r``.
          rng: optional deterministic randomness (tests).
          timings: optional dict that receives seconds per phase (benchmarks).

        Returns:
          The proof.

        Raises:
          ProvingError: ``x`` is not an integer vector of the right length, or
            ``||x||_2 > M`` (the honest prover refuses; the message says by how much).
          ProjectionRetry: this commitment's projection happens to exceed ``tau``.
        """
        if statement.norm != "l2":
            raise ProvingError("L2Proof.prove: the statement is not an L2 statement")
        x = np.asarray(x)
        if x.shape != (statement.dim,) or x.dtype.kind not in "iu":
            raise ProvingError(f"L2 proof: x must be an integer vector of length {statement.dim}")
        M = statement.bound
        sq = exact_square_norm(x)
        if sq > M * M:
            raise ProvingError(f"L2 proof: ||x||_2^2 = {sq} exceeds the bound M^2 = {M * M}; "
                               "clip the update before proving")
        prm = statement.l2_params()
        clock = _Clock(timings)
        t = statement.transcript(commitment, 0)
        proj = projection_for(t, prm, statement.dim)
        z = proj.apply(x)
        S = sum(v * v for v in z)
        clock.lap("projection z = P x")
        if S > prm.tau:
            raise ProjectionRetry("L2 proof: the projection sketch exceeded tau; re-randomize the "
                                  "commitment and retry")
        return cls._finish(t, statement, prm, proj, to_residues(x), z, S, commitment, blinding, rng,
                           clock)

    @classmethod
    def _finish(cls, t, statement, prm, proj, xs, z, S, commitment, blinding, rng, clock):
        """The prover's computation after the checks of :meth:`prove`: ``z`` (the projections,
        centered integers) and ``S`` are committed and proven as given. The cheating provers of
        the tests call it directly, with their own ``x``, ``z`` and ``S``."""
        q = ORDER
        B, Bt = pedersen_bases()
        K, T, R = prm.projections, prm.half_range, SMALLNESS_PROJECTIONS
        H = projection_generators(K)
        rho = random_scalar(rng)
        C_z = msm([v % q for v in z] + [rho], H + [Bt])
        s = [random_scalar(rng) for _ in range(R)]
        V = [msm([z[k] + T, s[k]], [B, Bt]) for k in range(R)]
        t.validate_and_append_point(b"C_z", C_z)
        for P in V:
            t.append_point(b"V", P)
        gamma = _gammas(t, K)
        s_Y = random_scalar(rng)
        Y = msm([sum(g * v for g, v in zip(gamma, z)), s_Y], [B, Bt])
        t.append_point(b"Y", Y)
        delta, c = _link_challenges(t)
        clock.lap("commit projections")
        v_small = [(g + c * delta[k]) % q if k < R else g for k, g in enumerate(gamma)]
        s_link = (s_Y + c * sum(d * sk for d, sk in zip(delta, s))) % q
        link = LinearFormProof.create(t, H, [v % q for v in z], rho, v_small, s_link, rng=rng)
        sigma = random_scalar(rng)
        C_S = msm([S, sigma], [B, Bt])
        t.append_point(b"C_S", C_S)
        squares = SelfInnerProof.create(t, H, z, rho, sigma, rng=rng)
        clock.lap("sum of squares")
        range_z, _ = RangeProof.prove(t, [z[k] + T for k in range(R)], s, prm.bits, rng=rng)
        range_s, _ = RangeProof.prove(t, [prm.tau - S], [(-sigma) % q], SUM_BITS, rng=rng)
        clock.lap("range proofs")
        v = proj.transpose_apply(gamma)
        clock.lap("projection v = P^T gamma")
        linear = LinearFormProof.create(t, vector_generators(statement.dim), xs, blinding, v, s_Y,
                                        rng=rng)
        clock.lap("linear-form argument")
        return cls(0, C_z, V, Y, C_S, link, squares, range_z, range_s, linear)

    # --- verifying -------------------------------------------------------------------------

    def add_to(self, acc: Accumulator, statement: NormStatement, commitment: EcPt, *,
               timings: dict | None = None) -> None:
        """Replays the transcript, checks the scalar-only conditions, adds the equations to ``acc``.

        Raises:
          VerificationError: a structural or scalar check fails.
        """
        if statement.norm != "l2":
            raise VerificationError()
        clock = _Clock(timings)
        prm = statement.l2_params()
        K, T, R = prm.projections, prm.half_range, SMALLNESS_PROJECTIONS
        check_attempt(self.attempt, MAX_ATTEMPTS, proving=False)
        if len(self.V) != R:
            raise VerificationError()
        q = ORDER
        B, Bt = pedersen_bases()
        H = projection_generators(K)
        t = statement.transcript(commitment, 0)
        proj = projection_for(t, prm, statement.dim)
        t.validate_and_append_point(b"C_z", self.C_z)
        for P in self.V:
            t.append_point(b"V", P)
        gamma = _gammas(t, K)
        t.append_point(b"Y", self.Y)
        delta, c = _link_challenges(t)
        v_small = [(g + c * delta[k]) % q if k < R else g for k, g in enumerate(gamma)]
        # Y + c sum_k delta_k (V_k - T B) must hold <v_small, z>
        Y_link = msm([1] + [c * d % q for d in delta] + [(-c * T * sum(delta)) % q],
                     [self.Y] + list(self.V) + [B])
        acc.add_linear_form_on(H, self.link.verification_terms(t, K, v_small, self.C_z, Y_link))
        t.append_point(b"C_S", self.C_S)
        self.squares.add_to(acc, t, H, self.C_z, self.C_S)
        clock.lap("verify: projection commitment and squares")
        acc.add_range(self.range_z.verification_terms(t, list(self.V), prm.bits))
        tauB = msm([prm.tau], [B])
        acc.add_range(self.range_s.verification_terms(t, [tauB - self.C_S], SUM_BITS))
        clock.lap("verify: range-proof scalars")
        v = proj.transpose(gamma)  # as limbs: the verifier needs only <s, v>
        clock.lap("verify: projection v = P^T gamma")
        acc.add_linear_form(self.linear.verification_terms(t, statement.dim, v, commitment, self.Y))
        clock.lap("verify: linear-form scalars")

    def verify(self, statement: NormStatement, commitment: EcPt) -> None:
        """Verifies the proof against ``statement`` and ``commitment``.

        Raises:
          VerificationError: it does not verify.
        """
        acc = Accumulator()
        self.add_to(acc, statement, commitment)
        if not acc.check():
            raise VerificationError()

    def verify_timed(self, statement: NormStatement, commitment: EcPt, timings: dict) -> None:
        """:meth:`verify`, recording seconds per phase into ``timings`` (benchmarks)."""
        acc = Accumulator()
        self.add_to(acc, statement, commitment, timings=timings)
        clock = _Clock(timings)
        ok = acc.check()
        clock.lap("verify: multi-exponentiation")
        if not ok:
            raise VerificationError()

    # --- serialization ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """``magic || u8 attempt || u16 R || C_z || V_1..V_R || Y || C_S || u32-prefixed link ||
        u32-prefixed squares || u32-prefixed range_z || u32-prefixed range_s || linear``
        (33-byte points)."""
        blobs = [self.link.to_bytes(), self.squares.to_bytes(), self.range_z.to_bytes_compact(),
                 self.range_s.to_bytes_compact()]
        parts = [_MAGIC, struct.pack(">BH", self.attempt, len(self.V)), point_to_bytes_compact(self.C_z)]
        parts += [point_to_bytes_compact(P) for P in self.V]
        parts += [point_to_bytes_compact(self.Y), point_to_bytes_compact(self.C_S)]
        for b in blobs:
            parts += [struct.pack(">I", len(b)), b]
        parts.append(self.linear.to_bytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> "L2Proof":
        """Parses :meth:`to_bytes` output strictly.

        Raises:
          EncodingError: any malformed, truncated or trailing input.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise EncodingError("L2 proof: not bytes")
        r = _Reader(bytes(data))
        if r.take(4) != _MAGIC:
            raise EncodingError("L2 proof: bad magic or version")
        attempt, n_v = struct.unpack(">BH", r.take(3))
        if attempt >= MAX_ATTEMPTS:
            raise EncodingError("L2 proof: bad attempt counter")
        if n_v != SMALLNESS_PROJECTIONS:
            raise EncodingError("L2 proof: bad number of range-checked projections")
        C_z = point_from_bytes_compact(r.take(COMPACT_POINT_BYTES))
        V = [point_from_bytes_compact(r.take(COMPACT_POINT_BYTES)) for _ in range(n_v)]
        Y = point_from_bytes_compact(r.take(COMPACT_POINT_BYTES))
        C_S = point_from_bytes_compact(r.take(COMPACT_POINT_BYTES))
        blobs = [r.take(struct.unpack(">I", r.take(4))[0]) for _ in range(4)]
        link = LinearFormProof.from_bytes(blobs[0])
        squares = SelfInnerProof.from_bytes(blobs[1])
        range_z = RangeProof.from_bytes_compact(blobs[2])
        range_s = RangeProof.from_bytes_compact(blobs[3])
        linear = LinearFormProof.from_bytes(r.rest())
        return cls(attempt, C_z, V, Y, C_S, link, squares, range_z, range_s, linear)


class _Reader:
    def __init__(self, data: bytes):
        self._d = data
        self._o = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self._o + n > len(self._d):
            raise EncodingError("proof truncated")
        out = self._d[self._o:self._o + n]
        self._o += n
        return out

    def rest(self) -> bytes:
        out = self._d[self._o:]
        self._o = len(self._d)
        return out
