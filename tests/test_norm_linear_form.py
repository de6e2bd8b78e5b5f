"""The linear-form argument and the ternary projections underneath the norm proofs."""
import random

import numpy as np
import pytest

from rangeproof.errors import EncodingError, VerificationError
from rangeproof.generators import generators, pedersen_bases
from rangeproof.group import ORDER, msm
from rangeproof.norm.linear_form import LinearFormProof, challenge_products
from rangeproof.norm.projection import BLOCK, Projection
from rangeproof.transcript import Transcript

B, BT = pedersen_bases()


def statement(d, seed=1):
    rnd = random.Random(seed)
    G = generators(b"test linear form", d)
    x = [rnd.randrange(-1000, 1000) for _ in range(d)]
    v = [rnd.randrange(ORDER) for _ in range(d)]
    r, s = rnd.randrange(ORDER), rnd.randrange(ORDER)
    C = msm(x + [r], G + [BT])
    Y = msm([sum(a * b for a, b in zip(x, v)), s], [B, BT])
    return G, x, v, r, s, C, Y, rnd


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 13, 64])
def test_completeness_and_round_trip(d):
    G, x, v, r, s, C, Y, rnd = statement(d)
    proof = LinearFormProof.create(Transcript(b"lf"), G, x, r, v, s, rng=rnd.getrandbits)
    data = proof.to_bytes()
    assert len(data) == LinearFormProof.encoded_size(max(0, (d - 1).bit_length()))
    LinearFormProof.from_bytes(data).verify(Transcript(b"lf"), G, v, C, Y)


def test_false_statements_rejected():
    G, x, v, r, s, C, Y, rnd = statement(13)
    proof = LinearFormProof.create(Transcript(b"lf"), G, x, r, v, s, rng=rnd.getrandbits)
    with pytest.raises(VerificationError):  # another value in Y
        proof.verify(Transcript(b"lf"), G, v, C, Y + B)
    with pytest.raises(VerificationError):  # another public vector
        proof.verify(Transcript(b"lf"), G, [v[0] + 1] + v[1:], C, Y)
    with pytest.raises(VerificationError):  # another transcript context
        proof.verify(Transcript(b"other"), G, v, C, Y)
    # a prover whose Y claims a different inner product cannot make it verify
    bad = LinearFormProof.create(Transcript(b"lf"), G, x, r, v, s, rng=rnd.getrandbits)
    with pytest.raises(VerificationError):
        bad.verify(Transcript(b"lf"), G, v, C + G[0], Y)


def test_every_byte_flipped_is_rejected():
    G, x, v, r, s, C, Y, rnd = statement(5)
    data = LinearFormProof.create(Transcript(b"lf"), G, x, r, v, s, rng=rnd.getrandbits).to_bytes()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x01 << (i % 8)
        with pytest.raises((EncodingError, VerificationError)):
            LinearFormProof.from_bytes(bytes(bad)).verify(Transcript(b"lf"), G, v, C, Y)


def test_malformed_encodings():
    G, x, v, r, s, C, Y, rnd = statement(8)
    data = LinearFormProof.create(Transcript(b"lf"), G, x, r, v, s, rng=rnd.getrandbits).to_bytes()
    for bad in (b"", data[:-1], data + b"\x00", bytes([40]) + data[1:], bytes([2]) + data[1:]):
        with pytest.raises(EncodingError):
            LinearFormProof.from_bytes(bad)
    with pytest.raises(EncodingError):  # scalar not below q
        LinearFormProof.from_bytes(data[:-32] + b"\xff" * 32)


def test_challenge_products_fold_like_the_prover():
    us = [3, 5, 7]
    s = challenge_products(us, 8)
    inv = [pow(u, -1, ORDER) for u in us]
    for i in range(8):
        bits = [(i >> (2 - j)) & 1 for j in range(3)]
        want = 1
        for j, b in enumerate(bits):
            want = want * (us[j] if b else inv[j]) % ORDER
        assert s[i] == want


def test_projection_distribution_and_exactness():
    P = Projection(bytes(range(32)), 16, BLOCK + 37)
    D = P.dense()
    assert D.shape == (16, BLOCK + 37)
    assert set(np.unique(D)) <= {-1, 0, 1}
    n = D.size
    assert abs((D == 0).sum() - n / 2) < 5 * np.sqrt(n / 4)
    assert abs((D == 1).sum() - n / 4) < 5 * np.sqrt(n * 3 / 16)
    rng = np.random.default_rng(3)
    x = rng.integers(-2**20, 2**20, BLOCK + 37)
    assert P.apply(x) == (D.astype(object) @ x.astype(object)).tolist()
    assert P.apply_mod_q(x.tolist()) == [int(v) % ORDER for v in D.astype(object) @ x.astype(object)]
    gamma = [int(rng.integers(0, 2**62)) << 34 | 12345 for _ in range(16)]
    want = [int(v) % ORDER for v in D.T.astype(object) @ np.array(gamma, dtype=object)]
    assert P.transpose_apply(gamma) == want
    # another seed, or another shape, gives another matrix; the same seed and shape the same one
    assert not np.array_equal(Projection(bytes(32), 16, 64).dense(), Projection(bytes(range(32)), 16, 64).dense())
    assert np.array_equal(Projection(bytes(range(32)), 16, BLOCK + 37).dense(), D)
    assert not np.array_equal(Projection(bytes(range(32)), 16, 64).dense(), D[:, :64])
    assert not np.array_equal(Projection(bytes(range(32)), 24, BLOCK + 37).dense()[:16], D)
