"""The L2 norm proof, exact: ``sum_j x_j^2 <= M^2`` over the integers for a committed ``x``.

Protocol (``docs/proofs.md``, "L2 proof", has the equations and the soundness argument):

1. The transcript binds the statement and ``C = <x, G> + r B~``; a challenge seeds a ternary
   projection matrix ``P`` of ``R = 128`` rows (:mod:`.projection`). The prover commits to each
   ``z_k = <p_k, x>`` as ``V_k = (z_k + T) B + s_k B~``.
2. Challenges ``gamma_k < 2^96``; the verifier forms ``Y = sum_k gamma_k (V_k - T B)`` itself
   (it holds ``<gamma, z>`` with blinding ``<gamma, s>``) and ``v = P^T gamma``.
3. ``C_S = S B + sigma B~`` with ``S = <x, x>``.
4. An aggregated range proof puts every ``z_k + T`` in ``[0, 2T)``: every coordinate of ``x`` is
   then below ``2T`` in size (error ``2^-128``), so ``<x, x>`` does not wrap modulo q. Another
   puts ``M^2 - S`` in ``[0, 2^64)``.
5. One norm-linear argument (:mod:`.norm_linear`) on ``C`` shows that ``Y`` holds ``<x, v>`` and
   ``C_S`` holds ``<x, x>`` for the ``x`` inside ``C`` (per power-of-two chunk of ``x``, with
   real generators on the last chunk's zero padding).

The honest prover never fails for an in-bound vector: nothing is estimated.
"""
from __future__ import annotations

import struct
import time
from typing import Callable

import numpy as np
from petlib.ec import EcPt

from ..errors import EncodingError, ProvingError, VerificationError
from ..generators import pedersen_bases
from ..group import (
    COMPACT_POINT_BYTES,
    ORDER,
    msm,
    point_from_bytes_compact,
    point_to_bytes_compact,
    random_scalar,
)
from ..range_proof import RangeProof
from ..transcript import Transcript
from .commitment import vector_generators
from .norm_linear import NormLinearArgument, padded_dim
from .params import GAMMA_BITS, SMALLNESS_PROJECTIONS, SUM_BITS, L2Params
from .projection import Projection
from .statement import NormStatement
from .terms import Accumulator

__all__ = ["L2Proof", "projection_for", "exact_square_norm"]

_MAGIC = b"NL2\x05"

Rng = Callable[[int], int]


def projection_for(t: Transcript, prm: L2Params, dim: int) -> Projection:
    """The projection matrix of a proof: its seed is the first challenge after the statement and
    the commitment (prover, verifier and the tests' cheating provers all take it from here)."""
    return Projection(t.challenge_bytes(b"projection seed", 32), prm.projections, dim)


