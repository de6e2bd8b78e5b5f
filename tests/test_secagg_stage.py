"""SecAgg in the aggregation pipeline: bit-identity with the plaintext twin, quantization rules."""
from __future__ import annotations

import numpy as np
import pytest

from fl.aggregation import ClientMessage, MeanStage, RoundContext, RoundFailed
from secagg.errors import ConfigError
from secagg.params import P256_ORDER
from secagg.quantize import QuantizationSpec, dequantize_sum, quantize, quantize_counting_clipped
from fl.aggregation.secure_sum import (
    EXCLUDE_KEY,
    FIELD_VECTOR_KEY,
    ModularPlainSum,
    QuantizeStage,
    SecureSum,
    complete_graph_threshold,
    secure_pipeline,
)

DIM = 257


def _messages(n=8, seed=0, field=False):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        extras = {FIELD_VECTOR_KEY: [int.from_bytes(rng.bytes(32), "big") % P256_ORDER for _ in range(3)]} if field else {}
        out.append(ClientMessage(10 + 3 * i, rng.normal(0, 0.05, DIM).astype(np.float32), weight=float(1 + i % 3), extras=extras))
    return out


def _ctx(seed=7):
    return RoundContext(round_index=3, seed=seed, dim=DIM, expected_clients=8)


def _pipeline(inner, bits=32, n=8):
    return MeanStage(QuantizeStage(inner, bits=bits, clip_range=1.0, num_clients=n))


@pytest.mark.parametrize("bits", [16, 32, 48])
@pytest.mark.parametrize(
    "dropout",
    [None, {13: "share_keys", 19: "masked_input", 25: "unmask"}, {10: "advertise_keys", 28: "consistency_check"}],
    ids=["no-dropout", "dropouts", "dropouts-2"],
)
@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
def test_secure_and_plain_pipelines_bit_identical(bits, dropout, active):
    msgs = _messages(field=True)
    ctx_s = _ctx()
    secure = _pipeline(SecureSum(bits=bits, threshold=5, dropout=dropout, active=active), bits).aggregate(msgs, ctx_s)
    survivors = set(secure.included)
    ctx_p = _ctx()
    plain = _pipeline(ModularPlainSum(bits), bits).aggregate([m for m in msgs if m.client_id in survivors], ctx_p)
    assert secure.vector.dtype == plain.vector.dtype == np.float32
    assert secure.vector.tobytes() == plain.vector.tobytes()
    assert secure.included == plain.included and secure.weight_total == plain.weight_total
    assert secure.field_sum == plain.field_sum
    lost = {c for c, s in (dropout or {}).items() if s in ("advertise_keys", "share_keys", "masked_input")}
    assert survivors == {m.client_id for m in msgs} - lost and set(secure.rejected) == lost
    assert ctx_s.measurements["quantize_step"] == ctx_p.measurements["quantize_step"]


def test_random_dropout_rate_reproducible_and_identical_to_plain():
    msgs = _messages(n=12, seed=1)
    a = _pipeline(SecureSum(dropout_rate=0.3, graph="sparse"), n=12).aggregate(msgs, _ctx(5))
    b = _pipeline(SecureSum(dropout_rate=0.3, graph="sparse"), n=12).aggregate(msgs, _ctx(5))
    assert a.included == b.included and a.vector.tobytes() == b.vector.tobytes()
    plain = _pipeline(ModularPlainSum(32), n=12).aggregate([m for m in msgs if m.client_id in set(a.included)], _ctx(5))
    assert a.vector.tobytes() == plain.vector.tobytes()


def test_exclusion_before_unmask():
    msgs = _messages()
    msgs[2].extras[EXCLUDE_KEY] = "proof failed"
    calls = []

    def filt(arrived, ctx):
        calls.append([m.client_id for m in arrived])
        return {31: "second proof failed"}

    res = SecureSum(pre_unmask_filter=filt).aggregate(
        [m.replace(vector=quantize(m.vector, QuantizationSpec(32, 1.0, 8), np.random.default_rng(0))) for m in msgs], _ctx())
    assert res.rejected == {16: "excluded: proof failed", 31: "excluded: second proof failed"}
    assert calls == [[m.client_id for m in msgs]]
    assert 16 not in res.included and 31 not in res.included and len(res.included) == 6


