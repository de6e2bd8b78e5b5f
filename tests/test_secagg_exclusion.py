"""Exclude, don't abort: faulty clients are named and left out, the round goes on, exactly,
while the protocol's guarantees allow it; past that it fails closed with a specific error.

Rounds at n = 30, t = 16 (the issue's setting) with cheaters built on the real client code
(``tests/secagg_cheaters.py``), combined with dropouts, in both variants. Each test also asserts
on what the server holds: never a share of both secrets of one client.
"""
from __future__ import annotations

import numpy as np
import pytest

from rangeproof.blame import RoundFailed, SabreError
from secagg.driver import DropoutPlan, run_round
from secagg.errors import TooFewSurvivors, UnrecoverableSecret
from secagg.messages import MASK_KEY_SHARE, SELF_MASK_SHARE
from secagg.params import SecAggParams

from secagg_cheaters import ForeignSecretDealer, LyingHolder, false_disputer, garbage_dealer, off_polynomial_dealer

N, T, DIM = 30, 16, 5


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return {u: rng.integers(0, 2**32, DIM, dtype=np.uint64).astype(np.uint32) for u in range(1, N + 1)}


def _sum(x, members):
    return (sum(x[u].astype(np.uint64) for u in members) % 2**32).astype(np.uint32)


def _never_both(report_or_server):
    """No peer's two kinds of shares were both revealed (asserted on the server's holdings)."""
    server = report_or_server
    kinds: dict[int, set[int]] = {}
    for resp in server._responses.values():
        for peer, kind, _ in resp.shares:
            kinds.setdefault(peer, set()).add(kind)
    assert all(len(k) == 1 for k in kinds.values()), kinds


class _Spy:
    """Captures the server object ``run_round`` builds (to assert on what it holds)."""

    def __init__(self, monkeypatch):
        import secagg.driver as driver

        self.server = None
        real = driver.SecAggServer
        spy = self

        class Server(real):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                spy.server = self

        monkeypatch.setattr(driver, "SecAggServer", Server)


# -- a holder returns wrong shares in unmasking --------------------------------------------------

@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
@pytest.mark.parametrize("dropped", [0, 2], ids=["no-dropout", "two-dropouts"])
@pytest.mark.parametrize("many", [False, True], ids=["one-liar", "most-liars"])
def test_wrong_shares_named_and_ignored_round_exact(monkeypatch, active, dropped, many):
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    x = _inputs(1)
    drop = {u: "masked_input" for u in range(N - dropped + 1, N + 1)}  # shared keys, then gone
    responders = N - dropped
    k = responders - T if many else 1  # the most liars with t honest answers left for every secret
    liars = set(range(3, 3 + 2 * k, 2))
    report = run_round(params, x, dropout=DropoutPlan(drop), client_types={u: LyingHolder for u in liars}, seed=5)
    res = report.result
    assert set(res.blamed) == liars and set(res.blamed.values()) == {"wrong_share"}
    survivors = [u for u in range(1, N + 1) if u not in drop]
    assert res.survivors == tuple(survivors)
    assert np.array_equal(res.vector, _sum(x, survivors))  # the liars' own inputs are in U3
    _never_both(spy.server)


@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
def test_one_liar_too_many_fails_closed_naming_the_liars(monkeypatch, active):
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    liars = set(range(2, 2 + N - T + 1))  # 15: a liar's secret keeps 30 - 15 = 15 < t honest shares
    with pytest.raises(UnrecoverableSecret) as info:
        run_round(params, _inputs(2), client_types={u: LyingHolder for u in liars}, seed=6)
    err = info.value
    assert isinstance(err, RoundFailed) and isinstance(err, TooFewSurvivors) and isinstance(err, SabreError)
    assert set(err.blamed) == liars and err.reason == "too_few_valid_shares"
    assert spy.server.stage.value == "unmask" and spy.server.blamed == {}  # finish changed nothing
    _never_both(spy.server)


# -- a dealer whose shares fail their checks -----------------------------------------------------

