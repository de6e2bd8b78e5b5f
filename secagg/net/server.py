"""The server process: accepts ``n`` clients on TCP, then plays the protocol step by step.

The server walks the protocol table (:func:`secagg.protocol.protocol_steps`), like the
in-process driver. Each step sends the server's messages, then waits for one frame from each
eligible client, all before the step's deadline (``step_timeout`` seconds from the step's start;
``join_timeout`` for the first step): a write the client does not take in time and a frame that
does not arrive in time both drop the client, so a peer that stops reading or sending cannot
hold the round. Each frame is bounded before it is read: before a client has joined by the
first message's bound, afterwards by the step's (:func:`secagg.protocol.max_frame_bytes`).

One error policy: a client that closes its connection, misses the deadline, sends a frame over
the bound, or a message that is refused (any :class:`~secagg.errors.SecAggError`, the server's
own checks included) is disconnected and counts as missing from that step; the server's state
machine then records it (``dropped``, ``late``) and fails closed below the threshold
(:class:`~secagg.errors.TooFewSurvivors`, with the step). The connection identifies the client:
after its first message (``AdvertiseKeys``) every frame on it must carry the same sender id.

Command line (prints ``PORT <port>`` once listening, and a JSON summary line at the end)::

    python -m secagg.net.server --clients N --threshold T --dim D [--bits K] [--degree K]
        --round-id HEX --out RESULT.npy [--host 127.0.0.1] [--port 0] [--join-timeout S]
        [--step-timeout S]
"""
from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import ssl as ssl_module
import sys
from typing import Callable, Mapping

import numpy as np

from ..errors import ConfigError, MalformedMessage, ProtocolViolation, SecAggError
from ..messages import decode_message
from ..params import SecAggParams
from ..protocol import StepSpec, max_frame_bytes, protocol_steps, server_close
from ..server import SecAggServer, SumResult
from .framing import read_frame, write_frame

__all__ = ["serve_round", "main", "JOIN_TOKEN_BYTES"]

#: the length of a join token (``secrets.token_bytes``): a connection presenting one joins only as its client
JOIN_TOKEN_BYTES = 32


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.evicted = False  # closed to make room for a newer connection while it joined

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()

    def abort(self) -> None:
        """Close now, dropping whatever is still buffered for the peer."""
        self.writer.transport.abort()


