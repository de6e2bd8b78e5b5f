"""What a noised run releases is covered by its dp_epsilon: no round fails for a reason the
clients' data decides, the weights and the denominator are public or capped by a public bound,
the distributed noise stays a discrete Gaussian, and a seeded resume never releases a round twice
with different sums (docs/privacy.md; one test per finding of the second privacy review)."""
import collections
import math

import numpy as np
import pytest
import torch

from fl.aggregation import ClientMessage, PlainSum, RoundContext
from fl.aggregation.build import build_pipeline
from fl.aggregation.config import AggregationConfig
from fl.aggregation.distributed_noise import MAX_CLIENT_SIGMA, sample_discrete_gaussian
from fl.aggregation.noise_source import CsprngGenerator
from fl.config import ConfigError

D = 8


def build(settings, *, clients=3, dim=D, population=100):
    return build_pipeline(AggregationConfig.from_table(settings), clients_per_round=clients, dim=dim,
                          population=population)


def ctx(dim=D, clients=3, round_index=0):
    return RoundContext(round_index=round_index, seed=0, dim=dim, expected_clients=clients)


def along(norm, dim=D):
    return np.full(dim, norm / math.sqrt(dim), np.float32)


# ---------------------------------------------------------------- F1: a rejected update never fails the round

@pytest.mark.parametrize("target_norm", [0.5, 1.5])
def test_a_round_whose_updates_are_all_rejected_still_releases_the_noise(target_norm):
    # two clients far over the threshold; the target under it (0.5) or over it (1.5). Before, the
    # second round failed (RoundFailed "all_rejected", the model unchanged: no noise released)
    dim, std = 4000, 1.0
    pipe = build({"weighting": "fixed", "server_threshold": 1.0, "noise": "central", "noise_std": std}, dim=dim)
    c = ctx(dim)
    msgs = [ClientMessage(0, along(5.0, dim)), ClientMessage(1, along(5.0, dim)),
            ClientMessage(2, along(target_norm, dim))]
    out = pipe.aggregate(msgs, c)
    released_sum = out.vector.astype(np.float64) * 3  # the fixed, public denominator K
    assert np.std(released_sum) == pytest.approx(std, rel=0.05)  # the noise of the recorded std, on the sum
    kept = target_norm <= 1.0
    assert np.mean(released_sum) == pytest.approx(target_norm / math.sqrt(dim) if kept else 0.0, abs=0.05)
    assert out.included == ([2] if kept else [])
    assert set(out.rejected) == ({0, 1} if kept else {0, 1, 2})
    assert math.isfinite(c.measurements["dp_epsilon"])


def test_a_rejected_client_still_adds_its_distributed_noise_share():
    dim = 2000
    pipe = build({"weighting": "fixed", "quantize": True, "server_threshold": 1.0, "noise": "distributed",
                  "noise_std": 1.0}, dim=dim)
    c = ctx(dim)
    out = pipe.aggregate([ClientMessage(i, along(5.0, dim)) for i in range(3)], c)
    assert out.included == [] and len(out.rejected) == 3
    assert c.measurements["noise_clients"] == 3  # all three shares are in the released (zero) sum
    assert np.std(out.vector.astype(np.float64) * 3) == pytest.approx(1.0, rel=0.07)


def test_without_noise_an_all_rejected_round_still_fails():
    from fl.aggregation import RoundFailed

    pipe = build({"weighting": "fixed", "server_threshold": 1.0})
    with pytest.raises(RoundFailed, match="threshold"):
        pipe.aggregate([ClientMessage(i, along(5.0)) for i in range(3)], ctx())


# ---------------------------------------------------------------- F2: an honest diverged client sends zeros

def tiny_simulation(**aggregation):
    from fl.config import parse_config
    from fl.data import FederatedDataset
    from fl.simulation import Simulation

    sizes = (2, 3, 4, 3)
    rng = np.random.default_rng(0)
    client = sum(([c] * (n + 1) for c, n in enumerate(sizes)), [])
    split = sum(([0] * n + [1] for n in sizes), [])
    data = FederatedDataset("tiny", rng.integers(0, 256, (len(client), 28, 28), dtype=np.uint8),
                            rng.integers(0, 10, len(client)), np.array(client), np.array(split),
                            [f"w{c}" for c in range(len(sizes))])
    cfg = parse_config({
        "run": {"name": "dp", "seed": 0, "rounds": 2, "device": "cpu"}, "data": {"path": "synthetic"},
        "model": {"name": "small_cnn"}, "fedavg": {"clients_per_round": 2},
        "aggregation": aggregation,
    })
    return Simulation(cfg, data)


