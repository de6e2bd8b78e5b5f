"""Range proofs: completeness, soundness checks, binding to context, strict encodings."""
import random

import pytest
from petlib.ec import EcGroup

from rangeproof import (
    ORDER,
    EncodingError,
    ProofError,
    ProvingError,
    RangeProof,
    Transcript,
    VerificationError,
    commit,
    pedersen_bases,
)
from rangeproof.group import point_to_bytes

LABEL = b"sabre test round"


def _context(round_id=b"round-1", client=b"client-7"):
    t = Transcript(LABEL)
    t.domain_sep(b"sabre test context v1", round=round_id, client=client)
    return t


def _values(n_bits, m, seed):
    rng = random.Random(seed)
    edge = [0, (1 << n_bits) - 1]
    values = [edge[i] if i < 2 else rng.randrange(1 << n_bits) for i in range(m)]
    return values, [rng.randrange(ORDER) for _ in range(m)], rng


def _prove(n_bits, m, seed=0):
    values, blindings, rng = _values(n_bits, m, seed)
    proof, V = RangeProof.prove(_context(), values, blindings, n_bits, rng=rng.getrandbits)
    return proof, V, values, blindings


@pytest.mark.parametrize("n_bits", [8, 16, 32])
@pytest.mark.parametrize("m", [1, 2, 4])
def test_completeness(n_bits, m):
    proof, V, values, blindings = _prove(n_bits, m, seed=n_bits * 10 + m)
    assert V == [commit(v, r) for v, r in zip(values, blindings)]
    proof.verify(_context(), V, n_bits)
    assert len(proof.ipp_proof.L) == (n_bits * m).bit_length() - 1


def test_completeness_64_bits_and_default_randomness():
    proof, V = RangeProof.prove(_context(), [2**64 - 1], [12345], 64)
    proof.verify(_context(), V, 64)


def test_numpy_integers_are_accepted():
    import numpy as np
    values = np.array([3, 250], dtype=np.int64)
    proof, V = RangeProof.prove(_context(), list(values), [np.int64(7), 9], 8)
    proof.verify(_context(), V, 8)
    assert V[0] == commit(3, 7)


def test_same_seed_same_proof():
    a = _prove(16, 2, seed=3)[0]
    b = _prove(16, 2, seed=3)[0]
    assert a.to_bytes() == b.to_bytes()


@pytest.mark.parametrize("values,n_bits", [
    ([256], 8), ([-1], 8), ([2**16], 16), ([5, 2**32], 32), ([2**64], 64),
])
def test_honest_prover_refuses_out_of_range(values, n_bits):
    m = len(values)
    with pytest.raises(ProvingError, match="outside"):
        RangeProof.prove(_context(), values, [1] * m, n_bits)


@pytest.mark.parametrize("values,blindings,n_bits", [
    ([1, 2, 3], [1, 1, 1], 8),     # m not a power of two
    ([], [], 8),                   # m = 0
    ([1], [1], 12),                # n not allowed
    ([1], [1], 128),
    ([1, 2], [1], 8),              # blindings missing
    ([1.0], [1], 8),               # not an int
    ([True], [1], 8),
])
def test_honest_prover_refuses_bad_parameters(values, blindings, n_bits):
    with pytest.raises(ProvingError):
        RangeProof.prove(_context(), values, blindings, n_bits)


@pytest.mark.parametrize("value", [256, 2**8 + 5, ORDER - 1, ORDER - 2**7])
def test_cheating_prover_out_of_range_value_is_caught(value):
    # Bypass the honest prover's check: the bit vector only holds the low 8 bits.
    rng = random.Random(value % 1000)
    proof, V = RangeProof._prove(_context(), [value], [rng.randrange(ORDER)], 8,
                                 rng.getrandbits)
    with pytest.raises(VerificationError):
        proof.verify(_context(), V, 8)