@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
def test_garbage_bundles_cost_the_dealer_shares_not_the_holders_their_place(monkeypatch, active):
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    x = _inputs(3)
    victims = set(range(2, 2 + N - 1 - T))  # 13: dealer 1 keeps 29 - 13 = 16 = t good holders (its own share never counts)
    report = run_round(params, x, client_types={1: garbage_dealer(victims)}, seed=7)
    res = report.result
    assert report.client_errors == {} and res.survivors == tuple(range(1, N + 1))
    assert np.array_equal(res.vector, _sum(x, range(1, N + 1)))
    assert res.blamed == {}  # a dispute: the server cannot tell the dealer's fault from a holder's
    _never_both(spy.server)
    # the disputing holders revealed nothing of client 1
    for v in victims:
        assert all(peer != 1 for peer, _, _ in spy.server._responses[v].shares)


def test_garbage_bundles_and_a_liar_together(monkeypatch):
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T)
    x = _inputs(4)
    victims = set(range(2, 2 + 10))  # client 1 keeps 29 - 10 - 2 liars - 1 silent = 16 good
    types = {1: garbage_dealer(victims), 20: LyingHolder, 21: LyingHolder}
    report = run_round(params, x, dropout=DropoutPlan({30: "unmask"}), client_types=types, seed=8)
    res = report.result
    assert set(res.blamed) == {20, 21}
    assert np.array_equal(res.vector, _sum(x, range(1, N + 1)))
    _never_both(spy.server)


@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
@pytest.mark.parametrize("kind", [SELF_MASK_SHARE, MASK_KEY_SHARE], ids=["self-mask", "mask-key"])
def test_dealer_off_its_polynomial_to_a_few_holders_round_exact(monkeypatch, active, kind):
    """Shares off the dealer's committed polynomial (a dealer fault that once made the round fail
    closed at unmasking, ``DealerFault``): the holders find them at receipt with the Feldman check
    and dispute them; the dealer keeps t undisputed holders, so it stays, and its secret is rebuilt
    from shares that lie on the committed polynomial. Exact, nobody blamed."""
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    x = _inputs(5)
    # the self-mask secret is needed while client 1 survives; the mask key once it has dropped
    drop = {} if kind == SELF_MASK_SHARE else {1: "masked_input"}
    report = run_round(params, x, dropout=DropoutPlan(drop), client_types={1: off_polynomial_dealer({2, 3}, kind)}, seed=9)
    res = report.result
    members = [u for u in range(1, N + 1) if u not in drop]
    assert report.client_errors == {} and res.blamed == {} and res.survivors == tuple(members)
    assert np.array_equal(res.vector, _sum(x, members))
    for v in (2, 3):  # the cheated holders disputed and revealed nothing of client 1
        assert all(peer != 1 for peer, _, _ in spy.server._responses[v].shares)
    _never_both(spy.server)


def _holds_no_two_secrets(server, dealers=()):
    """What the server holds: for no client shares of both kinds; for the given (excluded)
    dealers no share at all."""
    _never_both(server)
    assert all(peer not in set(dealers) for resp in server._responses.values() for peer, _, _ in resp.shares)


@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
@pytest.mark.parametrize("count", [1, N - T], ids=["one-dealer", "most-dealers"])
def test_off_polynomial_dealers_excluded_before_masking(monkeypatch, active, count):
    """Dealers whose shares are off their committed polynomials for every holder, at n = 30, t = 16:
    1, and the most the round tolerates (n - t = 14: 16 clients remain, t). Every honest holder
    disputes them at receipt, they are left out before anyone masks with them, and the round is
    exact over the honest clients; the server never receives a share of them."""
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    x = _inputs(15)
    dealers = set(range(2, 2 + 2 * count, 2)) if count <= N // 2 - 1 else set(range(1, 1 + count))
    types = {d: off_polynomial_dealer("all", SELF_MASK_SHARE if d % 4 else MASK_KEY_SHARE) for d in dealers}
    report = run_round(params, x, client_types=types, seed=16)
    res = report.result
    honest = [u for u in range(1, N + 1) if u not in dealers]
    assert res.dropped == {d: "excluded: disputed_shares" for d in dealers} and res.blamed == {}
    assert res.survivors == tuple(honest) and np.array_equal(res.vector, _sum(x, honest))
    assert report.client_errors == {} and report.server_refusals == {}
    assert spy.server._u2 == frozenset(honest)  # excluded before masking: nobody masked with them
    _holds_no_two_secrets(spy.server, dealers)