@pytest.mark.parametrize("aggregation", [
    {"weighting": "fixed", "client_clip": 1.0, "noise": "central", "noise_std": 0.5},
    {"weighting": "fixed", "server_clip": 1.0, "noise": "central", "noise_std": 0.5},
    {"weighting": "fixed", "norm_bound": 1.0, "noise": "central", "noise_std": 0.5},
    {"weighting": "fixed", "quantize": True, "client_clip": 1.0, "noise": "distributed", "noise_std": 0.5},
    {"weighting": "fixed"},
])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_an_honest_client_whose_training_diverged_does_not_fail_the_round(aggregation, bad):
    sim = tiny_simulation(**aggregation)

    def diverged(start, datasets, seeds, local=None):  # what training with a huge client_lr gives
        out = torch.full((len(datasets), sim.dim), 1e-3)
        out[0, 5] = bad
        return out

    sim.train = diverged
    before = sim.params.clone()
    result = sim.run_round()
    assert result.failure is None  # before: "malformed_update", the model left unchanged
    assert result.measurements["client_nonfinite_zeroed"] == 1
    assert torch.isfinite(sim.params).all() and not torch.equal(sim.params, before)


def test_an_update_that_overflows_once_weighted_is_sent_as_zeros():
    pipe = build({"weighting": "examples", "max_weight": 100.0, "quantize": True, "client_clip": 1.0,
                  "noise": "central", "noise_std": 1.0, "noise_seeded": True})
    huge = np.full(D, 1e37, np.float32)  # finite; times 100 examples it is not
    out = pipe.aggregate([ClientMessage(0, huge, weight=100.0), ClientMessage(1, along(0.5), weight=10.0),
                          ClientMessage(2, along(0.5), weight=10.0)], ctx())
    assert np.all(np.isfinite(out.vector))


# ---------------------------------------------------------------- F3, F4: the weight is capped by a public bound

def test_the_server_caps_each_claimed_weight_at_the_public_max_weight():
    # a cheating client claims 2^30 examples; capped at 64 its summand stays within 64 x server_clip
    pipe = build({"weighting": "examples", "server_clip": 1.0, "max_weight": 64.0, "noise": "central",
                  "noise_std": 1.0, "noise_seeded": True}, dim=4)
    e = np.zeros(4, np.float32)
    e[0] = 1.0
    outs = []
    for claim in (float(2**30), 64.0):
        msgs = [ClientMessage(0, e.copy(), weight=claim), ClientMessage(1, e.copy(), weight=64.0),
                ClientMessage(2, e * 0.5, weight=1.0)]
        outs.append(pipe.aggregate(msgs, ctx(4)).vector)
    np.testing.assert_array_equal(outs[0], outs[1])
    with pytest.raises(ValueError, match="claimed the weight"):
        pipe.aggregate([ClientMessage(0, e.copy(), weight=float("nan"))] * 3, ctx(4))


@pytest.mark.parametrize("largest", [417, 418])
def test_the_recorded_sensitivity_does_not_depend_on_the_data(largest):
    # before: dp_sensitivity was 2 x server_clip x (the largest client's example count) x slack
    pipe = build({"weighting": "examples", "server_clip": 1.0, "max_weight": 500.0, "noise": "central",
                  "noise_std": 50.0})
    c = ctx()
    pipe.aggregate([ClientMessage(i, along(1.0), weight=float(w)) for i, w in enumerate((10, 20, largest))], c)
    assert c.measurements["dp_sensitivity"] == pytest.approx(2 * 500.0, rel=1e-4)


