"""Central noise is a discrete Gaussian on a public grid (third privacy audit, F1).

The float Box-Muller noise put each pair of coordinates on a ring whose radius took only the
values ``sqrt(-2 ln(j 2^-53))``; in the tail the rings were farther apart than a float32 cell, so
an output reachable from one neighbour's sum was reachable from no draw around the other's (an
infinite privacy loss with probability about 9e-6 per release at the paper CNN's size, almost
all of delta). Now the sum is rounded onto ``gamma Z^d`` and integer noise is added: every output
of one neighbour is an output of the other, up to the sampler's paid support tail."""
import math

import numpy as np
import pytest

from fl.aggregation import AggregateResult, Aggregator, ClientMessage, RoundContext, RoundFailed
from fl.aggregation.build import build_pipeline
from fl.aggregation.config import AggregationConfig
from fl.aggregation.discrete_gaussian import MAX_DRAW, MAX_SAMPLER_SIGMA
from fl.aggregation.privacy import CentralGaussianNoiseStage, DpAccounting, fixed_size_rdp_epsilon
from fl.aggregation.sensitivity import GRID_INFLATION, MAX_GRID_INFLATION, central_grid
from fl.config import ConfigError

CENTRAL = {"weighting": "fixed", "client_clip": 1.0, "noise": "central"}


def build(settings, *, clients=4, dim=1000, population=100):
    return build_pipeline(AggregationConfig.from_table(settings), clients_per_round=clients, dim=dim,
                          population=population)


def central_stage(pipeline):
    while not isinstance(pipeline, CentralGaussianNoiseStage):
        pipeline = pipeline.inner
    return pipeline


def ctx(dim, round_index=0, seed=0, clients=4):
    return RoundContext(round_index=round_index, seed=seed, dim=dim, expected_clients=clients)


class FixedSum(Aggregator):
    """An inner sum that returns a given float64 vector (so the release is not cast to float32)."""

    def __init__(self, vector):
        self.vector = vector

    def aggregate(self, messages, ctx):
        return AggregateResult(vector=self.vector.copy(), included=[0], weight_total=1.0)


def neighbouring_sums(dim, seed=5):
    """Two float32 sums whose clients differ in one of norm 1 sending x and -x: shift of norm 2."""
    rng = np.random.default_rng(seed)
    others = rng.normal(0, 0.5, dim)
    x = rng.normal(size=dim)
    x /= np.linalg.norm(x)
    return (others + x).astype(np.float32), (others - x).astype(np.float32)


# ---------------------------------------------------------------- the ring argument, as a check

@pytest.mark.parametrize("std", [0.5, 1.0, 4.0])
def test_a_release_lies_on_the_grid_and_the_neighbours_sum_reaches_it(std):
    """The audit's check, on the real stage: is the released output producible from the
    neighbour's sum? With the float noise, in the tail, it was not (infinite loss)."""
    dim = 20_000
    pipe = build({**CENTRAL, "noise_std": std, "noise_seeded": True}, dim=dim)
    stage = central_stage(pipe)
    s, s_other = neighbouring_sums(dim)
    c = ctx(dim)
    out = CentralGaussianNoiseStage(FixedSum(s.astype(np.float64)), std, seeded=True,
                                    grid=stage.grid).aggregate([], c).vector
    gamma = c.measurements["noise_grid"]
    assert gamma == stage.grid and math.frexp(gamma)[0] == 0.5  # a power of two
    units = out / gamma
    assert np.array_equal(units, np.rint(units))  # every output coordinate lies on gamma Z
    m = units.astype(np.int64)
    k, k_other = np.rint(s.astype(np.float64) / gamma), np.rint(s_other.astype(np.float64) / gamma)
    y, y_other = m - k, m - k_other  # the noise each neighbour needs to produce this output
    sigma = std / gamma
    assert stage.sigma == sigma
    # the neighbour reaches it: the exact sampler's support is every integer (below the 2^52 at
    # which it raises rather than return)
    assert np.abs(y).max() < MAX_DRAW and np.abs(y_other).max() < MAX_DRAW
    # the integer shift is within the accounted sensitivity (grid units), so the exact log ratio of
    # the two discrete-Gaussian probabilities is finite and is what the RDP bound sums over
    shift = k - k_other
    acct = stage.accounting
    assert np.linalg.norm(shift) <= acct.sensitivity / gamma
    log_ratio = (float(np.dot(y_other, y_other)) - float(np.dot(y, y))) / (2 * sigma * sigma)
    assert math.isfinite(log_ratio)
    # with shift u, the ratio is (2 <y, u> + |u|^2) / (2 sigma^2): mean |u|^2 / (2 sigma^2) <= 1/(2 z^2)
    z = std / acct.sensitivity
    assert float(np.dot(shift, shift)) / (2 * sigma * sigma) <= 1 / (2 * z * z)
    assert abs(log_ratio - float(np.dot(shift, shift)) / (2 * sigma * sigma)) < 8 * np.linalg.norm(shift) / sigma


