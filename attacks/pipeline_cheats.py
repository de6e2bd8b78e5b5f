"""Clients that cheat the aggregation pipeline itself, through the ``ClientAdversary`` hook.

A stage calls ``adversary.client_step(stage, message, ctx, honest)`` instead of its own client
half when a message carries an adversary (``fl.aggregation.base``). These objects play one
cheat at the stages they target, chosen by the stage's ``name``, and behave honestly
everywhere else.

Against plaintext client clipping (``client_clip``, :class:`fl.aggregation.robust.ClientClipStage`):

* :class:`SkipClip` - sends its update unclipped;
* :class:`BoostAfterClip` - clips honestly, then multiplies the clipped vector by ``factor``.

Both succeed: nothing checks a plaintext client clip.

Against the norm-proof stage (``norm_proof``, ``fl.aggregation.norm_proof.NormProofStage``), where
honest clients clip, quantize to integers ``x = trunc(s * v)``, commit and prove ``||x|| <= B``:

* :class:`SkipClip` - quantizes its *unclipped* update ``x'``, commits to ``x'`` honestly and
  attaches the proof it made for the clipped vector (it cannot prove a false statement): the
  proof does not verify against its commitment, so the server rejects it before the sum;
* :class:`BoostAfterClip` - the same with ``x' = factor * x``;
* :class:`CommitOther` - commits to and proves the honest ``x``, then hands ``factor * x`` to
  the secure sum for masking: every proof verifies, and the binding check after the sum
  (the sum of the commitments against the unmasked aggregate) fails the round;
* :class:`ProveOverBound` - clips to ``factor * M`` instead of ``M`` (``factor`` just above 1:
  1.001, 1.1, 1.5), commits to that vector and proves it with the project's real prover, its
  ``||x|| <= M`` check bypassed (the range proofs made on whatever values come out). The exact
  proofs reject it; the fast twin, which checks the vector itself, rejects it too.

In the fast twin (``secure=False``) the same cheaters' integer vectors are checked in plaintext.

Denial of service (issue 11): each of these is excluded or ignored and named, and the round goes
on with the other clients, in the secure pipeline and its fast twin alike:

* :class:`NanUpdate` - replaces its update by NaN before the first stage: the first check that
  reads it (a clipping stage, quantization, the norm proof) leaves the client out
  (``rejected``: ``malformed_update`` / ``non_finite_input``);
* :class:`OutOfRange` - at quantization, uploads integers outside ``[0, 2^k)``: the sum leaves it
  out (``out_of_range``);
* :class:`WrongShares` - plays the secure sum's protocol with a client that returns wrong Shamir
  shares when unmasking: the server names it (``secagg_blamed``) and ignores its shares; its own
  input, already in U3, stays in the sum (the fast twin has no shares: same model);
* :class:`BadBundles` - plays the secure sum's protocol with a client whose share bundles do not
  decrypt: its holders dispute them and the server leaves it out before anyone masks with it
  (``rejected``: ``excluded: disputed_shares``). The fast twin has no protocol, so there the
  cheater's update is summed: the two pipelines differ by design for this cheat.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable

import numpy as np

from fl.aggregation.base import ClientMessage, RoundContext, Stage
from fl.aggregation.norm_proof import EXTRA_KEY, FIELD_KEY, NormProofStage, clip_and_quantize, plain_commitment
from fl.aggregation.robust import ClientClipStage
from fl.aggregation.secure_sum import QuantizeStage
from rangeproof.group import point_to_bytes
from rangeproof.norm import commit_vector
from rangeproof.norm.l2 import L2Proof, exact_square_norm, projection_for
from rangeproof.norm.linf import LinfProof
from rangeproof.range_proof import RangeProof
from secagg.client import SecAggClient
from secagg.keys import decrypt_share, encrypt_share
from secagg.messages import MaskedInput
from secagg.shamir import SHARE_BYTES, SHARE_PRIME

__all__ = [
    "PipelineCheat",
    "FactorCheat",
    "SkipClip",
    "BoostAfterClip",
    "CommitOther",
    "ProveOverBound",
    "prove_unchecked",
    "build_cheat",
    "commit_with_stolen_proof",
    "scale_vector",
    "CLIP_STAGE",
    "PROOF_STAGE",
    "NanUpdate",
    "OutOfRange",
    "WrongShares",
    "BadBundles",
    "QUANTIZE_STAGE",
]

#: name of the client-side clipping stage
CLIP_STAGE = ClientClipStage.name
#: name of the norm-proof stage
PROOF_STAGE = NormProofStage.name
#: name of the quantization stage
QUANTIZE_STAGE = QuantizeStage.name

Honest = Callable[[ClientMessage, RoundContext], ClientMessage]


def scale_vector(vector: np.ndarray, factor: float) -> np.ndarray:
    """``factor * vector`` in the vector's own domain.

    Floats are scaled in float64 and cast back. Integers (the quantized domain) are scaled as
    integers with the dtype's wrap-around, which is how a cheater would craft a residue.
    """
    if np.issubdtype(vector.dtype, np.floating):
        return (vector.astype(np.float64) * factor).astype(vector.dtype)
    if np.issubdtype(vector.dtype, np.unsignedinteger):
        return (vector.astype(np.uint64) * np.uint64(int(round(factor)))).astype(vector.dtype)
    if np.issubdtype(vector.dtype, np.integer):
        return (vector.astype(np.int64) * int(round(factor))).astype(vector.dtype)
    raise TypeError(f"cannot scale a vector of dtype {vector.dtype}")


class PipelineCheat:
    """Base: honest at every stage except those named in ``targets``, where :meth:`cheat` runs.

    Args:
      targets: the ``name`` of each stage to cheat (default: the class's own).
    """

    targets: tuple[str, ...] = ()

    def __init__(self, targets: tuple[str, ...] | None = None):
        if targets is not None:
            self.targets = tuple(targets)
        #: how many times the cheat was played (for tests and logs)
        self.played = 0

    def client_step(self, stage: Stage, message: ClientMessage, ctx: RoundContext, honest: Honest) -> ClientMessage:
        """Play the cheat at a target stage, else behave honestly."""
        if getattr(stage, "name", None) not in self.targets:
            return honest(message, ctx)
        self.played += 1
        return self.cheat(stage, message, ctx, honest)

    def cheat(self, stage: Stage, message: ClientMessage, ctx: RoundContext, honest: Honest) -> ClientMessage:
        raise NotImplementedError


def commit_with_stolen_proof(stage: Stage, message: ClientMessage, x_bad: np.ndarray, ctx: RoundContext,
                             honest: Honest) -> ClientMessage:
    """At the norm-proof stage: commit honestly to ``x_bad`` but attach the honest vector's proof.

    Args:
      stage: the norm-proof stage.
      message: the cheater's float message as it reached the stage.
      x_bad: the integer vector the cheater wants summed.
      ctx: the round.
      honest: the stage's honest client half (gives a valid proof for the clipped vector).

    Returns:
      The message carrying ``x_bad``; under ``secure`` its commitment is to ``x_bad`` and its
      proof belongs to another commitment.
    """
    proved = honest(message, ctx)
    x_bad = np.asarray(x_bad, dtype=np.int64)
    extras = dict(proved.extras)
    if not stage.secure:  # the fast twin: a commitment is a digest of the vector and a fresh opening
        opening = ctx.derive_seed("cheat_commitment", message.client_id).to_bytes(8, "little")
        extras[EXTRA_KEY] = {"commitment": plain_commitment(x_bad, opening), "opening": opening,
                             "proof": proved.extras[EXTRA_KEY]["proof"]}
        return proved.replace(vector=x_bad, extras=extras)
    commitment, blinding = commit_vector(x_bad)
    extras[EXTRA_KEY] = {"commitment": point_to_bytes(commitment), "proof": proved.extras[EXTRA_KEY]["proof"]}
    extras[FIELD_KEY] = [blinding]
    return proved.replace(vector=x_bad, extras=extras)


class FactorCheat(PipelineCheat):
    """A cheat with one strength, ``factor`` (the boost, the multiplier, how far past the bound)."""

    def __init__(self, factor: float, targets: tuple[str, ...] | None = None):
        super().__init__(targets)
        self.factor = float(factor)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(factor={self.factor})"


class SkipClip(PipelineCheat):
    """Skip clipping: the plaintext client clip, or the clip inside the norm-proof stage."""

    targets = (CLIP_STAGE, PROOF_STAGE)

    def cheat(self, stage, message, ctx, honest):
        if stage.name == CLIP_STAGE:
            return message
        unclipped = np.trunc(np.asarray(message.vector, dtype=np.float64) * float(stage.scale)).astype(np.int64)
        return commit_with_stolen_proof(stage, message, unclipped, ctx, honest)

    def __repr__(self) -> str:
        return "SkipClip()"


class BoostAfterClip(FactorCheat):
    """Clip honestly, then multiply the clipped update by ``factor``.

    Args:
      factor: the boost applied after clipping.
      targets: stage names (default: the client clipping and norm-proof stages).
    """

    targets = (CLIP_STAGE, PROOF_STAGE)

    def cheat(self, stage, message, ctx, honest):
        if stage.name == CLIP_STAGE:
            clipped = honest(message, ctx)
            return clipped.replace(vector=scale_vector(clipped.vector, self.factor))
        x = clip_and_quantize(message.vector, stage.bound, stage.scale, stage.norm)
        return commit_with_stolen_proof(stage, message, scale_vector(x, self.factor), ctx, honest)


class CommitOther(FactorCheat):
    """Commit to (and prove) the honest vector, then pass on ``factor`` times it for masking.

    Args:
      factor: the multiplier of the vector actually masked.
      targets: stage names (default: the norm-proof stage).
    """

    targets = (PROOF_STAGE,)

    def cheat(self, stage, message, ctx, honest):
        proved = honest(message, ctx)
        return proved.replace(vector=scale_vector(proved.vector, self.factor))


@contextlib.contextmanager
def _unchecked_range_proofs():
    """While active, ``RangeProof.prove`` proves whatever it is given (``RangeProof._prove``: a
    value outside ``[0, 2^n)`` is committed in full, its bits are its low ``n`` bits), as a
    cheating client's modified prover would."""
    original = RangeProof.__dict__["prove"]

    def forced(cls, transcript, values, blindings, n_bits, *, rng=None):
        return cls._prove(transcript, [int(v) for v in values], [int(b) for b in blindings], n_bits, rng)

    RangeProof.prove = classmethod(forced)
    try:
        yield
    finally:
        RangeProof.prove = original


class _NoClock:
    def lap(self, phase: str) -> None:
        pass


def prove_unchecked(statement, x: np.ndarray):
    """``(commitment, blinding, proof)`` for ``x`` by the real norm prover with its bound check
    bypassed: the computation of ``L2Proof.prove`` / ``LinfProof.prove`` after their checks."""
    x = np.asarray(x, dtype=np.int64)
    C, r = commit_vector(x)
    with _unchecked_range_proofs():
        if statement.norm == "linf":
            return C, r, LinfProof._prove(statement, [int(v) for v in x.tolist()], C, r, None)
        prm = statement.l2_params()
        t = statement.transcript(C)
        proj = projection_for(t, prm, statement.dim)
        proof = L2Proof._finish(t, statement, prm, proj, x.tolist(), proj.apply(x), exact_square_norm(x),
                                C, r, None, _NoClock())
    return C, r, proof


class ProveOverBound(FactorCheat):
    """Clip to ``factor * M`` instead of ``M`` and prove the result with the real prover, its
    bound check bypassed (the client's own prover, modified). The clipped update is quantized
    with magnitudes rounded up (``sign(v) ceil(s |v|)``), so its integer norm is at least
    ``factor * s * M``: over the integer bound for any ``factor > 1`` once ``s M`` is an integer
    (truncation could bring 1.001 M back under the bound).

    Args:
      factor: how far past the bound the cheater clips (1.001, 1.1, 1.5, ...).
      targets: stage names (default: the norm-proof stage).
    """

    targets = (PROOF_STAGE,)

    def cheat(self, stage, message, ctx, honest):
        x = self.quantize_over(message.vector, stage.bound, stage.scale, stage.norm)
        if not stage.secure:  # the twin's "proof" attests whatever the vector is
            return stage.commit_and_prove(message, x, ctx)
        C, r, proof = prove_unchecked(stage.statement(ctx, message.client_id), x)
        extras = dict(message.extras)
        extras[EXTRA_KEY] = {"commitment": point_to_bytes(C), "proof": proof.to_bytes()}
        extras[FIELD_KEY] = [r]
        return message.replace(vector=x, extras=extras)

    def quantize_over(self, vector: np.ndarray, bound: float, scale: float, norm: str) -> np.ndarray:
        """The cheater's integer vector: ``vector`` clipped to ``factor * bound`` in ``norm``,
        magnitudes rounded up."""
        v = np.asarray(vector, dtype=np.float64)
        limit = bound * self.factor
        if norm == "l2":
            n = float(np.linalg.norm(v))
            if n > limit:
                v = v * (limit / n)
        else:
            v = np.clip(v, -limit, limit)
        return (np.sign(v) * np.ceil(np.abs(v) * scale)).astype(np.int64)


class NanUpdate(PipelineCheat):
    """Replace the update by NaN before the first stage it meets (a denial-of-service attempt)."""

    def client_step(self, stage, message, ctx, honest):
        if np.issubdtype(message.vector.dtype, np.floating) and not np.isnan(message.vector).all():
            self.played += 1
            message = message.replace(vector=np.full_like(message.vector, np.nan))
        return honest(message, ctx)

    def __repr__(self) -> str:
        return "NanUpdate()"


class OutOfRange(PipelineCheat):
    """At quantization: upload integers outside the ring ``[0, 2^k)`` instead of the honest ones."""

    targets = (QUANTIZE_STAGE,)

    def cheat(self, stage, message, ctx, honest):
        q = honest(message, ctx)
        return q.replace(vector=np.full(q.vector.shape, np.uint64(1) << np.uint64(stage.spec.bits), dtype=np.uint64)
                         if stage.spec.bits < 64 else q.vector)

    def __repr__(self) -> str:
        return "OutOfRange()"


class WrongShares(PipelineCheat):
    """Honest in every stage; inside the secure sum it plays a protocol client that returns wrong
    Shamir shares when unmasking (``secagg_client``, read by ``fl.aggregation.secure_sum.SecureSum``)."""

    @property
    def secagg_client(self) -> type:
        class LyingHolder(SecAggClient):
            def unmask(self, msg):
                resp = super().unmask(msg)
                return dataclasses.replace(resp, shares=tuple((p, k, (v + 1) % SHARE_PRIME) for p, k, v in resp.shares))

        return LyingHolder

    def __repr__(self) -> str:
        return "WrongShares()"


class BadBundles(PipelineCheat):
    """Honest in every stage; inside the secure sum it plays a protocol client whose share
    bundles to its holders do not decrypt (``secagg_client``, read by ``fl.aggregation.secure_sum.SecureSum``)."""

    @property
    def secagg_client(self) -> type:
        class GarbageDealer(SecAggClient):
            def share_keys(self, msg):
                out = super().share_keys(msg)
                return dataclasses.replace(out, ciphertexts=tuple((v, bytes([b[0] ^ 1]) + b[1:]) for v, b in out.ciphertexts))

        return GarbageDealer

    def __repr__(self) -> str:
        return "BadBundles()"


class OffPolynomial(PipelineCheat):
    """Honest in every stage; inside the secure sum it plays a protocol client that deals every
    holder a self-mask share off the polynomial it committed to (the share plus one, in a bundle
    that decrypts): only the holders' Feldman check at receipt can see it."""

    @property
    def secagg_client(self) -> type:
        class OffPolynomialDealer(SecAggClient):
            def share_keys(self, msg):
                out = super().share_keys(msg)
                cts = []
                for v, ct in out.ciphertexts:
                    pt = decrypt_share(self._enc_keys[v], self.round_id, self.id, v, ct)
                    b = (int.from_bytes(pt[4 + SHARE_BYTES:], "big") + 1) % SHARE_PRIME
                    pt = pt[:4 + SHARE_BYTES] + b.to_bytes(SHARE_BYTES, "big")
                    cts.append((v, encrypt_share(self._enc_keys[v], self.round_id, self.id, v, pt)))
                return dataclasses.replace(out, ciphertexts=tuple(cts))

        return OffPolynomialDealer

    def __repr__(self) -> str:
        return "OffPolynomial()"


class DuplicateMessages(PipelineCheat):
    """Honest in every stage; inside the secure sum it plays a protocol client that sends its
    masked input twice (``extra_messages``, the hook the in-process driver delivers)."""

    @property
    def secagg_client(self) -> type:
        class Resender(SecAggClient):
            def extra_messages(self, step, msg):
                return (msg,) if isinstance(msg, MaskedInput) else ()

        return Resender

    def __repr__(self) -> str:
        return "DuplicateMessages()"


def build_cheat(kind: str, factor: float) -> PipelineCheat | None:
    """The cheat named by ``attack.cheat`` (``None`` for ``"none"``).

    Raises:
      ValueError: unknown kind.
    """
    if kind == "none":
        return None
    if kind == "skip_clip":
        return SkipClip()
    if kind == "boost_after_clip":
        return BoostAfterClip(factor)
    if kind == "commit_other":
        return CommitOther(factor)
    if kind == "prove_over_bound":
        return ProveOverBound(factor)
    if kind == "nan_update":
        return NanUpdate()
    if kind == "out_of_range":
        return OutOfRange()
    if kind == "wrong_shares":
        return WrongShares()
    if kind == "bad_bundles":
        return BadBundles()
    if kind == "off_polynomial":
        return OffPolynomial()
    if kind == "duplicate_messages":
        return DuplicateMessages()
    raise ValueError(f"attack.cheat: unknown cheat {kind!r}")
