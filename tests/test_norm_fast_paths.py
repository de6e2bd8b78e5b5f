"""The fast paths under the norm proofs agree with the plain computations they replace.

Folded generators (any schedule of bucket rounds and materializations gives the same points and
so the same proof), small-scalar multi-exponentiation by point additions,
challenge products (reduced, unreduced, summed, and dotted with a vector given as limbs), the
transposed projection as limbs, the accumulator's combined vector scalars, and the
multi-exponentiation's input checks.
"""
import random

import numpy as np
import pytest

from rangeproof.labels import NORM_VECTOR_G

import rangeproof.norm.generator_fold as generator_fold
from rangeproof.generators import generators, pedersen_bases
from rangeproof.group import ORDER, SMALL_SCALAR_LIMIT, curve, msm, msm_small
from rangeproof.norm import blas_threads
from rangeproof.norm.challenge_products import (
    LOW_BITS,
    add_challenge_products,
    challenge_products,
    challenge_products_unreduced,
    dot_limbs,
)
from rangeproof.norm.generator_fold import FoldedGenerators, fold_plan, materialization_plan
from rangeproof.norm.linear_form import LinearFormProof
from rangeproof.norm.projection import Projection
from rangeproof.norm.terms import Accumulator
from rangeproof.transcript import Transcript

B, BT = pedersen_bases()


def naive_products(us, d, scale=1):
    k = len(us)
    out = []
    for i in range(d):
        s = scale
        for j, u in enumerate(us):
            s = s * (u if (i >> (k - 1 - j)) & 1 else pow(u, -1, ORDER)) % ORDER
        out.append(s)
    return out


@pytest.mark.parametrize("d", [1, 2, 3, 7, 8, 9, 100, 1023, 1024, 1025, 2100])
def test_challenge_products_all_forms(d):
    rnd = random.Random(d)
    k = max(0, (d - 1).bit_length())
    us = [rnd.randrange(1, ORDER) for _ in range(k)]
    scale = rnd.randrange(ORDER)
    want = naive_products(us, d, scale) if d <= 128 else None
    s = challenge_products(us, d, scale)
    if want is not None:
        assert s == want
    assert s == [v % ORDER for v in challenge_products_unreduced(us, d, scale)]
    total = [rnd.randrange(ORDER) for _ in range(d + 3)]
    summed = add_challenge_products(total, us, d, scale)
    assert [v % ORDER for v in summed] == [(t + (s[i] if i < d else 0)) % ORDER
                                           for i, t in enumerate(total)]
    assert [v % ORDER for v in add_challenge_products([], us, d, scale)] == s
    limbs = np.array([[rnd.randrange(-(1 << 20), 1 << 20) for _ in range(5)] for _ in range(d)],
                     dtype=np.int64)
    v = [sum(int(limbs[i, l]) << (8 * l) for l in range(5)) for i in range(d)]
    assert dot_limbs(limbs, 8, us, scale) == sum(a * b for a, b in zip(s, v)) % ORDER


def test_challenge_products_refuse_too_many_entries():
    with pytest.raises(ValueError):
        challenge_products([3, 5], 5)
    with pytest.raises(ValueError):
        challenge_products_unreduced([3, 5], 5)
    us = list(range(3, 3 + LOW_BITS))  # 2^LOW_BITS entries: rows of 2^LOW_BITS are summed
    too_big = np.full((1 << LOW_BITS, 1), 1 << (53 - 16 - LOW_BITS), dtype=np.int64)
    with pytest.raises(ValueError):  # float64 products would no longer be exact
        dot_limbs(too_big, 8, us)
    dot_limbs(too_big - 1, 8, us)  # just below the bound is fine


def naive_fold(G, us):
    """Folds points round by round as the protocol defines it (padding with the identity)."""
    q = ORDER
    n = 1 << max(0, (len(G) - 1).bit_length())
    cur = list(G) + [None] * (n - len(G))
    for u in us:
        half = len(cur) // 2
        ui = pow(u, -1, q)
        nxt = []
        for a, b in zip(cur[:half], cur[half:]):
            terms = [(ui, a), (u, b)]
            terms = [(c, P) for c, P in terms if P is not None]
            nxt.append(msm([c for c, _ in terms], [P for _, P in terms]) if terms else None)
        cur = nxt
    return cur


