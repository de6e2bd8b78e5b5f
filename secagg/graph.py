"""The masking graph: who shares pairwise masks and secret shares with whom.

Classic SecAgg uses the complete graph. SecAgg+ uses the Harary graph H(n, k) on a random
permutation ``pi`` of the clients: the clients at ring positions ``i`` and ``j`` are neighbours
when their ring distance is at most ``k / 2``. The permutation is public randomness derived from
the round id (Fisher-Yates driven by :class:`~secagg.randomness.SeededRandom`), so every party
recomputes the same graph and the server cannot choose it.
"""
from __future__ import annotations

import functools

from .params import SecAggParams
from .randomness import SeededRandom, randbelow

__all__ = ["neighbours"]


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
    rng = SeededRandom(b"graph" + bytes(round_id))
    order = ids[:]
    for i in range(len(order) - 1, 0, -1):
        j = randbelow(rng, i + 1)
        order[i], order[j] = order[j], order[i]
    n = len(order)
    half = params.degree // 2
    out = {}
    for pos, u in enumerate(order):
        out[u] = frozenset(order[(pos + d) % n] for d in range(-half, half + 1) if d != 0)
    return out
