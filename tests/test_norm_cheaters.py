"""Cheating provers against the norm proofs, on both sides of block and folding boundaries.

Every proof below is made by the project's own prover with its honest checks bypassed
(``tests/cheating_provers.py``) for a vector the statement excludes; ``verify`` and
``verify_batch`` must reject each one, and accept the controls beside them (an honest vector and
one with ``||x||^2 = M^2`` exactly). The families:

* over the bound with small coordinates: ``||x||^2 = M^2 + 1`` and norms of 1.001 M, 1.1 M and
  1.5 M (the issue's 1.1 M client at ``d = 4,096`` among them), each proven with its true
  ``<x, x>`` in ``C_S`` (the range proof on ``M^2 - S`` fails) and with ``S = M^2`` (the
  norm-linear argument fails);
* small except one coordinate near ``T`` or above (``T - 1``, ``2T - 1``, ``2T``, ``q/3``);
* wrap-around: ``sum x_j^2 = q + 5`` over the integers, ``x_0^2 = -1 mod q``, entries near
  ``q/2``, ``(q+1)/2`` ("one half") on every or on half the coordinates, each with its true
  projections in the ``V_k`` (some fall outside ``[-T, T)``) and with in-range fake ones (the
  link through ``Y`` fails);
* a prover that grinds its commitment for the projection with the fewest out-of-range rows.

The default run takes a few dimensions (the issue's ``d = 4,096``, one block boundary, one power
of two); ``SABRE_EXHAUSTIVE=1`` runs every family on both sides of every block boundary of the
projection and every power of two up to ``2^17`` (long: run it when the proof changes). The
expansion itself is checked at every boundary in ``tests/test_norm_projection.py``.

``test_kernel_attack_on_the_old_derivation`` rebuilds the attack that the version-1 projection
allowed (columns ``64 K - 1`` apart were equal): under that derivation, patched back in, a vector
in the kernel of the range-checked rows has no out-of-range projection, so only the exactness of
the new proof stops it; with the old sketch gone, the test checks that it is still rejected, and
that the current derivation gives it out-of-range projections.
"""
import os

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cheating_provers import (
    centered,
    commit,
    l2_grind,
    l2_real,
    linf_real,
    outside_count,
    project,
    rng_of,
    square_norm_mod_q,
    sum_of_squares,
)
from rangeproof.errors import ProvingError, VerificationError
from rangeproof.group import ORDER
from rangeproof.norm import NormStatement, commit_and_prove, verify, verify_batch
from rangeproof.norm.l2 import exact_square_norm, projection_for
from rangeproof.norm.projection import BLOCK, Projection

EXHAUSTIVE = os.environ.get("SABRE_EXHAUSTIVE") == "1"
M = 500  # d M^2 < 2^30 up to d = 4,294: 16-bit projections (the range proof is the fixed cost)
OLD_PERIOD = 64 * 128 - 1  # where the version-1 derivation repeated columns, at R = 128 rows


def stmt(d, bound=M, norm="l2"):
    return NormStatement(round_id=11, client_id=5, dim=d, norm=norm, bound=bound, scale=1024.0)


