"""The networked path: a server process and client processes on 127.0.0.1, one client drops."""
from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from secagg.errors import OversizedMessage, TooFewSurvivors, TruncatedMessage
from secagg.net.client import demo_input, run_client
from secagg.net.framing import ConnectionClosed, read_frame
from secagg.net.server import serve_round
from secagg.params import SecAggParams


N, T, DIM, BITS, SEED = 6, 4, 5000, 32, 20261126
ROUND_ID = "00112233445566778899aabbccddeeff"


def _common(n=N, t=T):
    return ["--clients", str(n), "--threshold", str(t), "--dim", str(DIM), "--bits", str(BITS), "--round-id", ROUND_ID]


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("drop_at", ["share_keys", "masked_input", "unmask"])
def test_server_and_client_processes_exact_sum_with_one_dropout(tmp_path, drop_at):
    out = tmp_path / "sum.npy"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = []
    server = subprocess.Popen(
        [sys.executable, "-m", "secagg.net.server", *_common(), "--out", str(out), "--port", "0",
         "--join-timeout", "60", "--step-timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    procs.append(server)
    try:
        line = server.stdout.readline()
        assert line.startswith("PORT "), line + server.stderr.read()
        port = line.split()[1]
        dropper = 3
        for u in range(1, N + 1):
            extra = ["--drop-at", drop_at] if u == dropper else []
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "secagg.net.client", "--port", port, "--id", str(u), *_common(),
                 "--input-seed", str(SEED), "--timeout", "60", *extra],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            ))
        stdout, stderr = server.communicate(timeout=90)
        summary = json.loads(stdout.strip().splitlines()[-1])
        assert summary["ok"], stderr
        for p in procs[1:]:
            p.wait(timeout=30)
            assert p.returncode == 0, p.stderr.read()
        in_sum = drop_at == "unmask"
        expected_ids = set(range(1, N + 1)) - (set() if in_sum else {dropper})
        assert set(summary["survivors"]) == expected_ids
        expected = np.zeros(DIM, dtype=np.uint32)
        for u in expected_ids:
            expected += demo_input(SEED, u, DIM, BITS)
        assert np.array_equal(np.load(out), expected)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            for stream in (p.stdout, p.stderr):
                if stream is not None:
                    stream.close()


def _reader(data: bytes) -> asyncio.StreamReader:
    r = asyncio.StreamReader()
    r.feed_data(data)
    r.feed_eof()
    return r


def test_frames_rejected_when_oversized_or_cut():
    async def go():
        assert await read_frame(_reader(struct.pack(">I", 3) + b"abc")) == b"abc"
        with pytest.raises(ConnectionClosed):
            await read_frame(_reader(b""))
        with pytest.raises(TruncatedMessage):
            await read_frame(_reader(b"\x00\x00"))
        with pytest.raises(TruncatedMessage):
            await read_frame(_reader(struct.pack(">I", 10) + b"abc"))
        with pytest.raises(OversizedMessage):
            await read_frame(_reader(struct.pack(">I", 2**31)), max_bytes=2**30)

    asyncio.run(go())


async def _in_loop_round(params, drop=None, garbage=False, timeout=20.0):
    """Server and clients as tasks of one event loop (same code as the processes)."""
    rid = bytes(range(16))
    dim = 300
    ports: asyncio.Queue = asyncio.Queue()
    server = asyncio.create_task(serve_round(params, rid, dim, on_listening=ports.put_nowait,
                                             join_timeout=timeout, step_timeout=timeout))
    port = await ports.get()
    intruders = []
    if garbage:  # a connection whose first frame is not a message: refused, the round goes on
        _, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(struct.pack(">I", 5) + b"hello")
        await w.drain()
        intruders.append(w)
    xs = {u: demo_input(1, u, dim, params.mask_bits) for u in params.client_ids}
    clients = [asyncio.create_task(run_client(params, u, rid, xs[u], port=port, timeout=timeout,
                                              drop_at=(drop or {}).get(u))) for u in params.client_ids]
    result = await asyncio.wait_for(server, timeout * 3)
    outcomes = await asyncio.gather(*clients)
    for w in intruders:
        w.close()
    return result, xs, outcomes


def test_in_loop_round_with_garbage_connection_and_sparse_graph():
    params = SecAggParams(num_clients=8, threshold=4, degree=4)
    result, xs, outcomes = asyncio.run(_in_loop_round(params, drop={5: "masked_input"}, garbage=True))
    assert result.survivors == (1, 2, 3, 4, 6, 7, 8)
    expected = sum(xs[u].astype(np.uint64) for u in result.survivors) % 2**32
    assert np.array_equal(result.vector, expected.astype(np.uint32))
    assert outcomes.count("done") == 7


def test_in_loop_round_below_threshold_fails():
    params = SecAggParams(num_clients=5, threshold=4)
    with pytest.raises(TooFewSurvivors):
        asyncio.run(_in_loop_round(params, drop={1: "share_keys", 2: "masked_input"}, timeout=10.0))
