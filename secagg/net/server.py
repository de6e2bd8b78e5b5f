"""The server process: accepts ``n`` clients on TCP, then plays the protocol step by step.

Each step sends the server's messages, then waits (at most ``step_timeout`` seconds) for one
frame from each eligible client. A client that closes its connection, times out, or sends a
message that is rejected (any :class:`~secagg.errors.SecAggError`) is disconnected and treated
as dropped at that step. The connection identifies the client: after its first message
(``AdvertiseKeys``) every frame on it must carry the same sender id.

Command line (prints ``PORT <port>`` once listening, and a JSON summary line at the end)::

    python -m secagg.net.server --clients N --threshold T --dim D [--bits K] [--degree K]
        --round-id HEX --out RESULT.npy [--host 127.0.0.1] [--port 0] [--step-timeout S]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Callable

import numpy as np

from ..errors import ProtocolViolation, SecAggError
from ..messages import AdvertiseKeys, decode_message
from ..params import SecAggParams
from ..server import SecAggServer, SumResult
from .framing import read_frame, write_frame

__all__ = ["serve_round", "main"]


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


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
    log: Callable[[str], None] = lambda s: None,
) -> SumResult:
    """Run one round as a TCP server and return its sum.

    Raises:
      TooFewSurvivors: the round fell below the threshold.
    """
    server = SecAggServer(params, round_id, dim)
    conns: dict[int, _Conn] = {}
    all_joined = asyncio.Event()
    finished = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(reader, writer)
        try:
            msg = decode_message(await asyncio.wait_for(read_frame(reader), join_timeout))
            if not isinstance(msg, AdvertiseKeys) or msg.sender in conns or all_joined.is_set():
                raise ProtocolViolation("expected a first AdvertiseKeys from a new client")
            server.receive_advertise(msg)
        except (SecAggError, asyncio.TimeoutError, OSError) as exc:
            log(f"join refused: {exc!r}")
            conn.close()
            return
        conns[msg.sender] = conn
        if len(conns) == params.num_clients:
            all_joined.set()
        await finished.wait()  # keep the connection owned by this handler until the round ends
        conn.close()

    listener = await asyncio.start_server(handle, host, port)
    bound = listener.sockets[0].getsockname()[1]
    if on_listening is not None:
        on_listening(bound)
    try:
        try:
            await asyncio.wait_for(all_joined.wait(), join_timeout)
        except asyncio.TimeoutError:
            log(f"join timeout: {len(conns)} of {params.num_clients} clients")
        all_joined.set()  # no late joiners

        async def exchange(outbox: dict, receive: Callable) -> None:
            async def one(u: int, payload: bytes) -> tuple[int, bytes | None]:
                conn = conns.get(u)
                if conn is None:
                    return u, None
                try:
                    await write_frame(conn.writer, payload)
                    return u, await asyncio.wait_for(read_frame(conn.reader), step_timeout)
                except (SecAggError, asyncio.TimeoutError, OSError) as exc:
                    log(f"client {u} lost: {exc!r}")
                    return u, None

            results = await asyncio.gather(*(one(u, m.encode()) for u, m in outbox.items()))
            for u, data in results:
                if data is None:
                    lost = conns.pop(u, None)
                    if lost is not None:
                        lost.close()
                    continue
                try:
                    msg = decode_message(data)
                    if getattr(msg, "sender", None) != u:
                        raise ProtocolViolation(f"frame on client {u}'s connection claims another sender", blamed=(u,))
                    receive(msg)
                except SecAggError as exc:
                    log(f"client {u} rejected: {exc!r}")
                    conns.pop(u).close()

        def drop_silent(outbox: dict) -> None:
            for u in list(conns):
                if u not in outbox:
                    conns.pop(u).close()

        out = server.close_advertise()
        drop_silent(out)
        await exchange(out, server.receive_share_keys)
        out = server.close_share_keys()
        drop_silent(out)
        await exchange(out, server.receive_receipt)  # step 2a: disputes, before anyone masks
        out = server.close_receipts()
        drop_silent(out)
        await exchange(out, server.receive_masked_input)
        out = server.close_masked_input()
        drop_silent(out)
        if params.active:
            await exchange(out, server.receive_consistency)
            out = server.close_consistency()
        await exchange(out, server.receive_unmask)
        return server.finish()
    finally:
        finished.set()
        for c in conns.values():
            c.close()
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

    try:
        result = asyncio.run(serve_round(
            params, bytes.fromhex(args.round_id), args.dim, host=args.host, port=args.port,
            join_timeout=args.join_timeout, step_timeout=args.step_timeout, on_listening=listening,
            log=lambda s: print(s, file=sys.stderr, flush=True),
        ))
    except SecAggError as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    np.save(args.out, result.vector)
    print(json.dumps({"ok": True, "survivors": list(result.survivors), "dropped": {str(k): v for k, v in result.dropped.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
