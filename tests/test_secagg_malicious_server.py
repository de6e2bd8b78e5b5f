"""A malicious server colluding with clients, against the real client code (``secagg_adversary``).

Each attack either fails at the honest clients (a typed refusal, and the refusing client reveals
no share) or leaves the server with fewer than t shares of ``b_u`` or of ``s_u^SK`` for every
honest client u; the tests assert on the shares the adversary holds. Regression tests run the
same attacks against the parameters the project chose before (thresholds from the semi-honest
rule, no dropout budget) and recover an input or a partial sum.

The active variant runs on the complete graph only: on a SecAgg+ graph the server cuts the ring by
uneven share delivery (section 6, the regression of that attack), so the sparse active sets are
built here only with the research opt-in ``unsafe_sparse_active=True``, to keep exercising that
code. Protocol runs stay at n <= 100; the parameter sets at n = 1,000 and 10,000 are checked by
counting (complete graph) and, for the research sets, on sampled placements (``test_large_n_*``).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from secagg_adversary import ROUND, MaliciousServer, components, ring_cut

from secagg.client import SecAggClient
from secagg.errors import AuthenticationFailed, ConfigError, DropoutBudgetExceeded, InconsistentView, TooFewSurvivors
from secagg.graph import graph_seed, keyed_neighbours, neighbours, ring_order, round_ring_order
from secagg.keys import SigningKey
from secagg.messages import KeysBroadcast, PeerKeys
from secagg.params import SecAggParams, complete_graph_active_threshold, secagg_plus_parameters
from secagg.randomness import SeededRandom
from fl.aggregation.secure_sum import SecureSum


def derived_active(n: int, rate: float) -> SecAggParams:
    """The active parameters ``secagg_plus_parameters(..., active=True)`` derives (the complete graph)."""
    g = secagg_plus_parameters(n, dropout_rate=rate, corruption_rate=rate, active=True)
    return SecAggParams(num_clients=n, threshold=g.threshold, degree=g.degree, active=True,
                        dropout_budget=g.dropout_budget, neighbour_dropout_budget=g.neighbour_dropout_budget)


def project_parameter_sets(n: int) -> list[tuple[str, SecAggParams, int]]:
    """Every active parameter set the project's constructors pick for n clients, with the
    number of colluders each is meant to withstand (worst case on the complete graph). The
    sparse constructors refuse the active variant (``test_sparse_active_refused_everywhere``)."""
    out = []
    classic = SecAggParams.classic(n, active=True)
    out.append(("classic", classic, classic.tolerated_corrupt_holders))
    for rate in (0.1, 0.05):
        out.append((f"derived-{rate}", derived_active(n, rate), math.floor(rate * n)))
    for rate in (0.1, 0.05):
        s = SecureSum(graph="complete", active=True, corruption_rate=rate)
        out.append((f"SecureSum-complete-{rate}", s.params_for(n), math.floor(s.corruption_rate * n)))
    return out


def _two_views(adv: MaliciousServer, target: int) -> None:
    """The two-views attack on ``target``: the honest clients split into a group told ``target``
    survived and a group told it dropped; each group gets its own signatures plus the colluders'
    (who sign both sets and hand over both shares of everyone).

    Complete graph: the target's honest holders split as evenly as possible, the target in the
    first group (it refuses a set without itself). SecAgg+: the ring splits into two arcs, the
    half circle ending at the target and the rest, so that each client's own holders are mostly in
    its own group (each needs t signatures from its own holders)."""
    adv.setup()
    everyone = tuple(sorted(adv.y))
    without = tuple(u for u in everyone if u != target)
    if adv.p.degree is None:
        others = [u for u in adv.honest if u != target]
        group_a = {target} | set(others[: len(others) // 2])  # sizes 1 + floor(m/2) and ceil(m/2)
    else:
        ring = adv.ring()
        n, tp = len(ring), ring.index(target)
        group_a = {u for i, u in enumerate(ring) if (i - tp) % n >= n - n // 2 or u == target}
    views = {u: (everyone if u in group_a else without) for u in adv.honest}
    adv.sign(views)
    requests = {}
    for u, u3 in views.items():
        gone = tuple(sorted(v for v in adv.masked_with.get(u, set()) if v not in u3))
        requests[u] = (u3, gone)
    adv.unmask(requests)


# -- 1. two views of the survivor set ----------------------------------------------------------

def test_two_views_old_complete_parameters_fall():
    """n = 30, t = 16 (the old complete-graph fallback at rates 0.1): two colluders suffice."""
    params = SecAggParams(num_clients=30, threshold=16, active=True)
    adv = MaliciousServer(params, corrupted={29, 30}, seed=1)
    _two_views(adv, target=5)
    assert adv.exposed() == [5]
    assert np.array_equal(adv.recover_input(5), adv.x[5])


@pytest.mark.slow  # a protocol run at n = 100
def test_two_views_old_secagg_plus_parameters_fall():
    """n = 100, K = 74, t = 38 (the old SecAgg+ choice at rates 0.1): one colluding neighbour."""
    old = secagg_plus_parameters(100, dropout_rate=0.1, corruption_rate=0.1)
    assert (old.degree, old.threshold) == (74, 38)
    params = SecAggParams(num_clients=100, threshold=38, degree=74, active=True, unsafe_sparse_active=True,
                          dropout_budget=100 - 38, neighbour_dropout_budget=75 - 38)
    adv = MaliciousServer(params, seed=2)
    adv.advertise()
    target = 7
    ring = adv.ring()
    colluder = ring[ring.index(target) - 1]  # one neighbour: the next client on the ring
    adv = MaliciousServer(params, corrupted={colluder}, seed=2)
    _two_views(adv, target)
    assert target in adv.exposed()
    assert np.array_equal(adv.recover_input(target), adv.x[target])


@pytest.mark.parametrize("n", [30, pytest.param(100, marks=pytest.mark.slow)])
def test_two_views_fail_for_every_project_parameter_set(n):
    seen = set()
    for name, params, c in project_parameter_sets(n):
        assert params.degree is None  # the active variant runs on the complete graph only
        if (params.threshold, c) in seen:
            continue
        seen.add((params.threshold, c))
        assert c <= params.tolerated_corrupt_holders, name
        if n == 100 and name != "derived-0.1":
            continue  # one protocol run at n = 100 (t = 56, 10 colluders); the rest is the same count
        adv = MaliciousServer(params, corrupted=set(range(n - c + 1, n + 1)), seed=3)
        _two_views(adv, target=1)
        assert adv.exposed() == [], name
        b, s = adv.holdings(1)
        assert min(b, s) < params.threshold, name
        # the group left short refused with a typed error, and revealed nothing
        assert adv.refused and all(isinstance(e, TooFewSurvivors) for e in adv.refused.values()), name
        assert not any(adv.revealed_any(u) for u in adv.refused), name


def test_two_views_fail_on_secagg_plus_when_colluders_within_tolerance():
    """An active SecAgg+ set with room for 2 corrupted holders: both colluders next to the target."""
    params = SecAggParams(num_clients=30, threshold=7, degree=10, active=True, unsafe_sparse_active=True)
    assert params.tolerated_corrupt_holders == 2 and params.neighbour_dropout_budget == 4
    probe = MaliciousServer(params, seed=4)
    probe.advertise()
    colluders = set(sorted(probe.graph[3])[:2])
    adv = MaliciousServer(params, corrupted=colluders, seed=4)
    _two_views(adv, target=3)
    assert adv.exposed() == []
    assert min(adv.holdings(3)) < params.threshold


def test_survivor_sets_differing_in_one_client():
    """A client that signed U3 is asked to unmask with U3 minus one client: InconsistentView."""
    params = derived_active(30, 0.1)
    adv = MaliciousServer(params, corrupted={30}, seed=5)
    adv.setup()
    u3 = tuple(sorted(adv.y))
    adv.sign({u: u3 for u in adv.honest})
    smaller = tuple(u for u in u3 if u != 4)
    # the colluder signs the smaller set too; the server forwards every signature it has
    adv.sign({30: smaller})
    sigs = dict(adv.signatures[u3])
    sigs.update(adv.signatures[smaller])
    adv.unmask({u: (smaller, (4,)) for u in adv.honest if u != 4}, signatures={u: tuple(sorted(sigs.items())) for u in adv.honest})
    assert all(isinstance(adv.refused[u], InconsistentView) for u in adv.honest if u != 4)
    assert not any(adv.revealed_any(u) for u in adv.honest)
    assert adv.holdings(4)[1] < params.threshold


# -- 2. chosen dropouts ------------------------------------------------------------------------

def _split_runs(adv: MaliciousServer, run: int, gap: int) -> tuple[list[int], list[int]]:
    """Two runs of ``run`` consecutive ring positions, ``gap`` positions apart: (removed, segment)."""
    ring = adv.ring() if adv.p.active else round_ring_order(adv.p, adv.rid)
    removed = ring[:run] + ring[run + gap: 2 * run + gap]
    return removed, ring[run: run + gap]


def _exclude_and_unmask(adv: MaliciousServer, removed) -> tuple[int, ...]:
    adv.setup()
    u3 = tuple(sorted(set(adv.y) - set(removed)))
    if adv.p.active:
        adv.sign({u: u3 for u in adv.honest if u in u3})
    adv.unmask({u: r for u, r in adv.honest_requests(u3).items() if u not in adv.corrupted})
    return u3


@pytest.mark.slow  # a protocol run at n = 100
@pytest.mark.parametrize("active", [True, False], ids=["active", "semi-honest"])
def test_chosen_dropouts_old_parameters_split_graph(active):
    """n = 100, K = 34, t = 18 (the old choice at rates 0.05), no budget beyond t: excluding two runs
    of K/2 = 17 clients splits the survivors; the server reads the 18-client segment's sum."""
    old = secagg_plus_parameters(100, dropout_rate=0.05, corruption_rate=0.05)
    assert (old.degree, old.threshold) == (34, 18)
    params = SecAggParams(num_clients=100, threshold=18, degree=34, active=active, unsafe_sparse_active=active,
                          dropout_budget=100 - 18, neighbour_dropout_budget=35 - 18)
    adv = MaliciousServer(params, seed=6)
    adv.advertise()
    removed, segment = _split_runs(adv, 17, 18)
    adv = MaliciousServer(params, seed=6)
    u3 = _exclude_and_unmask(adv, removed)
    assert not adv.refused  # every honest client saw at least t survivors and answered
    assert len(components(adv.graph, u3)) == 2
    assert np.array_equal(adv.segment_sum(segment, removed), adv.true_sum(segment))


