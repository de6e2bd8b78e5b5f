"""The privacy claims hold for what the pipeline computes: one test per finding of the review
(sensitivity under weighting, rounding and repeats; distributed noise that is really there and
does not wrap; noise nobody can regenerate; a clip under distributed noise), and a second
accountant (dp_accounting's PLD) that never finds our epsilon too small."""
import logging
import math

import numpy as np
import pytest
from dp_accounting.pld import privacy_loss_distribution as pld_lib

from fl.aggregation import ClientMessage, PlainSum, RoundContext
from fl.aggregation.build import build_pipeline
from fl.aggregation.config import AggregationConfig
from fl.aggregation.distributed_noise import DistributedDiscreteGaussianStage, ddg_tau
from fl.aggregation.privacy import (RDP_ORDERS, DpAccounting, fixed_size_gaussian_epsilon, fixed_size_rdp_epsilon,
                                    gaussian_epsilon, wor_rdp_from_curve)
from fl.aggregation.sensitivity import FLOAT32_SLACK
from fl.config import ConfigError
from secagg.quantize import WRAP_SIGMAS, QuantizationSpec

DELTA = 1e-5


def build(settings, *, clients=30, dim=2000, population=3383, max_weight=None, with_replacement=False):
    if max_weight is not None and settings.get("weighting", "examples") == "examples":
        settings = {"max_weight": max_weight, **settings}  # the public cap on the weights
    return build_pipeline(AggregationConfig.from_table(settings), clients_per_round=clients, dim=dim,
                          population=population, with_replacement=with_replacement)


def stages(pipeline):
    while pipeline is not None:
        yield pipeline
        pipeline = getattr(pipeline, "inner", None)


def stage_of(pipeline, cls_name):
    return next(s for s in stages(pipeline) if type(s).__name__ == cls_name)


def ctx(dim, clients=30, round_index=0, seed=0):
    return RoundContext(round_index=round_index, seed=seed, dim=dim, expected_clients=clients)


def pld_epsilon(z, q, rounds, delta, *, sensitivities=None, probs=None):
    """A lower bound on the true epsilon (PLD, optimistic rounding), for our value to exceed."""
    logging.getLogger().setLevel(logging.ERROR)
    if sensitivities is None:
        pld = pld_lib.from_gaussian_mechanism(z, sampling_prob=q, pessimistic_estimate=False,
                                              value_discretization_interval=1e-2, use_connect_dots=False)
    else:
        pld = pld_lib.from_mixture_gaussian_mechanism(z, sensitivities, probs, pessimistic_estimate=False,
                                                      value_discretization_interval=1e-2, use_connect_dots=False)
    return pld.self_compose(rounds).get_epsilon_for_delta(delta)


# ---------------------------------------------------------------- the second accountant

@pytest.mark.parametrize("z", [0.1, 0.3, 0.7, 1.0, 2.0])
@pytest.mark.parametrize("q", [0.01, 0.1, 1.0])
@pytest.mark.parametrize("rounds, delta", [(1, 1e-5), (50, 1e-5), (200, 1e-3)])
def test_our_epsilon_is_never_below_the_pld_accountant(z, q, rounds, delta):
    ours = gaussian_epsilon(z, q, rounds, delta)
    assert ours >= pld_epsilon(z, q, rounds, delta)


@pytest.mark.parametrize("z, k, n, rounds", [(0.5, 4, 20, 1), (1.0, 30, 3383, 50), (2.0, 300, 3383, 20),
                                             (1.0, 30, 30, 3)])
def test_fixed_size_epsilon_is_never_below_the_pld_of_a_replace_one_pair(z, k, n, rounds):
    # replace-one pair: one client sends x in D and x' = -x in D'; it is sampled with probability
    # k/n and then the sum differs by ||x - x'||, the replace-one sensitivity that z is measured in
    ours = fixed_size_gaussian_epsilon({z: rounds}, k, n, DELTA)
    assert ours >= pld_epsilon(z, k / n, rounds, DELTA)


