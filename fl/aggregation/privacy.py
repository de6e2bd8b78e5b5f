"""Central Gaussian noise on the unmasked sum (the paper's "weak DP"), and its accountant.

**Convention (read this before choosing a value).** :class:`CentralGaussianNoiseStage` adds
i.i.d. ``N(0, std^2)`` to every coordinate of the **sum** of the (clipped) client updates, with
``std`` a **standard deviation**. This is what the authors' released code does (its noise
parameter ``mul_factor`` is passed to the DP query as the *sum's* standard deviation, not
multiplied by the clip). The paper's text calls its setting "variance 0.025"; sabre's
``aggregation.noise_std = 0.025`` reproduces the *code* (std 0.025 on the sum). With the fixed
denominator C*K of the authors' code the noise on the *mean* update then has std
``std / (C*K)`` per coordinate. To get a *variance* v on the sum, set ``noise_std = sqrt(v)``.

**Accounting.** One client changes the sum by at most the clip bound M (L2), so the round is
the sampled Gaussian mechanism with noise multiplier ``z = std / M`` and sampling rate
``q = C*K / K``. :func:`gaussian_epsilon` composes it over the rounds with ``dp_accounting``'s
RDP accountant (Poisson subsampling is the accountant's model; the simulation samples a fixed
number without or with replacement, so the figure is the usual approximation). The paper's
weak-DP settings give enormous epsilon: they are a robustness heuristic, not a privacy claim.
"""
from __future__ import annotations

import collections
import dataclasses
import math
from typing import Mapping

import numpy as np

from .base import AggregateResult, Aggregator, RoundContext, Stage

__all__ = ["CentralGaussianNoiseStage", "DpAccounting", "gaussian_epsilon", "composed_gaussian_epsilon", "RDP_ORDERS"]

#: integer Renyi orders used by the accountant (integer orders avoid the slow fractional series)
RDP_ORDERS = tuple(range(2, 65)) + (80, 96, 128, 160, 192, 256, 384, 512, 768, 1024)


def gaussian_epsilon(noise_multiplier: float, sampling_rate: float, rounds: int, delta: float) -> float:
    """Epsilon of ``rounds`` compositions of the Poisson-subsampled Gaussian mechanism.

    Args:
      noise_multiplier: z = noise std on the sum / L2 sensitivity (the clip bound).
      sampling_rate: q, the chance a given client takes part in a round, in (0, 1].
      rounds: number of rounds, >= 0.
      delta: the target delta, in (0, 1).

    Returns:
      The smallest epsilon over :data:`RDP_ORDERS` (``inf`` when ``noise_multiplier`` is 0,
      0 when ``rounds`` is 0).

    Raises:
      ValueError: an argument out of range.
    """
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds!r}")
    return composed_gaussian_epsilon({noise_multiplier: rounds}, sampling_rate, delta)


def composed_gaussian_epsilon(rounds_per_multiplier: Mapping[float, int], sampling_rate: float, delta: float) -> float:
    """Epsilon of rounds of the Poisson-subsampled Gaussian mechanism with differing noise.

    Args:
      rounds_per_multiplier: for each noise multiplier z, the number of rounds run with it.
      sampling_rate: q, in (0, 1].
      delta: the target delta, in (0, 1).

    Returns:
      The smallest epsilon over :data:`RDP_ORDERS` (``inf`` when a round ran with z = 0, 0 when
      there are no rounds).

    Raises:
      ValueError: an argument out of range.
    """
    import dp_accounting  # noqa: PLC0415 - heavy import, only when accounting is asked for
    from dp_accounting import rdp  # noqa: PLC0415

    for z, rounds in rounds_per_multiplier.items():
        if not (z >= 0 and math.isfinite(z)):
            raise ValueError(f"noise multiplier must be a finite number >= 0, got {z!r}")
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds!r}")
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling rate must lie in (0, 1], got {sampling_rate!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
    runs = {z: int(r) for z, r in rounds_per_multiplier.items() if r > 0}
    if not runs:
        return 0.0
    if 0 in runs:
        return math.inf
    accountant = rdp.RdpAccountant(orders=list(RDP_ORDERS))
    for z, rounds in sorted(runs.items()):
        accountant.compose(dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(sampling_rate, dp_accounting.GaussianDpEvent(z)), rounds))
    return float(accountant.get_epsilon(delta))


