"""A client process: connects to the server, then answers each server message with the next step.

The client walks the protocol table (:func:`secagg.protocol.protocol_steps`): after its first
message it expects, in order, each step's request, bounded by
:func:`secagg.protocol.max_request_bytes` and read within ``timeout`` seconds. A client may be
told to vanish (``--drop-at STEP``): it closes its connection instead of sending its message for
``STEP``, which the server sees as a dropout. A connection the server closes before the round
is done (it refused the client: an id it does not expect, a late join; or it dropped it) is an
error (:class:`ServerClosed`, exit status 1), not a finished round.

Command line::

    python -m secagg.net.client --port P --id U --clients N --threshold T --dim D [--bits K]
        [--degree K] --round-id HEX --input-seed S [--drop-at STEP] [--timeout S]

The client's input is :func:`demo_input` (so a test can recompute the expected sum).
"""
from __future__ import annotations

import argparse
import asyncio
import ssl as ssl_module
import sys
from typing import Awaitable, Callable, Mapping, Sequence

import numpy as np

from ..client import SecAggClient
from ..errors import ConfigError, MalformedMessage, SecAggError
from ..keys import SigningKey
from ..messages import decode_message
from ..params import SecAggParams
from ..prg import ring_dtype
from ..protocol import StepSpec, client_answer, max_request_bytes, protocol_steps
from ..steps import STEPS
from .framing import ConnectionClosed, read_frame, write_frame

__all__ = ["ServerClosed", "run_client", "demo_input", "main"]

#: ``send(writer, step, payload)``: how :func:`run_client` sends one message (a test seam: a
#: faulty client is the real one with another ``send``)
Sender = Callable[[asyncio.StreamWriter, StepSpec, bytes], Awaitable[None]]


class ServerClosed(SecAggError):
    """The server closed the connection before the round was done: it refused or dropped this client."""


def demo_input(seed: int, client_id: int, dim: int, mask_bits: int) -> np.ndarray:
    """The deterministic test input of ``client_id``: uniform in [0, 2^k)."""
    rng = np.random.default_rng([seed, client_id])
    return rng.integers(0, 1 << mask_bits, dim, dtype=np.uint64, endpoint=False).astype(ring_dtype(mask_bits))


async def run_client(
    params: SecAggParams,
    client_id: int,
    round_id: bytes,
    vector: np.ndarray,
    *,
    host: str = "127.0.0.1",
    port: int,
    timeout: float = 60.0,
    drop_at: str | None = None,
    send: Sender | None = None,
    field_vector: Sequence[int] = (),
    ssl: "ssl_module.SSLContext | None" = None,
    server_hostname: str | None = None,
    signing_key: SigningKey | None = None,
    verify_keys: Mapping[int, bytes] | None = None,
    join_token: bytes | None = None,
) -> str:
    """Play one round over TCP; returns the last step completed (``"done"`` or the drop step).

    Args:
      timeout: seconds to wait for the connection, for each server message, and for each write.
      drop_at: a dropout step name (:data:`secagg.steps.STEPS`): close instead of sending it.
      send: how to send each message (default: one frame, flushed within ``timeout``).
      field_vector: the side vector over GF(q) (``params.field_dim`` ints in ``[0, q)``).
      ssl: a client-side TLS context (``None``: plain TCP); ``server_hostname`` names the
        certificate's host when it differs from ``host``.
      signing_key, verify_keys: this client's signing key and every client's verify key (the
        active variant).
      join_token: the secret the server handed this client for the round (sent first).

    Raises:
      ServerClosed: the server closed the connection before the round was done.
      DeadlineExceeded: no server message (or no flush) within ``timeout``.
      DecodeError: a server message over its step's bound, malformed, or not the step's request.
    """
    steps = protocol_steps(params)
    client = SecAggClient(params, client_id, round_id, signing_key=signing_key, verify_keys=verify_keys)

    async def default_send(writer: asyncio.StreamWriter, step: StepSpec, payload: bytes) -> None:
        await write_frame(writer, payload, timeout=timeout)

    send = send or default_send
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        host, port, ssl=ssl, server_hostname=server_hostname if ssl is not None else None), timeout)
    try:
        if join_token is not None:
            await write_frame(writer, bytes(join_token), timeout=timeout)
        request = None
        for i, spec in enumerate(steps):
            if i:
                bound = max_request_bytes(spec, params)
                try:
                    data = await read_frame(reader, bound, timeout=timeout)
                except (ConnectionClosed, ConnectionResetError):
                    raise ServerClosed(
                        f"client {client_id}: the server closed the connection before step {spec.name} (after "
                        f"{steps[i - 1].name}): it refused this client (an id it does not expect, or a late join) "
                        f"or dropped it") from None
                request = decode_message(data, bound, threshold=params.threshold)
                if not isinstance(request, spec.request):
                    raise MalformedMessage(f"client {client_id}: expected {spec.request.__name__} from the server, "
                                           f"got {type(request).__name__}")
            if spec.dropout == drop_at:
                return drop_at
            await send(writer, spec, client_answer(client, spec, request, vector, field_vector).encode())
        return client.stage.value  # done: the server sends nothing more
    finally:
        writer.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m secagg.net.client", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--id", type=int, required=True)
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--threshold", type=int, required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--degree", type=int, default=None)
    ap.add_argument("--round-id", required=True)
    ap.add_argument("--input-seed", type=int, required=True)
    ap.add_argument("--drop-at", choices=STEPS, default=None)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per server message; above the server's --step-timeout")
    args = ap.parse_args(argv)
    try:
        params = SecAggParams(num_clients=args.clients, threshold=args.threshold, mask_bits=args.bits, degree=args.degree)
        if args.id not in params.client_ids:
            raise ConfigError(f"--id: expected 1..{params.num_clients}, got {args.id}")
    except ConfigError as exc:
        ap.error(str(exc))
    x = demo_input(args.input_seed, args.id, args.dim, args.bits)
    try:
        last = asyncio.run(run_client(params, args.id, bytes.fromhex(args.round_id), x, host=args.host,
                                      port=args.port, timeout=args.timeout, drop_at=args.drop_at))
    except (SecAggError, OSError, asyncio.TimeoutError) as exc:
        print(f"client {args.id}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"client {args.id}: {last}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