def test_orders_below_two_tighten_small_noise_multipliers():
    assert min(RDP_ORDERS) < 1.05
    ours = gaussian_epsilon(0.1, 30 / 3383, 100, DELTA)
    truth = pld_epsilon(0.1, 30 / 3383, 100, DELTA)
    # integer orders only: 9065 here, 27x the PLD value; the fractional orders bring it within 1.3x
    assert truth <= ours < 1.3 * truth


# ---------------------------------------------------------------- 1. weighting

def test_examples_weighting_multiplies_the_server_clip_in_the_sensitivity():
    pipe = build({"weighting": "examples", "server_clip": 1.0, "noise": "central", "noise_std": 10.0,
                  "noise_seeded": True}, max_weight=500.0, dim=50)
    acct = stage_of(pipe, "CentralGaussianNoiseStage").accounting
    assert acct.sensitivity >= 500.0
    # what one client with 500 examples really moves the sum by: drop it, compare (same noise)
    rng = np.random.default_rng(0)
    msgs = [ClientMessage(i, rng.normal(size=50).astype(np.float32), weight=10.0) for i in range(29)]
    big = ClientMessage(99, (rng.normal(size=50) * 100).astype(np.float32), weight=500.0)
    c1, c2 = ctx(50), ctx(50)
    # with noise the mean divides by the public K * max_weight
    with_big = pipe.aggregate(msgs + [big], c1).vector.astype(np.float64) * (30 * 500)
    without = pipe.aggregate(msgs, c2).vector.astype(np.float64) * (30 * 500)
    moved = float(np.linalg.norm(with_big - without))
    assert moved == pytest.approx(500.0, rel=1e-3) and moved <= acct.sensitivity
    assert c1.measurements["dp_noise_multiplier"] == pytest.approx(10.0 / acct.sensitivity)


def test_examples_weighting_without_the_largest_weight_is_refused():
    with pytest.raises(ConfigError, match="^aggregation.max_weight"):
        build({"weighting": "examples", "server_clip": 1.0, "noise": "central", "noise_std": 1.0})


# ---------------------------------------------------------------- 2. noise that rounds to nothing

def test_distributed_noise_too_small_per_client_is_refused():
    # 8 bits, std 0.2, 30 clients: each client's share was 0.146 integer units, every draw 0
    with pytest.raises(ConfigError, match="^aggregation.noise_std: each client's share"):
        build({"weighting": "fixed", "quantize": True, "quant_bits": 8, "noise": "distributed", "noise_std": 0.2})


@pytest.mark.parametrize("bits", [8, 10, 12, 16, 32])
def test_distributed_noise_on_the_sum_is_what_is_recorded_or_refused(bits):
    dim, n, std = 10_000, 30, 0.2
    settings = {"weighting": "fixed", "quantize": True, "quant_bits": bits, "noise": "distributed",
                "noise_std": std, "client_clip": 1.0, "noise_seeded": True}
    try:
        pipe = build(settings, dim=dim)
    except ConfigError as e:
        assert str(e).startswith("aggregation.noise_std")
        assert bits <= 10
        return
    c = ctx(dim)
    out = pipe.aggregate([ClientMessage(i, np.zeros(dim, np.float32)) for i in range(n)], c)
    measured = float(np.std(out.vector.astype(np.float64) * n))  # fixed mean: the sum / n
    assert measured == pytest.approx(std, rel=0.03)
    assert c.measurements["noise_std_sum_realised"] == pytest.approx(std, rel=1e-9)
    assert c.measurements["noise_std_sum_drawn"] == pytest.approx(measured, rel=0.03)


def test_drawn_noise_is_measured_without_integer_overflow():
    # 32 bits, 4 clients: each share is about 8e7 integer units; the squares overflow int64 sums
    dim = 20_000
    pipe = build({"weighting": "fixed", "quantize": True, "noise": "distributed", "noise_std": 0.5,
                  "client_clip": 1.0}, clients=4, dim=dim)
    assert stage_of(pipe, "DistributedDiscreteGaussianStage").client_sigma > 3e7
    c = ctx(dim, clients=4)
    pipe.aggregate([ClientMessage(i, np.zeros(dim, np.float32)) for i in range(4)], c)
    assert c.measurements["noise_std_sum_drawn"] == pytest.approx(0.5, rel=0.03)


