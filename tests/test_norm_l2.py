"""L2 norm proofs: completeness, binding to the context, encodings, and cheating provers."""
import random

import numpy as np
import pytest

from cheating_provers import centered, l2_real, square_norm_mod_q

from rangeproof.errors import EncodingError, ProvingError, VerificationError
from rangeproof.generators import pedersen_bases
from rangeproof.group import ORDER
from rangeproof.norm import (L2Proof, NormStatement, commit_and_prove, commit_vector, l2_params, prove, verify,
                             verify_batch)
from rangeproof.norm.commitment import vector_generators
from rangeproof.norm.params import SMALLNESS_PROJECTIONS
from rangeproof.norm.projection import Projection

D = 256
M = 1 << 10
B, BT = pedersen_bases()


def stmt(round_id=4, client_id=9, **kw):
    args = dict(round_id=round_id, client_id=client_id, dim=D, norm="l2", bound=M, scale=1024.0)
    args.update(kw)
    return NormStatement(**args)


def honest_vector(seed=0, norm=0.9 * M):
    v = np.random.default_rng(seed).normal(size=D)
    return np.trunc(v * (norm / np.linalg.norm(v))).astype(np.int64)


@pytest.fixture(scope="module")
def honest():
    st = stmt()
    x = honest_vector()
    rnd = random.Random(1)
    C, r = commit_vector(x, rng=rnd.getrandbits)
    proof = prove(st, x, C, r, rng=rnd.getrandbits)
    return st, x, C, r, proof, proof.to_bytes()


def test_parameters_meet_the_soundness_target():
    for d, bound in ((1_199_882, 1 << 16), (D, M), (1, 1), (1 << 30, (1 << 31) - 1)):
        p = l2_params(d, bound)
        assert p.soundness_bits >= 64
        assert p.bound_factor == 1.0 and p.bound_sq == bound * bound < 1 << 64
        assert p.projections == SMALLNESS_PROJECTIONS
        T = p.half_range
        assert d * bound * bound < T * T  # honest projections in [-T, T)
        assert d * (2 * T - 1) ** 2 + (1 << 64) <= ORDER  # no wrap-around (docs/proofs.md)
    for bad in (0, 1 << 31):
        with pytest.raises(ValueError):
            l2_params(D, bad)


def test_completeness_and_round_trip(honest):
    st, x, C, r, proof, data = honest
    again = L2Proof.from_bytes(data)
    assert again.to_bytes() == data
    verify(st, C, data)
    verify(st, C, again)


def test_same_randomness_gives_the_same_proof(honest):
    st, x, C, r, proof, data = honest
    rnd = random.Random(1)
    C2, r2 = commit_vector(x, rng=rnd.getrandbits)
    assert prove(st, x, C2, r2, rng=rnd.getrandbits).to_bytes() == data


@pytest.mark.parametrize("change", [dict(round_id=5), dict(client_id=10), dict(bound=M + 1),
                                    dict(scale=1000.0), dict(dim=D + 1)])
def test_replay_under_another_context_is_rejected(honest, change):
    st, x, C, r, proof, data = honest
    with pytest.raises(VerificationError):
        verify(stmt(**change), C, data)


def test_wrong_commitment_is_rejected(honest):
    st, x, C, r, proof, data = honest
    other, _ = commit_vector(x)  # same vector, other blinding
    for bad in (other, C + BT, C + vector_generators(D)[0]):
        with pytest.raises(VerificationError):
            verify(st, bad, data)


