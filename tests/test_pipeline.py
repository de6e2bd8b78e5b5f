"""The aggregation pipeline contract: stage composition, adversary hook, mean weightings."""
import numpy as np
import pytest

from fl.aggregation import (
    ClientMessage,
    MeanStage,
    PlainSum,
    RoundContext,
    RoundFailed,
    Stage,
)


def ctx(expected=3, seed=7):
    return RoundContext(round_index=2, seed=seed, dim=4, expected_clients=expected)


def messages():
    return [
        ClientMessage(0, np.array([1, 2, 3, 4], np.float32), weight=1.0),
        ClientMessage(1, np.array([3, 2, 1, 0], np.float32), weight=3.0),
    ]


class AddOne(Stage):
    """Probe stage: the client half adds 1, the server half adds 10 (proves both ran)."""

    name = "add_one"

    def client(self, m, ctx):
        return m.replace(vector=m.vector + 1)

    def server(self, r, ctx):
        return r.replace(vector=r.vector + 10)


def test_weighted_mean_by_hand():
    out = MeanStage(PlainSum(), "examples").aggregate(messages(), ctx())
    # (1*[1,2,3,4] + 3*[3,2,1,0]) / 4
    np.testing.assert_allclose(out.vector, [2.5, 2.0, 1.5, 1.0])
    assert out.included == [0, 1] and out.weight_total == 4.0


def test_uniform_and_fixed_denominators():
    uni = MeanStage(PlainSum(), "uniform").aggregate(messages(), ctx())
    np.testing.assert_allclose(uni.vector, [2, 2, 2, 2])
    fixed = MeanStage(PlainSum(), "fixed").aggregate(messages(), ctx(expected=4))
    np.testing.assert_allclose(fixed.vector, [1, 1, 1, 1])


def test_stage_runs_client_then_inner_then_server():
    out = AddOne(PlainSum()).aggregate(messages(), ctx())
    np.testing.assert_allclose(out.vector, [4 + 2 + 10, 4 + 2 + 10, 4 + 2 + 10, 4 + 2 + 10])
    assert [s.split("(")[0] for s in AddOne(MeanStage(PlainSum())).describe()][1:] == ["MeanStage", "PlainSum"]


def test_adversary_replaces_the_client_half():
    seen = []

    class SkipClientHalf:
        def client_step(self, stage, message, ctx, honest):
            seen.append(stage.name)
            return message  # does not add one

    msgs = messages()
    msgs[1].adversary = SkipClientHalf()
    out = AddOne(PlainSum()).aggregate(msgs, ctx())
    np.testing.assert_allclose(out.vector, [1 + 1 + 3 + 10, 2 + 1 + 2 + 10, 3 + 1 + 1 + 10, 4 + 1 + 0 + 10])
    assert seen == ["add_one"]


def test_replace_does_not_share_extras():
    m = ClientMessage(0, np.zeros(2, np.float32), extras={"a": 1})
    m2 = m.replace()
    m2.extras["b"] = 2
    assert "b" not in m.extras


def test_derived_seeds_are_stable_and_separated():
    c = ctx()
    assert c.derive_seed("q", 1) == ctx().derive_seed("q", 1)
    assert c.derive_seed("q", 1) != c.derive_seed("q", 2)
    assert c.derive_seed("q", 1) != c.derive_seed("p", 1)
    assert c.derive_seed("q", 1) != ctx(seed=8).derive_seed("q", 1)
    assert np.array_equal(c.rng("x").integers(0, 1 << 30, 5), ctx().rng("x").integers(0, 1 << 30, 5))


def test_errors():
    with pytest.raises(RoundFailed):
        PlainSum().aggregate([], ctx())
    with pytest.raises(ValueError, match="aggregation.weighting"):
        MeanStage(PlainSum(), "median")
    with pytest.raises(TypeError):
        MeanStage("not an aggregator")
    bad = messages()
    bad[1] = ClientMessage(1, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="client 1"):
        PlainSum().aggregate(bad, ctx())
    zero = [ClientMessage(0, np.ones(4, np.float32), weight=0.0)]
    with pytest.raises(RoundFailed):
        MeanStage(PlainSum(), "examples").aggregate(zero, ctx())