def test_a_client_that_skips_its_noise_is_not_counted_as_noise():
    class SkipNoise:
        def client_step(self, stage, message, ctx, honest):
            if isinstance(stage, DistributedDiscreteGaussianStage):
                return message  # uploads without its share
            return honest(message, ctx)

    dim, n = 1000, 10
    pipe = build({"weighting": "fixed", "quantize": True, "noise": "distributed", "noise_std": 1.0,
                  "client_clip": 1.0}, clients=n, dim=dim)
    c = ctx(dim, clients=n)
    msgs = [ClientMessage(i, np.zeros(dim, np.float32), adversary=SkipNoise() if i < 4 else None) for i in range(n)]
    pipe.aggregate(msgs, c)
    assert c.measurements["noise_clients"] == 6
    assert c.measurements["noise_std_sum_realised"] == pytest.approx(math.sqrt(6 / 10), rel=1e-9)


def test_tau_term_is_folded_into_the_multiplier_and_large_tau_is_refused():
    acct = DpAccounting(sensitivity=1.0, sampling_rate=0.01)
    # sigma 1.2 per client: tau small but not negligible at d = 10^5
    stage = DistributedDiscreteGaussianStage(PlainSum(), 1.2 * math.sqrt(30) / 100, scale=100.0, num_clients=30,
                                             modulus=2**32, accounting=acct, dim=10**5)
    z = math.sqrt(30) * 1.2 / 100
    tau = ddg_tau(1.2, 30)
    assert tau > 0
    assert stage.effective_multiplier(30) == pytest.approx((1 / z**2 + tau * 1e5 / 2) ** -0.5)
    assert stage.effective_multiplier(30) < z
    with pytest.raises(ValueError, match="tau"):
        DistributedDiscreteGaussianStage(PlainSum(), 1.05 * math.sqrt(30) / 100, scale=100.0, num_clients=30,
                                         modulus=2**32, accounting=acct, dim=10**8)


# ---------------------------------------------------------------- 3. rounding in the sensitivity

@pytest.mark.parametrize("bits", [12, 16, 32])
def test_stochastic_rounding_inflation_is_in_the_sensitivity(bits):
    dim = 10_000
    pipe = build({"weighting": "fixed", "quantize": True, "quant_bits": bits, "server_clip": 1.0,
                  "noise": "central", "noise_std": 1.0}, dim=dim)
    spec = stage_of(pipe, "QuantizeStage").spec
    acct = stage_of(pipe, "CentralGaussianNoiseStage").accounting
    assert acct.sensitivity >= 1.0 + math.sqrt(dim) / spec.scale
    # a clipped update of norm 1 whose coordinates all round up: its quantized norm exceeds 1
    x = np.full(dim, 1.0 / math.sqrt(dim))
    y = x * spec.scale
    worst = np.where(y - np.floor(y) > 0, np.ceil(y), y) / spec.scale
    assert np.linalg.norm(worst) > 1.0 and np.linalg.norm(worst) <= acct.sensitivity


# ---------------------------------------------------------------- 4. headroom for noise

def test_levels_leave_room_for_the_noise():
    for bits, n, r, std in [(32, 30, 1.0, 1.0), (16, 30, 1.0, 1.0), (20, 100, 0.5, 0.3), (64, 30, 1.0, 5.0)]:
        spec = QuantizationSpec(bits, r, n, noise_std=std)
        assert n * spec.levels + WRAP_SIGMAS * std * spec.scale <= 2 ** (bits - 1) - 1
        if bits < 64:  # at 64 bits the 2^52 cap on the levels already leaves the room
            assert spec.levels < QuantizationSpec(bits, r, n).levels
    assert 2 * math.exp(-WRAP_SIGMAS**2 / 2) == pytest.approx(2.0**-20)


