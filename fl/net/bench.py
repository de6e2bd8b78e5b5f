"""``sabre bench net``: one SecAgg round across ``N`` client processes on 127.0.0.1, and the same
round in process, measured in the same run.

::

    sabre bench net --clients N --dim D [--tls] [--active] [--seed S] [--json]

The client processes are started first and report ready (imports done) before the server
listens, so the join step times the protocol, not Python's start-up. The server times each step
of the protocol table (from the step's first request to the last answer: the wall time of the
round as the clients and the network see it) and counts each client's bytes (frames with their
headers; TLS records not counted). The same inputs then run through the in-process driver.

JSON fields (one line at the end with ``--json``): ``clients, dim, bits, threshold, tls, active,
exact`` (the networked sum equals the plaintext sum modulo 2^k), ``net``: ``wall_s``, ``step_s``
(by step name), ``upload_bytes_per_client``, ``download_bytes_per_client``; ``inprocess``:
``wall_s``, ``server_s``, ``client_s_mean``, ``upload_bytes_per_client``,
``download_bytes_per_client``; ``wall_s_ratio`` (net / in process), ``machine``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from secagg.driver import run_round
from secagg.errors import ConfigError
from secagg.keys import SigningKey
from secagg.net.client import demo_input, run_client
from secagg.net.server import serve_round
from secagg.params import SecAggParams, complete_graph_active_threshold, default_threshold
from secagg.prg import reduce_ring, ring_dtype
from secagg.randomness import SeededRandom

from .tls import client_context, make_certificates, server_context

__all__ = ["run_bench", "main"]

BITS = 32


def _params(clients: int, active: bool) -> SecAggParams:
    t = default_threshold(clients)
    if active:
        t = max(t, complete_graph_active_threshold(clients, 0))
    return SecAggParams(num_clients=clients, threshold=t, mask_bits=BITS, active=active)


def _keys(seed: int, clients: int) -> dict[int, SigningKey]:
    """The bench's signing keys (seeded: every process derives the same registry; a bench only)."""
    rng = SeededRandom(seed)
    return {u: SigningKey.generate(rng) for u in range(1, clients + 1)}


def _client_main(args: argparse.Namespace) -> int:
    params = _params(args.clients, args.active)
    x = demo_input(args.seed, args.id, args.dim, BITS)
    keys = _keys(args.seed, args.clients) if args.active else {}
    ctx = client_context(args.tls_ca) if args.tls_ca else None
    print("READY", flush=True)
    port = int(sys.stdin.readline())
    done = asyncio.run(run_client(params, args.id, bytes.fromhex(args.round_id), x, port=port, timeout=120, ssl=ctx,
                                  server_hostname="127.0.0.1" if ctx else None, signing_key=keys.get(args.id),
                                  verify_keys={u: k.verify_key for u, k in keys.items()} if keys else None))
    return 0 if done == "done" else 1


