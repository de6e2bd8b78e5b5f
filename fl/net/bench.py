"""``sabre bench net``: one SecAgg round across ``N`` client processes on 127.0.0.1, and the same
round in process, measured in the same run.

::

    sabre bench net --clients N --dim D [--proofs] [--tls] [--active] [--seed S] [--json]

The client processes are started first and report ready (imports done) before the server
listens, so the join step times the protocol, not Python's start-up. The server times each step
of the protocol table (from the step's first request to the last answer: the wall time of the
round as the clients and the network see it) and counts each client's bytes (frames with their
headers; TLS records not counted). The same inputs then run through the in-process driver.

JSON fields (one line at the end with ``--json``): ``clients, dim, bits, threshold, tls, active,
exact`` (the networked sum equals the plaintext sum modulo 2^k), ``net``: ``wall_s``, ``step_s``
(by step name), ``upload_bytes_per_client``, ``download_bytes_per_client``; ``inprocess``:
``wall_s``, ``server_s``, ``client_s_mean``, ``upload_bytes_per_client``,
``download_bytes_per_client``; ``wall_s_ratio`` (net / in process), ``machine``. Both wall
times start when the clients are ready (inputs made, proofs proved) and end with the sum.

``--proofs``: as under a norm bound, each client commits to a small integer vector and proves
its L2 norm (``rangeproof.norm``, before it reports ready), uploads commitment and proof on a
connection of their own before it joins SecAgg (in the bytes up, in process too), masks the
vector with its blinding as the side vector; the server verifies all proofs in one batch
(``verify_s``), leaves out any client whose proof fails before unmasking, and checks the binding
of the sum (``binding_ok``). The server derives the generators once before the round
(``net.server_generators_s``, CPU seconds) into a disk cache the clients load
(``net.generators_s_mean``, with the affine tables of the native code's sums where it is
built); each client's proving is timed in CPU seconds of its process
(``net.prove_s_mean``: N processes share the machine's cores, at most one proving per core at a
time). The round in process verifies the very proofs the clients made (``inprocess.verify_s``)
and sums the same inputs: proving, each client's own work before either round, is timed once.
Added fields: ``net.prove_s_mean``, ``net.generators_s_mean``, ``net.server_generators_s``,
``net.verify_s``, ``net.proof_bytes_per_client``, ``inprocess.verify_s``,
``inprocess.proof_bytes_per_client``.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import fcntl
import json
import math
import os
import platform
import shutil
import subprocess
import struct
import sys
import tempfile
import time

import numpy as np

from rangeproof.binding import check_binding
from rangeproof.generators import clear_memory_cache, disable_disk_cache, enable_disk_cache
from rangeproof.group import point_from_bytes, point_to_bytes
from rangeproof.norm import NormStatement, commit_and_prove, verify_batch
from rangeproof.norm.norm_linear import padded_dim
from rangeproof.norm.terms import prepare_verifier_tables
from rangeproof.norm.params import SMALLNESS_PROJECTIONS
from secagg.driver import run_round
from secagg.errors import ConfigError
from secagg.keys import SigningKey
from secagg.net.client import demo_input, run_client
from secagg.net.framing import read_frame, write_frame
from secagg.net.server import serve_round
from secagg.params import SecAggParams, complete_graph_active_threshold, default_threshold
from secagg.prg import reduce_ring, ring_dtype
from secagg.quantize import to_ring, to_signed
from secagg.randomness import SeededRandom

from .tls import client_context, make_certificates, server_context

__all__ = ["run_bench", "main"]

BITS = 32


def _params(clients: int, active: bool, proofs: bool = False) -> SecAggParams:
    t = default_threshold(clients)
    if active:
        t = max(t, complete_graph_active_threshold(clients, 0))
    return SecAggParams(num_clients=clients, threshold=t, mask_bits=BITS, active=active, field_dim=1 if proofs else 0)


def _proof_input(seed: int, client: int, dim: int) -> np.ndarray:
    """A client's integer vector under ``--proofs``: entries in [-3, 3]."""
    return np.random.default_rng([seed, client, 1]).integers(-3, 4, dim, dtype=np.int64)


def _statement(client: int, dim: int) -> NormStatement:
    """The bench's L2 statement: a bound every ``_proof_input`` meets (``sqrt(9 d)``, rounded up)."""
    return NormStatement(round_id=0, client_id=client, dim=dim, norm="l2", bound=math.isqrt(9 * dim) + 1,
                         scale=1.0, session=b"sabre bench net")


