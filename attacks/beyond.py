"""An attack the paper did not try: craft the update *at* the norm bound, without boosting.

The paper's norm-bounded attacker (PGD + boost) trains inside a small ball of radius M / beta
and multiplies the result by beta, so its update reaches norm M only when the projection was
active. Section 6 of the paper asks whether better attacks exist under a norm bound. This one
spends the whole budget in every attack round and searches a ball that is beta times larger:

1. PGD blocks (benign pass, malicious steps) projected onto the ball of radius M around w_t
   (not M / beta);
2. the result is rescaled to norm exactly M - ``M * d / ||d||`` - and sent as is.

Its effect on the mean is at most M / (C*K) per round, the most any client can move the model
under a norm bound of M; the difference from PGD + boost is only in which direction of norm M
is sent. See docs/attacks.md.
"""
from __future__ import annotations

import numpy as np
import torch

from .pgd import rescale, vector_norm64

__all__ = ["scale_to_norm"]


def scale_to_norm(delta: torch.Tensor | np.ndarray, norm: float, kind: str = "l2"):
    """``delta`` rescaled to norm exactly ``norm`` (up to float rounding).

    Args:
      delta: a flat non-zero vector (torch or numpy).
      norm: the target norm, positive.
      kind: ``"l2"`` or ``"linf"`` (largest absolute coordinate).

    Returns:
      The rescaled vector, same type and dtype.

    Raises:
      ValueError: ``norm`` not positive or ``delta`` is zero.
    """
    if not norm > 0:
        raise ValueError(f"target norm must be positive, got {norm!r}")
    if kind == "linf":
        current = float(delta.abs().max()) if isinstance(delta, torch.Tensor) else float(np.abs(np.asarray(delta)).max())
    elif kind == "l2":
        current = vector_norm64(delta)
    else:
        raise ValueError(f"kind: expected 'l2' or 'linf', got {kind!r}")
    if current == 0:
        raise ValueError("cannot rescale a zero update")
    return rescale(delta, norm / current)
