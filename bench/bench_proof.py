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
        st = NormStatement(round_id=0, client_id=1, dim=dim, norm="l2", bound=bound, scale=1.0)
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


# --- the linear-form prover's generator folding (rangeproof/norm/generator_fold.py) ----------
# Baselines in the same run: folding the points every round (the textbook prover), never
# materializing them (every round's cross terms over all d original generators), and the
# planned materializations without the bucket rounds (rangeproof.group.msm_small).

LF_DIM = 4096


def _lf_plans(k, d):
    from rangeproof.norm.generator_fold import materialization_plan

    return {
        "planned (bucket rounds + materializations)": None,
        "baseline: planned materializations, no bucket rounds": (0, materialization_plan(d)),
        "baseline: fold every round": (0, frozenset(range(k))),
        "baseline: never materialize": (0, frozenset()),
    }


@pytest.mark.parametrize("plan", list(_lf_plans(12, LF_DIM)))
def test_linear_form_prover_schedule(benchmark, monkeypatch, plan):
    import random

    import rangeproof.norm.generator_fold as generator_fold
    from rangeproof.group import ORDER
    from rangeproof.norm.commitment import vector_generators
    from rangeproof.norm.linear_form import LinearFormProof
    from rangeproof.transcript import Transcript

    k = (LF_DIM - 1).bit_length()
    chosen = _lf_plans(k, LF_DIM)[plan]
    if chosen is not None:
        monkeypatch.setattr(generator_fold, "fold_plan", lambda d, top: chosen)
    rnd = random.Random(1)
    G = vector_generators(LF_DIM)
    x = [int(rnd.gauss(0, 60)) for _ in range(LF_DIM)]  # a quantized update's typical size
    v = [rnd.randrange(ORDER) for _ in range(LF_DIM)]

    def run():
        return LinearFormProof.create(Transcript(b"bench lf"), G, x, 5, v, 7, rng=rnd.getrandbits)

    benchmark.group = f"linear-form prover d={LF_DIM}"
    benchmark.pedantic(run, rounds=2, iterations=1)