@pytest.mark.slow  # a protocol run at n = 100
def test_chosen_dropouts_beyond_neighbourhood_budget_refused():
    """The same exclusion against the active default budget (K/2 - 1 = 16 per neighbourhood)."""
    params = SecAggParams(num_clients=100, threshold=18, degree=34, active=True, unsafe_sparse_active=True)
    assert params.neighbour_dropout_budget == 16
    adv = MaliciousServer(params, seed=6)
    adv.advertise()
    removed, segment = _split_runs(adv, 17, 18)
    adv = MaliciousServer(params, seed=6)
    u3 = _exclude_and_unmask(adv, removed)
    refusals = [e for e in adv.refused.values() if isinstance(e, DropoutBudgetExceeded)]
    assert refusals and all(e.scope == "neighbourhood" and e.missing > e.budget for e in refusals)
    assert not any(adv.revealed_any(u) for u in adv.refused)
    assert adv.exposed() == []
    # the segment's partial sum needs every member's self-mask seed: at least one is out of reach
    assert any(adv.holdings(u)[0] < params.threshold for u in segment)
    for comp in components(adv.graph, u3):
        assert any(adv.holdings(u)[0] < params.threshold for u in comp) or len(comp) == len(u3)


def test_chosen_dropouts_beyond_round_budget_refused():
    """More exclusions than the round's budget: every honest client refuses to sign U3."""
    params = SecAggParams(num_clients=30, threshold=7, degree=10, active=True, unsafe_sparse_active=True, dropout_budget=5)
    adv = MaliciousServer(params, corrupted={28, 29, 30}, seed=7)
    removed = [1, 6, 11, 16, 21, 26]  # one more than the budget
    _exclude_and_unmask(adv, removed)
    left = [u for u in adv.honest if u not in removed]
    assert left and all(isinstance(adv.refused[u], DropoutBudgetExceeded) and adv.refused[u].scope == "round" for u in left)
    assert not any(adv.revealed_any(u) for u in adv.honest)
    assert adv.exposed() == []


