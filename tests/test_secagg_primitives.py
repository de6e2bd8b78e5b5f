"""Building blocks: Shamir sharing, mask expansion, key derivation, the graph, the parameters."""
from __future__ import annotations

import math

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import ConfigError, ProtocolViolation
from secagg.graph import neighbours
from secagg.keys import AgreementKey
from secagg.masking import pairwise_mask_keys, pairwise_sign, self_mask_keys
from secagg.params import SecAggParams, default_threshold, secagg_plus_parameters
from secagg.prg import MaskExpander, expand_field, expand_ring
from secagg.randomness import SeededRandom, randbelow
from secagg.shamir import SHARE_PRIME, reconstruct_secret, share_secret


@settings(max_examples=20, deadline=None)
@given(st.integers(0, SHARE_PRIME - 1), st.integers(2, 12), st.data())
def test_shamir_any_t_shares_reconstruct(secret, n, data):
    t = data.draw(st.integers(1, n))
    shares = share_secret(secret, list(range(1, n + 1)), t, SeededRandom(secret % 1000))
    subset = data.draw(st.lists(st.sampled_from(sorted(shares)), min_size=t, max_size=n, unique=True))
    assert reconstruct_secret({x: shares[x] for x in subset}, t) == secret


def test_shamir_fewer_than_t_shares_rejected_and_uninformative():
    shares = share_secret(12345, [1, 2, 3, 4], 3, SeededRandom(1))
    with pytest.raises(ProtocolViolation):
        reconstruct_secret({1: shares[1], 2: shares[2]}, 3)
    # two shares are consistent with any secret: the degree-2 polynomial through (0, s'), 1, 2 exists
    assert reconstruct_secret({1: shares[1], 2: shares[2], 3: shares[3]}, 3) == 12345
    assert reconstruct_secret({1: shares[1], 2: shares[2], 3: (shares[3] + 1) % SHARE_PRIME}, 3) != 12345


def test_shamir_bad_arguments():
    with pytest.raises(ConfigError):
        share_secret(2**256, [1, 2], 2, SeededRandom(0))
    with pytest.raises(ConfigError):
        share_secret(1, [1, 1], 2, SeededRandom(0))
    with pytest.raises(ConfigError):
        share_secret(1, [1, 2], 3, SeededRandom(0))


def test_mask_is_the_aes_ctr_keystream():
    key = bytes(range(16))
    stream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor().update(bytes(4 * 37))
    assert np.array_equal(expand_ring(key, 37, 32), np.frombuffer(stream, dtype="<u4"))
    assert np.array_equal(expand_ring(key, 5, 64), np.frombuffer(stream[:40], dtype="<u8"))


def test_mask_expander_adds_and_subtracts_in_place():
    key1, key2 = bytes([1]) * 16, bytes([2]) * 16
    acc = np.arange(1000, dtype=np.uint32)
    e = MaskExpander(1000, 32)
    e.add(acc, key1, 1)
    e.add(acc, key2, -1)
    expected = (np.arange(1000, dtype=np.uint64) + expand_ring(key1, 1000, 32) - expand_ring(key2, 1000, 32).astype(np.uint64)) % 2**32
    assert np.array_equal(acc, expected.astype(np.uint32))
    e.add(acc, key2, 1)
    e.add(acc, key1, -1)
    assert np.array_equal(acc, np.arange(1000, dtype=np.uint32))


def test_field_masks_in_range_and_deterministic():
    q = 2**127 - 1
    a = expand_field(bytes(16), 50, q)
    assert a == expand_field(bytes(16), 50, q) and all(0 <= x < q for x in a) and len(set(a)) == 50


def test_pairwise_keys_symmetric_and_separated():
    rng = SeededRandom(3)
    a, b, c = (AgreementKey.generate(rng) for _ in range(3))
    rid = bytes(16)
    k_ab = pairwise_mask_keys(a.agree(b.public_bytes), rid, 1, 2)
    assert k_ab == pairwise_mask_keys(b.agree(a.public_bytes), rid, 2, 1)
    assert k_ab != pairwise_mask_keys(a.agree(c.public_bytes), rid, 1, 3)
    assert k_ab != pairwise_mask_keys(a.agree(b.public_bytes), bytes([1]) * 16, 1, 2)
    assert k_ab.ring != k_ab.field
    assert self_mask_keys(bytes(32), rid, 1) != self_mask_keys(bytes(32), rid, 2)
    assert pairwise_sign(1, 2) == 1 and pairwise_sign(2, 1) == -1
    with pytest.raises(ValueError):
        pairwise_sign(3, 3)


def test_small_order_public_key_rejected():
    with pytest.raises(ProtocolViolation):
        AgreementKey.generate(SeededRandom(0)).agree(bytes(32))


def test_randbelow_uniform_range():
    rng = SeededRandom(5)
    draws = [randbelow(rng, 10) for _ in range(2000)]
    assert set(draws) == set(range(10))
    assert abs(np.mean(draws) - 4.5) < 0.3


@pytest.mark.parametrize("n,degree", [(10, 4), (31, 6), (100, 20)])
def test_harary_graph_regular_symmetric_deterministic(n, degree):
    params = SecAggParams(num_clients=n, threshold=3, degree=degree)
    g = neighbours(params, bytes(16))
    assert all(len(v) == degree and u not in v for u, v in g.items())
    assert all(u in g[v] for u in g for v in g[u])
    assert g == neighbours(params, bytes(16)) and g != neighbours(params, bytes([1]) * 16)


def test_complete_graph():
    g = neighbours(SecAggParams.classic(6), bytes(16))
    assert all(g[u] == set(range(1, 7)) - {u} for u in g)


def test_secagg_plus_degree_grows_like_log_n():
    degrees = {n: secagg_plus_parameters(n, dropout_rate=0.1, corruption_rate=0.1) for n in (100, 1000, 10000)}
    for n, g in degrees.items():
        assert g.degree is not None and g.degree < n - 1
        assert g.log2_security_failure <= -40 and g.log2_correctness_failure <= -20
        assert (g.degree + 1) / 2 < g.threshold <= g.degree + 1
    assert degrees[100].degree <= degrees[1000].degree <= degrees[10000].degree <= 3 * degrees[100].degree
    assert degrees[10000].degree < 20 * math.log2(10000)


def test_secagg_plus_small_n_falls_back_to_complete_graph():
    g = secagg_plus_parameters(10, dropout_rate=0.1, corruption_rate=0.1)
    assert g.degree is None and 1 < g.threshold <= 10 - 1 - 1


@pytest.mark.parametrize("kw", [dict(dropout_rate=1.0, corruption_rate=0.0), dict(dropout_rate=0.5, corruption_rate=0.5),
                                dict(dropout_rate=0.45, corruption_rate=0.45)])
def test_secagg_plus_impossible_targets_rejected(kw):
    with pytest.raises(ConfigError):
        secagg_plus_parameters(20, **kw)


def test_default_threshold():
    assert default_threshold(3) == 3 and default_threshold(30) == 21 and default_threshold(100) == 67
