"""Ways to hand the verifier something other than a proof's bytes, found by attacking the API.

A proof object is verified through its encoding only; the pipeline stage takes bytes only; the
fast twin decides the bound on the committed vector itself; statements that a double cannot tell
apart are refused; proofs are bound to their session; parsers refuse what they can refuse early.
"""
import random

import numpy as np
import pytest

from fl.aggregation import ClientMessage, MeanStage, RoundContext
from rangeproof.errors import EncodingError, VerificationError
from rangeproof.group import point_to_bytes
from rangeproof.norm import L2Proof, LinfProof, NormStatement, commit_and_prove, commit_vector, prove, verify, verify_batch
from rangeproof.norm.batch import proof_from_bytes
from fl.aggregation.norm_proof import EXTRA_KEY, ExactIntegerSum, NormProofStage, clip_and_quantize, plain_commitment

D, M = 64, 1 << 10


def stmt(**kw):
    args = dict(round_id=3, client_id=2, dim=D, norm="l2", bound=M, scale=1024.0)
    args.update(kw)
    return NormStatement(**args)


def honest(seed=0, norm=0.8 * M):
    x = np.random.default_rng(seed).normal(size=D)
    return np.trunc(x * (norm / np.linalg.norm(x))).astype(np.int64)


class LyingProof(L2Proof):
    """A real proof class whose methods claim that it verifies, whatever it is asked."""

    __slots__ = ()

    def verify(self, statement, commitment):
        return None

    def add_to(self, acc, statement, commitment, *, timings=None):
        return None


def test_a_crafted_proof_object_is_verified_through_its_bytes():
    st = stmt()
    rnd = random.Random(1)
    C_good, r_good = commit_vector(honest(), rng=rnd.getrandbits)
    proof = prove(st, honest(), C_good, r_good, rng=rnd.getrandbits)
    big = honest(seed=2, norm=8 * M)
    C_bad, _ = commit_vector(big, rng=rnd.getrandbits)
    crafted = L2Proof.from_bytes(proof.to_bytes())
    crafted.__class__ = LyingProof  # isinstance(crafted, L2Proof) still holds
    with pytest.raises(VerificationError):
        verify(st, C_bad, crafted)
    assert verify_batch([(st, C_bad, crafted), (st, C_good, proof)]) == [False, True]
    # the object's own encoding is what counts: against its own commitment it verifies
    verify(st, C_good, crafted)


def test_a_broken_proof_object_fails_alone_in_a_batch():
    st = stmt()
    C, r, proof = commit_and_prove(st, honest(), rng=random.Random(3).getrandbits)
    broken = L2Proof.from_bytes(proof.to_bytes())
    broken.V = None
    with pytest.raises(EncodingError):
        verify(st, C, broken)
    assert verify_batch([(st, C, broken), (st, C, proof), (st, C, object())]) == [False, True, False]


def updates(n, seed=0):
    rng = np.random.default_rng(seed)
    return [ClientMessage(i, (rng.normal(size=D) * 0.05).astype(np.float32)) for i in range(n)]


def ctx():
    return RoundContext(round_index=1, seed=11, dim=D, expected_clients=3)


class ObjectProof:
    """Attaches its valid proof as a parsed object instead of bytes."""

    def client_step(self, st, message, ctx, honest):
        out = honest(message, ctx)
        if not isinstance(st, NormProofStage):
            return out
        blob = dict(out.extras[EXTRA_KEY])
        blob["proof"] = proof_from_bytes(st.statement(ctx, message.client_id), blob["proof"])
        return out.replace(extras={**out.extras, EXTRA_KEY: blob})


class ForgedAttestation:
    """Fast twin: commits to its unclipped update and attests it itself."""

    def client_step(self, st, message, ctx, honest):
        if not isinstance(st, NormProofStage):
            return honest(message, ctx)
        x = np.trunc(np.asarray(message.vector, dtype=np.float64) * st.scale * 50).astype(np.int64)
        opening = b"\x01" * 8
        digest = plain_commitment(x, opening)
        extras = {**message.extras, EXTRA_KEY: {"commitment": digest, "opening": opening,
                                                "proof": {"attests": digest, "vector": x, "in_bound": True}}}
        return message.replace(vector=x, extras=extras)


def test_the_stage_takes_proof_bytes_only():
    msgs = updates(3)
    msgs[1].adversary = ObjectProof()
    st = NormProofStage(ExactIntegerSum(), bound=0.5, norm="l2", scale=4096.0)
    out = MeanStage(st, "uniform").aggregate(msgs, ctx())
    assert out.rejected == {1: "norm_proof_missing_or_malformed"} and sorted(out.included) == [0, 2]


def test_the_twin_decides_the_bound_itself():
    msgs = updates(3, seed=4)
    msgs[2].adversary = ForgedAttestation()
    st = NormProofStage(ExactIntegerSum(), bound=0.5, norm="l2", scale=4096.0, secure=False)
    out = MeanStage(st, "uniform").aggregate(msgs, ctx())
    assert out.rejected == {2: "norm_proof_failed"} and sorted(out.included) == [0, 1]


@pytest.mark.parametrize("scale", [2 ** 53 + 1, True, float("nan"), 0.0, -1.0])
def test_scales_a_double_cannot_hold_are_refused(scale):
    with pytest.raises(ValueError):
        stmt(scale=scale)


def test_a_proof_is_bound_to_its_session():
    st = stmt(session=b"run-a")
    C, _, proof = commit_and_prove(st, honest(), rng=random.Random(5).getrandbits)
    verify(st, C, proof.to_bytes())
    with pytest.raises(VerificationError):
        verify(stmt(session=b"run-b"), C, proof.to_bytes())
    with pytest.raises(ValueError):
        stmt(session=b"x" * 65)


def test_parsers_refuse_early():
    st = stmt()
    C, _, proof = commit_and_prove(st, honest(), rng=random.Random(6).getrandbits)
    data = bytearray(proof.to_bytes())
    data[5] ^= 1  # the count of range-checked projections
    with pytest.raises(EncodingError):
        L2Proof.from_bytes(bytes(data))
    lst = NormStatement(round_id=1, client_id=1, dim=4, norm="linf", bound=50, scale=1.0)
    x = np.array([1, -2, 3, 50])
    C, _, lp = commit_and_prove(lst, x)
    blob = lp.to_bytes()
    with pytest.raises(EncodingError, match="dimension"):
        LinfProof.from_bytes(blob, 5)
    with pytest.raises(EncodingError):
        proof_from_bytes(NormStatement(round_id=1, client_id=1, dim=5, norm="linf", bound=50, scale=1.0), blob)
    verify(lst, C, blob)
    assert point_to_bytes(C)