def test_complete_graph_round_budget_is_the_threshold():
    """On the complete graph the budget is n - t (it cannot split): one exclusion more is refused."""
    params = derived_active(30, 0.1)
    assert params.degree is None and params.dropout_budget == 30 - params.threshold
    adv = MaliciousServer(params, corrupted={28, 29, 30}, seed=7)
    removed = list(range(1, params.dropout_budget + 2))
    _exclude_and_unmask(adv, removed)
    left = [u for u in adv.honest if u not in removed]
    assert left and all(isinstance(adv.refused[u], DropoutBudgetExceeded) and adv.refused[u].scope == "round" for u in left)
    assert not any(adv.revealed_any(u) for u in adv.honest)


@pytest.mark.slow  # a protocol run at n = 100
def test_chosen_dropouts_within_budget_leave_graph_connected():
    """Two runs of K/2 - 1 = 16 excluded (within the budgets): accepted, and nothing splits."""
    params = SecAggParams(num_clients=100, threshold=18, degree=34, active=True, unsafe_sparse_active=True)
    adv = MaliciousServer(params, seed=8)
    adv.advertise()
    removed, _ = _split_runs(adv, 16, 40)  # far enough apart that no neighbourhood sees more than 16
    adv = MaliciousServer(params, seed=8)
    u3 = _exclude_and_unmask(adv, removed)
    assert not adv.refused
    assert len(components(adv.graph, u3)) == 1
    assert adv.exposed() == []