@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
def test_one_off_polynomial_dealer_too_many_fails_closed_before_masking(monkeypatch, active):
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    dealers = set(range(1, N - T + 2))  # 15: 15 clients would remain, fewer than t
    with pytest.raises(TooFewSurvivors) as info:
        run_round(params, _inputs(16), client_types={d: off_polynomial_dealer("all") for d in dealers}, seed=17)
    assert info.value.step == "masked_input"
    server = spy.server
    assert server._inputs == {} and server._responses == {} and not server._receipts_closed  # nothing changed


def test_off_polynomial_dealers_on_a_sparse_graph(monkeypatch):
    """SecAgg+ (Harary graph, degree 20, t = 16): a dealer cheating all its 20 neighbours is left
    out before masking; one cheating 3 of them stays, and the round is exact either way."""
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, degree=20)
    x = _inputs(17)
    types = {5: off_polynomial_dealer("all"), 9: off_polynomial_dealer(set(range(1, N + 1)) - {9}, MASK_KEY_SHARE)}
    from secagg.graph import neighbours

    graph = neighbours(params, spy_round_id := bytes(range(16)))
    three = set(sorted(graph[9])[:3])
    types[9] = off_polynomial_dealer(three, MASK_KEY_SHARE)
    report = run_round(params, x, client_types=types, round_id=spy_round_id, seed=18,
                       dropout=DropoutPlan({9: "masked_input"}))
    res = report.result
    members = [u for u in range(1, N + 1) if u not in (5, 9)]
    assert res.dropped == {5: "excluded: disputed_shares", 9: "masked_input"} and res.blamed == {}
    assert np.array_equal(res.vector, _sum(x, members))
    for v in three:  # 9 dropped: its mask key was rebuilt without the cheated holders' shares
        assert all(peer != 9 for peer, _, _ in spy.server._responses[v].shares)
    _holds_no_two_secrets(spy.server, {5})


@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
@pytest.mark.parametrize("liars", [N - 1 - T, N - T], ids=["n-1-t-liars", "n-t-liars"])
def test_false_disputes_exclude_an_honest_dealer_only_past_n_minus_1_minus_t(monkeypatch, active, liars):
    """Holders that dispute an honest dealer's good bundles: the dealer keeps its place while at
    most n - 1 - t = 13 of its 29 holders lie (29 - 13 = 16 = t undisputed; its own share never
    counts), and is left out, unblamed, from 14 on (which is what withholding its ciphertexts
    would do)."""
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    x = _inputs(19)
    report = run_round(params, x, client_types={v: false_disputer({1}) for v in range(2, 2 + liars)}, seed=20)
    res = report.result
    assert res.blamed == {}
    members = list(range(1, N + 1)) if liars <= N - 1 - T else list(range(2, N + 1))
    if liars > N - 1 - T:
        assert res.dropped == {1: "excluded: disputed_shares"}
    assert res.survivors == tuple(members) and np.array_equal(res.vector, _sum(x, members))
    _holds_no_two_secrets(spy.server)


