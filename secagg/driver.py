"""In-process simulation of one round: clients and server exchange *encoded* messages.

Every message goes through its binary encoding and back (so the codec is exercised and every
byte is counted), and a :class:`DropoutPlan` says which client stops at which step.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Mapping, Sequence

import numpy as np

from .client import SecAggClient
from .errors import ConfigError, ProtocolViolation, SecAggError
from .keys import SigningKey
from .messages import decode_message
from .params import SecAggParams
from .protocol import StepSpec, client_answer, max_frame_bytes, max_request_bytes, protocol_steps, server_close
from .steps import STEPS
from .randomness import RandomSource, SeededRandom, SystemRandom
from .server import SecAggServer, SumResult

__all__ = ["STEPS", "DropoutPlan", "RoundReport", "run_round"]


@dataclasses.dataclass(frozen=True)
class DropoutPlan:
    """Which clients stop, and at which step (the first message they never send).

    ``{3: "share_keys"}`` means client 3 advertised its keys and then vanished ("after
    advertise"); ``"masked_input"``: after sharing keys; ``"consistency_check"`` or
    ``"unmask"``: after uploading its masked input (its input is still in the sum).
    """

    drop_at: Mapping[int, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for u, step in self.drop_at.items():
            if step not in STEPS:
                raise ConfigError(f"dropout plan: client {u}: unknown step {step!r}, expected one of {STEPS}")

    def sends(self, client: int, step: str) -> bool:
        """Whether ``client`` sends its ``step`` message."""
        stop = self.drop_at.get(client)
        return stop is None or STEPS.index(step) < STEPS.index(stop)

    @classmethod
    def random(cls, clients: Sequence[int], rate: float, rng: np.random.Generator, *, steps: Sequence[str] = STEPS) -> "DropoutPlan":
        """Each client drops with probability ``rate``, at a step drawn uniformly from ``steps``."""
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"dropout rate: expected 0..1, got {rate}")
        drop = rng.random(len(clients)) < rate
        where = rng.integers(0, len(steps), len(clients))
        return cls({int(u): steps[int(w)] for u, d, w in zip(clients, drop, where) if d})


@dataclasses.dataclass
class RoundReport:
    """What a simulated round produced and cost.

    Attributes:
      result: the server's :class:`SumResult`.
      upload_bytes: bytes each client sent, by client.
      download_bytes: bytes each client received, by client.
      client_seconds: each client's compute time (its steps, encoding and decoding included).
      server_seconds: the server's compute time.
      client_errors: clients that stopped because they rejected a message (the exception).
      server_refusals: clients whose message the server refused (the exception); the server's
        state is as if the message never came, so the client counts as missing from that step.
    """

    result: SumResult
    upload_bytes: dict[int, int]
    download_bytes: dict[int, int]
    client_seconds: dict[int, float]
    server_seconds: float
    client_errors: dict[int, Exception]
    server_refusals: dict[int, Exception] = dataclasses.field(default_factory=dict)


def run_round(
    params: SecAggParams,
    inputs: Mapping[int, np.ndarray],
    *,
    field_inputs: Mapping[int, Sequence[int]] | None = None,
    dropout: DropoutPlan | None = None,
    exclude: Mapping[int, str] | Callable[[tuple[int, ...]], Mapping[int, str]] | None = None,
    round_id: bytes | None = None,
    seed: int | None = None,
    client_types: Mapping[int, type] | None = None,
) -> RoundReport:
    """Run one whole round in this process.

    Args:
      params: round parameters; ``inputs`` must have a vector for every client ``1..n``.
      inputs: ``{client id: integer vector in [0, 2^k)}``.
      field_inputs: ``{client id: params.field_dim ints in [0, q)}`` when ``field_dim > 0``.
      dropout: who stops where (default: nobody).
      exclude: clients to leave out before unmasking, or a function of the ids whose masked
        inputs arrived that returns them (with reasons).
      round_id: 16 bytes (default: random, or derived from ``seed``).
      seed: replay all secret randomness from this seed (simulation only; default: OS CSPRNG).
      client_types: ``{client id: class}`` to play some clients with a subclass of
        :class:`~secagg.client.SecAggClient` (a cheater built on the real client code, for tests
        and benchmarks); the others are honest.

    Returns:
      The :class:`RoundReport`.

    Raises:
      TooFewSurvivors: the round fell below the threshold.
    """
    ids = list(params.client_ids)
    if sorted(inputs) != ids:
        raise ConfigError(f"inputs: expected vectors for clients 1..{params.num_clients}")
    dims = {np.asarray(v).shape for v in inputs.values()}
    if len(dims) != 1 or len(next(iter(dims))) != 1:
        raise ConfigError("inputs: expected 1-D vectors of one length")
    dim = next(iter(dims))[0]
    if params.field_dim and (field_inputs is None or sorted(field_inputs) != ids):
        raise ConfigError("field_inputs: expected a side vector for every client")
    dropout = dropout or DropoutPlan()
    rng: RandomSource = SystemRandom() if seed is None else SeededRandom(seed)
    round_id = round_id if round_id is not None else rng.bytes(16)
    signing = {u: SigningKey.generate(rng) for u in ids} if params.active else {}
    verify = {u: k.verify_key for u, k in signing.items()} if params.active else None

    up = {u: 0 for u in ids}
    down = {u: 0 for u in ids}
    secs = {u: 0.0 for u in ids}
    errors: dict[int, Exception] = {}
    refusals: dict[int, Exception] = {}
    server_s = 0.0
    types = dict(client_types or {})
    clients = {
        u: types.get(u, SecAggClient)(params, u, round_id, signing_key=signing.get(u), verify_keys=verify,
                                      rng=rng if seed is not None else SystemRandom())
        for u in ids
    }
    t0 = time.perf_counter()
    server = SecAggServer(params, round_id, dim, verify_keys=verify)
    server_s += time.perf_counter() - t0

    def client_step(u: int, step: str, fn: Callable[[], object]) -> list[bytes]:
        """What client ``u`` sends in ``step``: its answer, and whatever more a cheating client
        adds (``extra_messages(step, answer)``, a hook of the cheaters in tests and attacks; a
        transport delivers every message a client sends)."""
        if u in errors or not dropout.sends(u, step):
            return []
        t = time.perf_counter()
        try:
            msg = fn()
            extra = getattr(clients[u], "extra_messages", None)
            sent = [m.encode() for m in (msg, *(extra(step, msg) if extra else ()))]
        except SecAggError as exc:  # recorded: the client stops, like a dropout
            errors[u] = exc
            return []
        secs[u] += time.perf_counter() - t
        up[u] += sum(len(d) for d in sent)
        return sent

    def deliver(u: int, data: bytes, spec: StepSpec):
        t = time.perf_counter()
        try:
            msg = decode_message(data, max_request_bytes(spec, params), threshold=params.threshold)
        except SecAggError as exc:  # a request the client cannot read: it stops, like a dropout
            errors.setdefault(u, exc)
            return None
        finally:
            secs[u] += time.perf_counter() - t
            down[u] += len(data)
        return msg

    def server_do(fn: Callable, *args):
        nonlocal server_s
        t = time.perf_counter()
        out = fn(*args)
        server_s += time.perf_counter() - t
        return out

    def server_receive(u: int, spec: StepSpec, sent: list[bytes]) -> None:
        method = getattr(server, spec.receive)
        bound = max_frame_bytes(spec, params, dim)
        for data in sent:
            try:
                # bounded before parsing, and the commitments' length checked against t before
                # any point is decoded (the step's table row gives both)
                msg = decode_message(data, bound, threshold=params.threshold)
                # the transport knows who sent a message (here: which client object produced it;
                # over TCP: the connection), so a message in another client's name is refused
                # before the server sees it, and only its real sender is named
                if getattr(msg, "sender", u) != u:
                    raise ProtocolViolation(f"client {u} sent a message in the name of client {msg.sender}",
                                            blamed=(u,), reason="impersonation")
                server_do(lambda: method(msg))
            except SecAggError as exc:  # one message refused: that client is missing, or excluded
                refusals.setdefault(u, exc)  # for a second message (server.duplicated)

    def answer(u: int, spec: StepSpec, request) -> object:
        return client_answer(clients[u], spec, request, inputs[u], field_inputs[u] if params.field_dim else ())

    # walk the protocol table (secagg.protocol): each step delivers the requests, lets each
    # client answer, passes the answers on, and closes the step
    outbox: dict[int, bytes] = {}
    result = None
    for spec in protocol_steps(params):
        if spec.request is None:
            for u in ids:
                server_receive(u, spec, client_step(u, spec.dropout, lambda: answer(u, spec, None)))
        else:
            for u, data in outbox.items():
                msg = deliver(u, data, spec)
                if msg is not None:
                    server_receive(u, spec, client_step(u, spec.dropout, lambda: answer(u, spec, msg)))
        if spec.close == "finish":
            result = server_do(server.finish)
            break
        if spec.takes_exclude:
            excluded = exclude(server.arrived) if callable(exclude) else (exclude or {})
            closed = server_do(server_close, server, spec, excluded)
        else:
            closed = server_do(server_close, server, spec)
        outbox = {u: m.encode() for u, m in closed.items()}
    return RoundReport(result, up, down, secs, server_s, errors, refusals)