def test_hand_picked_set_split_by_colluders_inside_the_runs():
    """The weaker guarantee of a hand-picked active set, as docs/secagg.md states it: with one
    colluder in each run of K/2, excluding the other K/2 - 1 stays within the neighbourhood budget
    and still cuts the ring. (The derived sets bound the chance of such placements, test_large_n_*.)"""
    params = SecAggParams(num_clients=40, threshold=7, degree=10, active=True, unsafe_sparse_active=True)
    assert params.neighbour_dropout_budget == 4
    probe = MaliciousServer(params, seed=14)
    probe.advertise()
    ring = probe.ring()
    run1, segment, run2 = ring[0:5], ring[5:12], ring[12:17]
    colluders = {run1[2], run2[2]}
    excluded = [u for u in run1 + run2 if u not in colluders]
    adv = MaliciousServer(params, corrupted=colluders, seed=14)
    u3 = _exclude_and_unmask(adv, excluded)
    assert not any(u in adv.refused for u in segment)
    honest_u3 = [u for u in u3 if u not in colluders]
    assert len(components(adv.graph, honest_u3)) == 2
    assert np.array_equal(adv.segment_sum(segment, excluded + sorted(colluders)), adv.true_sum(segment))


def test_dropouts_at_share_keys_count_toward_the_budget():
    """Clients missing from U1 already count: an honest client refuses before sharing anything."""
    params = SecAggParams(num_clients=30, threshold=7, degree=10, active=True, unsafe_sparse_active=True, dropout_budget=5)
    adv = MaliciousServer(params, seed=9)
    adv.advertise(absent=[1, 6, 11, 16, 21, 26])
    with pytest.raises(DropoutBudgetExceeded) as info:
        adv.share()
    assert info.value.scope == "round"


# -- 3. placement -----------------------------------------------------------------------------