def test_a_sum_at_the_edge_of_the_range_does_not_wrap_under_noise():
    dim, n = 20_000, 30
    pipe = build({"weighting": "fixed", "quantize": True, "quant_bits": 16, "noise": "distributed",
                  "noise_std": 1.0}, dim=dim)
    out = pipe.aggregate([ClientMessage(i, np.ones(dim, np.float32)) for i in range(n)], ctx(dim))
    total = out.vector.astype(np.float64) * n
    # every client at +r: the sum is n r = 30 plus noise of std 1; a wrap would flip it to about -30
    assert total.min() > 30 - 8 and total.max() < 30 + 8


# ---------------------------------------------------------------- 5. noise nobody can regenerate

@pytest.mark.parametrize("noise", ["central", "distributed"])
def test_default_noise_cannot_be_regenerated_from_the_seed(noise):
    dim, n = 8_000, 30
    settings = {"weighting": "fixed", "quantize": True, "noise": noise, "noise_std": 1.0, "client_clip": 1.0}
    zeros = [ClientMessage(i, np.zeros(dim, np.float32)) for i in range(n)]
    c_default, c_seeded = ctx(dim), ctx(dim)
    default = build(settings, dim=dim).aggregate(zeros, c_default).vector.astype(np.float64) * n
    seeded = build({**settings, "noise_seeded": True}, dim=dim).aggregate(zeros, c_seeded).vector.astype(np.float64) * n
    # what a server that knows the seed regenerates is the seeded noise: it removes nothing from the default
    assert np.std(default - seeded) == pytest.approx(math.sqrt(2.0), rel=0.05)
    assert c_default.measurements["noise_seeded"] == 0.0 and c_seeded.measurements["noise_seeded"] == 1.0
    again = build(settings, dim=dim).aggregate(zeros, ctx(dim)).vector
    assert not np.array_equal(again, default / n)


# ---------------------------------------------------------------- 6. the sampling the simulation does

@pytest.mark.parametrize("z, k, population, rounds", [(1.0, 4, 20, 2), (1.0, 30, 3383, 100), (2.0, 30, 3383, 100)])
def test_fixed_size_sampling_records_at_least_the_analytic_lower_bound(z, k, population, rounds):
    # The auditor's pairs through the real builder. Add/remove: D has N clients sending y
    # (||y|| = C), D' adds one sending -y; it is sampled with probability K/(N+1) and then pushes
    # a y out, moving the sum by 2C. Replace-one: one y becomes -y, sampled with probability K/N,
    # again 2C. Both are subsampled Gaussians with multiplier (std / C) / 2; Poisson accounting
    # at sensitivity C recorded 1.15 where the first pair alone needs 6.08 (z = 1, 30 of 3383, 100 rounds).
    std = z * (1 + FLOAT32_SLACK)  # clip 1: the stage's per-client bound C is 1 + 2^-20
    pipe = build({"weighting": "fixed", "client_clip": 1.0, "noise": "central", "noise_std": std},
                 clients=k, population=population, dim=4)
    acct = stage_of(pipe, "CentralGaussianNoiseStage").accounting
    assert acct.sampling == "fixed_size" and acct.sensitivity >= 2.0
    c = ctx(4, clients=k, round_index=rounds - 1)
    pipe.aggregate([ClientMessage(i, np.zeros(4, np.float32)) for i in range(k)], c)
    recorded = c.measurements["dp_epsilon"]
    assert recorded >= pld_epsilon(z / 2, k / (population + 1), rounds, DELTA)
    assert recorded >= pld_epsilon(z / 2, k / population, rounds, DELTA)


def test_with_replacement_sampling_with_noise_is_refused():
    for noise in ({"noise": "central", "noise_std": 4.0},
                  {"quantize": True, "noise": "distributed", "noise_std": 4.0}):
        with pytest.raises(ConfigError, match="^fedavg.sampling: .*with_replacement"):
            build({"weighting": "fixed", "client_clip": 1.0, **noise}, clients=30, population=3383,
                  with_replacement=True)
    build({"weighting": "fixed", "client_clip": 1.0}, clients=30, population=3383, with_replacement=True)


