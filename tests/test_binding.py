"""Binding the aggregate to the commitments, and the norm-proof pipeline stage end to end."""
import numpy as np
import pytest

from fl.aggregation import ClientMessage, MeanStage, RoundContext, RoundFailed
from rangeproof.binding import BindingError, aggregate_commitments, check_binding
from rangeproof.group import ORDER, point_to_bytes
from rangeproof.norm import commit_vector
from rangeproof.norm.commitment import vector_generators
from fl.aggregation.norm_proof import ExactIntegerSum, NormProofStage, clip_and_quantize, integer_bound, plain_commitment

DIM = 64


def committed(seed, n):
    """``n`` random vectors, their commitments, the blinding sum and the vectors' sum."""
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-1000, 1000, DIM) for _ in range(n)]
    commits = [commit_vector(x) for x in xs]
    return xs, [c for c, _ in commits], sum(r for _, r in commits) % ORDER, sum(xs)


def test_binding_accepts_the_true_sum_only():
    xs, C, R, total = committed(0, 4)
    check_binding(C, total, R, dim=DIM)
    bumped = total.copy()
    bumped[5] += 1
    for args in ((C, bumped, R), (C, total, (R + 1) % ORDER), (C[:3], total, R), ([], total, R)):
        with pytest.raises(BindingError):
            check_binding(*args, dim=DIM)
    assert aggregate_commitments(C) == commit_vector(total, R)[0]
    check_binding(C, total.tolist(), R, dim=DIM)
    check_binding(C, total.astype(object), R, dim=DIM)
    # a non-integer aggregate is refused, never truncated into the committed sum
    halves = [v + 0.5 if i == 5 else v for i, v in enumerate(total.tolist())]
    for bad in (halves, np.asarray(halves), total.astype(np.float64), [True] + total.tolist()[1:]):
        with pytest.raises(BindingError, match="integers"):
            check_binding(C, bad, R, dim=DIM)
    # two colluders shifting mass between their masked inputs keep the sum: still bound to the
    # committed vectors, whose proofs are checked one by one (docs/proofs.md)
    check_binding(C, xs[0] + xs[1] + xs[2] + xs[3], R, dim=DIM)


def test_binding_refuses_aggregates_that_match_only_modulo_the_order_or_in_another_shape():
    _, C, R, total = committed(1, 3)
    check_binding(C, total.tolist(), R, dim=DIM)
    # X + q e_j satisfies the equation (it holds modulo q): refused as non-canonical
    for j, shift in ((0, ORDER), (7, -ORDER), (DIM - 1, 2 * ORDER)):
        wrapped = total.tolist()
        wrapped[j] += shift
        with pytest.raises(BindingError, match="canonical"):
            check_binding(C, wrapped, R, dim=DIM)
        with pytest.raises(BindingError, match="canonical"):
            check_binding(C, np.asarray(wrapped, dtype=object), R, dim=DIM)
    # trailing zeros commit to nothing more but are not the statement's vector: refused by length
    for wrong in (total.tolist() + [0], np.append(total, [0, 0]), total[:-1]):
        with pytest.raises(BindingError, match="entries"):
            check_binding(C, wrong, R, dim=DIM)
    with pytest.raises(BindingError, match="entries"):
        check_binding(C, total, R, dim=DIM + 1)
    # other shapes and types: a BindingError, never a TypeError
    for bad in (total.reshape(8, 8), np.asarray(total[0]), None, 5, "1234", b"\x00" * DIM,
                {i: int(v) for i, v in enumerate(total)}, range(DIM), memoryview(total),
                total.astype("datetime64[ns]")):
        with pytest.raises(BindingError):
            check_binding(C, bad, R, dim=DIM)
    # what is checked is what is read: a list or array that misreports its length or entries
    class LongerThanItSays(list):
        def __len__(self):
            return DIM

    class Endless(list):
        def __iter__(self):
            return iter(int, 1)  # zeros, forever

    for liar in (LongerThanItSays(total.tolist() + [0]), LongerThanItSays(total.tolist()[:-1]),
                 Endless(total.tolist())):
        with pytest.raises(BindingError, match="entries"):
            check_binding(C, liar, R, dim=DIM)

    class ClaimsAWrap(np.ndarray):
        def tolist(self):
            return [v + ORDER for v in np.asarray(self).tolist()]

    check_binding(C, total.view(ClaimsAWrap), R, dim=DIM)  # the array's own entries are checked
    with pytest.raises(BindingError, match="integers"):
        check_binding(C, np.array([np.timedelta64(int(v), "ns") for v in total], dtype=object), R, dim=DIM)
    for bad_dim in (0, -1, True, 64.0, None, np.int64(DIM)):
        with pytest.raises(BindingError, match="dim"):
            check_binding(C, total, R, dim=bad_dim)
    with pytest.raises(TypeError):  # dim is required
        check_binding(C, total, R)
    # the commitments: a non-empty list of points of the group, nothing else
    for bad_commitments in ((C[0], None), [C[0], b"\x02" * 33], iter(C), np.array(C, dtype=object)):
        with pytest.raises(BindingError):
            check_binding(bad_commitments, total, R, dim=DIM)
    with pytest.raises(BindingError, match="int"):
        check_binding(C, total, np.int64(5), dim=DIM)