def test_examples_weighting_with_noise_needs_the_public_cap():
    with pytest.raises(ConfigError, match="^aggregation.max_weight: "):
        build({"weighting": "examples", "client_clip": 1.0, "noise": "central", "noise_std": 1.0})
    with pytest.raises(ConfigError, match="^aggregation.max_weight: "):
        build({"weighting": "fixed", "client_clip": 1.0, "max_weight": 10.0})


# ---------------------------------------------------------------- F5: the denominator is public

@pytest.mark.parametrize("weighting", ["examples", "fixed"])
def test_the_model_step_does_not_reveal_the_clients_weights(weighting):
    # the same noise (seeded) and zero updates: the target's example count (or, below, whether it
    # was rejected) must not change the released step; before, (S + N) / W read W off the spread
    settings = {"weighting": weighting, "client_clip": 1.0, "noise": "central", "noise_std": 1.0,
                "noise_seeded": True, **({"max_weight": 500.0} if weighting == "examples" else {})}
    pipe = build(settings, dim=20_000)
    outs = []
    for target in (120.0, 121.0, 400.0):
        msgs = [ClientMessage(i, np.zeros(20_000, np.float32), weight=w) for i, w in enumerate((300.0, 200.0, target))]
        outs.append(pipe.aggregate(msgs, ctx(20_000)).vector)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_uniform_weighting_with_noise_is_refused():
    for extra in ({"client_clip": 1.0}, {"server_threshold": 1.0}):
        with pytest.raises(ConfigError, match="^aggregation.weighting: \"uniform\" divides"):
            build({"weighting": "uniform", "noise": "central", "noise_std": 1.0, **extra})


# ---------------------------------------------------------------- F6: the float sampler's ceiling

def test_client_sigma_beyond_the_samplers_ceiling_is_refused():
    # 64 bits, 4 clients, std 2: each share was 4.5e15 integer units, whose low bits were skewed
    with pytest.raises(ConfigError, match="^aggregation.noise_std: .*sampler.s ceiling.*quant_bits"):
        build({"weighting": "fixed", "quantize": True, "quant_bits": 64, "client_clip": 1.0,
               "noise": "distributed", "noise_std": 2.0}, clients=4, dim=1000)
    # every configuration up to 32 bits stays below the ceiling (the headroom rule)
    pipe = build({"weighting": "fixed", "quantize": True, "quant_bits": 32, "client_clip": 1.0,
                  "noise": "distributed", "noise_std": 1000.0}, clients=1, dim=1000)
    stage = pipe
    while not hasattr(stage, "client_sigma"):
        stage = stage.inner
    assert 2.0**28 < stage.client_sigma <= MAX_CLIENT_SIGMA


def test_the_low_bits_are_uniform_at_the_largest_accepted_sigma():
    y = sample_discrete_gaussian(CsprngGenerator(), MAX_CLIENT_SIGMA, 160_000)
    assert abs(np.std(y.astype(np.float64)) / MAX_CLIENT_SIGMA - 1) < 0.02
    for m in (2, 16):
        counts = np.bincount((y % m).astype(np.int64), minlength=m)
        expected = y.size / m
        chi2 = float(np.sum((counts - expected) ** 2 / expected))
        # chi-square with m - 1 degrees of freedom; the bound is beyond its 1 - 1e-6 quantile
        # (at sigma 1e17 the auditor's counts mod 16 gave a min/max ratio of 0.02: chi2 in the 10^4s)
        assert chi2 < {2: 24.0, 16: 60.0}[m], (m, counts)


# ---------------------------------------------------------------- F7: a seeded resume recomputes on the same CPU

SEEDED = ["data.path=synthetic:20", "run.checkpoint_every=2", "aggregation.weighting=fixed",
          "aggregation.client_clip=1.0", "aggregation.noise=central", "aggregation.noise_std=1.0",
          "aggregation.noise_seeded=true", "run.rounds=4"]


