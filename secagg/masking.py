"""The masking rule, in one place for client and server: which keys, which sign.

Client ``u`` uploads (all arithmetic modulo 2^k, see ``docs/secagg.md#masking``)::

    y_u = x_u + PRG(b_u) + sum_{v in N(u) cap U2, v != u} sign(u, v) * PRG(s_{u,v})

with ``sign(u, v) = +1`` if ``u < v`` else ``-1``, so the pairwise masks of every surviving pair
cancel in the sum. The side vector over GF(q) is masked the same way with field keystreams.
"""
from __future__ import annotations

import dataclasses

from rangeproof.labels import SECAGG_PAIRWISE_MASK, SECAGG_SELF_MASK

from .keys import hkdf

__all__ = ["pairwise_sign", "MaskKeys", "pairwise_mask_keys", "self_mask_keys"]


def pairwise_sign(u: int, v: int) -> int:
    """The sign with which client ``u`` adds the mask it shares with ``v``: +1 if u < v, else -1."""
    if u == v:
        raise ValueError("a client has no pairwise mask with itself")
    return 1 if u < v else -1


@dataclasses.dataclass(frozen=True)
class MaskKeys:
    """Two AES-128 keys: one for the ring mask, one for the field (side vector) mask."""

    ring: bytes
    field: bytes


def _split(okm: bytes) -> MaskKeys:
    return MaskKeys(ring=okm[:16], field=okm[16:32])


def pairwise_mask_keys(shared_secret: bytes, round_id: bytes, u: int, v: int) -> MaskKeys:
    """Mask keys of the pair {u, v} from their P-256 ECDH secret (symmetric in u and v)."""
    lo, hi = (u, v) if u < v else (v, u)
    return _split(hkdf(shared_secret, round_id, SECAGG_PAIRWISE_MASK, lo, hi))


def self_mask_keys(seed: bytes, round_id: bytes, u: int) -> MaskKeys:
    """Mask keys of client ``u``'s self mask from its 32-byte seed ``b_u``."""
    return _split(hkdf(seed, round_id, SECAGG_SELF_MASK, u))