def test_too_few_survivors_fails_the_round():
    msgs = _messages(n=4)
    stage = _pipeline(SecureSum(dropout={10: "share_keys", 13: "masked_input"}), n=4)
    with pytest.raises(RoundFailed) as info:
        stage.aggregate(msgs, _ctx())
    assert info.value.reason == "secagg_too_few"


def test_mean_close_to_float_mean():
    msgs = _messages()
    res = _pipeline(SecureSum()).aggregate(msgs, _ctx())
    ref = sum(np.float64(m.weight) * m.vector for m in msgs) / sum(m.weight for m in msgs)
    assert np.max(np.abs(res.vector - ref)) < 1e-6


def test_secure_pipeline_recipe():
    stage = secure_pipeline(8, bits=32, clip_range=1.0, graph="sparse")
    res = stage.aggregate(_messages(), _ctx())
    assert len(res.included) == 8 and res.vector.shape == (DIM,)


# -- quantization ----------------------------------------------------------------------------------

@pytest.mark.parametrize("bits,n", [(8, 200), (2, 2), (16, 40000)])
def test_wrapping_configuration_rejected_up_front(bits, n):
    with pytest.raises(ConfigError):
        QuantizeStage(ModularPlainSum(bits), bits=bits, clip_range=1.0, num_clients=n)


def test_more_clients_than_configured_rejected():
    stage = QuantizeStage(ModularPlainSum(32), bits=32, clip_range=1.0, num_clients=4)
    with pytest.raises(ConfigError):
        stage.aggregate(_messages(n=5), _ctx())


@pytest.mark.parametrize("bits", [8, 20, 32, 64])
def test_extreme_inputs_never_wrap(bits):
    n = 5 if bits == 8 else 50
    spec = QuantizationSpec(bits, 0.5, n)
    for value in (0.5, -0.5, 3.0, -3.0):  # clipped to the range, every client at the extreme
        qs = [quantize(np.full(4, value), spec, np.random.default_rng(i)) for i in range(n)]
        acc = np.zeros(4, dtype=qs[0].dtype)
        for q in qs:
            np.add(acc, q, out=acc)
        if bits < acc.dtype.itemsize * 8:
            acc &= acc.dtype.type((1 << bits) - 1)
        np.testing.assert_allclose(dequantize_sum(acc, spec), np.sign(value) * 0.5 * n, rtol=1e-6)


def test_quantization_reversible_up_to_one_step_and_unbiased():
    spec = QuantizationSpec(16, 1.0, 10)
    x = np.random.default_rng(0).uniform(-1, 1, 20000)
    q = quantize(x, spec, np.random.default_rng(1))
    back = dequantize_sum(q, spec).astype(np.float64)
    assert np.max(np.abs(back - x)) <= spec.step * (1 + 1e-6)
    # unbiased: the mean rounding error is far below one step (std of the mean ~ step / sqrt(N))
    assert abs(np.mean(back - x)) < 5 * spec.step / np.sqrt(len(x))
    y = np.full(20000, 0.3 * spec.step)  # a value a third of the way between two levels
    assert abs(np.mean(dequantize_sum(quantize(y, spec, np.random.default_rng(2)), spec)) - y[0]) < 0.05 * spec.step


