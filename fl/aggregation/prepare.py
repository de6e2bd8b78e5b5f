"""The client's own preparation of its update, before anything in the pipeline sees it.

An honest client whose local training diverged (a NaN or an infinity in its update) sends the
**zero vector** instead. The pipeline's stages check finiteness and fail the round closed on a
non-finite update, which is right against a client that tampers; but an honest client's data
decides whether its training diverges, so a round that failed for that reason would tell anyone
watching the model sequence (two identical consecutive models) something about that client's
data, outside the noise and outside ``dp_epsilon``. The zero vector is within every clip and norm
bound, so the replacement changes no sensitivity, and the round goes on.

Two places apply it, both client halves: :class:`fl.simulation.Simulation` on each honest
client's raw update before it becomes a message (so before any clip, and before the server's
plaintext baselines read the upload), and :class:`fl.aggregation.MeanStage` on the update once
weighted by the example count (a finite update can overflow float32 there). A client played by
an adversary may skip both; its non-finite upload is refused by the stages, as before.
"""
from __future__ import annotations

import numpy as np

__all__ = ["finite_or_zero"]


def finite_or_zero(vector: np.ndarray) -> tuple[np.ndarray, bool]:
    """``vector`` if it is a float vector with only finite entries, else zeros of its shape and dtype.

    Returns:
      ``(vector or zeros, replaced)``; a non-float vector is returned unchanged.
    """
    if not np.issubdtype(vector.dtype, np.floating) or bool(np.all(np.isfinite(vector))):
        return vector, False
    return np.zeros_like(vector), True
