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
from rangeproof.norm.norm_linear import (MAX_CHUNKS, NormLinearArgument, NormLinearProof, chunk_layout,
                                          padded_dim)
from rangeproof.norm.terms import Accumulator
from rangeproof.transcript import Transcript

B, BT = pedersen_bases()


def statement(d, seed=1, top=1000):
    rnd = random.Random(seed)
    G = generators(b"test norm linear", padded_dim(d) + 1)  # one more: a lie beyond the padding
    x = [rnd.randrange(-top, top) for _ in range(d)]
    v = [rnd.randrange(ORDER) for _ in range(d)]
    r, s, sigma = (rnd.randrange(ORDER) for _ in range(3))
    C = msm(x + [r], G[:d] + [BT])
    Y = msm([sum(a * b for a, b in zip(x, v)), s], [B, BT])
    C_S = msm([sum(a * a for a in x), sigma], [B, BT])
    return G, x, v, r, s, sigma, C, Y, C_S, rnd


def prove(G, x, r, v, s, sigma, rnd):
    return NormLinearArgument.create(Transcript(b"nl"), G, x, r, v, s, sigma, rng=rnd.getrandbits)


def test_chunk_layout():
    """Power-of-two chunks that tile [0, padded_dim(d)), real coordinates first; padding only in
    the last chunk, and small next to d."""
    for d in list(range(1, 70)) + [255, 256, 257, 513, 700, 1025, 4097, 14410, 65537, 1199882]:
        layout = chunk_layout(d)
        assert 1 <= len(layout) <= MAX_CHUNKS
        offset = 0
        for i, c in enumerate(layout):
            assert c.offset == offset and c.size & (c.size - 1) == 0
            assert c.length == c.size or i == len(layout) - 1
            offset += c.size
        assert sum(c.length for c in layout) == d
        assert padded_dim(d) == offset
        assert offset - d <= max(d // 64, 256) or len(layout) == MAX_CHUNKS
    assert [(c.offset, c.size, c.length) for c in chunk_layout(1199882)] == [
        (0, 1 << 20, 1 << 20), (1 << 20, 1 << 17, 1 << 17), (1179648, 1 << 15, 20234)]


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 13, 64, 65, 513, 700])
def test_completeness_and_round_trip(d):
    G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(d)
    proof = prove(G, x, r, v, s, sigma, rnd)
    assert len(proof.parts) == len(chunk_layout(d))
    data = proof.to_bytes()
    assert len(data) == NormLinearArgument.encoded_size(d)
    NormLinearArgument.from_bytes(data).verify(Transcript(b"nl"), G, v, C, Y, C_S)


def test_one_chunk_alone():
    """A power-of-two chunk verifies on its own; other lengths are refused."""
    G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(16)
    G = G[:16]
    p = NormLinearProof.create(Transcript(b"nl1"), G, x, r, v, s, sigma, rng=rnd.getrandbits)
    p.verify(Transcript(b"nl1"), G, v, C, Y, C_S)
    with pytest.raises(ProvingError):
        NormLinearProof.create(Transcript(b"nl1"), G[:12], x[:12], r, v[:12], s, sigma)
    with pytest.raises(VerificationError):
        p.verify(Transcript(b"nl1"), G[:12], v[:12], C, Y, C_S)