def test_a_seeded_resume_that_would_recompute_a_release_is_refused(tmp_path, monkeypatch):
    import fl.simulation
    from fl.cli import find_config
    from fl.config import load_config
    from fl.experiment import read_checkpoint, resume_experiment, run_experiment
    from fl.rundir import RunDirError

    cfg = load_config(find_config("synthetic_small"), SEEDED)
    out = tmp_path / "run"
    run_experiment(cfg, out=out, progress=False, stop_after=3)  # checkpoint after 2; round 2 released after it
    (checkpoint,) = sorted((out / "checkpoints").glob("round_*.pt"))
    assert read_checkpoint(checkpoint)["device"] == "cpu"
    before = (out / "rounds.csv").read_bytes()
    # "auto" on a machine with a GPU: round 2 would be recomputed there with the same noise
    real = fl.simulation.resolve_device
    monkeypatch.setattr(fl.simulation, "resolve_device",
                        lambda name: torch.device("cuda") if name == "auto" else real(name))
    with pytest.raises(RunDirError, match=r"round\(s\) 2 were released with seeded noise.*would recompute"):
        resume_experiment(out, ["run.device=auto"], progress=False)
    assert (out / "rounds.csv").read_bytes() == before
    # nor on the CPU: the thread count alone changes the recomputed sum (a second audit measured
    # 2e-7 between 1 and 2 threads), and a chain of resumes can hide which device wrote a row
    monkeypatch.setattr(fl.simulation, "resolve_device", real)
    with pytest.raises(RunDirError, match=r"round\(s\) 2 were released with seeded noise"):
        resume_experiment(out, ["run.device=cpu"], progress=False)
    assert (out / "rounds.csv").read_bytes() == before


# ---------------------------------------------------------------- tiny noise: a huge but true epsilon

@pytest.mark.parametrize("std, huge", [(0.025, True), (0.05, True), (0.2, False), (1.0, False)])
def test_noise_too_small_for_its_shift_records_a_huge_finite_epsilon(std, huge):
    # one client's x = +M e_1 versus -M e_1 moves the sum by 2M; with std 0.025 and M = 1 the shift
    # is 80 std and the two noised outputs are told apart at a glance. The float sampler's support
    # ended near 22 std on this grid, so no output was reachable from both and no finite epsilon
    # held (it recorded inf); the exact sampler reaches every integer, and the RDP curve gives the
    # true, enormous epsilon. (Before either, 1.6e7-style figures were recorded for Box-Muller noise.)
    pipe = build({"weighting": "fixed", "norm_bound": 1.0, "noise": "central", "noise_std": std},
                 clients=30, population=384, dim=1000)
    c = ctx(1000, clients=30)
    pipe.aggregate([ClientMessage(i, np.zeros(1000, np.float32)) for i in range(30)], c)
    eps = c.measurements["dp_epsilon"]
    assert math.isfinite(eps) and (eps > 300) is huge, eps
    finite = not huge
    if not finite:
        e = np.zeros(1000, np.float32)
        e[0] = 1.0
        plus = [pipe.aggregate([ClientMessage(0, e)] + [ClientMessage(i, np.zeros(1000, np.float32))
                                                         for i in range(1, 30)], ctx(1000, clients=30)).vector[0]
                for _ in range(50)]
        minus = [pipe.aggregate([ClientMessage(0, -e)] + [ClientMessage(i, np.zeros(1000, np.float32))
                                                          for i in range(1, 30)], ctx(1000, clients=30)).vector[0]
                 for _ in range(50)]
        assert min(plus) > max(minus)  # the shift 2M is 40 std or more


def test_the_exact_sampler_leaves_no_support_tail_to_pay():
    """The float sampler's draws were bounded (geometrics by inversion from 53-bit uniforms reached
    about 36.7 t), so a shift past that reach told the neighbours apart with certainty and the stage
    paid the support tail out of delta, up to all of it. The exact sampler reaches every integer:
    no tail, and tiny noise gives a large but finite epsilon."""
    from fl.aggregation.distributed_noise import DistributedDiscreteGaussianStage
    from fl.aggregation.privacy import DpAccounting

    acct = DpAccounting(sensitivity=2.0, sampling_rate=0.1, delta=1e-6)
    stage = DistributedDiscreteGaussianStage(PlainSum(), 1.0, scale=100.0, num_clients=4,
                                             modulus=1 << 32, accounting=acct, dim=1000)
    assert stage.accounting == acct  # taken as given: no tail added to it
    # noise far too small for the shift (the old sampler's tail was 1 here: epsilon inf)
    tiny = DistributedDiscreteGaussianStage(PlainSum(), 1.0, scale=100.0, num_clients=4,
                                            modulus=1 << 32, accounting=DpAccounting(
                                                sensitivity=2.0 * 30 * 51, sampling_rate=0.1, delta=1e-6),
                                            dim=1000)
    assert tiny.accounting.delta == 1e-6
    eps = tiny.accounting.epsilon_of({0.02: 1})
    assert math.isfinite(eps) and eps > 100


