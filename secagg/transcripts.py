"""Domain-separated byte strings that are signed or hashed (one function per transcript)."""
from __future__ import annotations

import hashlib
import struct

__all__ = ["advertise_transcript", "consistency_transcript", "self_mask_commitment"]

_LABEL = b"sabre/secagg/v1/"


def advertise_transcript(round_id: bytes, client: int, c_pk: bytes, s_pk: bytes) -> bytes:
    """What a client signs in step 0 (active variant)."""
    return _LABEL + b"advertise-keys" + round_id + struct.pack(">H", client) + c_pk + s_pk


def consistency_transcript(round_id: bytes, survivors: tuple[int, ...]) -> bytes:
    """What a client signs in step 3 (active variant): the round id and the set U3."""
    return _LABEL + b"consistency-check" + round_id + struct.pack(f">H{len(survivors)}H", len(survivors), *survivors)


def self_mask_commitment(round_id: bytes, client: int, seed: bytes) -> bytes:
    """SHA-256 commitment to the self-mask seed b_u (checked after reconstruction)."""
    return hashlib.sha256(_LABEL + b"self-mask-commitment" + round_id + struct.pack(">H", client) + seed).digest()