def test_the_pipeline_release_is_the_lattice_point_cast_to_the_sums_dtype():
    dim, std = 5000, 1.0
    pipe = build({**CENTRAL, "noise_std": std, "noise_seeded": True}, dim=dim)
    stage = central_stage(pipe)
    rng = np.random.default_rng(3)
    msgs = [ClientMessage(i, (rng.normal(size=dim) * 0.01).astype(np.float32)) for i in range(4)]
    c = ctx(dim)
    out = stage.aggregate(msgs, c).vector
    total = stage.inner.aggregate(msgs, ctx(dim)).vector
    point = stage.lattice_point(total, ctx(dim).rng("central_noise"))  # the same seeded draw
    assert out.dtype == total.dtype
    np.testing.assert_array_equal(out, (point.astype(np.float64) * stage.grid).astype(total.dtype))


# ---------------------------------------------------------------- the grid term in the sensitivity

def test_the_grid_term_is_in_the_sensitivity_and_rounding_can_use_it_all():
    dim = 10_000
    stage = central_stage(build({**CENTRAL, "noise_std": 1.0}, dim=dim))
    gamma, acct = stage.grid, stage.accounting
    per_client = 1.0 * (1 + 2.0**-20) * (1 + 4 * 2.0**-23)  # client_clip 1, 4 clients' float32 sum
    base = 2 * per_client
    assert acct.sensitivity == pytest.approx(base + gamma * math.sqrt(dim), rel=1e-12)
    assert GRID_INFLATION / 2 < gamma * math.sqrt(dim) / base <= GRID_INFLATION
    # two sums 2 eps gamma sqrt(d) apart straddle the rounding midpoints: the grid points are
    # gamma sqrt(d) apart, far more than the sums; the sensitivity covers it
    j = np.arange(dim) - dim // 2
    eps = 1e-3
    s, s_other = (j + 0.5 - eps) * gamma, (j + 0.5 + eps) * gamma
    k, k_other = np.rint(s / gamma), np.rint(s_other / gamma)
    moved = float(np.linalg.norm(k - k_other)) * gamma
    assert moved == pytest.approx(gamma * math.sqrt(dim))
    assert moved > 100 * float(np.linalg.norm(s - s_other))
    assert moved <= float(np.linalg.norm(s - s_other)) + gamma * math.sqrt(dim)  # the derivation's bound


def test_large_multipliers_coarsen_the_grid_within_the_budget_and_beyond_it_are_refused():
    # the sampler's ceiling: std / gamma <= 2^31; at the paper CNN's size z = 2 needs a grid
    # coarser than the 2^-20 target, still within 2^-10 of the sensitivity
    dim = 1_199_882
    gamma = central_grid(2.0, 4.0, dim)
    assert 4.0 / gamma <= MAX_SAMPLER_SIGMA
    assert GRID_INFLATION < gamma * math.sqrt(dim) / 2.0 <= MAX_GRID_INFLATION
    with pytest.raises(ConfigError, match=r"^aggregation.noise_std: central noise of std 10000 .*more than"):
        build({**CENTRAL, "noise_std": 10_000.0}, dim=dim)
    # and the stage itself refuses a grid the sampler cannot serve, or none with an accountant
    with pytest.raises(ValueError, match="sampler's ceiling"):
        CentralGaussianNoiseStage(FixedSum(np.zeros(4)), 1.0, grid=2.0**-40)
    with pytest.raises(ValueError, match="power of two"):
        CentralGaussianNoiseStage(FixedSum(np.zeros(4)), 1.0, grid=3e-6)
    with pytest.raises(ValueError, match="grid"):
        CentralGaussianNoiseStage(FixedSum(np.zeros(4)), 1.0, accounting=DpAccounting(2.0, 0.1))


