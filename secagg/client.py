"""The client side of the protocol: an explicit state machine with one method per step.

The steps (``docs/secagg.md#protocol``) and the methods that play them::

    ADVERTISE     advertise_keys()                        -> AdvertiseKeys
    SHARE_KEYS    share_keys(KeysBroadcast)               -> ShareKeys
    MASKED_INPUT  receipt(SharesDelivery)                 -> SharesReceipt          (optional)
                  masked_input(MaskRequest, x, x_f)       -> MaskedInput
                  (or masked_input(SharesDelivery, x, x_f) without the receipt)
    CONSISTENCY   consistency_check(ConsistencyRequest)   -> ConsistencySignature   (active only)
    UNMASK        unmask(UnmaskRequest)                   -> UnmaskResponse
    DONE

Each method checks its input completely before it changes any state, so a rejected message
(any :class:`~secagg.errors.SecAggError`) leaves the client exactly where it was. A step can be
played once: calling it again, or out of order, raises :class:`~secagg.errors.OutOfOrder`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rangeproof.labels import SECAGG_SHARE_ENCRYPTION

from .errors import (
    AuthenticationFailed,
    DropoutBudgetExceeded,
    InconsistentView,
    MalformedMessage,
    OutOfOrder,
    ProtocolViolation,
    RefusedRequest,
    ReplayedMessage,
    TooFewSurvivors,
)
from .graph import graph_seed, keyed_neighbours, neighbours
from .keys import (
    AgreementKey,
    MaskKey,
    SigningKey,
    check_mask_public_key,
    check_public_key,
    decrypt_share,
    encrypt_share,
    hkdf,
    verify_signature,
)
from .masking import pairwise_mask_keys, pairwise_sign, self_mask_keys
from .messages import (
    MASK_KEY_SHARE,
    SELF_MASK_SHARE,
    SHARE_PLAINTEXT_BYTES,
    AdvertiseKeys,
    ConsistencyRequest,
    ConsistencySignature,
    DealerCommitments,
    KeysBroadcast,
    MaskedInput,
    MaskRequest,
    SharesDelivery,
    SharesReceipt,
    ShareKeys,
    UnmaskRequest,
    UnmaskResponse,
)
from .params import SecAggParams
from .steps import Step
from .prg import MaskExpander, expand_field, reduce_ring, ring_dtype
from .randomness import RandomSource, SystemRandom
from .shamir import SHARE_BYTES, SHARE_PRIME, deal, random_scalar
from .transcripts import advertise_transcript, commitments_transcript, consistency_transcript
from .vss import Commitments, commit_polynomial, invalid_shares

__all__ = ["ClientStage", "SecAggClient", "check_incoming"]


ClientStage = Step  # the shared step vocabulary (secagg.steps)


def check_incoming(msg, cls: type, round_id: bytes, party: int | None, party_field: str) -> None:
    """Common checks on a received message: its type, its round and its addressee/sender.

    Args:
      party: the id ``msg.<party_field>`` must hold, or ``None`` (any sender; the server's case).

    Raises:
      MalformedMessage: wrong type.
      ReplayedMessage: a message of another round.
      ProtocolViolation: addressed to (or sent by) another party.
    """
    if not isinstance(msg, cls):
        raise MalformedMessage(f"expected {cls.__name__}, got {type(msg).__name__}")
    if msg.round_id != round_id:
        raise ReplayedMessage(f"{cls.__name__} belongs to another round")
    if party is not None and getattr(msg, party_field) != party:
        raise ProtocolViolation(f"{cls.__name__} is for client {getattr(msg, party_field)}, not {party}")


class SecAggClient:
    """One client's side of one round.

    Args:
      params: the round's public parameters.
      client_id: this client's protocol id, ``1..n``.
      round_id: the 16-byte round id (fresh per round).
      signing_key: the client's Ed25519 identity (active variant only).
      verify_keys: ``{client id: Ed25519 public key}`` of all clients (active variant only).
      rng: source of secrets (default: the OS CSPRNG).

    In the active variant the client's neighbourhood is known only after step 0 (the graph
    derives from every advertised key, :func:`~secagg.graph.graph_seed`), and the client enforces
    the round's dropout budgets before it signs U3 or reveals any share.
    """

    def __init__(
        self,
        params: SecAggParams,
        client_id: int,
        round_id: bytes,
        *,
        signing_key: SigningKey | None = None,
        verify_keys: Mapping[int, bytes] | None = None,
        rng: RandomSource | None = None,
    ):
        if client_id not in params.client_ids:
            raise ValueError(f"client_id: expected 1..{params.num_clients}, got {client_id}")
        if len(round_id) != 16:
            raise ValueError("round_id: expected 16 bytes")
        if params.active and (signing_key is None or verify_keys is None):
            raise ValueError("the active variant needs signing_key and verify_keys")
        if params.active:
            vks = [verify_keys.get(u) for u in params.client_ids]
            if any(v is None or len(v) != 32 for v in vks) or len(set(vks)) != len(vks):
                raise ValueError("verify_keys: expected distinct 32-byte keys for every client 1..n")
        self.params = params
        self.id = client_id
        self.round_id = bytes(round_id)
        self._signing_key = signing_key
        self._verify_keys = dict(verify_keys or {})
        self._rng = rng or SystemRandom()
        self.stage = ClientStage.ADVERTISE
        # the active variant learns its holders in share_keys, from the graph seed
        self._holders = None if params.active else neighbours(params, self.round_id)[client_id] | {client_id}
        self._seed: bytes | None = None
        #: ``{dealer: reason}``: peers whose share bundle failed its checks in step 2 (this client
        #: holds no share of their secrets and leaves them out when it unmasks)
        self.disputed: dict[int, str] = {}
        #: dealers the server left out before masking (step 2b)
        self.excluded: frozenset[int] = frozenset()
        self._opened: tuple[dict, dict] | None = None  # step 2a's result: (shares, disputes)

    # -- helpers ---------------------------------------------------------------------------
    def _expect(self, stage: ClientStage) -> None:
        if self.stage is not stage:
            raise OutOfOrder(f"client {self.id}: {stage.value} called in stage {self.stage.value}")

    def _check(self, msg, cls: type) -> None:
        check_incoming(msg, cls, self.round_id, self.id, "receiver")

    def _check_round_budget(self, present: set[int] | frozenset[int]) -> None:
        """Refuse (:class:`DropoutBudgetExceeded`) when more clients than ``dropout_budget`` are
        missing from ``present`` (the whole round as this client sees it: the active variant's U1 or U3)."""
        missing = self.params.num_clients - len(set(present))
        if missing > self.params.dropout_budget:
            raise DropoutBudgetExceeded("round", missing, self.params.dropout_budget, f"client {self.id}")

    def _check_neighbour_budget(self, present: set[int] | frozenset[int]) -> None:
        """Refuse (:class:`DropoutBudgetExceeded`) when more of this client's holders than
        ``neighbour_dropout_budget`` are missing from ``present``."""
        missing = len(self._holders - set(present))
        if missing > self.params.neighbour_dropout_budget:
            raise DropoutBudgetExceeded("neighbourhood", missing, self.params.neighbour_dropout_budget, f"client {self.id}")

    # -- step 0 ----------------------------------------------------------------------------
    def advertise_keys(self) -> AdvertiseKeys:
        """Step 0: generate the round's key pairs ``(c, s)`` (X25519, P-256) and advertise the public halves."""
        self._expect(ClientStage.ADVERTISE)
        c_key = AgreementKey.generate(self._rng)
        s_key = MaskKey.generate(self._rng)
        sig = b""
        if self.params.active:
            sig = self._signing_key.sign(advertise_transcript(self.round_id, self.id, c_key.public_bytes, s_key.public_bytes))
        self._c_key, self._s_key = c_key, s_key
        self.stage = ClientStage.SHARE_KEYS
        return AdvertiseKeys(self.round_id, self.id, c_key.public_bytes, s_key.public_bytes, sig)

    # -- step 1 ----------------------------------------------------------------------------
    def share_keys(self, msg: KeysBroadcast) -> ShareKeys:
        """Step 1: check the keys, Shamir-share ``s_u`` and ``b_u`` among the holders with Feldman
        commitments to both polynomials, encrypt the shares.

        Semi-honest variant: the broadcast holds the keys of this client's holders in U1. Active
        variant: it holds every key of U1 (each signature is checked), from which the client
        computes the graph seed and its holders.

        Raises:
          TooFewSurvivors: fewer than ``t`` holders advertised keys.
          DropoutBudgetExceeded: more clients missing from U1 than the budgets allow.
          ProtocolViolation: own keys missing or altered, a non-neighbour (or unknown id) listed,
            repeated keys.
          UnusableKey: a peer's X25519 key is of small order, or its P-256 key is not a curve point
            (an honest server refuses it at advertise time; ``exc.client`` names the peer).
            Nothing is drawn or sent.
          NonCanonicalEncoding: a peer's key is not canonically encoded.
          AuthenticationFailed: (active) a signature on advertised keys does not verify.
        """
        self._expect(ClientStage.SHARE_KEYS)
        self._check(msg, KeysBroadcast)
        allp = {p.client: p for p in msg.peers}
        allowed = set(self.params.client_ids) if self.params.active else self._holders
        if not set(allp) <= allowed:
            raise ProtocolViolation(f"client {self.id}: keys of non-neighbours {sorted(set(allp) - allowed)}",
                                    reason="keys_of_non_neighbours")
        own = allp.get(self.id)
        if own is None or own.c_pk != self._c_key.public_bytes or own.s_pk != self._s_key.public_bytes:
            raise ProtocolViolation(f"client {self.id}: own keys missing or altered in the broadcast")
        if len(allp) < self.params.threshold:
            raise TooFewSurvivors("share_keys", len(allp), self.params.threshold, f"client {self.id}'s neighbourhood")
        for p in msg.peers:  # before anything else uses the keys: canonical, not of small order
            check_public_key(p.c_pk, p.client)
            check_mask_public_key(p.s_pk, p.client)
        all_keys = [p.c_pk for p in msg.peers] + [p.s_pk for p in msg.peers]
        if len(set(all_keys)) != len(all_keys):
            raise ProtocolViolation(f"client {self.id}: repeated public keys in the broadcast")
        holder_set, seed = self._holders, None
        if self.params.active:
            for p in msg.peers:
                verify_signature(
                    self._verify_keys[p.client], p.signature,
                    advertise_transcript(self.round_id, p.client, p.c_pk, p.s_pk), f"client {p.client}",
                    blamed=(p.client,),
                )
            seed = graph_seed(self.round_id, self.params.num_clients, {v: (p.c_pk, p.s_pk) for v, p in allp.items()})
            holder_set = keyed_neighbours(self.params, seed, self._verify_keys)[self.id] | {self.id}
        peers = {v: p for v, p in allp.items() if v in holder_set}
        if len(peers) < self.params.threshold:
            raise TooFewSurvivors("share_keys", len(peers), self.params.threshold, f"client {self.id}'s neighbourhood")
        if self.params.active and self.params.num_clients - len(allp) > self.params.dropout_budget:
            raise DropoutBudgetExceeded("round", self.params.num_clients - len(allp), self.params.dropout_budget, f"client {self.id}")
        missing_here = len(holder_set - set(peers))
        if missing_here > self.params.neighbour_dropout_budget:
            raise DropoutBudgetExceeded("neighbourhood", missing_here, self.params.neighbour_dropout_budget, f"client {self.id}")
        enc_keys = {
            v: hkdf(self._c_key.agree(p.c_pk), self.round_id, SECAGG_SHARE_ENCRYPTION, *sorted((self.id, v)))
            for v, p in peers.items() if v != self.id
        }
        # all checks passed: draw the self-mask seed b (uniform in [1, q)) and both polynomials
        b_secret = random_scalar(self._rng)
        holders = sorted(peers)
        t = self.params.threshold
        s_shares, s_poly = deal(self._s_key.private_scalar, holders, t, self._rng)
        b_shares, b_poly = deal(b_secret, holders, t, self._rng)
        commitments = Commitments.from_points(commit_polynomial(s_poly), commit_polynomial(b_poly))
        sig = b""
        if self.params.active:
            sig = self._signing_key.sign(commitments_transcript(self.round_id, self.id, commitments.encoded))
        cts = []
        for v in holders:
            if v == self.id:
                continue
            plaintext = (
                self.id.to_bytes(2, "big") + v.to_bytes(2, "big")
                + s_shares[v].to_bytes(SHARE_BYTES, "big") + b_shares[v].to_bytes(SHARE_BYTES, "big")
            )
            cts.append((v, encrypt_share(enc_keys[v], self.round_id, self.id, v, plaintext)))
        self._holders, self._seed = holder_set, seed
        self._peers = peers
        self._enc_keys = enc_keys
        self._b_seed = b_secret.to_bytes(32, "big")
        self._shares = {self.id: (s_shares[self.id], b_shares[self.id])}
        self.stage = ClientStage.MASKED_INPUT
        return ShareKeys(self.round_id, self.id, commitments, tuple(cts), sig)

    # -- step 2 ----------------------------------------------------------------------------
    def _open_delivery(self, msg: SharesDelivery) -> tuple[dict[int, tuple[int, int]], dict[int, str]]:
        """Open every share bundle of ``msg``: ``(shares by dealer, disputes by dealer)``; no state changes.

        Each share is checked against its dealer's Feldman commitments (all dealers' checks in one
        batched multi-scalar multiplication, :func:`secagg.vss.invalid_shares`), after the
        commitments themselves: ``t`` points each, the mask-key constant term equal to the
        dealer's advertised ``s^PK``, and (active) the dealer's signature over them.

        Raises:
          ProtocolViolation: shares from a client that is not a neighbour in U1, or a delivery
            whose commitments do not go with its ciphertexts one to one.
        """
        self._check(msg, SharesDelivery)
        for sender, _ in msg.ciphertexts:
            if sender == self.id or sender not in self._peers:
                raise ProtocolViolation(f"client {self.id}: shares from client {sender}, which is not a neighbour in U1",
                                        blamed=(sender,))
        if tuple(d.dealer for d in msg.dealers) != tuple(v for v, _ in msg.ciphertexts):
            raise ProtocolViolation(f"client {self.id}: the delivery's commitments do not match its ciphertexts")
        received, disputed, opened = {}, {}, []
        for (sender, ct), dealer in zip(msg.ciphertexts, msg.dealers):
            try:
                self._check_commitments(dealer)
                s_share, b_share = self._open_bundle(sender, ct)
            except (AuthenticationFailed, MalformedMessage, ProtocolViolation) as exc:
                # a dealer fault (or tampering on the way): this client holds no share of the
                # sender's secrets and says so by leaving them out when it unmasks; the pairwise
                # mask with the sender needs only its public key, so masking goes on as usual
                disputed[sender] = exc.reason
                continue
            opened.append((sender, dealer.commitments, s_share, b_share))
        items = []
        for _, c, s_share, b_share in opened:
            items += [(c.mask_key, self.id, s_share), (c.self_mask, self.id, b_share)]
        # the weights only decide how fast a bad share is found, never whether: fresh OS randomness
        off = {opened[k // 2][0] for k in invalid_shares(items, SystemRandom())}
        for sender, _, s_share, b_share in opened:
            if sender in off:
                disputed[sender] = "share_not_on_committed_polynomial"
            else:
                received[sender] = (s_share, b_share)
        return received, disputed

    def _check_commitments(self, dealer: DealerCommitments) -> None:
        """A dealer's commitments as forwarded: ``t`` points per polynomial, ``C_0`` of the mask
        key equal to its advertised key, and (active) its signature.

        Raises:
          ProtocolViolation: wrong number of points, or ``C_0`` differs from ``s^PK``.
          MalformedMessage: not a :class:`~secagg.vss.Commitments` (a caller's hand-made message).
          AuthenticationFailed: (active) the signature does not verify.
        """
        c, u = dealer.commitments, dealer.dealer
        if not isinstance(c, Commitments):
            raise MalformedMessage(f"client {self.id}: client {u}'s commitments are not a Commitments vector", blamed=(u,))
        if c.threshold != self.params.threshold:
            raise ProtocolViolation(f"client {self.id}: client {u} committed to {c.threshold} coefficients, not t",
                                    blamed=(u,), reason="commitments_wrong_threshold")
        if c.mask_key_constant != self._peers[u].s_pk:
            raise ProtocolViolation(f"client {self.id}: client {u}'s commitments do not open to its advertised key",
                                    blamed=(u,), reason="commitment_key_mismatch")
        if self.params.active:
            verify_signature(self._verify_keys[u], dealer.signature, commitments_transcript(self.round_id, u, c.encoded),
                             f"client {u}", blamed=(u,))

    def receipt(self, msg: SharesDelivery) -> SharesReceipt:
        """Step 2a: open the shares received and report the dealers whose bundles fail their checks.

        The server answers with a :class:`~secagg.messages.MaskRequest` naming the dealers left
        out before masking (those with fewer than t undisputed holders); :meth:`masked_input`
        then takes that request. Without this step (``masked_input(SharesDelivery, ...)``) the
        client masks with every sender.

        Raises:
          ProtocolViolation: shares from a client that is not a neighbour in U1.
          OutOfOrder: a second receipt, or after masking.
        """
        self._expect(ClientStage.MASKED_INPUT)
        if self._opened is not None:
            raise OutOfOrder(f"client {self.id}: shares already opened")
        received, disputed = self._open_delivery(msg)
        self._opened = (received, disputed)
        return SharesReceipt(self.round_id, self.id, tuple(sorted(disputed)))

    def masked_input(self, msg: SharesDelivery | MaskRequest, vector: np.ndarray,
                     field_vector: Sequence[int] = ()) -> MaskedInput:
        """Step 2: mask ``vector`` (and ``field_vector``) and upload.

        Args:
          msg: the server's :class:`~secagg.messages.MaskRequest` after :meth:`receipt` (the
            dealers it names are left out: nobody masks with them), or directly the shares
            addressed to this client (their senders form U2).
          vector: integers in ``[0, 2^k)``, 1-D.
          field_vector: ``params.field_dim`` integers in ``[0, q)``.

        Raises:
          TooFewSurvivors: fewer than ``t`` holders shared keys.
          DropoutBudgetExceeded: more holders missing than ``neighbour_dropout_budget``.
          ProtocolViolation: shares from a client that did not advertise keys; a mask request
            excluding a client that did not share keys with this one.
          OutOfOrder: a mask request before the receipt, or shares after it.
          ValueError: ``vector`` or ``field_vector`` out of range (a caller error).

        A share bundle that does not decrypt, names the wrong parties, or holds a share off the
        dealer's committed polynomial is not an error: the dealer is recorded in
        :attr:`disputed` (with the reason), this client masks with it unless the server
        excludes it, and reveals no share of it later (it holds none). So a dealer fault costs
        the dealer shares, never the holder its place in the round.
        """
        self._expect(ClientStage.MASKED_INPUT)
        if isinstance(msg, MaskRequest):
            self._check(msg, MaskRequest)
            if self._opened is None:
                raise OutOfOrder(f"client {self.id}: a mask request before its receipt")
        else:
            self._check(msg, SharesDelivery)
            if self._opened is not None:
                raise OutOfOrder(f"client {self.id}: shares already opened, expected a mask request")
        p = self.params
        x = np.asarray(vector)
        if x.ndim != 1 or not np.issubdtype(x.dtype, np.integer):
            raise ValueError("vector: expected a 1-D integer array")
        if x.size and (int(x.min()) < 0 or int(x.max()) >> p.mask_bits):
            raise ValueError(f"vector: entries must lie in [0, 2^{p.mask_bits})")
        xf = [int(e) for e in field_vector]
        if len(xf) != p.field_dim or any(not 0 <= e < p.field_modulus for e in xf):
            raise ValueError(f"field_vector: expected {p.field_dim} integers in [0, q)")
        excluded: set[int] = set()
        if isinstance(msg, MaskRequest):
            received, disputed = self._opened
            excluded = set(msg.excluded)
            if not excluded <= set(received) | set(disputed):
                raise ProtocolViolation(f"client {self.id}: the mask request excludes clients that did not share keys with it")
            received = {v: s for v, s in received.items() if v not in excluded}
            disputed = {v: r for v, r in disputed.items() if v not in excluded}
        else:
            received, disputed = self._open_delivery(msg)
        u2 = set(received) | set(disputed) | {self.id}
        if len(u2) < p.threshold:
            raise TooFewSurvivors("masked_input", len(u2), p.threshold, f"client {self.id}'s neighbourhood")
        self._check_neighbour_budget(u2)
        pair_keys = {v: pairwise_mask_keys(self._s_key.agree(self._peers[v].s_pk), self.round_id, self.id, v) for v in sorted(u2 - {self.id})}
        # mask
        y = x.astype(ring_dtype(p.mask_bits), copy=True)
        expander = MaskExpander(y.size, p.mask_bits)
        own = self_mask_keys(self._b_seed, self.round_id, self.id)
        expander.add(y, own.ring, 1)
        for v, keys in pair_keys.items():
            expander.add(y, keys.ring, pairwise_sign(self.id, v))
        reduce_ring(y, p.mask_bits)
        yf: tuple[int, ...] = ()
        if p.field_dim:
            q = p.field_modulus
            acc = [(a + m) % q for a, m in zip(xf, expand_field(own.field, p.field_dim, q))]
            for v, keys in pair_keys.items():
                sign = pairwise_sign(self.id, v)
                acc = [(a + sign * m) % q for a, m in zip(acc, expand_field(keys.field, p.field_dim, q))]
            yf = tuple(acc)
        self._shares.update(received)
        self.disputed = dict(disputed)
        self.excluded = frozenset(excluded)
        self._u2 = frozenset(u2)
        self.stage = ClientStage.CONSISTENCY if p.active else ClientStage.UNMASK
        return MaskedInput(self.round_id, self.id, p.mask_bits, y, yf)

    def _open_bundle(self, sender: int, ct: bytes) -> tuple[int, int]:
        """Decrypt ``sender``'s share bundle (the Feldman check is :meth:`_open_delivery`'s).

        Raises:
          AuthenticationFailed: the ciphertext does not verify or names the wrong parties
            (``blamed`` names the sender).
          MalformedMessage: a share out of range.
        """
        pt = decrypt_share(self._enc_keys[sender], self.round_id, sender, self.id, ct)
        if len(pt) != SHARE_PLAINTEXT_BYTES or int.from_bytes(pt[:2], "big") != sender or int.from_bytes(pt[2:4], "big") != self.id:
            raise AuthenticationFailed(f"client {self.id}: share bundle from {sender} names the wrong parties",
                                       blamed=(sender,), reason="share_bundle_misaddressed")
        s_share = int.from_bytes(pt[4 : 4 + SHARE_BYTES], "big")
        b_share = int.from_bytes(pt[4 + SHARE_BYTES :], "big")
        if s_share >= SHARE_PRIME or b_share >= SHARE_PRIME:
            raise MalformedMessage(f"client {self.id}: share from {sender} out of range", blamed=(sender,),
                                   reason="share_out_of_range")
        return s_share, b_share

    # -- step 3 (active) -------------------------------------------------------------------
    def consistency_check(self, msg: ConsistencyRequest) -> ConsistencySignature:
        """Step 3 (active variant): sign the set U3 the server announces, bound to the graph seed.

        Raises:
          TooFewSurvivors: fewer than ``t`` holders in U3.
          DropoutBudgetExceeded: more clients missing from U3 than the round's or the
            neighbourhood's budget allows (nothing is signed).
          ProtocolViolation: U3 lists unknown ids or holders that never shared keys, or omits
            this client.
        """
        self._expect(ClientStage.CONSISTENCY)
        self._check(msg, ConsistencyRequest)
        u3 = tuple(msg.survivors)
        if not set(u3) <= set(self.params.client_ids):
            raise ProtocolViolation(f"client {self.id}: U3 lists unknown client ids")
        mine = set(u3) & self._holders
        if self.id not in mine or not mine <= self._u2:
            raise ProtocolViolation(f"client {self.id}: U3 is not a subset of U2 containing this client")
        self._check_round_budget(set(u3))
        if len(mine) < self.params.threshold:
            raise TooFewSurvivors("consistency_check", len(mine), self.params.threshold, f"client {self.id}'s neighbourhood")
        self._check_neighbour_budget(mine)
        sig = self._signing_key.sign(consistency_transcript(self.round_id, self._seed, u3))
        self._u3 = u3
        self.stage = ClientStage.UNMASK
        return ConsistencySignature(self.round_id, self.id, sig)

    # -- step 4 ----------------------------------------------------------------------------
    def unmask(self, msg: UnmaskRequest) -> UnmaskResponse:
        """Step 4: reveal self-mask shares of survivors and mask-key shares of dropped clients.

        An honest client answers at most one request, never reveals both shares of one peer,
        never reveals its own mask-key share, refuses when more clients are missing than the
        dropout budgets allow, and (active) requires the same U3 it signed plus valid consistency
        signatures (over the round, the graph seed and U3) from ``t`` of its own holders.

        Raises:
          RefusedRequest: a peer in both lists, or this client listed as dropped.
          DropoutBudgetExceeded: too many clients missing (a :class:`RefusedRequest`).
          InconsistentView: (active) the survivors differ from the signed U3.
          AuthenticationFailed: (active) a consistency signature does not verify.
          TooFewSurvivors: fewer than ``t`` survivors (or signatures).
          ProtocolViolation: peers that never shared keys with this client.
        """
        self._expect(ClientStage.UNMASK)
        self._check(msg, UnmaskRequest)
        p = self.params
        survivors, dropped = set(msg.survivors), set(msg.dropped)
        if survivors & dropped:
            raise RefusedRequest(f"client {self.id}: asked for both shares of {sorted(survivors & dropped)}")
        if self.id in dropped or self.id not in survivors:
            raise RefusedRequest(f"client {self.id}: listed as dropped although it is alive")
        if p.active:
            if tuple(msg.survivors) != self._u3:
                raise InconsistentView(f"client {self.id}: survivors differ from the U3 it signed")
            signers = [i for i, _ in msg.signatures]
            if not set(signers) <= set(self._u3):
                raise ProtocolViolation(f"client {self.id}: signatures from clients outside U3")
            mine_signed = set(signers) & self._holders
            if len(mine_signed) < p.threshold:
                raise TooFewSurvivors("unmask", len(mine_signed), p.threshold, f"consistency signatures of client {self.id}'s holders")
            transcript = consistency_transcript(self.round_id, self._seed, self._u3)
            for i, sig in msg.signatures:
                if i not in self._verify_keys:
                    raise AuthenticationFailed(f"no verify key for client {i}", blamed=(i,))
                verify_signature(self._verify_keys[i], sig, transcript, f"client {i}", blamed=(i,))
        mine_s = survivors & self._holders
        mine_d = dropped & self._holders
        if not (mine_s | mine_d) <= self._u2:
            raise ProtocolViolation(f"client {self.id}: asked about clients that did not share keys with it")
        if p.active:
            self._check_round_budget(survivors)
        if len(mine_s) < p.threshold:
            raise TooFewSurvivors("unmask", len(mine_s), p.threshold, f"client {self.id}'s neighbourhood")
        self._check_neighbour_budget(mine_s)
        out = []
        for peer in sorted(mine_s | mine_d):
            if peer in self.disputed:  # no valid share of this dealer's secrets was received
                continue
            s_share, b_share = self._shares[peer]
            out.append((peer, SELF_MASK_SHARE, b_share) if peer in mine_s else (peer, MASK_KEY_SHARE, s_share))
        self.stage = ClientStage.DONE
        return UnmaskResponse(self.round_id, self.id, tuple(out))
