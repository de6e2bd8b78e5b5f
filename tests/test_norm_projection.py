"""The projection matrix: one keystream position per entry, no repeated or related columns, the
right entry frequencies, no periodicity.

Each structural test is also run against the version-1 expansion (column block ``b`` started the
AES-CTR counter at ``b``, so blocks re-read each other's keystream) to show that it would have
caught the flaw.
"""
import hashlib

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from rangeproof.norm.projection import _TABLE, BLOCK, Projection, projection_key

SEED = hashlib.sha256(b"projection tests").digest()


def _old_stream(self, b, cols):
    enc = Cipher(algorithms.AES(self._key), modes.CTR(b.to_bytes(16, "big"))).encryptor()
    return np.frombuffer(enc.update(bytes(cols * self.rows // 4)), dtype=np.uint8)


def _blocked_stream(P: Projection) -> bytes:
    parts = []
    for b in range((P.dim + BLOCK - 1) // BLOCK):
        parts.append(P._stream(b, min(BLOCK, P.dim - b * BLOCK)).tobytes())
    return b"".join(parts)


def _boundaries(limit=1 << 17):
    ds = {1, 2, 3}
    for b in range(BLOCK, limit + 1, BLOCK):
        ds |= {b - 1, b, b + 1}
    for k in (512, 1024):
        for p in range(64 * k - 1, limit + 1, 64 * k - 1):
            ds |= {p - 1, p, p + 1, p + 2}
    return sorted(ds)


@pytest.mark.parametrize("K", [8, 512, 1024])
def test_every_block_reads_its_own_slice_of_one_keystream(K):
    """At every block and old-period boundary up to 2^17 + 1: the blocks' streams, concatenated,
    are exactly the first K d / 4 bytes of AES-256-CTR(key, counter 0). So entry (k, j) reads bits
    2 (j K + k) and 2 (j K + k) + 1 of that stream and no other entry reads them."""
    for d in _boundaries():
        if K == 8 and d > 5 * BLOCK:
            continue
        P = Projection(SEED, K, d)
        key = projection_key(SEED, K, d)
        want = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor().update(bytes(K * d // 4))
        assert _blocked_stream(P) == want, d


def test_the_old_expansion_overlapped():
    """The same check fails for the version-1 expansion (blocks overlap after one block)."""
    P = Projection(SEED, 512, BLOCK + 1)
    P._stream = _old_stream.__get__(P)
    key = projection_key(SEED, 512, BLOCK + 1)
    want = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor().update(bytes(512 * (BLOCK + 1) // 4))
    got = _blocked_stream(P)
    assert got[:BLOCK * 128] == want[:BLOCK * 128] and got != want
    assert got[BLOCK * 128:BLOCK * 128 + 16] == want[16:32]  # block 1 re-reads block 0, shifted


def test_the_key_binds_seed_and_shape():
    keys = {projection_key(SEED, 512, 1000), projection_key(SEED, 1024, 1000),
            projection_key(SEED, 512, 1001), projection_key(bytes(32), 512, 1000)}
    assert len(keys) == 4


def _canonical_columns(P: Projection) -> np.ndarray:
    """Every column multiplied by the sign of its first non-zero entry, as one void row each."""
    out = []
    for _, blk in P.blocks():
        first = np.argmax(blk != 0, axis=1)
        sign = np.sign(blk[np.arange(blk.shape[0]), first]).astype(np.int8)
        sign[sign == 0] = 1
        out.append(blk * sign[:, None])
    cols = np.ascontiguousarray(np.concatenate(out))
    return cols.view(np.dtype((np.void, cols.shape[1]))).ravel()


def _no_repeated_columns(P):
    cols = _canonical_columns(P)
    return np.unique(cols).size == cols.size


@pytest.mark.slow
def test_no_two_columns_are_equal_or_opposite():
    """Over 2^17 + 1 columns (every block and the old periods at K = 512 and 1024 inside it), no
    column repeats another or its negation; the version-1 expansion repeats them."""
    d = (1 << 17) + 1
    assert _no_repeated_columns(Projection(SEED, 512, d))
    old = Projection(SEED, 512, d)
    old._stream = _old_stream.__get__(old)
    assert not _no_repeated_columns(old)


def test_columns_across_blocks_are_linearly_independent():
    """512 columns picked across every block and at the old period offsets have full rank 512."""
    K = 512
    d = 2 * 64 * K + 5
    P = Projection(SEED, K, d)
    picks = sorted({j % d for i in range(K) for j in [(i * 509) % d]} |
                   {1, 1 + 64 * K - 1, 2, 2 + 64 * K - 1})
    picks = picks[:K]
    cols = _columns(P, picks).T.astype(np.float64)
    assert np.linalg.matrix_rank(cols) == K
    old = Projection(SEED, K, d)
    old._stream = _old_stream.__get__(old)
    cols = _columns(old, picks).T.astype(np.float64)
    assert np.linalg.matrix_rank(cols) < K


def test_entry_frequencies():
    """P[k, j] = 0, +1, -1 with probabilities 1/2, 1/4, 1/4: each count within 6 standard
    deviations over 2^25 entries, and the same per row and per column block."""
    K, d = 512, 1 << 16
    P = Projection(SEED, K, d)
    counts = np.zeros(3, dtype=np.int64)
    row_zero = np.zeros(K, dtype=np.int64)
    for _, blk in P.blocks():
        vals, c = np.unique(blk, return_counts=True)
        assert set(vals.tolist()) <= {-1, 0, 1}
        counts += [c[vals.tolist().index(v)] if v in vals else 0 for v in (-1, 0, 1)]
        row_zero += (blk == 0).sum(axis=0)
        n = blk.size
        assert abs((blk == 0).sum() - n / 2) < 6 * np.sqrt(n / 4)
    n = K * d
    for got, p in zip(counts, (0.25, 0.5, 0.25)):
        assert abs(got - n * p) < 6 * np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(row_zero - d / 2) < 6 * np.sqrt(d / 4))


def _columns(P, js):
    """Columns ``js`` of ``P``, one row each (every block expanded once)."""
    blocks = {}
    out = []
    for j in js:
        b = int(j) // BLOCK
        if b not in blocks:
            blocks[b] = P.block(b)
        out.append(blocks[b][int(j) % BLOCK])
    return np.stack(out)


def _equal_fraction(P, shift, samples=4096):
    """Fraction of equal entries between columns j and j + shift, over ``samples`` columns."""
    js = [int(j) for j in np.linspace(0, P.dim - shift - 1, samples)]
    a = _columns(P, js)
    b = _columns(P, [j + shift for j in js])
    return float((a == b).mean()), a.size


@pytest.mark.slow
def test_no_periodicity():
    """For every candidate period (neighbours, one AES block of entries, the old period 64 K - 1,
    64 K, one block, ...) columns that far apart agree on 3/8 of their entries, as independent
    ternary entries do (1/4 + 1/16 + 1/16), within 6 standard deviations; under the version-1
    expansion the old period agrees everywhere."""
    K = 512
    d = 2 * 64 * K + 100
    P = Projection(SEED, K, d)
    for shift in (1, 2, 64, 65, 64 * K - 1, 64 * K, 64 * K + 1, BLOCK, BLOCK + 1, 2 * BLOCK):
        frac, n = _equal_fraction(P, shift, samples=512)
        assert abs(frac - 3 / 8) < 6 * np.sqrt(3 / 8 * 5 / 8 / n), shift
    old = Projection(SEED, K, d)
    old._stream = _old_stream.__get__(old)
    frac, _ = _equal_fraction(old, 64 * K - 1, samples=512)
    assert frac > 0.9


def test_table_is_the_documented_two_bit_map():
    """Bits (b0, b1) of each pair: b0 = 0 gives 0, else b1 = 1 gives +1 and b1 = 0 gives -1."""
    for byte in range(256):
        for slot in range(4):
            two = (byte >> (2 * slot)) & 3
            want = 0 if not two & 1 else (1 if two & 2 else -1)
            assert _TABLE[byte, slot] == want
