"""A malicious server driving the real :class:`~secagg.client.SecAggClient` objects.

The adversary plays the server's side by hand: it chooses which clients count as dropped or
excluded, shows different clients different survivor sets, forwards whichever consistency
signatures it likes, and colludes with a set of clients whose whole state it reads (their
received shares, their signing keys). It records every share it ends up holding, so a test can
assert on what it holds (:meth:`MaliciousServer.exposed`) and, where it holds t shares of both
secrets of a client, rebuild that client's input (:meth:`MaliciousServer.recover_input`).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from secagg.client import SecAggClient
from secagg.errors import SecAggError
from secagg.graph import graph_seed, keyed_neighbours, neighbours, ring_order
from secagg.keys import MaskKey, SigningKey
from secagg.masking import pairwise_mask_keys, pairwise_sign, self_mask_keys
from secagg.messages import (
    MASK_KEY_SHARE,
    ConsistencyRequest,
    KeysBroadcast,
    PeerKeys,
    DealerCommitments,
    SharesDelivery,
    UnmaskRequest,
    decode_message,
)
from secagg.params import SecAggParams
from secagg.prg import MaskExpander, reduce_ring, ring_dtype
from secagg.randomness import SeededRandom
from secagg.shamir import reconstruct_secret
from secagg.transcripts import consistency_transcript

ROUND = bytes(range(16))


def wire(msg):
    """Through the codec and back, as on the network."""
    return decode_message(msg.encode())


class MaliciousServer:
    """One round against real clients; ``corrupted`` clients collude with the server.

    Args:
      params: the round's parameters.
      corrupted: ids of the colluding clients.
      dim: vector length.
      seed: replays the clients' secrets and inputs.
      round_id: the round id (the server's choice).
      verify_keys: the PKI (default: fresh keys from ``seed``); ``signing`` the matching keys.
    """

    def __init__(self, params: SecAggParams, corrupted: Iterable[int] = (), *, dim: int = 6, seed: int = 0,
                 round_id: bytes = ROUND, signing: Mapping[int, SigningKey] | None = None):
        self.p = params
        self.t = params.threshold
        self.rid = round_id
        self.dim = dim
        self.corrupted = frozenset(corrupted)
        ids = list(params.client_ids)
        rng = SeededRandom(seed)
        self.signing = dict(signing) if signing else {u: SigningKey.generate(rng) for u in ids}
        self.verify = {u: k.verify_key for u, k in self.signing.items()}
        active = params.active
        self.clients = {
            u: SecAggClient(params, u, round_id, signing_key=self.signing[u] if active else None,
                            verify_keys=self.verify if active else None, rng=SeededRandom(seed * 100_003 + u))
            for u in ids
        }
        gen = np.random.default_rng(seed)
        self.x = {u: gen.integers(0, 1 << params.mask_bits, dim, dtype=np.uint64).astype(ring_dtype(params.mask_bits)) for u in ids}
        self.held_b: dict[int, dict[int, int]] = {u: {} for u in ids}  # peer -> {holder: share of b_peer}
        self.held_s: dict[int, dict[int, int]] = {u: {} for u in ids}  # peer -> {holder: share of s_peer^SK}
        self.refused: dict[int, Exception] = {}
        self.signatures: dict[tuple[int, ...], dict[int, bytes]] = {}

    @property
    def honest(self) -> list[int]:
        return [u for u in self.p.client_ids if u not in self.corrupted]

    # -- steps 0-2, played honestly except for who takes part ---------------------------------
    def advertise(self, absent: Iterable[int] = ()) -> None:
        absent = set(absent)
        self.adv = {u: wire(c.advertise_keys()) for u, c in self.clients.items() if u not in absent}
        if self.p.active:
            self.seed = graph_seed(self.rid, self.p.num_clients, {u: (m.c_pk, m.s_pk) for u, m in self.adv.items()})
            self.graph = keyed_neighbours(self.p, self.seed, self.verify)
        else:
            self.seed = None
            self.graph = neighbours(self.p, self.rid)

    def ring(self) -> list[int]:
        """The ring order of the SecAgg+ graph (known to the server once the keys are in)."""
        return ring_order(self.p, self.seed, self.verify)

    def holders(self, u: int) -> frozenset[int]:
        return self.graph[u] | {u}

    def share(self, absent: Iterable[int] = ()) -> None:
        absent = set(absent)
        u1 = sorted(self.adv)
        every = tuple(PeerKeys(v, self.adv[v].c_pk, self.adv[v].s_pk, self.adv[v].signature) for v in u1)
        self.share_msgs = {}
        for u in u1:
            if u in absent:
                continue
            peers = every if self.p.active else tuple(e for e in every if e.client in self.holders(u))
            self.share_msgs[u] = wire(self.clients[u].share_keys(wire(KeysBroadcast(self.rid, u, peers))))
        self.inbox = {u: [] for u in self.share_msgs}
        for sender in sorted(self.share_msgs):
            for to, ct in self.share_msgs[sender].ciphertexts:
                if to in self.inbox:
                    self.inbox[to].append((sender, ct))

    def withhold(self, receivers: Iterable[int], senders: Iterable[int]) -> None:
        """Uneven share delivery: ``receivers`` never get the share ciphertexts of ``senders`` (so
        they do not mask with them), while ``senders`` still get the receivers' (call between
        :meth:`share` and :meth:`masked`)."""
        senders = set(senders)
        for u in receivers:
            self.inbox[u] = [(s, ct) for s, ct in self.inbox[u] if s not in senders]

    def masked(self, absent: Iterable[int] = ()) -> None:
        absent = set(absent)
        self.y = {}
        self.masked_with = {}
        for u in sorted(self.share_msgs):
            if u in absent:
                continue
            dealers = tuple(DealerCommitments(d, self.share_msgs[d].commitments, self.share_msgs[d].signature)
                            for d, _ in self.inbox[u])
            msg = wire(SharesDelivery(self.rid, u, tuple(self.inbox[u]), dealers))
            self.y[u] = wire(self.clients[u].masked_input(msg, self.x[u])).vector
            self.masked_with[u] = {s for s, _ in self.inbox[u]}
        for c in self.corrupted:  # the colluders hand over every share they received
            for peer, (s_share, b_share) in getattr(self.clients[c], "_shares", {}).items():
                self.held_s[peer][c] = s_share
                self.held_b[peer][c] = b_share

    def setup(self, absent_at: Mapping[str, Iterable[int]] | None = None) -> None:
        """Steps 0-2 with everyone (or the given absentees per step) taking part."""
        absent_at = absent_at or {}
        self.advertise(absent_at.get("advertise", ()))
        self.share(absent_at.get("share", ()))
        self.masked(absent_at.get("masked", ()))

    # -- step 3: the views ------------------------------------------------------------------
    def sign(self, views: Mapping[int, tuple[int, ...]]) -> None:
        """Show each honest client ``views[u]`` as U3; the colluders sign every view shown."""
        for u, u3 in views.items():
            if u in self.corrupted:
                continue
            try:
                sig = wire(self.clients[u].consistency_check(wire(ConsistencyRequest(self.rid, u, tuple(u3)))))
            except SecAggError as exc:
                self.refused[u] = exc
                continue
            self.signatures.setdefault(tuple(u3), {})[u] = sig.signature
        for u3 in {tuple(v) for v in views.values()}:
            for c in self.corrupted:
                if c in u3:
                    self.signatures.setdefault(u3, {})[c] = self.signing[c].sign(consistency_transcript(self.rid, self.seed, u3))

    # -- step 4 -----------------------------------------------------------------------------
    def unmask(self, requests: Mapping[int, tuple[tuple[int, ...], tuple[int, ...]]],
               signatures: Mapping[int, tuple[tuple[int, bytes], ...]] | None = None) -> None:
        """Send each honest client ``(survivors, dropped)``; record the shares it reveals.

        Active variant: the request carries every signature the adversary holds on those
        survivors (or ``signatures[u]`` when given).
        """
        for u, (survivors, dropped) in requests.items():
            if u in self.corrupted or u in self.refused:
                continue
            if signatures is not None and u in signatures:
                sigs = tuple(signatures[u])
            else:
                sigs = tuple(sorted(self.signatures.get(tuple(survivors), {}).items())) if self.p.active else ()
            req = wire(UnmaskRequest(self.rid, u, tuple(survivors), tuple(dropped), sigs))
            try:
                resp = wire(self.clients[u].unmask(req))
            except SecAggError as exc:
                self.refused[u] = exc
                continue
            for peer, kind, value in resp.shares:
                (self.held_s if kind == MASK_KEY_SHARE else self.held_b)[peer][u] = value

    def honest_requests(self, u3: Iterable[int]) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
        """The requests an honest server sends for survivor set ``u3`` (to every client in it)."""
        u3 = tuple(sorted(u3))
        out = {}
        for u in u3:
            h = self.holders(u)
            survivors = u3 if self.p.active else tuple(v for v in u3 if v in h)
            gone = tuple(sorted(v for v in self.masked_with.get(u, set()) if v not in u3))
            out[u] = (survivors, gone)
        return out

    # -- what the server holds --------------------------------------------------------------
    def exposed(self) -> list[int]:
        """Honest clients of which the server holds t shares of both ``b_u`` and ``s_u^SK``."""
        return [u for u in self.honest if len(self.held_b[u]) >= self.t and len(self.held_s[u]) >= self.t]

    def holdings(self, u: int) -> tuple[int, int]:
        return len(self.held_b[u]), len(self.held_s[u])

    def revealed_any(self, u: int) -> bool:
        """Whether honest client ``u`` revealed any share."""
        return any(u in d for d in self.held_b.values()) or any(u in d for d in self.held_s.values())

    def _b_seed(self, u: int) -> bytes:
        return reconstruct_secret(self.held_b[u], self.t).to_bytes(32, "big")

    def _s_key(self, u: int) -> MaskKey:
        key = MaskKey(reconstruct_secret(self.held_s[u], self.t))
        assert key.public_bytes == self.adv[u].s_pk
        return key

    def _unmasked(self, u: int, pairs_from: Mapping[int, MaskKey]) -> np.ndarray:
        """``y_u`` minus its self mask and minus its pairwise masks with the clients in ``pairs_from``."""
        bits = self.p.mask_bits
        acc = self.y[u].astype(ring_dtype(bits), copy=True)
        ex = MaskExpander(self.dim, bits)
        ex.add(acc, self_mask_keys(self._b_seed(u), self.rid, u).ring, -1)
        for w, key in pairs_from.items():
            secret = key.agree(self.adv[u].s_pk)
            ex.add(acc, pairwise_mask_keys(secret, self.rid, u, w).ring, -pairwise_sign(u, w))
        reduce_ring(acc, bits)
        return acc

    def recover_input(self, u: int) -> np.ndarray:
        """``x_u`` from t shares of both secrets of ``u`` (the two-views attack's payoff)."""
        s_key = self._s_key(u)
        bits = self.p.mask_bits
        acc = self.y[u].astype(ring_dtype(bits), copy=True)
        ex = MaskExpander(self.dim, bits)
        ex.add(acc, self_mask_keys(self._b_seed(u), self.rid, u).ring, -1)
        for w in sorted(self.masked_with[u]):
            keys = pairwise_mask_keys(s_key.agree(self.adv[w].s_pk), self.rid, u, w)
            ex.add(acc, keys.ring, -pairwise_sign(u, w))
        reduce_ring(acc, bits)
        return acc

    def segment_sum(self, segment: Iterable[int], removed: Iterable[int]) -> np.ndarray:
        """The sum of ``segment``'s inputs, when no survivor outside it is its neighbour.

        Needs ``b_u`` of each member and ``s_w^SK`` of each removed neighbour (the chosen-dropout
        attack's payoff: a partial sum of a component of the survivors' masking graph). Colluders
        in ``removed`` may be survivors: the server has their keys.
        """
        removed = set(removed)
        # a colluder's key is the server's anyway; an honest removed client's needs t shares
        keys = {w: self.clients[w]._s_key if w in self.corrupted else self._s_key(w)
                for w in removed if w in self.corrupted or len(self.held_s[w]) >= self.t}
        bits = self.p.mask_bits
        acc = np.zeros(self.dim, dtype=ring_dtype(bits))
        for u in segment:
            np.add(acc, self._unmasked(u, {w: keys[w] for w in self.masked_with[u] & removed}), out=acc)
        reduce_ring(acc, bits)
        return acc

    def true_sum(self, members: Iterable[int]) -> np.ndarray:
        bits = self.p.mask_bits
        acc = np.zeros(self.dim, dtype=ring_dtype(bits))
        for u in members:
            np.add(acc, self.x[u], out=acc)
        reduce_ring(acc, bits)
        return acc


def ring_cut(adv: MaliciousServer, arc_len: int, per_side: int, reach: int) -> dict:
    """The ring cut by uneven share delivery and two survivor views (no colluders needed).

    On the ring order, the arc C is ``arc_len`` consecutive clients; on each side of it the next
    ``per_side`` clients form W (withheld) and the ``reach - per_side`` after them Z (``reach`` is
    K/2 on SecAgg+: then C has no neighbour beyond W and Z). C's members never receive W's share
    ciphertexts, so they mask with neither W nor anyone outside ``W | Z``; W still receives C's.
    View ``S_C = all - W`` goes to C and Z, view ``S_O = all - Z`` to everyone else; each client
    gets the signatures on its own view and unmasks with the dropped clients it masked with.
    Within ``S_C`` the server gets ``b_u`` of C; within ``S_O`` the shares of ``s_z^SK`` for Z;
    that removes every mask of C: :meth:`MaliciousServer.segment_sum` of C with Z removed.

    Returns ``{"arc", "withheld", "z", "views"}``.
    """
    ring = adv.ring()
    n = len(ring)
    pos = lambda i: ring[i % n]  # noqa: E731
    arc = {pos(i) for i in range(arc_len)}
    withheld = {pos(arc_len + j) for j in range(per_side)} | {pos(-1 - j) for j in range(per_side)}
    z = {pos(arc_len + j) for j in range(per_side, reach)} | {pos(-1 - j) for j in range(per_side, reach)}
    view_c = tuple(sorted(set(ring) - withheld))
    view_o = tuple(sorted(set(ring) - z))
    adv.share()
    adv.withhold(arc, withheld)
    adv.masked()
    views = {u: (view_c if u in arc | z else view_o) for u in adv.honest}
    adv.sign(views)
    requests = {}
    for u, view in views.items():
        if u not in adv.refused:
            requests[u] = (view, tuple(sorted(v for v in adv.masked_with[u] if v not in view)))
    adv.unmask(requests)
    return {"arc": arc, "withheld": withheld, "z": z, "views": views}


def components(graph: Mapping[int, frozenset[int]], nodes: Iterable[int]) -> list[set[int]]:
    """Connected components of ``graph`` restricted to ``nodes``."""
    nodes = set(nodes)
    out, seen = [], set()
    for start in sorted(nodes):
        if start in seen:
            continue
        comp, stack = set(), [start]
        while stack:
            v = stack.pop()
            if v in comp:
                continue
            comp.add(v)
            stack.extend(w for w in graph[v] if w in nodes and w not in comp)
        seen |= comp
        out.append(comp)
    return out