def ctx(round_index=1, dim=DIM):
    return RoundContext(round_index=round_index, seed=11, dim=dim, expected_clients=4)


def updates(n=4, seed=0, scale=0.05):
    rng = np.random.default_rng(seed)
    return [ClientMessage(i, (rng.normal(size=DIM) * scale).astype(np.float32)) for i in range(n)]


def stage(secure=True, norm="l2"):
    return MeanStage(NormProofStage(ExactIntegerSum(), bound=0.5, norm=norm, scale=4096.0,
                                    secure=secure), "uniform")


class Booster:
    """Commits to (and proves) its clipped update, then masks a boosted one."""

    def __init__(self, factor):
        self.factor = factor

    def client_step(self, st, message, ctx, honest):
        if not isinstance(st, NormProofStage):
            return honest(message, ctx)
        x = clip_and_quantize(message.vector, st.bound, st.scale, st.norm)
        proven = st.commit_and_prove(message, x, ctx)
        return proven.replace(vector=x * self.factor)


class ProofThief:
    """Skips clipping: commits to its boosted vector but attaches another client's valid proof."""

    def client_step(self, st, message, ctx, honest):
        if not isinstance(st, NormProofStage):
            return honest(message, ctx)
        victim = honest(message.replace(vector=message.vector * 0), ctx)
        boosted = np.trunc(message.vector * 20 * st.scale).astype(np.int64)
        if not st.secure:  # the twin's commitment is the vector's digest
            extras = dict(victim.extras)
            extras["norm_proof"] = {"commitment": plain_commitment(boosted, b"thief"), "opening": b"thief",
                                    "proof": victim.extras["norm_proof"]["proof"]}
            return victim.replace(vector=boosted, extras=extras)
        C, r = commit_vector(boosted)
        extras = dict(victim.extras)
        extras["norm_proof"] = {"commitment": point_to_bytes(C), "proof": victim.extras["norm_proof"]["proof"]}
        extras["field_vector"] = [r]
        return victim.replace(vector=boosted, extras=extras)


def test_quantization_stays_within_the_integer_bound():
    rng = np.random.default_rng(1)
    for norm in ("l2", "linf"):
        for s in (0.1, 1.0, 10.0):
            v = rng.normal(size=500) * s
            x = clip_and_quantize(v, 0.5, 4096.0, norm)
            lim = integer_bound(0.5, 4096.0, norm)
            if norm == "l2":
                assert int(np.square(x.astype(object)).sum()) <= lim * lim
            else:
                assert np.abs(x).max() <= lim


@pytest.mark.slow
def test_secure_round_matches_its_plaintext_twin():
    c1, c2 = ctx(), ctx()
    out = stage(True).aggregate(updates(3), c1)
    twin = stage(False).aggregate(updates(3), c2)
    assert out.included == twin.included == [0, 1, 2] and not out.rejected
    np.testing.assert_array_equal(out.vector, twin.vector)
    assert c1.measurements["binding_failed"] == 0.0


@pytest.mark.slow
def test_boosted_client_masking_another_vector_fails_the_round_closed():
    msgs = updates(3)
    msgs[1].adversary = Booster(10)
    c = ctx()
    with pytest.raises(RoundFailed) as info:
        stage(True).aggregate(msgs, c)
    assert info.value.reason == "binding_failed"
    assert any("binding check failed" in e for e in c.events)
    assert c.measurements["binding_failed"] == 1.0