def _keys(seed: int, clients: int) -> dict[int, SigningKey]:
    """The bench's signing keys (seeded: every process derives the same registry; a bench only)."""
    rng = SeededRandom(seed)
    return {u: SigningKey.generate(rng) for u in range(1, clients + 1)}


def _client_main(args: argparse.Namespace) -> int:
    params = _params(args.clients, args.active, args.proofs)
    keys = _keys(args.seed, args.clients) if args.active else {}
    ctx = client_context(args.tls_ca) if args.tls_ca else None
    host = "127.0.0.1" if ctx else None
    field: list[int] = []
    prove_s = generators_s = 0.0
    r = None
    if args.proofs:  # proving is the client's own work before the round: timed apart from the steps
        raw = _proof_input(args.seed, args.id, args.dim)
        if args.generator_cache:
            enable_disk_cache(args.generator_cache)
        # N processes share the machine's cores: at most one proves per core at a time (the
        # memory of N generator lists at once could exceed the machine's), and the figures are
        # this process's CPU seconds, not the wall time it waited for a core
        with open(os.path.join(args.generator_cache or tempfile.gettempdir(),
                               f"prove-slot-{args.id % (os.cpu_count() or 1)}.lock"), "w") as slot:
            fcntl.flock(slot, fcntl.LOCK_EX)
            t0 = time.process_time()
            _off_thread(_derive_generators, args.dim)
            generators_s = time.process_time() - t0
            t0 = time.process_time()
            C, r, proof = _off_thread(commit_and_prove, _statement(args.id, args.dim), raw)
            prove_s = time.process_time() - t0
            clear_memory_cache()
        x, field = to_ring(raw, BITS), [r]
    else:
        x = demo_input(args.seed, args.id, args.dim, BITS)
    print("READY", flush=True)
    ports = [int(p) for p in sys.stdin.readline().split()]

    async def play():
        if args.proofs:  # commitment and proof on a connection of their own, before SecAgg
            reader, writer = await asyncio.open_connection("127.0.0.1", ports[1], ssl=ctx, server_hostname=host)
            c = point_to_bytes(C)
            await write_frame(writer, struct.pack(">IB", args.id, len(c)) + c + proof.to_bytes(), timeout=120)
            writer.close()
        return await run_client(params, args.id, bytes.fromhex(args.round_id), x, port=ports[0], timeout=120,
                                ssl=ctx, server_hostname=host, signing_key=keys.get(args.id), field_vector=field,
                                verify_keys={u: k.verify_key for u, k in keys.items()} if keys else None)

    done = asyncio.run(play())
    # (a bench only: the blinding goes to the parent so that it can rerun the round in process)
    print(json.dumps({"prove_s": prove_s, "generators_s": generators_s, "blinding": r}), flush=True)
    return 0 if done == "done" else 1


