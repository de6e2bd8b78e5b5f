"""The aggregation pipeline's contract: messages, round context, and composable stages.

Aggregation is built as a stack of small stages in the manner of TFF's aggregator factories
(clip -> weight -> quantize -> secure sum -> noise). Every stage has two halves:

* a **client half**, :meth:`Stage.client`, run by each client on its own message before upload;
* a **server half**, :meth:`Stage.server`, run by the server on the aggregate its inner
  aggregator returned.

Between them sits the stage's ``inner`` aggregator, ending in a sum (plaintext or secure).
A stage that must look at the messages themselves (a server-side norm threshold in plaintext
mode, proof verification in secure mode) overrides :meth:`Stage.aggregate`; it reports every
client it leaves out in :attr:`AggregateResult.rejected`.

A client that does not follow the protocol is modelled by an ``adversary`` attached to its
message: stages call ``adversary.client_step(stage, message, ctx, honest)`` instead of their
own client half, so an attacker can skip clipping, boost after clipping, or commit to one
vector and mask another. Honest clients leave ``adversary`` as ``None``.
"""
from __future__ import annotations

import abc
import dataclasses
import hashlib
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from rangeproof.blame import AggregationError, InvalidUpdate, RoundFailed  # project-wide classes (re-exported)

__all__ = [
    "AggregationError",
    "RoundFailed",
    "ClientMessage",
    "RoundContext",
    "AggregateResult",
    "Aggregator",
    "Stage",
    "ClientAdversary",
    "InvalidUpdate",
    "screen",
    "with_rejected",
]


@dataclasses.dataclass
class ClientMessage:
    """What one client hands to the pipeline, and what each client half transforms.

    Attributes:
      client_id: the client's integer id, unique within a round.
      vector: the payload. A flat ``float32`` model update when it enters the pipeline; stages
        may replace it (for example quantization turns it into unsigned integers).
      weight: the client's aggregation weight (its number of examples, for FedAvg).
      adversary: ``None`` for an honest client, else the object that plays its cheating steps.
      extras: stage-specific side data (commitments, proofs, keys), keyed by stage name.
    """

    client_id: int
    vector: np.ndarray
    weight: float = 1.0
    adversary: "ClientAdversary | None" = None
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)

    def replace(self, **changes: Any) -> "ClientMessage":
        """A copy with ``changes`` applied (``extras`` is copied, not shared)."""
        changes.setdefault("extras", dict(self.extras))
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class RoundContext:
    """Per-round facts shared by all stages, and where they record what they measured.

    Attributes:
      round_index: the training round, from 0.
      seed: the run's seed; stages derive their randomness from it with :meth:`rng`.
      dim: length of the flat model update.
      expected_clients: clients sampled for the round (the fixed denominator of the paper's code).
      measurements: numbers to log in this round's metrics row, keyed by name.
      events: human-readable notes (rejections, failed checks) for the run log.
    """

    round_index: int
    seed: int
    dim: int
    expected_clients: int
    measurements: dict[str, float] = dataclasses.field(default_factory=dict)
    events: list[str] = dataclasses.field(default_factory=list)

    def derive_seed(self, label: str, client_id: int | None = None) -> int:
        """A 64-bit seed for ``label`` (and ``client_id``) in this round, stable across runs."""
        text = f"sabre/v1/{self.seed}/{self.round_index}/{label}/{'-' if client_id is None else client_id}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")

    def rng(self, label: str, client_id: int | None = None) -> np.random.Generator:
        """A numpy generator private to ``label`` (and ``client_id``) in this round."""
        return np.random.Generator(np.random.PCG64(self.derive_seed(label, client_id)))

    def record(self, name: str, value: float) -> None:
        self.measurements[name] = float(value)


@dataclasses.dataclass
class AggregateResult:
    """What an aggregator returns to the stage above it.

    Attributes:
      vector: the aggregate (a sum below the mean stage, a mean above it).
      included: ids of the clients whose inputs are in ``vector``.
      weight_total: the sum of the included clients' weights.
      rejected: ids of clients left out, with the reason (dropped, failed proof, over threshold).
    """

    vector: np.ndarray
    included: list[int]
    weight_total: float
    rejected: dict[int, str] = dataclasses.field(default_factory=dict)

    def replace(self, **changes: Any) -> "AggregateResult":
        changes.setdefault("rejected", dict(self.rejected))
        return dataclasses.replace(self, **changes)


