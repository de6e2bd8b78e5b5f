"""Domain-separated byte strings that are signed or hashed (one function per transcript).

Each starts with its label from :mod:`rangeproof.labels`; every field after it has a fixed length
or a length prefix (round ids are 16 bytes, client ids u16, keys 32 bytes), so no two different
inputs give the same string.
"""
from __future__ import annotations

import hashlib
import struct

from rangeproof.labels import SECAGG_ADVERTISE, SECAGG_CONSISTENCY, SECAGG_SELF_MASK_COMMITMENT, SECAGG_SHARE_COMMITMENT

__all__ = [
    "advertise_transcript", "consistency_transcript", "self_mask_commitment", "share_commitment", "CONSISTENCY_LABEL",
    "SHARE_COMMITMENT_BYTES",
]

#: bytes of one share commitment (SHA-256)
SHARE_COMMITMENT_BYTES = 32

#: what an active-variant client signs in step 3: the round, the graph seed and U3
CONSISTENCY_LABEL = SECAGG_CONSISTENCY


def _check(round_id: bytes, **fixed: tuple[bytes, int]) -> None:
    if len(round_id) != 16:
        raise ValueError("round_id: expected 16 bytes")
    for name, (value, size) in fixed.items():
        if len(value) != size:
            raise ValueError(f"{name}: expected {size} bytes")


def advertise_transcript(round_id: bytes, client: int, c_pk: bytes, s_pk: bytes) -> bytes:
    """What a client signs in step 0 (active variant)."""
    _check(round_id, c_pk=(c_pk, 32), s_pk=(s_pk, 32))
    return SECAGG_ADVERTISE + round_id + struct.pack(">H", client) + c_pk + s_pk


def consistency_transcript(round_id: bytes, graph_seed: bytes, survivors: tuple[int, ...]) -> bytes:
    """What a client signs in step 3 (active variant): the round id, the graph seed and U3.

    The graph seed (:func:`secagg.graph.graph_seed`) binds the whole view of step 0 (every
    advertised key, hence the graph): signatures from clients that were shown another U1 do not
    verify, and neither do signatures from another round.
    """
    _check(round_id, graph_seed=(graph_seed, 32))
    return CONSISTENCY_LABEL + round_id + graph_seed + struct.pack(f">H{len(survivors)}H", len(survivors), *survivors)


def self_mask_commitment(round_id: bytes, client: int, seed: bytes) -> bytes:
    """SHA-256 commitment to the self-mask seed b_u (checked after reconstruction)."""
    _check(round_id, seed=(seed, 32))
    return hashlib.sha256(SECAGG_SELF_MASK_COMMITMENT + round_id + struct.pack(">H", client) + seed).digest()


def share_commitment(round_id: bytes, dealer: int, holder: int, kind: int, share: int) -> bytes:
    """SHA-256 commitment to the share of ``dealer``'s secret of ``kind`` held by ``holder``.

    The dealer sends one per share with its ciphertexts (``ShareKeys``); the holder checks the
    share it decrypts against it, and the server checks each share revealed in unmasking against
    it, so a holder that reveals another value is named and its share ignored. The share is
    written in 33 bytes (it is below the Shamir prime ``2^256 + 297``). Hiding rests on the
    secret's 256 bits of entropy: with the t - 1 shares a coalition holds, each commitment lets it
    test a guess of the whole secret, which the public key (``s``) or the seed commitment (``b``)
    already allow (``docs/secagg.md#share-commitments``).
    """
    _check(round_id)
    if not 0 <= share < (1 << 264):
        raise ValueError("share: expected a 33-byte integer")
    return hashlib.sha256(
        SECAGG_SHARE_COMMITMENT + round_id + struct.pack(">HHB", dealer, holder, kind) + share.to_bytes(33, "big")
    ).digest()
