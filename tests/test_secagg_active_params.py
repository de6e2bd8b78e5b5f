"""The active variant's parameters, graph seed and budgets: known answers and independent checks."""
from __future__ import annotations

import hashlib
import math
import struct

import numpy as np
import pytest
from scipy.stats import binom

from secagg.driver import run_round
from secagg.errors import ConfigError, DropoutBudgetExceeded
from secagg.graph import GRAPH_SEED_LABEL, RING_POSITION_LABEL, graph_seed, keyed_neighbours, ring_order
from secagg.params import GRINDING_BITS, SecAggParams, complete_graph_active_threshold, secagg_plus_parameters
from fl.aggregation.secure_sum import SecureSum
from secagg.transcripts import CONSISTENCY_LABEL, consistency_transcript

RID = bytes(range(16))
# (X25519 c^PK 32 bytes, P-256 s^PK 33 bytes): the seed hashes the bytes, not the points
KEYS = {u: (bytes([u]) * 32, bytes([2]) + bytes([u + 100]) * 32) for u in (1, 2, 3, 5)}


def test_labels_are_versioned_and_distinct():
    labels = [GRAPH_SEED_LABEL, RING_POSITION_LABEL, CONSISTENCY_LABEL]
    assert len(set(labels)) == 3
    assert all(lab.startswith(b"sabre/secagg/") and lab.rsplit(b"/", 1)[1].startswith(b"v") for lab in labels)


def test_graph_seed_known_answer():
    seed = graph_seed(RID, 5, KEYS)
    spec = hashlib.sha256(GRAPH_SEED_LABEL + RID + struct.pack(">HH", 5, 4)
                          + b"".join(struct.pack(">H", u) + c + s for u, (c, s) in sorted(KEYS.items()))).digest()
    assert seed == spec
    assert seed.hex() == "8242f298fa8d7a4177b2238e3796d3681182327ba2367e178d61925b10566ad0"
    # every key, every id and the round enter the seed
    assert graph_seed(bytes(16), 5, KEYS) != seed
    assert graph_seed(RID, 6, KEYS) != seed
    assert graph_seed(RID, 5, {**KEYS, 5: (KEYS[5][0], bytes(33))}) != seed
    assert graph_seed(RID, 5, {4 if u == 5 else u: k for u, k in KEYS.items()}) != seed
    with pytest.raises(ValueError):
        graph_seed(RID, 5, {1: (b"short", bytes(33))})
    with pytest.raises(ValueError):  # a 32-byte (X25519-sized) s^PK
        graph_seed(RID, 5, {1: (bytes(32), bytes(32))})


def test_ring_order_known_answer():
    seed = graph_seed(RID, 5, KEYS)
    vk = {u: hashlib.sha256(bytes([u])).digest() for u in range(1, 9)}
    p = SecAggParams(num_clients=8, threshold=3, degree=2, active=True, unsafe_sparse_active=True)
    order = ring_order(p, seed, vk)
    assert order == [4, 5, 6, 2, 8, 1, 7, 3]
    assert order == sorted(vk, key=lambda u: hashlib.sha256(RING_POSITION_LABEL + seed + vk[u]).digest())
    g = keyed_neighbours(p, seed, vk)
    assert all(g[order[i]] == {order[i - 1], order[(i + 1) % 8]} for i in range(8))


def test_consistency_transcript_known_answer():
    seed = graph_seed(RID, 5, KEYS)
    t = consistency_transcript(RID, seed, (1, 2, 5))
    assert t == CONSISTENCY_LABEL + RID + seed + bytes([0, 3, 0, 1, 0, 2, 0, 5])
    assert hashlib.sha256(t).hexdigest() == "918db43937bee8a64ab76f4d54776897a9dd7c587fdcfad22d1a46f7bce4a5bf"
    with pytest.raises(ValueError):
        consistency_transcript(RID, seed[:16], (1, 2, 5))