@pytest.mark.slow
def test_client_with_an_invalid_proof_is_excluded_before_the_sum():
    msgs = updates(3, seed=2)
    msgs[2].adversary = ProofThief()
    c = ctx()
    out = stage(True).aggregate(msgs, c)
    assert out.included == [0, 1] and out.rejected == {2: "norm_proof_failed"}
    assert any("client 2 excluded before unmasking" in e for e in c.events)
    # the plaintext twin excludes the same (unclipped, boosted) client
    msgs = updates(3, seed=2)
    msgs[2].adversary = ProofThief()
    twin = stage(False).aggregate(msgs, ctx())
    assert twin.included == [0, 1] and twin.rejected == {2: "norm_proof_failed"}
    np.testing.assert_array_equal(out.vector, twin.vector)


def test_missing_blinding_sum_fails_closed():
    class NoFieldSum(ExactIntegerSum):
        def aggregate(self, messages, ctx):
            r = super().aggregate(messages, ctx)
            r.field_sum = []
            return r

    st = NormProofStage(NoFieldSum(), bound=0.5, norm="linf", scale=64.0)
    with pytest.raises(RoundFailed) as info:
        st.aggregate(updates(2), ctx())
    assert info.value.reason == "binding_failed"


def test_linf_stage_round_and_missing_proof():
    msgs = updates(3, seed=4)

    class Silent:
        def client_step(self, st, message, ctx, honest):
            out = honest(message, ctx)
            if not isinstance(st, NormProofStage):
                return out
            extras = dict(out.extras)
            extras.pop("norm_proof")
            return out.replace(extras=extras)

    msgs[0].adversary = Silent()
    out = MeanStage(NormProofStage(ExactIntegerSum(), bound=0.1, norm="linf", scale=64.0), "uniform").aggregate(msgs, ctx())
    assert out.included == [1, 2] and out.rejected == {0: "norm_proof_missing_or_malformed"}
    assert vector_generators(DIM)  # cached


@pytest.mark.slow
def test_with_the_real_secure_sum():
    """The stage on secagg's SecureSum: failing proofs become dropouts before unmasking, the
    binding check uses the protocol's field sum, and a boosted masker fails the round."""
    from fl.aggregation import secure_sum as secagg_stage

    def pipeline():
        return MeanStage(NormProofStage(secagg_stage.SecureSum(bits=32), bound=0.5, norm="l2",
                                        scale=4096.0), "uniform")

    msgs = updates(4, seed=5)
    msgs[3].adversary = ProofThief()
    out = pipeline().aggregate(msgs, ctx())
    assert out.included == [0, 1, 2] and out.rejected[3] == "norm_proof_failed"
    twin = stage(False).aggregate(updates(3, seed=5), ctx())
    np.testing.assert_array_equal(out.vector, twin.vector)
    msgs = updates(4, seed=5)
    msgs[0].adversary = Booster(10)
    c = ctx()
    with pytest.raises(RoundFailed) as info:
        pipeline().aggregate(msgs, c)
    assert info.value.reason == "binding_failed"


class Mangler:
    """Commits to and proves its clipped update honestly, then masks a malformed payload."""

    def __init__(self, mangle):
        self.mangle = mangle

    def client_step(self, st, message, ctx, honest):
        out = honest(message, ctx)
        if not isinstance(st, NormProofStage):
            return out
        vector, field = self.mangle(out.vector, out.extras.get("field_vector"))
        extras = {k: v for k, v in out.extras.items() if k != "field_vector"}
        if field is not None:
            extras["field_vector"] = field
        return out.replace(vector=vector, extras=extras)


MANGLES = {
    "one entry too many": lambda x, f: (np.append(x, 0), f),
    "one entry too few": lambda x, f: (x[:-1], f),
    "float vector": lambda x, f: (x.astype(np.float64), f),
    "unsigned vector": lambda x, f: (x.astype(np.uint64), f),
    "2-D vector": lambda x, f: (x.reshape(8, 8), f),
    "blinding + q": lambda x, f: (x, [f[0] + ORDER]),
    "blinding not an int": lambda x, f: (x, ["abc"]),
    "two blindings": lambda x, f: (x, [f[0], f[0]]),
    "no blinding": lambda x, f: (x, None),
}