def _gammas(t: Transcript, R: int) -> list[int]:
    width = GAMMA_BITS // 8
    raw = t.challenge_bytes(b"gamma", width * R)
    return [int.from_bytes(raw[i * width:(i + 1) * width], "big") for i in range(R)]


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
    """A proof that the vector behind a commitment satisfies ``sum_j x_j^2 <= M^2``.

    Attributes:
      V: commitments to ``z_k + T`` for the ``R = 128`` projections.
      C_S: commitment to ``S = <x, x>``.
      range_z: the aggregated range proof on ``z_k + T``.
      range_s: the range proof on ``M^2 - S``.
      nl: the norm-linear argument on ``C`` (ties ``Y`` and ``C_S`` to ``x``).
    """

    __slots__ = ("V", "C_S", "range_z", "range_s", "nl")

    def __init__(self, V: list[EcPt], C_S: EcPt, range_z: RangeProof, range_s: RangeProof,
                 nl: NormLinearArgument):
        self.V = V
        self.C_S = C_S
        self.range_z = range_z
        self.range_s = range_s
        self.nl = nl

    # --- proving ---------------------------------------------------------------------------

    @classmethod
    def prove(cls, statement: NormStatement, x: np.ndarray, commitment: EcPt, blinding: int,
              *, rng: Rng | None = None, timings: dict | None = None) -> "L2Proof":
        """Proves ``statement`` for ``x`` behind ``commitment = <x, G> + blinding B~``.

        Args:
          statement: an ``"l2"`` statement.
          x: the integer vector (integer array of length ``statement.dim``).
          commitment: the commitment the server will see.
          blinding: its blinding ``r``.
          rng: optional deterministic randomness (tests).
          timings: optional dict that receives seconds per phase (benchmarks).

        Returns:
          The proof.

        Raises:
          ProvingError: ``x`` is not an integer vector of the right length, or
            ``||x||_2 > M`` (the honest prover refuses; the message says by how much).
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
        t = statement.transcript(commitment)
        proj = projection_for(t, prm, statement.dim)
        z = proj.apply(x)  # |x_j| <= M < 2^31
        clock.lap("projection z = P x")
        return cls._finish(t, statement, prm, proj, x.tolist(), z, sq, commitment, blinding, rng,
                           clock)

    @classmethod
    def _finish(cls, t, statement, prm, proj, xs, z, S, commitment, blinding, rng, clock):
        """The prover's computation after the checks of :meth:`prove`: ``x`` (ints, any size),
        ``z`` (the projections, centered integers) and ``S`` are committed and proven as given.
        The cheating provers of the tests call it directly, with their own ``x``, ``z`` and ``S``."""
        q = ORDER
        B, Bt = pedersen_bases()
        T, R = prm.half_range, prm.projections
        s = [random_scalar(rng) for _ in range(R)]
        V = [msm([z[k] + T, s[k]], [B, Bt]) for k in range(R)]
        for P in V:
            t.append_point(b"V", P)
        gamma = _gammas(t, R)
        s_Y = sum(g * sk for g, sk in zip(gamma, s)) % q
        sigma = random_scalar(rng)
        C_S = msm([S, sigma], [B, Bt])
        t.validate_and_append_point(b"C_S", C_S)
        clock.lap("commit projections and square norm")
        range_z, _ = RangeProof.prove(t, [z[k] + T for k in range(R)], s, prm.bits, rng=rng)
        range_s, _ = RangeProof.prove(t, [prm.bound_sq - S], [(-sigma) % q], SUM_BITS, rng=rng)
        clock.lap("range proofs")
        v = proj.transpose_apply(gamma)
        clock.lap("projection v = P^T gamma")
        nl = NormLinearArgument.create(t, vector_generators(padded_dim(statement.dim)), xs,
                                       blinding, v, s_Y, sigma, rng=rng)
        clock.lap("norm-linear argument")
        return cls(V, C_S, range_z, range_s, nl)

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
        T, R = prm.half_range, prm.projections
        if len(self.V) != R:
            raise VerificationError()
        q = ORDER
        B = pedersen_bases()[0]
        t = statement.transcript(commitment)
        proj = projection_for(t, prm, statement.dim)
        for P in self.V:
            t.append_point(b"V", P)
        gamma = _gammas(t, R)
        t.validate_and_append_point(b"C_S", self.C_S)
        acc.add_range(self.range_z.verification_terms(t, list(self.V), prm.bits))
        acc.add_range(self.range_s.verification_terms(t, [msm([prm.bound_sq], [B]) - self.C_S],
                                                      SUM_BITS))
        clock.lap("verify: range-proof scalars")
        v = proj.transpose(gamma)  # as limbs: the verifier needs only <s, v>
        clock.lap("verify: projection v = P^T gamma")
        Y = (gamma, list(self.V), (-T * sum(gamma)) % q)  # Y = sum_k gamma_k (V_k - T B)
        for terms in self.nl.verification_terms(t, statement.dim, v, commitment, Y, self.C_S):
            acc.add_linear_form(terms)
        clock.lap("verify: norm-linear scalars")

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
        """``magic || u16 R || V_1..V_R || C_S || u32-prefixed range_z || u32-prefixed range_s ||
        norm-linear argument`` (33-byte points)."""
        parts = [_MAGIC, struct.pack(">H", len(self.V))]
        parts += [point_to_bytes_compact(P) for P in self.V]
        parts.append(point_to_bytes_compact(self.C_S))
        for b in (self.range_z.to_bytes_compact(), self.range_s.to_bytes_compact()):
            parts += [struct.pack(">I", len(b)), b]
        parts.append(self.nl.to_bytes())
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
        (n_v,) = struct.unpack(">H", r.take(2))
        if n_v != SMALLNESS_PROJECTIONS:
            raise EncodingError("L2 proof: bad number of range-checked projections")
        V = [point_from_bytes_compact(r.take(COMPACT_POINT_BYTES)) for _ in range(n_v)]
        C_S = point_from_bytes_compact(r.take(COMPACT_POINT_BYTES))
        blobs = [r.take(struct.unpack(">I", r.take(4))[0]) for _ in range(2)]
        range_z = RangeProof.from_bytes_compact(blobs[0])
        range_s = RangeProof.from_bytes_compact(blobs[1])
        nl = NormLinearArgument.from_bytes(r.rest())
        return cls(V, C_S, range_z, range_s, nl)


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
