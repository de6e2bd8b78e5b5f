"""Central Gaussian noise on the sum, distributed discrete noise, and the DP accountant."""
import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting import rdp

from fl.aggregation import ClientMessage, MeanStage, PlainSum, RoundContext
from fl.aggregation.distributed_noise import (
    DistributedDiscreteGaussianStage,
    sample_discrete_gaussian,
    sample_skellam,
)
from fl.aggregation.privacy import (
    RDP_ORDERS,
    CentralGaussianNoiseStage,
    DpAccounting,
    composed_gaussian_epsilon,
    gaussian_epsilon,
)

DIM = 200_000


def ctx(round_index=0, seed=5, expected=4):
    return RoundContext(round_index=round_index, seed=seed, dim=DIM, expected_clients=expected)


def zero_msgs(n, dtype=np.float32, dim=DIM):
    return [ClientMessage(i, np.zeros(dim, dtype)) for i in range(n)]


def test_central_noise_has_the_given_std_on_the_sum_not_the_mean():
    std = 0.025
    out = MeanStage(CentralGaussianNoiseStage(PlainSum(), std), "fixed").aggregate(zero_msgs(4), ctx())
    # std on the sum, so the fixed mean over 4 sampled clients has std / 4
    assert np.std(out.vector.astype(np.float64)) * 4 == pytest.approx(std, rel=0.02)
    assert abs(float(np.mean(out.vector))) < 5 * std / 4 / math.sqrt(DIM)


def test_central_noise_is_reproducible_and_seed_dependent():
    stage = CentralGaussianNoiseStage(PlainSum(), 1.0, seeded=True)
    a = stage.aggregate(zero_msgs(2, dim=100), ctx()).vector
    b = stage.aggregate(zero_msgs(2, dim=100), ctx()).vector
    c = stage.aggregate(zero_msgs(2, dim=100), ctx(seed=6)).vector
    d = stage.aggregate(zero_msgs(2, dim=100), ctx(round_index=1)).vector
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, d)
    assert np.array_equal(CentralGaussianNoiseStage(PlainSum(), 0.0).aggregate(zero_msgs(2, dim=100), ctx()).vector,
                          np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="noise_std"):
        CentralGaussianNoiseStage(PlainSum(), -1.0)


def test_accountant_matches_dp_accounting_directly():
    z, q, rounds, delta = 1.1, 0.05, 50, 1e-5
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), rounds)
    acc = rdp.RdpAccountant(orders=list(RDP_ORDERS))
    acc.compose(event)
    assert gaussian_epsilon(z, q, rounds, delta) == pytest.approx(acc.get_epsilon(delta), rel=1e-12)


