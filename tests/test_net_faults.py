"""Faults on the TCP transport: at every protocol step one client disconnects, stalls, sends
garbage or an oversized frame; the round ends with the exact sum of the survivors, or fails
closed below the threshold with the step. Frames are bounded before they are read, writes and
reads end at the step's deadline, and a client the server refuses exits with an error."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import sys
import time

import numpy as np
import pytest

from secagg.errors import ConfigError, DecodeError, OversizedMessage, TooFewSurvivors
from secagg.client import SecAggClient
from secagg.keys import SigningKey
from secagg.net.client import demo_input, main, run_client
from secagg.net.framing import ConnectionClosed, DeadlineExceeded, write_frame
from secagg.net.server import serve_round
from secagg.params import SecAggParams
from secagg.protocol import max_frame_bytes, protocol_steps, step_named
from secagg.randomness import SystemRandom

RID = bytes(range(16))
ROUND_HEX = RID.hex()
DIM, BITS, SEED = 16, 32, 7
PLAIN_STEPS = [s.name for s in protocol_steps(SecAggParams(num_clients=4, threshold=3))]
KINDS = ["disconnect", "stall", "garbage", "oversized"]
STEP_TIMEOUT = 1.0
FAULTY = 2


class _Vanished(Exception):
    """The faulty test client stopped on purpose."""


def _faulty_send(step: str, kind: str, params: SecAggParams):
    """A ``send`` for :func:`run_client` that misbehaves at ``step`` and is honest before it."""
    async def send(writer: asyncio.StreamWriter, spec, payload: bytes) -> None:
        if spec.name != step:
            await write_frame(writer, payload, timeout=10)
            return
        if kind == "disconnect":
            writer.transport.abort()
            raise _Vanished(kind)
        if kind == "stall":  # neither sends nor reads any more
            await asyncio.sleep(3600)
        if kind == "garbage":
            await write_frame(writer, os.urandom(len(payload)), timeout=10)
            raise _Vanished(kind)
        if kind == "oversized":  # a whole frame one byte over the step's bound
            big = max_frame_bytes(spec, params, DIM) + 1
            writer.write(struct.pack(">I", big) + os.urandom(big))
            await writer.drain()
            raise _Vanished(kind)
        raise AssertionError(kind)
    return send


async def _round(params: SecAggParams, bad: dict[int, tuple[str, str]], *, join_timeout: float = 10.0,
                 step_timeout: float = STEP_TIMEOUT):
    ports: asyncio.Queue = asyncio.Queue()
    faults: dict = {}
    server = asyncio.create_task(serve_round(params, RID, DIM, on_listening=ports.put_nowait, faults=faults,
                                             join_timeout=join_timeout, step_timeout=step_timeout))
    port = await ports.get()
    xs = {u: demo_input(SEED, u, DIM, BITS) for u in params.client_ids}
    clients = {u: asyncio.create_task(run_client(
        params, u, RID, xs[u], port=port, timeout=15,
        send=_faulty_send(*bad[u], params) if u in bad else None)) for u in params.client_ids}
    try:
        result = await asyncio.wait_for(server, 30)
    finally:  # the honest clients end with the round; a stalled one is stopped here
        await asyncio.wait([c for u, c in clients.items() if u not in bad], timeout=5)
        for c in clients.values():
            c.cancel()
        outcomes = dict(zip(clients, await asyncio.gather(*clients.values(), return_exceptions=True)))
    return result, xs, faults, outcomes


def _plain_sum(xs, ids):
    return (sum(xs[u].astype(np.uint64) for u in ids) % (1 << BITS)).astype(np.uint32)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("step", PLAIN_STEPS)
def test_one_faulty_client_at_each_step_round_goes_on(step, kind):
    params = SecAggParams(num_clients=4, threshold=3)
    joining = step == "advertise_keys"
    t0 = time.monotonic()
    result, xs, faults, outcomes = asyncio.run(
        _round(params, {FAULTY: (step, kind)}, join_timeout=2.0 if joining else 10.0))
    elapsed = time.monotonic() - t0
    in_sum = step == "unmask"  # its masked input arrived before it failed
    honest = [u for u in params.client_ids if u != FAULTY]
    assert result.survivors == tuple(sorted(honest + ([FAULTY] if in_sum else [])))
    assert np.array_equal(result.vector, _plain_sum(xs, result.survivors))
    if in_sum:
        assert result.late == {FAULTY: "unmask"}
    else:
        assert result.dropped == {FAULTY: step_named(step).dropout}
    assert all(outcomes[u] == "done" for u in honest), outcomes
    if not joining:  # a client that joined is named with the reason it was dropped
        want = {"disconnect": (ConnectionClosed, OSError), "stall": DeadlineExceeded,
                "garbage": DecodeError, "oversized": OversizedMessage}[kind]
        assert set(faults) == {FAULTY} and isinstance(faults[FAULTY], want), faults
        if kind == "oversized":  # refused from the frame header, not after reading it
            assert "frame of" in str(faults[FAULTY])
    # only a stall waits for a deadline; the other faults are seen at once
    assert elapsed < (2.0 if joining else 0.0) + (STEP_TIMEOUT if kind == "stall" else 0.0) + 8.0


@pytest.mark.parametrize("step", PLAIN_STEPS)
def test_below_threshold_fails_closed_with_the_step(step):
    params = SecAggParams(num_clients=3, threshold=3)
    with pytest.raises(TooFewSurvivors) as err:
        asyncio.run(_round(params, {FAULTY: (step, "garbage")}, join_timeout=2.0))
    assert err.value.step == step_named(step).dropout


def _server_task(params, **kw):
    ports: asyncio.Queue = asyncio.Queue()
    task = asyncio.create_task(serve_round(params, RID, DIM, on_listening=ports.put_nowait, **kw))
    return task, ports


def test_pre_join_length_prefix_refused_without_reading_it():
    """A connection that has not joined announces 1 GiB: closed at once (the old limit was 1 GiB
    and the server waited for the bytes until the join deadline), and the round goes on."""
    params = SecAggParams(num_clients=3, threshold=2)

    async def go():
        server, ports = _server_task(params, join_timeout=30.0, step_timeout=10.0)
        port = await ports.get()
        closed_after = {}
        for announced in (1 << 30, max_frame_bytes("advertise_keys", params, DIM) + 1):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            t0 = time.monotonic()
            writer.write(struct.pack(">I", announced) + b"\x00" * 64)
            await writer.drain()
            try:
                rest = await asyncio.wait_for(reader.read(), 3.0)
            except ConnectionResetError:
                rest = b""
            closed_after[announced] = time.monotonic() - t0
            assert rest == b""
            writer.close()
        xs = {u: demo_input(SEED, u, DIM, BITS) for u in params.client_ids}
        outs = await asyncio.gather(*(run_client(params, u, RID, xs[u], port=port, timeout=15) for u in params.client_ids))
        result = await asyncio.wait_for(server, 20)
        return closed_after, outs, result, xs

    closed_after, outs, result, xs = asyncio.run(go())
    assert all(s < 3.0 for s in closed_after.values()), closed_after
    assert outs == ["done"] * 3
    assert np.array_equal(result.vector, _plain_sum(xs, (1, 2, 3)))


def test_write_frame_to_a_peer_that_stops_reading_ends_at_the_deadline():
    """``write_frame`` used to wait on ``drain()`` without limit: a peer that stops reading held
    the writer for ever. With a deadline it raises and aborts the connection."""
    async def go():
        accepted: asyncio.Queue = asyncio.Queue()

        async def on_conn(reader, writer):
            await accepted.put(writer)

        listener = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        sock = socket.create_connection(("127.0.0.1", port))  # never reads
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer = await accepted.get()
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            await asyncio.wait_for(write_frame(writer, b"\x00" * (64 << 20), timeout=0.5), 10.0)
        elapsed = time.monotonic() - t0
        assert writer.transport.is_closing()
        sock.close()
        listener.close()
        await listener.wait_closed()
        return elapsed

    assert asyncio.run(go()) < 5.0


def test_client_that_stops_reading_and_sending_is_dropped_at_the_deadline():
    """A client that joined and then neither reads nor sends: the server goes on after one step
    deadline, the round ends with the others."""
    params = SecAggParams(num_clients=4, threshold=3)

    async def go():
        server, ports = _server_task(params, join_timeout=10.0, step_timeout=STEP_TIMEOUT)
        port = await ports.get()
        xs = {u: demo_input(SEED, u, DIM, BITS) for u in params.client_ids}
        # client 4 joins by hand, then goes silent without reading its socket
        silent = SecAggClient(params, 4, RID)
        _, w = await asyncio.open_connection("127.0.0.1", port)
        await write_frame(w, silent.advertise_keys().encode(), timeout=5)
        t0 = time.monotonic()
        outs = await asyncio.gather(*(run_client(params, u, RID, xs[u], port=port, timeout=15) for u in (1, 2, 3)))
        result = await asyncio.wait_for(server, 20)
        w.close()
        return outs, result, xs, time.monotonic() - t0

    outs, result, xs, elapsed = asyncio.run(go())
    assert outs == ["done"] * 3
    assert result.survivors == (1, 2, 3) and result.dropped == {4: "share_keys"}
    assert np.array_equal(result.vector, _plain_sum(xs, (1, 2, 3)))
    assert elapsed < STEP_TIMEOUT + 8.0


def _client_cmd(port: int, u: int, n: int, t: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "secagg.net.client", "--port", str(port), "--id", str(u), "--clients", str(n),
            "--threshold", str(t), "--dim", str(DIM), "--bits", str(BITS), "--round-id", ROUND_HEX,
            "--input-seed", str(SEED), "--timeout", "30", *extra]


def _env() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.mark.network
def test_client_process_with_an_unexpected_id_exits_non_zero_with_a_clear_error():
    params = SecAggParams(num_clients=3, threshold=2)

    async def go():
        server, ports = _server_task(params, join_timeout=30.0, step_timeout=10.0)
        port = await ports.get()
        # the intruder believes in 5 clients and is client 5: this server expects ids 1..3
        proc = await asyncio.create_subprocess_exec(*_client_cmd(port, 5, 5, 3), env=_env(),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        xs = {u: demo_input(SEED, u, DIM, BITS) for u in params.client_ids}
        outs = await asyncio.gather(*(run_client(params, u, RID, xs[u], port=port, timeout=15) for u in params.client_ids))
        result = await asyncio.wait_for(server, 20)
        return proc.returncode, err.decode(), outs, result, xs

    rc, err, outs, result, xs = asyncio.run(go())
    assert rc == 1, err
    assert "ServerClosed" in err and "refused this client" in err and "client 5" in err, err
    assert outs == ["done"] * 3
    assert np.array_equal(result.vector, _plain_sum(xs, (1, 2, 3)))


def test_tcp_server_refuses_the_active_variant_without_verify_keys():
    with pytest.raises(ConfigError, match="verify keys"):
        asyncio.run(serve_round(SecAggParams(num_clients=6, threshold=4, active=True), RID, DIM))


def _active_round(forger: int | None):
    """An active round of 4 over TCP; client ``forger`` signs with a key the registry does not hold."""
    params = SecAggParams(num_clients=4, threshold=3, active=True)
    rng = SystemRandom()
    signing = {u: SigningKey.generate(rng) for u in params.client_ids}
    registry = {u: k.verify_key for u, k in signing.items()}
    if forger is not None:
        signing[forger] = SigningKey.generate(rng)
    xs = {u: demo_input(SEED, u, DIM, BITS) for u in params.client_ids}
    faults: dict = {}

    async def go():
        ports: asyncio.Queue = asyncio.Queue()
        server = asyncio.create_task(serve_round(params, RID, DIM, on_listening=ports.put_nowait, faults=faults,
                                                 verify_keys=registry, step_timeout=10, join_timeout=3))
        port = await ports.get()

        async def one(u):
            try:
                return await run_client(params, u, RID, xs[u], port=port, timeout=15, signing_key=signing[u],
                                        verify_keys=registry)
            except Exception as exc:  # noqa: BLE001 - the forger is refused; what it sees is its own business
                return type(exc).__name__
        outs = await asyncio.gather(*(one(u) for u in params.client_ids))
        return outs, await asyncio.wait_for(server, 20)

    outs, result = asyncio.run(go())
    return outs, result, xs, faults


@pytest.mark.network
def test_tcp_active_round_gives_the_exact_sum():
    outs, result, xs, faults = _active_round(None)
    assert outs == ["done"] * 4 and not faults
    assert np.array_equal(result.vector, _plain_sum(xs, (1, 2, 3, 4)))


@pytest.mark.network
def test_tcp_active_round_drops_a_client_whose_signature_the_registry_refuses():
    # its first message (signed keys) is refused at the join, so it never enters the round
    outs, result, xs, faults = _active_round(forger=2)
    assert outs[1] != "done" and [o for i, o in enumerate(outs) if i != 1] == ["done"] * 3
    assert 2 not in result.survivors and sorted(result.survivors) == [1, 3, 4]
    assert np.array_equal(result.vector, _plain_sum(xs, tuple(result.survivors)))


def test_client_cli_refuses_an_id_outside_its_own_round():
    with pytest.raises(SystemExit) as err:
        main(["--port", "1", "--id", "9", "--clients", "3", "--threshold", "2", "--dim", "4",
              "--round-id", ROUND_HEX, "--input-seed", "1"])
    assert err.value.code == 2


@pytest.mark.network
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("step", ["share_keys", "masked_input"])
def test_killed_client_process_is_dropped_and_the_sum_is_exact(step):
    """Real client processes; one is killed (SIGKILL) as the server begins ``step``."""
    params = SecAggParams(num_clients=4, threshold=3)
    victim = 3

    async def go():
        procs = {}

        def on_step(name: str) -> None:
            if name == step and procs[victim].returncode is None:
                procs[victim].kill()

        server, ports = _server_task(params, join_timeout=60.0, step_timeout=30.0, on_step=on_step)
        port = await ports.get()
        for u in params.client_ids:
            procs[u] = await asyncio.create_subprocess_exec(
                *_client_cmd(port, u, 4, 3), env=_env(), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        try:
            result = await asyncio.wait_for(server, 90)
            codes = {u: await asyncio.wait_for(p.wait(), 30) for u, p in procs.items()}
        finally:
            for p in procs.values():
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        return result, codes

    result, codes = asyncio.run(go())
    assert codes[victim] == -signal.SIGKILL
    assert all(codes[u] == 0 for u in params.client_ids if u != victim), codes
    assert result.survivors == (1, 2, 4)
    assert result.dropped == {victim: step_named(step).dropout}
    xs = {u: demo_input(SEED, u, DIM, BITS) for u in params.client_ids}
    assert np.array_equal(result.vector, _plain_sum(xs, (1, 2, 4)))


# ---------------------------------------------------------------- join tokens (network review, F2)

async def _token_round(hijack: str):
    """Four invited clients with join tokens; an intruder connects first and tries to take
    client 2's slot: with no token, a wrong one, or client 3's token while claiming to be 2."""
    import secrets

    from secagg.net.server import JOIN_TOKEN_BYTES

    params = SecAggParams(num_clients=4, threshold=3)
    tokens = {u: secrets.token_bytes(JOIN_TOKEN_BYTES) for u in params.client_ids}
    ports: asyncio.Queue = asyncio.Queue()
    server = asyncio.create_task(serve_round(params, RID, DIM, on_listening=ports.put_nowait, join_timeout=5,
                                             step_timeout=STEP_TIMEOUT, join_tokens=tokens))
    port = await ports.get()
    xs = {u: demo_input(SEED, u, DIM, BITS) for u in params.client_ids}
    evil = np.full(DIM, 12345, dtype=xs[2].dtype)
    token = {"none": None, "wrong": secrets.token_bytes(JOIN_TOKEN_BYTES), "other": tokens[3]}[hijack]
    intruder = asyncio.create_task(run_client(params, 2, RID, evil, port=port, timeout=8, join_token=token))
    done, _ = await asyncio.wait([intruder], timeout=2)  # refused at once (or it would hold the slot)
    clients = [asyncio.create_task(run_client(params, u, RID, xs[u], port=port, timeout=8, join_token=tokens[u]))
               for u in params.client_ids]
    result = await asyncio.wait_for(server, 30)
    await asyncio.wait(clients, timeout=5)
    intruder.cancel()
    return params, xs, result, done


@pytest.mark.parametrize("hijack", ["none", "wrong", "other"])
def test_a_slot_goes_only_to_the_holder_of_its_join_token(hijack):
    params, xs, result, done = asyncio.run(_token_round(hijack))
    assert done  # the intruder was refused, not left holding a slot
    assert result.survivors == (1, 2, 3, 4)
    assert np.array_equal(result.vector, _plain_sum(xs, (1, 2, 3, 4)))  # the honest client 2's input, not the intruder's