# the table of docs/secagg.md ("The parameters, both variants"): (K, t, round budget, neighbourhood budget)
TABLE = {
    (30, 0.1, False): (None, 16, 14, 14), (30, 0.1, True): (None, 17, 13, 13),
    (30, 0.05, False): (None, 16, 14, 14), (30, 0.05, True): (None, 16, 14, 14),
    (100, 0.1, False): (74, 38, 62, 37), (100, 0.1, True): (None, 56, 44, 44),
    (100, 0.05, False): (34, 18, 82, 17), (100, 0.05, True): (None, 53, 47, 47),
    (1000, 0.1, False): (84, 43, 957, 42), (1000, 0.1, True): (None, 551, 449, 449),
    (1000, 0.05, False): (38, 20, 980, 19), (1000, 0.05, True): (None, 526, 474, 474),
    (10000, 0.1, False): (94, 48, 9952, 47), (10000, 0.1, True): (None, 5501, 4499, 4499),
    (10000, 0.05, False): (42, 22, 9978, 21), (10000, 0.05, True): (None, 5251, 4749, 4749),
}
#: the sparse active derivation, reachable only with ``unsafe_sparse_active`` (research on the fix)
UNSAFE_SPARSE_TABLE = {
    (1000, 0.1): (356, 234, 266, 121), (1000, 0.05): (122, 85, 151, 37),
    (10000, 0.1): (392, 257, 2204, 134), (10000, 0.05): (132, 91, 1154, 40),
}


@pytest.mark.parametrize("key", sorted(TABLE), ids=lambda k: f"n{k[0]}-{k[1]}-{'active' if k[2] else 'semi'}")
def test_parameter_table(key):
    n, rate, active = key
    if active:  # the complete graph, whatever n: worst case over floor(rate n) colluders
        g = secagg_plus_parameters(n, dropout_rate=rate, corruption_rate=rate, active=True)
        assert g.threshold == complete_graph_active_threshold(n, math.floor(rate * n))
        got = (g.degree, g.threshold, g.dropout_budget, g.neighbour_dropout_budget)
        p = SecAggParams(num_clients=n, threshold=g.threshold, active=True, dropout_budget=g.dropout_budget)
        assert p.tolerated_corrupt_holders >= math.floor(rate * n)
    else:
        p = SecAggParams.secagg_plus(n, dropout_rate=rate, corruption_rate=rate)
        got = (p.degree, p.threshold, p.dropout_budget, p.neighbour_dropout_budget)
    assert got == TABLE[key]


@pytest.mark.parametrize("key", sorted(UNSAFE_SPARSE_TABLE), ids=lambda k: f"n{k[0]}-{k[1]}")
def test_unsafe_sparse_parameter_table(key):
    n, rate = key
    p = SecAggParams.secagg_plus(n, dropout_rate=rate, corruption_rate=rate, active=True, unsafe_sparse_active=True)
    assert (p.degree, p.threshold, p.dropout_budget, p.neighbour_dropout_budget) == UNSAFE_SPARSE_TABLE[key]
    with pytest.raises(ConfigError, match="uneven share delivery"):
        SecAggParams.secagg_plus(n, dropout_rate=rate, corruption_rate=rate, active=True)


def _lg_sf_ge(a, n, p):
    return 0.0 if a <= 0 else (-math.inf if a > n else binom.logsf(a - 1, n, p) / math.log(2))


