"""Batched range-proof verification: accepts good batches, rejects any bad member."""
import random

import pytest

from rangeproof import (
    ORDER,
    RangeProof,
    Transcript,
    VerificationError,
    invalid_range_proofs,
    pedersen_bases,
    verify_range_proofs,
)

SHAPES = [(8, 1), (16, 2), (8, 4), (32, 1), (8, 1)]


def _label(k):
    return b"batch test client %d" % k


@pytest.fixture(scope="module")
def proofs():
    rng = random.Random(21)
    out = []
    for k, (n_bits, m) in enumerate(SHAPES):
        values = [rng.randrange(1 << n_bits) for _ in range(m)]
        blindings = [rng.randrange(ORDER) for _ in range(m)]
        proof, V = RangeProof.prove(Transcript(_label(k)), values, blindings, n_bits,
                                    rng=rng.getrandbits)
        out.append((proof, V, n_bits))
    return out


def _items(proofs, labels=None):
    labels = labels or [_label(k) for k in range(len(proofs))]
    return [(Transcript(l), p, V, n) for l, (p, V, n) in zip(labels, proofs)]


def test_good_batch_accepted(proofs):
    verify_range_proofs(_items(proofs))
    verify_range_proofs(_items(proofs), rng=random.Random(1).getrandbits)
    verify_range_proofs(_items(proofs[:1]))
    verify_range_proofs([])
    assert invalid_range_proofs(_items(proofs)) == []


@pytest.mark.parametrize("bad_index", range(len(SHAPES)))
def test_one_bad_proof_rejects_the_batch(proofs, bad_index):
    B, _ = pedersen_bases()
    tampered = list(proofs)
    p, V, n = tampered[bad_index]
    tampered[bad_index] = (p, [V[0] + B] + V[1:], n)
    with pytest.raises(VerificationError):
        verify_range_proofs(_items(tampered))
    assert invalid_range_proofs(_items(tampered)) == [bad_index]


def test_bad_transcript_or_swapped_proofs_reject(proofs):
    labels = [_label(k) for k in range(len(proofs))]
    labels[3] = b"replayed elsewhere"
    with pytest.raises(VerificationError):
        verify_range_proofs(_items(proofs, labels))
    swapped = list(proofs)
    swapped[0], swapped[4] = swapped[4], swapped[0]   # same shape, other client's transcript
    with pytest.raises(VerificationError):
        verify_range_proofs(_items(swapped))
    assert invalid_range_proofs(_items(swapped)) == [0, 4]


def test_two_bad_proofs_that_cancel_without_weights_are_caught(proofs):
    # Shifting one commitment up by B and another down by B leaves the unweighted sum of the
    # two equations unchanged only if both carry the same scalar; random weights break that.
    B, _ = pedersen_bases()
    tampered = list(proofs)
    p0, V0, n0 = tampered[0]
    p4, V4, n4 = tampered[4]
    tampered[0] = (p0, [V0[0] + B], n0)
    tampered[4] = (p4, [V4[0] - B], n4)
    with pytest.raises(VerificationError):
        verify_range_proofs(_items(tampered))


def test_wrong_item_types_rejected(proofs):
    p, V, n = proofs[0]
    with pytest.raises(VerificationError):
        verify_range_proofs([(Transcript(_label(0)), "not a proof", V, n)])