async def serve_round(
    params: SecAggParams,
    round_id: bytes,
    dim: int,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    join_timeout: float = 30.0,
    step_timeout: float = 30.0,
    on_listening: Callable[[int], None] | None = None,
    on_step: Callable[[str], None] | None = None,
    faults: dict[int, Exception] | None = None,
    log: Callable[[str], None] = lambda s: None,
    exclude: Callable[[tuple[int, ...]], Mapping[int, str]] | None = None,
    ssl: "ssl_module.SSLContext | None" = None,
    verify_keys: Mapping[int, bytes] | None = None,
    traffic: dict[int, list[int]] | None = None,
    join_tokens: Mapping[int, bytes] | None = None,
) -> SumResult:
    """Run one round as a TCP server and return its sum.

    Args:
      join_timeout: seconds from the start for all ``n`` clients to join (their first message).
      step_timeout: seconds each later step may last, writes and reads together.
      on_listening: called with the bound port once the server listens.
      on_step: called with each protocol step's name (:class:`secagg.protocol.StepSpec`) as it begins.
      faults: filled with ``{client: exception}`` for each client dropped after it joined
        (closed, timed out, oversized frame, refused message), and for each holder of a join
        token whose join was refused (its first message refused, or it claimed another id).
      exclude: called, at the step that takes exclusions, with the ids whose masked inputs
        arrived; returns the clients to leave out before unmasking, with reasons (the in-process
        driver's hook of the same name).
      ssl: a server-side TLS context (``None``: plain TCP).
      verify_keys: the clients' signature verify keys ``{client: 32 bytes}``, which the active
        variant needs (the registry every client holds too).
      traffic: filled with ``{client: [bytes received from it, bytes sent to it]}``, frame
        headers included (TLS records not counted).
      join_tokens: ``{client: JOIN_TOKEN_BYTES secret bytes}`` handed to each invited client over
        an authenticated channel: a connection must then open with its token's frame, and may
        only join as that token's client (without them a slot goes to whichever connection
        claims it first).

    Raises:
      TooFewSurvivors: the round fell below the threshold.
    """
    if params.active and verify_keys is None:
        raise ConfigError("the active variant needs the clients' verify keys (verify_keys)")
    steps = protocol_steps(params)
    first = steps[0]
    join_bound = max_frame_bytes(first, params, dim)
    server = SecAggServer(params, round_id, dim, verify_keys=verify_keys)
    faults = {} if faults is None else faults
    traffic = {} if traffic is None else traffic

    def count(u: int, up: int = 0, down: int = 0) -> None:
        t = traffic.setdefault(u, [0, 0])
        t[0] += up
        t[1] += down

    conns: dict[int, _Conn] = {}
    # connections that have not sent their first message yet, oldest first; when full, a newcomer
    # closes the one that has waited longest (a client sends at once, so idle ones cannot lock it out)
    joining: dict[_Conn, asyncio.Task] = {}  # (with the task handling each)
    max_pending = max(64, 4 * params.num_clients)
    evicted = 0  # how many (a count, not the connections: a flood would keep them all alive)
    holding: dict[_Conn, int] = {}  # connections that presented a valid token, not yet joined: never evicted
    all_joined = asyncio.Event()
    finished = asyncio.Event()
    loop = asyncio.get_running_loop()
    join_deadline = loop.time() + join_timeout

    def step_begins(name: str) -> None:
        log(f"step {name}")
        if on_step is not None:
            on_step(name)

    def drop(u: int, exc: Exception) -> None:
        faults.setdefault(u, exc)
        log(f"client {u} dropped: {type(exc).__name__}: {exc}")
        conn = conns.pop(u, None)
        if conn is not None:
            conn.abort()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal evicted
        conn = _Conn(reader, writer)
        if all_joined.is_set():
            conn.abort()
            return
        if len(joining) >= max_pending:
            # the longest waiter: a client sends its token the moment it connects and does not
            # connect again, so here the longest waiter is the idle one (at random, a flood of a
            # hundred connections a second dropped invited clients; the control port, whose
            # clients retry, draws at random: fl.net.session.ServerSession._make_room)
            victim = next(iter(joining))
            victim.evicted = True
            evicted += 1
            # cancel its handler (which closes it): aborting the socket under a TLS handshake in
            # progress would leave asyncio's stream writer without a transport
            joining.pop(victim).cancel()
        # counted from the TCP accept: a connection in its TLS handshake is one of the joining
        joining[conn] = asyncio.current_task()
        holder = None
        try:
            if ssl is not None:
                await writer.start_tls(ssl, ssl_handshake_timeout=max(join_deadline - loop.time(), 0.001))
            if join_tokens is not None:
                token = await read_frame(reader, JOIN_TOKEN_BYTES, timeout=join_deadline - loop.time())
                holder = next((c for c, t in join_tokens.items() if hmac.compare_digest(t, token)), None)
                if len(token) != JOIN_TOKEN_BYTES or holder is None:
                    raise ProtocolViolation("a connection without a valid join token")
                if holder in conns or holder in holding.values():  # one connection per token
                    exc = ProtocolViolation(f"client {holder}'s join token on a second connection",
                                            blamed=(holder,), reason="duplicate_join")
                    # the holder misbehaves: it is excluded (its first connection too) and named
                    if holder in conns:
                        drop(holder, exc)
                    for other, h in list(holding.items()):
                        if h == holder:
                            other.abort()
                    raise exc
                # it holds a secret only its client was sent: newcomers can no longer evict it
                joining.pop(conn, None)
                holding[conn] = holder
            # before the client has joined, a frame may be no larger than the first message
            data = await read_frame(reader, join_bound, timeout=join_deadline - loop.time())
            msg = decode_message(data, join_bound, threshold=params.threshold)
            if not isinstance(msg, first.message):
                raise MalformedMessage(f"expected {first.message.__name__} first, got {type(msg).__name__}")
            if holder is not None and msg.sender != holder:
                raise ProtocolViolation(f"client {holder}'s join token used to join as client {msg.sender}")
            if all_joined.is_set():
                raise ProtocolViolation(f"client {msg.sender} joined after the join phase")
            if msg.sender in conns:
                raise ProtocolViolation(f"a second connection for client {msg.sender}")
            getattr(server, first.receive)(msg)
        except asyncio.CancelledError:  # evicted, or the round ends while it joins
            if writer.transport is not None:
                conn.abort()
            return
        except Exception as exc:  # noqa: BLE001 - a joining connection that fails in any way is closed
            if not conn.evicted:  # (an evicted connection is only counted)
                log(f"join refused: {type(exc).__name__}: {exc}")
            if holder is not None and isinstance(exc, SecAggError) and not all_joined.is_set():
                # the invited client of this token misbehaved at its join: it is named, not just missing
                faults.setdefault(holder, exc)
            if writer.transport is not None:
                conn.close()  # nothing is buffered for a peer that never joined; the close is prompt
            return
        finally:
            joining.pop(conn, None)
            holding.pop(conn, None)
        conns[msg.sender] = conn
        count(msg.sender, up=4 + len(data))
        if len(conns) == params.num_clients:
            all_joined.set()
        await finished.wait()  # keep the connection owned by this handler until the round ends
        conn.close()

    async def exchange(outbox: dict, spec: StepSpec) -> None:
        """Send each request and take one answer per client, all before the step's deadline."""
        deadline = loop.time() + step_timeout
        bound = max_frame_bytes(spec, params, dim)
        receive = getattr(server, spec.receive)

        async def one(u: int, payload: bytes) -> tuple[int, bytes | Exception]:
            conn = conns.get(u)
            if conn is None:
                return u, ConnectionError("not connected")
            try:
                await write_frame(conn.writer, payload, timeout=deadline - loop.time())
                count(u, down=4 + len(payload))
                data = await read_frame(conn.reader, bound, timeout=deadline - loop.time())
                count(u, up=4 + len(data))
                return u, data
            except (SecAggError, OSError) as exc:
                return u, exc

        results = await asyncio.gather(*(one(u, m.encode()) for u, m in outbox.items()))
        for u, data in results:
            if isinstance(data, Exception):
                drop(u, data)
                continue
            try:
                msg = decode_message(data, bound, threshold=params.threshold)
                if not isinstance(msg, spec.message):
                    raise MalformedMessage(f"expected {spec.message.__name__}, got {type(msg).__name__}")
                if msg.sender != u:
                    raise ProtocolViolation(f"frame on client {u}'s connection claims another sender", blamed=(u,),
                                            reason="impersonation")
                receive(msg)
            except SecAggError as exc:
                drop(u, exc)

    def drop_silent(outbox: dict) -> None:
        for u in list(conns):
            if u not in outbox:
                conns.pop(u).close()

    listener = await asyncio.start_server(handle, host, port)  # TLS starts in handle (above)
    if not listener.sockets:  # asyncio skips an address whose socket() failed (out of descriptors)
        listener.close()
        raise OSError(f"no socket could listen on {host}:{port}")
    bound_port = listener.sockets[0].getsockname()[1]
    if on_listening is not None:
        on_listening(bound_port)
    try:
        step_begins(first.name)
        try:
            await asyncio.wait_for(all_joined.wait(), max(join_deadline - loop.time(), 0.0))
        except asyncio.TimeoutError:
            log(f"join timeout: {len(conns)} of {params.num_clients} clients")
        all_joined.set()  # no late joiners
        out = server_close(server, first)
        for spec in steps[1:]:
            drop_silent(out)
            step_begins(spec.name)
            await exchange(out, spec)
            if spec is steps[-1]:
                return server.finish()
            if spec.takes_exclude:
                out = server_close(server, spec, dict(exclude(server.arrived)) if exclude is not None else {})
            else:
                out = server_close(server, spec)
        raise AssertionError("unreachable: the protocol table ends with the unmasking step")  # pragma: no cover
    finally:
        finished.set()
        if evicted:
            log(f"{evicted} connection(s) that sent nothing closed to make room for newer ones")
        for c in conns.values():
            c.close()
        for task in list(joining.values()):  # a connection still joining when the round ends
            task.cancel()
        for c in list(holding):
            c.abort()
        listener.close()
        await listener.wait_closed()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m secagg.net.server", description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--threshold", type=int, required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--degree", type=int, default=None)
    ap.add_argument("--round-id", required=True, help="32 hex digits")
    ap.add_argument("--out", required=True, help="where to save the sum (.npy)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--join-timeout", type=float, default=30.0)
    ap.add_argument("--step-timeout", type=float, default=30.0)
    args = ap.parse_args(argv)
    params = SecAggParams(num_clients=args.clients, threshold=args.threshold, mask_bits=args.bits, degree=args.degree)

    def listening(port: int) -> None:
        print(f"PORT {port}", flush=True)

    faults: dict[int, Exception] = {}
    try:
        result = asyncio.run(serve_round(
            params, bytes.fromhex(args.round_id), args.dim, host=args.host, port=args.port,
            join_timeout=args.join_timeout, step_timeout=args.step_timeout, on_listening=listening, faults=faults,
            log=lambda s: print(s, file=sys.stderr, flush=True),
        ))
    except SecAggError as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    np.save(args.out, result.vector)
    print(json.dumps({"ok": True, "survivors": list(result.survivors), "dropped": {str(k): v for k, v in result.dropped.items()},
                      "faults": {str(k): f"{type(v).__name__}: {v}" for k, v in sorted(faults.items())}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
