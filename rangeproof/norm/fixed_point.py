"""The fixed point of a norm-bounded update: clip a float vector to ``M``, then ``x = trunc(s v)``.

The norm proofs (:mod:`rangeproof.norm`) are about the integer vector ``x`` this module makes;
truncation toward zero keeps ``|x_j| <= s |v_j|``, so ``x`` is within :func:`integer_bound`
(``ceil(s M)`` in L2, ``floor(s M)`` in L-infinity). The norm-proof pipeline stage
(``fl.aggregation.norm_proof``) and the proof benchmark (:mod:`rangeproof.bench`) both use it.
"""
from __future__ import annotations

import math

import numpy as np

from ..blame import InvalidUpdate
from .l2 import exact_square_norm

__all__ = ["integer_bound", "clip_and_quantize"]


def integer_bound(bound: float, scale: float, norm: str) -> int:
    """The integer bound that the quantized vector satisfies: ``ceil(s M)`` (L2), ``floor(s M)`` (Linf)."""
    v = float(bound) * float(scale)
    return max(1, math.ceil(v) if norm == "l2" else math.floor(v))


def clip_and_quantize(vector: np.ndarray, bound: float, scale: float, norm: str) -> np.ndarray:
    """Clips a float update to ``bound`` in ``norm`` and quantizes it with truncation toward 0.

    Returns:
      The int64 vector (within :func:`integer_bound`).

    Raises:
      InvalidUpdate: (reason ``"non_finite_input"``) NaN or infinite coordinates: NaN has no norm
        and cast to an integer it would become -2^63; the pipeline leaves that client out.
    """
    v = np.asarray(vector, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise InvalidUpdate(f"norm_proof: {int(v.size - np.count_nonzero(np.isfinite(v)))} coordinate(s) "
                            "of the update are NaN or infinite", reason="non_finite_input")
    if norm == "l2":
        n = float(np.linalg.norm(v))
        if n > bound:
            v = v * (bound / n)
    else:
        v = np.clip(v, -bound, bound)
    x = np.trunc(v * scale).astype(np.int64)
    lim = integer_bound(bound, scale, norm)
    # Guard against float rounding at the boundary: shrink until exactly within the bound.
    if norm == "l2":
        sq = exact_square_norm(x)
        while sq > lim * lim:
            x = np.trunc(x * (lim / math.sqrt(sq) * (1 - 1e-12))).astype(np.int64)
            sq = exact_square_norm(x)
    else:
        x = np.clip(x, -lim, lim)
    return x
