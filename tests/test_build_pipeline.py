"""build_pipeline: every [aggregation] setting gives the documented stack, and the fast twins
of the secure pipeline give bit-identical aggregates."""
import numpy as np
import pytest

from fl.aggregation import ClientMessage, RoundContext
from fl.aggregation.build import NORM_INT_BOUND, build_pipeline, norm_scale
from fl.aggregation.config import AggregationConfig
from fl.aggregation.privacy import CentralGaussianNoiseStage
from fl.config import ConfigError
from fl.aggregation.norm_proof import NormProofStage


def stack(pipeline):
    """Class names from the outermost stage inwards."""
    names = []
    while pipeline is not None:
        names.append(type(pipeline).__name__)
        pipeline = getattr(pipeline, "inner", None)
    return names


def build(clients=4, dim=64, population=40, **settings):
    return build_pipeline(AggregationConfig.from_table(settings), clients_per_round=clients, dim=dim,
                          population=population)


@pytest.mark.parametrize("settings, expected", [
    ({}, ["NormProbeStage", "MeanStage", "PlainSum"]),
    ({"server_clip": 1.0}, ["ServerClipStage", "MeanStage", "PlainSum"]),
    ({"server_threshold": 2.0}, ["ServerThresholdStage", "MeanStage", "PlainSum"]),
    ({"noise": "central", "noise_std": 0.1, "server_clip": 1.0, "max_weight": 50.0},
     ["ServerClipStage", "MeanStage", "CentralGaussianNoiseStage", "PlainSum"]),
    ({"weighting": "fixed", "norm_bound": 3.0},
     ["NormProbeStage", "MeanStage", "NormProofStage", "ExactIntegerSum"]),
    ({"weighting": "fixed", "norm_bound": 3.0, "secure": True}, ["MeanStage", "NormProofStage", "SecureSum"]),
    ({"weighting": "fixed", "norm_bound": 5.0, "noise": "central", "noise_std": 0.025, "secure": True},
     ["MeanStage", "CentralGaussianNoiseStage", "NormProofStage", "SecureSum"]),
    ({"secure": True}, ["MeanStage", "QuantizeStage", "SecureSum"]),
    ({"quantize": True}, ["NormProbeStage", "MeanStage", "QuantizeStage", "ModularPlainSum"]),
    ({"secure": True, "noise": "distributed", "noise_std": 0.1, "max_weight": 50.0},
     ["MeanStage", "QuantizeStage", "DistributedDiscreteGaussianStage", "SecureSum"]),
])
def test_stack_for_each_setting(settings, expected):
    assert stack(build(**settings)) == expected


def test_norm_stage_gets_bound_kind_scale_and_mode():
    p = build(weighting="uniform", norm_bound=2.0, norm_kind="linf", secure=True)
    stage = p.inner
    assert isinstance(stage, NormProofStage) and stage.secure and stage.norm == "linf" and stage.bound == 2.0
    assert stage.scale == norm_scale(2.0, bits=32, clients_per_round=4) == NORM_INT_BOUND / 2.0
    assert not build(weighting="uniform", norm_bound=2.0).inner.inner.secure


def test_norm_scale_keeps_the_sum_inside_the_modulus():
    for bits, n, bound in [(32, 30, 3.0), (16, 30, 10.0), (20, 1000, 0.5)]:
        s = norm_scale(bound, bits=bits, clients_per_round=n)
        assert n * s * bound <= (1 << (bits - 1)) - 1 + 1e-6
    with pytest.raises(ConfigError, match="^aggregation.quant_bits"):
        norm_scale(1.0, bits=4, clients_per_round=30)


def test_dp_accounting_attached_with_a_sensitivity_and_unbounded_noise_refused():
    noisy = build(noise="central", noise_std=0.5, server_clip=1.0, max_weight=50.0).inner.inner
    assert isinstance(noisy, CentralGaussianNoiseStage) and noisy.accounting is not None
    # examples weighting: the server's clip is multiplied by the public cap on the weights, and
    # replace-one (fixed-size sampling) doubles it
    assert noisy.accounting.sensitivity == pytest.approx(100.0, rel=1e-5)
    with pytest.raises(ConfigError, match="^aggregation.noise: nothing bounds"):
        build(noise="central", noise_std=0.5, max_weight=50.0)


@pytest.mark.parametrize("settings, key", [
    ({"norm_bound": 3.0}, "aggregation.weighting"),  # examples weighting would scale before clipping
    ({"noise": "distributed", "noise_std": 0.1, "weighting": "fixed"}, "aggregation.noise"),
    ({"secure": True, "weighting": "fixed", "norm_bound": 1.0, "noise": "distributed", "noise_std": 0.1},
     "aggregation.noise"),
    ({"secure": True, "server_clip": 1.0}, "aggregation.server_clip"),
    ({"quant_bits": 3, "secure": True}, "aggregation.quant_bits"),
])
def test_conflicting_settings_are_refused_by_key(settings, key):
    with pytest.raises(ConfigError, match=rf"^{key}"):
        build(clients=30, **settings)


def _messages(rng, n=5, dim=64, scale=0.05):
    return [ClientMessage(i, (rng.standard_normal(dim) * scale * (1 + i)).astype(np.float32), weight=10.0 + i)
            for i in range(n)]


@pytest.mark.parametrize("settings", [
    {"weighting": "uniform"},
    {"weighting": "fixed", "norm_bound": 0.3},
    {"weighting": "fixed", "norm_bound": 0.3, "norm_kind": "linf"},
    {"weighting": "fixed", "noise": "central", "noise_std": 0.01, "norm_bound": 0.3, "noise_seeded": True},
    {"weighting": "examples", "quant_range": 0.5, "quant_bits": 32},
])
def test_secure_and_fast_twin_give_identical_aggregates(settings):
    rng = np.random.default_rng(0)
    msgs = _messages(rng)
    fast = build(clients=5, dim=64, quantize=True, **settings)
    secure = build(clients=5, dim=64, secure=True, **settings)
    ctx_f = RoundContext(round_index=3, seed=11, dim=64, expected_clients=5)
    ctx_s = RoundContext(round_index=3, seed=11, dim=64, expected_clients=5)
    a = fast.aggregate([m.replace() for m in msgs], ctx_f)
    b = secure.aggregate([m.replace() for m in msgs], ctx_s)
    assert a.vector.dtype == b.vector.dtype == np.float32
    assert a.vector.tobytes() == b.vector.tobytes()
    assert a.included == b.included and a.rejected == b.rejected


@pytest.mark.parametrize("secure", [True, False])
def test_linf_bound_beyond_one_proof_is_refused_before_any_round(secure):
    # 2 * 32768 range-proven values fit one aggregated proof; one more coordinate does not
    build(dim=32768, weighting="uniform", norm_bound=1.0, norm_kind="linf", secure=secure)
    with pytest.raises(ConfigError, match="aggregation.norm_kind: L-infinity proof: dimension 32769"):
        build(dim=32769, weighting="uniform", norm_bound=1.0, norm_kind="linf", secure=secure)
    # the L2 proof has no such limit
    build(dim=1_199_882, weighting="uniform", norm_bound=1.0, norm_kind="l2", secure=secure)