# ---------------------------------------------------------------- the sampled population is public (third review, F3)

def _writers(sizes, seed):
    """A dataset whose client ``c`` has ``sizes[c]`` training images and one test image."""
    from fl.data import FederatedDataset

    rng = np.random.default_rng(seed)
    client = sum(([c] * (n + 1) for c, n in enumerate(sizes)), [])
    split = sum(([0] * n + [1] for n in sizes), [])
    return FederatedDataset("writers", rng.integers(0, 256, (len(client), 28, 28), dtype=np.uint8),
                            rng.integers(0, 10, len(client)), np.array(client), np.array(split),
                            [f"w{c}" for c in range(len(sizes))])


def _noised_simulation(data):
    from fl.config import parse_config
    from fl.simulation import Simulation

    cfg = parse_config({
        "run": {"name": "dp", "seed": 0, "rounds": 2, "device": "cpu"}, "data": {"path": "synthetic"},
        "model": {"name": "small_cnn"}, "fedavg": {"clients_per_round": 4},
        "aggregation": {"weighting": "fixed", "client_clip": 1.0, "noise": "central", "noise_std": 0.5},
    })
    return Simulation(cfg, data)


def _accounting(stage):
    while getattr(stage, "accounting", None) is None:
        stage = stage.inner
    return stage.accounting


def test_replacing_one_participants_data_leaves_everyone_elses_sample_unchanged():
    # docs/privacy.md: the participants (writers with training images) are a public registry and
    # replace-one swaps one participant's data for any data with at least one training image. Then
    # N and every round's sample are the same in both neighbours, whatever the data.
    sizes = [3] * 20
    base = _noised_simulation(_writers(sizes, seed=1))
    neighbour_sizes = list(sizes)
    neighbour_sizes[5] = 1  # client 5's whole data replaced (other pixels, labels and count)
    neighbour = _noised_simulation(_writers(neighbour_sizes, seed=2))
    assert base.population == neighbour.population == list(range(20))
    assert [base.sample(r) for r in range(100)] == [neighbour.sample(r) for r in range(100)]
    assert _accounting(base.pipeline) == _accounting(neighbour.pipeline)  # same N, K, sensitivity

    # the boundary the docs state: data with no training image at all leaves the participants, which
    # is outside the relation (the accountant's N would change and so would the others' samples)
    outside = list(sizes)
    outside[5] = 0
    assert len(_noised_simulation(_writers(outside, seed=2)).population) == 19


# ---------------------------------------------------------------- fifth review: float32's edges, the sampler's floor

@pytest.mark.parametrize("clip, why", [(1e38, "overflow"), (7e-44, "subnormals")])
def test_a_bound_at_float32s_edges_is_refused_with_noise(clip, why):
    """F3: the float32 slack of the sensitivity is relative, which fails at overflow (the sum of
    4 clients at 1e38 is inf, and lands on the grid's edge: 1,895 was recorded where no epsilon
    holds) and among subnormals (a clip of 7e-44 rounds up to twice itself)."""
    with pytest.raises(ConfigError, match=f"^aggregation.client_clip: .*{why}"):
        build({"weighting": "fixed", "client_clip": clip, "noise": "central", "noise_std": 1.0},
              clients=4, population=100, dim=1000)
    build({"weighting": "fixed", "client_clip": clip}, clients=4, population=100, dim=1000)  # no noise: no claim


def test_central_noise_below_the_samplers_floor_is_refused():
    """F2: noise_std = 1e-200 was accepted; its sigma underflowed in the sampler, which then
    looped for ever."""
    with pytest.raises(ConfigError, match="^aggregation.noise_std: .*floor"):
        build({"weighting": "fixed", "client_clip": 1.0, "noise": "central", "noise_std": 1e-200},
              clients=4, population=100, dim=1000)
