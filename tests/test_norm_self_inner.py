"""The self-inner-product argument: C_S commits to the squared norm of the vector in C_z."""
import random

import pytest

from rangeproof.errors import EncodingError, VerificationError
from rangeproof.generators import generators, pedersen_bases
from rangeproof.group import ORDER, msm
from rangeproof.norm.self_inner import SelfInnerProof
from rangeproof.norm.terms import Accumulator
from rangeproof.transcript import Transcript

B, BT = pedersen_bases()


def setup(K, seed=0):
    rnd = random.Random(seed)
    H = generators(b"test self inner", K)
    z = [rnd.randrange(-10**6, 10**6) for _ in range(K)]
    rho, sigma = rnd.randrange(ORDER), rnd.randrange(ORDER)
    Cz = msm(z + [rho], H + [BT])
    S = sum(v * v for v in z)
    return rnd, H, z, rho, sigma, Cz, msm([S, sigma], [B, BT]), S


def holds(proof, H, Cz, CS, label=b"si"):
    acc = Accumulator()
    try:
        proof.add_to(acc, Transcript(label), H, Cz, CS)
    except VerificationError:
        return False
    return acc.check()


@pytest.mark.parametrize("K", [1, 2, 4, 64])
def test_completeness_round_trip_and_size(K):
    rnd, H, z, rho, sigma, Cz, CS, S = setup(K)
    proof = SelfInnerProof.create(Transcript(b"si"), H, z, rho, sigma, rng=rnd.getrandbits)
    data = proof.to_bytes()
    assert len(data) == SelfInnerProof.encoded_size(K.bit_length() - 1)
    assert holds(SelfInnerProof.from_bytes(data), H, Cz, CS)


def test_false_claims_rejected():
    rnd, H, z, rho, sigma, Cz, CS, S = setup(16, seed=1)
    proof = SelfInnerProof.create(Transcript(b"si"), H, z, rho, sigma, rng=rnd.getrandbits)
    assert not holds(proof, H, Cz, CS + B)  # another S
    assert not holds(proof, H, Cz + H[3], CS)  # another vector
    assert not holds(proof, H, Cz, CS, label=b"other")  # another context
    # a prover whose C_S holds S - 1 (a smaller norm) cannot make it verify
    lie = msm([S - 1, sigma], [B, BT])
    assert not holds(SelfInnerProof.create(Transcript(b"si"), H, z, rho, sigma, rng=rnd.getrandbits), H, Cz, lie)


def test_every_byte_flipped_is_rejected():
    rnd, H, z, rho, sigma, Cz, CS, S = setup(4, seed=2)
    data = SelfInnerProof.create(Transcript(b"si"), H, z, rho, sigma, rng=rnd.getrandbits).to_bytes()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 1 << (i % 8)
        try:
            ok = holds(SelfInnerProof.from_bytes(bytes(bad)), H, Cz, CS)
        except EncodingError:
            ok = False
        assert not ok, i


def test_malformed_encodings():
    rnd, H, z, rho, sigma, Cz, CS, S = setup(8, seed=3)
    data = SelfInnerProof.create(Transcript(b"si"), H, z, rho, sigma, rng=rnd.getrandbits).to_bytes()
    for bad in (b"", data[:-1], data + b"\x00", bytes([20]) + data[1:], bytes([2]) + data[1:]):
        with pytest.raises(EncodingError):
            SelfInnerProof.from_bytes(bad)
    with pytest.raises(VerificationError):  # parses, but the round count does not match K
        SelfInnerProof.from_bytes(data).add_to(Accumulator(), Transcript(b"si"), H[:4], Cz, CS)