def test_old_round_id_graph_lets_the_server_seat_colluders():
    """Regression: with the round-id graph the server grinds the round id to seat its colluders."""
    params = SecAggParams(num_clients=30, threshold=3, degree=4)
    target, colluders = 1, {2, 3}
    for i in range(5000):
        rid = i.to_bytes(16, "big")
        if colluders <= neighbours(params, rid)[target]:
            break
    else:
        pytest.fail("no seating round id in 5000 tries")


def test_active_graph_follows_the_keys_not_ids_or_round_id():
    params = SecAggParams(num_clients=30, threshold=7, degree=10, active=True, unsafe_sparse_active=True)
    rng = SeededRandom(10)
    signing = {u: SigningKey.generate(rng) for u in params.client_ids}
    vk = {u: k.verify_key for u, k in signing.items()}
    keys = {u: (bytes([u]) * 32, bytes([2]) + bytes([u + 100]) * 32) for u in params.client_ids}
    seed = graph_seed(ROUND, 30, keys)
    g = keyed_neighbours(params, seed, vk)
    # the server relabels the clients (which key gets which protocol id): neighbours by key do not change
    perm = dict(zip(params.client_ids, np.random.default_rng(0).permutation(list(params.client_ids)).tolist()))
    vk2 = {perm[u]: vk[u] for u in params.client_ids}
    g2 = keyed_neighbours(params, seed, vk2)
    by_key = {vk[u]: {vk[v] for v in g[u]} for u in g}
    by_key2 = {vk2[u]: {vk2[v] for v in g2[u]} for u in g2}
    assert by_key == by_key2
    # one honest client's fresh key changes the whole ring
    keys2 = dict(keys)
    keys2[5] = (bytes([77]) * 32, keys[5][1])
    assert ring_order(params, graph_seed(ROUND, 30, keys2), vk) != ring_order(params, seed, vk)
    # keys advertised (and signed) for another round id do not verify in this one
    adv = MaliciousServer(params, seed=10, signing=signing)
    adv.advertise()
    other = MaliciousServer(params, seed=10, signing=signing, round_id=bytes(16))
    other.advertise()
    mixed = {v: (adv.adv[v] if v == 1 else other.adv[v]) for v in params.client_ids}
    peers = tuple(PeerKeys(v, m.c_pk, m.s_pk, m.signature) for v, m in sorted(mixed.items()))
    with pytest.raises(AuthenticationFailed):
        adv.clients[1].share_keys(KeysBroadcast(ROUND, 1, peers))


def test_grinding_colluder_keys_to_seat_them_next_to_a_target_fails():
    """The colluders re-draw their keys 64 times and keep the graph that seats most of them next
    to the target; the two-views attack on the target still fails (t tolerates them all)."""
    params = SecAggParams(num_clients=30, threshold=7, degree=10, active=True, unsafe_sparse_active=True)
    colluders, target = {28, 29}, 3
    best, best_seat = None, -1
    for g in range(64):
        adv = MaliciousServer(params, corrupted=colluders, seed=11)
        for c in colluders:  # the colluders' fresh keys for this try
            adv.clients[c] = SecAggClient(params, c, ROUND, signing_key=adv.signing[c], verify_keys=adv.verify,
                                          rng=SeededRandom(1_000 + 7 * g + c))
        adv.advertise()
        seated = len(colluders & adv.graph[target])
        if seated > best_seat:
            best, best_seat = g, seated
    assert best_seat == 2  # grinding does seat them ...
    adv = MaliciousServer(params, corrupted=colluders, seed=11)
    for c in colluders:
        adv.clients[c] = SecAggClient(params, c, ROUND, signing_key=adv.signing[c], verify_keys=adv.verify,
                                      rng=SeededRandom(1_000 + 7 * best + c))
    _two_views(adv, target)
    assert adv.exposed() == []  # ... but within the tolerance of the parameters


# -- 4. replayed signatures --------------------------------------------------------------------

