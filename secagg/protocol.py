"""The round as one table: what each step expects, who handles it, and how large its messages may be.

Every transport walks :func:`protocol_steps` (the in-process :func:`secagg.driver.run_round`,
the TCP server :func:`secagg.net.server.serve_round` and the TCP client
:func:`secagg.net.client.run_client`), so the step sequence is written once. For each step the
table names:

* ``request``: the server message that opens the step for a client (none for the first step);
* ``answer``: the :class:`~secagg.client.SecAggClient` method that answers it;
* ``message``: the client message type the server expects back;
* ``receive``: the :class:`~secagg.server.SecAggServer` method that takes one such message;
* ``close``: the server method that ends the step and returns the next step's requests (the
  last step's ``finish`` returns the sum).

:func:`max_frame_bytes` is the largest legitimate encoding of a step's client message and
:func:`max_request_bytes` that of its request, both from the round's parameters alone (n, t,
the graph degree, d, k, the side field, the variant), so a transport refuses a longer frame
before it reads or decodes it. The one error policy (``docs/secagg.md``, "Running over the
network"): a message refused with any :class:`~secagg.errors.SecAggError` leaves its sender
missing from that step, exactly as if it had never come; the server's own rules then drop,
exclude or blame it.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from .encoding import HEADER_BYTES
from .keys import MASK_PUBLIC_KEY_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES
from .messages import (
    SHARE_CIPHERTEXT_BYTES,
    AdvertiseKeys,
    ConsistencyRequest,
    ConsistencySignature,
    KeysBroadcast,
    MaskedInput,
    MaskRequest,
    SharesDelivery,
    SharesReceipt,
    ShareKeys,
    UnmaskRequest,
    UnmaskResponse,
)
from .params import SecAggParams
from .prg import ring_dtype
from .shamir import SHARE_BYTES
from .steps import Step
from .vss import POINT_BYTES

__all__ = [
    "StepSpec",
    "PROTOCOL",
    "protocol_steps",
    "step_named",
    "max_frame_bytes",
    "max_request_bytes",
    "client_answer",
    "server_close",
]


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """One row of the protocol table.

    Attributes:
      name: the row's name (``"advertise_keys"``, ``"share_keys"``, ``"receipt"``,
        ``"masked_input"``, ``"consistency_check"``, ``"unmask"``).
      step: the :class:`~secagg.steps.Step` it belongs to (the receipt is part of MASKED_INPUT).
      request: the server message type that opens it for a client (``None``: the first step).
      message: the client message type the server receives.
      answer: the client method that produces ``message``.
      receive: the server method that takes one ``message``.
      close: the server method that ends the step.
      takes_input: ``answer`` also takes the client's vectors.
      takes_exclude: ``close`` takes the clients to exclude before unmasking.
      active_only: the step exists in the active variant only.
    """

    name: str
    step: Step
    request: type | None
    message: type
    answer: str
    receive: str
    close: str
    takes_input: bool = False
    takes_exclude: bool = False
    active_only: bool = False

    @property
    def dropout(self) -> str:
        """The dropout step name (:data:`secagg.steps.STEPS`) of a client that never sends ``message``."""
        return self.step.value


#: every row, in protocol order
PROTOCOL: tuple[StepSpec, ...] = (
    StepSpec("advertise_keys", Step.ADVERTISE, None, AdvertiseKeys, "advertise_keys", "receive_advertise",
             "close_advertise"),
    StepSpec("share_keys", Step.SHARE_KEYS, KeysBroadcast, ShareKeys, "share_keys", "receive_share_keys",
             "close_share_keys"),
    StepSpec("receipt", Step.MASKED_INPUT, SharesDelivery, SharesReceipt, "receipt", "receive_receipt",
             "close_receipts"),
    StepSpec("masked_input", Step.MASKED_INPUT, MaskRequest, MaskedInput, "masked_input", "receive_masked_input",
             "close_masked_input", takes_input=True, takes_exclude=True),
    StepSpec("consistency_check", Step.CONSISTENCY, ConsistencyRequest, ConsistencySignature, "consistency_check",
             "receive_consistency", "close_consistency", active_only=True),
    StepSpec("unmask", Step.UNMASK, UnmaskRequest, UnmaskResponse, "unmask", "receive_unmask", "finish"),
)


def protocol_steps(params: SecAggParams) -> tuple[StepSpec, ...]:
    """The rows a round with ``params`` walks (the consistency check in the active variant only)."""
    return tuple(s for s in PROTOCOL if params.active or not s.active_only)


def step_named(name: str) -> StepSpec:
    """The row called ``name``.

    Raises:
      KeyError: no such row.
    """
    for s in PROTOCOL:
        if s.name == name:
            return s
    raise KeyError(f"no protocol step {name!r}; expected one of {[s.name for s in PROTOCOL]}")


def _spec(step: StepSpec | str) -> StepSpec:
    return step if isinstance(step, StepSpec) else step_named(step)


def _sig(params: SecAggParams) -> int:
    """A signature field: the flag byte, and the signature in the active variant."""
    return 1 + (SIGNATURE_BYTES if params.active else 0)


def _commitments(params: SecAggParams) -> int:
    """``u16 t | 2t`` compressed points."""
    return 2 + 2 * params.threshold * POINT_BYTES


def _ids(count: int) -> int:
    return 2 + 2 * count


def max_frame_bytes(step: StepSpec | str, params: SecAggParams, dim: int) -> int:
    """The largest legitimate encoding of ``step``'s client message in a round of ``params``
    over vectors of length ``dim`` (``docs/secagg.md``, "Running over the network").

    A client has ``holders - 1`` neighbours (``n - 1`` on the complete graph), addresses one
    ciphertext to each, disputes at most each of them, and answers at most one share per holder.
    """
    s = _spec(step)
    p = params
    peers = p.holders - 1
    if s.message is AdvertiseKeys:
        body = PUBLIC_KEY_BYTES + MASK_PUBLIC_KEY_BYTES + _sig(p)
    elif s.message is ShareKeys:
        body = _commitments(p) + _sig(p) + 2 + peers * (2 + SHARE_CIPHERTEXT_BYTES)
    elif s.message is SharesReceipt:
        body = _ids(peers)
    elif s.message is MaskedInput:
        body = 1 + 4 + int(dim) * ring_dtype(p.mask_bits).itemsize + 2 + 32 * p.field_dim
    elif s.message is ConsistencySignature:
        body = SIGNATURE_BYTES
    elif s.message is UnmaskResponse:
        body = 2 + p.holders * (2 + 1 + SHARE_BYTES)
    else:  # pragma: no cover - every row is listed above
        raise KeyError(s.name)
    return HEADER_BYTES + body


def max_request_bytes(step: StepSpec | str, params: SecAggParams) -> int:
    """The largest legitimate encoding of the server message that opens ``step`` (0 for the first
    step, which no request opens).

    The active variant's key broadcast and unmasking request list the whole round (every key of
    U1, U3 and U4's signatures); the semi-honest ones a client's holders only.
    """
    s = _spec(step)
    p = params
    peers = p.holders - 1
    listed = p.num_clients if p.active else p.holders
    if s.request is None:
        return 0
    if s.request is KeysBroadcast:
        body = 2 + listed * (2 + PUBLIC_KEY_BYTES + MASK_PUBLIC_KEY_BYTES + _sig(p))
    elif s.request is SharesDelivery:
        body = 2 + peers * (2 + SHARE_CIPHERTEXT_BYTES + _commitments(p) + _sig(p))
    elif s.request is MaskRequest:
        body = _ids(peers)
    elif s.request is ConsistencyRequest:
        body = _ids(p.num_clients)
    elif s.request is UnmaskRequest:
        sigs = 2 + (p.num_clients * (2 + SIGNATURE_BYTES) if p.active else 0)
        body = _ids(listed) + _ids(p.holders) + sigs
    else:  # pragma: no cover - every row is listed above
        raise KeyError(s.name)
    return HEADER_BYTES + body


def client_answer(client, step: StepSpec, request, vector: np.ndarray | None = None,
                  field_vector: Sequence[int] = ()):
    """``client``'s message for ``step``, answering ``request`` (its vectors where the step takes them)."""
    fn: Callable = getattr(client, step.answer)
    if step.request is None:
        return fn()
    if step.takes_input:
        return fn(request, vector, field_vector)
    return fn(request)


def server_close(server, step: StepSpec, exclude=None):
    """End ``step`` on ``server``: the next requests by client (the sum after the last step)."""
    fn: Callable = getattr(server, step.close)
    return fn(exclude) if step.takes_exclude else fn()
