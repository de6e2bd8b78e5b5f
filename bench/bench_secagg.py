"""Secure aggregation cost against the plaintext baseline, at reduced sizes.

Run with ``python -m pytest bench/bench_secagg.py --benchmark-only -q``.

Cases (the ``sabre bench secagg`` cases, scaled down so the file runs in well under a minute on
2 cores): 30 clients x 120,000 coordinates (1/10 of the CNN), 100 clients x 10,000, each on the
complete and the sparse (SecAgg+) graph, with and without 10 % of the clients dropping after
sharing keys. Each secure case also records in ``extra_info`` the mean client time, the server
time, the upload per client, and the plaintext numpy sum of the same number of float32 vectors
measured in the same test; the ``plain_sum`` cases give that baseline as a benchmark of its own.
``test_active_round_before_after`` times the active variant with the parameters chosen before and
after the malicious-server derivation (compare the two rows of a case: same inputs, same run). Its
``sparse`` rows use the research opt-in ``unsafe_sparse_active`` (the active variant refuses the
sparse graph: docs/secagg.md, "Ring cut by uneven share delivery"); they time the code the proper
fix will build on, not a configuration anyone should run.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from secagg.bench import bench_parameters
from secagg.driver import DropoutPlan, run_round
from secagg.params import SecAggParams

CASES = [(30, 120_000), (100, 10_000)]


def _plain_sum(vectors):
    acc = np.zeros(vectors[0].shape, dtype=np.float32)
    for v in vectors:
        np.add(acc, v, out=acc)
    return acc


@pytest.mark.parametrize("clients,dim", CASES, ids=[f"{n}x{d}" for n, d in CASES])
def test_plain_sum(benchmark, clients, dim):
    rng = np.random.default_rng(0)
    vectors = [rng.standard_normal(dim, dtype=np.float32) for _ in range(clients)]
    benchmark(_plain_sum, vectors)


@pytest.mark.parametrize("dropout", [0.0, 0.1], ids=["no-drop", "drop10"])
@pytest.mark.parametrize("graph", ["complete", "sparse"])
@pytest.mark.parametrize("clients,dim", CASES, ids=[f"{n}x{d}" for n, d in CASES])
def test_secure_round(benchmark, clients, dim, graph, dropout):
    if graph == "sparse":
        # sized to tolerate 10% dropout, which covers both simulated rates
        params = SecAggParams.secagg_plus(clients, dropout_rate=0.1, corruption_rate=0.05)
    else:
        params = SecAggParams.classic(clients)
    rng = np.random.default_rng(1)
    inputs = {u: rng.integers(0, 2**32, dim, dtype=np.uint64).astype(np.uint32) for u in params.client_ids}
    n_drop = int(round(dropout * clients))
    plan = DropoutPlan({int(u): "masked_input" for u in rng.choice(np.arange(1, clients + 1), n_drop, replace=False)})
    reports = []
    benchmark.pedantic(lambda: reports.append(run_round(params, inputs, dropout=plan)), rounds=3, iterations=1)
    last = reports[-1]
    expected = np.zeros(dim, dtype=np.uint32)
    for u in last.result.survivors:
        expected += inputs[u]
    assert np.array_equal(expected, last.result.vector)
    floats = [rng.standard_normal(dim, dtype=np.float32) for _ in range(clients)]
    plain_sum_s = min(_timed(_plain_sum, floats) for _ in range(3))  # the same-run baseline, best of 3
    alive = [u for u in params.client_ids if u not in plan.drop_at]
    benchmark.extra_info.update(
        degree=params.degree or clients - 1,
        threshold=params.threshold,
        client_s_mean=float(np.mean([last.client_seconds[u] for u in alive])),
        server_s=last.server_seconds,
        upload_bytes_per_client=float(np.mean([last.upload_bytes[u] for u in alive])),
        plain_sum_s=plain_sum_s,
    )


def _timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("graph", ["complete", "sparse"])
@pytest.mark.parametrize("clients,dim", CASES, ids=[f"{n}x{d}" for n, d in CASES])
def test_active_round_before_after(benchmark, clients, dim, graph, when):
    """The active variant with the parameters chosen before the malicious-server derivation
    ("before": semi-honest thresholds, no budget beyond t) and after it (same inputs, same run)."""
    params = bench_parameters(clients, graph=graph, active=True, before=when == "before",
                              unsafe_sparse_active=graph == "sparse")
    rng = np.random.default_rng(2)
    inputs = {u: rng.integers(0, 2**32, dim, dtype=np.uint64).astype(np.uint32) for u in params.client_ids}
    reports = []
    benchmark.pedantic(lambda: reports.append(run_round(params, inputs)), rounds=3, iterations=1)
    last = reports[-1]
    benchmark.extra_info.update(
        unsafe_sparse_active=params.unsafe_sparse_active,
        degree=params.degree or clients - 1,
        threshold=params.threshold,
        tolerated_drops=params.dropout_budget,
        neighbour_tolerated_drops=params.neighbour_dropout_budget,
        tolerated_corrupt_holders=params.tolerated_corrupt_holders,
        client_s_mean=float(np.mean(list(last.client_seconds.values()))),
        server_s=last.server_seconds,
    )


# -- components of the complete graph's cost at large n (docs/secagg.md, "The price of the complete graph")

@pytest.mark.parametrize("d", [100_000, 1_199_882])
def test_components_mask_expansion(benchmark, d):
    """One pairwise mask expanded and added in place: a client of the complete graph does n - 1."""
    from secagg.prg import MaskExpander, ring_dtype

    acc = np.zeros(d, dtype=ring_dtype(32))
    ex = MaskExpander(d, 32)
    benchmark(ex.add, acc, bytes(range(16)), 1)


@pytest.mark.parametrize("n", [1000, 10000])
def test_components_shamir_share(benchmark, n):
    """One secret shared to n holders with the active complete-graph threshold (a client shares two)."""
    from secagg.params import complete_graph_active_threshold
    from secagg.randomness import SeededRandom
    from secagg.shamir import share_secret

    t = complete_graph_active_threshold(n, n // 10)
    benchmark.pedantic(share_secret, args=(12345, list(range(1, n + 1)), t, SeededRandom(1)), rounds=1, iterations=1)
    benchmark.extra_info.update(threshold=t)


@pytest.mark.parametrize("t", [551, 5501])
def test_components_lagrange(benchmark, t):
    """Lagrange coefficients at 0 for t shares (the server computes them once per holder set)."""
    from secagg.shamir import lagrange_at_zero

    benchmark.pedantic(lagrange_at_zero.__wrapped__, args=(tuple(range(1, t + 1)),), rounds=1, iterations=1)


def test_components_x25519(benchmark):
    from secagg.keys import AgreementKey
    from secagg.randomness import SeededRandom

    rng = SeededRandom(2)
    a, b = AgreementKey.generate(rng), AgreementKey.generate(rng)
    benchmark(a.agree, b.public_bytes)


def test_components_ed25519_verify(benchmark):
    from secagg.keys import SigningKey, verify_signature
    from secagg.randomness import SeededRandom

    sk = SigningKey.generate(SeededRandom(3))
    msg = bytes(100)
    benchmark(verify_signature, sk.verify_key, sk.sign(msg), msg, "client")