# ---------------------------------------------------------------- 7. a clip under distributed noise

@pytest.mark.parametrize("secure", [False, True])
def test_distributed_noise_with_a_client_clip_reports_an_epsilon(secure):
    dim, n = 64, 4
    mode = {"secure": True} if secure else {"quantize": True}
    pipe = build({"weighting": "fixed", **mode, "noise": "distributed", "noise_std": 2.0, "client_clip": 1.0},
                 clients=n, dim=dim, population=100)
    names = [type(s).__name__ for s in stages(pipe) if type(s).__name__ != "NormProbeStage"]
    assert names[:4] == ["MeanStage", "ClientClipStage", "QuantizeStage", "DistributedDiscreteGaussianStage"]
    rng = np.random.default_rng(1)
    c = ctx(dim, clients=n)
    pipe.aggregate([ClientMessage(i, (rng.normal(size=dim) * 10).astype(np.float32)) for i in range(n)], c)
    sens = 1.0 + math.sqrt(dim) / stage_of(pipe, "QuantizeStage").spec.scale
    assert c.measurements["dp_sensitivity"] >= 2 * sens  # replace-one
    assert math.isfinite(c.measurements["dp_epsilon"])
    assert c.measurements["dp_epsilon"] >= pld_epsilon(2.0 / (2 * sens), n / 100, 1, DELTA)


# ---------------------------------------------------------------- the grid of configurations

GRID = [  # (settings, the key a refusal names, or None: accepted)
    ({"weighting": "examples", "server_clip": 1.0, "noise": "central", "noise_std": 20.0}, None),
    ({"weighting": "uniform", "server_clip": 1.0, "noise": "central", "noise_std": 1.0}, "aggregation.weighting"),
    ({"weighting": "fixed", "server_clip": 1.0, "noise": "central", "noise_std": 1.0}, None),
    ({"weighting": "fixed", "server_threshold": 1.0, "noise": "central", "noise_std": 1.0}, None),
    ({"weighting": "examples", "server_threshold": 1.0, "noise": "central", "noise_std": 20.0}, None),
    ({"weighting": "fixed", "norm_bound": 1.0, "noise": "central", "noise_std": 1.0}, None),
    ({"weighting": "examples", "quantize": True, "quant_bits": 16, "client_clip": 1.0, "noise": "central",
      "noise_std": 1.0}, None),
    ({"weighting": "examples", "quantize": True, "quant_bits": 8, "client_clip": 1.0, "noise": "distributed",
      "noise_std": 1.0}, "aggregation.noise_std"),  # 0.55 integer units per client
    ({"weighting": "fixed", "quantize": True, "quant_bits": 12, "client_clip": 1.0, "noise": "distributed",
      "noise_std": 1.0}, None),
    ({"weighting": "uniform", "quantize": True, "quant_bits": 32, "client_clip": 1.0, "noise": "distributed",
      "noise_std": 1.0}, "aggregation.weighting"),
    ({"weighting": "fixed", "quantize": True, "quant_bits": 32, "client_clip": 1.0, "noise": "distributed",
      "noise_std": 1.0}, None),
    ({"weighting": "fixed", "quantize": True, "quant_bits": 64, "client_clip": 1.0, "noise": "distributed",
      "noise_std": 1.0}, "aggregation.noise_std"),  # 2^53 integer units per client: beyond the float sampler
    ({"weighting": "fixed", "quantize": True, "quant_bits": 32, "noise": "distributed", "noise_std": 1.0}, None),
    ({"weighting": "fixed", "noise": "central", "noise_std": 1.0}, "aggregation.noise"),
    ({"weighting": "examples", "server_clip": 1.0, "noise": "central", "noise_std": 1.0, "max_weight": 0},
     "aggregation.max_weight"),
]


