"""The plain stages: the innermost plaintext sum and the (weighted) mean around it."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import AggregateResult, Aggregator, ClientMessage, RoundContext, RoundFailed, Stage

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
    """

    name = "mean"

    def __init__(self, inner: Aggregator, weighting: str = "examples"):
        super().__init__(inner)
        if weighting not in WEIGHTINGS:
            raise ValueError(f"aggregation.weighting: expected one of {sorted(WEIGHTINGS)}, got {weighting!r}")
        self.weighting = weighting

    def client(self, message: ClientMessage, ctx: RoundContext) -> ClientMessage:
        if self.weighting == "examples":
            return message.replace(vector=(message.vector * np.float32(message.weight)).astype(np.float32, copy=False))
        return message

    def server(self, result: AggregateResult, ctx: RoundContext) -> AggregateResult:
        if self.weighting == "examples":
            denominator = result.weight_total
        elif self.weighting == "uniform":
            denominator = float(len(result.included))
        else:
            denominator = float(ctx.expected_clients)
        if denominator <= 0:
            raise RoundFailed("no_weight", "the clients received carry no weight; nothing to average")
        return result.replace(vector=(result.vector / np.float32(denominator)).astype(np.float32, copy=False))

    def __repr__(self) -> str:
        return f"MeanStage(weighting={self.weighting!r})"
