"""Exhaustive: every byte of an L2 norm proof, flipped two ways, is rejected.

About five minutes on one core, so it runs only with ``SABRE_EXHAUSTIVE=1``; the default suite
flips the first, middle and last byte of every field (tests/test_norm_l2.py).
"""
import os

import pytest

from rangeproof.errors import EncodingError, VerificationError
from rangeproof.norm import verify

from test_norm_l2 import honest  # noqa: F401  (the module's honest-proof fixture)

pytestmark = pytest.mark.skipif(os.environ.get("SABRE_EXHAUSTIVE") != "1",
                                reason="exhaustive byte-flip sweep; set SABRE_EXHAUSTIVE=1")


def test_every_byte_flipped_is_rejected(honest):  # noqa: F811
    st, x, C, r, proof, data = honest
    accepted = []
    for i in range(len(data)):
        for mask in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= mask
            try:
                verify(st, C, bytes(bad))
            except (EncodingError, VerificationError):
                continue
            accepted.append((i, mask))
    assert accepted == []