def test_large_entries_take_the_general_path():
    """Entries of any size (no bucket rounds): the same statement, proven and verified."""
    G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(37, top=ORDER // 2)
    prove(G, x, r, v, s, sigma, rnd).verify(Transcript(b"nl"), G, v, C, Y, C_S)


@pytest.mark.parametrize("d", [29, 513])
def test_false_statements_rejected(d):
    G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(d)
    proof = prove(G, x, r, v, s, sigma, rnd)
    lies = [
        (C, Y + B, C_S),  # another <x, v>
        (C, Y, C_S + B),  # <x, x> + 1
        (C, Y, C_S - B),  # <x, x> - 1
        (C + G[3], Y, C_S),  # another vector
        (C + G[d - 1], Y, C_S),  # another last coordinate
        (C + G[d], Y, C_S),  # a padding coordinate (or the next one) set
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


def test_split_cannot_be_moved_between_chunks():
    """Shifting value between chunks' C_S (or Y) commitments keeps the sums but breaks the
    chunks' own equations."""
    G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(513)
    proof = prove(G, x, r, v, s, sigma, rnd)
    assert len(proof.splits) == 1
    for k in range(3):
        moved = list(proof.splits[0])
        moved[k] = moved[k] + (G[0] if k == 0 else B)
        bad = NormLinearArgument(list(proof.splits), proof.parts)
        bad.splits[0] = tuple(moved)
        with pytest.raises(VerificationError):
            NormLinearArgument.from_bytes(bad.to_bytes()).verify(Transcript(b"nl"), G, v, C, Y, C_S)


def test_y_as_terms_equals_y_as_a_point():
    """The verifier may give Y as msm(scalars, points) + b B (the L2 proof's sum of V_k)."""
    for d in (17, 513):
        G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(d)
        proof = prove(G, x, r, v, s, sigma, rnd)
        P1 = generators(b"test y terms", 2)
        c = [5, 7]
        rest = Y - msm(c, P1) - msm([9], [B])  # Y = msm(c, P1) + rest + 9 B
        proof.verify(Transcript(b"nl"), G, v, C, (c + [1], P1 + [rest], 9), C_S)
        with pytest.raises(VerificationError):
            proof.verify(Transcript(b"nl"), G, v, C, (c + [1], P1 + [rest], 10), C_S)


def test_batched_in_an_accumulator():
    acc = Accumulator()
    for seed, d in ((1, 21), (2, 513)):
        _, x, v, r, s, sigma, C, Y, C_S, rnd = statement(d, seed=seed)
        G = vector_generators(padded_dim(d))
        C = msm(x + [r], G[:d] + [BT])
        proof = prove(G, x, r, v, s, sigma, rnd)
        for t in proof.verification_terms(Transcript(b"nl"), d, v, C, Y, C_S):
            acc.add_linear_form(t)
    assert acc.check()
    _, x, v, r, s, sigma, C, Y, C_S, rnd = statement(513, seed=3)
    G = vector_generators(padded_dim(513))
    C = msm(x + [r], G[:513] + [BT])
    proof = prove(G, x, r, v, s, sigma, rnd)
    for t in proof.verification_terms(Transcript(b"nl"), 513, v, C, Y, C_S + B):
        acc.add_linear_form(t)
    assert not acc.check()


def test_malformed_encodings_and_refusals():
    G, x, v, r, s, sigma, C, Y, C_S, rnd = statement(9)
    data = prove(G, x, r, v, s, sigma, rnd).to_bytes()
    for bad in (b"", data[:-1], data + b"\x00", bytes([0]) + data[1:], bytes([5]) + data[1:],
                data[:1] + bytes([40]) + data[2:], data[:1] + bytes([3]) + data[2:]):
        with pytest.raises(EncodingError):
            NormLinearArgument.from_bytes(bad)
    for i in (1, 2, 35, 100, len(data) - 40, len(data) - 1):
        bad = bytearray(data)
        bad[i] ^= 0x04
        with pytest.raises((EncodingError, VerificationError)):
            NormLinearArgument.from_bytes(bytes(bad)).verify(Transcript(b"nl"), G, v, C, Y, C_S)
    with pytest.raises(VerificationError):  # the layout does not match d
        NormLinearArgument.from_bytes(data).verify(Transcript(b"nl"), G, v[:4], C, Y, C_S)
    with pytest.raises(ProvingError):
        NormLinearArgument.create(Transcript(b"nl"), G, x[:-1], r, v, s, sigma)
    with pytest.raises(ProvingError):  # too few generators for the padding
        NormLinearArgument.create(Transcript(b"nl"), G[:9], x, r, v, s, sigma)
    # a 2-chunk argument parsed and checked as a 1-chunk one, and the other way round
    G2, x2, v2, r2, s2, sg2, C2, Y2, S2, rnd2 = statement(513)
    two = prove(G2, x2, r2, v2, s2, sg2, rnd2).to_bytes()
    with pytest.raises(VerificationError):
        NormLinearArgument.from_bytes(two).verify(Transcript(b"nl"), G2, v2[:512], C2, Y2, S2)
    with pytest.raises(EncodingError):
        NormLinearArgument.from_bytes(b"\x01" + two[1 + 3 * 33:])


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
