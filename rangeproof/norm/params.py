"""Derived parameters of the norm proofs: bit widths, bounds and soundness error.

The derivations are written out in ``docs/proofs.md``; this module computes them with exact
integer arithmetic where the value enters the protocol (bit widths, ranges), and in floating
point only for figures that are reported (soundness bits).

L2 (exact, ``docs/proofs.md``, "L2 proof"):

* ``T = 2^(beta-1)``: the :data:`SMALLNESS_PROJECTIONS` projections ``z_k = <p_k, x>`` are
  range-proven in ``[-T, T)``; ``beta`` is the smallest allowed range-proof width with
  ``d M^2 < T^2`` (Cauchy-Schwarz: an honest ``|z_k| <= sqrt(d) M``).
* accepted => every centered ``|x_j| <= 2T - 1`` (error ``2^-128``), so
  ``sum_j x_j^2 <= d (2T - 1)^2 <= q - 2^64`` never wraps, and the range proof on
  ``M^2 - <x, x>`` in ``[0, 2^64)`` gives ``sum_j x_j^2 <= M^2`` over the integers.
* soundness error per proof ``<= 2^-128 + 2^-GAMMA_BITS + (sum_j (5 k_j + 2) + p + 16) / q``
  over the norm-linear argument's chunks of ``2^(k_j)`` coordinates and its ``p`` padding
  coordinates (plus the range proofs' own ``O(lg(n m) / q)`` terms, folded into the last one).
"""
from __future__ import annotations

import dataclasses
import math

from ..group import ORDER
from ..range_proof import ALLOWED_BITS, MAX_AGGREGATION
from .norm_linear import chunk_layout

__all__ = [
    "GAMMA_BITS",
    "SUM_BITS",
    "SOUNDNESS_TARGET",
    "SMALLNESS_PROJECTIONS",
    "MAX_L2_BOUND",
    "L2Params",
    "LinfParams",
    "l2_params",
    "linf_params",
]

GAMMA_BITS = 96
"""Bit length of the batching coefficients that tie the range-checked projections to the vector."""

SUM_BITS = 64
"""Width of the range proof on ``M^2 - <x, x>`` (so ``M^2 < 2^SUM_BITS``)."""

SOUNDNESS_TARGET = 64
"""Required soundness: the total error per proof is at most ``2^-64``."""

SMALLNESS_PROJECTIONS = 128
"""How many ternary projections are range-proven: each catches a vector with a coordinate of
centered size ``>= 2T`` with probability ``>= 1/2`` (error ``2^-128``)."""

MAX_L2_BOUND = (1 << 31) - 1
"""Largest L2 bound ``M``: ``M^2 < 2^64`` for the range proof on ``M^2 - S``, and every coordinate
of an in-bound vector below ``2^31`` for the prover's exact projection (:meth:`.Projection.apply`)."""


@dataclasses.dataclass(frozen=True)
class L2Params:
    """Parameters of an (exact) L2 proof (see the module docstring).

    Attributes:
      projections: ``R``, the number of range-checked projections (:data:`SMALLNESS_PROJECTIONS`).
      bits: range-proof width ``beta`` for the projections.
      half_range: ``T = 2^(beta - 1)``.
      bound_sq: ``M^2``, the proven bound on ``sum_j x_j^2``.
      bound_factor: accepted vectors have ``||x||_2 <= bound_factor * M``: 1.0 (exact).
      soundness_bits: ``-log2`` of the total soundness error per proof.
    """

    projections: int
    bits: int
    half_range: int
    bound_sq: int
    bound_factor: float
    soundness_bits: float


@dataclasses.dataclass(frozen=True)
class LinfParams:
    """Parameters of an L-infinity proof.

    Attributes:
      bits: range-proof width ``beta`` with ``2 B < 2^beta``.
      values: number of range-proven values ``m`` (``2 d`` padded to a power of two).
      soundness_bits: ``-log2`` of the soundness error (batching and challenges).
    """

    bits: int
    values: int
    soundness_bits: float


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def l2_params(dim: int, bound: int) -> L2Params:
    """Derives the L2 parameters.

    Args:
      dim: ``d``.
      bound: ``M`` (integer units).

    Returns:
      The parameters.

    Raises:
      ValueError: ``M^2`` does not fit the 64-bit range proof, or ``d M^2`` needs more than
        64-bit projections.
    """
    if not 1 <= bound <= MAX_L2_BOUND:
        raise ValueError(f"L2 proof: the bound must be in [1, 2^31), got {bound}")
    bits = next((b for b in ALLOWED_BITS if dim * bound * bound < 1 << (2 * b - 2)), None)
    if bits is None:
        raise ValueError(f"L2 proof: d M^2 = {dim} * {bound}^2 needs more than 64-bit projections")
    T = 1 << (bits - 1)
    # No wrap-around in the accepted region (docs/proofs.md, "L2 proof", step 5).
    if dim * (2 * T - 1) ** 2 > ORDER - (1 << SUM_BITS):  # pragma: no cover - d < 2^31, T <= 2^63
        raise ValueError("L2 proof: d (2T)^2 reaches q")
    layout = chunk_layout(dim)
    extraction = sum(5 * (c.size.bit_length() - 1) + 2 for c in layout)  # 6-special-sound rounds
    padding = layout[-1].size - layout[-1].length
    err = (2.0 ** -SMALLNESS_PROJECTIONS + 2.0 ** -GAMMA_BITS
           + (extraction + padding + 16) / ORDER)
    return L2Params(SMALLNESS_PROJECTIONS, bits, T, bound * bound, 1.0, -math.log2(err))


def linf_params(dim: int, bound: int) -> LinfParams:
    """Derives the L-infinity parameters.

    Args:
      dim: ``d`` (``2 d`` range-proven values must fit one aggregated proof).
      bound: ``B`` (integer units).

    Returns:
      The parameters.

    Raises:
      ValueError: ``2 B`` needs more than 64 bits, or ``2 d`` exceeds the aggregation limit.
    """
    bits = next((b for b in ALLOWED_BITS if 2 * bound < 1 << b), None)
    if bits is None:
        raise ValueError(f"L-infinity proof: bound {bound} needs more than 63 bits")
    values = _pow2_at_least(2 * dim)
    if values > MAX_AGGREGATION:
        raise ValueError(f"L-infinity proof: dimension {dim} needs {values} range-proven values, "
                         f"above the aggregation limit {MAX_AGGREGATION} (d <= {MAX_AGGREGATION // 2})")
    err = 2.0 ** -GAMMA_BITS + 8.0 / ORDER
    return LinfParams(bits, values, -math.log2(err))
