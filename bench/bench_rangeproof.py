"""Benchmarks of the Bulletproofs core: range proofs and the inner-product argument.

Run: ``python -m pytest bench/bench_rangeproof.py --benchmark-columns=min,median,rounds``.
Each group carries its own baseline measured in the same run: a multi-exponentiation of the
size the verifier performs (the floor any verifier of this design pays).
"""
import random

import pytest

from rangeproof import (
    ORDER,
    InnerProductProof,
    RangeProof,
    Transcript,
    generators,
    msm,
    verify_range_proofs,
)
from rangeproof.range_proof import range_generators

RANGE_SHAPES = [(64, 1), (64, 8), (64, 64)]
IPA_SIZES = [2**10, 2**12, 2**14]


def _range_inputs(n_bits, m, seed=0):
    rng = random.Random(seed)
    values = [rng.randrange(1 << n_bits) for _ in range(m)]
    blindings = [rng.randrange(ORDER) for _ in range(m)]
    range_generators(n_bits * m)
    return values, blindings


@pytest.mark.parametrize("n_bits,m", RANGE_SHAPES)
def test_range_prove(benchmark, n_bits, m):
    benchmark.group = f"range proof n={n_bits} m={m}"
    values, blindings = _range_inputs(n_bits, m)
    proof, _ = benchmark.pedantic(
        lambda: RangeProof.prove(Transcript(b"bench"), values, blindings, n_bits),
        rounds=3 if m < 64 else 2, iterations=1)
    benchmark.extra_info["proof_bytes"] = len(proof.to_bytes())
    benchmark.extra_info["proof_bytes_compact"] = len(proof.to_bytes_compact())


@pytest.mark.parametrize("n_bits,m", RANGE_SHAPES)
def test_range_verify(benchmark, n_bits, m):
    benchmark.group = f"range proof n={n_bits} m={m}"
    values, blindings = _range_inputs(n_bits, m)
    proof, V = RangeProof.prove(Transcript(b"bench"), values, blindings, n_bits)
    benchmark.pedantic(lambda: proof.verify(Transcript(b"bench"), V, n_bits),
                       rounds=5, iterations=1)


@pytest.mark.parametrize("n_bits,m", RANGE_SHAPES)
def test_range_verify_baseline_msm(benchmark, n_bits, m):
    """Baseline: one multi-exponentiation of the verifier's size (2nm + 2 lg nm + m + 6)."""
    benchmark.group = f"range proof n={n_bits} m={m}"
    nm = n_bits * m
    size = 2 * nm + 2 * (nm.bit_length() - 1) + m + 6
    pts = generators(b"bench baseline", size)
    rng = random.Random(1)
    scalars = [rng.randrange(ORDER) for _ in range(size)]
    benchmark.pedantic(lambda: msm(scalars, pts), rounds=5, iterations=1)


def test_range_batch_verify_8_single_proofs(benchmark):
    benchmark.group = "range proof batch of 8 (n=64 m=1)"
    items = []
    for k in range(8):
        values, blindings = _range_inputs(64, 1, seed=k)
        proof, V = RangeProof.prove(Transcript(b"bench %d" % k), values, blindings, 64)
        items.append((b"bench %d" % k, proof, V))
    benchmark.pedantic(
        lambda: verify_range_proofs([(Transcript(l), p, V, 64) for l, p, V in items]),
        rounds=5, iterations=1)


def _ipa_inputs(n):
    rng = random.Random(n)
    G = generators(b"bench ipa G", n)
    H = generators(b"bench ipa H", n)
    Q = generators(b"bench ipa Q", 1)[0]
    a = [rng.randrange(ORDER) for _ in range(n)]
    b = [rng.randrange(ORDER) for _ in range(n)]
    return G, H, Q, a, b


@pytest.mark.parametrize("n", IPA_SIZES)
def test_ipa_prove(benchmark, n):
    benchmark.group = f"inner product n={n}"
    G, H, Q, a, b = _ipa_inputs(n)
    ones = [1] * n
    proof = benchmark.pedantic(
        lambda: InnerProductProof.create(Transcript(b"bench"), Q, ones, ones, G, H, a, b),
        rounds=2, iterations=1)
    benchmark.extra_info["proof_bytes"] = len(proof.to_bytes())
    benchmark.extra_info["proof_bytes_compact"] = len(proof.to_bytes_compact())


@pytest.mark.parametrize("n", IPA_SIZES)
def test_ipa_verify(benchmark, n):
    benchmark.group = f"inner product n={n}"
    G, H, Q, a, b = _ipa_inputs(n)
    ones = [1] * n
    P = msm(a + b + [sum(x * y for x, y in zip(a, b))], G + H + [Q])
    proof = InnerProductProof.create(Transcript(b"bench"), Q, ones, ones, G, H, a, b)
    benchmark.pedantic(
        lambda: proof.verify(n, Transcript(b"bench"), ones, ones, P, Q, G, H),
        rounds=3, iterations=1)


@pytest.mark.parametrize("n", IPA_SIZES)
def test_ipa_baseline_msm(benchmark, n):
    """Baseline: the verifier's multi-exponentiation size (2n + 2 lg n + 2) alone."""
    benchmark.group = f"inner product n={n}"
    size = 2 * n + 2 * (n.bit_length() - 1) + 2
    pts = generators(b"bench baseline", size)
    rng = random.Random(2)
    scalars = [rng.randrange(ORDER) for _ in range(size)]
    benchmark.pedantic(lambda: msm(scalars, pts), rounds=3, iterations=1)
