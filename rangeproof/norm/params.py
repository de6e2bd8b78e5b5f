"""Derived parameters of the norm proofs: bit widths, thresholds, slack and soundness error.

The derivations are written out in ``docs/proofs.md``; this module computes them with exact
integer or rational arithmetic where the value enters the protocol (thresholds, bit widths),
and in floating point only for figures that are reported (slack, soundness bits).

L2 (sketch of ``K`` ternary projections, see ``docs/proofs.md``):

* ``T = 2^(beta-1)``: the first 128 projections ``z_k = <p_k, x>`` are range-proven in ``[-T, T)``;
  ``beta`` is the smallest allowed range-proof width with ``d M^2 < T^2`` (Cauchy-Schwarz:
  an honest ``|z_k| <= sqrt(d) M``).
* ``tau = floor((1 + eps) K M^2 / 2)``: the proven bound on ``S = sum_k z_k^2``.
* ``t``: the JL lower-tail deviation with ``exp(-K t^2 / 6) <= 2^-(SOUNDNESS_TARGET + extra)``.
* accepted => ``||x||_2^2 <= (1 + eps) / (1 - t) * M^2`` except with probability
  ``<= MAX_ATTEMPTS * (2^-128 + exp(-K t^2/6) + 2^-GAMMA_BITS + 8/q)``.
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

from ..group import ORDER
from ..range_proof import ALLOWED_BITS, MAX_AGGREGATION

__all__ = [
    "MAX_ATTEMPTS",
    "GAMMA_BITS",
    "SUM_BITS",
    "SOUNDNESS_TARGET",
    "DEFAULT_PROJECTIONS",
    "SMALLNESS_PROJECTIONS",
    "L2Params",
    "LinfParams",
    "l2_params",
    "linf_params",
]

MAX_ATTEMPTS = 1
"""Attempt counters the verifier accepts (bound into the transcript). It is 1: an honest prover
whose sketch exceeds ``tau`` re-randomizes its commitment instead (``C + delta B~``, see
:func:`rangeproof.norm.commit_and_prove`), which gives a fresh projection without revealing that
a retry happened."""

GAMMA_BITS = 96
"""Bit length of the batching coefficients that tie committed projections to the vector."""

SUM_BITS = 64
"""Width of the range proof on ``tau - S`` (so ``tau < 2^SUM_BITS``)."""

SOUNDNESS_TARGET = 64
"""Required soundness: the total error per proof (all attempts) is at most ``2^-64``."""

SMALLNESS_PROJECTIONS = 128
"""How many of the ``K`` projections are range-proven: each one that is catches a vector with a
coordinate of centered size ``>= 2T`` with probability ``>= 1/2`` (error ``2^-128``); once ``x`` is
known to be small, every projection is small without a range proof of its own."""

DEFAULT_PROJECTIONS = 1024
"""Default ``K``: proven L2 slack about 1.56 with a proof of about 9 KB (``docs/proofs.md``)."""

_EPS_SIGMAS = 4  # honest threshold: 4 standard deviations of S above its largest mean


@dataclasses.dataclass(frozen=True)
class L2Params:
    """Parameters of an L2 proof (see the module docstring).

    Attributes:
      projections: ``K``.
      bits: range-proof width ``beta`` for the projections.
      half_range: ``T = 2^(beta - 1)``.
      tau: the proven bound on ``sum_k z_k^2``.
      eps: the honest margin ``eps`` (a rational).
      t: the JL lower-tail deviation.
      slack: ``sqrt((1 + eps) / (1 - t))``: accepted vectors have ``||x||_2 <= slack * M``.
      soundness_bits: ``-log2`` of the total soundness error per proof.
      honest_failure: an upper bound (Cantelli) on one attempt failing for an honest vector.
    """

    projections: int
    bits: int
    half_range: int
    tau: int
    eps: Fraction
    t: float
    slack: float
    soundness_bits: float
    honest_failure: float


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


def l2_params(dim: int, bound: int, projections: int) -> L2Params:
    """Derives the L2 parameters.

    Args:
      dim: ``d``.
      bound: ``M`` (integer units).
      projections: ``K``, a power of two, at least 512.

    Returns:
      The parameters.

    Raises:
      ValueError: ``K`` is not a power of two of at least 512 (smaller ``K`` cannot reach
        2^-64), or the bound is too large for 64-bit range proofs.
    """
    K = projections
    if K < 512 or K & (K - 1) or K > MAX_AGGREGATION:
        raise ValueError(f"L2 proof: projections must be a power of two in [512, {MAX_AGGREGATION}], got {K}")
    bits = next((b for b in ALLOWED_BITS if dim * bound * bound < 1 << (2 * b - 2)), None)
    if bits is None:
        raise ValueError(f"L2 proof: d M^2 = {dim} * {bound}^2 needs more than 64-bit projections")
    T = 1 << (bits - 1)
    eps = Fraction(round(_EPS_SIGMAS * math.sqrt(2.0 / K) * (1 << 20)), 1 << 20)
    tau = (Fraction(K * bound * bound, 2) * (1 + eps)).__floor__()
    if tau >= 1 << SUM_BITS:
        raise ValueError("L2 proof: K M^2 is too large for the 64-bit range proof on tau - S")
    # Wrap-around safety of the accepted region (docs/proofs.md, step 1 and 2).
    assert dim * 2 * T < ORDER // 2 and K * (dim * 2 * T) ** 2 < ORDER
    extra = math.log2(MAX_ATTEMPTS) + 2  # three terms share the budget
    jl_bits = SOUNDNESS_TARGET + extra
    t = math.sqrt(6.0 * math.log(2.0) * jl_bits / K)
    if t >= 1.0:  # pragma: no cover - excluded by K >= 512
        raise ValueError("L2 proof: too few projections for the soundness target")
    slack = math.sqrt(float(1 + eps) / (1.0 - t))
    # gamma (step 0) and delta (step 4) each fail with probability 2^-GAMMA_BITS
    err = MAX_ATTEMPTS * (2.0 ** -SMALLNESS_PROJECTIONS + 2.0 ** -jl_bits + 2 * 2.0 ** -GAMMA_BITS + 8.0 / ORDER)
    honest = 2.0 / (2.0 + K * float(eps) ** 2)
    return L2Params(K, bits, T, tau, eps, t, slack, -math.log2(err), honest)


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