def run_bench(clients: int, dim: int, *, tls: bool = False, active: bool = False, proofs: bool = False,
              seed: int = 0) -> dict:
    """One networked round and the same round in process; the figures (see the module docstring)."""
    if clients < 3:
        raise ConfigError("--clients: a round needs at least 3 clients")
    params = _params(clients, active, proofs)
    round_id = bytes(range(16))
    tmp = tempfile.mkdtemp(prefix="sabre-bench-net-")
    procs: list[subprocess.Popen] = []
    server_generators_s = 0.0
    try:
        if proofs:  # derived once here, as a server does at start-up; the clients load them from disk
            enable_disk_cache(tmp)
            t0 = time.process_time()
            # as the verifier: the generators and their affine tables for the C multi-exponentiation
            _off_thread(prepare_verifier_tables, dim, SMALLNESS_PROJECTIONS * 64)
            server_generators_s = time.process_time() - t0
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
            if proofs:
                cmd += ["--proofs", "--generator-cache", tmp]
            procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for p in procs:
            if p.stdout.readline().strip() != "READY":
                raise RuntimeError(f"a bench client did not start (exit status {p.wait()})")
        keys = _keys(seed, clients) if active else {}
        registry = {u: k.verify_key for u, k in keys.items()} or None
        marks: list[tuple[str, float]] = []
        traffic: dict[int, list[int]] = {}
        uploads: dict[int, bytes] = {}
        verified: dict[int, tuple] = {}  # client -> (commitment, proof ok)
        verify_s = [0.0]

        async def serve():
            loop = asyncio.get_running_loop()
            proof_port = 0
            listener = None
            if proofs:
                async def receive(reader, writer):
                    try:
                        data = await read_frame(reader, 1 << 22, timeout=120)
                        (u,) = struct.unpack(">I", data[:4])
                        if u in params.client_ids and u not in uploads:
                            uploads[u] = data
                    finally:
                        writer.close()
                listener = await asyncio.start_server(receive, "127.0.0.1", 0, ssl=ctx)
                proof_port = listener.sockets[0].getsockname()[1]

            def listening(port: int) -> None:
                for p in procs:
                    p.stdin.write(f"{port} {proof_port}\n")
                    p.stdin.flush()

            def exclude(arrived):
                # every proof was uploaded before its client joined; verify them in one batch
                if not proofs:
                    return {}
                t = time.perf_counter()
                owners = sorted(uploads)
                items = _off_thread(_decode_and_verify, [(u, uploads[u]) for u in owners], dim)
                for u, (C, ok) in zip(owners, items):
                    verified[u] = (C, ok)
                verify_s[0] = time.perf_counter() - t
                return {u: "norm_proof_failed" for u in arrived if not verified.get(u, (None, False))[1]}

            try:
                result = await serve_round(params, round_id, dim, on_listening=listening, ssl=ctx, traffic=traffic,
                                           on_step=lambda name: marks.append((name, loop.time())), exclude=exclude,
                                           verify_keys=registry, join_timeout=120, step_timeout=120)
            finally:
                if listener is not None:
                    listener.close()
            return result, loop.time()

        t0 = time.perf_counter()
        result, end = asyncio.run(serve())
        net_wall = time.perf_counter() - t0
        codes = [p.wait(timeout=120) for p in procs]
        if any(codes):
            raise RuntimeError(f"bench clients exited with {codes}")
        reports = [json.loads(p.stdout.readline()) for p in procs]
        prove_net = [rep["prove_s"] for rep in reports]
        generators_net = [rep["generators_s"] for rep in reports]
        blindings = {u: rep["blinding"] for u, rep in zip(params.client_ids, reports)}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if proofs:
            disable_disk_cache()
        shutil.rmtree(tmp, ignore_errors=True)
    bounds = [t for _, t in marks] + [end]
    step_s = {name: bounds[i + 1] - bounds[i] for i, (name, _) in enumerate(marks)}
    if proofs:
        raws = {u: _proof_input(seed, u, dim) for u in params.client_ids}
        inputs = {u: to_ring(raws[u], BITS) for u in params.client_ids}
    else:
        inputs = {u: demo_input(seed, u, dim, BITS) for u in params.client_ids}
    expected = np.zeros(dim, dtype=np.uint64)
    for u in result.survivors:
        np.add(expected, inputs[u], out=expected)
    reduce_ring(expected, BITS)
    exact = bool(np.array_equal(expected.astype(ring_dtype(BITS)), result.vector)) and \
        len(result.survivors) == clients
    extra_net: dict = {}
    extra_local: dict = {}
    binding_ok = None
    if proofs:
        binding_ok = _binding_ok([verified[u][0] for u in result.survivors], to_signed(result.vector, BITS),
                                 result.field_vector[0], dim)
        # the same round in process, on the very proofs the clients made (proving is each
        # client's own work before either round starts: it is timed once, in the clients)
        owners = sorted(uploads)
        items = [(_statement(u, dim),) + _split_upload(uploads[u]) for u in owners]
        t0 = time.perf_counter()
        ok = dict(zip(owners, verify_batch(items)))
        verify_local = time.perf_counter() - t0
        report = run_round(params, inputs, round_id=round_id, field_inputs={u: [blindings[u]] for u in blindings},
                           exclude={u: "norm_proof_failed" for u in params.client_ids if not ok.get(u, False)})
        extra_net = {"prove_s_mean": float(np.mean(prove_net)), "generators_s_mean": float(np.mean(generators_net)),
                     "server_generators_s": server_generators_s, "verify_s": verify_s[0],
                     "proof_bytes_per_client": float(np.mean([4 + len(b) for b in uploads.values()]))}
        extra_local = {"verify_s": verify_local,
                       "proof_bytes_per_client": float(np.mean([len(b) - 5 for b in uploads.values()]))}
        local_wall = time.perf_counter() - t0
        binding_ok = binding_ok and _binding_ok([items[owners.index(u)][1] for u in report.result.survivors],
                                                to_signed(report.result.vector, BITS), report.result.field_vector[0],
                                                dim)
    else:
        t0 = time.perf_counter()
        report = run_round(params, inputs, round_id=round_id)
        local_wall = time.perf_counter() - t0
    up = {u: traffic[u][0] + (4 + len(uploads[u]) if u in uploads else 0) for u in params.client_ids}
    out = {
        "clients": clients, "dim": dim, "bits": BITS, "threshold": params.threshold, "tls": tls, "active": active,
        "proofs": proofs, "exact": exact,
        "net": {"wall_s": net_wall, "step_s": step_s,
                "upload_bytes_per_client": float(np.mean(list(up.values()))),
                "download_bytes_per_client": float(np.mean([traffic[u][1] for u in params.client_ids])),
                **extra_net},
        "inprocess": {"wall_s": local_wall, "server_s": report.server_seconds,
                      "client_s_mean": float(np.mean(list(report.client_seconds.values()))),
                      "upload_bytes_per_client": float(np.mean(list(report.upload_bytes.values())))
                      + extra_local.get("proof_bytes_per_client", 0.0),
                      "download_bytes_per_client": float(np.mean(list(report.download_bytes.values()))),
                      **extra_local},
        "wall_s_ratio": net_wall / local_wall,
        "machine": f"{platform.machine()} x{os.cpu_count()}, python {platform.python_version()}",
    }
    if proofs:
        out["binding_ok"] = bool(binding_ok)
        out["exact"] = out["exact"] and out["binding_ok"]
    return out


