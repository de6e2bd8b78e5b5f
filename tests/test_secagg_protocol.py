"""The protocol end to end in process: exact sums, dropouts at every step, thresholds, variants."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.driver import STEPS, DropoutPlan, run_round
from secagg.errors import ConfigError, TooFewSurvivors
from secagg.messages import SHARE_CIPHERTEXT_BYTES
from secagg.shamir import SHARE_BYTES
from secagg.vss import POINT_BYTES
from secagg.params import P256_ORDER, SecAggParams


def _inputs(params: SecAggParams, dim: int, seed: int):
    rng = np.random.default_rng(seed)
    dtype = np.uint32 if params.mask_bits <= 32 else np.uint64
    hi = 1 << params.mask_bits
    x = {u: rng.integers(0, hi, dim, dtype=np.uint64 if params.mask_bits == 64 else np.int64, endpoint=False).astype(dtype)
         for u in params.client_ids}
    f = {u: [int.from_bytes(rng.bytes(32), "big") % params.field_modulus for _ in range(params.field_dim)]
         for u in params.client_ids}
    return x, f


def _expected(params: SecAggParams, x, f, survivors):
    total = 0
    vec = np.zeros(next(iter(x.values())).shape, dtype=object)
    for u in survivors:
        vec = vec + x[u].astype(object)
    vec = np.array([int(v) % params.modulus for v in vec], dtype=object)
    fsum = tuple(sum(f[u][i] for u in survivors) % params.field_modulus for i in range(params.field_dim))
    return vec, fsum


def _check_exact(params, report, x, f):
    assert not report.client_errors
    res = report.result
    vec, fsum = _expected(params, x, f, res.survivors)
    assert [int(v) for v in res.vector] == list(vec)
    assert res.field_vector == fsum


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(3, 10),
    dim=st.integers(1, 40),
    k=st.sampled_from([1, 7, 16, 31, 32, 33, 63, 64]),
    data=st.data(),
)
def test_exact_sum_property(n, dim, k, data):
    degree = data.draw(st.sampled_from([None] + list(range(2, n - 1, 2))), label="degree")
    holders = n if degree is None else degree + 1
    active = data.draw(st.booleans(), label="active")
    t = data.draw(st.integers(holders // 2 + 1 if active else 2, holders), label="t")
    field_dim = data.draw(st.integers(0, 3), label="field_dim")
    # the sparse active variant is research only (docs/secagg.md, "Ring cut by uneven share delivery");
    # its code still has to compute the exact sum
    params = SecAggParams(num_clients=n, threshold=t, mask_bits=k, degree=degree, active=active, field_dim=field_dim,
                          unsafe_sparse_active=active and degree is not None)
    # a dropout plan within the budgets (at least t holders in every neighbourhood at every step;
    # the active variant on a SecAgg+ graph also keeps below degree / 2 per neighbourhood)
    budget = min(params.neighbour_dropout_budget, params.dropout_budget)
    assert budget == holders - t or (active and degree is not None)
    drops = data.draw(st.lists(st.sampled_from(list(params.client_ids)), max_size=budget, unique=True), label="dropped")
    plan = DropoutPlan({u: data.draw(st.sampled_from(STEPS), label=f"step{u}") for u in drops})
    x, f = _inputs(params, dim, seed=n * 1000 + dim)
    report = run_round(params, x, field_inputs=f if field_dim else None, dropout=plan)
    _check_exact(params, report, x, f)
    lost = {u for u, s in plan.drop_at.items() if STEPS.index(s) <= STEPS.index("masked_input")}
    assert set(report.result.survivors) == set(params.client_ids) - lost


@pytest.mark.parametrize("step", STEPS, ids=lambda s: f"drop-at-{s}")
@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
def test_dropouts_at_each_step(step, active):
    params = SecAggParams(num_clients=7, threshold=5, active=active, field_dim=2)
    x, f = _inputs(params, 64, seed=1)
    report = run_round(params, x, field_inputs=f, dropout=DropoutPlan({2: step, 6: step}))
    _check_exact(params, report, x, f)
    in_sum = STEPS.index(step) > STEPS.index("masked_input")
    assert (2 in report.result.survivors) is in_sum
    assert (6 in report.result.dropped) is not in_sum
    if in_sum and (active or step == "unmask"):
        assert set(report.result.late) == {2, 6}


@pytest.mark.parametrize("step", STEPS, ids=lambda s: f"too-many-at-{s}")
def test_below_threshold_fails(step):
    params = SecAggParams(num_clients=6, threshold=4, active=True)
    x, f = _inputs(params, 8, seed=2)
    with pytest.raises(TooFewSurvivors) as info:
        run_round(params, x, dropout=DropoutPlan({1: step, 2: step, 3: step}))
    assert info.value.need == 4 and info.value.have < 4


def test_sparse_graph_exact_with_dropouts():
    params = SecAggParams.secagg_plus(100, dropout_rate=0.1, corruption_rate=0.1)
    assert params.degree is not None and params.degree < 99
    x, f = _inputs(params, 16, seed=3)
    plan = DropoutPlan.random(list(params.client_ids), 0.08, np.random.default_rng(4))
    report = run_round(params, x, dropout=plan)
    _check_exact(params, report, x, f)
    # every client sends shares to its neighbours only: far fewer than n - 1 ciphertexts up (and
    # unmasking shares back), besides its 2t commitment points, the masked input and small messages
    fixed = 2 * params.threshold * POINT_BYTES + 16 * 4 + 600
    per_neighbour = (2 + SHARE_CIPHERTEXT_BYTES) + (3 + SHARE_BYTES)
    assert max(report.upload_bytes.values()) < 90 * per_neighbour + fixed


def test_same_seed_same_bytes():
    params = SecAggParams(num_clients=5, threshold=3, active=True, field_dim=1)
    x, f = _inputs(params, 10, seed=5)
    a = run_round(params, x, field_inputs=f, seed=11, round_id=bytes(16))
    b = run_round(params, x, field_inputs=f, seed=11, round_id=bytes(16))
    assert a.upload_bytes == b.upload_bytes and a.download_bytes == b.download_bytes
    assert np.array_equal(a.result.vector, b.result.vector)


def test_upload_is_4_bytes_per_coordinate_at_k32():
    params = SecAggParams.classic(4)
    x, f = _inputs(params, 1000, seed=6)
    report = run_round(params, x)
    masked = 23 + 1 + 4 + 4 * 1000 + 2
    # the rest: keys, 3 share bundles with their two share commitments each, the unmask answer
    assert all(masked < b < masked + 800 for b in report.upload_bytes.values())


@pytest.mark.parametrize(
    "kwargs",
    [dict(num_clients=1, threshold=1), dict(num_clients=5, threshold=6), dict(num_clients=5, threshold=1),
     dict(num_clients=5, threshold=3, mask_bits=65), dict(num_clients=6, threshold=3, active=True),
     dict(num_clients=8, threshold=3, degree=3), dict(num_clients=8, threshold=3, degree=7)],
    ids=["n1", "t>n", "t1", "k65", "active-minority", "odd-degree", "degree-too-big"],
)
def test_bad_parameters_rejected(kwargs):
    with pytest.raises(ConfigError):
        SecAggParams(**kwargs)


def test_field_modulus_default_is_p256_order():
    assert SecAggParams.classic(3).field_modulus == P256_ORDER