@pytest.mark.slow
@pytest.mark.parametrize("how", sorted(MANGLES))
def test_a_verified_client_masking_a_malformed_payload_is_excluded_and_named(how):
    """A client whose proof verifies but whose masked payload the sum cannot take (wrong length,
    dtype or shape; a side vector that is not one blinding in [0, q)) is excluded before
    unmasking and named; the round goes on with the others, on secagg's real SecureSum."""
    from fl.aggregation import secure_sum as secagg_stage

    msgs = updates(4, seed=7)
    msgs[3].adversary = Mangler(MANGLES[how])
    c = ctx()
    out = MeanStage(NormProofStage(secagg_stage.SecureSum(bits=32), bound=0.5, norm="l2", scale=4096.0),
                    "uniform").aggregate(msgs, c)
    assert out.included == [0, 1, 2] and out.rejected == {3: "malformed_payload"}
    assert c.measurements["binding_failed"] == 0.0
    assert any("client 3 excluded before unmasking (malformed_payload)" in e for e in c.events)
    np.testing.assert_array_equal(out.vector, stage(False).aggregate(updates(3, seed=7), ctx()).vector)


def test_the_twin_excludes_a_malformed_payload_too():
    msgs = updates(3, seed=8)
    msgs[2].adversary = Mangler(lambda x, f: (np.append(x, 0), f))
    out = stage(False).aggregate(msgs, ctx())
    assert out.included == [0, 1] and out.rejected == {2: "malformed_payload"}
    msgs = updates(3, seed=8)
    msgs[2].adversary = Mangler(lambda x, f: (x, [5]))  # a side vector the twin has no use for
    assert stage(False).aggregate(msgs, ctx()).rejected == {2: "malformed_payload"}


def test_an_inner_sum_that_ignores_exclusions_fails_closed():
    class Careless(ExactIntegerSum):
        def aggregate(self, messages, ctx):
            clean = [m.replace(extras={k: v for k, v in m.extras.items() if k != "secagg_exclude"})
                     for m in messages]
            return super().aggregate(clean, ctx)

    msgs = updates(3, seed=6)
    msgs[1].adversary = ProofThief()
    with pytest.raises(RoundFailed) as info:
        MeanStage(NormProofStage(Careless(), bound=0.5, norm="linf", scale=64.0), "uniform").aggregate(msgs, ctx())
    assert info.value.reason == "binding_failed"


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_plain_twin_bound_check_is_exact_at_the_edges(norm):
    st = NormProofStage(ExactIntegerSum(), bound=1.0, norm=norm, scale=1000.0, secure=False)
    B = st.int_bound
    ok = st._plain_ok
    # values that wrap under abs() or an int64 cast are out of bound, not in it
    assert not ok(np.array([np.iinfo(np.int64).min, 0], dtype=np.int64), 2)
    assert not ok(np.array([np.iinfo(np.uint64).max, 0], dtype=np.uint64), 2)
    assert not ok(np.array([B + 1, 0], dtype=np.int64), 2)
    assert not ok(np.array([0, -B - 1], dtype=np.int64), 2)
    assert ok(np.array([-B, 0], dtype=np.int64), 2) and ok(np.array([B, 0], dtype=np.uint64), 2)
    assert not ok(np.array([0.0, 1.0]), 2) and not ok(np.zeros(3, dtype=np.int64), 2)
    if norm == "l2":  # exactly on the sphere is in; one unit past it is out
        assert ok(np.array([600, 800], dtype=np.int64), 2) and B == 1000
        assert not ok(np.array([600, 801], dtype=np.int64), 2)
        assert not ok(np.array([708, 708], dtype=np.int32), 2)



@pytest.mark.parametrize("secure", [False, True])
def test_an_inner_sum_that_names_an_unknown_client_fails_closed(secure):
    class Inventive(ExactIntegerSum):
        def aggregate(self, messages, ctx):
            out = super().aggregate(messages, ctx)
            return out.replace(included=out.included + [99])

    st = NormProofStage(Inventive(), bound=0.5, norm="linf", scale=64.0, secure=secure)
    with pytest.raises(RoundFailed) as info:
        MeanStage(st, "uniform").aggregate(updates(2, seed=7), ctx())
    assert info.value.reason == "binding_failed"