@pytest.mark.parametrize("d", [1, 2, 5, 8, 13, 37, 64, 100])
@pytest.mark.parametrize("plan", ["optimal", "never", "always", "two bucket rounds", "all buckets"])
def test_folded_generators_match_round_by_round_folding(d, plan, monkeypatch):
    rnd = random.Random(7 * d)
    G = generators(b"test fold", d)
    k = max(0, (d - 1).bit_length())
    x0 = [rnd.randint(-40, 40) for _ in range(d)]
    plans = {"never": (0, frozenset()), "always": (0, frozenset(range(k))),
             "two bucket rounds": (min(2, k), frozenset(range(1, k))), "all buckets": (k, frozenset())}
    if plan in plans:
        monkeypatch.setattr(generator_fold, "fold_plan", lambda n, top: plans[plan])
    folder = FoldedGenerators(G, small_x=x0)
    us, e = [], [1]
    xs = [v % ORDER for v in x0]  # the current vector, folded as x' = x_lo + u^-2 x_hi
    for _ in range(k):
        n = folder.length
        cur = naive_fold(G, us)
        half = n // 2
        want_L = [(xs[j], cur[half + j]) for j in range(half) if j < len(xs) and cur[half + j] is not None]
        want_R = [(xs[half + j], cur[j]) for j in range(half) if half + j < len(xs) and cur[j] is not None]
        if folder.uses_buckets():
            l_s, l_p, r_s, r_p = folder.small_cross_terms(e)
        else:
            with pytest.raises(ValueError):
                folder.small_cross_terms(e)
            l_s, l_p, r_s, r_p = folder.cross_terms(xs)
        for s_, p_, want in ((l_s, l_p, want_L), (r_s, r_p, want_R)):
            got = msm(s_, p_)
            if not got.is_infinite():
                got = msm([folder.scale], [got])
            assert got == msm([c for c, _ in want], [P for _, P in want])
        u = rnd.randrange(1, ORDER)
        ui = pow(u, -1, ORDER)
        ui2 = ui * ui % ORDER
        if folder.uses_buckets():
            e = [c for a in e for c in (a, a * ui2 % ORDER)]
        hi = max(len(xs) - half, 0)
        xs = [(a + b * ui2) % ORDER for a, b in zip(xs[:hi], xs[half:])] + xs[hi:min(len(xs), half)]
        folder.fold(u, ui)
        us.append(u)
    assert folder.final() == naive_fold(G, us)[0]


def test_the_schedule_does_not_change_the_proof(monkeypatch):
    d = 300
    rnd = random.Random(11)
    G = generators(b"test fold", d)
    x = [rnd.randrange(-100, 100) for _ in range(d)]
    v = [rnd.randrange(ORDER) for _ in range(d)]

    def make():
        r = random.Random(5)
        return LinearFormProof.create(Transcript(b"lf"), G, x, 3, v, 4, rng=r.getrandbits).to_bytes()

    reference = make()
    for plan in ((0, frozenset()), (0, frozenset(range(9))), (0, frozenset({0, 4})), (3, frozenset({2, 5})),
                 (9, frozenset()), (2, frozenset())):
        monkeypatch.setattr(generator_fold, "fold_plan", lambda n, top, p=plan: p)
        assert make() == reference
    # residues of a large vector (no bucket rounds) give the same proof as the signed form
    monkeypatch.undo()
    big = [rnd.randrange(-2**40, 2**40) for _ in range(d)]
    r1, r2 = random.Random(6), random.Random(6)
    assert LinearFormProof.create(Transcript(b"lf"), G, big, 3, v, 4, rng=r1.getrandbits).to_bytes() == \
        LinearFormProof.create(Transcript(b"lf"), G, [a % ORDER for a in big], 3, v, 4,
                               rng=r2.getrandbits).to_bytes()


def test_fold_plans_are_deterministic_and_in_range():
    for d in (1, 2, 3, 1000, 149_946, 1_199_882):
        k = max(0, (d - 1).bit_length())
        plan = materialization_plan(d)
        assert plan == materialization_plan(d) == fold_plan(d, None)[1]
        assert fold_plan(d, None)[0] == 0 and fold_plan(d, SMALL_SCALAR_LIMIT + 1)[0] == 0
        assert all(0 <= r < k - 1 for r in plan)
        r_b, plan = fold_plan(d, 60)
        assert 0 <= r_b <= k and all(r_b - 1 <= r < k - 1 for r in plan)
    assert fold_plan(1_199_882, 60)[0] > 0  # quantized updates use the bucket rounds


