"""Client clipping, server clipping and server thresholding on hand-made vectors; the cheats."""
import numpy as np
import pytest

from attacks.pipeline_cheats import BoostAfterClip, CommitOther, SkipClip, build_cheat
from fl.aggregation import ClientMessage, MeanStage, PlainSum, RoundContext, RoundFailed, Stage
from fl.aggregation.robust import (
    ClientClipStage,
    NormProbeStage,
    ServerClipStage,
    ServerThresholdStage,
    clip_l2,
    l2_norm,
)


def ctx():
    return RoundContext(round_index=0, seed=1, dim=2, expected_clients=3)


def msgs(*vectors, attacker=()):
    return [ClientMessage(i, np.array(v, np.float32), extras={"attacker": True} if i in attacker else {})
            for i, v in enumerate(vectors)]


def test_clip_l2_scales_only_long_vectors():
    v = np.array([3.0, 4.0], np.float32)
    out, was = clip_l2(v, 1.0)
    assert was and l2_norm(out) == pytest.approx(1.0) and out.dtype == np.float32
    np.testing.assert_allclose(out, [0.6, 0.8], rtol=1e-6)
    same, was = clip_l2(v, 5.0)
    assert same is v and not was


def test_client_clip_stage_clips_each_client_before_the_sum():
    c = ctx()
    out = ClientClipStage(PlainSum(), 1.0).aggregate(msgs([3, 4], [0.3, 0.4], [0, -10], attacker={2}), c)
    np.testing.assert_allclose(out.vector, [0.6 + 0.3, 0.8 + 0.4 - 1.0], rtol=1e-6)
    assert c.measurements["client_clip_clipped"] == 2
    assert c.measurements["norm_honest_max"] == pytest.approx(5.0)
    assert c.measurements["norm_attacker_max"] == pytest.approx(10.0)


def test_cheaters_bypass_plaintext_client_clipping():
    m = msgs([3, 4], [0, 10])
    m[1] = m[1].replace(adversary=SkipClip())
    out = ClientClipStage(PlainSum(), 1.0).aggregate(m, ctx())
    np.testing.assert_allclose(out.vector, [0.6, 10.8], rtol=1e-6)
    m = msgs([3, 4], [0, 10])
    m[1] = m[1].replace(adversary=BoostAfterClip(5.0))
    out = ClientClipStage(PlainSum(), 1.0).aggregate(m, ctx())
    np.testing.assert_allclose(out.vector, [0.6, 0.8 + 5.0], rtol=1e-6)
    # a cheat aimed at another stage is honest here
    m = msgs([0, 10])
    m[0] = m[0].replace(adversary=CommitOther(3.0))
    np.testing.assert_allclose(ClientClipStage(PlainSum(), 1.0).aggregate(m, ctx()).vector, [0, 1.0], rtol=1e-6)


class FakeProof(Stage):
    """Stands in for the norm-proof stage: its client half commits to the vector it sees."""

    name = "norm_proof"

    def client(self, m, ctx):
        out = m.replace()
        out.extras["committed"] = m.vector.copy()
        return out


def test_commit_other_commits_to_one_vector_and_passes_on_another():
    seen = []

    class Capture(PlainSum):
        def aggregate(self, messages, ctx):
            seen.extend(messages)
            return super().aggregate(messages, ctx)

    m = msgs([1, 2])
    cheat = CommitOther(4.0)
    m[0] = m[0].replace(adversary=cheat)
    FakeProof(Capture()).aggregate(m, ctx())
    np.testing.assert_array_equal(seen[0].extras["committed"], [1, 2])
    np.testing.assert_array_equal(seen[0].vector, [4, 8])
    assert cheat.played == 1
    # in the integer (quantized) domain the scaling wraps like the dtype
    q = ClientMessage(0, np.array([2**31, 3], np.uint32), adversary=CommitOther(2.0))
    seen.clear()
    FakeProof(Capture()).aggregate([q], ctx())
    np.testing.assert_array_equal(seen[0].vector, np.array([0, 6], np.uint32))
    assert build_cheat("none", 1.0) is None
    # every cheat the config accepts has a player, and nothing else does
    from attacks import PIPELINE_CHEATS

    assert all(build_cheat(kind, 2.0) is not None for kind in PIPELINE_CHEATS if kind != "none")
    with pytest.raises(ValueError, match="cheat"):
        build_cheat("swap_masks", 2.0)


def test_server_clip_reads_each_update_and_cannot_be_skipped():
    m = msgs([3, 4], [0, 10])
    m[1] = m[1].replace(adversary=SkipClip())
    c = ctx()
    out = ServerClipStage(MeanStage(PlainSum(), "uniform"), 2.0).aggregate(m, c)
    np.testing.assert_allclose(out.vector, [(1.2 + 0) / 2, (1.6 + 2.0) / 2], rtol=1e-6)
    assert c.measurements["server_clip_clipped"] == 2


def test_server_threshold_rejects_and_reports():
    c = ctx()
    out = ServerThresholdStage(MeanStage(PlainSum(), "uniform"), 2.0).aggregate(
        msgs([3, 4], [0.3, 0.4], [1, 1], attacker={0}), c)
    assert out.rejected == {0: "norm_over_threshold"}
    assert out.included == [1, 2]
    np.testing.assert_allclose(out.vector, [0.65, 0.7], rtol=1e-6)
    assert c.measurements["server_threshold_rejected"] == 1
    assert c.measurements["norm_attacker_max"] == pytest.approx(5.0)
    assert any("client 0" in e for e in c.events)
    with pytest.raises(RoundFailed) as info:
        ServerThresholdStage(PlainSum(), 0.1).aggregate(msgs([3, 4]), ctx())
    assert info.value.reason == "all_rejected"


@pytest.mark.parametrize("stage", [ClientClipStage, ServerClipStage, ServerThresholdStage])
def test_bad_bounds_and_bad_vectors_are_refused(stage):
    for bound in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="bound"):
            stage(PlainSum(), bound)
    with pytest.raises(RoundFailed) as info:  # nobody left: a failed round, not a crash of the run
        stage(PlainSum(), 1.0).aggregate(msgs([np.nan, 1]), ctx())
    assert info.value.reason == "all_rejected" and info.value.blamed == (0,)
    # one bad client among good ones: excluded and named, the round goes on with the others
    c = ctx()
    out = stage(PlainSum(), 1.0).aggregate(msgs([0.1, 0.2], [np.inf, 1], [0.3, 0.4]), c)
    assert out.rejected == {1: "malformed_update"} and sorted(out.included) == [0, 2]
    np.testing.assert_allclose(out.vector, [0.4, 0.6], rtol=1e-6)
    assert any("client 1 excluded (malformed_update)" in e for e in c.events)
    with pytest.raises(ValueError, match="quantization"):
        stage(PlainSum(), 1.0).aggregate([ClientMessage(0, np.array([1, 2], np.uint32))], ctx())


def test_norm_probe_records_and_changes_nothing():
    c = ctx()
    m = msgs([3, 4], [0, 1], [6, 8], attacker={2})
    out = NormProbeStage(PlainSum()).aggregate(m, c)
    np.testing.assert_array_equal(out.vector, np.array([9, 13], np.float32))
    assert c.measurements["norm_honest_max"] == pytest.approx(5.0)
    assert c.measurements["norm_honest_p50"] == pytest.approx(3.0)
    assert c.measurements["norm_attacker_max"] == pytest.approx(10.0)
