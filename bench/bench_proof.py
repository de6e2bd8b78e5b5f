"""pytest-benchmark: norm-bound proofs at small dimensions, with their baseline in the same run.

The baseline is the commitment itself (one ``d``-term multi-exponentiation, the floor of any
scheme that commits to every coordinate); proving and verifying are reported next to it so
their ratio to the floor can be read off one table. Run with::

    python -m pytest bench/bench_proof.py --benchmark-only
"""
import numpy as np
import pytest

from rangeproof.norm import NormStatement, commit_vector, prove, verify

pytest.importorskip("pytest_benchmark")

CASES = [("l2", 1024, 1 << 12), ("l2", 4096, 1 << 12), ("linf", 256, 100)]


def _setup(norm, dim, bound):
    rng = np.random.default_rng(dim)
    if norm == "l2":
        v = rng.normal(size=dim)
        x = np.trunc(v * (0.9 * bound / np.linalg.norm(v))).astype(np.int64)
        st = NormStatement(round_id=0, client_id=1, dim=dim, norm="l2", bound=bound, scale=1.0,
                           projections=1024)
    else:
        x = rng.integers(-bound, bound + 1, dim)
        st = NormStatement(round_id=0, client_id=1, dim=dim, norm="linf", bound=bound, scale=1.0)
    return st, x


@pytest.mark.parametrize("norm,dim,bound", CASES)
def test_baseline_commit(benchmark, norm, dim, bound):
    st, x = _setup(norm, dim, bound)
    commit_vector(x)  # derive and cache the generators outside the timing
    benchmark.group = f"{norm} d={dim}"
    benchmark.pedantic(commit_vector, args=(x,), rounds=3, iterations=1)


@pytest.mark.parametrize("norm,dim,bound", CASES)
def test_prove(benchmark, norm, dim, bound):
    st, x = _setup(norm, dim, bound)
    C, r = commit_vector(x)
    prove(st, x, C, r)  # warm the generator caches
    benchmark.group = f"{norm} d={dim}"
    benchmark.pedantic(prove, args=(st, x, C, r), rounds=2, iterations=1)


@pytest.mark.parametrize("norm,dim,bound", CASES)
def test_verify(benchmark, norm, dim, bound):
    st, x = _setup(norm, dim, bound)
    C, r = commit_vector(x)
    data = prove(st, x, C, r).to_bytes()
    benchmark.group = f"{norm} d={dim}"
    benchmark.extra_info["proof_bytes"] = len(data)
    benchmark.pedantic(verify, args=(st, C, data), rounds=3, iterations=1)