def run_bench(clients: int, dim: int, *, tls: bool = False, active: bool = False, seed: int = 0) -> dict:
    """One networked round and the same round in process; the figures (see the module docstring)."""
    if clients < 3:
        raise ConfigError("--clients: a round needs at least 3 clients")
    params = _params(clients, active)
    round_id = bytes(range(16))
    tmp = tempfile.mkdtemp(prefix="sabre-bench-net-")
    procs: list[subprocess.Popen] = []
    try:
        ca, ctx = None, None
        if tls:
            ca, cert, key = make_certificates(tmp, ("127.0.0.1",))
            ctx = server_context(cert, key)
        for u in params.client_ids:
            cmd = [sys.executable, "-m", "fl.net.bench", "--client", "--id", str(u), "--clients", str(clients),
                   "--dim", str(dim), "--seed", str(seed), "--round-id", round_id.hex()]
            if ca is not None:
                cmd += ["--tls-ca", str(ca)]
            if active:
                cmd.append("--active")
            procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for p in procs:
            if p.stdout.readline().strip() != "READY":
                raise RuntimeError(f"a bench client did not start (exit status {p.wait()})")
        keys = _keys(seed, clients) if active else {}
        registry = {u: k.verify_key for u, k in keys.items()} or None
        marks: list[tuple[str, float]] = []
        traffic: dict[int, list[int]] = {}

        async def serve():
            loop = asyncio.get_running_loop()

            def listening(port: int) -> None:
                for p in procs:
                    p.stdin.write(f"{port}\n")
                    p.stdin.flush()

            result = await serve_round(params, round_id, dim, on_listening=listening, ssl=ctx, traffic=traffic,
                                       on_step=lambda name: marks.append((name, loop.time())),
                                       verify_keys=registry, join_timeout=120, step_timeout=120)
            return result, loop.time()

        t0 = time.perf_counter()
        result, end = asyncio.run(serve())
        net_wall = time.perf_counter() - t0
        codes = [p.wait(timeout=120) for p in procs]
        if any(codes):
            raise RuntimeError(f"bench clients exited with {codes}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    bounds = [t for _, t in marks] + [end]
    step_s = {name: bounds[i + 1] - bounds[i] for i, (name, _) in enumerate(marks)}
    inputs = {u: demo_input(seed, u, dim, BITS) for u in params.client_ids}
    expected = np.zeros(dim, dtype=np.uint64)
    for u in result.survivors:
        np.add(expected, inputs[u], out=expected)
    reduce_ring(expected, BITS)
    exact = bool(np.array_equal(expected.astype(ring_dtype(BITS)), result.vector)) and \
        len(result.survivors) == clients
    t0 = time.perf_counter()
    report = run_round(params, inputs, round_id=round_id)
    local_wall = time.perf_counter() - t0
    return {
        "clients": clients, "dim": dim, "bits": BITS, "threshold": params.threshold, "tls": tls, "active": active,
        "exact": exact,
        "net": {"wall_s": net_wall, "step_s": step_s,
                "upload_bytes_per_client": float(np.mean([traffic[u][0] for u in params.client_ids])),
                "download_bytes_per_client": float(np.mean([traffic[u][1] for u in params.client_ids]))},
        "inprocess": {"wall_s": local_wall, "server_s": report.server_seconds,
                      "client_s_mean": float(np.mean(list(report.client_seconds.values()))),
                      "upload_bytes_per_client": float(np.mean(list(report.upload_bytes.values()))),
                      "download_bytes_per_client": float(np.mean(list(report.download_bytes.values())))},
        "wall_s_ratio": net_wall / local_wall,
        "machine": f"{platform.machine()} x{os.cpu_count()}, python {platform.python_version()}",
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sabre bench net``; returns the exit status (1 if the sum is not exact)."""
    ap = argparse.ArgumentParser(prog="sabre bench net", description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument("--dim", type=int, default=10000)
    ap.add_argument("--tls", action="store_true", help="TLS with a CA and certificate made for the bench")
    ap.add_argument("--active", action="store_true", help="the variant against an active server")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line at the end")
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--id", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--round-id", help=argparse.SUPPRESS)
    ap.add_argument("--tls-ca", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.client:
        return _client_main(args)
    try:
        r = run_bench(args.clients, args.dim, tls=args.tls, active=args.active, seed=args.seed)
    except ConfigError as e:
        ap.error(str(e))
    n, ip = r["net"], r["inprocess"]
    print(f"secure aggregation over TCP{' + TLS' if r['tls'] else ''}: {r['clients']} client processes x {r['dim']} "
          f"coordinates, threshold {r['threshold']}{', active' if r['active'] else ''}")
    for name, s in n["step_s"].items():
        print(f"  {name:<18} {s:.4f} s")
    print(f"  round (net)        {n['wall_s']:.4f} s; in process {ip['wall_s']:.4f} s (x {r['wall_s_ratio']:.2f})")
    print(f"  per client         {n['upload_bytes_per_client']:.0f} bytes up, {n['download_bytes_per_client']:.0f} down "
          f"(in process: {ip['upload_bytes_per_client']:.0f} up, {ip['download_bytes_per_client']:.0f} down)")
    print(f"  exact              {r['exact']}")
    if args.json:
        print(json.dumps(r))
    return 0 if r["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