@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
def test_commitments_not_opening_to_the_advertised_key_refused_at_share_keys(monkeypatch, active):
    """A dealer whose mask-key commitment C_0 is not the key it advertised (it shares another
    secret, consistently) is refused by the server at share-keys time, named; the round is exact
    without it."""
    from secagg.errors import ProtocolViolation

    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    x = _inputs(21)
    report = run_round(params, x, client_types={7: ForeignSecretDealer}, seed=22)
    err = report.server_refusals[7]
    assert isinstance(err, ProtocolViolation) and err.blamed == (7,) and err.reason == "commitment_key_mismatch"
    res = report.result
    members = [u for u in range(1, N + 1) if u != 7]
    assert res.dropped == {7: "share_keys"}
    assert res.survivors == tuple(members) and np.array_equal(res.vector, _sum(x, members))
    _holds_no_two_secrets(spy.server, {7})


@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
@pytest.mark.parametrize("step", ["advertise_keys", "share_keys", "masked_input", "consistency_check", "unmask"])
def test_liars_with_dropouts_at_each_step(monkeypatch, active, step):
    if step == "consistency_check" and not active:
        pytest.skip("the semi-honest variant has no consistency step")
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    x = _inputs(6)
    drop = {u: step for u in (27, 28, 29, 30)}
    liars = {2, 9, 14}
    report = run_round(params, x, dropout=DropoutPlan(drop), client_types={u: LyingHolder for u in liars}, seed=11)
    res = report.result
    assert set(res.blamed) == liars
    in_sum = [u for u in range(1, N + 1) if u not in drop or step in ("consistency_check", "unmask")]
    assert res.survivors == tuple(in_sum) and np.array_equal(res.vector, _sum(x, in_sum))
    _never_both(spy.server)


def test_a_server_that_fails_finish_cannot_ask_again():
    """After a failed unmasking the honest clients have answered once: a second request (for the
    other secrets) is refused, so failing a round never buys the server a second look."""
    from secagg.client import SecAggClient
    from secagg.errors import OutOfOrder
    from secagg.messages import UnmaskRequest

    params = SecAggParams(num_clients=N, threshold=T)
    liars = set(range(2, 2 + N - T + 1))
    made = {}

    class Keep(SecAggClient):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made[self.id] = self

    class KeepLiar(LyingHolder):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made[self.id] = self

    with pytest.raises(UnrecoverableSecret):
        run_round(params, _inputs(7), seed=12,
                  client_types={u: (KeepLiar if u in liars else Keep) for u in range(1, N + 1)})
    honest = made[1]
    with pytest.raises(OutOfOrder):
        honest.unmask(UnmaskRequest(honest.round_id, 1, tuple(range(1, N)), (N,), ()))


# -- share receipts: a dealer with too few undisputed holders is left out before masking --------

@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
@pytest.mark.parametrize("victims", [15, 29], ids=["one-too-many", "everyone"])
def test_dealer_with_too_few_good_bundles_left_out_before_masking(monkeypatch, active, victims):
    """Bad bundles to more than |H| - t holders: the dealer is left out before anyone masks with
    it (as if its ciphertexts had never been delivered); the round is exact over the others and
    the server never asks for, nor receives, any share of it."""
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    x = _inputs(8)
    report = run_round(params, x, client_types={1: garbage_dealer(set(range(2, 2 + victims)))}, seed=13)
    res = report.result
    assert res.dropped == {1: "excluded: disputed_shares"} and res.blamed == {}
    assert res.survivors == tuple(range(2, N + 1)) and np.array_equal(res.vector, _sum(x, range(2, N + 1)))
    assert all(peer != 1 for resp in spy.server._responses.values() for peer, _, _ in resp.shares)
    _never_both(spy.server)


def test_exclusions_before_masking_cascade_and_combine_with_liars(monkeypatch):
    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T)
    x = _inputs(9)
    types = {1: garbage_dealer(set(range(2, 17))), 2: garbage_dealer(set(range(3, 18))), 20: LyingHolder}
    report = run_round(params, x, dropout=DropoutPlan({30: "masked_input"}), client_types=types, seed=14)
    res = report.result
    assert res.dropped == {1: "excluded: disputed_shares", 2: "excluded: disputed_shares", 30: "masked_input"}
    assert set(res.blamed) == {20}
    members = range(3, 30)
    assert res.survivors == tuple(members) and np.array_equal(res.vector, _sum(x, members))
    _never_both(spy.server)


