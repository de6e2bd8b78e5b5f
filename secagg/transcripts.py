"""Domain-separated byte strings that are signed (one function per transcript).

Each starts with its label from :mod:`rangeproof.labels`; every field after it has a fixed length
or a length prefix (round ids are 16 bytes, client ids u16, X25519 keys 32 bytes, P-256 keys 33),
so no two different inputs give the same string.
"""
from __future__ import annotations

import struct

from rangeproof.labels import SECAGG_ADVERTISE, SECAGG_CONSISTENCY, SECAGG_SHARE_COMMITMENTS

__all__ = ["advertise_transcript", "consistency_transcript", "commitments_transcript", "CONSISTENCY_LABEL"]

#: what an active-variant client signs in step 3: the round, the graph seed and U3
CONSISTENCY_LABEL = SECAGG_CONSISTENCY


def _check(round_id: bytes, **fixed: tuple[bytes, int]) -> None:
    if len(round_id) != 16:
        raise ValueError("round_id: expected 16 bytes")
    for name, (value, size) in fixed.items():
        if len(value) != size:
            raise ValueError(f"{name}: expected {size} bytes")


def advertise_transcript(round_id: bytes, client: int, c_pk: bytes, s_pk: bytes) -> bytes:
    """What a client signs in step 0 (active variant): its X25519 ``c^PK`` and P-256 ``s^PK``."""
    _check(round_id, c_pk=(c_pk, 32), s_pk=(s_pk, 33))
    return SECAGG_ADVERTISE + round_id + struct.pack(">H", client) + c_pk + s_pk


def consistency_transcript(round_id: bytes, graph_seed: bytes, survivors: tuple[int, ...]) -> bytes:
    """What a client signs in step 3 (active variant): the round id, the graph seed and U3.

    The graph seed (:func:`secagg.graph.graph_seed`) binds the whole view of step 0 (every
    advertised key, hence the graph): signatures from clients that were shown another U1 do not
    verify, and neither do signatures from another round.
    """
    _check(round_id, graph_seed=(graph_seed, 32))
    return CONSISTENCY_LABEL + round_id + graph_seed + struct.pack(f">H{len(survivors)}H", len(survivors), *survivors)


def commitments_transcript(round_id: bytes, dealer: int, commitments: bytes) -> bytes:
    """What a dealer signs in step 1 (active variant): the round, its id and its Feldman
    commitments (``u32`` length-prefixed: ``2 t`` compressed points, :class:`secagg.vss.Commitments`).

    The holders check the signature before they check a share against the commitments, so a
    server cannot substitute them; a dealer that signs two different vectors is caught by the
    server, which receives every ``ShareKeys`` (:class:`secagg.errors.Equivocation`).
    """
    _check(round_id)
    return SECAGG_SHARE_COMMITMENTS + round_id + struct.pack(">HI", dealer, len(commitments)) + bytes(commitments)
