"""Each client clips its own update to an L2 bound before it is quantized and noised (DP-FedAvg).

Unlike ``norm_bound`` nothing proves the clip: an honest client's data is protected by it, a
client that skips it only changes how much its own update moves the sum (docs/privacy.md).
It sits inside the mean stage, so under ``weighting = "examples"`` it clips the weighted vector
and the weights cannot enlarge the sensitivity.
"""
from __future__ import annotations

import math

from .base import Aggregator, ClientMessage, RoundContext, Stage
from .robust import clip_l2, l2_norm

__all__ = ["ClientClipStage"]


class ClientClipStage(Stage):
    """The client half scales its vector to L2 norm at most ``bound``.

    Args:
      inner: the rest of the pipeline (quantization, noise, the sum).
      bound: the L2 bound, positive and finite.

    Raises:
      ValueError: a bound that is not positive and finite.
    """

    name = "client_clip"

    def __init__(self, inner: Aggregator, bound: float):
        super().__init__(inner)
        bound = float(bound)
        if not (math.isfinite(bound) and bound > 0):
            raise ValueError(f"aggregation.client_clip: expected a positive finite bound, got {bound!r}")
        self.bound = bound

    def client(self, message: ClientMessage, ctx: RoundContext) -> ClientMessage:
        v = message.vector
        if v.ndim != 1 or v.dtype.kind != "f":
            raise ValueError(f"{self.name}: client {message.client_id} holds a {v.dtype} vector; "
                             "clip the float update (place this stage outside quantization)")
        vector, was = clip_l2(v, self.bound, l2_norm(v))
        return message.replace(vector=vector) if was else message

    def __repr__(self) -> str:
        return f"ClientClipStage(bound={self.bound})"