def test_receipt_step_is_checked():
    from secagg.client import SecAggClient
    from secagg.errors import OutOfOrder, ProtocolViolation
    from secagg.messages import MaskRequest, SharesReceipt, decode_message
    from secagg.randomness import SeededRandom
    from secagg.server import SecAggServer

    def wire(m):
        return decode_message(m.encode())

    params = SecAggParams(num_clients=5, threshold=3)
    rid = bytes(range(16))
    clients = {u: SecAggClient(params, u, rid, rng=SeededRandom(u)) for u in params.client_ids}
    server = SecAggServer(params, rid, 4)
    for c in clients.values():
        server.receive_advertise(wire(c.advertise_keys()))
    for u, m in server.close_advertise().items():
        server.receive_share_keys(wire(clients[u].share_keys(wire(m))))
    deliveries = {u: wire(m) for u, m in server.close_share_keys().items()}
    x = np.arange(4, dtype=np.uint32)
    with pytest.raises(OutOfOrder):  # a mask request before the receipt
        clients[1].masked_input(MaskRequest(rid, 1, ()), x)
    with pytest.raises(ProtocolViolation) as info:  # disputing a bundle it was never sent
        server.receive_receipt(SharesReceipt(rid, 2, (2,)))
    assert info.value.blamed == (2,)
    for u in (1, 2, 3, 4):
        server.receive_receipt(wire(clients[u].receipt(deliveries[u])))
    with pytest.raises(OutOfOrder):  # shares again after the receipt
        clients[1].masked_input(deliveries[1], x)
    with pytest.raises(OutOfOrder):  # masking before the server closed the receipts
        server.receive_masked_input(clients[1].masked_input(MaskRequest(rid, 1, ()), x))
    requests = server.close_receipts()
    assert sorted(requests) == [1, 2, 3, 4]  # client 5 sent no receipt: dropped at masked_input
    with pytest.raises(ProtocolViolation):  # excluding a client that never shared keys with it
        clients[2].masked_input(MaskRequest(rid, 2, (2,)), x)
    with pytest.raises(OutOfOrder):
        server.receive_receipt(SharesReceipt(rid, 5, ()))


# -- active variant: the commitments are signed ---------------------------------------------------

