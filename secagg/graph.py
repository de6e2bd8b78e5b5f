"""The masking graph: who shares pairwise masks and secret shares with whom.

Classic SecAgg uses the complete graph. SecAgg+ uses the Harary graph H(n, k) on a random
permutation ``pi`` of the clients: the clients at ring positions ``i`` and ``j`` are neighbours
when their ring distance is at most ``k / 2``.

* Semi-honest variant (:func:`neighbours`): the permutation is public randomness derived from the
  round id (Fisher-Yates driven by :class:`~secagg.randomness.SeededRandom`); a semi-honest server
  draws the round id at random.
* Active variant (:func:`keyed_neighbours`): the round id is the server's choice, so the
  permutation comes from :func:`graph_seed`, a hash over every key advertised in step 0, and each
  client's position from its long-term verify key (ids the server assigns do not matter). The
  active variant runs on the complete graph; its SecAgg+ ring is reachable only with the research
  opt-in ``unsafe_sparse_active`` (``docs/secagg.md``, "Ring cut by uneven share delivery").
"""
from __future__ import annotations

import functools
import hashlib
import struct
from typing import Mapping

from rangeproof.labels import SECAGG_GRAPH_PERMUTATION, SECAGG_GRAPH_SEED, SECAGG_RING_POSITION

from .params import SecAggParams
from .randomness import SeededRandom, randbelow

__all__ = ["neighbours", "round_ring_order", "graph_seed", "keyed_neighbours", "ring_order", "GRAPH_SEED_LABEL", "RING_POSITION_LABEL"]


@functools.lru_cache(maxsize=16)
def neighbours(params: SecAggParams, round_id: bytes) -> dict[int, frozenset[int]]:
    """Each client's neighbours (itself excluded).

    Args:
      params: the round's parameters (``degree=None`` gives the complete graph).
      round_id: the 16-byte round id seeding the permutation.

    Returns:
      ``{client id: frozenset of neighbour ids}``; the relation is symmetric.
    """
    ids = list(params.client_ids)
    if params.degree is None:
        everyone = frozenset(ids)
        return {u: everyone - {u} for u in ids}
    order = round_ring_order(params, round_id)
    return _harary(order, params.degree)


def round_ring_order(params: SecAggParams, round_id: bytes) -> list[int]:
    """The semi-honest variant's ring order: Fisher-Yates seeded by the round id."""
    rng = SeededRandom(SECAGG_GRAPH_PERMUTATION + bytes(round_id))
    order = list(params.client_ids)
    for i in range(len(order) - 1, 0, -1):
        j = randbelow(rng, i + 1)
        order[i], order[j] = order[j], order[i]
    return order


#: domain separation of the active variant's graph seed: a hash over every advertised key of U1
GRAPH_SEED_LABEL = SECAGG_GRAPH_SEED
#: domain separation of a client's ring position: a hash of the graph seed and its verify key
RING_POSITION_LABEL = SECAGG_RING_POSITION


def graph_seed(round_id: bytes, num_clients: int, advertised: Mapping[int, tuple[bytes, bytes]]) -> bytes:
    """The active variant's graph seed: SHA-256 over the round and every key advertised in step 0.

    ``SHA-256(GRAPH_SEED_LABEL | rid | n u16 | |U1| u16 | for u in U1 (increasing): u u16 | c_u^PK | s_u^PK)``.
    Every honest client's fresh keys enter the hash, so the seed (hence the graph) is fixed only
    after the last key is chosen: the server and the colluders can try other colluder keys or
    other sets U1, one hash and one sort per try, but cannot choose the graph; that grinding is
    the ``2^grinding_bits`` factor of the bound (``docs/secagg.md``, "Placement and grinding").

    Args:
      round_id: the 16-byte round id.
      num_clients: n.
      advertised: ``{client: (c^PK, s^PK)}`` for every client in U1.
    """
    h = hashlib.sha256(GRAPH_SEED_LABEL)
    h.update(bytes(round_id) + struct.pack(">HH", num_clients, len(advertised)))
    for u in sorted(advertised):
        c_pk, s_pk = advertised[u]
        if len(c_pk) != 32 or len(s_pk) != 33:
            raise ValueError("advertised keys must be 32 (c) and 33 (s) bytes")
        h.update(struct.pack(">H", u) + bytes(c_pk) + bytes(s_pk))
    return h.digest()


def keyed_neighbours(params: SecAggParams, seed: bytes, verify_keys: Mapping[int, bytes]) -> dict[int, frozenset[int]]:
    """Each client's neighbours in the active variant (itself excluded).

    The ring order sorts the clients by ``SHA-256(RING_POSITION_LABEL | seed | vk_u)``: a client's
    position follows from its long-term verify key, not from the protocol id the server assigned.

    Args:
      params: the round's parameters (``degree=None`` gives the complete graph).
      seed: :func:`graph_seed` of the round.
      verify_keys: ``{client id: Ed25519 verify key}`` for every client ``1..n``.
    """
    return _keyed(params, bytes(seed), tuple(sorted((u, bytes(verify_keys[u])) for u in params.client_ids)))


@functools.lru_cache(maxsize=16)
def _keyed(params: SecAggParams, seed: bytes, keys: tuple[tuple[int, bytes], ...]) -> dict[int, frozenset[int]]:
    ids = [u for u, _ in keys]
    if params.degree is None:
        everyone = frozenset(ids)
        return {u: everyone - {u} for u in ids}
    return _harary(_order(seed, keys), params.degree)


def _order(seed: bytes, keys: tuple[tuple[int, bytes], ...]) -> list[int]:
    vk = dict(keys)
    return sorted(vk, key=lambda u: (hashlib.sha256(RING_POSITION_LABEL + seed + vk[u]).digest(), u))


def _harary(order: list[int], degree: int) -> dict[int, frozenset[int]]:
    n = len(order)
    half = degree // 2
    return {u: frozenset(order[(pos + d) % n] for d in range(-half, half + 1) if d != 0) for pos, u in enumerate(order)}


def ring_order(params: SecAggParams, seed: bytes, verify_keys: Mapping[int, bytes]) -> list[int]:
    """The clients in ring order (active variant, SecAgg+): the order :func:`keyed_neighbours` uses."""
    return _order(bytes(seed), tuple(sorted((u, bytes(verify_keys[u])) for u in params.client_ids)))