@pytest.mark.parametrize("with_replacement", [False, True])
@pytest.mark.parametrize("settings, refused", GRID)
def test_every_accepted_configuration_records_an_epsilon_the_pld_confirms(settings, refused, with_replacement):
    dim, n, population, max_weight = 8_000, 30, 3383, 40.0
    # the config's own checks come first, then an unbounded sum, then the sampling
    if with_replacement and refused not in ("aggregation.noise", "aggregation.weighting", "aggregation.max_weight"):
        refused = "fedavg.sampling"
    if refused:
        with pytest.raises(ConfigError, match=f"^{refused}: "):
            build(settings, dim=dim, max_weight=max_weight, with_replacement=with_replacement)
        return
    pipe = build(settings, dim=dim, max_weight=max_weight, with_replacement=with_replacement)
    weights = [max_weight] + [10.0] * (n - 1)
    c = ctx(dim)
    out = pipe.aggregate([ClientMessage(i, np.zeros(dim, np.float32), weight=w) for i, w in enumerate(weights)], c)
    denominator = {"examples": n * max_weight, "fixed": n}[settings["weighting"]]  # public with noise
    measured = float(np.std(out.vector.astype(np.float64) * denominator))
    # the sensitivity from first principles
    examples = settings["weighting"] == "examples"
    bounds = [settings.get("client_clip", math.inf), settings.get("norm_bound", math.inf),
              settings.get("server_clip", math.inf) * (max_weight if examples else 1.0),
              settings.get("server_threshold", math.inf) * (max_weight if examples else 1.0)]
    quant = stage_of(pipe, "QuantizeStage") if settings.get("quantize") else None
    if quant is not None:
        bounds.append(quant.spec.clip_range * math.sqrt(dim))
    sens = min(bounds) + (math.sqrt(dim) / quant.spec.scale if quant is not None else 0.0)
    sens *= 2  # fixed-size sampling, replace-one: swapping one client's update moves the sum by 2C
    z_true = measured * 1.03 / sens  # 1.03: about 4 standard errors of the measured std at this dim
    assert c.measurements["dp_sensitivity"] >= sens
    assert c.measurements["dp_noise_multiplier"] <= z_true
    if z_true >= 0.1:  # below, the PLD takes minutes (and epsilon is in the hundreds anyway)
        assert c.measurements["dp_epsilon"] >= pld_epsilon(z_true, n / population, 1, DELTA)


# ---------------------------------------------------------------- the simulation hands the facts over

def handmade_simulation(sampling="without_replacement", **aggregation):
    from fl.config import parse_config
    from fl.data import FederatedDataset
    from fl.simulation import Simulation

    sizes = (1, 2, 5, 3)
    rng = np.random.default_rng(0)
    client = sum(([c] * (n + 1) for c, n in enumerate(sizes)), [])
    split = sum(([0] * n + [1] for n in sizes), [])
    data = FederatedDataset("handmade", rng.integers(0, 256, (len(client), 28, 28), dtype=np.uint8),
                            rng.integers(0, 10, len(client)), np.array(client), np.array(split),
                            [f"w{c}" for c in range(len(sizes))])
    cfg = parse_config({
        "run": {"name": "dp", "seed": 0, "rounds": 3, "device": "cpu"}, "data": {"path": "synthetic"},
        "model": {"name": "small_cnn"}, "fedavg": {"clients_per_round": 2, "sampling": sampling},
        "aggregation": aggregation,
    })
    return Simulation(cfg, data)


def test_the_simulation_gives_the_builder_the_public_cap_and_the_sampling_mode():
    # the largest client has 5 examples; the sensitivity uses the public cap 3, never the data's 5
    sim = handmade_simulation(weighting="examples", server_clip=1.0, noise="central", noise_std=1.0, max_weight=3.0)
    acct = stage_of(sim.pipeline, "CentralGaussianNoiseStage").accounting
    assert acct.sensitivity == pytest.approx(2 * 3.0 * (1 + FLOAT32_SLACK))  # replace-one: 2C
    assert (acct.sampling, acct.sample_size, acct.population) == ("fixed_size", 2, 4)
    with pytest.raises(ConfigError, match="^fedavg.sampling: "):
        handmade_simulation("with_replacement", weighting="examples", server_clip=1.0, noise="central",
                            noise_std=1.0, max_weight=3.0)


