"""Cheating provers against the norm proofs, on both sides of block and period boundaries.

Every proof below is made by the project's own prover with its honest checks bypassed
(``tests/cheating_provers.py``) for a vector the statement excludes; ``verify`` and
``verify_batch`` must reject each one, and accept the honest control beside them. The default
run covers the projection's first block boundary (every family past it, the structural ones
before it) and the period at which the version-1 derivation repeated its columns (``64 K - 1``);
``SABRE_EXHAUSTIVE=1`` adds the structural families on both sides of every block boundary and
every old period up to ``2^17`` (long: run it when the derivation changes). The expansion itself
is checked at every boundary in ``tests/test_norm_projection.py``.

``test_kernel_attack_on_the_old_derivation`` rebuilds the attack that the version-1 projection
allowed (columns ``64 K - 1`` apart were equal, so ``A (e_j - e_{j + 64K - 1})`` had zero
projections): under that derivation, patched back in, the cheater's proof verifies; under the
current one it is rejected.
"""
import os

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cheating_provers import (
    centered,
    commit,
    l2_forge,
    l2_grind,
    l2_real,
    linf_real,
    project,
    rng_of,
)
from rangeproof.errors import VerificationError
from rangeproof.group import ORDER
from rangeproof.norm import NormStatement, commit_and_prove, verify, verify_batch
from rangeproof.norm.l2 import projection_for
from rangeproof.norm.projection import BLOCK, Projection

EXHAUSTIVE = os.environ.get("SABRE_EXHAUSTIVE") == "1"
K = 512
M = 1 << 10
OLD_PERIOD = 64 * K - 1


def stmt(d, k=K, bound=M, norm="l2"):
    return NormStatement(round_id=11, client_id=5, dim=d, norm=norm, bound=bound, scale=1024.0,
                         projections=k if norm == "l2" else 0)


