"""The L-infinity norm proof: ``|x_j| <= B`` for every coordinate of a committed ``x``, exactly.

Protocol (``docs/proofs.md``, "L-infinity proof"):

1. The transcript binds the statement and ``C = <x, G> + r B~``.
2. The prover commits ``V_j = (x_j + B) B_0 + g_j B~`` per coordinate; the verifier derives
   ``W_j = 2B B_0 - V_j``, a commitment to ``B - x_j``. One aggregated range proof shows every
   ``x_j + B`` and every ``B - x_j`` in ``[0, 2^beta)`` with ``2B < 2^beta``; together they give
   ``-B <= x_j <= B`` over the integers (neither can wrap: ``2^beta`` is far below ``q/2``).
3. Challenges ``rho_j < 2^96`` batch ``V_j - B B_0 = Com(x_j)`` against ``C``: the linear-form
   argument shows ``<rho, x>`` is the value in ``Y = sum_j rho_j (V_j - B B_0)``.

Cost is linear in ``d`` range-proof bits, so this proof is for small ``d`` only
(``2 d <= 2^16`` values, :func:`.params.linf_params`).
"""
from __future__ import annotations

import struct
from typing import Callable

import numpy as np
from petlib.ec import EcPt

from ..errors import EncodingError, ProvingError, VerificationError
from ..generators import pedersen_bases
from ..group import (
    COMPACT_POINT_BYTES,
    ORDER,
    curve,
    msm,
    point_from_bytes_compact,
    point_to_bytes_compact,
    random_scalar,
)
from ..range_proof import RangeProof
from ..transcript import Transcript
from .commitment import to_residues, vector_generators
from .l2 import _Reader
from .linear_form import LinearFormProof
from .params import GAMMA_BITS
from .statement import NormStatement
from .terms import Accumulator

__all__ = ["LinfProof"]

_MAGIC = b"NLI\x02"

Rng = Callable[[int], int]


def _rhos(t: Transcript, d: int) -> list[int]:
    width = GAMMA_BITS // 8
    raw = t.challenge_bytes(b"rho", width * d)
    return [int.from_bytes(raw[i * width:(i + 1) * width], "big") for i in range(d)]


def _range_commitments(V: list[EcPt], bound: int, values: int) -> list[EcPt]:
    B0 = pedersen_bases()[0]
    twoB = msm([2 * bound], [B0])
    W = [twoB - P for P in V]
    pad = [curve().infinite() for _ in range(values - 2 * len(V))]
    return list(V) + W + pad