def _off_thread(fn, *args):
    """``fn(*args)`` on a thread of its own. petlib's OpenSSL calls can leave errors in the calling
    thread's OpenSSL error queue, which the ssl module's next TLS call on that thread reads as its
    own failure; the event loop's thread must never run them."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
        return ex.submit(fn, *args).result()


def _derive_generators(dim: int) -> None:
    """Every generator an L2 proof of ``dim`` coordinates uses, with the padding's, and the
    affine tables of the native code's sums (once per process)."""
    prepare_verifier_tables(padded_dim(dim), SMALLNESS_PROJECTIONS * 64)


def _split_upload(data: bytes) -> tuple:
    """``(commitment point, proof bytes)`` of an upload frame ``u32 id | u8 n | commitment | proof``."""
    n = data[4]
    return point_from_bytes(data[5:5 + n]), data[5 + n:]


def _decode_and_verify(uploads, dim: int) -> list[tuple]:
    """``[(commitment, proof verifies)]`` for ``[(client, upload frame)]``; a frame that does not
    decode fails."""
    items, out = [], []
    for u, data in uploads:
        try:
            items.append((_statement(u, dim),) + _split_upload(data))
        except Exception:  # noqa: BLE001 - a malformed upload is a failed proof
            items.append(None)
    good = iter(verify_batch([it for it in items if it is not None]))
    for it in items:
        out.append((None, False) if it is None else (it[1], next(good)))
    return out


def _binding_ok(commitments, vector, blinding_sum, dim) -> bool:
    try:
        check_binding(commitments, np.asarray(vector), int(blinding_sum), dim=dim)
    except Exception:  # noqa: BLE001 - any failure of the check is a failed binding for the record
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sabre bench net``; returns the exit status (1 if the sum is not exact)."""
    ap = argparse.ArgumentParser(prog="sabre bench net", description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument("--dim", type=int, default=10000)
    ap.add_argument("--tls", action="store_true", help="TLS with a CA and certificate made for the bench")
    ap.add_argument("--active", action="store_true", help="the variant against an active server")
    ap.add_argument("--proofs", action="store_true",
                    help="each client commits to its vector and proves an L2 bound; the server verifies in a batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line at the end")
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--id", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--round-id", help=argparse.SUPPRESS)
    ap.add_argument("--tls-ca", help=argparse.SUPPRESS)
    ap.add_argument("--generator-cache", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.client:
        return _client_main(args)
    try:
        r = run_bench(args.clients, args.dim, tls=args.tls, active=args.active, proofs=args.proofs, seed=args.seed)
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
    if r["proofs"]:
        print(f"  proofs             prove {n['prove_s_mean']:.4f} CPU s per client (generators "
              f"{n['generators_s_mean']:.4f}), verify {n['verify_s']:.4f} s (batch); "
              f"{n['proof_bytes_per_client']:.0f} bytes per client; in process verify {ip['verify_s']:.4f} s; "
              f"binding {r['binding_ok']}")
    print(f"  exact              {r['exact']}")
    if args.json:
        print(json.dumps(r))
    return 0 if r["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
