"""Exclude, don't abort, in the aggregation pipeline: a client whose update is not finite or
leaves the ring is left out and named in ``rejected``; the secure sum and its fast twin make the
same decisions and give the same bits."""
from __future__ import annotations

import numpy as np
import pytest

from fl.aggregation import ClientMessage, MeanStage, RoundContext, RoundFailed
from fl.aggregation.secure_sum import ModularPlainSum, QuantizeStage, SecureSum

DIM = 7


class OutOfRing:
    """Skips quantization and uploads integers outside [0, 2^k)."""

    def client_step(self, stage, message, ctx, honest):
        out = honest(message, ctx)
        if isinstance(stage, QuantizeStage):
            return out.replace(vector=np.full(DIM, 1 << 20, dtype=np.uint32))
        return out


def _pipeline(secure: bool, n: int):
    inner = SecureSum(bits=16, deterministic_secrets=True) if secure else ModularPlainSum(bits=16)
    return MeanStage(QuantizeStage(inner, bits=16, clip_range=1.0, num_clients=n), weighting="uniform")


def _messages(n, nan=(), cheat=()):
    rng = np.random.default_rng(3)
    out = []
    for c in range(n):
        v = rng.uniform(-0.1, 0.1, DIM).astype(np.float32)
        if c in nan:
            v[2] = np.nan
        out.append(ClientMessage(c, v, adversary=OutOfRing() if c in cheat else None))
    return out


@pytest.mark.parametrize("secure", [False, True], ids=["fast-twin", "secure"])
def test_bad_updates_excluded_round_goes_on(secure):
    n = 8
    ctx = RoundContext(round_index=0, seed=1, dim=DIM, expected_clients=n)
    res = _pipeline(secure, n).aggregate(_messages(n, nan={1}, cheat={4}), ctx)
    assert res.rejected == {1: "non_finite_input", 4: "out_of_range"}
    assert sorted(res.included) == [0, 2, 3, 5, 6, 7]
    assert any("client 1 excluded (non_finite_input)" in e for e in ctx.events)


def test_fast_twin_and_secure_sum_same_decisions_same_bits():
    n = 8
    msgs = _messages(n, nan={0, 5}, cheat={3})
    a = _pipeline(False, n).aggregate(msgs, RoundContext(0, 1, DIM, n))
    b = _pipeline(True, n).aggregate(msgs, RoundContext(0, 1, DIM, n))
    assert a.rejected == b.rejected and sorted(a.included) == sorted(b.included)
    assert np.array_equal(a.vector, b.vector)


def test_everyone_bad_is_a_failed_round_naming_them():
    n = 4
    with pytest.raises(RoundFailed) as info:
        _pipeline(False, n).aggregate(_messages(n, nan=set(range(n))), RoundContext(0, 1, DIM, n))
    assert info.value.reason == "all_rejected" and info.value.blamed == (0, 1, 2, 3)


class SmallOrderKey:
    """Honest in every stage; in the protocol it advertises an all-zero (small-order) X25519 key."""

    def client_step(self, stage, message, ctx, honest):
        return honest(message, ctx)

    @property
    def secagg_client(self):
        import dataclasses

        from secagg.client import SecAggClient

        class BadKey(SecAggClient):
            def advertise_keys(self):
                return dataclasses.replace(super().advertise_keys(), c_pk=bytes(32))

        return BadKey


def test_a_refused_protocol_message_is_named_with_its_reason():
    n = 6
    msgs = _messages(n)
    msgs[2] = ClientMessage(msgs[2].client_id, msgs[2].vector, adversary=SmallOrderKey())
    ctx = RoundContext(0, 1, DIM, n)
    res = _pipeline(True, n).aggregate(msgs, ctx)
    assert res.rejected == {2: "excluded: unusable_key"} and sorted(res.included) == [0, 1, 3, 4, 5]
    twin = _pipeline(False, n).aggregate([m for m in msgs if m.client_id != 2], RoundContext(0, 1, DIM, n))
    assert np.array_equal(res.vector, twin.vector)


@pytest.mark.parametrize("secure", [False, True], ids=["fast-twin", "secure"])
def test_norm_proof_stage_excludes_a_non_finite_update(secure):
    """The norm-proof stage quantizes by itself: a NaN update must not become -2^63 (a vector that
    could pass as a valid one after the shrinking loop); the client is left out instead."""
    from fl.aggregation.norm_proof import ExactIntegerSum, NormProofStage

    n = 4
    msgs = _messages(n, nan={2})
    stage = NormProofStage(ExactIntegerSum(), bound=1.0, norm="linf", scale=64.0, secure=secure)
    ctx = RoundContext(0, 1, DIM, n)
    res = stage.aggregate(msgs, ctx)
    assert res.rejected == {2: "non_finite_input"} and sorted(res.included) == [0, 1, 3]


class WrongShares:
    """Honest in every stage; in the protocol it returns wrong shares when unmasking."""

    def client_step(self, stage, message, ctx, honest):
        return honest(message, ctx)

    @property
    def secagg_client(self):
        from secagg_cheaters import LyingHolder

        return LyingHolder


def test_wrong_shares_in_the_pipeline_named_then_too_many_fail_closed():
    from secagg.errors import UnrecoverableSecret

    n = 9  # t = 7: a liar's own secret keeps 9 - k honest shares
    ids = list(range(10, 10 + n))  # pipeline ids differ from the protocol's 1..n

    def msgs(liars):
        rng = np.random.default_rng(4)
        return [ClientMessage(c, rng.uniform(-0.1, 0.1, DIM).astype(np.float32),
                              adversary=WrongShares() if c in liars else None) for c in ids]

    ctx = RoundContext(0, 1, DIM, n)
    res = _pipeline(True, n).aggregate(msgs({11, 15}), ctx)
    assert res.rejected == {} and sorted(res.included) == ids and ctx.measurements["secagg_blamed"] == 2
    assert any("client 11 blamed (wrong_share)" in e for e in ctx.events)
    twin = _pipeline(False, n).aggregate(msgs({11, 15}), RoundContext(0, 1, DIM, n))
    assert np.array_equal(res.vector, twin.vector)
    with pytest.raises(UnrecoverableSecret) as info:
        _pipeline(True, n).aggregate(msgs({11, 15, 17}), RoundContext(0, 1, DIM, n))
    assert isinstance(info.value, RoundFailed) and info.value.blamed == (11, 15, 17)