def test_wrong_commitment_rejected():
    proof, V, values, blindings = _prove(8, 2, seed=4)
    B, _ = pedersen_bases()
    other_curve = EcGroup(713).generator()
    for bad in ([V[0] + B, V[1]], [V[1], V[0]], [V[0], commit(values[1], blindings[1] + 1)],
                [V[0]], V + V, [V[0], b"bytes"], [V[0], other_curve]):
        with pytest.raises(VerificationError):
            proof.verify(_context(), bad, 8)


def test_wrong_bit_length_rejected():
    proof, V, _, _ = _prove(16, 1, seed=5)
    for n_bits in (8, 32, 64, 12):
        with pytest.raises(VerificationError):
            proof.verify(_context(), V, n_bits)


def test_replay_into_another_round_or_client_rejected():
    proof, V, _, _ = _prove(8, 1, seed=6)
    for t in (_context(round_id=b"round-2"), _context(client=b"client-8"), Transcript(LABEL),
              Transcript(b"other label")):
        with pytest.raises(VerificationError):
            proof.verify(t, V, 8)
    proof.verify(_context(), V, 8)


def test_serialization_round_trip_and_sizes():
    for n_bits, m in ((8, 1), (16, 4), (32, 2)):
        proof, V, _, _ = _prove(n_bits, m, seed=7)
        k = (n_bits * m).bit_length() - 1
        wide, compact = proof.to_bytes(), proof.to_bytes_compact()
        assert len(wide) == 65 * (2 * k + 4) + 5 * 32
        assert len(compact) == 32 * (2 * k + 9) + (2 * k + 4)
        for decoded in (RangeProof.from_bytes(wide), RangeProof.from_bytes_compact(compact)):
            assert decoded.to_bytes() == wide
            decoded.verify(_context(), V, n_bits)


def _flip_every_byte(encoded, decode, V):
    outcomes = {EncodingError: 0, VerificationError: 0}
    for i in range(len(encoded)):
        for mask in (0x01, 0xFF):
            data = bytearray(encoded)
            data[i] ^= mask
            try:
                proof = decode(bytes(data))
                proof.verify(_context(), V, 8)
            except (EncodingError, VerificationError) as exc:
                outcomes[type(exc)] += 1
            else:
                pytest.fail(f"byte {i} ^ {mask:#x} was accepted")
    return outcomes


def test_every_flipped_byte_is_rejected_wide():
    proof, V, _, _ = _prove(8, 1, seed=8)
    outcomes = _flip_every_byte(proof.to_bytes(), RangeProof.from_bytes, V)
    assert outcomes[EncodingError] and outcomes[VerificationError]


def test_every_flipped_byte_is_rejected_compact():
    proof, V, _, _ = _prove(8, 1, seed=9)
    outcomes = _flip_every_byte(proof.to_bytes_compact(), RangeProof.from_bytes_compact, V)
    assert outcomes[EncodingError] and outcomes[VerificationError]


def test_malformed_encodings_raise_encoding_error():
    proof, V, _, _ = _prove(8, 1, seed=10)
    wide = proof.to_bytes()
    scalars_at = 4 * 65
    bad = [
        wide[:-1],                                   # truncated
        wide + b"\x00",                              # extended by a byte
        wide[:100],
        b"",
        bytes(65) + wide[65:],                       # A = identity
        wide[:64] + bytes([wide[64] ^ 0x55]) + wide[65:],      # A off the curve
        wide[:scalars_at] + ORDER.to_bytes(32, "big") + wide[scalars_at + 32:],  # t_x = q
        wide[:-32] + (ORDER + 1).to_bytes(32, "big"),          # ipp b >= q
        b"\x03" + wide[1:],                          # compressed prefix in the wide form
    ]
    for data in bad:
        with pytest.raises(EncodingError):
            RangeProof.from_bytes(data)
    # Extended by a whole round: decodes, but claims n m = 16 and fails verification.
    extra = point_to_bytes(V[0]) * 2
    longer = wide[:scalars_at + 96] + extra + wide[scalars_at + 96:]
    with pytest.raises(VerificationError):
        RangeProof.from_bytes(longer).verify(_context(), V, 8)
    with pytest.raises(ProofError):
        RangeProof.from_bytes("text")