class LinfProof:
    """A proof that every coordinate behind a commitment is within ``[-B, B]``.

    Attributes:
      V: per-coordinate commitments to ``x_j + B``.
      range_proof: the aggregated range proof on ``x_j + B`` and ``B - x_j``.
      linear: the linear-form argument tying ``V`` to ``C``.
    """

    __slots__ = ("V", "range_proof", "linear")

    def __init__(self, V: list[EcPt], range_proof: RangeProof, linear: LinearFormProof):
        self.V = V
        self.range_proof = range_proof
        self.linear = linear

    @classmethod
    def prove(cls, statement: NormStatement, x: np.ndarray, commitment: EcPt, blinding: int,
              *, rng: Rng | None = None) -> "LinfProof":
        """Proves ``statement`` for ``x`` behind ``commitment = <x, G> + blinding B~``.

        Raises:
          ProvingError: ``x`` is not an integer vector of the right length, or some
            ``|x_j| > B`` (the message names the first such coordinate).
        """
        if statement.norm != "linf":
            raise ProvingError("LinfProof.prove: the statement is not an L-infinity statement")
        x = np.asarray(x)
        d, Bnd = statement.dim, statement.bound
        if x.shape != (d,) or x.dtype.kind not in "iu":
            raise ProvingError(f"L-infinity proof: x must be an integer vector of length {d}")
        over = np.nonzero((x > Bnd) | (x < -Bnd))[0]  # no abs/cast: INT64_MIN and uint64 would wrap
        if over.size:
            j = int(over[0])
            raise ProvingError(f"L-infinity proof: |x[{j}]| = {abs(int(x[j]))} exceeds the bound {Bnd}; "
                               "clip the update before proving")
        return cls._prove(statement, [int(v) for v in x.tolist()], commitment, blinding, rng)

    @classmethod
    def _prove(cls, statement: NormStatement, xl: list[int], commitment: EcPt, blinding: int,
               rng: Rng | None) -> "LinfProof":
        """The prover's computation after the checks of :meth:`prove` (the tests' cheating
        provers call it directly with out-of-bound coordinates)."""
        d, Bnd = statement.dim, statement.bound
        prm = statement.linf_params()
        q = ORDER
        t = statement.transcript(commitment)
        g = [random_scalar(rng) for _ in range(d)]
        pad = prm.values - 2 * d
        values = [v + Bnd for v in xl] + [Bnd - v for v in xl] + [0] * pad
        blinds = g + [(-gj) % q for gj in g] + [0] * pad
        rp, commitments = RangeProof.prove(t, values, blinds, prm.bits, rng=rng)
        V = commitments[:d]
        rho = _rhos(t, d)
        s_y = sum(r * gj for r, gj in zip(rho, g)) % q
        linear = LinearFormProof.create(t, vector_generators(d), to_residues(xl), blinding, rho, s_y,
                                        rng=rng)
        return cls(V, rp, linear)

    def add_to(self, acc: Accumulator, statement: NormStatement, commitment: EcPt) -> None:
        """Replays the transcript and adds the proof's equations to ``acc``.

        Raises:
          VerificationError: a structural check fails.
        """
        if statement.norm != "linf" or len(self.V) != statement.dim:
            raise VerificationError()
        prm = statement.linf_params()
        d, Bnd = statement.dim, statement.bound
        t = statement.transcript(commitment)
        acc.add_range(self.range_proof.verification_terms(
            t, _range_commitments(self.V, Bnd, prm.values), prm.bits))
        rho = _rhos(t, d)
        B0 = pedersen_bases()[0]
        Y = msm(rho + [(-Bnd * sum(rho)) % ORDER], list(self.V) + [B0])
        acc.add_linear_form(self.linear.verification_terms(t, d, rho, commitment, Y))

    def verify(self, statement: NormStatement, commitment: EcPt) -> None:
        """Verifies the proof.

        Raises:
          VerificationError: it does not verify.
        """
        acc = Accumulator()
        self.add_to(acc, statement, commitment)
        if not acc.check():
            raise VerificationError()

    def to_bytes(self) -> bytes:
        """``magic || u32 d || V || u32-prefixed range proof || linear`` (33-byte points)."""
        rp = self.range_proof.to_bytes_compact()
        return b"".join([_MAGIC, struct.pack(">I", len(self.V))]
                        + [point_to_bytes_compact(P) for P in self.V]
                        + [struct.pack(">I", len(rp)), rp, self.linear.to_bytes()])

    @classmethod
    def from_bytes(cls, data: bytes, dim: int | None = None) -> "LinfProof":
        """Parses :meth:`to_bytes` output strictly.

        Args:
          data: the encoding.
          dim: the statement's ``d``, when known: a proof of another length is refused before
            any of its points is decoded.

        Raises:
          EncodingError: any malformed, truncated or trailing input, or a length other than ``dim``.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise EncodingError("L-infinity proof: not bytes")
        r = _Reader(bytes(data))
        if r.take(4) != _MAGIC:
            raise EncodingError("L-infinity proof: bad magic or version")
        (d,) = struct.unpack(">I", r.take(4))
        if d == 0 or d > 1 << 15 or (dim is not None and d != dim):
            raise EncodingError("L-infinity proof: bad dimension")
        V = [point_from_bytes_compact(r.take(COMPACT_POINT_BYTES)) for _ in range(d)]
        rp = RangeProof.from_bytes_compact(r.take(struct.unpack(">I", r.take(4))[0]))
        linear = LinearFormProof.from_bytes(r.rest())
        return cls(V, rp, linear)
