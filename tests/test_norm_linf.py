"""L-infinity norm proofs: completeness, every byte flipped, context binding, cheaters."""
import random

import numpy as np
import pytest

from rangeproof.errors import EncodingError, ProvingError, VerificationError
from rangeproof.generators import pedersen_bases
from rangeproof.group import ORDER
from rangeproof.norm import LinfProof, NormStatement, commit_vector, linf_params, prove, verify
from rangeproof.norm.commitment import vector_generators
from rangeproof.norm.linear_form import LinearFormProof
from rangeproof.norm.linf import _rhos
from rangeproof.range_proof import RangeProof

BND = 100
B0, BT = pedersen_bases()


def stmt(dim, **kw):
    args = dict(round_id=2, client_id=7, dim=dim, norm="linf", bound=BND, scale=256.0)
    args.update(kw)
    return NormStatement(**args)


def make(dim, seed=0, x=None):
    st = stmt(dim)
    if x is None:
        x = np.random.default_rng(seed).integers(-BND, BND + 1, dim)
        x[0] = BND
        x[-1] = -BND  # both ends of the range are allowed
    rnd = random.Random(seed)
    C, r = commit_vector(x, rng=rnd.getrandbits)
    return st, x, C, r, prove(st, x, C, r, rng=rnd.getrandbits)


def test_completeness_and_round_trip():
    st, x, C, r, proof = make(200)
    data = proof.to_bytes()
    assert LinfProof.from_bytes(data).to_bytes() == data
    verify(st, C, data)
    assert linf_params(200, BND).bits == 8


@pytest.mark.slow
def test_every_byte_flipped_is_rejected():
    st, x, C, r, proof = make(3, seed=1)
    data = proof.to_bytes()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 1 << (i % 8)
        with pytest.raises((EncodingError, VerificationError)):
            verify(st, C, bytes(bad))


def test_replay_and_wrong_commitment_rejected():
    st, x, C, r, proof = make(16, seed=2)
    data = proof.to_bytes()
    for other in (stmt(16, round_id=3), stmt(16, client_id=8), stmt(16, bound=BND + 1), stmt(16, scale=255.0)):
        with pytest.raises(VerificationError):
            verify(other, C, data)
    with pytest.raises(VerificationError):
        verify(st, C + vector_generators(16)[3], data)
    # an L2 statement does not accept an L-infinity proof (its encoding is not an L2 proof's)
    with pytest.raises((EncodingError, VerificationError)):
        verify(NormStatement(round_id=2, client_id=7, dim=16, norm="l2", bound=BND, scale=256.0),
               C, proof)


def test_malformed_encodings_and_refusals():
    st, x, C, r, proof = make(4, seed=3)
    data = proof.to_bytes()
    for bad in (b"", data[:10], b"NL2\x01" + data[4:], data[:-1], data + b"\x01"):
        with pytest.raises(EncodingError):
            LinfProof.from_bytes(bad)
    over = x.copy()
    over[2] = BND + 1
    with pytest.raises(ProvingError, match=r"x\[2\]"):
        prove(st, over, *commit_vector(over))
    with pytest.raises(ValueError):
        linf_params((1 << 15) + 1, BND)  # beyond one aggregated range proof


def test_cheater_one_coordinate_over_the_bound_is_caught():
    """A client with x_1 = B + 1 (or a wrap-around value) commits honestly to x and tries both
    lies: a range proof on a clipped value, or a clipped per-coordinate commitment."""
    d = 4
    st = stmt(d)
    prm = st.linf_params()
    for big in (BND, BND + 1, ORDER - 5 * BND, (ORDER + 1) // 2):
        xs = [3, big, -7, 0]
        rnd = random.Random(big % 1000)
        C, r = commit_vector(xs, rng=rnd.getrandbits)
        clipped = [max(-BND, min(BND, v if v < ORDER // 2 else v - ORDER)) for v in xs]
        t = st.transcript(C)
        g = [rnd.randrange(ORDER) for _ in range(d)]
        pad = prm.values - 2 * d
        values = [v + BND for v in clipped] + [BND - v for v in clipped] + [0] * pad
        blinds = g + [(-a) % ORDER for a in g] + [0] * pad
        rp, V = RangeProof.prove(t, values, blinds, prm.bits, rng=rnd.getrandbits)
        rho = _rhos(t, d)
        lf = LinearFormProof.create(t, vector_generators(d), xs, r, rho,
                                    sum(a * b for a, b in zip(rho, g)) % ORDER, rng=rnd.getrandbits)
        data = LinfProof(V[:d], rp, lf).to_bytes()
        if big == BND:  # the harness itself is faithful: no lie, valid proof
            verify(st, C, data)
            continue
        with pytest.raises(VerificationError):
            verify(st, C, data)


def test_prover_refuses_values_that_wrap_under_abs_or_a_cast():
    st, x, C, r, _ = make(4, seed=5)
    for bad in (np.array([0, 0, np.iinfo(np.int64).min, 0], dtype=np.int64),
                np.array([0, 0, np.iinfo(np.uint64).max, 0], dtype=np.uint64)):
        with pytest.raises(ProvingError, match=r"x\[2\].*exceeds the bound"):
            prove(st, bad, C, r)
