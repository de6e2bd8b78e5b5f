"""Domain-separated byte strings that are signed or hashed (one function per transcript)."""
from __future__ import annotations

import hashlib
import struct

__all__ = ["advertise_transcript", "consistency_transcript", "self_mask_commitment"]

_LABEL = b"sabre/secagg/v1/"
#: what an active-variant client signs in step 3: the round, the graph seed and U3
CONSISTENCY_LABEL = b"sabre/secagg/consistency-check/v2"


def advertise_transcript(round_id: bytes, client: int, c_pk: bytes, s_pk: bytes) -> bytes:
    """What a client signs in step 0 (active variant)."""
    return _LABEL + b"advertise-keys" + round_id + struct.pack(">H", client) + c_pk + s_pk


def consistency_transcript(round_id: bytes, graph_seed: bytes, survivors: tuple[int, ...]) -> bytes:
    """What a client signs in step 3 (active variant): the round id, the graph seed and U3.

    The graph seed (:func:`secagg.graph.graph_seed`) binds the whole view of step 0 (every
    advertised key, hence the graph): signatures from clients that were shown another U1 do not
    verify, and neither do signatures from another round.
    """
    if len(graph_seed) != 32:
        raise ValueError("graph_seed: expected 32 bytes")
    return CONSISTENCY_LABEL + round_id + graph_seed + struct.pack(f">H{len(survivors)}H", len(survivors), *survivors)


def self_mask_commitment(round_id: bytes, client: int, seed: bytes) -> bytes:
    """SHA-256 commitment to the self-mask seed b_u (checked after reconstruction)."""
    return hashlib.sha256(_LABEL + b"self-mask-commitment" + round_id + struct.pack(">H", client) + seed).digest()