def test_active_commitments_signed_equivocation_caught_substitution_disputed():
    """The dealer signs its commitments: a second, validly signed ShareKeys over other commitments
    is an equivocation (the dealer is named and excluded before anything is delivered); a ShareKeys
    or a forwarded vector whose signature does not verify is refused (server) or disputed
    (holder), so a server cannot substitute commitments."""
    import dataclasses

    from secagg.client import SecAggClient
    from secagg.errors import AuthenticationFailed, Equivocation, ReplayedMessage
    from secagg.keys import SigningKey
    from secagg.messages import DealerCommitments, decode_message
    from secagg.randomness import SeededRandom
    from secagg.server import SecAggServer
    from secagg.transcripts import commitments_transcript
    from secagg.vss import Commitments, commit_polynomial

    def wire(m):
        return decode_message(m.encode())

    n, t = 6, 4
    params = SecAggParams(num_clients=n, threshold=t, active=True)
    rid = bytes(range(16))
    signing = {u: SigningKey.generate(SeededRandom(1000 + u)) for u in range(1, n + 1)}
    verify = {u: k.verify_key for u, k in signing.items()}
    clients = {u: SecAggClient(params, u, rid, signing_key=signing[u], verify_keys=verify, rng=SeededRandom(u))
               for u in range(1, n + 1)}
    server = SecAggServer(params, rid, 4, verify_keys=verify)
    for c in clients.values():
        server.receive_advertise(wire(c.advertise_keys()))
    msgs = {u: wire(clients[u].share_keys(wire(b))) for u, b in server.close_advertise().items()}
    first = msgs[1]
    other = Commitments.from_points(first.commitments.mask_key[:1] + commit_polynomial([7] * (t - 1)),
                                    first.commitments.self_mask)
    # a tampered vector under the dealer's real signature: refused, nothing stored
    with pytest.raises(AuthenticationFailed):
        server.receive_share_keys(dataclasses.replace(first, commitments=other))
    assert 1 not in server._share_msgs
    for u in range(1, n + 1):
        server.receive_share_keys(msgs[u])
    with pytest.raises(ReplayedMessage):  # the same message again
        server.receive_share_keys(msgs[5])
    with pytest.raises(ReplayedMessage):  # other commitments without the dealer's signature
        server.receive_share_keys(dataclasses.replace(msgs[5], commitments=other))
    # the first message stands until the close, which leaves its sender out (a duplicate)
    assert server._share_msgs[5] is msgs[5] and server.duplicated == {5: "duplicate_message"}
    equivocation = dataclasses.replace(first, commitments=other,
                                       signature=signing[1].sign(commitments_transcript(rid, 1, other.encoded)))
    with pytest.raises(Equivocation) as info:
        server.receive_share_keys(wire(equivocation))
    assert info.value.blamed == (1,) and info.value.reason == "equivocation"
    assert 1 not in server._share_msgs and server.dropped[1] == "excluded: equivocation"
    deliveries = {u: wire(m) for u, m in server.close_share_keys().items()}
    assert server.dropped[5] == "excluded: duplicate_message"
    for gone in (1, 5):
        assert gone not in deliveries and all(gone not in {s for s, _ in d.ciphertexts} for d in deliveries.values())
    # a server substituting a forwarded vector (keeping the signature): the holder disputes it
    d2 = deliveries[2]
    c3 = msgs[3].commitments
    other3 = Commitments.from_points(c3.mask_key[:1] + commit_polynomial([7] * (t - 1)), c3.self_mask)
    swapped = tuple(DealerCommitments(d.dealer, other3, d.signature) if d.dealer == 3 else d for d in d2.dealers)
    receipt = clients[2].receipt(dataclasses.replace(d2, dealers=swapped))
    assert receipt.disputed == (3,) and clients[2]._opened[1] == {3: "bad_signature"}


# -- a client that sends twice in a step, or a message of another round --------------------------

_BEFORE_UNMASKING = ["AdvertiseKeys", "ShareKeys", "SharesReceipt", "MaskedInput"]


@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
@pytest.mark.parametrize("kind", _BEFORE_UNMASKING + ["ConsistencySignature", "UnmaskResponse"])
@pytest.mark.parametrize("many", [False, True], ids=["one", "most"])
def test_a_client_sending_twice_is_excluded_and_named_round_exact(monkeypatch, active, kind, many):
    if kind == "ConsistencySignature" and not active:
        pytest.skip("the semi-honest variant has no consistency step")
    from secagg_cheaters import resender

    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    x = _inputs(11)
    k = N - T if many else 1  # 14: t clients are left, and every secret keeps t answers
    cheats = set(sorted(range(1, N + 1), key=lambda u: (u * 7) % N)[:k])
    report = run_round(params, x, client_types={u: resender(kind) for u in cheats}, seed=12)
    res = report.result
    if kind in _BEFORE_UNMASKING:  # left out before unmasking, as if it had stopped: not in the sum
        assert {u: res.dropped[u] for u in cheats} == {u: "excluded: duplicate_message" for u in cheats}
        survivors = sorted(set(range(1, N + 1)) - cheats)
        assert res.blamed == {}
    else:  # its input is in U3 already; its answers are ignored and it is named
        survivors = list(range(1, N + 1))
        assert res.blamed == {u: "duplicate_message" for u in sorted(cheats)}
    assert res.survivors == tuple(survivors)
    assert np.array_equal(res.vector, _sum(x, survivors))
    assert set(report.server_refusals) == cheats
    _never_both(spy.server)


