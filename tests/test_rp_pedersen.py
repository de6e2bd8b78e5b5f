"""Pedersen commitments: definition, homomorphism, binding to the value and the blinding."""
import random

import pytest

from rangeproof import ORDER, commit, generators, msm, pedersen_bases, vector_commit


def test_commit_definition_and_homomorphism():
    B, B_blinding = pedersen_bases()
    rng = random.Random(2)
    v1, r1, v2, r2 = (rng.randrange(ORDER) for _ in range(4))
    assert commit(v1, r1) == msm([v1, r1], [B, B_blinding])
    assert commit(v1, r1) + commit(v2, r2) == commit(v1 + v2, r1 + r2)
    assert commit(v1, r1) != commit(v1 + 1, r1)
    assert commit(v1, r1) != commit(v1, r1 + 1)
    assert commit(-1, 0) == commit(ORDER - 1, 0)


def test_vector_commit():
    gens = generators(b"pedersen-test", 8)
    rng = random.Random(3)
    x = [rng.randrange(-1000, 1000) for _ in range(5)]
    y = [rng.randrange(-1000, 1000) for _ in range(5)]
    r, s = rng.randrange(ORDER), rng.randrange(ORDER)
    _, B_blinding = pedersen_bases()
    assert vector_commit(x, r, gens) == msm(x + [r], gens[:5] + [B_blinding])
    assert vector_commit(x, r, gens) + vector_commit(y, s, gens) == \
        vector_commit([a + b for a, b in zip(x, y)], r + s, gens)
    h = gens[7]
    assert vector_commit(x, r, gens, h) == msm(x + [r], gens[:5] + [h])
    swapped = [x[1], x[0]] + x[2:]
    assert vector_commit(swapped, r, gens) != vector_commit(x, r, gens)
    with pytest.raises(ValueError):
        vector_commit(x, r, gens[:4])
