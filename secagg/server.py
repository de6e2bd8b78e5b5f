"""The server side of the protocol: an explicit state machine, one ``receive_*``/``close_*`` pair
per step, ending in :meth:`SecAggServer.finish`.

::

    ADVERTISE     receive_advertise(AdvertiseKeys)*          close_advertise()   -> {u: KeysBroadcast}
    SHARE_KEYS    receive_share_keys(ShareKeys)*             close_share_keys()  -> {u: SharesDelivery}
    (receipts)    receive_receipt(SharesReceipt)*            close_receipts()    -> {u: MaskRequest}   (optional)
    MASKED_INPUT  receive_masked_input(MaskedInput)*         close_masked_input(exclude) -> requests
    CONSISTENCY   receive_consistency(ConsistencySignature)* close_consistency() -> {u: UnmaskRequest}
    UNMASK        receive_unmask(UnmaskResponse)*            finish()            -> SumResult

``receive_*`` validates one message completely before storing it (a rejected message changes
nothing); a second message from the same sender in a step, the same bytes or others, and a
message of another round are a :class:`ReplayedMessage`: the first message stands, and its
sender is excluded at the next close where that is safe (:attr:`SecAggServer.duplicated`).
``close_*`` fixes the step's set of senders and raises :class:`TooFewSurvivors` if it is below
the threshold. The unmasking arithmetic is in ``docs/secagg.md#unmasking``.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from .client import check_incoming
from .errors import (
    AuthenticationFailed,
    DealerFault,
    DropoutBudgetExceeded,
    Equivocation,
    MalformedMessage,
    OutOfOrder,
    ProtocolViolation,
    ReplayedMessage,
    TooFewSurvivors,
    UnrecoverableSecret,
)
from .graph import graph_seed, keyed_neighbours, neighbours
from .keys import MaskKey, check_mask_public_key, check_public_key, verify_signature
from .masking import pairwise_mask_keys, pairwise_sign, self_mask_keys
from .messages import (
    MASK_KEY_SHARE,
    SELF_MASK_SHARE,
    AdvertiseKeys,
    ConsistencyRequest,
    ConsistencySignature,
    DealerCommitments,
    KeysBroadcast,
    MaskedInput,
    MaskRequest,
    PeerKeys,
    SharesDelivery,
    SharesReceipt,
    ShareKeys,
    UnmaskRequest,
    UnmaskResponse,
)
from .params import SecAggParams
from .steps import Step
from .prg import MaskExpander, expand_field, reduce_ring, ring_dtype
from .randomness import SystemRandom
from .shamir import reconstruct_secret
from .transcripts import advertise_transcript, commitments_transcript, consistency_transcript
from .vss import Commitments, commit_polynomial, invalid_shares

__all__ = ["ServerStage", "SecAggServer", "SumResult"]


ServerStage = Step  # the shared step vocabulary (secagg.steps)


@dataclasses.dataclass
class SumResult:
    """The output of a round.

    Attributes:
      vector: ``sum_{u in U3} x_u mod 2^k`` (uint32 or uint64).
      field_vector: ``sum_{u in U3} x^f_u mod q`` (empty without a side vector).
      survivors: U3, the clients whose inputs are in the sum.
      dropped: ``{client: step}`` for each client whose input is not in the sum, where ``step``
        names the first step it missed (or ``excluded: <reason>``).
      late: clients in U3 that missed a later step (their inputs are still in the sum).
      blamed: ``{client: reason}`` for each client whose unmasking answer was found faulty
        (``"wrong_share"``: a share off its dealer's committed polynomial); its shares were
        ignored. Such a client is in U3 (its input is in the sum): taking it out would need both
        of its secrets, which honest holders never reveal.
    """

    vector: np.ndarray
    field_vector: tuple[int, ...]
    survivors: tuple[int, ...]
    dropped: dict[int, str]
    late: dict[int, str]
    blamed: dict[int, str] = dataclasses.field(default_factory=dict)


def _below_threshold(members: set[int], count, threshold: int) -> set[int]:
    """The clients to leave out so that each remaining ``u`` has ``count(u, remaining) >= threshold``
    (removed in rounds until none falls short; the result does not depend on iteration order)."""
    alive = set(members)
    while True:
        weak = {u for u in alive if count(u, alive) < threshold}
        if not weak:
            return set(members) - alive
        alive -= weak


class SecAggServer:
    """The server's side of one round.

    Args:
      params: the round's public parameters.
      round_id: the 16-byte round id.
      dim: length of the clients' vectors.
      verify_keys: ``{client id: Ed25519 public key}`` (active variant only).
    """

    def __init__(self, params: SecAggParams, round_id: bytes, dim: int, *, verify_keys: Mapping[int, bytes] | None = None):
        if len(round_id) != 16:
            raise ValueError("round_id: expected 16 bytes")
        if params.active and verify_keys is None:
            raise ValueError("the active variant needs verify_keys")
        if params.active:
            vks = [verify_keys.get(u) for u in params.client_ids]
            if any(v is None or len(v) != 32 for v in vks) or len(set(vks)) != len(vks):
                raise ValueError("verify_keys: expected distinct 32-byte keys for every client 1..n")
        self.params = params
        self.round_id = bytes(round_id)
        self.dim = int(dim)
        self._verify_keys = dict(verify_keys or {})
        # active variant: the graph follows from every key advertised in step 0 (close_advertise)
        self._graph = None if params.active else neighbours(params, self.round_id)
        self.graph_seed: bytes | None = None
        self.stage = ServerStage.ADVERTISE
        self._keys: dict[int, AdvertiseKeys] = {}
        self._share_msgs: dict[int, ShareKeys] = {}
        self._inputs: dict[int, MaskedInput] = {}
        self._receipts: dict[int, SharesReceipt] = {}
        self._receipts_closed = False
        self._inbox: dict[int, frozenset[int]] = {}
        self._signatures: dict[int, bytes] = {}
        self._responses: dict[int, UnmaskResponse] = {}
        self._eligible: frozenset[int] = frozenset(params.client_ids)
        self._requests: dict[int, UnmaskRequest] = {}
        self.dropped: dict[int, str] = {}
        self.late: dict[int, str] = {}
        #: ``{client: reason}``: clients whose unmasking answer was found faulty (set by finish)
        self.blamed: dict[int, str] = {}
        #: ``{client: reason}``: clients that sent a second message in a step (``"duplicate_message"``
        #: for the same bytes, ``"equivocation"`` for others) or a message of another round
        #: (``"replayed_message"``). Each is left out at the next close: before unmasking as if it
        #: had stopped sending (out of the sum), after the masked inputs as a holder whose
        #: answers are ignored (its input stays in U3, named in ``blamed``).
        self.duplicated: dict[int, str] = {}

    @property
    def arrived(self) -> tuple[int, ...]:
        """The clients whose masked inputs have been accepted so far, in increasing order."""
        return tuple(sorted(self._inputs))

    def _holders(self, u: int) -> frozenset[int]:
        return self._graph[u] | {u}

    def _accept(self, msg, cls: type, stage: ServerStage, store: dict) -> None:
        if self.stage is not stage:
            raise OutOfOrder(f"server: {cls.__name__} received in stage {self.stage.value}")
        try:
            check_incoming(msg, cls, self.round_id, None, "sender")
        except ReplayedMessage:
            # a message of another round, sent over this client's channel: excluded like a
            # duplicate. This gives whoever can inject messages nothing new: they could drop them.
            if msg.sender in self._eligible:
                self.duplicated.setdefault(msg.sender, "replayed_message")
            raise ReplayedMessage(f"server: {cls.__name__} of another round from client {msg.sender}",
                                  blamed=(msg.sender,), reason="replayed_message") from None
        if msg.sender in store:
            first = store[msg.sender]
            same = first.encode() == msg.encode() if hasattr(first, "encode") else first == getattr(msg, "signature", None)
            why = "duplicate_message" if same else "equivocation"
            self.duplicated.setdefault(msg.sender, why)
            raise ReplayedMessage(f"server: second {cls.__name__} from client {msg.sender}", blamed=(msg.sender,),
                                  reason=why)
        if msg.sender in self.duplicated:
            raise ProtocolViolation(f"server: client {msg.sender} is excluded ({self.duplicated[msg.sender]})",
                                    blamed=(msg.sender,), reason="excluded")
        if msg.sender not in self._eligible:
            raise ProtocolViolation(f"server: client {msg.sender} may not send {cls.__name__} now", blamed=(msg.sender,),
                                    reason="not_eligible")

    def _exclude_duplicated(self, stayed: set[int]) -> None:
        """Record, as excluded, the clients of ``stayed`` (eligible before this close) that
        :attr:`duplicated` names."""
        for u in sorted(set(self.duplicated) & stayed):
            self.dropped[u] = f"excluded: {self.duplicated[u]}"

    def _expect(self, stage: ServerStage, what: str) -> None:
        if self.stage is not stage:
            raise OutOfOrder(f"server: {what} called twice or out of order")

    def _close(self, step: str, received: set[int]) -> None:
        """Check the step's senders against t (before any state changes), then record the missing."""
        if len(received) < self.params.threshold:
            raise TooFewSurvivors(step, len(received), self.params.threshold, blamed=self.duplicated)
        for u in self._eligible - received:
            self.dropped.setdefault(u, step)

    # -- step 0 ----------------------------------------------------------------------------
    def receive_advertise(self, msg: AdvertiseKeys) -> None:
        """Store one client's advertised keys.

        Raises:
          NonCanonicalEncoding: a public key not canonically encoded (X25519: bit 255 set, or
            u >= p; P-256: not a 33-byte compressed point with x < p).
          UnusableKey: an X25519 key of small order or a P-256 key off the curve (it would make
            every peer's agreement fail).
          ProtocolViolation: a public key already used by another client.
          AuthenticationFailed: (active) the signature does not verify.
        """
        self._accept(msg, AdvertiseKeys, ServerStage.ADVERTISE, self._keys)
        check_public_key(msg.c_pk, msg.sender)
        check_mask_public_key(msg.s_pk, msg.sender)
        used = {k for m in self._keys.values() for k in (m.c_pk, m.s_pk)}
        if msg.c_pk == msg.s_pk or msg.c_pk in used or msg.s_pk in used:
            raise ProtocolViolation(f"server: client {msg.sender} reuses a public key", blamed=(msg.sender,),
                                    reason="reused_public_key")
        if self.params.active:
            if msg.sender not in self._verify_keys:
                raise AuthenticationFailed(f"no verify key for client {msg.sender}", blamed=(msg.sender,))
            verify_signature(
                self._verify_keys[msg.sender], msg.signature,
                advertise_transcript(self.round_id, msg.sender, msg.c_pk, msg.s_pk), f"client {msg.sender}",
                blamed=(msg.sender,),
            )
        self._keys[msg.sender] = msg

    def close_advertise(self) -> dict[int, KeysBroadcast]:
        """End step 0: U1 is fixed; each client gets the keys of its neighbours in U1.

        Active variant: the graph seed is the hash over every key of U1, and each client gets
        all of U1's signed keys (it recomputes the seed, hence its neighbours, itself).
        """
        self._expect(ServerStage.ADVERTISE, "close_advertise")
        before = set(self._eligible)
        u1 = set(self._keys) - set(self.duplicated)
        p = self.params
        weak: set[int] = set()
        if not p.active:
            # A client with fewer than t holders in U1 is left out, and so is every client that
            # then falls short in its turn: the graph after these exclusions is the one every
            # later step uses (no broadcast lists a client that will never share keys).
            weak = _below_threshold(u1, lambda u, alive: len(self._holders(u) & alive), p.threshold)
            if len(u1) - len(weak) < p.threshold:
                raise TooFewSurvivors("advertise_keys", len(u1) - len(weak), p.threshold,
                                      f"{len(weak)} client(s) with too few neighbours", blamed=self.duplicated)
        self._close("advertise_keys", u1)
        if p.active and p.num_clients - len(u1) > p.dropout_budget:
            raise DropoutBudgetExceeded("round", p.num_clients - len(u1), p.dropout_budget, "server, step 0",
                                        blamed=self.duplicated)
        self._exclude_duplicated(before)
        for u in sorted(weak):
            self.dropped[u] = "advertise_keys: too few neighbours"
        u1 -= weak
        if p.active:
            self._keys = {u: m for u, m in self._keys.items() if u in u1}
            self.graph_seed = graph_seed(self.round_id, p.num_clients, {u: (m.c_pk, m.s_pk) for u, m in self._keys.items()})
            self._graph = keyed_neighbours(p, self.graph_seed, self._verify_keys)
        everyone = tuple(PeerKeys(v, self._keys[v].c_pk, self._keys[v].s_pk, self._keys[v].signature) for v in sorted(u1))
        out = {}
        for u in sorted(u1):
            mine = sorted(self._holders(u) & u1)
            if len(mine) < p.threshold:
                self.dropped[u] = "advertise_keys: too few neighbours"
                continue
            peers = everyone if p.active else tuple(
                PeerKeys(v, self._keys[v].c_pk, self._keys[v].s_pk, self._keys[v].signature) for v in mine)
            out[u] = KeysBroadcast(self.round_id, u, peers)
        self._u1 = frozenset(u1)
        self._eligible = frozenset(out)
        self.stage = ServerStage.SHARE_KEYS
        return out

    # -- step 1 ----------------------------------------------------------------------------
    def receive_share_keys(self, msg: ShareKeys) -> None:
        """Store one client's commitments and encrypted shares.

        Raises:
          ProtocolViolation: the ciphertexts are not addressed to exactly its neighbours in U1;
            the commitments do not hold ``t`` points per polynomial (``commitments_wrong_threshold``)
            or their mask-key constant term is not the key the client advertised
            (``commitment_key_mismatch``): refused here, before any holder sees them.
          AuthenticationFailed: (active) the signature over the commitments does not verify.
          Equivocation: (active) a second ``ShareKeys`` of the client, validly signed, over other
            commitments: the client is excluded from the round (``dropped``: ``excluded:
            equivocation``) and its first message discarded, before anything was delivered.
          ReplayedMessage: any other second ``ShareKeys`` (the first one stands).
        """
        if (self.params.active and isinstance(msg, ShareKeys) and self.stage is ServerStage.SHARE_KEYS
                and msg.round_id == self.round_id and msg.sender in self._share_msgs
                and msg.commitments != self._share_msgs[msg.sender].commitments and self._signed(msg)):
            u = msg.sender
            del self._share_msgs[u]
            self._eligible = self._eligible - {u}
            self.dropped[u] = "excluded: equivocation"
            raise Equivocation(f"server: client {u} signed two different commitment vectors", blamed=(u,),
                               reason="equivocation")
        self._accept(msg, ShareKeys, ServerStage.SHARE_KEYS, self._share_msgs)
        expected = (self._holders(msg.sender) & self._u1) - {msg.sender}
        if {to for to, _ in msg.ciphertexts} != expected:
            raise ProtocolViolation(f"server: client {msg.sender}'s shares are not addressed to its neighbours in U1",
                                    blamed=(msg.sender,), reason="misaddressed_shares")
        if not isinstance(msg.commitments, Commitments):
            raise MalformedMessage(f"server: client {msg.sender}'s commitments are not a Commitments vector",
                                   blamed=(msg.sender,))
        if msg.commitments.threshold != self.params.threshold:
            raise ProtocolViolation(f"server: client {msg.sender} committed to {msg.commitments.threshold} coefficients, "
                                    f"not t = {self.params.threshold}", blamed=(msg.sender,),
                                    reason="commitments_wrong_threshold")
        if msg.commitments.mask_key_constant != self._keys[msg.sender].s_pk:
            raise ProtocolViolation(f"server: client {msg.sender}'s commitments do not open to the key it advertised",
                                    blamed=(msg.sender,), reason="commitment_key_mismatch")
        if self.params.active and not self._signed(msg):
            raise AuthenticationFailed(f"bad signature from client {msg.sender} over its commitments",
                                       blamed=(msg.sender,), reason="bad_signature")
        self._share_msgs[msg.sender] = msg

    def _signed(self, msg: ShareKeys) -> bool:
        """(active) whether ``msg``'s signature over its commitments verifies under its sender's key."""
        try:
            verify_signature(self._verify_keys[msg.sender], msg.signature,
                             commitments_transcript(self.round_id, msg.sender, msg.commitments.encoded),
                             f"client {msg.sender}")
        except (AuthenticationFailed, KeyError):
            return False
        return True

    def close_share_keys(self) -> dict[int, SharesDelivery]:
        """End step 1: U2 is fixed; each client gets the ciphertexts addressed to it."""
        self._expect(ServerStage.SHARE_KEYS, "close_share_keys")
        before = set(self._eligible)
        u2 = set(self._share_msgs) - set(self.duplicated)
        t = self.params.threshold
        addressed = {u: {to for to, _ in self._share_msgs[u].ciphertexts} for u in u2}
        # a client with fewer than t - 1 senders is left out, its ciphertexts are not delivered
        # (nobody masks with it), and so on until every remaining client has enough
        weak = _below_threshold(u2, lambda u, alive: 1 + sum(1 for v in alive if u in addressed[v]), t)
        if len(u2) - len(weak) < t:
            raise TooFewSurvivors("share_keys", len(u2) - len(weak), t, f"{len(weak)} client(s) with too few neighbours",
                                  blamed=self.duplicated)
        self._close("share_keys", u2)
        self._exclude_duplicated(before)
        for u in sorted(weak):
            self.dropped[u] = "share_keys: too few neighbours"
        u2 -= weak
        inbox: dict[int, list] = {u: [] for u in u2}
        for sender in sorted(u2):
            for to, ct in self._share_msgs[sender].ciphertexts:
                if to in inbox:
                    inbox[to].append((sender, ct))
        dealers = {d: DealerCommitments(d, self._share_msgs[d].commitments, self._share_msgs[d].signature) for d in u2}
        out = {u: SharesDelivery(self.round_id, u, tuple(inbox[u]), tuple(dealers[d] for d, _ in inbox[u]))
               for u in sorted(u2)}
        self._inbox = {u: frozenset(s for s, _ in inbox[u]) for u in u2}
        self._u2 = frozenset(u2)
        self._eligible = frozenset(out)
        self.stage = ServerStage.MASKED_INPUT
        return out

    # -- step 2a (share receipts) -----------------------------------------------------------
    def receive_receipt(self, msg: SharesReceipt) -> None:
        """Store one client's share receipt (the dealers whose bundles failed its checks).

        Raises:
          OutOfOrder: after :meth:`close_receipts` or once a masked input has arrived.
          ProtocolViolation: a disputed dealer whose bundle was not delivered to that client.
        """
        if self._receipts_closed or self._inputs:
            raise OutOfOrder("server: a share receipt after masking began")
        self._accept(msg, SharesReceipt, ServerStage.MASKED_INPUT, self._receipts)
        if not set(msg.disputed) <= self._inbox[msg.sender]:
            raise ProtocolViolation(f"server: client {msg.sender} disputes bundles it was not sent",
                                    blamed=(msg.sender,), reason="unfounded_dispute")
        self._receipts[msg.sender] = msg

    def close_receipts(self) -> dict[int, MaskRequest]:
        """End step 2a: leave out, before anyone masks with them, the dealers with fewer than t
        holders that hold their shares (undisputed, among the clients that sent a receipt; the
        dealer itself counts only when no holder disputed it), repeated until none falls short.

        Such a dealer's secrets could not be rebuilt at unmasking; leaving it out now is what
        would happen had its ciphertexts never been delivered, which any server can do, so it
        gives the server nothing new. Nobody is blamed: the server cannot tell a dealer that sent
        bad bundles from holders that claim so. Clients without a receipt count as dropped here.

        Raises:
          TooFewSurvivors: fewer than ``t`` clients remain (state unchanged).

        Returns:
          A mask request for each remaining client that sent a receipt, naming the excluded
          dealers among its senders.
        """
        self._expect(ServerStage.MASKED_INPUT, "close_receipts")
        if self._receipts_closed or self._inputs:
            raise OutOfOrder("server: close_receipts called twice or after masking began")
        t = self.params.threshold
        alive = set(self._receipts) - set(self.duplicated)
        disputes = {v: set(r.disputed) for v, r in self._receipts.items() if v in alive}
        holders = {d: {v for v in self._u2 if d in self._inbox[v]} for d in self._u2}

        disputed = {d for d in self._u2 if any(d in disputes[v] for v in alive)}

        def holding(d: int, remaining: set[int]) -> int:
            # a disputed dealer's own share does not count: it never reveals its own share of s
            # (needed only once it has dropped) and may drop before revealing that of b, so
            # counting it let a dealer cheat all but t - 1 holders, stay, drop, and fail the round
            # unblamed. An undisputed dealer keeps the protocol's usual count (itself included).
            sure = len({v for v in holders[d] & alive & remaining if d not in disputes[v]})
            return sure + (1 if d in alive and d in remaining and d not in disputed else 0)

        gone = _below_threshold(set(self._u2), holding, t)
        stay = alive - gone
        if len(stay) < t:
            raise TooFewSurvivors("masked_input", len(stay), t, f"{len(gone)} dealer(s) with too few holders",
                                  blamed=self.duplicated)
        self._exclude_duplicated(set(self._eligible))
        for d in sorted(gone - set(self.duplicated)):
            disputed = any(d in disputes[v] for v in alive)
            self.dropped[d] = "excluded: disputed_shares" if disputed and d in alive else "masked_input"
        self._u2 = frozenset(self._u2 - gone)
        self._eligible = frozenset(stay)
        self._receipts_closed = True
        return {u: MaskRequest(self.round_id, u, tuple(sorted(gone & self._inbox[u]))) for u in sorted(stay)}

    # -- step 2 ----------------------------------------------------------------------------
    def receive_masked_input(self, msg: MaskedInput) -> None:
        """Store one masked input.

        Raises:
          MalformedMessage: wrong ``k``, length, or side vector.
          OutOfOrder: receipts arrived but :meth:`close_receipts` was not called.
        """
        if self._receipts and not self._receipts_closed:
            raise OutOfOrder("server: a masked input before close_receipts")
        self._accept(msg, MaskedInput, ServerStage.MASKED_INPUT, self._inputs)
        p = self.params
        if msg.mask_bits != p.mask_bits or msg.vector.shape != (self.dim,):
            raise MalformedMessage(f"server: client {msg.sender}'s masked input has the wrong k or length",
                                   blamed=(msg.sender,), reason="malformed_masked_input")
        if len(msg.field_vector) != p.field_dim or any(e >= p.field_modulus for e in msg.field_vector):
            raise MalformedMessage(f"server: client {msg.sender}'s side vector has the wrong length or range",
                                   blamed=(msg.sender,), reason="malformed_masked_input")
        self._inputs[msg.sender] = msg

    def close_masked_input(self, exclude: Mapping[int, str] | None = None) -> dict[int, ConsistencyRequest | UnmaskRequest]:
        """End step 2: U3 is fixed (received inputs minus ``exclude``); send the next requests.

        Args:
          exclude: clients to leave out of the sum *before unmasking*, with a reason (for
            example, a norm proof that failed). They are treated exactly like clients that
            dropped after sharing keys: their pairwise masks are removed, their self masks
            never reconstructed. They count toward the dropout budget.

        Raises:
          TooFewSurvivors: fewer than ``t`` inputs remain.
          DropoutBudgetExceeded: (active) more clients missing than ``params.dropout_budget``.

        Returns:
          Consistency requests (active variant) or unmasking requests, by client.
        """
        self._expect(ServerStage.MASKED_INPUT, "close_masked_input")
        exclude = dict(exclude or {})
        for u, why in self.duplicated.items():
            if u in self._inputs:
                exclude.setdefault(u, why)
        u3 = set(self._inputs) - set(exclude)
        if len(u3) < self.params.threshold:
            raise TooFewSurvivors("masked_input", len(u3), self.params.threshold, blamed=self.duplicated)
        if self.params.active and self.params.num_clients - len(u3) > self.params.dropout_budget:
            # the honest clients would refuse to sign this U3: fail closed here, with the reason
            raise DropoutBudgetExceeded("round", self.params.num_clients - len(u3), self.params.dropout_budget, "server, step 2",
                                        blamed=self.duplicated)
        for u, why in exclude.items():
            if u in self._inputs:
                self.dropped[u] = f"excluded: {why}"
        for u in self._u2 - u3:
            self.dropped.setdefault(u, "masked_input")
        self._u3 = tuple(sorted(u3))
        self._eligible = frozenset(u3)
        if self.params.active:
            self.stage = ServerStage.CONSISTENCY
            return {u: ConsistencyRequest(self.round_id, u, self._u3) for u in self._u3}
        return self._unmask_requests(())

    def _unmask_requests(self, signatures: tuple) -> dict[int, UnmaskRequest]:
        u3 = set(self._u3)
        gone = self._u2 - u3
        out = {}
        for u in sorted(self._eligible):
            h = self._holders(u)
            survivors = self._u3 if self.params.active else tuple(sorted(u3 & h))  # active: the signed U3 in full
            out[u] = UnmaskRequest(self.round_id, u, survivors, tuple(sorted(gone & h)), signatures)
        self._requests = out
        self._eligible = frozenset(out)
        self.stage = ServerStage.UNMASK
        return out

    # -- step 3 (active) -------------------------------------------------------------------
    def receive_consistency(self, msg: ConsistencySignature) -> None:
        """Store one client's signature over U3.

        Raises:
          AuthenticationFailed: the signature does not verify.
        """
        self._accept(msg, ConsistencySignature, ServerStage.CONSISTENCY, self._signatures)
        if msg.sender not in self._verify_keys:
            raise AuthenticationFailed(f"no verify key for client {msg.sender}", blamed=(msg.sender,))
        verify_signature(self._verify_keys[msg.sender], msg.signature,
                         consistency_transcript(self.round_id, self.graph_seed, self._u3), f"client {msg.sender}",
                         blamed=(msg.sender,))
        self._signatures[msg.sender] = msg.signature

    def close_consistency(self) -> dict[int, UnmaskRequest]:
        """End step 3: U4 is fixed; each client in U4 gets the unmasking request with U4's signatures."""
        self._expect(ServerStage.CONSISTENCY, "close_consistency")
        u4 = set(self._signatures) - set(self.duplicated)
        if len(u4) < self.params.threshold:
            raise TooFewSurvivors("consistency_check", len(u4), self.params.threshold, blamed=self.duplicated)
        for u in set(self._u3) - u4 - set(self.duplicated):
            self.late[u] = "consistency_check"
        self._eligible = frozenset(u4)
        return self._unmask_requests(tuple(sorted((u, sig) for u, sig in self._signatures.items() if u in u4)))

    # -- step 4 ----------------------------------------------------------------------------
    def receive_unmask(self, msg: UnmaskResponse) -> None:
        """Store one client's shares.

        Raises:
          ProtocolViolation: shares of other peers or kinds than the request asked for.
        """
        self._accept(msg, UnmaskResponse, ServerStage.UNMASK, self._responses)
        req = self._requests[msg.sender]
        want = {v: SELF_MASK_SHARE for v in req.survivors if v in self._holders(msg.sender)}
        want.update({v: MASK_KEY_SHARE for v in req.dropped})
        peers = [peer for peer, _, _ in msg.shares]
        # a holder may leave out a peer whose share bundle failed its checks (a dealer fault it
        # could not repair), but it may not answer what was not asked
        if len(set(peers)) != len(peers) or any(want.get(peer) != kind for peer, kind, _ in msg.shares):
            raise ProtocolViolation(f"server: client {msg.sender}'s shares do not answer the request",
                                    blamed=(msg.sender,), reason="unrequested_shares")
        self._responses[msg.sender] = msg

    def _rebuild(self, dealer: int, kind: int, shares: dict[int, int], wrong: dict[int, str]) -> int | Exception:
        """The dealer's secret from the revealed shares that lie on its committed polynomial.

        Every share (the dealer's own included) is checked against the dealer's Feldman
        commitments, all of one secret in one batched check (:func:`secagg.vss.invalid_shares`);
        holders whose share fails are added to ``wrong`` and their shares ignored. Any ``t`` shares
        that pass lie on the committed polynomial, so the lowest ``t`` of them give its constant
        term, whose commitment ``C_0`` is the advertised key (``s``, checked at share-keys time)
        or the published ``b G`` (``b``).

        Returns:
          The secret, or an :class:`UnrecoverableSecret` (fewer than ``t`` shares pass) /
          :class:`DealerFault` (``t`` passing shares that do not give ``C_0``: impossible unless
          the group arithmetic is broken; kept so that the round fails closed even then), not
          raised, so that the caller can first check every secret and blame every faulty holder.
        """
        t = self.params.threshold
        name = "self_mask" if kind == SELF_MASK_SHARE else "mask_key"
        c = self._share_msgs[dealer].commitments
        points = c.self_mask if kind == SELF_MASK_SHARE else c.mask_key
        # a holder already caught revealing a wrong share is ignored for every later secret, so
        # that one liar costs one per-share fallback of the batched check, not one per secret
        holders = sorted(h for h in shares if h not in wrong)
        bad = {holders[k] for k in invalid_shares([(points, h, shares[h]) for h in holders], SystemRandom())}
        for holder in sorted(bad):
            wrong[holder] = "wrong_share"
        good = [h for h in holders if h not in bad]
        if len(good) < t:
            return UnrecoverableSecret(dealer, name, len(good), t)
        secret = reconstruct_secret({h: shares[h] for h in good[:t]}, t)
        if not 0 < secret or commit_polynomial([secret])[0] != points[0]:
            return DealerFault(dealer, name)
        return secret

    def finish(self) -> SumResult:
        """Reconstruct the secrets needed, remove all masks, and return the sum.

        Each revealed share is checked against its dealer's Feldman commitments of step 1: a
        holder whose share is off the committed polynomial is named in :attr:`SumResult.blamed`
        and its shares are ignored; the secret is rebuilt from ``t`` shares that pass. The result
        is exact as long as every secret keeps ``t`` such shares.

        Raises:
          UnrecoverableSecret: a secret has fewer than ``t`` shares that pass their commitments
            (a :class:`TooFewSurvivors` and a ``RoundFailed``; ``blamed``: the holders of wrong
            shares).
          DealerFault: ``t`` shares that pass the Feldman check rebuild a secret whose commitment
            is not ``C_0`` (impossible by the algebra; the round fails closed if it ever happens).

        A failed ``finish`` changes no state.
        """
        self._expect(ServerStage.UNMASK, "finish")
        p = self.params
        b_shares: dict[int, dict[int, int]] = {u: {} for u in self._u3}
        s_shares: dict[int, dict[int, int]] = {u: {} for u in self._u2 - set(self._u3)}
        answered = {h: r for h, r in self._responses.items() if h not in self.duplicated}
        # in U3 (its input is in the sum) but found sending twice after the masked inputs: its
        # answers are ignored and it is named
        wrong: dict[int, str] = {u: why for u, why in self.duplicated.items() if u in self._u3}
        for holder, resp in answered.items():
            for peer, kind, value in resp.shares:
                (b_shares if kind == SELF_MASK_SHARE else s_shares)[peer][holder] = value

        seeds = {u: self._rebuild(u, SELF_MASK_SHARE, shares, wrong) for u, shares in sorted(b_shares.items())}
        keys = {u: self._rebuild(u, MASK_KEY_SHARE, shares, wrong) for u, shares in sorted(s_shares.items())}
        failures = [v for v in (*seeds.values(), *keys.values()) if isinstance(v, Exception)]
        dealers = [e for e in failures if isinstance(e, DealerFault)]
        if dealers:
            raise dealers[0]
        if failures:  # fail closed, naming every holder found answering wrongly in this round
            first = failures[0]
            raise UnrecoverableSecret(first.client, first.kind, first.have, first.need, blamed=wrong)
        seeds = {u: v.to_bytes(32, "big") for u, v in seeds.items()}
        mask_keys = {u: MaskKey(v) for u, v in keys.items()}
        # unmask: acc = sum y_u - sum PRG(b_u) - sum_{dropped u} sum_{v in U3 cap N(u)} sign(v, u) PRG(s_uv)
        dtype = ring_dtype(p.mask_bits)
        acc = np.zeros(self.dim, dtype=dtype)
        for u in self._u3:
            np.add(acc, self._inputs[u].vector, out=acc)
        expander = MaskExpander(self.dim, p.mask_bits)
        q = p.field_modulus
        facc = [0] * p.field_dim
        for u in self._u3:
            keys = self_mask_keys(seeds[u], self.round_id, u)
            expander.add(acc, keys.ring, -1)
            if p.field_dim:
                facc = [(a + y - m) for a, y, m in zip(facc, self._inputs[u].field_vector, expand_field(keys.field, p.field_dim, q))]
        u3 = set(self._u3)
        for u, key in sorted(mask_keys.items()):
            for v in sorted(self._graph[u] & u3):
                keys = pairwise_mask_keys(key.agree(self._keys[v].s_pk), self.round_id, u, v)
                sign = pairwise_sign(v, u)
                expander.add(acc, keys.ring, -sign)
                if p.field_dim:
                    facc = [a - sign * m for a, m in zip(facc, expand_field(keys.field, p.field_dim, q))]
        reduce_ring(acc, p.mask_bits)
        for u in self._eligible - set(answered) - set(self.duplicated):
            self.late[u] = "unmask"
        self.stage = ServerStage.DONE
        self.blamed = dict(sorted(wrong.items()))
        return SumResult(acc, tuple(a % q for a in facc), self._u3, dict(self.dropped), dict(self.late), dict(self.blamed))