def test_clipped_coordinates_counted_in_the_quantizing_pass():
    spec = QuantizationSpec(32, 0.5, 8)
    x = np.array([0.1, -0.7, 0.5, -0.5, 2.0, 0.49, -3.0, 0.0], dtype=np.float32)
    q, clipped = quantize_counting_clipped(x, spec, np.random.default_rng(4))
    assert clipped == 3  # exactly the entries with |x| > r; +-r itself is not clipped
    assert np.array_equal(q, quantize(x, spec, np.random.default_rng(4)))
    stage = QuantizeStage(ModularPlainSum(32), bits=32, clip_range=0.5, num_clients=8)
    ctx = _ctx()
    msgs = [ClientMessage(1, x), ClientMessage(2, np.zeros(8, dtype=np.float32)), ClientMessage(3, -x)]
    for m in msgs:
        stage.client(m, ctx)
    assert ctx.measurements["quantize_clipped"] == 6.0  # summed over the clients of the round


def test_quantization_deterministic_per_client_seed():
    stage = QuantizeStage(ModularPlainSum(32), bits=32, num_clients=8)
    m = _messages()[0]
    assert np.array_equal(stage.client(m, _ctx()).vector, stage.client(m, _ctx()).vector)
    assert not np.array_equal(stage.client(m, _ctx()).vector, stage.client(m, _ctx(seed=8)).vector)


def test_modular_sum_rejects_float_vectors():
    with pytest.raises(ValueError):
        ModularPlainSum(32).aggregate(_messages(n=2), _ctx())
    with pytest.raises(ValueError):
        SecureSum().aggregate(_messages(n=3), _ctx())


def test_complete_graph_threshold():
    assert complete_graph_threshold(30, 0.1) == 21  # floor(2n/3) + 1
    assert complete_graph_threshold(30, 0.4) == 18  # n - ceil(0.4 n), still a strict majority
    with pytest.raises(ConfigError):
        complete_graph_threshold(30, 0.6)
    assert SecureSum(tolerated_dropout=0.4).params_for(30).threshold == 18


def test_fewer_than_three_clients_fail_the_round():
    msgs = [m.replace(vector=np.zeros(DIM, dtype=np.uint32)) for m in _messages(n=2)]
    with pytest.raises(RoundFailed):
        SecureSum().aggregate(msgs, _ctx())


@pytest.mark.parametrize("bits", [20, 32, 64])
def test_signed_integer_inputs_give_the_exact_signed_sum(bits):
    """The norm-proof stage feeds signed integer vectors straight into the sum."""
    rng = np.random.default_rng(bits)
    msgs = [ClientMessage(i, rng.integers(-5000, 5000, DIM), extras={FIELD_VECTOR_KEY: [int(rng.integers(0, 2**62))]})
            for i in range(6)]
    exact = np.sum([m.vector for m in msgs], axis=0)
    secure = SecureSum(bits=bits, dropout={2: "masked_input"}).aggregate(msgs, _ctx())
    kept = [m for m in msgs if m.client_id != 2]
    plain = ModularPlainSum(bits).aggregate(kept, _ctx())
    assert secure.vector.dtype == plain.vector.dtype == np.int64
    assert np.array_equal(secure.vector, np.sum([m.vector for m in kept], axis=0))
    assert np.array_equal(secure.vector, plain.vector) and secure.field_sum == plain.field_sum
    assert not np.array_equal(secure.vector, exact)  # client 2's input really is left out
    with pytest.raises(ValueError):  # signed and unsigned mixed
        ModularPlainSum(bits).aggregate([msgs[0], msgs[1].replace(vector=np.zeros(DIM, dtype=np.uint32))], _ctx())


def test_sparse_active_secure_sum_refused_at_construction():
    """``SecureSum(graph="sparse", active=True)`` is refused before any round (the ring cut,
    docs/secagg.md); the research opt-in still builds the sparse active sets."""
    with pytest.raises(ConfigError, match="Ring cut by uneven share delivery"):
        SecureSum(graph="sparse", active=True)
    unsafe = SecureSum(graph="sparse", active=True, unsafe_sparse_active=True, corruption_rate=0.05, tolerated_dropout=0.05)
    p = unsafe.params_for(200)
    assert p.degree == 112 and p.active and p.unsafe_sparse_active
    # the complete-graph active variant derives its threshold from the corruption rate, at any n
    assert SecureSum(active=True, corruption_rate=0.1).params_for(200).degree is None