def test_flipped_bytes_in_every_component_are_rejected(honest):
    st, x, C, r, proof, data = honest
    sizes = [4, 2, 33 * 128, 33]  # magic, count, V, C_S
    for blob in (proof.range_z.to_bytes_compact(), proof.range_s.to_bytes_compact()):
        sizes += [4, len(blob)]
    nl_start = len(sizes)
    sizes += [1] + [33] * (3 * len(proof.nl.splits))  # chunks, (C_j, Y_j, C_S,j) per split
    for part in proof.nl.parts:
        k = len(part.L)
        sizes += [1, 33 * k, 33 * k, 33 * k, 33, 33, 32, 32]  # rounds, L, R, W, A1, A2, z, rho'
    assert sum(sizes[nl_start:]) == len(proof.nl.to_bytes())
    assert sum(sizes) == len(data)
    positions, start = [], 0
    for size in sizes:  # first, middle and last byte of every field
        positions += sorted({start, start + size // 2, start + size - 1})
        start += size
    for i in positions:
        bad = bytearray(data)
        bad[i] ^= 0x10
        with pytest.raises((EncodingError, VerificationError)):
            verify(st, C, bytes(bad))


def test_malformed_encodings(honest):
    st, x, C, r, proof, data = honest
    for bad in (b"", data[:3], b"XXXX" + data[4:], data[:-1], data + b"\x00", data[:4000],
                data[:4] + b"\x00\x07" + data[6:], b"NL2\x03" + data[4:]):
        with pytest.raises(EncodingError):
            L2Proof.from_bytes(bad)


def test_honest_prover_refuses_out_of_bound_input():
    st = stmt()
    x = honest_vector(norm=1.01 * M)
    C, r = commit_vector(x)
    with pytest.raises(ProvingError, match="exceeds the bound"):
        prove(st, x, C, r)
    with pytest.raises(ProvingError):
        prove(st, x[:-1], C, r)
    with pytest.raises(ProvingError):
        prove(st, x.astype(np.float64), C, r)


def test_batch_verification_names_the_bad_proof(honest):
    st, x, C, r, proof, data = honest
    bad = bytearray(data)
    bad[len(data) - 1] ^= 1
    out = verify_batch([(st, C, data), (st, C, bytes(bad)), (stmt(client_id=3), C, data), (st, C, b"junk")])
    assert out == [True, False, False, False]


# --- cheating provers (more in tests/test_norm_cheaters.py) ----------------------------------

def true_projection(st, C, xs):
    t = st.transcript(C)
    return Projection(t.challenge_bytes(b"projection seed", 32), SMALLNESS_PROJECTIONS, D).apply_mod_q(xs)


def modular_sqrt_of_minus_one():
    g = 2
    while pow(g, (ORDER - 1) // 2, ORDER) != ORDER - 1:
        g += 1
    w = pow(g, (ORDER - 1) // 4, ORDER)
    assert w * w % ORDER == ORDER - 1
    return w


def adversarial_vectors():
    rng = np.random.default_rng(5)
    small = [int(v) for v in rng.integers(-20, 20, D)]
    w = modular_sqrt_of_minus_one()
    half = (ORDER + 1) // 2
    yield "one huge coordinate", [ORDER // 3 if j == 17 else v for j, v in enumerate(small)]
    yield "all near q/2", [ORDER // 2 + v for v in small]
    yield "(q+1)/2 everywhere", [half] * D
    a, b = 0x1234567, 0x7654321
    yield "rank-1 structured", [pow(a, j // 16, ORDER) * pow(b, j % 16, ORDER) % ORDER for j in range(D)]
    # sum_j x_j^2 = w^2 + 1 + ... = small mod q: passes the norm-linear argument and M^2 - S
    yield "wraps sum of squares", [w, 1] + small[2:]


@pytest.mark.parametrize("name,xs", list(adversarial_vectors()))
def test_large_vectors_have_large_checked_projections(name, xs):
    """Step 1 of the soundness argument on concrete shapes: some range-checked projection of a
    vector with a coordinate >= 2T (centered) falls outside [-T, T)."""
    st = stmt()
    T = st.l2_params().half_range
    assert max(abs(centered(v)) for v in xs) >= 2 * T
    if name == "wraps sum of squares":
        assert square_norm_mod_q(xs) < M * M
    C, _ = commit_vector(xs)
    z = [centered(v) for v in true_projection(st, C, xs)]
    outside = sum(1 for v in z if not -T <= v < T)
    assert outside >= 16, (name, outside)  # about half of the 128 in expectation


@pytest.mark.slow
def test_wraparound_cheater_is_caught_whatever_it_commits():
    """x with sum_j x_j^2 = 0 mod q: (a) the true projections in the V_k (out of range), (b) small
    fake projections (the link to C through Y fails)."""
    st = stmt()
    T = st.l2_params().half_range
    xs = list(dict(adversarial_vectors())["wraps sum of squares"])
    rnd = random.Random(7)
    C, r = commit_vector(xs, rng=rnd.getrandbits)
    zt = [centered(v) for v in true_projection(st, C, xs)]
    proof = l2_real(st, xs, C, r, rnd.getrandbits)
    with pytest.raises(VerificationError):
        verify(st, C, proof.to_bytes())
    fake = [v if -T <= v < T else 0 for v in zt]
    proof = l2_real(st, xs, C, r, rnd.getrandbits, z=fake)
    with pytest.raises(VerificationError):
        verify(st, C, proof.to_bytes())


@pytest.mark.slow
def test_oversized_small_vector_is_caught_whatever_it_commits():
    """Every coordinate small, the norm 3 M: (a) the true S (the range proof on M^2 - S fails),
    (b) S = M^2 in C_S (the norm-linear argument fails), (c) the witness x / 3 against C (the
    norm-linear argument fails)."""
    st = stmt()
    x = honest_vector(seed=3, norm=3 * M)
    xs = [int(v) for v in x]
    rnd = random.Random(8)
    C, r = commit_vector(x, rng=rnd.getrandbits)
    for kw, witness in ((dict(), xs), (dict(S=M * M), xs), (dict(), [v // 3 for v in xs])):
        proof = l2_real(st, witness, C, r, rnd.getrandbits, **kw)
        with pytest.raises(VerificationError):
            verify(st, C, proof.to_bytes())


def test_harness_is_faithful():
    """The cheating-prover harness makes a valid proof when fed the honest values, so the
    rejections above come from the lies, not from the harness."""
    st = stmt()
    x = honest_vector(seed=4, norm=0.5 * M)
    xs = [int(v) % ORDER for v in x]
    rnd = random.Random(9)
    C, r = commit_vector(x, rng=rnd.getrandbits)
    z = [centered(v) for v in true_projection(st, C, xs)]
    verify(st, C, l2_real(st, xs, C, r, rnd.getrandbits, z=z).to_bytes())


def test_exact_square_norm_matches_python_ints():
    from rangeproof.norm.l2 import exact_square_norm
    rng = np.random.default_rng(7)
    # 45e6 gives two int64 chunks of 5000 coordinates; 2^31 and up take the Python-int path
    for m in (0, 1, 1000, 45_000_000, 2 ** 31 - 1, 2 ** 31, 2 ** 40, 2 ** 62):
        x = rng.integers(-m, m, size=5000, endpoint=True, dtype=np.int64)
        x[:2] = [m, -m]
        assert exact_square_norm(x) == sum(int(v) * int(v) for v in x)
    for x in (np.array([np.iinfo(np.int64).min, 3], dtype=np.int64),
              np.array([np.iinfo(np.uint64).max, 3], dtype=np.uint64),
              np.array([-(2 ** 31), 2 ** 31 - 1], dtype=np.int32), np.zeros(0, dtype=np.int64)):
        assert exact_square_norm(x) == sum(int(v) * int(v) for v in x.tolist())


def test_projection_refuses_entries_that_wrap_under_abs_or_a_cast():
    proj = Projection(bytes(32), 8, 4)
    for bad in (np.array([0, np.iinfo(np.int64).min, 0, 0], dtype=np.int64),
                np.array([0, np.iinfo(np.uint64).max, 0, 0], dtype=np.uint64),
                np.array([0, 2 ** 31, 0, 0], dtype=np.int64), np.array([0, -(2 ** 31), 0, 0])):
        with pytest.raises(ValueError, match="below 2"):
            proj.apply(bad)
    assert len(proj.apply(np.array([2 ** 31 - 1, -(2 ** 31) + 1, 0, 5]))) == 8


def test_batch_with_one_bad_proof_costs_log_many_checks(monkeypatch):
    """One bad proof among eight: the failing batch is bisected, so the honest seven are accepted
    with about 2 lg 8 + 1 multi-exponentiations, not one per client."""
    from rangeproof.norm import batch as batch_mod
    from rangeproof.norm.terms import Accumulator

    rnd = random.Random(5)
    items = []
    for c in range(8):
        st = NormStatement(round_id=4, client_id=c, dim=64, norm="l2", bound=M, scale=1024.0)
        x = np.array([rnd.randrange(-20, 20) for _ in range(64)], dtype=np.int64)
        C, _, proof = commit_and_prove(st, x, rng=rnd.getrandbits)
        items.append((st, C, proof))
    st5, C5, _ = items[5]
    items[5] = (st5, C5 + BT, items[5][2])  # a proof for another commitment
    checks = []
    original = Accumulator.check
    monkeypatch.setattr(Accumulator, "check", lambda self: checks.append(1) or original(self))
    assert verify_batch(items, rng=rnd.getrandbits) == [True] * 5 + [False] + [True] * 2
    assert len(checks) <= 2 * 3 + 1
