"""Norm defenses: client-side L2 clipping, and the plaintext server-side baselines.

* :class:`ClientClipStage` - every honest client clips its own update to L2 norm ``bound``
  before it enters the rest of the pipeline (TFF's record preprocessing in the authors' code).
  It works under secure aggregation because no one but the client reads the update, but nothing
  *checks* it: a cheating client (``ClientMessage.adversary``) may skip it. Under SecAgg the
  norm-proof stage is what enforces the bound.
* :class:`ServerClipStage` - the server reads every update and clips it to ``bound``
  (Sun et al.'s norm-clipping defense as a plaintext baseline: impossible under SecAgg).
* :class:`ServerThresholdStage` - the server reads every update and rejects those with norm
  above ``bound`` (norm thresholding, the plaintext twin of rejecting a failed norm proof).

Clipping: ``u <- u * min(1, bound / ||u||_2)``, with ``||u||_2`` computed in float64 so the
result is the same on every run. Each stage records, in ``ctx.measurements``:

* ``<name>_bound`` - the bound;
* ``<name>_clipped`` / ``<name>_rejected`` - how many clients were clipped / rejected;
* ``norm_honest_p50``, ``norm_honest_p90``, ``norm_honest_max`` and ``norm_attacker_max`` -
  update norms of the clients this stage saw, split by the simulation's ground-truth label
  ``extras["attacker"]`` (set by ``attacks``; never used for a decision). The server stages
  could compute these; under client clipping they are simulation diagnostics only.

:class:`NormProbeStage` records only those norms and changes nothing: it gives runs without a
norm defense the same columns (a simulation diagnostic; no server of a secure run sees them).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from rangeproof.blame import InvalidUpdate

from .base import AggregateResult, Aggregator, ClientMessage, RoundContext, RoundFailed, Stage, screen, with_rejected

__all__ = [
    "ClientClipStage",
    "ServerClipStage",
    "ServerThresholdStage",
    "NormProbeStage",
    "l2_norm",
    "clip_l2",
    "record_norms",
    "ATTACKER_EXTRA",
    "MalformedUpdate",
]

#: key of the simulation's ground-truth attacker label in ``ClientMessage.extras``
ATTACKER_EXTRA = "attacker"


class MalformedUpdate(InvalidUpdate, ValueError):
    """A client's float update is not finite: no norm can be checked, so that client is left out.

    An :class:`~rangeproof.blame.InvalidUpdate` (reason ``"malformed_update"``, ``blamed``: the
    client): the stages exclude the client and the round goes on with the others; also a
    ``ValueError`` for callers that check values.
    """

    reason = "malformed_update"

    def __init__(self, message: str, client: int | None = None):
        super().__init__(message, blamed=() if client is None else (client,))


def l2_norm(vector: np.ndarray) -> float:
    """The L2 norm of a flat vector, accumulated in float64."""
    v = np.asarray(vector, dtype=np.float64)
    return float(math.sqrt(float(np.dot(v, v))))


def clip_l2(vector: np.ndarray, bound: float, norm: float | None = None) -> tuple[np.ndarray, bool]:
    """``vector * min(1, bound / ||vector||)`` in the vector's dtype, and whether it was clipped.

    Args:
      vector: a flat float vector.
      bound: the L2 bound, positive.
      norm: ``l2_norm(vector)`` when the caller already has it (it is not recomputed).

    Returns:
      ``(clipped vector, was_clipped)``; the input object itself when it was within the bound.
    """
    if norm is None:
        norm = l2_norm(vector)
    if norm <= bound:
        return vector, False
    return (np.asarray(vector, dtype=np.float64) * (bound / norm)).astype(vector.dtype), True


def _check_bound(stage: str, bound: float) -> float:
    bound = float(bound)
    if not (math.isfinite(bound) and bound > 0):
        raise ValueError(f"{stage}: bound must be a positive finite number, got {bound!r}")
    return bound


def _check_float(stage: str, m: ClientMessage) -> None:
    if not np.issubdtype(m.vector.dtype, np.floating) or m.vector.ndim != 1:
        raise ValueError(
            f"{stage}: client {m.client_id} sent a {m.vector.dtype} vector of shape {m.vector.shape}; "
            "norm stages need the flat float update (place them outside quantization)"
        )
    if not np.all(np.isfinite(m.vector)):
        raise MalformedUpdate(f"{stage}: client {m.client_id} sent a non-finite update", m.client_id)


def record_norms(messages: Sequence[ClientMessage], ctx: RoundContext, norms: Sequence[float] | None = None) -> None:
    """Record honest norm percentiles and the largest attacker norm of ``messages``.

    Uses the ground-truth label ``extras["attacker"]`` (measurement only).

    Args:
      messages: the messages.
      ctx: the round, where the figures are recorded.
      norms: ``l2_norm`` of each message's vector, in order, when the caller already has them.
    """
    if norms is None:
        norms = [l2_norm(m.vector) for m in messages]
    honest = [n for m, n in zip(messages, norms) if not m.extras.get(ATTACKER_EXTRA)]
    attack = [n for m, n in zip(messages, norms) if m.extras.get(ATTACKER_EXTRA)]
    if honest:
        ctx.record("norm_honest_p50", float(np.percentile(honest, 50)))
        ctx.record("norm_honest_p90", float(np.percentile(honest, 90)))
        ctx.record("norm_honest_max", float(max(honest)))
    if attack:
        ctx.record("norm_attacker_max", float(max(attack)))


class ClientClipStage(Stage):
    """Each client clips its update to L2 norm ``bound`` (a cheater may skip it).

    Args:
      inner: the rest of the pipeline.
      bound: the L2 bound M.
    """

    name = "client_clip"

    def __init__(self, inner: Aggregator, bound: float):
        super().__init__(inner)
        self.bound = _check_bound("aggregation.norm_bound", bound)

    def client(self, message: ClientMessage, ctx: RoundContext) -> ClientMessage:
        _check_float(self.name, message)
        clipped, _ = clip_l2(message.vector, self.bound)
        return message.replace(vector=clipped)

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> AggregateResult:
        # the honest half refuses a non-finite update: that client is left out, the round goes on
        prepared, excluded = screen(messages, ctx, self.name, lambda m: self.run_client(m, ctx))
        sent = [m for m in messages if m.client_id not in excluded]
        record_norms(sent, ctx)
        clipped = sum(1 for before, after in zip(sent, prepared) if after.vector is not before.vector)
        ctx.record(f"{self.name}_bound", self.bound)
        ctx.record(f"{self.name}_clipped", clipped)
        return with_rejected(self.server(self.inner.aggregate(prepared, ctx), ctx), excluded)

    def __repr__(self) -> str:
        return f"ClientClipStage(bound={self.bound})"


class ServerClipStage(Stage):
    """The server reads each update and clips it to ``bound`` (plaintext baseline).

    Args:
      inner: the rest of the pipeline.
      bound: the L2 bound.
    """

    name = "server_clip"

    def __init__(self, inner: Aggregator, bound: float):
        super().__init__(inner)
        self.bound = _check_bound("aggregation.server_clip", bound)

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> AggregateResult:
        messages, excluded = screen(messages, ctx, self.name, lambda m: _check_float(self.name, m))
        norms = [l2_norm(m.vector) for m in messages]
        prepared, clipped = [], 0
        for m, norm in zip(messages, norms):
            vector, was = clip_l2(m.vector, self.bound, norm)
            clipped += int(was)
            prepared.append(m if not was else m.replace(vector=vector))
        record_norms(messages, ctx, norms)
        ctx.record(f"{self.name}_bound", self.bound)
        ctx.record(f"{self.name}_clipped", clipped)
        return with_rejected(self.inner.aggregate(prepared, ctx), excluded)

    def __repr__(self) -> str:
        return f"ServerClipStage(bound={self.bound})"


class ServerThresholdStage(Stage):
    """The server reads each update and rejects those with L2 norm above ``bound``.

    Rejected clients appear in :attr:`AggregateResult.rejected` with reason
    ``"norm_over_threshold"``. Without noise they are left out, and if every client is rejected
    the round fails. With ``zero_rejected`` (the builder sets it whenever noise is on) a rejected
    update is replaced by the zero vector instead of being left out: the summand is then
    ``x if ||x|| <= bound else 0``, within the bound, the rest of the pipeline (noise shares
    included) runs as for any client, and a round whose every update is rejected releases the
    noise on a zero sum over the same public denominator. A round never fails for a reason the
    clients' data decides, so the model sequence does not reveal it outside the noise.

    Args:
      inner: the rest of the pipeline.
      bound: the L2 threshold.
      zero_rejected: replace rejected updates by zeros rather than leaving them out.
    """

    name = "server_threshold"
    REASON = "norm_over_threshold"

    def __init__(self, inner: Aggregator, bound: float, *, zero_rejected: bool = False):
        super().__init__(inner)
        self.bound = _check_bound("aggregation.server_threshold", bound)
        self.zero_rejected = bool(zero_rejected)

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> AggregateResult:
        messages, excluded = screen(messages, ctx, self.name, lambda m: _check_float(self.name, m))
        norms = [l2_norm(m.vector) for m in messages]
        kept, rejected = [], dict(excluded)
        for m, norm in zip(messages, norms):
            if norm > self.bound:
                rejected[m.client_id] = self.REASON
                ctx.events.append(f"{self.name}: rejected client {m.client_id} (norm {norm:.4g} > {self.bound:g})")
                if self.zero_rejected:
                    kept.append(m.replace(vector=np.zeros_like(m.vector)))
            else:
                kept.append(m)
        record_norms(messages, ctx, norms)
        ctx.record(f"{self.name}_bound", self.bound)
        ctx.record(f"{self.name}_rejected", len(rejected))
        if not kept:
            raise RoundFailed("all_rejected", f"{self.name}: every client's update exceeds the norm threshold {self.bound:g}")
        result = self.inner.aggregate(kept, ctx)
        merged = dict(result.rejected)
        merged.update(rejected)
        included = [c for c in result.included if c not in rejected]
        return result.replace(rejected=merged, included=included)

    def __repr__(self) -> str:
        return f"ServerThresholdStage(bound={self.bound}{', zero_rejected=True' if self.zero_rejected else ''})"


class NormProbeStage(Stage):
    """Records the update norms of the messages passing through; changes nothing.

    A simulation diagnostic (see the module docstring): place it outermost to log the clients'
    raw update norms in runs without a norm stage.
    """

    name = "norm_probe"

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> AggregateResult:
        messages, excluded = screen(messages, ctx, self.name, lambda m: _check_float(self.name, m))
        record_norms(messages, ctx)
        return with_rejected(self.inner.aggregate(messages, ctx), excluded)

    def __repr__(self) -> str:
        return "NormProbeStage()"