def test_msm_small_matches_msm():
    rnd = random.Random(9)
    pts = generators(b"test small msm", 600)
    for n, top in ((1, 1), (2, 5), (100, 3), (600, 200), (50, 1000), (600, SMALL_SCALAR_LIMIT + 5)):
        vals = [rnd.randint(-top, top) for _ in range(n)]
        assert msm_small(vals, pts[:n]) == msm(vals, pts[:n])
    assert msm_small([0, 0, 0], pts[:3]).is_infinite()
    assert msm_small([], []).is_infinite()
    with pytest.raises(ValueError):
        msm_small([1], pts[:2])
    with pytest.raises(TypeError):
        msm_small([1.5], pts[:1])
    with pytest.raises(TypeError):
        msm_small([1, 2], [pts[0], b"x"])


def test_transposed_projection_limbs_agree_with_dense():
    rng = np.random.default_rng(4)
    for rows, dim in ((16, 300), (64, 1500)):
        P = Projection(bytes(range(1, 33)), rows, dim)
        D = P.dense().astype(object)
        gamma = [int(g) for g in rng.integers(0, 2**63, rows)]
        gamma = [(g << 33) | 7 for g in gamma]  # below 2^96
        want = [int(t) % ORDER for t in D.T @ np.array(gamma, dtype=object)]
        tp = P.transpose(gamma)
        assert len(tp) == dim
        assert tp.residues() == want
        k = max(0, (dim - 1).bit_length())
        us = [int(u) for u in rng.integers(1, 2**62, k)]
        scale = 123456789
        s = challenge_products(us, dim, scale)
        assert tp.dot_challenge_products(us, scale) == sum(a * b for a, b in zip(s, want)) % ORDER
    with pytest.raises(ValueError):
        P.transpose([1 << 96] + [0] * (P.rows - 1))
    with pytest.raises(ValueError):
        P.transpose([1])


def test_accumulator_sums_vector_terms_of_many_clients():
    """Equations over the vector generators from several accumulators combine into one check,
    and one false equation among them makes the whole check fail."""
    rnd = random.Random(2)
    d = 40
    G = generators(NORM_VECTOR_G, d)

    def proof_terms(bad=False):
        x = [rnd.randrange(-50, 50) for _ in range(d)]
        v = [rnd.randrange(ORDER) for _ in range(d)]
        r, s = rnd.randrange(ORDER), rnd.randrange(ORDER)
        C = msm(x + [r], G + [BT])
        Y = msm([sum(a * b for a, b in zip(x, v)) + (1 if bad else 0), s], [B, BT])
        pf = LinearFormProof.create(Transcript(b"acc"), G, x, r, v, s, rng=rnd.getrandbits)
        return pf.verification_terms(Transcript(b"acc"), d, v, C, Y)

    for bad_index in (None, 0, 2):
        total = Accumulator(rnd.getrandbits)
        for i in range(3):
            single = Accumulator(rnd.getrandbits)
            single.add_linear_form(proof_terms(bad=i == bad_index))
            assert single.check() == (i != bad_index)
            total.merge(single)
        assert total.check() == (bad_index is None)


def test_msm_checks_its_inputs():
    g = curve().generator()
    with pytest.raises(ValueError):
        msm([1, 2], [g])
    with pytest.raises(TypeError):
        msm([1], [b"not a point"])
    with pytest.raises(TypeError):
        msm([1.0], [g])
    assert msm([2, ORDER - 2], [g, g]).is_infinite()


def test_single_threaded_blas_restores_the_thread_count():
    setter = blas_threads._find_setter()
    with blas_threads.single_threaded():
        a = np.ones((64, 64), dtype=np.float32)
        assert float((a @ a)[0, 0]) == 64.0
    if setter is not None:
        before = setter(1)
        setter(before)
        with blas_threads.single_threaded():
            assert setter(1) == 1
        assert setter(before) == before


def test_commitment_by_point_additions_matches_the_definition():
    from rangeproof.norm.commitment import commit_vector, to_residues, vector_generators

    rng = np.random.default_rng(8)
    for x in (rng.integers(-300, 300, 500), rng.integers(-2**40, 2**40, 50), np.zeros(7, dtype=np.int64)):
        C, r = commit_vector(x, rng=random.Random(1).getrandbits)
        G = vector_generators(len(x))
        assert C == msm(to_residues(x) + [r], G + [BT])
        assert commit_vector(x.tolist(), blinding=r)[0] == C


def test_commitment_refuses_non_integer_entries_instead_of_truncating():
    from rangeproof.norm.commitment import commit_vector

    for bad in ([1, 2.5, 3], np.array([1.0, 2.0]), [1, "2"]):
        with pytest.raises(TypeError):
            commit_vector(bad, blinding=1)
