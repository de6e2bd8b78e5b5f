"""Fail-closed behaviour: tampered, truncated, replayed, misrouted messages and wrong keys are
rejected with specific exceptions, and the rejecting party's state does not change."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from secagg.client import ClientStage, SecAggClient
from secagg.errors import (
    AuthenticationFailed,
    InconsistentView,
    MalformedMessage,
    OutOfOrder,
    ProtocolViolation,
    RefusedRequest,
    ReplayedMessage,
    TooFewSurvivors,
    UnrecoverableSecret,
)
from rangeproof.blame import RoundFailed
from secagg.keys import SigningKey
from secagg.messages import MASK_KEY_SHARE, SELF_MASK_SHARE, UnmaskRequest, decode_message
from secagg.params import SecAggParams
from secagg.randomness import SeededRandom
from secagg.server import SecAggServer

ROUND = bytes(range(16))
DIM = 12


def _snapshot(obj):
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(obj).items()}


def _same(obj, snap) -> bool:
    now = _snapshot(obj)
    return now.keys() == snap.keys() and all(now[k] is snap[k] or now[k] == snap[k] for k in now)


class Round:
    """Plays a round step by step so a test can tamper between steps (through the codec)."""

    def __init__(self, n=5, t=3, active=False, field_dim=0):
        self.params = SecAggParams(num_clients=n, threshold=t, active=active, field_dim=field_dim)
        rng = SeededRandom(99)
        self.signing = {u: SigningKey.generate(rng) for u in self.params.client_ids}
        verify = {u: k.verify_key for u, k in self.signing.items()} if active else None
        self.verify = verify
        self.clients = {
            u: SecAggClient(self.params, u, ROUND, signing_key=self.signing[u] if active else None,
                            verify_keys=verify, rng=SeededRandom(u))
            for u in self.params.client_ids
        }
        self.server = SecAggServer(self.params, ROUND, DIM, verify_keys=verify)
        rng = np.random.default_rng(0)
        self.x = {u: rng.integers(0, 2**32, DIM, dtype=np.uint64).astype(np.uint32) for u in self.params.client_ids}

    @staticmethod
    def wire(msg):
        return decode_message(msg.encode())

    def advertise(self, skip=()):
        for u, c in self.clients.items():
            if u not in skip:
                self.server.receive_advertise(self.wire(c.advertise_keys()))
        return {u: self.wire(m) for u, m in self.server.close_advertise().items()}

    def share(self, skip=()):
        for u, m in self.advertise().items():
            if u not in skip:
                self.server.receive_share_keys(self.wire(self.clients[u].share_keys(m)))
        return {u: self.wire(m) for u, m in self.server.close_share_keys().items()}

    def masked(self, skip=()):
        for u, m in self.share().items():
            if u not in skip:
                self.server.receive_masked_input(self.wire(self.clients[u].masked_input(m, self.x[u], [1] * self.params.field_dim)))
        return {u: self.wire(m) for u, m in self.server.close_masked_input().items()}

    def to_unmask(self, skip=()):
        reqs = self.masked(skip)
        if self.params.active:
            for u, m in reqs.items():
                self.server.receive_consistency(self.wire(self.clients[u].consistency_check(m)))
            reqs = {u: self.wire(m) for u, m in self.server.close_consistency().items()}
        return reqs


def _flip(data: bytes, pos: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 0x01
    return bytes(b)


# -- share ciphertexts -------------------------------------------------------------------------

def test_tampered_share_ciphertext_disputed_not_fatal():
    """A share bundle that does not verify costs its dealer that share, never the holder its
    place: the holder masks as usual, records the dispute and reveals nothing of that dealer."""
    r = Round()
    deliveries = r.share()
    m = deliveries[1]
    sender, ct = m.ciphertexts[0]
    bad = dataclasses.replace(m, ciphertexts=((sender, _flip(ct, 10)),) + m.ciphertexts[1:])
    masked = r.clients[1].masked_input(bad, r.x[1])
    assert r.clients[1].disputed == {sender: "share_ciphertext_invalid"}
    assert r.clients[1].stage is ClientStage.UNMASK
    r.server.receive_masked_input(r.wire(masked))
    for u in (2, 3, 4, 5):
        r.server.receive_masked_input(r.wire(r.clients[u].masked_input(deliveries[u], r.x[u])))
    reqs = {u: r.wire(q) for u, q in r.server.close_masked_input().items()}
    answer = r.clients[1].unmask(reqs[1])
    assert sender not in {peer for peer, _, _ in answer.shares} and len(answer.shares) == 4
    for u in (2, 3, 4, 5):
        r.server.receive_unmask(r.wire(r.clients[u].unmask(reqs[u])))
    r.server.receive_unmask(r.wire(answer))
    res = r.server.finish()
    assert res.blamed == {} and res.survivors == (1, 2, 3, 4, 5)
    assert np.array_equal(res.vector, sum(r.x[u].astype(np.uint64) for u in range(1, 6)).astype(np.uint32))


def _with_commitments(m, dealer, mask_key, self_mask):
    from secagg.messages import DealerCommitments
    from secagg.vss import Commitments

    new = DealerCommitments(dealer, Commitments.from_points(mask_key, self_mask))
    return dataclasses.replace(m, dealers=tuple(new if d.dealer == dealer else d for d in m.dealers))


def test_share_off_the_committed_polynomial_disputed():
    """A bundle that decrypts but whose share is not on the dealer's committed polynomial is a
    dispute too (here the commitments are altered on the way; a dealer off its own polynomial is
    in tests/test_secagg_exclusion.py)."""
    from secagg.vss import commit_polynomial

    r = Round()
    deliveries = r.share()
    m = deliveries[1]
    sender = m.dealers[0].dealer
    c = m.dealers[0].commitments
    other = commit_polynomial([12345] * c.threshold)
    bad = _with_commitments(m, sender, c.mask_key[:1] + other[1:], c.self_mask)
    r.clients[1].masked_input(bad, r.x[1])
    assert r.clients[1].disputed == {sender: "share_not_on_committed_polynomial"}
    # C_0 of the mask key other than the dealer's advertised key
    r = Round()
    deliveries = r.share()
    m = deliveries[1]
    c = m.dealers[0].commitments
    bad = _with_commitments(m, sender, other[:1] + c.mask_key[1:], c.self_mask)
    r.clients[1].masked_input(bad, r.x[1])
    assert r.clients[1].disputed == {sender: "commitment_key_mismatch"}


def test_misrouted_ciphertext_disputed():
    r = Round()
    deliveries = r.share()
    # client 3's ciphertext to client 2, relabelled as a ciphertext to client 1
    ct_3_to_2 = dict(deliveries[2].ciphertexts)[3]
    m = deliveries[1]
    bad = dataclasses.replace(m, ciphertexts=tuple((s, ct_3_to_2 if s == 3 else c) for s, c in m.ciphertexts))
    r.clients[1].masked_input(bad, r.x[1])
    assert r.clients[1].disputed == {3: "share_ciphertext_invalid"}


def test_wrong_peer_key_in_broadcast_rejected():
    r = Round()
    for c in r.clients.values():
        r.server.receive_advertise(r.wire(c.advertise_keys()))
    bcasts = r.server.close_advertise()
    # the server swaps client 2's encryption key in client 1's view
    evil = SecAggClient(r.params, 2, ROUND, rng=SeededRandom(1234)).advertise_keys()
    m = bcasts[1]
    bad = dataclasses.replace(m, peers=tuple(dataclasses.replace(p, c_pk=evil.c_pk) if p.client == 2 else p for p in m.peers))
    for u in r.params.client_ids:
        r.server.receive_share_keys(r.wire(r.clients[u].share_keys(bad if u == 1 else bcasts[u])))
    deliveries = r.server.close_share_keys()
    # client 2's shares were made with its real key: client 1 cannot open them, and disputes them
    r.clients[1].masked_input(deliveries[1], r.x[1])
    assert r.clients[1].disputed == {2: "share_ciphertext_invalid"}


def test_own_keys_altered_rejected():
    r = Round()
    for c in r.clients.values():
        r.server.receive_advertise(r.wire(c.advertise_keys()))
    m = r.server.close_advertise()[1]
    bad = dataclasses.replace(m, peers=tuple(dataclasses.replace(p, s_pk=bytes(32)) if p.client == 1 else p for p in m.peers))
    snap = _snapshot(r.clients[1])
    with pytest.raises(ProtocolViolation):
        r.clients[1].share_keys(bad)
    assert _same(r.clients[1], snap)


def test_repeated_keys_rejected_by_server_and_client():
    r = Round()
    first = r.clients[1].advertise_keys()
    r.server.receive_advertise(first)
    copycat = dataclasses.replace(r.clients[2].advertise_keys(), s_pk=first.s_pk)
    snap = _snapshot(r.server)
    with pytest.raises(ProtocolViolation):
        r.server.receive_advertise(copycat)
    assert _same(r.server, snap)


# -- replay, order, routing ---------------------------------------------------------------------

def test_replayed_and_stale_messages_rejected_and_their_senders_excluded():
    # the second message is refused and the first stands; the sender is excluded at the close
    # (issue 11: "a replayed or duplicated message: that client excluded before unmasking")
    r = Round()
    msg = r.clients[1].advertise_keys()
    r.server.receive_advertise(msg)
    snap = {k: v for k, v in _snapshot(r.server).items() if k != "duplicated"}
    with pytest.raises(ReplayedMessage) as info:
        r.server.receive_advertise(msg)
    assert info.value.blamed == (1,) and info.value.reason == "duplicate_message"
    fresh = r.clients[2].advertise_keys()
    stale = dataclasses.replace(fresh, round_id=bytes(16))
    with pytest.raises(ReplayedMessage) as info:
        r.server.receive_advertise(stale)
    assert info.value.blamed == (2,) and info.value.reason == "replayed_message"
    now = _snapshot(r.server)
    assert now.pop("duplicated") == {1: "duplicate_message", 2: "replayed_message"}
    assert now.keys() == snap.keys() and all(now[k] is snap[k] or now[k] == snap[k] for k in now)
    assert r.server._keys[1] is msg  # the first message stands
    with pytest.raises(ProtocolViolation, match="excluded"):  # nothing more is taken from 2
        r.server.receive_advertise(fresh)
    for u in (3, 4, 5):
        r.server.receive_advertise(r.clients[u].advertise_keys())
    out = r.server.close_advertise()
    assert sorted(out) == [3, 4, 5]
    assert r.server.dropped == {1: "excluded: duplicate_message", 2: "excluded: replayed_message"}


def test_steps_out_of_order_rejected():
    r = Round()
    r.clients[1].advertise_keys()
    with pytest.raises(OutOfOrder):
        r.clients[1].advertise_keys()
    with pytest.raises(OutOfOrder):
        r.clients[2].unmask(UnmaskRequest(ROUND, 2, (1, 2, 3), ()))
    with pytest.raises(OutOfOrder):
        r.server.close_share_keys()


def test_message_for_another_client_rejected():
    r = Round()
    bcasts = r.advertise()
    with pytest.raises(ProtocolViolation):
        r.clients[1].share_keys(bcasts[2])


def test_shares_not_addressed_to_neighbours_rejected_by_server():
    r = Round()
    bcasts = r.advertise()
    msg = r.clients[1].share_keys(bcasts[1])
    bad = dataclasses.replace(msg, ciphertexts=msg.ciphertexts[:-1])
    snap = _snapshot(r.server)
    with pytest.raises(ProtocolViolation):
        r.server.receive_share_keys(bad)
    assert _same(r.server, snap)


def test_masked_input_wrong_length_rejected():
    r = Round()
    deliveries = r.share()
    msg = r.clients[1].masked_input(deliveries[1], r.x[1])
    bad = dataclasses.replace(msg, vector=msg.vector[:-1])
    with pytest.raises(MalformedMessage):
        r.server.receive_masked_input(bad)


# -- unmasking requests --------------------------------------------------------------------------

def test_both_shares_of_one_peer_refused():
    r = Round(n=5, t=3)
    reqs = r.to_unmask(skip=(5,))
    req = reqs[1]
    assert req.dropped == (5,)
    greedy = dataclasses.replace(req, survivors=tuple(sorted(req.survivors + (5,))))
    snap = _snapshot(r.clients[1])
    with pytest.raises(RefusedRequest):
        r.clients[1].unmask(greedy)
    assert _same(r.clients[1], snap)
    # asking for the client's own mask key (calling it dropped) is refused too
    with pytest.raises(RefusedRequest):
        r.clients[1].unmask(dataclasses.replace(req, survivors=tuple(s for s in req.survivors if s != 1), dropped=(1, 5)))
    resp = r.clients[1].unmask(req)
    assert {p: k for p, k, _ in resp.shares} == {1: SELF_MASK_SHARE, 2: SELF_MASK_SHARE, 3: SELF_MASK_SHARE,
                                                 4: SELF_MASK_SHARE, 5: MASK_KEY_SHARE}
    # a second request (e.g. now calling 2 dropped) is refused: one answer per round
    with pytest.raises(OutOfOrder):
        r.clients[1].unmask(dataclasses.replace(req, survivors=(1, 3, 4), dropped=(2, 5)))


def test_below_threshold_request_refused():
    r = Round(n=5, t=3)
    req = r.to_unmask()[1]
    with pytest.raises(TooFewSurvivors):
        r.clients[1].unmask(dataclasses.replace(req, survivors=(1, 2), dropped=()))


def _lie(resp):
    return dataclasses.replace(resp, shares=tuple((p, k, (v + 1) % (1 << 256)) for p, k, v in resp.shares))


def test_wrong_share_from_a_client_detected():
    """A holder that returns wrong shares is named and its shares ignored; the round goes on and
    its sum is exact (client 5 dropped after sharing keys: its mask key is rebuilt too)."""
    r = Round(n=5, t=3)
    reqs = r.to_unmask(skip=(5,))
    for u, req in reqs.items():
        resp = r.clients[u].unmask(req)
        r.server.receive_unmask(r.wire(_lie(resp) if u == 1 else resp))  # client 1 lies about its shares
    res = r.server.finish()
    assert res.blamed == {1: "wrong_share"} and res.survivors == (1, 2, 3, 4)
    assert np.array_equal(res.vector, sum(r.x[u].astype(np.uint64) for u in (1, 2, 3, 4)).astype(np.uint32))


def test_wrong_shares_below_threshold_fail_closed_naming_the_liars():
    r = Round(n=5, t=3)
    reqs = r.to_unmask(skip=(5,))
    for u, req in reqs.items():
        resp = r.clients[u].unmask(req)
        r.server.receive_unmask(r.wire(_lie(resp) if u in (1, 2) else resp))
    snap = _snapshot(r.server)
    with pytest.raises(UnrecoverableSecret) as info:
        r.server.finish()
    assert isinstance(info.value, RoundFailed) and isinstance(info.value, TooFewSurvivors)
    assert info.value.blamed == (1, 2) and info.value.reason == "too_few_valid_shares"
    assert _same(r.server, snap)


def test_failed_finish_changes_no_server_state():
    r = Round(n=5, t=3)
    reqs = r.to_unmask(skip=(5,))
    for u, req in reqs.items():
        if u == 4:  # client 4 never answers: it would be recorded as late by a successful finish
            continue
        resp = r.clients[u].unmask(req)
        r.server.receive_unmask(_lie(resp) if u == 1 else resp)
    snap = _snapshot(r.server)
    with pytest.raises(UnrecoverableSecret):  # 2 honest answers of 3 needed
        r.server.finish()
    assert _same(r.server, snap) and r.server.late == {} and r.server.blamed == {}


@pytest.mark.parametrize("step", ["advertise", "share", "masked"])
def test_close_below_threshold_changes_no_server_state(step):
    r = Round(n=5, t=3)
    skip = (1, 2, 3)
    if step == "advertise":
        for u in (4, 5):
            r.server.receive_advertise(r.wire(r.clients[u].advertise_keys()))
        close = r.server.close_advertise
    elif step == "share":
        for u, m in r.advertise().items():
            if u not in skip:
                r.server.receive_share_keys(r.wire(r.clients[u].share_keys(m)))
        close = r.server.close_share_keys
    else:
        for u, m in r.share().items():
            if u not in skip:
                r.server.receive_masked_input(r.wire(r.clients[u].masked_input(m, r.x[u])))
        close = r.server.close_masked_input
    snap = _snapshot(r.server)
    with pytest.raises(TooFewSurvivors):
        close()
    assert _same(r.server, snap) and r.server.dropped == {}


def test_server_rejects_unrequested_shares():
    r = Round(n=5, t=3)
    reqs = r.to_unmask(skip=(5,))
    resp = r.clients[1].unmask(reqs[1])
    bad = dataclasses.replace(resp, shares=tuple((p, MASK_KEY_SHARE, v) for p, _, v in resp.shares))
    with pytest.raises(ProtocolViolation):
        r.server.receive_unmask(bad)


# -- the active variant --------------------------------------------------------------------------

def test_active_forged_advertise_signature_rejected():
    r = Round(n=5, t=3, active=True)
    msg = r.clients[1].advertise_keys()
    forged = dataclasses.replace(msg, signature=r.signing[2].sign(b"something else"))
    snap = _snapshot(r.server)
    with pytest.raises(AuthenticationFailed):
        r.server.receive_advertise(forged)
    assert _same(r.server, snap)
    # a server forwarding a forged key to a client is caught by the client
    r.server.receive_advertise(msg)
    for u in range(2, 6):
        r.server.receive_advertise(r.clients[u].advertise_keys())
    b = r.server.close_advertise()[2]
    bad = dataclasses.replace(b, peers=tuple(dataclasses.replace(p, c_pk=bytes([9]) * 32) if p.client == 1 else p for p in b.peers))
    with pytest.raises(AuthenticationFailed):
        r.clients[2].share_keys(bad)


def test_active_forged_consistency_signature_rejected():
    r = Round(n=5, t=3, active=True)
    reqs = r.masked()
    sig = r.clients[1].consistency_check(reqs[1])
    snap = _snapshot(r.server)
    with pytest.raises(AuthenticationFailed):
        r.server.receive_consistency(dataclasses.replace(sig, signature=r.signing[1].sign(b"other")))
    assert _same(r.server, snap)
    r.server.receive_consistency(sig)
    for u in range(2, 6):
        r.server.receive_consistency(r.clients[u].consistency_check(reqs[u]))
    unmask = r.server.close_consistency()
    # a forged signature inside the unmasking request
    req = unmask[2]
    forged = dataclasses.replace(req, signatures=tuple((i, r.signing[i].sign(b"x") if i == 4 else s) for i, s in req.signatures))
    with pytest.raises(AuthenticationFailed):
        r.clients[2].unmask(forged)


def test_active_inconsistent_survivor_set_rejected():
    r = Round(n=5, t=3, active=True)
    reqs = r.masked()
    sigs = {u: r.clients[u].consistency_check(reqs[u]) for u in reqs}
    for s in sigs.values():
        r.server.receive_consistency(s)
    req = r.server.close_consistency()[3]
    # the server now claims 5 dropped (a different U3 than the one signed)
    other = dataclasses.replace(req, survivors=(1, 2, 3, 4), dropped=(5,))
    snap = _snapshot(r.clients[3])
    with pytest.raises(InconsistentView):
        r.clients[3].unmask(other)
    assert _same(r.clients[3], snap)
    # too few consistency signatures
    with pytest.raises(TooFewSurvivors):
        r.clients[3].unmask(dataclasses.replace(req, signatures=req.signatures[:2]))
    r.clients[3].unmask(req)


def test_active_full_round_exact():
    r = Round(n=6, t=4, active=True)
    reqs = r.to_unmask(skip=(2,))
    for u, req in reqs.items():
        r.server.receive_unmask(r.wire(r.clients[u].unmask(req)))
    res = r.server.finish()
    expected = sum(r.x[u].astype(np.uint64) for u in res.survivors) % (1 << 32)
    assert res.survivors == (1, 3, 4, 5, 6)
    assert np.array_equal(res.vector, expected.astype(np.uint32))
