"""The inner-product argument alone: completeness, a cheating prover, encodings."""
import random

import pytest

from rangeproof import (
    ORDER,
    EncodingError,
    InnerProductProof,
    ProvingError,
    Transcript,
    VerificationError,
    generators,
    msm,
)
from rangeproof.group import point_to_bytes, scalar_to_bytes


def _instance(n, seed, factors=True):
    rng = random.Random(seed)
    G = generators(b"ipp-test G", n)
    H = generators(b"ipp-test H", n)
    Q = generators(b"ipp-test Q", 1)[0]
    a = [rng.randrange(ORDER) for _ in range(n)]
    b = [rng.randrange(ORDER) for _ in range(n)]
    gf = [rng.randrange(1, ORDER) if factors else 1 for _ in range(n)]
    hf = [rng.randrange(1, ORDER) if factors else 1 for _ in range(n)]
    return G, H, Q, a, b, gf, hf


def _statement(G, H, Q, a, b, gf, hf, c=None):
    if c is None:
        c = sum(x * y for x, y in zip(a, b))
    return msm([x * f for x, f in zip(a, gf)] + [y * f for y, f in zip(b, hf)] + [c],
               G + H + [Q])


def _prove(n, seed, factors=True):
    G, H, Q, a, b, gf, hf = _instance(n, seed, factors)
    proof = InnerProductProof.create(Transcript(b"ipp test"), Q, gf, hf, G, H, a, b)
    return proof, (G, H, Q, a, b, gf, hf)


@pytest.mark.parametrize("n", [1, 2, 4, 8, 32, 128])
def test_completeness(n):
    proof, (G, H, Q, a, b, gf, hf) = _prove(n, seed=n)
    assert len(proof.L) == len(proof.R) == n.bit_length() - 1
    P = _statement(G, H, Q, a, b, gf, hf)
    proof.verify(n, Transcript(b"ipp test"), gf, hf, P, Q, G, H)


def test_completeness_unit_factors_and_longer_generator_lists():
    proof, (G, H, Q, a, b, gf, hf) = _prove(16, seed=5, factors=False)
    P = _statement(G, H, Q, a, b, gf, hf)
    more_G = generators(b"ipp-test G", 64)
    more_H = generators(b"ipp-test H", 64)
    proof.verify(16, Transcript(b"ipp test"), gf, hf, P, Q, more_G, more_H)


def test_cheating_prover_wrong_inner_product_is_rejected():
    n = 16
    G, H, Q, a, b, gf, hf = _instance(n, seed=11)
    true_c = sum(x * y for x, y in zip(a, b))
    for claimed in (true_c + 1, true_c - 1, 0):
        P_claimed = _statement(G, H, Q, a, b, gf, hf, c=claimed)
        proof = InnerProductProof.create(Transcript(b"ipp test"), Q, gf, hf, G, H, a, b)
        with pytest.raises(VerificationError):
            proof.verify(n, Transcript(b"ipp test"), gf, hf, P_claimed, Q, G, H)


def test_cheating_prover_other_witness_is_rejected():
    n = 8
    G, H, Q, a, b, gf, hf = _instance(n, seed=12)
    P = _statement(G, H, Q, a, b, gf, hf)
    a2 = list(a)
    a2[3] += 1
    proof = InnerProductProof.create(Transcript(b"ipp test"), Q, gf, hf, G, H, a2, b)
    with pytest.raises(VerificationError):
        proof.verify(n, Transcript(b"ipp test"), gf, hf, P, Q, G, H)


def test_wrong_public_inputs_are_rejected():
    n = 8
    proof, (G, H, Q, a, b, gf, hf) = _prove(n, seed=13)
    P = _statement(G, H, Q, a, b, gf, hf)
    ok = dict(n=n, transcript=None, G_factors=gf, H_factors=hf, P=P, Q=Q, G=G, H=H)
    bad_cases = [
        dict(n=4), dict(n=16), dict(G_factors=[1] * n), dict(H_factors=gf), dict(Q=G[0]),
        dict(G=H, H=G), dict(G=G[:4]), dict(transcript=Transcript(b"other")),
    ]
    for change in bad_cases:
        args = {**ok, **change}
        args["transcript"] = args["transcript"] or Transcript(b"ipp test")
        with pytest.raises(VerificationError):
            proof.verify(**args)


def test_verification_scalars_structure():
    proof, _ = _prove(16, seed=14)
    u_sq, u_inv_sq, s = proof.verification_scalars(16, Transcript(b"ipp test"))
    assert len(u_sq) == len(u_inv_sq) == 4 and len(s) == 16
    assert all(x * y % ORDER == 1 for x, y in zip(u_sq, u_inv_sq))
    assert all(s[i] * s[15 - i] % ORDER == 1 for i in range(16))
    with pytest.raises(VerificationError):
        proof.verification_scalars(8, Transcript(b"ipp test"))


def test_serialization_round_trip_and_sizes():
    proof, _ = _prove(32, seed=15)
    wide = proof.to_bytes()
    compact = proof.to_bytes_compact()
    assert len(wide) == 130 * 5 + 64
    assert len(compact) == 66 * 5 + 64
    assert InnerProductProof.from_bytes(wide) == proof
    assert InnerProductProof.from_bytes_compact(compact) == proof
    assert InnerProductProof.from_bytes(wide).to_bytes() == wide


def test_malformed_encodings_are_rejected():
    proof, _ = _prove(8, seed=16)
    wide = proof.to_bytes()
    bad = [
        wide[:-1], wide + b"\x00", wide[:63], b"",
        wide[:-32] + ORDER.to_bytes(32, "big"),                  # b = q: not canonical
        wide[:-64] + (2**256 - 1).to_bytes(32, "big") + wide[-32:],
        bytes(65) + wide[65:],                                   # L_1 = identity
        wide[:64] + bytes([wide[64] ^ 1]) + wide[65:],           # L_1 off the curve
        b"\x05" + wide[1:],
    ]
    for data in bad:
        with pytest.raises(EncodingError):
            InnerProductProof.from_bytes(data)
    # 32 rounds would claim n = 2^32: refused before any work.
    L = point_to_bytes(generators(b"x", 1)[0])
    with pytest.raises(EncodingError):
        InnerProductProof.from_bytes(L * 64 + scalar_to_bytes(1) * 2)


def test_honest_prover_refuses_bad_lengths():
    G, H, Q, a, b, gf, hf = _instance(8, seed=17)
    with pytest.raises(ProvingError):
        InnerProductProof.create(Transcript(b"t"), Q, gf, hf, G, H, a[:7], b)
    with pytest.raises(ProvingError):
        InnerProductProof.create(Transcript(b"t"), Q, gf[:6], hf[:6], G[:6], H[:6], a[:6],
                                 b[:6])


@pytest.mark.parametrize("fold_every", [1, 3, 5])
def test_lazy_folding_schedule_does_not_change_the_proof(monkeypatch, fold_every):
    reference, _ = _prove(64, seed=18)
    monkeypatch.setattr("rangeproof.ipa_fold.FOLD_EVERY", fold_every)
    proof, _ = _prove(64, seed=18)
    assert proof == reference