def test_replayed_consistency_signatures_from_another_round_rejected():
    """Two views, with the short group padded by signatures its peers gave on the same set in an
    earlier round (same long-term keys, client 4 really absent then): rejected as forged."""
    params = derived_active(30, 0.1)
    old = MaliciousServer(params, corrupted={30}, seed=12, round_id=bytes(16))
    old.setup(absent_at={"masked": [4]})
    without = tuple(sorted(old.y))
    assert 4 not in without
    old.sign({u: without for u in old.honest if u != 4})
    replay = old.signatures[without]
    adv = MaliciousServer(params, corrupted={30}, seed=13, signing=old.signing)
    adv.setup()
    everyone = tuple(sorted(adv.y))
    group_b = [u for u in adv.honest if u != 4][:12]
    group_a = [u for u in adv.honest if u not in group_b]
    adv.sign({**{u: everyone for u in group_a}, **{u: without for u in group_b}})
    padded = dict(replay)
    padded.update(adv.signatures[without])  # this round's own signatures win where both exist
    adv.unmask({u: (without, (4,)) for u in group_b}, signatures={u: tuple(sorted(padded.items())) for u in group_b})
    assert all(isinstance(adv.refused[u], AuthenticationFailed) for u in group_b)
    assert not any(adv.revealed_any(u) for u in group_b)
    adv.unmask({u: (everyone, ()) for u in group_a})
    assert adv.holdings(4)[1] < params.threshold and adv.exposed() == []


# -- 5. the parameter sets at n = 1,000 and 10,000 ---------------------------------------------

def _worst_case_split(ring_corrupt: np.ndarray, half: int, d_local: int, d_global: int) -> bool:
    """Whether some choice of removals within the budgets splits the honest survivors: two
    disjoint windows of ``half`` positions, each with at most ``d_local`` honest clients, at most
    ``d_global`` together (the adversary removes exactly their honest members)."""
    n = len(ring_corrupt)
    honest = (~ring_corrupt).astype(int)
    ext = np.concatenate([honest, honest])
    window = np.convolve(ext, np.ones(half, dtype=int), "valid")[:n]  # honest count in [i, i + half)
    ok = np.flatnonzero(window <= d_local)
    for i in ok:
        for j in ok:
            if (j - i) % n >= half and (i - j) % n >= half and window[i] + window[j] <= d_global:
                return True
    return False


@pytest.mark.parametrize("n", [1000, 10000])
def test_large_n_project_parameters_are_the_complete_graph(n):
    """Every active set the project picks at n = 1,000 and 10,000 is the complete graph, safe by
    counting against the colluders it is meant for (any placement, any removals)."""
    classic = SecAggParams.classic(n, active=True)
    assert classic.tolerated_corrupt_holders >= n // 3 - 1
    for name, params, c in project_parameter_sets(n):
        assert params.degree is None, name
        assert c <= params.tolerated_corrupt_holders, name
        assert 2 * params.threshold > n + c, name
        # the round still finishes with the c colluders silent and floor(rate n) honest drops
        assert params.dropout_budget == n - params.threshold >= c, name


@pytest.mark.parametrize("n", [1000, 10000])
def test_large_n_unsafe_sparse_sets_against_worst_placement_of_removals(n):
    """Research check of the sparse active derivation (``unsafe_sparse_active``): on sampled
    placements, two views cannot both reach t and removals alone within the budgets cannot cut the
    ring. It does NOT model uneven share delivery, which cuts these sets anyway
    (``test_ring_cut_by_uneven_share_delivery_*``): passing it is not a security claim."""
    rng = np.random.default_rng(n)
    for rate in (0.1, 0.05):
        params = SecAggParams.secagg_plus(n, dropout_rate=rate, corruption_rate=rate, active=True, unsafe_sparse_active=True)
        assert params.degree is not None and params.degree < n - 1
        g = secagg_plus_parameters(n, dropout_rate=rate, corruption_rate=rate, active=True, unsafe_sparse_active=True)
        assert g.log2_security_failure <= -40 and g.log2_correctness_failure <= -20 and g.grinding_bits == 40
        k, half = params.degree, params.degree // 2
        for _ in range(20):  # sampled placements of floor(rate n) colluders on the ring
            corrupt = np.zeros(n, dtype=bool)
            corrupt[rng.choice(n, math.floor(rate * n), replace=False)] = True
            ext = np.concatenate([corrupt[-half:], corrupt, corrupt[:half]]).astype(int)
            around = np.convolve(ext, np.ones(k + 1, dtype=int), "valid") - corrupt  # corrupted holders of each
            assert around[~corrupt].max() <= params.tolerated_corrupt_holders  # two views cannot both reach t
            assert not _worst_case_split(corrupt, half, params.neighbour_dropout_budget, params.dropout_budget)


