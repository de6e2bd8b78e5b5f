"""Pipeline cheaters against the real norm-proof stage, in secure mode and in its fast twin."""
import numpy as np
import pytest

from attacks.pipeline_cheats import BoostAfterClip, CommitOther, SkipClip, commit_with_stolen_proof
from fl.aggregation import ClientMessage, RoundContext, RoundFailed
from fl.aggregation import norm_proof as stage_mod

DIM, BOUND, SCALE = 8, 1.0, 1000.0


def ctx():
    return RoundContext(round_index=0, seed=3, dim=DIM, expected_clients=3)


def messages(cheat):
    rng = np.random.default_rng(0)
    honest = [ClientMessage(i, (rng.normal(size=DIM) * 0.15).astype(np.float32)) for i in range(2)]
    bad = ClientMessage(2, np.full(DIM, 1.5, np.float32), adversary=cheat)  # norm 4.2 > 1
    return honest + [bad]


def stage(secure):
    return stage_mod.NormProofStage(stage_mod.ExactIntegerSum(), bound=BOUND, scale=SCALE, secure=secure)


def honest_sum():
    ms = messages(None)[:2]
    xs = [stage_mod.clip_and_quantize(m.vector, BOUND, SCALE, "l2") for m in ms]
    return ((xs[0] + xs[1]).astype(np.float64) / SCALE).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("make", [SkipClip, lambda: BoostAfterClip(10.0)], ids=["skip_clip", "boost_after_clip"])
def test_out_of_bound_cheaters_are_rejected_alone_in_both_modes(make):
    outcomes = {}
    for secure in (True, False):
        cheat = make()
        out = stage(secure).aggregate(messages(cheat), ctx())
        assert cheat.played == 1
        assert out.included == [0, 1] and list(out.rejected) == [2]
        np.testing.assert_array_equal(out.vector, honest_sum())
        outcomes[secure] = out
    assert outcomes[True].rejected[2] == outcomes[False].rejected[2] == "norm_proof_failed"
    assert np.array_equal(outcomes[True].vector, outcomes[False].vector)  # same model either way


@pytest.mark.slow
@pytest.mark.parametrize("secure", [True, False])
def test_committing_to_one_vector_and_masking_another_fails_the_round(secure):
    c = ctx()
    with pytest.raises(RoundFailed) as info:
        stage(secure).aggregate(messages(CommitOther(3.0)), c)
    assert info.value.reason == "binding_failed"
    assert c.measurements["norm_proof_rejected"] == 0  # every proof verified: only binding catches it
    assert any("binding" in e for e in c.events)


class ProofForAnotherVector:
    """Commits to a shorter vector, still within the bound, with the honest vector's proof:
    only the link between proof and commitment can catch it."""

    def client_step(self, stage, message, ctx, honest):
        if stage.name != "norm_proof":
            return honest(message, ctx)
        x = stage_mod.clip_and_quantize(message.vector, BOUND, SCALE, "l2")
        return commit_with_stolen_proof(stage, message, (x * 9) // 10, ctx, honest)


@pytest.mark.slow
def test_in_bound_vector_with_another_vectors_proof_is_rejected_in_both_modes():
    outcomes = {}
    for secure in (True, False):
        out = stage(secure).aggregate(messages(ProofForAnotherVector()), ctx())
        assert out.included == [0, 1] and out.rejected == {2: "norm_proof_failed"}
        outcomes[secure] = out
    assert np.array_equal(outcomes[True].vector, outcomes[False].vector)


class SameVectorAnotherCommitment:
    """Recommits to exactly the honest vector and reuses the proof made for the first commitment:
    the proof binds the commitment, not just the vector, so it fails in both modes."""

    def client_step(self, stage, message, ctx, honest):
        if stage.name != "norm_proof":
            return honest(message, ctx)
        x = stage_mod.clip_and_quantize(message.vector, BOUND, SCALE, "l2")
        return commit_with_stolen_proof(stage, message, x, ctx, honest)


@pytest.mark.slow
def test_a_proof_for_another_commitment_to_the_same_vector_is_rejected_in_both_modes():
    for secure in (True, False):
        out = stage(secure).aggregate(messages(SameVectorAnotherCommitment()), ctx())
        assert out.included == [0, 1] and out.rejected == {2: "norm_proof_failed"}


# --- clients over the bound, proven with the real prover's check bypassed --------------------

OVER = (1.001, 1.1, 1.5)


def over_bound_messages():
    """Two honest clients, one exactly at the bound (its float update already of norm M: clipping
    leaves it, quantization keeps it within), and one cheater per factor of :data:`OVER`."""
    from attacks.pipeline_cheats import ProveOverBound

    rng = np.random.default_rng(4)
    honest = [ClientMessage(i, (rng.normal(size=DIM) * 0.15).astype(np.float32)) for i in range(2)]
    at_bound = rng.normal(size=DIM)
    honest.append(ClientMessage(2, (at_bound / np.linalg.norm(at_bound)).astype(np.float32)))
    cheats = [ClientMessage(3 + i, np.full(DIM, 1.5, np.float32), adversary=ProveOverBound(f))
              for i, f in enumerate(OVER)]
    return honest + cheats


@pytest.mark.slow
def test_over_bound_provers_are_excluded_alike_by_the_secure_stage_and_its_twin():
    """1.001 M, 1.1 M and 1.5 M (the old sketch proof let the first two through): the secure stage
    rejects each proof, the twin each vector, and both give the same exclusions and sum."""
    outcomes = {}
    for secure in (True, False):
        ms = over_bound_messages()
        out = stage(secure).aggregate(ms, ctx())
        assert [m.adversary.played for m in ms[3:]] == [1, 1, 1]
        outcomes[secure] = out
    sec, fast = outcomes[True], outcomes[False]
    assert sec.included == fast.included == [0, 1, 2]
    assert sec.rejected == fast.rejected == {3: "norm_proof_failed", 4: "norm_proof_failed",
                                             5: "norm_proof_failed"}
    assert np.array_equal(sec.vector, fast.vector)


def test_the_over_bound_cheater_really_is_over_the_bound():
    """What the cheat proves: clipped to factor * M, quantized, its exact squared norm over M^2."""
    from attacks.pipeline_cheats import ProveOverBound
    from rangeproof.norm.l2 import exact_square_norm

    lim = stage_mod.integer_bound(BOUND, SCALE, "l2")
    for f in OVER:
        x = ProveOverBound(f).quantize_over(np.full(DIM, 1.5), BOUND, SCALE, "l2")
        assert lim * lim < exact_square_norm(x) <= (f * lim + DIM) ** 2