def sqrt_minus_one():
    g = 2
    while pow(g, (ORDER - 1) // 2, ORDER) != ORDER - 1:
        g += 1
    return pow(g, (ORDER - 1) // 4, ORDER)


def families(d, st):
    """Out-of-bound vectors (lists of ints, taken mod q), by name."""
    prm = st.l2_params()
    T = prm.half_range
    rng = np.random.default_rng(d)
    small = [int(v) for v in rng.integers(-20, 21, d)]
    A = 10 ** 6 * M
    shift = OLD_PERIOD if d > OLD_PERIOD else (BLOCK if d > BLOCK else d // 2)
    pairs = list(small)
    for j in range(min(8, d - shift)):
        pairs[j] += A
        pairs[j + shift] -= A
    yield "kernel pairs (old period or block)", pairs
    periodic = [(A if (j // 64) % 2 == 0 else -A) if j % 64 == 0 else 0 for j in range(d)]
    yield "periodic every 64 coordinates", periodic
    yield "one coordinate of 2T", [2 * T if j == d - 1 else v for j, v in enumerate(small)]
    yield "one coordinate of q/3", [ORDER // 3 if j == d // 2 else v for j, v in enumerate(small)]
    yield "2^64 - 1 (-1 as int64)", [(1 << 64) - 1 if j % 97 == 0 else v for j, v in enumerate(small)]
    yield "(q+1)/2 everywhere", [(ORDER + 1) // 2] * d
    yield "near q/2", [ORDER // 2 + v for v in small]
    yield "sum of squares wraps to small", [sqrt_minus_one(), 1] + small[2:]
    yield "every coordinate T - 1", [T - 1] * d


def check_all_rejected(st, cheats, honest):
    """verify rejects every cheat; verify_batch accepts only the honest control."""
    items = []
    for name, C, proof in cheats:
        blob = proof.to_bytes()
        with pytest.raises(VerificationError):
            verify(st, C, blob)
        items.append((st, C, blob))
    items.append((st, honest[0], honest[2].to_bytes()))
    assert verify_batch(items) == [False] * len(cheats) + [True], [n for n, _, _ in cheats]


def honest_control(st, seed):
    x = np.random.default_rng(seed).normal(size=st.dim)
    x = np.trunc(x * (0.9 * st.bound / np.linalg.norm(x))).astype(np.int64)
    return commit_and_prove(st, x, rng=rng_of(seed))


def run_families(d, names=None):
    st = stmt(d)
    cheats = []
    for i, (name, xs) in enumerate(families(d, st)):
        if names is not None and name not in names:
            continue
        rnd = rng_of(100 + i)
        C, r = commit(xs, rnd)
        cheats.append((name, C, l2_real(st, xs, C, r, rnd)))
    check_all_rejected(st, cheats, honest_control(st, d))


def test_harness_is_faithful():
    """Fed an in-bound vector, the cheating provers make proofs that verify: the rejections
    elsewhere come from the vectors, not from the harness."""
    d = BLOCK + 1
    st = stmt(d)
    x = np.random.default_rng(1).integers(-5, 6, d)
    xs = [int(v) for v in x]
    rnd = rng_of(2)
    C, r = commit(xs, rnd)
    verify(st, C, l2_real(st, xs, C, r, rnd).to_bytes())
    z = project(projection_for(st.transcript(C, 0), st.l2_params(), d), xs)
    T = st.l2_params().half_range
    forged = l2_forge(st, xs, C, r, z, sum(v * v for v in z), [v + T for v in z],
                      lambda g: sum(a * b for a, b in zip(g, z)), rnd)
    verify(st, C, forged.to_bytes())
    lst = stmt(16, bound=100, norm="linf")
    xs = [int(v) for v in np.random.default_rng(3).integers(-100, 101, 16)]
    C, r = commit(xs, rnd)
    verify(lst, C, linf_real(lst, xs, C, r, rnd).to_bytes())


def test_project_matches_the_dense_matrix_for_any_residues():
    proj = Projection(bytes(range(32)), 16, 300)
    D = proj.dense().astype(object)
    xs = [ORDER // 3, (ORDER + 1) // 2, -(1 << 100), 5] + [ORDER - 1] * 296
    want = [centered(int(v)) for v in D @ np.array([centered(v) for v in xs], dtype=object)]
    assert [centered(v) for v in project(proj, xs)] == want


STRUCTURAL = {"kernel pairs (old period or block)", "one coordinate of 2T", "(q+1)/2 everywhere"}


@pytest.mark.slow
def test_every_family_is_rejected_past_the_block_boundary():
    run_families(BLOCK + 1)


@pytest.mark.slow
@pytest.mark.parametrize("d", [BLOCK - 1, OLD_PERIOD])
def test_structural_families_are_rejected_before_the_boundaries(d):
    run_families(d, names=STRUCTURAL)


def _boundaries(limit=1 << 17):
    ds = set()
    for b in range(BLOCK, limit + 1, BLOCK):
        ds |= {b - 1, b + 1}
    for k in (512, 1024):
        for p in range(64 * k - 1, limit + 1, 64 * k - 1):
            ds |= {p, p + 1, p + 2}
    return sorted(ds)


@pytest.mark.skipif(not EXHAUSTIVE, reason="every boundary up to 2^17; set SABRE_EXHAUSTIVE=1")
@pytest.mark.parametrize("d", _boundaries())
def test_structural_families_at_every_boundary(d):
    run_families(d, names=STRUCTURAL)


def _old_stream(self, b, cols):
    """The version-1 expansion: column block ``b`` started the AES-CTR counter at ``b``."""
    enc = Cipher(algorithms.AES(self._key), modes.CTR(b.to_bytes(16, "big"))).encryptor()
    return np.frombuffer(enc.update(bytes(cols * self.rows // 4)), dtype=np.uint8)


@pytest.mark.slow
def test_kernel_attack_on_the_old_derivation(monkeypatch):
    """The issue's attack at K = 512, d = 32,770: 10^6 M (e_1 - e_32768) is in the kernel of the
    version-1 matrix, so the real prover (input check bypassed) makes a proof that verifies; under
    the current derivation the same cheater is rejected."""
    d = OLD_PERIOD + 3
    st = stmt(d)
    A = 10 ** 6 * M
    xs = [0] * d
    xs[1], xs[1 + OLD_PERIOD] = A, -A

    def attack():
        rnd = rng_of(4)
        C, r = commit(xs, rnd)
        proof = l2_real(st, xs, C, r, rnd)
        return C, proof.to_bytes()

    with monkeypatch.context() as m:
        m.setattr(Projection, "_stream", _old_stream)
        C, blob = attack()
        P = projection_for(st.transcript(C, 0), st.l2_params(), d)
        assert not any(project(P, xs))  # in the kernel
        verify(st, C, blob)  # the flaw: accepted
        assert verify_batch([(st, C, blob)]) == [True]
    C, blob = attack()
    with pytest.raises(VerificationError):
        verify(st, C, blob)
    assert verify_batch([(st, C, blob)]) == [False]


@pytest.mark.slow
def test_grinding_commitments_does_not_pass_an_oversized_vector():
    """A prover that re-randomizes its commitment 32 times and keeps the smallest sketch still
    cannot fit 3 M under tau (the sketch concentrates), and its proof is rejected."""
    d = BLOCK + 1
    st = stmt(d)
    x = np.random.default_rng(6).normal(size=d)
    x = np.trunc(x * (3 * M / np.linalg.norm(x))).astype(np.int64)
    C, r, proof, S = l2_grind(st, [int(v) for v in x], 32, rng_of(7))
    assert S > st.l2_params().tau
    with pytest.raises(VerificationError):
        verify(st, C, proof.to_bytes())


@pytest.mark.slow
def test_a_vector_chosen_after_the_challenge_is_rejected():
    """The prover commits to x1 (3 M), sees the projection, and proves for x2 = x1 / 3 (in bound)
    against the same commitment: the linear form on C fails; recommitting to x2 gives a new
    projection, and x1 is gone."""
    d = BLOCK + 1
    st = stmt(d)
    x1 = np.random.default_rng(8).normal(size=d)
    x1 = np.trunc(x1 * (3 * M / np.linalg.norm(x1))).astype(np.int64)
    x2 = [int(v) // 3 for v in x1]
    rnd = rng_of(9)
    C, r = commit([int(v) for v in x1], rnd)
    z2 = project(projection_for(st.transcript(C, 0), st.l2_params(), d), x2)
    T = st.l2_params().half_range
    proof = l2_forge(st, x2, C, r, z2, sum(v * v for v in z2), [v + T for v in z2],
                     lambda g: sum(a * b for a, b in zip(g, z2)), rnd)
    with pytest.raises(VerificationError):
        verify(st, C, proof.to_bytes())


@pytest.mark.parametrize("d", [7, 8, 9])
def test_linf_cheaters_are_rejected(d):
    """L-infinity: one coordinate at B + 1, at -B - 1, at q - 1 - B (small only mod 2^beta), a
    huge one and (q+1)/2, each through the real prover past its bound check."""
    bound = 100
    st = stmt(d, bound=bound, norm="linf")
    base = [int(v) for v in np.random.default_rng(d).integers(-bound, bound + 1, d)]
    cases = {
        "B + 1": bound + 1,
        "-B - 1": -bound - 1,
        "2^beta - B (wraps the range width)": (1 << st.linf_params().bits) - bound,
        "q/3": ORDER // 3,
        "(q+1)/2": (ORDER + 1) // 2,
    }
    cheats = []
    for i, (name, value) in enumerate(cases.items()):
        xs = list(base)
        xs[(i * 3) % d] = value
        rnd = rng_of(20 + i)
        C, r = commit(xs, rnd)
        cheats.append((name, C, linf_real(st, xs, C, r, rnd)))
    xh = np.array(base, dtype=np.int64)
    check_all_rejected(st, cheats, commit_and_prove(st, xh, rng=rng_of(30)))