def test_old_large_n_parameters_fall_on_sampled_placements():
    """Regression: the old n = 1000 choice (K = 84, t = 43) has honest clients with a corrupted
    neighbour, which is all the two-views attack needs."""
    old = secagg_plus_parameters(1000, dropout_rate=0.1, corruption_rate=0.1)
    p = SecAggParams(num_clients=1000, threshold=old.threshold, degree=old.degree, active=True, unsafe_sparse_active=True,
                     dropout_budget=1000 - old.threshold, neighbour_dropout_budget=old.degree + 1 - old.threshold)
    assert p.tolerated_corrupt_holders <= 1
    rng = np.random.default_rng(0)
    corrupt = np.zeros(1000, dtype=bool)
    corrupt[rng.choice(1000, 100, replace=False)] = True
    half = p.degree // 2
    ext = np.concatenate([corrupt[-half:], corrupt, corrupt[:half]]).astype(int)
    around = np.convolve(ext, np.ones(p.degree + 1, dtype=int), "valid") - corrupt
    assert (around[~corrupt] > p.tolerated_corrupt_holders).mean() > 0.9


# -- 6. the ring cut by uneven share delivery (why the active variant is complete-graph only) ----

RING_CUT_CASES = {  # (params of SecAggParams without the variant flags, arc length)
    "D8": (dict(num_clients=30, threshold=7, degree=10, dropout_budget=8), 7),
    "default-budgets": (dict(num_clients=30, threshold=7, degree=10), 10),
}