def test_a_resumed_run_composes_the_rounds_before_the_resume():
    settings = dict(weighting="fixed", quantize=True, client_clip=1.0, noise="distributed", noise_std=1.0)
    whole = handmade_simulation(**settings)
    stage = stage_of(whole.pipeline, "DistributedDiscreteGaussianStage")
    rows = []
    for r, kept in enumerate((2, 1, 2)):  # round 1: one of two clients dropped (half the noise variance)
        c = ctx(whole.dim, clients=2, round_index=r)
        msgs = [ClientMessage(i, np.zeros(whole.dim, np.uint32)) for i in range(2)]
        prepared = [stage.run_client(m, c) for m in msgs]
        stage.server(stage.inner.aggregate(prepared[:kept], c), c)
        rows.append({"round": r, **c.measurements})
    resumed = handmade_simulation(**settings)
    resumed.restore(whole.params, 2, rows[:2])
    again = stage_of(resumed.pipeline, "DistributedDiscreteGaussianStage")
    c = ctx(whole.dim, clients=2, round_index=2)
    msgs = [ClientMessage(i, np.zeros(whole.dim, np.uint32)) for i in range(2)]
    again.server(again.inner.aggregate([again.run_client(m, c) for m in msgs], c), c)
    assert c.measurements["dp_epsilon"] == pytest.approx(rows[2]["dp_epsilon"], rel=1e-12)
    # without the history the resumed run would report one round's epsilon
    assert c.measurements["dp_epsilon"] > 1.5 * fixed_size_gaussian_epsilon({rows[2]["dp_noise_multiplier"]: 1}, 2, 4,
                                                                            DELTA)


# ---------------------------------------------------------------- float32 sum, delta

def test_the_float32_sum_before_the_noise_is_in_the_sensitivity():
    # the auditor's search: 30 clients near 1, one more added; the sum is rounded to float32
    # before the noise, so it can move by more than (1 + 2^-20) ||x||
    k = 31
    pipe = build({"weighting": "fixed", "client_clip": 1.0, "noise": "central", "noise_std": 1.0},
                 clients=k, population=100, dim=1)
    per_client = stage_of(pipe, "CentralGaussianNoiseStage").accounting.sensitivity / 2  # replace-one: 2C'
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(20_000):
        others = rng.uniform(0.9, 1.0, k - 1).astype(np.float32)
        x = np.float32(rng.uniform(0.99, 1.0))
        base = [ClientMessage(i, np.array([v], np.float32)) for i, v in enumerate(others)]
        s0 = PlainSum().aggregate(base, None).vector[0]
        s1 = PlainSum().aggregate(base + [ClientMessage(99, np.array([x], np.float32))], None).vector[0]
        worst = max(worst, abs(float(s1) - float(s0)) / float(x))
    assert worst > 1 + FLOAT32_SLACK  # the old allowance was exceeded
    assert worst <= per_client


def test_delta_not_below_one_over_the_population_is_refused():
    with pytest.raises(ConfigError, match="^aggregation.noise: the accountant's delta"):
        build({"weighting": "fixed", "client_clip": 1.0, "noise": "central", "noise_std": 1.0},
              clients=30, population=200_000)


# ---------------------------------------------------------------- the accountant from the RDP curve (third audit, F5)

@pytest.mark.parametrize("z, k, n, rounds", [(0.3, 4, 12, 10), (0.7, 10, 100, 50), (1.0, 30, 384, 100),
                                             (2.0, 30, 384, 300), (4.0, 30, 3383, 1000), (5.0, 1, 2, 100),
                                             (1.0, 30, 30, 3), (1.5, 300, 3383, 20)])