def sqrt_minus_one():
    g = 2
    while pow(g, (ORDER - 1) // 2, ORDER) != ORDER - 1:
        g += 1
    return pow(g, (ORDER - 1) // 4, ORDER)


def with_square_norm(d, target, seed):
    """A vector of small integers with ``sum x_j^2 = target`` exactly: a random part of about
    half the target on all but the last 12 coordinates, then the rest as a sum of squares
    (:func:`sum_of_squares`, a handful of terms) in the last ones."""
    free = 12
    if d < free + 1:
        raise ValueError("with_square_norm: d must exceed 12")
    rng = np.random.default_rng(seed)
    base = rng.normal(size=d - free)
    base = np.trunc(base * (np.sqrt(target / 2) / np.linalg.norm(base))).astype(np.int64).tolist()
    rest = sum_of_squares(target - sum(v * v for v in base))
    assert len(rest) <= free
    out = base + rest + [0] * (free - len(rest))
    assert sum(v * v for v in out) == target
    return out


def over_bound(d):
    """Small coordinates, norm over M: ``(name, x, lie)`` with ``lie`` the cases also proven with
    ``S = M^2`` in ``C_S``."""
    yield "||x||^2 = M^2 + 1", with_square_norm(d, M * M + 1, d)
    for f in (1.001, 1.1, 1.5):
        target = int(np.ceil((f * M) ** 2))
        yield f"||x|| = {f} M", with_square_norm(d, target, d + int(f * 1000))


def not_small(d, st):
    """A coordinate of centered size near ``T`` or above, or a wrap-around modulo q."""
    T = st.l2_params().half_range
    rng = np.random.default_rng(d + 1)
    small = [int(v) for v in rng.integers(-3, 4, d)]
    half = (ORDER + 1) // 2
    yield "one coordinate T - 1", [T - 1 if j == d - 1 else v for j, v in enumerate(small)]
    yield "one coordinate 2T - 1", [2 * T - 1 if j == d // 2 else v for j, v in enumerate(small)]
    yield "one coordinate 2T", [2 * T if j == 0 else v for j, v in enumerate(small)]
    yield "one coordinate q/3", [ORDER // 3 if j == d // 3 else v for j, v in enumerate(small)]
    wrap = sum_of_squares(ORDER + 5)  # sum x_j^2 = q + 5 over the integers: <x, x> = 5 mod q
    yield "sum of squares q + 5", wrap + [0] * (d - len(wrap))
    yield "x_0^2 = -1 mod q", [sqrt_minus_one(), 1] + [0] * (d - 2)
    yield "entries near q/2", [ORDER // 2 + v for v in small]
    yield "(q+1)/2 everywhere", [half] * d
    yield "(q+1)/2 on half the coordinates", [half if j % 2 else 0 for j in range(d)]


def check_all_rejected(st, cheats, controls):
    """verify rejects every cheat; verify_batch accepts only the controls."""
    items = []
    for name, C, proof in cheats:
        blob = proof.to_bytes()
        with pytest.raises(VerificationError):
            verify(st, C, blob)
        items.append((st, C, blob))
    for C, _, proof in controls:
        verify(st, C, proof.to_bytes())
        items.append((st, C, proof.to_bytes()))
    want = [False] * len(cheats) + [True] * len(controls)
    assert verify_batch(items, rng=rng_of(1)) == want, [n for n, _, _ in cheats]


def controls(st, seed):
    """An honest vector at 0.9 M and one with ``||x||^2 = M^2`` exactly, through the honest
    entry point."""
    x = np.random.default_rng(seed).normal(size=st.dim)
    x = np.trunc(x * (0.9 * st.bound / np.linalg.norm(x))).astype(np.int64)
    exact = np.array(with_square_norm(st.dim, st.bound ** 2, seed + 1), dtype=np.int64)
    assert exact_square_norm(exact) == st.bound ** 2
    return [commit_and_prove(st, x, rng=rng_of(seed)), commit_and_prove(st, exact, rng=rng_of(seed + 2))]


def run_over_bound(d, lie_for=None):
    """Every over-bound family with its true ``S``; those named in ``lie_for`` (all when None)
    also with ``S = M^2``."""
    st = stmt(d)
    cheats = []
    for i, (name, xs) in enumerate(over_bound(d)):
        assert exact_square_norm(np.array(xs)) > M * M
        rnd = rng_of(100 + i)
        C, r = commit(xs, rnd)
        cheats.append((name, C, l2_real(st, xs, C, r, rnd)))
        if lie_for is None or name in lie_for:
            cheats.append((name + ", S = M^2", C, l2_real(st, xs, C, r, rnd, S=M * M)))
    check_all_rejected(st, cheats, controls(st, d))


def run_not_small(d, names=None, fakes_for=None):
    """The not-small families (those in ``names``; all when None) with their true projections;
    those in ``fakes_for`` (all when None) also with in-range fake projections."""
    st = stmt(d)
    T = st.l2_params().half_range
    cheats = []
    for i, (name, xs) in enumerate(not_small(d, st)):
        if names is not None and name not in names:
            continue
        rnd = rng_of(200 + i)
        C, r = commit(xs, rnd)
        cheats.append((name, C, l2_real(st, xs, C, r, rnd)))
        if fakes_for is None or name in fakes_for:
            z = project(projection_for(st.transcript(C), st.l2_params(), d), xs)
            fake = [v if -T <= v < T else 0 for v in z]
            cheats.append((name + ", in-range fake projections", C, l2_real(st, xs, C, r, rnd, z=fake)))
    check_all_rejected(st, cheats, controls(st, d)[:1])


def test_harness_is_faithful():
    """Fed an in-bound vector, the cheating provers make proofs that verify: the rejections
    elsewhere come from the vectors, not from the harness."""
    d = 100
    st = stmt(d)
    xs = with_square_norm(d, M * M, 3)
    rnd = rng_of(2)
    C, r = commit(xs, rnd)
    verify(st, C, l2_real(st, xs, C, r, rnd).to_bytes())
    z = project(projection_for(st.transcript(C), st.l2_params(), d), xs)
    verify(st, C, l2_real(st, xs, C, r, rnd, z=z, S=M * M).to_bytes())
    lst = stmt(16, bound=100, norm="linf")
    xs = [int(v) for v in np.random.default_rng(3).integers(-100, 101, 16)]
    C, r = commit(xs, rnd)
    verify(lst, C, linf_real(lst, xs, C, r, rnd).to_bytes())


def test_the_families_are_what_they_claim():
    d = 64
    st = stmt(d)
    T = st.l2_params().half_range
    for name, xs in over_bound(d):
        assert M * M < exact_square_norm(np.array(xs)) <= int(np.ceil((1.5 * M) ** 2))
        assert max(abs(v) for v in xs) < T
    fam = dict(not_small(d, st))
    assert sum(v * v for v in fam["sum of squares q + 5"]) == ORDER + 5
    assert square_norm_mod_q(fam["sum of squares q + 5"]) == 5
    assert square_norm_mod_q(fam["x_0^2 = -1 mod q"]) == 0
    assert square_norm_mod_q(fam["(q+1)/2 everywhere"]) == d // 4  # 1/4 per coordinate
    for name, xs in fam.items():  # all but T - 1 have a coordinate of 2T or more (centered)
        assert (max(abs(centered(v)) for v in xs) >= 2 * T) == (name not in ("one coordinate T - 1", "one coordinate 2T - 1"))


def test_honest_prover_accepts_exactly_m_squared_and_refuses_one_more():
    d = 300
    st = stmt(d)
    x = np.array(with_square_norm(d, M * M, 5), dtype=np.int64)
    C, r, proof = commit_and_prove(st, x, rng=rng_of(5))
    verify(st, C, proof.to_bytes())
    with pytest.raises(ProvingError, match="exceeds the bound"):
        commit_and_prove(st, np.array(with_square_norm(d, M * M + 1, 5), dtype=np.int64))


def test_project_matches_the_dense_matrix_for_any_residues():
    proj = Projection(bytes(range(32)), 16, 300)
    D = proj.dense().astype(object)
    xs = [ORDER // 3, (ORDER + 1) // 2, -(1 << 100), 5] + [ORDER - 1] * 296
    want = [centered(int(v)) for v in D @ np.array([centered(v) for v in xs], dtype=object)]
    assert [centered(v) for v in project(proj, xs)] == want


@pytest.mark.slow
def test_over_bound_clients_are_rejected_at_the_issues_dimension():
    """The issue's case, d = 4,096: M^2 + 1, 1.001 M, 1.1 M (accepted by the old sketch proof)
    and 1.5 M, each with its true S; the 1.1 M client also with S = M^2."""
    run_over_bound(4096, lie_for={"||x|| = 1.1 M"})


@pytest.mark.slow
def test_not_small_vectors_are_rejected_past_a_block_boundary():
    run_not_small(BLOCK + 1, names={"one coordinate 2T", "sum of squares q + 5",
                                    "(q+1)/2 on half the coordinates"}, fakes_for=set())


@pytest.mark.slow
def test_every_family_is_rejected_at_a_power_of_two_boundary():
    """Every family on both sides of 2^8 (the folding pads 257 to 512); the lies in C_S and in the
    V_k for one family each (all of them under SABRE_EXHAUSTIVE=1)."""
    run_over_bound(257, lie_for={"||x||^2 = M^2 + 1"})
    run_not_small(255, fakes_for={"x_0^2 = -1 mod q"})


def _boundaries(limit=1 << 17):
    ds = set()
    for b in range(BLOCK, limit + 1, BLOCK):
        ds |= {b - 1, b + 1}
    for k in range(4, 18):
        ds |= {(1 << k) - 1, (1 << k) + 1}
    return sorted(ds)


@pytest.mark.skipif(not EXHAUSTIVE, reason="every boundary up to 2^17; set SABRE_EXHAUSTIVE=1")
@pytest.mark.parametrize("d", _boundaries())
def test_every_cheat_at_every_boundary(d):
    run_over_bound(d)
    run_not_small(d)


def _old_stream(self, b, cols):
    """The version-1 expansion: column block ``b`` started the AES-CTR counter at ``b``."""
    enc = Cipher(algorithms.AES(self._key), modes.CTR(b.to_bytes(16, "big"))).encryptor()
    return np.frombuffer(enc.update(bytes(cols * self.rows // 4)), dtype=np.uint8)


@pytest.mark.slow
def test_kernel_attack_on_the_old_derivation(monkeypatch):
    """The version-1 attack at R = 128, d = 8,194: A (e_1 - e_8192) is in the kernel of the
    version-1 matrix, so no range-checked projection sees it. The old sketch proof accepted such
    a vector; the exact proof rejects it even under the old derivation (its <x, x> is proven),
    and under the current derivation its projections are out of range as well."""
    d = OLD_PERIOD + 3
    st = stmt(d)
    A = max(10 ** 6 * M, 2 * st.l2_params().half_range)  # a coordinate of 2T or more
    xs = [0] * d
    xs[1], xs[1 + OLD_PERIOD] = A, -A

    def attack():
        rnd = rng_of(4)
        C, r = commit(xs, rnd)
        return C, l2_real(st, xs, C, r, rnd).to_bytes()

    with monkeypatch.context() as m:
        m.setattr(Projection, "_stream", _old_stream)
        C, blob = attack()
        P = projection_for(st.transcript(C), st.l2_params(), d)
        assert not any(project(P, xs))  # in the kernel
        with pytest.raises(VerificationError):
            verify(st, C, blob)
        assert verify_batch([(st, C, blob)]) == [False]
    C, blob = attack()
    assert outside_count(st, C, xs) > 16
    with pytest.raises(VerificationError):
        verify(st, C, blob)
    assert verify_batch([(st, C, blob)]) == [False]


@pytest.mark.slow
def test_grinding_commitments_does_not_pass_a_large_coordinate():
    """A prover that re-randomizes its commitment 64 times, keeping the projection with the
    fewest out-of-range rows, for a vector with one coordinate of 2T (everything else zero, so
    <x, x> = 4 T^2 ... fits no bound) and for one with x_0^2 = -1 mod q (<x, x> = 0): every
    projection it can reach has out-of-range rows (each row is in range with probability at most
    1/2), and its proof is rejected."""
    d = 200
    st = stmt(d)
    fam = dict(not_small(d, st))
    for name in ("one coordinate 2T", "x_0^2 = -1 mod q"):
        C, r, proof, out = l2_grind(st, fam[name], 64, rng_of(7))
        assert out > 0, name
        with pytest.raises(VerificationError):
            verify(st, C, proof.to_bytes())


@pytest.mark.slow
def test_a_vector_chosen_after_the_challenge_is_rejected():
    """The prover commits to x1 (3 M), sees the challenges, and proves for x2 = x1 / 3 (in bound)
    against the same commitment: the norm-linear argument fails."""
    d = 300
    st = stmt(d)
    x1 = with_square_norm(d, 9 * M * M, 8)
    x2 = [v // 3 for v in x1]
    rnd = rng_of(9)
    C, r = commit(x1, rnd)
    with pytest.raises(VerificationError):
        verify(st, C, l2_real(st, x2, C, r, rnd).to_bytes())


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
    check_all_rejected(st, cheats, [commit_and_prove(st, xh, rng=rng_of(30))])


@pytest.mark.parametrize("d", [1000, 700])
def test_padding_coordinates_cannot_carry_the_norm(d, monkeypatch):
    """The attack that broke identity generators on the padding: the prover puts values on the
    last chunk's padding coordinates (now real generators, so they are in ``C``) whose squares
    make ``<x, x> = M^2 mod q`` for a committed ``x`` far above the bound. The padding is not
    projected, so the range checks do not see it; the padding challenge ``beta`` does. With the
    challenge switched off (patched to the zero vector, as the padding was before) the same
    attack verifies: the check is what stops it."""
    from cheating_provers import commit_with_padding, norm_linear_with_padding
    from rangeproof.norm import norm_linear as nl

    bound = 1000
    st = NormStatement(round_id=7, client_id=3, dim=d, norm="l2", bound=bound, scale=1.0)
    x = [100] * d  # ||x||^2 = 10^4 d: 3.2 M at d = 1000, 2.6 M at d = 700
    N = sum(v * v for v in x)
    assert N > bound * bound
    pad = sum_of_squares((bound * bound - N) % ORDER)
    last = nl.chunk_layout(d)[-1]
    assert 0 < len(pad) <= last.size - last.length
    rng = rng_of(d)

    def attack():
        C, r = commit_with_padding(x, pad, rng)
        with norm_linear_with_padding(pad):
            proof = l2_real(st, x, C, r, rng, S=bound * bound)
        return C, proof.to_bytes()

    C, blob = attack()
    with pytest.raises(VerificationError):
        verify(st, C, blob)
    honest = stmt(d)
    hC, _, hproof = commit_and_prove(honest, np.ones(d, dtype=np.int64), rng=rng)
    assert verify_batch([(honest, hC, hproof), (st, C, blob)], rng=rng) == [True, False]

    monkeypatch.setattr(nl, "_padding_vector",
                        lambda transcript, last: [0] * (last.size - last.length))
    C, blob = attack()
    verify(st, C, blob)  # accepted without the padding challenge