def test_accountant_is_monotone_and_has_the_edge_cases():
    eps = [gaussian_epsilon(z, 0.1, 20, 1e-5) for z in (0.6, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(eps, eps[1:]))
    assert gaussian_epsilon(1.0, 0.1, 10, 1e-5) < gaussian_epsilon(1.0, 0.1, 20, 1e-5)
    assert gaussian_epsilon(1.0, 0.1, 0, 1e-5) == 0.0
    assert gaussian_epsilon(0.0, 0.1, 1, 1e-5) == math.inf
    with pytest.raises(ValueError):
        gaussian_epsilon(1.0, 0.0, 1, 1e-5)
    with pytest.raises(ValueError):
        DpAccounting(sensitivity=0.0, sampling_rate=0.1)


def test_noise_stage_records_epsilon_per_round():
    acct = DpAccounting(sensitivity=2.0, sampling_rate=0.1, delta=1e-5)
    c = ctx(round_index=9)
    CentralGaussianNoiseStage(PlainSum(), 3.0, accounting=acct, grid=2.0**-20, dim=10).aggregate(zero_msgs(2, dim=10), c)
    assert c.measurements["noise_std_sum"] == 3.0
    assert c.measurements["dp_noise_multiplier"] == 1.5
    assert c.measurements["dp_epsilon"] == pytest.approx(gaussian_epsilon(1.5, 0.1, 10, 1e-5))


@pytest.mark.parametrize("sampler", [sample_discrete_gaussian, sample_skellam])
def test_integer_samplers_have_the_asked_variance(sampler):
    x = sampler(np.random.default_rng(3), 4.0, 400_000)
    assert x.dtype == np.int64
    assert x.var() == pytest.approx(16.0, rel=0.02)
    assert abs(x.mean()) < 0.05


def test_discrete_gaussian_pmf_matches_exp_minus_x2():
    sigma = 1.5
    x = sample_discrete_gaussian(np.random.default_rng(4), sigma, 300_000)
    support = np.arange(-6, 7)
    pmf = np.exp(-support**2 / (2 * sigma**2))
    pmf /= np.exp(-np.arange(-40, 41) ** 2 / (2 * sigma**2)).sum()
    observed = np.array([(x == k).mean() for k in support])
    np.testing.assert_allclose(observed, pmf, atol=3e-3)


def quantized_msgs(n, dim, value=1000, dtype=np.uint32):
    return [ClientMessage(i, np.full(dim, value, dtype)) for i in range(n)]


def test_distributed_noise_sum_carries_the_target_variance():
    std, scale, n, dim = 0.05, 1000.0, 5, 100_000
    stage = DistributedDiscreteGaussianStage(PlainSumInt(), std, scale=scale, num_clients=n, modulus=2**32)
    c = ctx()
    total = stage.aggregate(quantized_msgs(n, dim), c).vector
    noise = total.astype(np.int64) - n * 1000
    # std * scale integer units on the sum, i.e. std in the float domain
    assert noise.std() / scale == pytest.approx(std, rel=0.02)
    assert stage.client_sigma == pytest.approx(std * scale / math.sqrt(n))
    assert c.measurements["noise_std_sum_realised"] == pytest.approx(std)


def test_distributed_noise_wraps_mod_m_and_is_reproducible():
    stage = DistributedDiscreteGaussianStage(PlainSumInt(), 1.0, scale=10.0, num_clients=1, modulus=2**16,
                                             sampler="skellam", seeded=True)
    m = [ClientMessage(7, np.zeros(10_000, np.uint32))]
    a = stage.run_client(m[0], ctx()).vector
    b = stage.run_client(m[0], ctx()).vector
    assert np.array_equal(a, b) and a.dtype == np.uint32
    assert a.max() < 2**16
    centred = np.where(a >= 2**15, a.astype(np.int64) - 2**16, a.astype(np.int64))
    assert (centred < 0).any() and centred.std() == pytest.approx(10.0, rel=0.05)
    other = stage.run_client(m[0].replace(client_id=8), ctx()).vector
    assert not np.array_equal(a, other)  # each client draws its own noise


def test_distributed_noise_refuses_float_vectors_and_bad_moduli():
    stage = DistributedDiscreteGaussianStage(PlainSum(), 1.0, scale=10.0, num_clients=2, modulus=2**32)
    with pytest.raises(ValueError, match="quantized"):
        stage.aggregate(zero_msgs(1, dim=4), ctx())
    with pytest.raises(ValueError, match="quant_bits"):
        DistributedDiscreteGaussianStage(PlainSum(), 1.0, scale=10.0, num_clients=2, modulus=1000)
    with pytest.raises(ValueError, match="does not fit"):
        DistributedDiscreteGaussianStage(PlainSum(), 1.0, scale=10.0, num_clients=2, modulus=2**40).run_client(
            ClientMessage(0, np.zeros(3, np.uint32)), ctx())


class PlainSumInt(PlainSum):
    """A modular integer sum (mod 2^32) standing in for the secure sum."""

    def aggregate(self, messages, ctx):
        total = np.zeros(messages[0].vector.shape, np.uint64)
        for m in messages:
            total = (total + m.vector.astype(np.uint64)) & np.uint64(2**32 - 1)
        out = super().aggregate(messages[:1], ctx)
        return out.replace(vector=total.astype(np.uint32), included=[m.client_id for m in messages])


def test_distributed_noise_inside_the_real_quantizer_gives_the_float_std_on_the_sum():
    from fl.aggregation import secure_sum as secagg_stage
    from secagg.quantize import QuantizationSpec

    n, bits, rng_r, std, dim = 5, 32, 1.0, 0.01, 50_000
    spec = QuantizationSpec(bits=bits, clip_range=rng_r, num_clients=n)
    noise = DistributedDiscreteGaussianStage(secagg_stage.ModularPlainSum(bits), std, scale=spec.scale,
                                             num_clients=n, modulus=2**bits, seeded=True)
    pipeline = secagg_stage.QuantizeStage(noise, bits=bits, clip_range=rng_r, num_clients=n)
    rng = np.random.default_rng(1)
    updates = [ClientMessage(i, (rng.normal(size=dim) * 0.05).astype(np.float32)) for i in range(n)]
    out = pipeline.aggregate(updates, ctx())
    exact = np.sum([m.vector.astype(np.float64) for m in updates], axis=0)
    assert np.std(out.vector - exact) == pytest.approx(std, rel=0.03)  # quantization error is far smaller
    again = pipeline.aggregate(updates, ctx())
    assert np.array_equal(out.vector, again.vector)


def test_distributed_noise_accounts_each_round_with_its_own_realised_noise():
    acct = DpAccounting(sensitivity=1.0, sampling_rate=0.1, delta=1e-5)
    stage = DistributedDiscreteGaussianStage(PlainSumInt(), 2.0, scale=100.0, num_clients=4, modulus=2**32,
                                             accounting=acct, dim=10)
    c0, c1 = ctx(round_index=0), ctx(round_index=1)
    stage.aggregate(quantized_msgs(4, 10), c0)
    stage.aggregate(quantized_msgs(1, 10), c1)  # three of four dropped: half the noise std
    assert c0.measurements["dp_epsilon"] == pytest.approx(gaussian_epsilon(2.0, 0.1, 1, 1e-5))
    assert c1.measurements["noise_std_sum_realised"] == pytest.approx(1.0)
    both = composed_gaussian_epsilon({2.0: 1, 1.0: 1}, 0.1, 1e-5)
    assert c1.measurements["dp_epsilon"] == pytest.approx(both)
    # neither "both rounds at std 2" nor "both rounds at std 1"
    assert gaussian_epsilon(2.0, 0.1, 2, 1e-5) < both < gaussian_epsilon(1.0, 0.1, 2, 1e-5)
    assert composed_gaussian_epsilon({}, 0.1, 1e-5) == 0.0
    assert composed_gaussian_epsilon({1.0: 3, 0.0: 1}, 0.1, 1e-5) == math.inf
