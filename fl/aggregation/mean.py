"""The plain stages: the innermost plaintext sum and the (weighted) mean around it."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .base import AggregateResult, Aggregator, ClientMessage, RoundContext, RoundFailed, Stage
from .prepare import finite_or_zero
from .robust import MalformedUpdate

__all__ = ["PlainSum", "MeanStage", "WEIGHTINGS"]

#: how :class:`MeanStage` weights clients and what it divides by
WEIGHTINGS = {
    "examples": "sum_k n_k dw_k / sum_k n_k over the clients received (FedAvg as in the paper's text)",
    "uniform": "sum_k dw_k / (number of clients received)",
    "fixed": "sum_k dw_k / (clients sampled for the round), as in the authors' released code",
}


class PlainSum(Aggregator):
    """The innermost aggregator without cryptography: a float64-accumulated sum in plaintext."""

    name = "plain_sum"

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> AggregateResult:
        if not messages:
            raise RoundFailed("no_clients", "no client message reached the server")
        total = np.zeros(messages[0].vector.shape, dtype=np.float64)
        for m in messages:
            if m.vector.shape != total.shape:
                raise ValueError(f"client {m.client_id}: vector shape {m.vector.shape} != {total.shape}")
            total += m.vector
        return AggregateResult(
            vector=total.astype(np.float32),
            included=[m.client_id for m in messages],
            weight_total=float(sum(m.weight for m in messages)),
        )

    def __repr__(self) -> str:
        return "PlainSum()"


class MeanStage(Stage):
    """Weighted or unweighted mean: clients scale by their weight, the server divides.

    Args:
      inner: the sum below (plain or secure, possibly wrapped in quantization and noise).
      weighting: one of :data:`WEIGHTINGS`.
      max_weight: under ``"examples"``, a public cap W: the server takes each client's claimed
        weight as ``min(claim, W)`` (a negative or non-finite claim is refused) before the
        weighting; ``None``: no cap.
      public_denominator: divide by a public number whatever the clients sent: ``K`` for
        ``"fixed"``, ``K * max_weight`` for ``"examples"`` (DP-FedAvg's fixed denominator,
        McMahan et al. 2018); needed with noise, whose std is public, so that the model step does
        not reveal the denominator (docs/privacy.md).

    Raises:
      ValueError: an unknown weighting, a cap that is not positive and finite, or a public
        denominator that ``weighting`` cannot have.
    """

    name = "mean"

    def __init__(self, inner: Aggregator, weighting: str = "examples", *, max_weight: float | None = None,
                 public_denominator: bool = False):
        super().__init__(inner)
        if weighting not in WEIGHTINGS:
            raise ValueError(f"aggregation.weighting: expected one of {sorted(WEIGHTINGS)}, got {weighting!r}")
        if max_weight is not None and not (math.isfinite(max_weight) and max_weight > 0):
            raise ValueError(f"aggregation.max_weight: expected a positive finite cap, got {max_weight!r}")
        if public_denominator and not (weighting == "fixed" or (weighting == "examples" and max_weight)):
            raise ValueError(f"aggregation.weighting: {weighting!r} has no public denominator "
                             "(use \"fixed\", or \"examples\" with aggregation.max_weight)")
        self.weighting = weighting
        self.max_weight = None if max_weight is None else float(max_weight)
        self.public_denominator = bool(public_denominator)

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> AggregateResult:
        messages = [self.capped(m) for m in messages]  # the server's check of the claimed weights
        return super().aggregate(messages, ctx)

    def capped(self, message: ClientMessage) -> ClientMessage:
        """``message`` with its claimed weight capped at ``max_weight`` (under ``"examples"``).

        Raises:
          MalformedUpdate: a negative or non-finite claim.
        """
        if self.max_weight is None or self.weighting != "examples":
            return message
        w = float(message.weight)
        if not (math.isfinite(w) and w >= 0):
            raise MalformedUpdate(f"{self.name}: client {message.client_id} claimed the weight {w!r}")
        return message if w <= self.max_weight else message.replace(weight=self.max_weight)

    def client(self, message: ClientMessage, ctx: RoundContext) -> ClientMessage:
        if self.weighting == "examples":
            with np.errstate(over="ignore"):
                weighted = (message.vector * np.float32(message.weight)).astype(np.float32, copy=False)
            # an honest update that overflows float32 once weighted sends zeros (fl.aggregation.prepare)
            weighted, _ = finite_or_zero(weighted)
            return message.replace(vector=weighted)
        return message

    def server(self, result: AggregateResult, ctx: RoundContext) -> AggregateResult:
        if self.public_denominator:
            denominator = float(ctx.expected_clients) * (self.max_weight if self.weighting == "examples" else 1.0)
        elif self.weighting == "examples":
            denominator = result.weight_total
        elif self.weighting == "uniform":
            denominator = float(len(result.included))
        else:
            denominator = float(ctx.expected_clients)
        if denominator <= 0:
            raise RoundFailed("no_weight", "the clients received carry no weight; nothing to average")
        return result.replace(vector=(result.vector / np.float32(denominator)).astype(np.float32, copy=False))

    def __repr__(self) -> str:
        extra = "" if self.max_weight is None else f", max_weight={self.max_weight:g}"
        extra += ", public_denominator=True" if self.public_denominator else ""
        return f"MeanStage(weighting={self.weighting!r}{extra})"