def test_the_exact_sampler_pays_no_support_tail():
    dim, std = 1000, 0.5
    acct = central_stage(build({**CENTRAL, "noise_std": std}, dim=dim)).accounting
    # all of delta goes to the curve accountant: nothing is paid for a truncated support
    assert acct.epsilon_of({0.25: 3}) == fixed_size_rdp_epsilon({0.25: 3}, acct.sample_size, acct.population, acct.delta)
    # noise far too small for its shift: the float sampler's bounded support set the tail to 1 and
    # epsilon to inf; the exact sampler reaches every integer, so epsilon is huge but finite
    c = ctx(dim)
    central_stage(build({**CENTRAL, "noise_std": 0.02}, dim=dim)).aggregate(
        [ClientMessage(i, np.zeros(dim, np.float32)) for i in range(4)], c)
    assert math.isfinite(c.measurements["dp_epsilon"]) and c.measurements["dp_epsilon"] > 100


# ---------------------------------------------------------------- what is drawn and recorded

def test_the_noise_on_the_sum_has_the_recorded_std_and_a_gaussian_shape():
    dim, std = 200_000, 0.7
    c = ctx(dim)
    out = build({**CENTRAL, "noise_std": std}, dim=dim).aggregate(
        [ClientMessage(i, np.zeros(dim, np.float32)) for i in range(4)], c).vector.astype(np.float64) * 4
    assert np.std(out) == pytest.approx(std, rel=0.01)  # 4 standard errors: 0.6 %
    assert abs(np.mean(out)) < 4 * std / math.sqrt(dim)
    within = float(np.mean(np.abs(out) <= std))
    assert within == pytest.approx(math.erf(1 / math.sqrt(2)), abs=0.005)  # 0.6827
    assert c.measurements["noise_std_sum"] == std
    assert c.measurements["noise_std_sum_realised"] == pytest.approx(std, rel=1e-12)
    assert c.measurements["noise_seeded"] == 0.0


def test_seeded_noise_is_bit_identical_and_csprng_noise_is_not():
    dim = 3000
    msgs = [ClientMessage(i, np.full(dim, 0.01 * i, np.float32)) for i in range(4)]
    seeded = {**CENTRAL, "noise_std": 1.0, "noise_seeded": True}
    a = build(seeded, dim=dim).aggregate(msgs, ctx(dim)).vector
    b = build(seeded, dim=dim).aggregate(msgs, ctx(dim)).vector
    assert np.array_equal(a, b)
    assert not np.array_equal(a, build(seeded, dim=dim).aggregate(msgs, ctx(dim, round_index=1)).vector)
    assert not np.array_equal(a, build(seeded, dim=dim).aggregate(msgs, ctx(dim, seed=1)).vector)
    fresh = {**CENTRAL, "noise_std": 1.0}
    assert not np.array_equal(build(fresh, dim=dim).aggregate(msgs, ctx(dim)).vector,
                              build(fresh, dim=dim).aggregate(msgs, ctx(dim)).vector)


def test_a_seeded_simulation_is_bit_identical_across_runs():
    import torch

    from test_privacy_release import tiny_simulation

    settings = dict(weighting="fixed", client_clip=1.0, noise="central", noise_std=0.5, noise_seeded=True)
    runs = []
    for _ in range(2):
        sim = tiny_simulation(**settings)
        for _ in range(2):
            sim.run_round()
        runs.append(sim.params.clone())
    assert torch.equal(runs[0], runs[1])


# ---------------------------------------------------------------- a cheater's summand

def test_a_nan_sum_fails_closed_and_an_infinite_one_is_clamped():
    stage = CentralGaussianNoiseStage(FixedSum(np.array([0.0, np.nan])), 1.0, seeded=True)
    with pytest.raises(RoundFailed, match="NaN"):
        stage.aggregate([], ctx(2))
    out = CentralGaussianNoiseStage(FixedSum(np.array([0.0, np.inf, -np.inf])), 1.0, seeded=True).aggregate(
        [], ctx(3)).vector
    assert np.all(np.isfinite(out)) and out[1] > 0 > out[2]