def test_the_curve_bound_is_never_below_dp_accountings_gaussian_specific_bound(z, k, n, rounds):
    # the discrete Gaussian (central) and Kairouz et al.'s sum (distributed) have only an RDP curve;
    # WBK's general Theorem 9 takes every term from it and is never below their Gaussian-specific
    # Theorem 27 (dp_accounting's SampledWithoutReplacementDpEvent), which needs the Gaussian itself
    ours = fixed_size_rdp_epsilon({z: rounds}, k, n, DELTA)
    assert ours >= fixed_size_gaussian_epsilon({z: rounds}, k, n, DELTA) * (1 - 1e-12)
    assert ours >= pld_epsilon(z, k / n, rounds, DELTA)  # and never below the replace-one pair's PLD


def test_the_curve_bound_known_answer():
    # z = 2, 30 of 384, 300 rounds, delta 1e-5: 7.968 (the auditor's script, integer orders to 256,
    # gave 7.968 too; dp_accounting's Gaussian-specific bound gives 7.505)
    assert fixed_size_rdp_epsilon({2.0: 300}, 30, 384, DELTA) == pytest.approx(7.968298195558109, rel=1e-9)
    # one order by hand, with exact binomials: a = 10, q = 30/384, eps(j) = j / (2 z^2)
    z, q, a = 2.0, 30 / 384, 10
    eps = lambda j: j / (2 * z * z)  # noqa: E731
    total = 1 + q**2 * math.comb(a, 2) * min(4 * math.expm1(eps(2)), 2 * math.exp(eps(2)))
    total += sum(2 * q**j * math.comb(a, j) * math.exp((j - 1) * eps(j)) for j in range(3, a + 1))
    (ours,) = wor_rdp_from_curve(lambda x: x / (2 * z * z), q, [a])
    assert ours == pytest.approx(math.log(total) / (a - 1), rel=1e-12)
    # fractional orders lie on the chord of (a - 1) eps'(a) between the integers
    lo, hi, mid = wor_rdp_from_curve(lambda x: x / (2 * z * z), q, [3, 4, 3.5])
    assert mid == pytest.approx((0.5 * 2 * lo + 0.5 * 3 * hi) / 2.5, rel=1e-12)
    # the paper's weak-DP multipliers (z ~ 1e-3) give an enormous but computed epsilon, no overflow
    assert 1e5 < fixed_size_rdp_epsilon({1e-3: 100}, 30, 384, DELTA) < math.inf


@pytest.mark.parametrize("noise", ["central", "distributed"])
def test_both_noises_are_accounted_with_the_curve_bound(noise):
    # where the two bounds differ (z = 2, 30 of 384, 300 rounds: 7.97 against 7.50), the recorded
    # epsilon is the curve bound's
    dim = 64
    settings = {"weighting": "fixed", "client_clip": 1.0, "noise": noise, "noise_std": 4.0}
    if noise == "distributed":
        settings.update(quantize=True, quant_bits=32)
    pipe = build(settings, clients=30, population=384, dim=dim)
    if noise == "distributed":  # it composes its own history of realised multipliers: rounds 0-298 as recorded
        stage = stage_of(pipe, "DistributedDiscreteGaussianStage")
        stage.restore_history([{"round": r, "dp_noise_multiplier": stage.effective_multiplier(30)} for r in range(299)])
    c = ctx(dim, clients=30, round_index=299)
    pipe.aggregate([ClientMessage(i, np.zeros(dim, np.float32)) for i in range(30)], c)
    z = c.measurements["dp_noise_multiplier"]
    acct = next(s.accounting for s in stages(pipe) if getattr(s, "accounting", None) is not None)
    assert c.measurements["dp_epsilon"] == pytest.approx(
        fixed_size_rdp_epsilon({z: 300}, 30, 384, acct.delta), rel=1e-9)
    assert c.measurements["dp_epsilon"] > 1.03 * fixed_size_gaussian_epsilon({z: 300}, 30, 384, DELTA)
