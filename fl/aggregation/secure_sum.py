"""Secure aggregation as stages of the ``fl.aggregation`` pipeline.

* :class:`QuantizeStage` - floats to Z_(2^k) and back (client half / server half);
* :class:`SecureSum` - the innermost sum, computed by the real protocol (in-process driver);
  unsigned inputs in ``[0, 2^k)`` give the modular sum (unsigned); signed integer inputs are
  taken modulo 2^k and the sum is returned as signed int64 (exact while it stays within
  ``[-2^(k-1), 2^(k-1))``; the norm-proof stage, which feeds signed vectors, bounds them);
* :class:`ModularPlainSum` - its plaintext twin (same result bits), for tests and baselines;
* :func:`secure_pipeline` - the usual recipe ``MeanStage(QuantizeStage(SecureSum(...)))``.

Side data read from :attr:`ClientMessage.extras`:

``extras["field_vector"]``
    a list of Python ints in ``[0, q)`` (q: the P-256 group order by default), summed modulo q
    over exactly the same survivors as the main vector; the sum is in
    :attr:`SecureSumResult.field_sum`.
``extras["secagg_exclude"]``
    a reason (str). The client runs the protocol up to its masked input and is then treated
    as a dropout *before unmasking* (its input never enters the sum). A stage above that
    checks proofs marks failed clients this way; alternatively pass ``pre_unmask_filter``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from rangeproof.labels import SECAGG_ROUND_ID
from secagg.driver import DropoutPlan, RoundReport, run_round
from secagg.errors import ConfigError, DealerFault, DropoutBudgetExceeded, TooFewSurvivors, UnrecoverableSecret
from secagg.params import (
    P256_ORDER,
    SecAggParams,
    complete_graph_active_threshold,
    default_threshold,
    secagg_plus_parameters,
    sparse_active_refusal,
)
from secagg.prg import reduce_ring, ring_dtype
from secagg.quantize import QuantizationSpec, dequantize_sum, quantize_counting_clipped, to_ring, to_signed

from .base import AggregateResult, Aggregator, ClientMessage, InvalidUpdate, RoundContext, RoundFailed, Stage, screen
from .mean import MeanStage

__all__ = [
    "FIELD_VECTOR_KEY",
    "EXCLUDE_KEY",
    "SecureSumResult",
    "QuantizeStage",
    "ModularPlainSum",
    "SecureSum",
    "SecAggTransport",
    "InProcessTransport",
    "secure_pipeline",
    "complete_graph_threshold",
]

FIELD_VECTOR_KEY = "field_vector"
EXCLUDE_KEY = "secagg_exclude"

#: ``pre_unmask_filter(messages whose masked inputs arrived, ctx) -> {client_id: reason}``
PreUnmaskFilter = Callable[[Sequence[ClientMessage], RoundContext], Mapping[int, str]]


@dataclasses.dataclass
class SecureSumResult(AggregateResult):
    """An :class:`AggregateResult` that also carries the side sum over GF(q).

    Attributes:
      field_sum: ``sum of extras["field_vector"] mod q`` over ``included`` (``None``: no side vector).
      field_modulus: q.
    """

    field_sum: list[int] | None = None
    field_modulus: int = P256_ORDER


def complete_graph_threshold(n: int, tolerated_dropout: float) -> int:
    """Default t on the complete graph: ``min(floor(2n/3) + 1, n - ceil(delta n))``.

    At least ``floor(n/2) + 1`` (a strict majority); a dropout rate that leaves no strict majority
    is a :class:`ConfigError`.
    """
    t = min(default_threshold(n), n - math.ceil(tolerated_dropout * n))
    if t < n // 2 + 1:
        raise ConfigError(f"tolerated_dropout={tolerated_dropout}: {n} clients would keep no strict majority")
    return t


def _ring_inputs(messages: Sequence[ClientMessage], bits: int, who: str) -> tuple[list[np.ndarray], bool]:
    """The clients' vectors as elements of Z_(2^k), and whether the input was signed.

    Unsigned vectors must already lie in ``[0, 2^k)``. Signed integer vectors (all clients
    alike) are taken modulo 2^k (two's complement), and the sum is read back as a signed k-bit
    integer: exact whenever the true sum lies in ``[-2^(k-1), 2^(k-1))``.
    """
    kinds = {m.vector.dtype.kind for m in messages}
    if not kinds <= {"u", "i"} or len(kinds) != 1:
        raise ValueError(f"{who}: expected integer vectors, all signed or all unsigned (quantize first)")
    if len({m.vector.shape for m in messages}) > 1 or messages[0].vector.ndim != 1:
        raise ValueError(f"{who}: expected 1-D vectors of one length")
    ids = [m.client_id for m in messages]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{who}: repeated client ids")
    dtype = ring_dtype(bits)
    signed = kinds == {"i"}
    out = []
    for m in messages:
        v = m.vector
        if v.dtype.itemsize > 8:
            raise ValueError(f"{who}: client {m.client_id}: integers wider than 64 bits")
        if signed:
            out.append(to_ring(v, bits))
        else:
            if bits < 64 and v.size and int(v.max()) >> bits:
                raise ValueError(f"{who}: client {m.client_id}: entries must lie in [0, 2^{bits})")
            out.append(v.astype(dtype, copy=False))
    return out, signed


def _in_ring(bits: int, who: str):
    """A :func:`~fl.aggregation.screen` check: unsigned entries must lie in ``[0, 2^k)``.

    An honest client's quantization never leaves the ring; a vector that does is that client's
    fault (it is excluded, reason ``"out_of_range"``), in the secure sum and its twin alike.
    """
    def check(m: ClientMessage) -> None:
        v = m.vector
        if v.dtype.kind == "u" and bits < 64 and v.size and int(v.max()) >> bits:
            raise InvalidUpdate(f"{who}: client {m.client_id}: entries outside [0, 2^{bits})",
                                blamed=(m.client_id,), reason="out_of_range")
    return check


def _field_vectors(messages: Sequence[ClientMessage], q: int, who: str) -> list[list[int]] | None:
    have = [FIELD_VECTOR_KEY in m.extras for m in messages]
    if not any(have):
        return None
    if not all(have):
        raise ValueError(f"{who}: extras['{FIELD_VECTOR_KEY}'] must be given by every client or none")
    vecs = [[int(e) for e in m.extras[FIELD_VECTOR_KEY]] for m in messages]
    if len({len(v) for v in vecs}) != 1:
        raise ValueError(f"{who}: field vectors of different lengths")
    if any(not 0 <= e < q for v in vecs for e in v):
        raise ValueError(f"{who}: field vector entries must lie in [0, q)")
    return vecs


class QuantizeStage(Stage):
    """Clip, scale and stochastically round to Z_(2^k) (client), and map the sum back (server).

    Args:
      inner: the modular sum below (:class:`SecureSum` or :class:`ModularPlainSum`).
      bits: k.
      clip_range: r; coordinates are clipped to [-r, r] before scaling.
      num_clients: the most clients per round; the scale leaves room for their sum (see
        :class:`~secagg.quantize.QuantizationSpec`), and a round with more clients is refused.
      noise_std: the std (float domain) of the integer noise that stages inside add to the sum;
        the levels leave room for it (wrap probability below 2^-20 per coordinate).

    Raises:
      ConfigError: a configuration whose sums could wrap.
    """

    name = "quantize"

    def __init__(self, inner: Aggregator, *, bits: int = 32, clip_range: float = 1.0, num_clients: int,
                 noise_std: float = 0.0):
        self.spec = QuantizationSpec(bits=bits, clip_range=float(clip_range), num_clients=num_clients,
                                     noise_std=float(noise_std))
        super().__init__(inner)

    def client(self, message: ClientMessage, ctx: RoundContext) -> ClientMessage:
        q, clipped = quantize_counting_clipped(message.vector, self.spec, ctx.rng("quantize", message.client_id))
        # a simulation measurement (the count of coordinates clipped to [-r, r]): a clip range
        # too small for the updates, e.g. with weighting = "examples", shows here
        ctx.record("quantize_clipped", ctx.measurements.get("quantize_clipped", 0.0) + clipped)
        return message.replace(vector=q)

    def server(self, result: AggregateResult, ctx: RoundContext) -> AggregateResult:
        ctx.record("quantize_step", self.spec.step)
        return result.replace(vector=dequantize_sum(result.vector, self.spec))

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> AggregateResult:
        if len(messages) > self.spec.num_clients:
            raise ConfigError(
                f"quantize: {len(messages)} clients exceed num_clients={self.spec.num_clients}; their sum could wrap"
            )
        return super().aggregate(messages, ctx)

    def __repr__(self) -> str:
        s = self.spec
        return f"QuantizeStage(bits={s.bits}, clip_range={s.clip_range}, num_clients={s.num_clients})"


class ModularPlainSum(Aggregator):
    """The plaintext twin of :class:`SecureSum`: the sum modulo 2^k (and the side sum mod q).

    Same input rules and result bits as :class:`SecureSum` (signed inputs give a signed sum).

    Args:
      bits: k.
      field_modulus: q for ``extras["field_vector"]``.
    """

    name = "modular_plain_sum"

    def __init__(self, bits: int = 32, *, field_modulus: int = P256_ORDER):
        if not 1 <= bits <= 64:
            raise ConfigError(f"bits: expected 1..64, got {bits}")
        self.bits = bits
        self.field_modulus = field_modulus

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> SecureSumResult:
        if not messages:
            raise RoundFailed("no_clients", "no client message reached the server")
        messages, excluded = screen(messages, ctx, self.name, _in_ring(self.bits, self.name))
        vectors, signed = _ring_inputs(messages, self.bits, self.name)
        fields = _field_vectors(messages, self.field_modulus, self.name)
        dtype = ring_dtype(self.bits)
        acc = np.zeros(messages[0].vector.shape, dtype=dtype)
        for v in vectors:
            np.add(acc, v, out=acc)
        reduce_ring(acc, self.bits)
        if signed:
            acc = to_signed(acc, self.bits)
        field_sum = None
        if fields is not None:
            field_sum = [sum(col) % self.field_modulus for col in zip(*fields)]
        return SecureSumResult(
            vector=acc,
            included=[m.client_id for m in messages],
            weight_total=float(sum(m.weight for m in messages)),
            rejected=excluded,
            field_sum=field_sum,
            field_modulus=self.field_modulus,
        )

    def __repr__(self) -> str:
        return f"ModularPlainSum(bits={self.bits})"


class SecAggTransport(Protocol):
    """Where the protocol of one :class:`SecureSum` round runs.

    :class:`InProcessTransport` plays every client in this process (the simulation);
    ``fl.net.session.NetworkTransport`` runs the server side over TCP while each client plays
    its own side, with its own input, in its own process. Both return the driver's
    :class:`~secagg.driver.RoundReport`, so the stage above reads the same result either way.
    """

    def run(self, params: SecAggParams, messages: Mapping[int, ClientMessage], inputs: Mapping[int, np.ndarray], *,
            field_inputs: Mapping[int, Sequence[int]] | None, dropout: DropoutPlan,
            exclude: Callable[[tuple[int, ...]], Mapping[int, str]], round_id: bytes, seed: int | None,
            client_types: Mapping[int, type]) -> RoundReport:
        """Run one round; ``messages`` and ``inputs`` are keyed by protocol id ``1..n``."""


class InProcessTransport:
    """The protocol run by :func:`secagg.driver.run_round`, every client played in this process."""

    def run(self, params, messages, inputs, *, field_inputs, dropout, exclude, round_id, seed, client_types):
        return run_round(params, dict(inputs), field_inputs=field_inputs, dropout=dropout, exclude=exclude,
                         round_id=round_id, seed=seed, client_types=dict(client_types))

    def __repr__(self) -> str:
        return "InProcessTransport()"


class SecureSum(Aggregator):
    """The sum modulo 2^k computed by the real SecAgg protocol, through a transport.

    Each round builds fresh parameters for the clients present, maps client ids (sorted) to
    protocol ids ``1..n``, and runs :func:`secagg.driver.run_round` with every message encoded
    and decoded. Clients that drop before uploading their masked input, or are excluded before
    unmasking, are reported in ``rejected``; the round raises :class:`RoundFailed` (reason
    ``"secagg_too_few"``) when fewer than ``t`` remain.

    Args:
      bits: k (must match the quantization above).
      graph: ``"complete"`` (classic SecAgg) or ``"sparse"`` (SecAgg+, degree and threshold
        from :func:`~secagg.params.secagg_plus_parameters`; semi-honest variant only: with
        ``active=True`` it is a ``ConfigError`` unless ``unsafe_sparse_active=True``).
      threshold: t for the complete graph (default :func:`complete_graph_threshold` of n and
        ``tolerated_dropout``).
      active: run the variant against an active server (signatures, consistency check, dropout
        budgets) on the complete graph; its threshold is derived against a malicious server with
        ``corruption_rate`` colluders (``ConfigError`` if an explicit one is too low).
      unsafe_sparse_active: the research opt-in for ``graph="sparse"`` with ``active=True``, which a
        malicious server can cut by uneven share delivery (``docs/secagg.md``, "Ring cut by uneven
        share delivery"); never for real rounds.
      dropout_rate: simulated dropouts: each client drops with this probability at a step
        drawn uniformly (from ``ctx.rng("secagg_dropout")``).
      dropout: an explicit plan instead: ``{client_id: step}`` (steps: :data:`secagg.driver.STEPS`).
      tolerated_dropout, corruption_rate, security_bits, correctness_bits: the design targets
        that size the threshold (and, for ``"sparse"``, the degree).
      field_modulus: q of the side sum.
      pre_unmask_filter: called with the messages whose masked inputs arrived; returns the
        clients to exclude before unmasking, with reasons.
      deterministic_secrets: derive the protocol's secret randomness from the run seed
        (simulation replay only; the default uses the OS CSPRNG - the sum is the same either way).
    """

    name = "secure_sum"

    def __init__(
        self,
        *,
        bits: int = 32,
        graph: str = "complete",
        threshold: int | None = None,
        active: bool = False,
        dropout_rate: float = 0.0,
        dropout: Mapping[int, str] | None = None,
        tolerated_dropout: float = 0.1,
        corruption_rate: float = 0.1,
        security_bits: float = 40.0,
        correctness_bits: float = 20.0,
        field_modulus: int = P256_ORDER,
        pre_unmask_filter: PreUnmaskFilter | None = None,
        deterministic_secrets: bool = False,
        unsafe_sparse_active: bool = False,
        transport: SecAggTransport | None = None,
    ):
        if graph not in ("complete", "sparse"):
            raise ConfigError(f"graph: expected 'complete' or 'sparse', got {graph!r}")
        if not isinstance(unsafe_sparse_active, bool):
            raise ConfigError(f"unsafe_sparse_active: expected a bool, got {unsafe_sparse_active!r}")
        if unsafe_sparse_active and not (active and graph == "sparse"):
            raise ConfigError("unsafe_sparse_active applies to graph='sparse' with active=True only")
        if active and graph == "sparse" and not unsafe_sparse_active:
            raise ConfigError(sparse_active_refusal("SecureSum(graph='sparse', active=True)"))
        if not 1 <= bits <= 64:
            raise ConfigError(f"bits: expected 1..64, got {bits}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ConfigError(f"dropout_rate: expected 0 <= rate < 1, got {dropout_rate}")
        DropoutPlan(dict(dropout or {}))  # validates the steps (ConfigError)
        self.bits = bits
        self.graph = graph
        self.threshold = threshold
        self.active = active
        self.dropout_rate = dropout_rate
        self.dropout = dict(dropout or {})
        self.tolerated_dropout = tolerated_dropout
        self.corruption_rate = corruption_rate
        self.security_bits = security_bits
        self.correctness_bits = correctness_bits
        self.field_modulus = field_modulus
        self.pre_unmask_filter = pre_unmask_filter
        self.deterministic_secrets = deterministic_secrets
        self.unsafe_sparse_active = unsafe_sparse_active
        self.transport: SecAggTransport = transport if transport is not None else InProcessTransport()

    def params_for(self, n: int, field_dim: int = 0) -> SecAggParams:
        """The round parameters for ``n`` clients."""
        common = dict(mask_bits=self.bits, active=self.active, field_modulus=self.field_modulus, field_dim=field_dim)
        if self.graph == "sparse" and n >= 3:
            g = secagg_plus_parameters(
                n, dropout_rate=self.tolerated_dropout, corruption_rate=self.corruption_rate,
                security_bits=self.security_bits, correctness_bits=self.correctness_bits, active=self.active,
                unsafe_sparse_active=self.unsafe_sparse_active,
            )
            if g.dropout_budget is not None:
                common.update(dropout_budget=g.dropout_budget, neighbour_dropout_budget=g.neighbour_dropout_budget)
            if g.degree is not None and self.unsafe_sparse_active:
                common.update(unsafe_sparse_active=True)
            return SecAggParams(num_clients=n, threshold=g.threshold, degree=g.degree, **common)
        t = self.threshold if self.threshold is not None else complete_graph_threshold(n, self.tolerated_dropout)
        if self.active:
            # a malicious server with floor(gamma n) colluders must not reach t in two views
            need = complete_graph_active_threshold(n, math.floor(self.corruption_rate * n))
            if t < need:
                raise ConfigError(
                    f"threshold {t} with {n} clients: the active variant needs 2t > n + floor(corruption_rate n), "
                    f"t >= {need} (corruption_rate={self.corruption_rate})"
                )
        return SecAggParams(num_clients=n, threshold=t, **common)

    def client_input(self, message: ClientMessage) -> tuple[np.ndarray, list[int]]:
        """What one client feeds the protocol: its vector in Z_(2^k) and its side vector (or ``[]``).

        The same conversion :meth:`aggregate` makes for every client in process; a client that
        plays its own side over the network makes it on its own message.
        """
        vectors, _ = _ring_inputs([message], self.bits, self.name)
        fields = _field_vectors([message], self.field_modulus, self.name)
        return vectors[0], (fields[0] if fields is not None else [])

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> SecureSumResult:
        if len(messages) < 3:  # with two clients each would learn the other's input from the sum
            raise RoundFailed("secagg_too_few", f"secure sum needs at least 3 clients, got {len(messages)}")
        # a vector outside the ring is its client's fault: that client is left out (the twin
        # does the same); in a deployment it would be a dropout, the protocol reduces mod 2^k
        messages, excluded = screen(messages, ctx, self.name, _in_ring(self.bits, self.name))
        if len(messages) < 3:
            raise RoundFailed("secagg_too_few", f"secure sum needs at least 3 clients, got {len(messages)}",
                              blamed=excluded)
        vectors, signed = _ring_inputs(messages, self.bits, self.name)
        ring = {m.client_id: v for m, v in zip(messages, vectors)}
        fields = _field_vectors(messages, self.field_modulus, self.name)
        order = sorted(messages, key=lambda m: m.client_id)
        pid = {m.client_id: i + 1 for i, m in enumerate(order)}  # protocol ids 1..n
        by_pid = {pid[m.client_id]: m for m in order}
        params = self.params_for(len(order), len(fields[0]) if fields else 0)
        if self.dropout:
            plan = DropoutPlan({pid[c]: s for c, s in self.dropout.items() if c in pid})
        elif self.dropout_rate > 0:
            plan = DropoutPlan.random(sorted(by_pid), self.dropout_rate, ctx.rng("secagg_dropout"))
        else:
            plan = DropoutPlan()
        field_inputs = None
        if fields is not None:
            fmap = {m.client_id: f for m, f in zip(messages, fields)}
            field_inputs = {p: fmap[m.client_id] for p, m in by_pid.items()}

        def exclude(arrived: tuple[int, ...]) -> dict[int, str]:
            out = {p: str(by_pid[p].extras[EXCLUDE_KEY]) for p in arrived if EXCLUDE_KEY in by_pid[p].extras}
            if self.pre_unmask_filter is not None:
                extra = self.pre_unmask_filter([by_pid[p] for p in arrived], ctx)
                out.update({pid[c]: str(r) for c, r in extra.items() if c in pid})
            return out

        # a cheater may play the protocol with its own client class (built on SecAggClient)
        client_types = {p: m.adversary.secagg_client for p, m in by_pid.items()
                        if getattr(m.adversary, "secagg_client", None) is not None}
        round_id = hashlib.sha256(SECAGG_ROUND_ID + ctx.derive_seed("secagg_round_id").to_bytes(8, "big")).digest()[:16]
        try:
            report = self.transport.run(
                params,
                by_pid,
                {p: ring[m.client_id] for p, m in by_pid.items()},
                field_inputs=field_inputs,
                dropout=plan,
                exclude=exclude,
                round_id=round_id,
                seed=ctx.derive_seed("secagg_secrets") if self.deterministic_secrets else None,
                client_types=client_types,
            )
        except UnrecoverableSecret as exc:  # fewer than t honest holders: fail closed, name the liars
            # the same class (a RoundFailed), with the pipeline's client ids instead of protocol ids
            raise UnrecoverableSecret(by_pid[exc.client].client_id, exc.kind, exc.have, exc.need,
                                      blamed=[by_pid[p].client_id for p in exc.blamed]) from exc
        except DealerFault as exc:
            raise DealerFault(by_pid[exc.client].client_id, exc.kind) from exc
        except TooFewSurvivors as exc:
            raise RoundFailed("secagg_too_few", f"secure aggregation failed: {exc}") from exc
        except DropoutBudgetExceeded as exc:
            raise RoundFailed("secagg_dropout_budget", f"secure aggregation refused: {exc}") from exc
        res = report.result
        survivors = set(res.survivors)
        included = [m for m in messages if pid[m.client_id] in survivors]
        rejected = {by_pid[p].client_id: (r if r.startswith("excluded") else f"dropped at {r}") for p, r in res.dropped.items()}
        for p, exc in report.server_refusals.items():  # a message the server refused: name why
            if by_pid[p].client_id in rejected and not rejected[by_pid[p].client_id].startswith("excluded"):
                rejected[by_pid[p].client_id] = f"excluded: {exc.reason}"
        rejected.update(excluded)
        for cid, why in sorted(rejected.items()):
            ctx.events.append(f"secure_sum: client {cid} {why}")
        for p, why in sorted(res.blamed.items()):  # in the sum, but its unmasking answer was wrong
            ctx.events.append(f"secure_sum: client {by_pid[p].client_id} blamed ({why}); its shares were ignored")
        ctx.record("secagg_blamed", len(res.blamed))
        if report.upload_bytes:  # (over the network: frame bytes, headers included; 0 for a client that never joined)
            ctx.record("secagg_upload_bytes_mean", float(np.mean([report.upload_bytes.get(p, 0) for p in by_pid])))
        ctx.record("secagg_threshold", params.threshold)
        ctx.record("secagg_survivors", len(included))
        return SecureSumResult(
            vector=to_signed(res.vector, self.bits) if signed else res.vector,
            included=[m.client_id for m in included],
            weight_total=float(sum(m.weight for m in included)),
            rejected=rejected,
            field_sum=list(res.field_vector) if fields is not None else None,
            field_modulus=self.field_modulus,
        )

    def __repr__(self) -> str:
        return f"SecureSum(bits={self.bits}, graph={self.graph!r}, active={self.active}, dropout_rate={self.dropout_rate})"


def secure_pipeline(
    num_clients: int,
    *,
    weighting: str = "examples",
    bits: int = 32,
    clip_range: float = 1.0,
    **secure_sum_options,
) -> MeanStage:
    """The recipe for ``aggregation.secure = true``, from the inside out.

    1. :class:`SecureSum` - the real protocol over Z_(2^bits);
    2. :class:`QuantizeStage` - fixed point with room for ``num_clients`` summands;
    3. ``MeanStage`` - the (weighted) mean.
    """
    inner = SecureSum(bits=bits, **secure_sum_options)
    return MeanStage(QuantizeStage(inner, bits=bits, clip_range=clip_range, num_clients=num_clients), weighting=weighting)