@pytest.mark.parametrize("n", [1000, 10000])
@pytest.mark.parametrize("rate", [0.1, 0.05])
def test_active_bounds_recomputed(n, rate):
    """The sparse derivation's bounds (``unsafe_sparse_active``; docs/secagg.md: the split term rests on an
    assumption the ring cut breaks), recomputed here from scipy for the returned (K, t, D, D_N)."""
    g = secagg_plus_parameters(n, dropout_rate=rate, corruption_rate=rate, active=True, unsafe_sparse_active=True)
    k, t, d, d_n = g.degree, g.threshold, g.dropout_budget, g.neighbour_dropout_budget
    gamma, lg = rate, math.log2(n)
    views = lg + _lg_sf_ge(2 * t - k - 1, k, gamma) + GRINDING_BITS
    split = 2 * lg - 1 + min(2 * _lg_sf_ge(k // 2 - d_n, k // 2, gamma), _lg_sf_ge(k - d, k, gamma)) + GRINDING_BITS
    assert views <= -41 and split <= -41
    assert math.log2(2 ** views + 2 ** split) == pytest.approx(g.log2_security_failure)
    holders = lg + binom.logcdf(t - 1, k, 1 - 2 * rate) / math.log(2)
    local = lg + binom.logsf(d_n, k, 2 * rate) / math.log(2)
    whole = binom.logsf(d, n, 2 * rate) / math.log(2)
    assert holders <= -21 and local <= -22 and whole <= -22
    assert g.log2_correctness_failure <= -20
    # the smallest: one less of t breaks two views; K - 2 has no threshold that works
    assert lg + _lg_sf_ge(2 * (t - 1) - k - 1, k, gamma) + GRINDING_BITS > -41 or (t - 1) * 2 <= k + 1
    # fewer grinding tries never need a larger degree
    assert secagg_plus_parameters(n, dropout_rate=rate, corruption_rate=rate, active=True, grinding_bits=0,
                                  unsafe_sparse_active=True).degree <= k


@pytest.mark.parametrize("n", [3, 4, 5, 10, 30, 31, 64, 99, 100])
@pytest.mark.parametrize("rate", [0.0, 0.05, 0.1, 0.2])
def test_complete_graph_active_rule(n, rate):
    c = math.floor(rate * n)
    t = complete_graph_active_threshold(n, c)
    assert 2 * t > n + c and 2 * (t - 1) <= n + c
    try:
        g = secagg_plus_parameters(n, dropout_rate=rate, corruption_rate=rate, active=True)
    except ConfigError:
        assert t > n - c - math.floor(rate * n)
        return
    assert g.degree is None and g.threshold == t and g.dropout_budget == g.neighbour_dropout_budget == n - t
    assert SecAggParams(num_clients=n, threshold=g.threshold, active=True).tolerated_corrupt_holders >= c


def test_budget_validation_and_defaults():
    # active SecAgg+: below K/2 per neighbourhood; semi-honest: what t allows
    p = SecAggParams(num_clients=30, threshold=6, degree=10, active=True, unsafe_sparse_active=True)
    assert (p.dropout_budget, p.neighbour_dropout_budget, p.tolerated_corrupt_holders) == (24, 4, 0)
    semi = SecAggParams(num_clients=30, threshold=6, degree=10)
    assert (semi.dropout_budget, semi.neighbour_dropout_budget) == (24, 5)
    assert SecAggParams.classic(30, active=True).dropout_budget == 9
    for bad in (dict(dropout_budget=-1), dict(dropout_budget=24), dict(neighbour_dropout_budget=5),
                dict(dropout_budget=True), dict(neighbour_dropout_budget=1.0)):
        with pytest.raises(ConfigError):
            SecAggParams(num_clients=30, threshold=7, degree=10, active=True, unsafe_sparse_active=True, **bad)
    for bad in (dict(dropout_budget=-1), dict(dropout_budget=14), dict(neighbour_dropout_budget=14),
                dict(dropout_budget=True), dict(neighbour_dropout_budget=1.0)):
        with pytest.raises(ConfigError):
            SecAggParams(num_clients=30, threshold=17, active=True, **bad)
    with pytest.raises(ConfigError):
        secagg_plus_parameters(100, dropout_rate=0.1, corruption_rate=0.1, active=True, grinding_bits=200)


def test_secure_sum_active_refuses_a_threshold_two_views_can_reach():
    with pytest.raises(ConfigError):
        SecureSum(active=True, threshold=16, corruption_rate=0.1).params_for(30)
    assert SecureSum(active=True, threshold=17, corruption_rate=0.1).params_for(30).threshold == 17
    assert SecureSum(threshold=16).params_for(30).threshold == 16  # the semi-honest variant is not affected


def _inputs(params, dim=5):
    rng = np.random.default_rng(0)
    return {u: rng.integers(0, 2**32, dim, dtype=np.uint64).astype(np.uint32) for u in params.client_ids}


@pytest.mark.parametrize("degree", [None, 10], ids=["complete", "unsafe-sparse"])
def test_honest_server_fails_closed_beyond_the_budget(degree):
    params = SecAggParams(num_clients=30, threshold=17 if degree is None else 7, degree=degree, active=True,
                          dropout_budget=5, unsafe_sparse_active=degree is not None)
    x = _inputs(params)
    with pytest.raises(DropoutBudgetExceeded) as info:
        run_round(params, x, exclude={u: "failed proof" for u in (1, 6, 11, 16, 21, 26)}, seed=1)
    assert info.value.scope == "round" and info.value.missing == 6 and info.value.budget == 5
    # within the budget the round completes and is exact
    rep = run_round(params, x, exclude={u: "failed proof" for u in (1, 11, 21)}, seed=1)
    assert not rep.client_errors and len(rep.result.survivors) == 27
    expected = sum(x[u].astype(np.uint64) for u in rep.result.survivors) % (1 << 32)
    assert np.array_equal(rep.result.vector, expected.astype(np.uint32))
