"""The norm-linear argument of the exact L2 proof: ``C`` opens to ``x`` with ``Y = <x, v>`` and
``C_S = <x, x>``; its challenge products and its fast prover paths."""
import random

import numpy as np
import pytest

from rangeproof.errors import EncodingError, ProvingError, VerificationError
from rangeproof.generators import generators, pedersen_bases
from rangeproof.group import ORDER, msm
from rangeproof.norm.challenge_products import (add_challenge_products, challenge_products,
                                                challenge_products_unreduced, dot_limbs)
from rangeproof.norm.commitment import vector_generators
from rangeproof.norm.norm_linear import NormLinearProof
from rangeproof.norm.terms import Accumulator
from rangeproof.transcript import Transcript

B, BT = pedersen_bases()


def statement(d, seed=1, top=1000):
    rnd = random.Random(seed)
    G = generators(b"test norm linear", d)
    x = [rnd.randrange(-top, top) for _ in range(d)]
    v = [rnd.randrange(ORDER) for _ in range(d)]
    r, s, sigma = (rnd.randrange(ORDER) for _ in range(3))
    C = msm(x + [r], G + [BT])
    Y = msm([sum(a * b for a, b in zip(x, v)), s], [B, BT])
    C_S = msm([sum(a * a for a in x), sigma], [B, BT])
    return G, x, v, r, s, sigma, C, Y, C_S, rnd


def prove(G, x, r, v, s, sigma, rnd):
    return NormLinearProof.create(Transcript(b"nl"), G, x, r, v, s, sigma, rng=rnd.getrandbits)


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 13, 64, 65])
def test_completeness_and_round_trip(d):
    G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(d)
    proof = prove(G, x, r, v, s, sigma, rnd)
    data = proof.to_bytes()
    assert len(data) == NormLinearProof.encoded_size(max(0, (d - 1).bit_length()))
    NormLinearProof.from_bytes(data).verify(Transcript(b"nl"), G, v, C, Y, C_S)


def test_large_entries_take_the_general_path():
    """Entries of any size (no bucket rounds): the same statement, proven and verified."""
    G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(37, top=ORDER // 2)
    prove(G, x, r, v, s, sigma, rnd).verify(Transcript(b"nl"), G, v, C, Y, C_S)


def test_false_statements_rejected():
    G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(29)
    proof = prove(G, x, r, v, s, sigma, rnd)
    lies = [
        (C, Y + B, C_S),  # another <x, v>
        (C, Y, C_S + B),  # <x, x> + 1
        (C, Y, C_S - B),  # <x, x> - 1
        (C + G[3], Y, C_S),  # another vector
        (C, Y + BT, C_S),  # another blinding
    ]
    for C2, Y2, S2 in lies:
        with pytest.raises(VerificationError):
            proof.verify(Transcript(b"nl"), G, v, C2, Y2, S2)
    with pytest.raises(VerificationError):  # another transcript
        proof.verify(Transcript(b"other"), G, v, C, Y, C_S)
    # the prover made to claim S + 1 (the real prover, its C_S holding the lie)
    C_lie = msm([sum(a * a for a in x) + 1, sigma], [B, BT])
    with pytest.raises(VerificationError):
        prove(G, x, r, v, s, sigma, rnd).verify(Transcript(b"nl"), G, v, C, Y, C_lie)


def test_y_as_terms_equals_y_as_a_point():
    """The verifier may give Y as msm(scalars, points) + b B (the L2 proof's sum of V_k)."""
    G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(17)
    proof = prove(G, x, r, v, s, sigma, rnd)
    P1 = generators(b"test y terms", 2)
    c = [5, 7]
    rest = Y - msm(c, P1) - msm([9], [B])  # Y = msm(c, P1) + rest + 9 B
    proof.verify(Transcript(b"nl"), G, v, C, (c + [1], P1 + [rest], 9), C_S)
    with pytest.raises(VerificationError):
        proof.verify(Transcript(b"nl"), G, v, C, (c + [1], P1 + [rest], 10), C_S)


def test_batched_in_an_accumulator():
    acc = Accumulator()
    for seed in (1, 2):
        _, x, v, r, s, sigma, C, Y, C_S, rnd = statement(21, seed=seed)
        G = vector_generators(21)
        C = msm(x + [r], G + [BT])
        proof = prove(G, x, r, v, s, sigma, rnd)
        acc.add_linear_form(proof.verification_terms(Transcript(b"nl"), 21, v, C, Y, C_S))
    assert acc.check()


def test_malformed_encodings_and_refusals():
    G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(9)
    data = prove(G, x, r, v, s, sigma, rnd).to_bytes()
    for bad in (b"", data[:-1], data + b"\x00", bytes([40]) + data[1:], bytes([3]) + data[1:]):
        with pytest.raises(EncodingError):
            NormLinearProof.from_bytes(bad)
    for i in (1, 34, 100, len(data) - 40, len(data) - 1):
        bad = bytearray(data)
        bad[i] ^= 0x04
        with pytest.raises((EncodingError, VerificationError)):
            NormLinearProof.from_bytes(bytes(bad)).verify(Transcript(b"nl"), G, v, C, Y, C_S)
    with pytest.raises(VerificationError):  # rounds do not match d
        NormLinearProof.from_bytes(data).verify(Transcript(b"nl"), G[:4], v[:4], C, Y, C_S)
    with pytest.raises(ProvingError):
        NormLinearProof.create(Transcript(b"nl"), G, x[:-1], r, v, s, sigma)


def _direct_products(us, d, lo_one):
    k = len(us)
    out = []
    for i in range(d):
        p = 1
        for j, u in enumerate(us):
            bit = (i >> (k - 1 - j)) & 1
            if lo_one:
                p = p * (pow(u, -1, ORDER) if bit else 1) % ORDER
            else:
                p = p * (u if bit else pow(u, -1, ORDER)) % ORDER
        out.append(p)
    return out


@pytest.mark.parametrize("lo_one", [False, True])
@pytest.mark.parametrize("k,d", [(0, 1), (1, 2), (3, 5), (11, 1500), (12, 4096)])
def test_challenge_products_match_their_definition(lo_one, k, d):
    rnd = random.Random(k)
    us = [rnd.randrange(1, ORDER) for _ in range(k)]
    want = _direct_products(us, d, lo_one) if d <= 64 else None
    got = challenge_products(us, d, 3, lo_one=lo_one)
    if want is not None:
        assert got == [3 * w % ORDER for w in want]
    assert [a % ORDER for a in challenge_products_unreduced(us, d, 3, lo_one=lo_one)] == got
    total = add_challenge_products([1] * d, us, d, 3, lo_one=lo_one)
    assert [(a - 1) % ORDER for a in total] == got
    limbs = np.random.default_rng(k).integers(-2 ** 20, 2 ** 20, size=(d, 3))
    v = [int(a) + (int(b) << 8) + (int(c) << 16) for a, b, c in limbs.tolist()]
    assert dot_limbs(limbs, 8, us, 3, lo_one=lo_one) == sum(a * b for a, b in zip(got, v)) % ORDER
