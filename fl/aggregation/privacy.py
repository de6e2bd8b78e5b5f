"""Central Gaussian noise on the unmasked sum (the paper's "weak DP"), and its accountant.

**Convention (read this before choosing a value).** :class:`CentralGaussianNoiseStage` adds
i.i.d. noise of standard deviation ``std`` (a discrete Gaussian on a fine public grid, see below)
to every coordinate of the **sum** of the (clipped) client updates, with
``std`` a **standard deviation**. This is what the authors' released code does (its noise
parameter ``mul_factor`` is passed to the DP query as the *sum's* standard deviation, not
multiplied by the clip). The paper's text calls its setting "variance 0.025"; sabre's
``aggregation.noise_std = 0.025`` reproduces the *code* (std 0.025 on the sum). With the fixed
denominator C*K of the authors' code the noise on the *mean* update then has std
``std / (C*K)`` per coordinate. To get a *variance* v on the sum, set ``noise_std = sqrt(v)``.

**The noise is a discrete Gaussian on a grid.** A float Gaussian's outputs (Box-Muller: rings of
radius ``sqrt(-2 ln(j 2^-53))``) include, in the tail, outputs that one neighbouring sum can
produce and the other cannot. So the sum is rounded onto ``grid * Z^d`` (a power of two chosen by
:func:`fl.aggregation.sensitivity.central_grid`, whose ``grid * sqrt(d)`` is in the sensitivity),
integer noise ``N_Z(0, (std / grid)^2)`` is added, and the lattice point is released
(docs/privacy.md, assumption 2).

**Accounting.** The simulation samples a *fixed number* K of the N clients without
replacement. That is accounted as what it is, under the **replace-one** neighbouring relation:
:func:`fixed_size_rdp_epsilon`, Wang, Balle and Kasiviswanathan's (2019) general bound from the
mechanism's RDP curve (Theorem 9), since neither noise here is a continuous Gaussian (the
discrete Gaussian and the sum of discrete Gaussians have the curve ``a / (2 z^2)`` and no more;
dp_accounting's ``SampledWithoutReplacementDpEvent``, the Gaussian-specific Theorem 27, stays as
:func:`fixed_size_gaussian_epsilon` for comparison), with
``z = std / (2 * sensitivity)``: replacing one client's update x (``||x|| <= C``) by x'
(``||x'|| <= C``) moves the sum by ``||x - x'|| <= 2C``, and ``dp_accounting``'s noise multiplier is
the noise std over the L2 sensitivity *under the relation in use* (docs/privacy.md derives it).
The Poisson model with sensitivity C under add/remove would be false here: adding a client that
gets sampled pushes another out, so the sum moves by up to 2C. The sensitivity C is what
:mod:`fl.aggregation.sensitivity` derives from the stages actually built (clip, weighting,
rounding, float32 slack) - never the clip bound alone. :func:`gaussian_epsilon` (Poisson
sampling, add/remove) stays for callers that really sample that way. Both compose over
:data:`RDP_ORDERS`, which reach below 2 (orders near 1 are what small ``z`` needs under Poisson
sampling). Sampling with replacement has no accountant here and is refused with noise.
The paper's weak-DP settings give enormous epsilon: they are a robustness heuristic, not a
privacy claim.

**Randomness.** By default the noise comes from the OS CSPRNG
(:class:`~fl.aggregation.noise_source.CsprngGenerator`); ``seeded=True`` derives it from the run
seed for a reproducible simulation, and every round then records ``noise_seeded = 1``: such
noise can be regenerated and removed by anyone who knows the seed.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import math
from typing import Mapping

import numpy as np

from .base import AggregateResult, Aggregator, RoundContext, RoundFailed, Stage
from .discrete_gaussian import MAX_SAMPLER_SIGMA, sample_discrete_gaussian
from .noise_source import noise_generator

__all__ = ["CentralGaussianNoiseStage", "DpAccounting", "gaussian_epsilon", "composed_gaussian_epsilon",
           "fixed_size_gaussian_epsilon", "fixed_size_rdp_epsilon", "wor_rdp_from_curve", "RDP_ORDERS",
           "SAMPLING_MODELS"]

#: the sampling models the accountant knows: Poisson under add/remove, fixed-size without
#: replacement under replace-one
SAMPLING_MODELS = ("poisson", "fixed_size")

#: Renyi orders of the accountant: fractional orders in (1, 3) for small noise multipliers (at
#: z = 0.1 they cut epsilon 20-fold), integers above for the usual range
RDP_ORDERS = (1.01, 1.02, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.4, 1.5, 1.6, 1.75, 1.9, 2.5) \
    + tuple(range(2, 65)) + (80, 96, 128, 160, 192, 256, 384, 512, 768, 1024)



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


def composed_gaussian_epsilon(rounds_per_multiplier: Mapping[float, int], sampling_rate: float, delta: float,
                              *, unsampled: Mapping[float, int] | None = None) -> float:
    """Epsilon of rounds of the Poisson-subsampled Gaussian mechanism with differing noise.

    Args:
      rounds_per_multiplier: for each noise multiplier z, the number of rounds run with it.
      sampling_rate: q, in (0, 1].
      delta: the target delta, in (0, 1).
      unsampled: releases accounted as the plain Gaussian mechanism (no amplification by
        sampling), by multiplier: releases whose sample was used more than once.

    Returns:
      The smallest epsilon over :data:`RDP_ORDERS` (``inf`` when a round ran with z = 0, 0 when
      there are no rounds).

    Raises:
      ValueError: an argument out of range.
    """
    import dp_accounting  # noqa: PLC0415 - heavy import, only when accounting is asked for
    from dp_accounting import rdp  # noqa: PLC0415

    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling rate must lie in (0, 1], got {sampling_rate!r}")
    return _composed_epsilon(
        rounds_per_multiplier, unsampled, delta, rdp.RdpAccountant(orders=list(RDP_ORDERS)),
        lambda g: dp_accounting.PoissonSampledDpEvent(sampling_rate, g))


def _composed_epsilon(rounds_per_multiplier: Mapping[float, int], unsampled: Mapping[float, int] | None,
                      delta: float, accountant, sampled) -> float:
    """Composes ``sampled(Gaussian(z))`` for each run and the plain Gaussian for each unsampled
    release into ``accountant``; the smallest epsilon at ``delta`` (``inf`` for z = 0, 0 for none)."""
    import dp_accounting  # noqa: PLC0415

    runs, plain, trivial = _releases(rounds_per_multiplier, unsampled, delta)
    if trivial is not None:
        return trivial
    with _quiet_absl():
        for z, rounds in sorted(runs.items()):
            accountant.compose(dp_accounting.SelfComposedDpEvent(sampled(dp_accounting.GaussianDpEvent(z)), rounds))
        for z, rounds in sorted(plain.items()):
            accountant.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(z), rounds))
        return float(accountant.get_epsilon(delta))


def fixed_size_gaussian_epsilon(rounds_per_multiplier: Mapping[float, int], sample_size: int, population: int,
                                delta: float, *, unsampled: Mapping[float, int] | None = None) -> float:
    """Epsilon of rounds of the **continuous** Gaussian mechanism on a fixed-size sample without
    replacement: dp_accounting's ``SampledWithoutReplacementDpEvent`` (Wang-Balle-Kasiviswanathan's
    Gaussian-specific Theorem 27). The pipeline's noises are discrete, and are accounted with
    :func:`fixed_size_rdp_epsilon`, never below this.

    The neighbouring relation is **replace-one** (N is public): ``z`` must be the noise std over
    the sensitivity under replace-one, ``2C`` for a sum of updates of L2 norm at most C.

    Args:
      rounds_per_multiplier: for each noise multiplier z (std / replace-one sensitivity), the
        number of rounds run with it.
      sample_size: K, the clients sampled per round (1 <= K <= N).
      population: N.
      delta: the target delta, in (0, 1).
      unsampled: releases accounted as the plain Gaussian mechanism (no amplification by
        sampling), by multiplier: releases whose sample was used more than once.

    Returns:
      The smallest epsilon over :data:`RDP_ORDERS` (``inf`` when a round ran with z = 0, 0 when
      there are no rounds).

    Raises:
      ValueError: an argument out of range.
    """
    import dp_accounting  # noqa: PLC0415
    from dp_accounting import rdp  # noqa: PLC0415

    if not 1 <= int(sample_size) <= int(population):
        raise ValueError(f"sample size must lie in [1, population], got {sample_size!r} of {population!r}")
    accountant = rdp.RdpAccountant(orders=list(RDP_ORDERS),
                                   neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    return _composed_epsilon(
        rounds_per_multiplier, unsampled, delta, accountant,
        lambda g: dp_accounting.SampledWithoutReplacementDpEvent(int(population), int(sample_size), g))


def wor_rdp_from_curve(curve, sampling_rate: float, orders=RDP_ORDERS) -> np.ndarray:
    """RDP, at each of ``orders``, of a mechanism known only by its RDP curve, run on a uniform
    sample of a fixed size without replacement, under replace-one.

    Wang, Balle and Kasiviswanathan (AISTATS 2019), Theorem 9: if the mechanism satisfies
    ``(j, eps(j))``-RDP for the integers ``j >= 2``, then on a sample of ``m`` of ``n`` (``q = m / n``)
    it satisfies, at each integer order ``a >= 2``,

        eps'(a) <= log(1 + q^2 C(a, 2) min(4 (e^eps(2) - 1), e^eps(2) min(2, (e^eps(inf) - 1)^2))
                        + sum_{j=3}^{a} q^j C(a, j) e^((j - 1) eps(j)) min(2, (e^eps(inf) - 1)^j)) / (a - 1).

    A curve says nothing about ``eps(inf)``, so it is taken as ``inf`` and each ``min(2, ...)`` is
    2. (dp_accounting's ``SampledWithoutReplacementDpEvent`` uses the same paper's strengthened
    Theorem 27, whose terms for ``j >= 3`` are the Gaussian's own moments and do not follow from a
    curve; it strengthens this bound for that Gaussian.) Between integer orders ``(a - 1) eps'(a)``,
    a convex function of ``a`` (the log of a moment) that is 0 at ``a = 1``, lies below the chord
    (WBK's Corollary 10, as dp_accounting interpolates):
    ``(a - 1) eps'(a) <= (1 - w) (k - 1) eps'(k) + w k eps'(k + 1)`` with ``k = floor(a)``,
    ``w = a - k`` (for ``1 < a < 2``: ``eps'(a) <= eps'(2)``). At ``q = 1`` nothing is subsampled
    and the curve itself is returned. (Subsampling never raises the divergence, the Renyi
    divergence being jointly quasi-convex, so ``min(eps'(a), eps(a))`` would also hold; it is left
    out so that the bound stays, order by order, at or above dp_accounting's Gaussian-specific
    one, which the tests check.)

    Args:
      curve: ``curve(a)`` -> the mechanism's RDP at order(s) ``a`` (numpy arrays), under
        replace-one; for the (discrete) Gaussian of multiplier ``z``: ``a / (2 z^2)``.
      sampling_rate: q = m / n, in (0, 1].
      orders: the orders, each > 1.

    Returns:
      ``float64`` array, one bound per order.
    """
    q = float(sampling_rate)
    if not 0 < q <= 1:
        raise ValueError(f"sampling rate must lie in (0, 1], got {sampling_rate!r}")
    orders = np.asarray(orders, dtype=np.float64)
    if np.any(orders <= 1):
        raise ValueError("RDP orders must be > 1")
    if q == 1:
        return np.asarray(curve(orders), dtype=np.float64)
    top = int(math.ceil(float(orders.max())))
    log_fact = np.array([math.lgamma(k + 1.0) for k in range(top + 1)])
    j_all = np.arange(top + 1, dtype=np.float64)
    eps_j = np.zeros(top + 1)
    eps_j[2:] = curve(j_all[2:])
    log_q = math.log(q)
    e2 = float(eps_j[2])
    # min(4 (e^eps2 - 1), 2 e^eps2), in logs (log(e^x - 1) = x + log(1 - e^-x): no overflow at large x)
    log_second = min(math.log(4.0) + e2 + math.log1p(-math.exp(-e2)), math.log(2.0) + e2)

    def at_integer(a: int) -> float:
        log_comb = log_fact[a] - log_fact[: a + 1] - log_fact[a::-1]
        terms = [0.0, 2.0 * log_q + log_comb[2] + log_second]
        if a >= 3:
            j = j_all[3: a + 1]
            terms.extend((math.log(2.0) + (j - 1.0) * eps_j[3: a + 1] + j * log_q + log_comb[3:]).tolist())
        return float(np.logaddexp.reduce(np.array(terms))) / (a - 1)

    integer = {a: at_integer(a) for a in range(2, top + 1)}
    out = np.empty(orders.size)
    for i, a in enumerate(orders):
        k = int(math.floor(a))
        if a == k:
            out[i] = integer[k]
            continue
        w = a - k
        low = (k - 1) * integer[k] if k >= 2 else 0.0
        out[i] = ((1.0 - w) * low + w * k * integer[k + 1]) / (a - 1.0)
    return out


def fixed_size_rdp_epsilon(rounds_per_multiplier: Mapping[float, int], sample_size: int, population: int,
                           delta: float, *, unsampled: Mapping[float, int] | None = None) -> float:
    """Epsilon of rounds of a mechanism with the Gaussian's RDP curve ``a / (2 z^2)`` (the discrete
    Gaussian, and Kairouz et al.'s sum of discrete Gaussians at its tau-corrected ``z``) on a
    fixed-size sample without replacement, under replace-one, from the curve alone
    (:func:`wor_rdp_from_curve`): what the pipeline's accountant uses, since neither of its noises
    is a continuous Gaussian. Never below :func:`fixed_size_gaussian_epsilon` (dp_accounting's
    Gaussian-specific bound for the same parameters).

    Args:
      rounds_per_multiplier: for each noise multiplier z (std / replace-one sensitivity), the
        number of rounds run with it.
      sample_size: K (1 <= K <= N).
      population: N.
      delta: the target delta, in (0, 1).
      unsampled: releases accounted without amplification by sampling (RDP ``a / (2 z^2)`` each),
        by multiplier.

    Returns:
      The smallest epsilon over :data:`RDP_ORDERS` (dp_accounting's RDP-to-DP conversion; ``inf``
      when a round ran with z = 0, 0 when there are no rounds).

    Raises:
      ValueError: an argument out of range.
    """
    from dp_accounting.rdp import rdp_privacy_accountant  # noqa: PLC0415

    if not 1 <= int(sample_size) <= int(population):
        raise ValueError(f"sample size must lie in [1, population], got {sample_size!r} of {population!r}")
    runs, plain, trivial = _releases(rounds_per_multiplier, unsampled, delta)
    if trivial is not None:
        return trivial
    orders = np.array(RDP_ORDERS, dtype=np.float64)
    total = np.zeros(orders.size)
    q = int(sample_size) / int(population)
    for z, rounds in sorted(runs.items()):
        total += rounds * wor_rdp_from_curve(lambda a, z=z: a / (2.0 * z * z), q, orders)
    for z, releases in sorted(plain.items()):
        total += releases * orders / (2.0 * z * z)
    with _quiet_absl():
        eps, _ = rdp_privacy_accountant.compute_epsilon(orders.tolist(), total.tolist(), delta)
    return float(eps)


@contextlib.contextmanager
def _quiet_absl():
    # dp_accounting warns (through absl) for each fractional order whose series does not converge
    # and leaves that order out: the bound over the remaining orders still holds
    absl_log = logging.getLogger("absl")
    level = absl_log.level
    absl_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl_log.setLevel(level)


def _releases(rounds_per_multiplier: Mapping[float, int], unsampled: Mapping[float, int] | None,
              delta: float) -> tuple[dict[float, int], dict[float, int], float | None]:
    """The checked sampled and unsampled releases, and the epsilon when no accountant is needed
    (0 for no release, ``inf`` when one has no noise; ``None`` otherwise)."""
    runs = _checked_runs(rounds_per_multiplier, delta)
    plain = _checked_runs(unsampled or {}, delta)
    if not runs and not plain:
        return runs, plain, 0.0
    if 0 in runs or 0 in plain:
        return runs, plain, math.inf
    return runs, plain, None


def _checked_runs(rounds_per_multiplier: Mapping[float, int], delta: float) -> dict[float, int]:
    for z, rounds in rounds_per_multiplier.items():
        if not (z >= 0 and math.isfinite(z)):
            raise ValueError(f"noise multiplier must be a finite number >= 0, got {z!r}")
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
    return {z: int(r) for z, r in rounds_per_multiplier.items() if r > 0}


@dataclasses.dataclass(frozen=True)
class DpAccounting:
    """What the accountant needs besides the noise: sensitivity, sampling rate and delta.

    Build it with :func:`fl.aggregation.sensitivity.accounting_for`, which derives the
    sensitivity from the pipeline's stages.

    Attributes:
      sensitivity: L2 sensitivity of the sum **under the accountant's neighbouring relation**, in
        the units of the noise: C under add/remove (``"poisson"``), 2C under replace-one
        (``"fixed_size"``), with C the bound on one client's contribution.
      sampling_rate: q = clients per round / clients in the population.
      delta: the target delta (all of it goes to the accountant: the exact discrete Gaussian
        sampler leaves no tail outside the analysis to pay out of it).
      sampling: ``"poisson"`` (each client independently with probability q; add/remove) or
        ``"fixed_size"`` (``sample_size`` of ``population`` without replacement; replace-one).
      population: N (``"fixed_size"``).
      sample_size: K (``"fixed_size"``).
      rereleased: ``(round, multiplier)`` of each release that a resumed run recomputes with
        fresh noise (rows a killed run wrote after its last checkpoint; docs/privacy.md). Such a
        round's sample was used more than once, so every release of it, these and the current
        run's, is accounted as the plain Gaussian mechanism, without amplification by sampling
        (as if the adversary knew that round's sample).
    """

    sensitivity: float
    sampling_rate: float
    delta: float = 1e-5
    sampling: str = "poisson"
    population: int | None = None
    sample_size: int | None = None
    rereleased: tuple[tuple[int, float], ...] = ()

    def __post_init__(self):
        if not (self.sensitivity > 0 and math.isfinite(self.sensitivity)):
            raise ValueError(f"DP sensitivity must be positive and finite, got {self.sensitivity!r}")
        if not 0 < self.sampling_rate <= 1:
            raise ValueError(f"DP sampling rate must lie in (0, 1], got {self.sampling_rate!r}")
        if not 0 < self.delta < 1:
            raise ValueError(f"DP delta must lie in (0, 1), got {self.delta!r}")
        if self.sampling not in SAMPLING_MODELS:
            raise ValueError(f"DP sampling must be one of {SAMPLING_MODELS}, got {self.sampling!r}")
        if self.sampling == "fixed_size" and not (
                self.population and self.sample_size and 1 <= self.sample_size <= self.population):
            raise ValueError("DP fixed-size sampling needs 1 <= sample_size <= population, got "
                             f"{self.sample_size!r} of {self.population!r}")

    def epsilon(self, sum_std: float, rounds: int) -> float:
        """Epsilon after ``rounds`` rounds with noise std ``sum_std`` on the sum."""
        return self.epsilon_of({sum_std / self.sensitivity: rounds})

    def epsilon_of(self, rounds_per_multiplier: Mapping[float, int],
                   unsampled: Mapping[float, int] | None = None) -> float:
        """Epsilon of rounds run with the given noise multipliers, and of ``unsampled`` releases
        accounted without amplification."""
        left = self.delta
        if self.sampling == "fixed_size":  # neither noise is a continuous Gaussian: the bound from the curve
            return fixed_size_rdp_epsilon(rounds_per_multiplier, self.sample_size, self.population, left,
                                               unsampled=unsampled)
        return composed_gaussian_epsilon(rounds_per_multiplier, self.sampling_rate, left, unsampled=unsampled)

    def epsilon_by_round(self, multipliers: Mapping[int, float]) -> float:
        """Epsilon of the releases of the rounds in ``multipliers`` (round index -> multiplier)
        and of :attr:`rereleased`: rounds released more than once are accounted unsampled."""
        reused = {int(r) for r, _ in self.rereleased}
        sampled = collections.Counter(z for r, z in multipliers.items() if int(r) not in reused)
        plain = collections.Counter(z for r, z in multipliers.items() if int(r) in reused)
        plain.update(z for _, z in self.rereleased)
        return self.epsilon_of(sampled, plain)

    def record(self, ctx: RoundContext, sum_std: float, history: Mapping[int, float] | None = None) -> None:
        """Record the round's accounting from the noise std on the sum (see :meth:`record_multiplier`)."""
        hist = None if history is None else {r: std / self.sensitivity for r, std in history.items()}
        self.record_multiplier(ctx, sum_std / self.sensitivity, hist)

    def record_multiplier(self, ctx: RoundContext, multiplier: float,
                          history: Mapping[int, float] | None = None) -> None:
        """Record ``dp_epsilon`` (after rounds 0..ctx.round_index), ``dp_delta``, ``dp_sensitivity``
        and ``dp_noise_multiplier``.

        Args:
          ctx: the round.
          multiplier: this round's noise multiplier (noise std on the sum / sensitivity).
          history: the multiplier of every round released so far, by round index (this one
            included), when it differs between rounds; ``None``: every round 0..ctx.round_index
            had ``multiplier``.
        """
        ctx.record("dp_noise_multiplier", multiplier)
        ctx.record("dp_sensitivity", self.sensitivity)
        ctx.record("dp_delta", self.delta)
        if history is None:
            if not self.rereleased:
                ctx.record("dp_epsilon", self.epsilon_of({multiplier: ctx.round_index + 1}))
                return
            history = {r: multiplier for r in range(ctx.round_index + 1)}
        ctx.record("dp_epsilon", self.epsilon_by_round(history))


#: the grid value of a sum coordinate is clamped to this magnitude before rounding (only a
#: cheating client's summand gets there; clamping to a box is a projection, so it never moves
#: two sums apart), so that it plus the noise (below 2^52, or the sampler raises) is exact in float64
GRID_CLAMP = 2.0**52


class CentralGaussianNoiseStage(Stage):
    """The server adds discrete Gaussian noise of std ``std`` per coordinate to the unmasked
    **sum**, on the public grid ``grid * Z^d``.

    The sum ``s`` is rounded onto the grid, ``k = round(s / grid)`` (an int64 vector; ``grid``
    is a power of two, so the division is exact), integer noise ``y ~ N_Z(0, (std / grid)^2)``
    i.i.d. is added with the exact sampler
    :func:`~fl.aggregation.discrete_gaussian.sample_discrete_gaussian`, and ``(k + y) * grid``
    is released (exact in float64, then in the sum's dtype: post-processing). Neighbouring sums
    then give outputs on the same lattice, each reachable from both; a float Gaussian gave outputs one neighbour could not produce
    (docs/privacy.md, assumption 2). The rounding moves the sums by up to ``grid sqrt(d)``
    more: :class:`fl.aggregation.sensitivity.Sensitivity` puts that term into the sensitivity and
    chooses ``grid`` (:func:`fl.aggregation.sensitivity.central_grid`); ``build_pipeline`` passes
    both. Place it directly around the sum (inside the mean stage). The noise comes from the OS
    CSPRNG, or with ``seeded=True`` from ``ctx.rng("central_noise")`` (the same seed gives the
    same noise, bit for bit; anyone with the seed can remove it).

    Args:
      inner: the sum below (plain, or secure followed by dequantization).
      std: standard deviation per coordinate of the noise on the sum (not a variance).
      accounting: if given, ``dp_epsilon`` is recorded each round; its sensitivity must include
        the grid's term ``grid sqrt(dim)``.
      seeded: draw the noise from the run seed (reproducible simulation only).
      grid: the grid's spacing, a power of two with ``std / grid`` at most the sampler's ceiling
        ``MAX_SAMPLER_SIGMA``; needed with ``accounting``. Without: the finest such power of two.
      dim: the vector length (the grid's term grows with it); needed with ``accounting``.

    Raises:
      ValueError: ``std`` negative or not finite; ``grid`` not a positive power of two, or too
        fine for the sampler; ``accounting`` without ``grid`` and ``dim``.
    """

    name = "central_noise"

    def __init__(self, inner: Aggregator, std: float, accounting: DpAccounting | None = None, *,
                 seeded: bool = False, grid: float | None = None, dim: int | None = None):
        super().__init__(inner)
        std = float(std)
        if not (std >= 0 and math.isfinite(std)):
            raise ValueError(f"aggregation.noise_std: expected a finite number >= 0, got {std!r}")
        self.std = std
        self.seeded = bool(seeded)
        if accounting is not None and std > 0 and (grid is None or not (dim and int(dim) > 0)):
            raise ValueError("central noise: with an accountant the grid and the vector length are needed, and the "
                             "accountant's sensitivity must include the grid's rounding (build the stage with "
                             "fl.aggregation.build.build_pipeline, which takes both from fl.aggregation.sensitivity)")
        if grid is None:
            grid = 2.0 ** math.ceil(math.log2(std / MAX_SAMPLER_SIGMA)) if std > 0 else 1.0
            while std / grid > MAX_SAMPLER_SIGMA:
                grid *= 2.0
        grid = float(grid)
        if not (grid > 0 and math.isfinite(grid) and math.frexp(grid)[0] == 0.5):
            raise ValueError(f"central noise: the grid must be a positive power of two, got {grid!r}")
        if std / grid > MAX_SAMPLER_SIGMA:
            raise ValueError(f"aggregation.noise_std: std {std:g} on a grid of {grid:g} is {std / grid:.4g} "
                             f"grid units, above the discrete Gaussian sampler's ceiling {MAX_SAMPLER_SIGMA:.4g}")
        self.grid = grid
        #: the discrete Gaussian's parameter, in grid units
        self.sigma = std / grid
        self.dim = None if dim is None else int(dim)
        self.accounting = accounting

    def lattice_point(self, vector: np.ndarray, rng) -> np.ndarray:
        """``round(vector / grid) + y`` as int64, ``y`` the discrete Gaussian noise (in grid units).

        Raises:
          RoundFailed: (``"nonfinite_sum"``) a NaN in the sum (only a cheating client's summand
            can put one there).
        """
        scaled = np.asarray(vector, dtype=np.float64) / self.grid  # exact: the grid is a power of two
        if np.isnan(scaled).any():
            raise RoundFailed("nonfinite_sum", f"{self.name}: the sum holds NaN; nothing is released")
        lattice = np.rint(np.clip(scaled, -GRID_CLAMP, GRID_CLAMP)).astype(np.int64)
        return lattice + sample_discrete_gaussian(rng, self.sigma, lattice.size).reshape(lattice.shape)

    def server(self, result: AggregateResult, ctx: RoundContext) -> AggregateResult:
        ctx.record("noise_std_sum", self.std)
        ctx.record("noise_seeded", float(self.seeded))
        if self.std == 0:
            if self.accounting is not None:
                self.accounting.record(ctx, 0.0)
            return result
        rng = noise_generator(ctx, self.name, None, seeded=self.seeded)
        point = self.lattice_point(result.vector, rng)
        # the std the noise has on the lattice (the discrete Gaussian's variance is within 1e-9 of
        # sigma^2 for sigma >= 2), and its spacing
        ctx.record("noise_std_sum_realised", self.sigma * self.grid)
        ctx.record("noise_grid", self.grid)
        if self.accounting is not None:
            self.accounting.record(ctx, self.sigma * self.grid)
        noised = (point.astype(np.float64) * self.grid).astype(result.vector.dtype)
        return result.replace(vector=noised)

    def __repr__(self) -> str:
        return f"CentralGaussianNoiseStage(std={self.std}, grid={self.grid!r}, seeded={self.seeded})"