@pytest.mark.parametrize("case", sorted(RING_CUT_CASES))
def test_ring_cut_by_uneven_share_delivery_recovers_arc_sum_with_opt_in(case):
    """The reviewer's attack on the real clients: no colluders, every client within its budgets and
    shown t valid signatures from its own holders, yet the server reads the exact sum of an arc of
    honest clients. This is why the sparse active variant needs ``unsafe_sparse_active``."""
    kw, arc_len = RING_CUT_CASES[case]
    params = SecAggParams(**kw, active=True, unsafe_sparse_active=True)
    assert (params.tolerated_corrupt_holders, params.neighbour_dropout_budget) == (2, 4)
    adv = MaliciousServer(params, corrupted=(), seed=11, dim=20)
    adv.advertise()
    cut = ring_cut(adv, arc_len, per_side=params.neighbour_dropout_budget, reach=params.degree // 2)
    arc, z = cut["arc"], cut["z"]
    assert not adv.corrupted and len(arc) == arc_len
    # every member of the arc accepted its view (t valid signatures from its own holders, budgets
    # kept) and revealed its shares; only clients the attack does not need refuse (too few signatures)
    assert not arc & set(adv.refused)
    assert all(isinstance(e, TooFewSurvivors) for e in adv.refused.values())
    # each view alone is within the round budget; together they remove more clients than it allows
    views = set(cut["views"].values())
    assert len(views) == 2 and all(30 - len(v) <= params.dropout_budget for v in views)
    if case == "D8":
        assert len(cut["withheld"] | z) > params.dropout_budget
    # graph neighbours that both revealed shares under different signed views (the old docs claimed none)
    revealed = [u for u in adv.honest if u not in adv.refused]
    split_pairs = [(a, b) for a in revealed for b in revealed
                   if a < b and b in adv.graph[a] and cut["views"][a] != cut["views"][b]]
    assert len(split_pairs) == (10 if case == "D8" else len(split_pairs)) and split_pairs
    # no single input is exposed, but the arc's sum is, exactly
    assert adv.exposed() == []
    assert all(adv.holdings(u)[0] >= params.threshold for u in arc)
    assert all(adv.holdings(w)[1] >= params.threshold for w in z)
    assert np.array_equal(adv.segment_sum(sorted(arc), removed=z), adv.true_sum(arc))
    assert not np.array_equal(adv.true_sum(arc), adv.true_sum(set(adv.y)))  # a partial sum, not the total


@pytest.mark.parametrize("case", sorted(RING_CUT_CASES))
def test_ring_cut_parameters_refused_without_opt_in(case):
    kw, _ = RING_CUT_CASES[case]
    with pytest.raises(ConfigError, match="uneven share delivery") as info:
        SecAggParams(**kw, active=True)
    assert "Ring cut by uneven share delivery" in str(info.value) and "docs/secagg.md" in str(info.value)
    SecAggParams(**kw)  # the semi-honest variant of the same graph is unaffected


def test_sparse_active_refused_everywhere():
    """Every way the project builds active parameters refuses the sparse graph without the opt-in."""
    for build in (
        lambda: SecAggParams.secagg_plus(1000, dropout_rate=0.1, corruption_rate=0.1, active=True),
        lambda: SecAggParams.secagg_plus(30, active=True),  # even where the derivation would fall back
        lambda: SecureSum(graph="sparse", active=True),
        lambda: SecAggParams(num_clients=30, threshold=7, degree=10, active=True, unsafe_sparse_active=False),
    ):
        with pytest.raises(ConfigError, match="Ring cut by uneven share delivery"):
            build()
    with pytest.raises(ConfigError, match="active variant only"):
        SecAggParams(num_clients=30, threshold=7, degree=10, unsafe_sparse_active=True)
    with pytest.raises(ConfigError):
        SecAggParams(num_clients=30, threshold=7, degree=10, active=True, unsafe_sparse_active=1)
    with pytest.raises(ConfigError):
        SecureSum(graph="complete", active=True, unsafe_sparse_active=True)
    # the derivation answers with the complete graph unless the opt-in is given
    g = secagg_plus_parameters(1000, dropout_rate=0.1, corruption_rate=0.1, active=True)
    assert g.degree is None and g.threshold == complete_graph_active_threshold(1000, 100) == 551
    unsafe = secagg_plus_parameters(1000, dropout_rate=0.1, corruption_rate=0.1, active=True, unsafe_sparse_active=True)
    assert unsafe.degree == 356
    # with the opt-in, the sparse constructors still build (the base of the proper fix)
    assert SecAggParams.secagg_plus(1000, dropout_rate=0.1, corruption_rate=0.1, active=True,
                                    unsafe_sparse_active=True).degree == 356
    assert SecureSum(graph="sparse", active=True, unsafe_sparse_active=True).params_for(1000).degree == 356


def test_ring_cut_fails_on_the_complete_graph():
    """The same construction on the complete graph (t = 16 of 30, no colluders): the arc's view is
    signed by fewer than t clients, so its members refuse and reveal nothing; the server cannot
    remove the arc's masks with the clients it still counts as survivors."""
    params = SecAggParams(num_clients=30, threshold=complete_graph_active_threshold(30, 0), active=True)
    assert params.threshold == 16
    adv = MaliciousServer(params, corrupted=(), seed=11, dim=20)
    adv.advertise()
    cut = ring_cut(adv, 10, per_side=4, reach=5)
    arc = cut["arc"]
    assert arc <= set(adv.refused) and all(isinstance(adv.refused[u], TooFewSurvivors) for u in arc)
    assert not any(adv.revealed_any(u) for u in arc | cut["z"])
    assert adv.exposed() == []
    assert not np.array_equal(adv.segment_sum(sorted(arc), removed=cut["z"]), adv.true_sum(arc))