@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
@pytest.mark.parametrize("kind", ["AdvertiseKeys", "MaskedInput", "UnmaskResponse"])
def test_one_client_sending_twice_too_many_fails_closed(monkeypatch, active, kind):
    from secagg_cheaters import resender

    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    cheats = set(range(1, N - T + 2))  # 15: fewer than t clients (or answers) are left
    from secagg.errors import DropoutBudgetExceeded

    # the stage turns either into a RoundFailed; the active variant's budget (14) binds first
    with pytest.raises((TooFewSurvivors, DropoutBudgetExceeded)) as info:
        run_round(params, _inputs(13), client_types={u: resender(kind) for u in cheats}, seed=14)
    assert set(info.value.blamed) == cheats
    if kind == "UnmaskResponse":  # finish failed: it changed nothing
        assert spy.server.stage.value == "unmask" and spy.server.blamed == {}
    _never_both(spy.server)


@pytest.mark.parametrize("how, reason", [("other", "equivocation"), ("stale", "replayed_message")])
@pytest.mark.parametrize("kind", ["ShareKeys", "MaskedInput", "UnmaskResponse"])
def test_equivocating_and_replaying_clients_are_named_with_their_reason(monkeypatch, how, reason, kind):
    from secagg_cheaters import resender

    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=True)
    x = _inputs(15)
    cheats = {4, 9}
    report = run_round(params, x, client_types={u: resender(kind, how) for u in cheats}, seed=16)
    res = report.result
    if kind == "UnmaskResponse":
        assert res.blamed == {4: reason, 9: reason} and res.survivors == tuple(range(1, N + 1))
    else:
        assert {res.dropped[4], res.dropped[9]} == {f"excluded: {reason}"}
        assert set(res.survivors) == set(range(1, N + 1)) - cheats
    assert np.array_equal(res.vector, _sum(x, res.survivors))
    _never_both(spy.server)


@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
def test_a_dealer_cannot_count_its_own_share_and_then_drop(monkeypatch, active):
    """The attack review's F1: a dealer that gives bad bundles to 14 holders kept 15 + itself =
    t and stayed; then it dropped, its mask key had 15 < t shares, and the round failed with nobody
    blamed. Its own share no longer counts: it is left out before masking and the round is exact."""
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    x = _inputs(23)
    victims = set(range(2, 2 + N - T))  # 14
    report = run_round(params, x, client_types={1: garbage_dealer(victims)},
                       dropout=DropoutPlan({1: "unmask"}), seed=24)
    res = report.result
    assert res.dropped == {1: "excluded: disputed_shares"}
    assert np.array_equal(res.vector, _sum(x, range(2, N + 1)))


@pytest.mark.parametrize("active", [False, True], ids=["semi-honest", "active"])
@pytest.mark.parametrize("kind", ["AdvertiseKeys", "MaskedInput", "UnmaskResponse"])
def test_a_message_in_another_clients_name_is_refused_and_only_its_sender_named(monkeypatch, active, kind):
    """The attack review's F2: the in-process driver passed a client's messages on without
    checking their sender, so one cheater could send stale messages in honest clients' names and
    get them excluded (or blamed). The transport now refuses such a message and names its sender."""
    import dataclasses

    from secagg.client import SecAggClient

    class Framer(SecAggClient):
        def extra_messages(self, step, msg):
            if type(msg).__name__ != kind:
                return ()
            return tuple(dataclasses.replace(msg, sender=v, round_id=bytes(len(msg.round_id))) for v in (7, 8))

    spy = _Spy(monkeypatch)
    params = SecAggParams(num_clients=N, threshold=T, active=active)
    x = _inputs(25)
    report = run_round(params, x, client_types={3: Framer}, seed=26)
    res = report.result
    assert spy.server.duplicated == {} and res.blamed == {} and res.dropped == {}
    assert set(report.server_refusals) == {3} and report.server_refusals[3].reason == "impersonation"
    assert report.server_refusals[3].blamed == (3,)
    assert np.array_equal(res.vector, _sum(x, range(1, N + 1)))
