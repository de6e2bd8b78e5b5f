"""A client process: connects to the server, then answers each server message with the next step.

A client may be told to vanish (``--drop-at STEP``): it closes its connection instead of
sending its message for ``STEP``, which the server sees as a dropout.

Command line::

    python -m secagg.net.client --port P --id U --clients N --threshold T --dim D [--bits K]
        [--degree K] --round-id HEX --input-seed S [--drop-at STEP] [--timeout S]

The client's input is :func:`demo_input` (so a test can recompute the expected sum).
"""
from __future__ import annotations

import argparse
import asyncio
import sys

import numpy as np

from ..client import SecAggClient
from ..errors import MalformedMessage, SecAggError
from ..messages import ConsistencyRequest, KeysBroadcast, MaskRequest, SharesDelivery, UnmaskRequest, decode_message
from ..params import SecAggParams
from ..prg import ring_dtype
from ..steps import STEPS
from .framing import ConnectionClosed, read_frame, write_frame

__all__ = ["run_client", "demo_input", "main"]


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
    timeout: float = 30.0,
    drop_at: str | None = None,
) -> str:
    """Play one round over TCP; returns the last step completed (``"done"`` or the drop step)."""
    client = SecAggClient(params, client_id, round_id)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        if drop_at == "advertise_keys":
            return drop_at
        await write_frame(writer, client.advertise_keys().encode())
        while True:
            try:
                msg = decode_message(await asyncio.wait_for(read_frame(reader), timeout))
            except ConnectionClosed:
                return client.stage.value
            if isinstance(msg, KeysBroadcast):
                step, fn = "share_keys", lambda: client.share_keys(msg)
            elif isinstance(msg, SharesDelivery):  # step 2a: the receipt, then the mask request
                step, fn = "masked_input", lambda: client.receipt(msg)
            elif isinstance(msg, MaskRequest):
                step, fn = "masked_input", lambda: client.masked_input(msg, vector)
            elif isinstance(msg, ConsistencyRequest):
                step, fn = "consistency_check", lambda: client.consistency_check(msg)
            elif isinstance(msg, UnmaskRequest):
                step, fn = "unmask", lambda: client.unmask(msg)
            else:
                raise MalformedMessage(f"unexpected {type(msg).__name__} from the server")
            if step == drop_at:
                return step
            await write_frame(writer, fn().encode())
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
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args(argv)
    params = SecAggParams(num_clients=args.clients, threshold=args.threshold, mask_bits=args.bits, degree=args.degree)
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
