"""The public statement of a norm proof, and how it is bound into the Fiat-Shamir transcript.

Everything the verifier relies on is absorbed before the first challenge: the protocol version,
the round id, the client id, the dimension, the norm and its bound, the fixed-point scale, the
derived parameters and the commitment to the vector. A proof made for one round or one client
therefore yields different challenges, and does not verify, in any other.
"""
from __future__ import annotations

import dataclasses
import math
import struct

from petlib.ec import EcPt

from ..group import ORDER
from ..labels import NORM_STATEMENT, NORM_TRANSCRIPT
from ..transcript import Transcript
from .params import (GAMMA_BITS, SMALLNESS_PROJECTIONS, SUM_BITS, L2Params, LinfParams, l2_params,
                     linf_params)

__all__ = ["PROTOCOL_VERSION", "NORMS", "NormStatement"]

PROTOCOL_VERSION = 4
"""Bumped whenever the proof format, a derivation or the transcript layout changes (2: the
projection matrix is one AES-CTR keystream under a key derived from its challenge, and the
derived parameters are bound into the statement; 3: the L2 proof is exact, ``<x, x>`` proven by
the norm-linear argument, no sketch, no ``K``; 4: the norm-linear argument runs on
power-of-two chunks with real generators, the split and the padding challenge in the
transcript)."""

NORMS = ("l2", "linf")

_MAX_DIM = 1 << 31


@dataclasses.dataclass(frozen=True)
class NormStatement:
    """What a client claims about the integer vector behind its commitment.

    Attributes:
      round_id: the training round (binds the proof to it).
      client_id: the client (binds the proof to it).
      dim: the vector's length ``d``.
      norm: ``"l2"`` (``sum_j x_j^2 <= bound^2``, exact) or ``"linf"`` (``|x_j| <= bound`` for
        every ``j``, exact).
      bound: the bound, in the same integer units as the vector.
      scale: the fixed-point scale that turned the float update into integers (bound for the
        record: a proof under another scale does not verify).
      session: up to 64 bytes naming the run or protocol session the round belongs to (for
        example the secure-aggregation round id), so a proof of one run's round ``r`` does not
        verify in another run's round ``r``; empty by default.
    """

    round_id: int
    client_id: int
    dim: int
    norm: str
    bound: int
    scale: float
    session: bytes = b""

    def __post_init__(self) -> None:
        for name in ("round_id", "client_id", "dim", "bound"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"NormStatement.{name} must be an int, got {type(value).__name__}")
        if not 0 <= self.round_id < 1 << 64 or not 0 <= self.client_id < 1 << 64:
            raise ValueError("NormStatement: round_id and client_id must be unsigned 64-bit")
        if not 1 <= self.dim < _MAX_DIM:
            raise ValueError(f"NormStatement.dim must be in [1, 2^31), got {self.dim}")
        if self.norm not in NORMS:
            raise ValueError(f"NormStatement.norm must be one of {NORMS}, got {self.norm!r}")
        if self.bound < 1:
            raise ValueError(f"NormStatement.bound must be a positive integer, got {self.bound}")
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) \
                or not math.isfinite(self.scale) or self.scale <= 0 or float(self.scale) != self.scale:
            # bound as an IEEE double: an int that a double does not hold exactly would name two
            # statements with one transcript
            raise ValueError(f"NormStatement.scale must be a positive finite number that a double "
                             f"holds exactly, got {self.scale!r}")
        if not isinstance(self.session, bytes) or len(self.session) > 64:
            raise ValueError("NormStatement.session must be at most 64 bytes")
        if self.norm == "l2":
            self.l2_params()  # validates bound and dim together
        else:
            self.linf_params()

    def l2_params(self) -> L2Params:
        """The derived L2 parameters (bit widths, thresholds, soundness); see :mod:`.params`."""
        return l2_params(self.dim, self.bound)

    def linf_params(self) -> LinfParams:
        """The derived L-infinity parameters; see :mod:`.params`."""
        return linf_params(self.dim, self.bound)

    def public_parameters(self) -> dict[str, int | bytes]:
        """Everything public a proof of this statement depends on, as transcript parameters.

        The statement itself (round, client, ``d``, norm, bound, scale, session), the protocol
        version, the group order, and the parameters derived from them (bit widths, thresholds,
        counts of range-checked values): the derivation is deterministic, but binding its results
        too means a change of derivation can never let one transcript stand for two statements.
        """
        params: dict[str, int | bytes] = dict(
            version=PROTOCOL_VERSION,
            round=self.round_id,
            client=self.client_id,
            dim=self.dim,
            norm=self.norm.encode(),
            bound=self.bound,
            scale=struct.pack(">d", float(self.scale)),
            session=self.session,
            order=ORDER,
        )
        if self.norm == "l2":
            prm = self.l2_params()
            params.update(bits=prm.bits, half_range=prm.half_range, bound_sq=prm.bound_sq,
                          checked_projections=SMALLNESS_PROJECTIONS, gamma_bits=GAMMA_BITS,
                          sum_bits=SUM_BITS)
        else:
            prm = self.linf_params()
            params.update(bits=prm.bits, values=prm.values, gamma_bits=GAMMA_BITS)
        return params

    def transcript(self, commitment: EcPt) -> Transcript:
        """A fresh transcript with this statement and ``commitment`` bound into it.

        Args:
          commitment: the client's commitment to its vector.

        Returns:
          The transcript, ready for the proof's first message.

        Raises:
          VerificationError: ``commitment`` is the identity.
        """
        t = Transcript(NORM_TRANSCRIPT)
        t.domain_sep(NORM_STATEMENT, **self.public_parameters())
        t.validate_and_append_point(b"commitment", commitment)
        return t