@dataclasses.dataclass(frozen=True)
class DpAccounting:
    """What the accountant needs besides the noise: sensitivity, sampling rate and delta.

    Attributes:
      sensitivity: L2 bound on one client's contribution to the sum (the clip bound M).
      sampling_rate: q = clients per round / clients in the population.
      delta: the target delta.
    """

    sensitivity: float
    sampling_rate: float
    delta: float = 1e-5

    def __post_init__(self):
        if not (self.sensitivity > 0 and math.isfinite(self.sensitivity)):
            raise ValueError(f"DP sensitivity (aggregation.norm_bound) must be positive, got {self.sensitivity!r}")
        if not 0 < self.sampling_rate <= 1:
            raise ValueError(f"DP sampling rate must lie in (0, 1], got {self.sampling_rate!r}")
        if not 0 < self.delta < 1:
            raise ValueError(f"DP delta must lie in (0, 1), got {self.delta!r}")

    def epsilon(self, sum_std: float, rounds: int) -> float:
        """Epsilon after ``rounds`` rounds with noise std ``sum_std`` on the sum."""
        return gaussian_epsilon(sum_std / self.sensitivity, self.sampling_rate, rounds, self.delta)

    def record(self, ctx: RoundContext, sum_std: float, history: Mapping[int, float] | None = None) -> None:
        """Record ``dp_epsilon`` (after rounds 0..ctx.round_index), ``dp_delta`` and ``dp_noise_multiplier``.

        Args:
          ctx: the round.
          sum_std: this round's noise std on the sum.
          history: the noise std on the sum of every round released so far, by round index
            (this one included), when it differs between rounds; ``None``: every round
            0..ctx.round_index had ``sum_std``.
        """
        ctx.record("dp_noise_multiplier", sum_std / self.sensitivity)
        ctx.record("dp_delta", self.delta)
        if history is None:
            ctx.record("dp_epsilon", self.epsilon(sum_std, ctx.round_index + 1))
            return
        rounds = collections.Counter(std / self.sensitivity for std in history.values())
        ctx.record("dp_epsilon", composed_gaussian_epsilon(rounds, self.sampling_rate, self.delta))


class CentralGaussianNoiseStage(Stage):
    """The server adds ``N(0, std^2)`` per coordinate to the unmasked **sum**.

    Place it directly around the sum (inside the mean stage) so that it noises the sum, as in
    the authors' code. The noise comes from ``ctx.rng("central_noise")``: the same seed gives
    the same noise, bit for bit.

    Args:
      inner: the sum below (plain, or secure followed by dequantization).
      std: standard deviation per coordinate of the noise on the sum (not a variance).
      accounting: if given, ``dp_epsilon`` is recorded each round.

    Raises:
      ValueError: ``std`` negative or not finite.
    """

    name = "central_noise"

    def __init__(self, inner: Aggregator, std: float, accounting: DpAccounting | None = None):
        super().__init__(inner)
        std = float(std)
        if not (std >= 0 and math.isfinite(std)):
            raise ValueError(f"aggregation.noise_std: expected a finite number >= 0, got {std!r}")
        self.std = std
        self.accounting = accounting

    def server(self, result: AggregateResult, ctx: RoundContext) -> AggregateResult:
        ctx.record("noise_std_sum", self.std)
        if self.accounting is not None:
            self.accounting.record(ctx, self.std)
        if self.std == 0:
            return result
        noise = ctx.rng(self.name).normal(0.0, self.std, size=result.vector.shape)
        noised = (result.vector.astype(np.float64) + noise).astype(result.vector.dtype)
        return result.replace(vector=noised)

    def __repr__(self) -> str:
        return f"CentralGaussianNoiseStage(std={self.std})"