class ClientAdversary(Protocol):
    """A cheating client: decides what it uploads in place of a stage's honest client half."""

    def client_step(
        self,
        stage: "Stage",
        message: ClientMessage,
        ctx: RoundContext,
        honest: Callable[[ClientMessage, RoundContext], ClientMessage],
    ) -> ClientMessage:
        """Return the message to pass on; call ``honest(message, ctx)`` to behave honestly."""


class Aggregator(abc.ABC):
    """Turns the clients' messages into one :class:`AggregateResult`."""

    #: short, unique name used in measurements, extras and error messages
    name: str = "aggregator"

    @abc.abstractmethod
    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> AggregateResult:
        """Aggregate ``messages``; raise :class:`RoundFailed` when no result may be used."""

    def describe(self) -> list[str]:
        """The pipeline from this aggregator inwards, one line per stage (for logs)."""
        return [repr(self)]


class Stage(Aggregator):
    """A pipeline stage wrapping an ``inner`` aggregator: client half, inner, server half."""

    def __init__(self, inner: Aggregator):
        if not isinstance(inner, Aggregator):
            raise TypeError(f"{type(self).__name__}: inner must be an Aggregator, got {type(inner).__name__}")
        self.inner = inner

    def client(self, message: ClientMessage, ctx: RoundContext) -> ClientMessage:
        """The honest client half (default: pass through)."""
        return message

    def server(self, result: AggregateResult, ctx: RoundContext) -> AggregateResult:
        """The server half (default: pass through)."""
        return result

    def run_client(self, message: ClientMessage, ctx: RoundContext) -> ClientMessage:
        """The client half as this client plays it: honestly, or through its adversary."""
        if message.adversary is None:
            return self.client(message, ctx)
        return message.adversary.client_step(self, message, ctx, self.client)

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> AggregateResult:
        # a client whose half cannot produce a valid message (InvalidUpdate) is left out
        prepared, excluded = screen(messages, ctx, self.name, lambda m: self.run_client(m, ctx))
        return with_rejected(self.server(self.inner.aggregate(prepared, ctx), ctx), excluded)

    def describe(self) -> list[str]:
        return [repr(self), *self.inner.describe()]


def screen(messages: Sequence[ClientMessage], ctx: RoundContext, who: str,
           check: Callable[[ClientMessage], "ClientMessage | None"]) -> tuple[list[ClientMessage], dict[int, str]]:
    """Exclude, don't abort: run ``check`` on each message and leave out those it refuses.

    Args:
      messages: the round's messages.
      ctx: the round (each exclusion is logged in ``ctx.events``).
      who: the stage name, for the log.
      check: returns the message to keep (or ``None``: keep it unchanged), or raises
        :class:`~rangeproof.blame.InvalidUpdate` for a client that must be left out.

    Returns:
      ``(kept, {client_id: reason})``, in the input order.

    Raises:
      RoundFailed: (reason ``"all_rejected"``) every message was refused; ``blamed`` names them all.
    """
    kept: list[ClientMessage] = []
    rejected: dict[int, str] = {}
    for m in messages:
        try:
            out = check(m)
        except InvalidUpdate as exc:
            rejected[m.client_id] = exc.reason
            ctx.events.append(f"{who}: client {m.client_id} excluded ({exc.reason})")
            continue
        kept.append(m if out is None else out)
    if messages and not kept:
        raise RoundFailed("all_rejected", f"{who}: every client's update was refused", blamed=rejected)
    return kept, rejected


def with_rejected(result: AggregateResult, rejected: dict[int, str]) -> AggregateResult:
    """``result`` with ``rejected`` added to its ``rejected`` (the inner stages' reasons win)."""
    if not rejected:
        return result
    merged = dict(rejected)
    merged.update(result.rejected)
    return result.replace(rejected=merged)
