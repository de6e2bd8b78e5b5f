"""The networked run against hostile peers: the second half of the network review's findings.

Each test replays one finding with the real server and client code: idle connections that
filled the pre-join cap (F3), a legal frame of a million tiny JSON values (F8), a server that
chooses the clients' protection (F9), a SecAgg refusal recorded as a plain dropout (F10), a
claimed weight that froze the model (F11), a SecAgg port someone else holds (F6).
"""
from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
import threading
import time
import types

import numpy as np
import pytest

from fl.config import ConfigError, find_config, load_config
from fl.net.messages import (MAX_CONTAINERS, MAX_SEPARATORS, Challenge, Hello, Refused, MalformedFrame, SecAggStart, Setup, Update,
                             decode, encode)

from net_fakes import FakeSession

pytestmark = pytest.mark.network

RID, DIM, BITS = bytes(range(16)), 8, 32


def _run_dir_log(out) -> list[str]:
    return (out / "run.log").read_text().splitlines()


# ---------------------------------------------------------------- F3: the pre-join cap
def test_idle_connections_cannot_lock_clients_out_of_a_secagg_round():
    from secagg.net.client import demo_input, run_client
    from secagg.net.server import serve_round
    from secagg.params import SecAggParams

    async def main():
        params = SecAggParams(num_clients=4, threshold=3)
        ports: asyncio.Queue = asyncio.Queue()
        logs: list[str] = []
        server = asyncio.create_task(serve_round(params, RID, DIM, on_listening=ports.put_nowait, join_timeout=10,
                                                 step_timeout=10, log=logs.append))
        port = await ports.get()
        # more idle connections than the cap (max(64, 4n)), none sending a byte
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(80)]
        await asyncio.sleep(0.3)
        xs = {u: demo_input(7, u, DIM, BITS) for u in params.client_ids}
        out = await asyncio.gather(*(run_client(params, u, RID, xs[u], port=port, timeout=10)
                                     for u in params.client_ids))
        res = await server
        for s in idle:
            s.close()
        return out, res, xs, logs

    out, res, xs, logs = asyncio.run(main())
    assert out == ["done"] * 4
    assert res.survivors == (1, 2, 3, 4)
    assert np.array_equal(res.vector, sum(x.astype(np.uint64) for x in xs.values()).astype(np.uint32))
    assert any("closed to make room" in line for line in logs), logs


def test_idle_connections_cannot_lock_writers_out_of_the_session():
    from fl.net.session import ServerSession
    session = ServerSession("[run]\n", dim=4, timeout=5, writers={0, 1}, hello_timeout=20)
    try:
        idle = [socket.create_connection(("127.0.0.1", session.port)) for _ in range(80)]
        time.sleep(0.3)
        for w in (0, 1):
            s = socket.create_connection(("127.0.0.1", session.port), timeout=5)
            payload = encode(Hello(w))
            s.sendall(struct.pack(">I", len(payload)) + payload)
            (n,) = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))
            decode(s.recv(n, socket.MSG_WAITALL), Challenge)
            (n,) = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))
            assert decode(s.recv(n, socket.MSG_WAITALL), Setup).config == "[run]\n"
        assert session.wait_for({0, 1}, 5) == {0, 1}
        assert session.evicted >= 80 - 64
        for s in idle:
            s.close()
    finally:
        session.close()


# ---------------------------------------------------------------- F8: a frame of tiny values
@pytest.mark.parametrize("build", [
    lambda: {"message_id": 0, "weight": 1.0, "dtype": "int64", "extras": {"x": [{}] * 1_400_000},
             "measurements": {}, "events": [], "refused": None, "verify_key": ""},
    lambda: {"message_id": 0, "weight": 1.0, "dtype": "int64", "extras": {},
             "measurements": {f"m{i}": 1 for i in range(MAX_SEPARATORS)}, "events": [], "refused": None,
             "verify_key": ""},
    lambda: {"message_id": 0, "weight": 1.0, "dtype": "int64", "extras": {"x": [[1]] * MAX_CONTAINERS},
             "measurements": {}, "events": [], "refused": None, "verify_key": ""},
], ids=["nested_objects", "many_keys", "many_lists"])
def test_a_header_of_many_tiny_values_is_refused_before_it_is_parsed(build, monkeypatch):
    import json

    from fl.net import messages
    head = json.dumps(build(), separators=(",", ":")).encode()
    frame = struct.pack(">BI", Update.KIND, len(head)) + head

    def never(*a, **k):  # the count decides before the parser runs
        raise AssertionError("json.loads ran on a header over the bounds")

    monkeypatch.setattr(messages.json, "loads", never)
    with pytest.raises(MalformedFrame, match="more JSON values"):
        decode(frame, Update)


def test_an_honest_update_with_large_bytes_still_decodes():
    proof = bytes(range(256)) * 64  # 16 KiB, more than a proof
    up = Update(3, 2.0, "int64", {"norm_proof": {"commitment": b"\x02" * 33, "proof": proof}, "attacker": True},
                {"quantize_clipped": 1.0}, ["a, b: c"] * 8, None)
    assert decode(encode(up), Update) == up


# ---------------------------------------------------------------- F8 (whitelist): extras no stage sends
def test_extras_no_stage_sends_are_excluded_and_named():
    from fl.aggregation import RoundContext
    from fl.data import load_dataset
    from fl.net.server import NetworkSimulation

    good = dict(weight=3.0, dtype="int64", measurements={}, events=[], refused=None)
    proof = {"commitment": b"\x02" * 33, "proof": b"p"}
    ups = {0: Update(0, extras={"norm_proof": proof, "attacker": True}, **good),
           1: Update(1, extras={"norm_proof": proof, "secagg_exclude": "x"}, **good),
           2: Update(2, extras={"norm_proof": proof, "attacker": "yes"}, **good),
           3: Update(3, extras={"norm_proof": {"commitment": b"\x02", "proof": "text"}}, **good),
           4: Update(4, extras={"norm_proof": {**proof, "opening": b"o"}}, **good)}
    cfg = load_config(find_config("synthetic_small"), ["aggregation.secure=true", "aggregation.weighting=fixed",
                                                        "aggregation.norm_bound=1.0"])
    sim = NetworkSimulation(cfg, load_dataset("synthetic:12:0"), session=FakeSession(ups))
    ctx = RoundContext(round_index=0, seed=0, dim=14410, expected_clients=5)
    msgs = sim.client_messages(0, ctx, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [])
    assert msgs[0].adversary.refused is None
    for m, why in zip(msgs[1:], ["no stage of this run sends: 'secagg_exclude'", "is not a bool",
                                 "is not {commitment, proof}", "is not {commitment, proof}"]):
        assert m.adversary.refused[1] == "malformed_update" and why in m.adversary.refused[2], m.adversary.refused


# ---------------------------------------------------------------- F11: claimed weights
def test_claimed_weights_are_capped_at_the_largest_writer_when_no_cap_is_set():
    from fl.aggregation.mean import MeanStage
    from fl.aggregation.base import Stage
    from fl.data import load_dataset
    from fl.net.server import NetworkSimulation
    from fl.aggregation import ClientMessage

    cfg = load_config(find_config("synthetic_small"), ["aggregation.secure=true"])
    assert cfg.aggregation.weighting == "examples" and cfg.aggregation.max_weight == 0
    data = load_dataset("synthetic:12:0")
    session = FakeSession({})
    sim = NetworkSimulation(cfg, data, session=session)
    stage = sim.pipeline
    while not isinstance(stage, MeanStage):
        assert isinstance(stage, Stage)
        stage = stage.inner
    cap = max(data.num_train(w) for w in data.train_clients())
    assert stage.max_weight == cap
    assert stage.capped(ClientMessage(0, np.zeros(3, np.float32), weight=1e300)).weight == cap
    assert stage.capped(ClientMessage(0, np.zeros(3, np.float32), weight=cap - 1)).weight == cap - 1
    assert any("capped at" in line for line in session.lines)
    # a public cap from the config is kept as set
    cfg2 = load_config(find_config("synthetic_small"), ["aggregation.secure=true", "aggregation.max_weight=7"])
    sim2 = NetworkSimulation(cfg2, data, session=FakeSession({}))
    stage2 = sim2.pipeline
    while not isinstance(stage2, MeanStage):
        stage2 = stage2.inner
    assert stage2.max_weight == 7.0


@pytest.mark.slow
def test_one_huge_weight_claim_no_longer_freezes_the_model(tmp_path):
    import torch

    from fl.experiment import read_checkpoint
    from fl.model import init_params
    from fl.net.client import ClientProcess
    from fl.net.launch import serve

    cfg = load_config(find_config("synthetic_small"), ["aggregation.secure=true", "run.rounds=1", "eval.every=1",
                                                        "run.checkpoint_every=1"])
    claimed: list[int] = []

    class Liar(ClientProcess):
        def _update(self, run, writer, start):
            up, keep = super()._update(run, writer, start)
            if not claimed:
                claimed.append(writer)
                up = dataclasses.replace(up, weight=1e300)
            return up, keep

    def on_listening(port):
        threading.Thread(target=lambda: asyncio.run(Liar("127.0.0.1", port, cfg.data.path, list(range(12)),
                                                         timeout=30).run()), daemon=True).start()

    serve(cfg, out=tmp_path / "run", progress=False, join_timeout=30, timeout=30, on_listening=on_listening)
    last = sorted((tmp_path / "run" / "checkpoints").glob("round_*.pt"))[-1]
    step = read_checkpoint(last)["params"] - init_params(cfg.model.name, cfg.run.seed)
    assert claimed and torch.isfinite(step).all() and float(step.norm()) > 1e-2


# ---------------------------------------------------------------- F9: the clients' policy
def _cfg(*overrides):
    return load_config(find_config("synthetic_small"), list(overrides))


def test_client_policy_refuses_a_config_weaker_than_agreed():
    from fl.net.client import ClientProcess, PolicyRefused

    agreed = _cfg("aggregation.secure=true", "aggregation.secagg_active=true")
    cp = ClientProcess("127.0.0.1", 1, "synthetic", [0], expect=agreed)
    cp._check_policy(_cfg("aggregation.secure=true", "aggregation.secagg_active=true", "run.rounds=3"))
    with pytest.raises(PolicyRefused, match=r"aggregation.secagg_active = False \(expected True\)"):
        cp._check_policy(_cfg("aggregation.secure=true"))
    with pytest.raises(PolicyRefused, match="aggregation.secagg_dropout"):
        cp._check_policy(_cfg("aggregation.secure=true", "aggregation.secagg_active=true",
                              "aggregation.secagg_dropout=0.3"))
    with pytest.raises(PolicyRefused, match="fedavg.clients_per_round = 5"):
        cp._check_policy(_cfg("aggregation.secure=true", "aggregation.secagg_active=true",
                              "fedavg.clients_per_round=5"))
    strict = ClientProcess("127.0.0.1", 1, "synthetic", [0], require_active=True)
    with pytest.raises(PolicyRefused, match="--require-active"):
        strict._check_policy(_cfg("aggregation.secure=true"))
    strict._check_policy(agreed)
    with pytest.raises(ConfigError, match="--min-clients"):
        ClientProcess("127.0.0.1", 1, "synthetic", [0], min_clients=2)


def test_client_refuses_a_secagg_round_below_its_minimum_or_above_the_config():
    from fl.net.client import ClientProcess, PolicyRefused

    cp = ClientProcess("127.0.0.1", 1, "synthetic", [0], min_clients=5)
    run = types.SimpleNamespace(cfg=_cfg())  # clients_per_round = 8

    def start(n):
        return SecAggStart(0, 1, n, 0, RID.hex(), 1, [], "ab" * 32)

    with pytest.raises(PolicyRefused, match="round of 4 clients; --min-clients is 5"):
        asyncio.run(cp._secagg(run, 0, start(4), np.zeros(3, np.uint32), [], None))
    with pytest.raises(MalformedFrame, match="a round of 9 clients"):
        asyncio.run(cp._secagg(run, 0, start(9), np.zeros(3, np.uint32), [], None))


def test_a_client_process_refuses_a_server_with_other_aggregation_settings(tmp_path):
    from fl.config import config_to_toml
    from fl.net.client import ClientProcess, PolicyRefused
    from fl.net.session import ServerSession

    served = _cfg("aggregation.secure=true")  # the semi-honest variant
    session = ServerSession(config_to_toml(served), dim=14410, timeout=5, writers={0})
    try:
        cp = ClientProcess("127.0.0.1", session.port, "synthetic", [0], timeout=5,
                           expect=_cfg("aggregation.secure=true", "aggregation.secagg_active=true"))
        with pytest.raises(PolicyRefused, match="secagg_active"):
            asyncio.run(cp.run())
    finally:
        session.close()


def test_sabre_client_cli_exits_non_zero_on_a_policy_refusal(tmp_path, capsys):
    from fl.cli import main
    from fl.config import config_to_toml
    from fl.net.session import ServerSession

    agreed = tmp_path / "agreed.toml"
    agreed.write_text(config_to_toml(_cfg("aggregation.secure=true", "aggregation.secagg_active=true")))
    session = ServerSession(config_to_toml(_cfg("aggregation.secure=true")), dim=14410, timeout=5, writers={0})
    try:
        code = main(["client", "--server", f"127.0.0.1:{session.port}", "--data", "synthetic", "--writers", "0",
                     "--timeout", "5", "--expect-config", str(agreed)])
    finally:
        session.close()
    assert code == 2
    assert "differs from --expect-config" in capsys.readouterr().err


# ---------------------------------------------------------------- F10: refusals over TCP are named
@pytest.mark.slow
def test_a_secagg_refusal_over_tcp_is_an_exclusion_with_its_reason(tmp_path, monkeypatch):
    import fl.net.client as client_module
    from fl.net.client import ClientProcess
    from fl.net.launch import serve
    from secagg.messages import decode_message
    from secagg.net.framing import write_frame

    cfg = load_config(find_config("synthetic_small"), ["aggregation.secure=true", "run.rounds=1", "eval.every=1",
                                                        "run.checkpoint_every=1"])
    real = client_module.run_client
    hostile: list[int] = []

    async def run_client(params, pid, *a, **kw):
        if not hostile:  # this client's masked input claims to come from another client
            hostile.append(pid)

            async def send(writer, spec, payload):
                if spec.name == "masked_input":
                    payload = dataclasses.replace(decode_message(payload), sender=pid % params.num_clients + 1).encode()
                await write_frame(writer, payload, timeout=10)
            kw["send"] = send
        return await real(params, pid, *a, **kw)

    monkeypatch.setattr(client_module, "run_client", run_client)

    def on_listening(port):
        threading.Thread(target=lambda: asyncio.run(ClientProcess("127.0.0.1", port, cfg.data.path, list(range(12)),
                                                                  timeout=30).run()), daemon=True).start()

    serve(cfg, out=tmp_path / "run", progress=False, join_timeout=30, timeout=30, on_listening=on_listening)
    lines = _run_dir_log(tmp_path / "run")
    assert hostile
    assert any("excluded: impersonation" in line for line in lines), [l for l in lines if "client" in l]
    assert not any("dropped at masked_input" in line for line in lines)


# ---------------------------------------------------------------- F6: a SecAgg port someone holds
@pytest.mark.slow
def test_a_secagg_port_in_use_fails_the_round_not_the_run(tmp_path):
    from fl.net.client import ClientProcess
    from fl.net.launch import serve

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    cfg = load_config(find_config("synthetic_small"), ["aggregation.secure=true", "run.rounds=2", "eval.every=2",
                                                        "run.checkpoint_every=2"])

    def on_listening(p):
        threading.Thread(target=lambda: asyncio.run(ClientProcess("127.0.0.1", p, cfg.data.path, list(range(12)),
                                                                  timeout=30).run()), daemon=True).start()

    try:
        serve(cfg, out=tmp_path / "run", progress=False, join_timeout=30, timeout=30, secagg_port=port,
              on_listening=on_listening)
    finally:
        squatter.close()
    lines = _run_dir_log(tmp_path / "run")
    for r in (0, 1):  # each round failed closed (the model not updated), and the run went on
        assert any(f"round {r} failed (secagg_port_unavailable)" in line for line in lines), lines[-10:]
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert rows[-1].split(",")[rows[0].split(",").index("round")] == "1"  # the run went to its end


# ---------------------------------------------------------------- the adversary's own columns
def test_only_a_slot_the_schedule_makes_malicious_reports_the_attack_columns(tmp_path):
    from fl.aggregation import RoundContext
    from fl.experiment import build_run_adversary, open_dataset
    from fl.net.server import NetworkSimulation
    from test_net_process import ATTACK_CONFIG

    path = tmp_path / "attack.toml"
    path.write_text(ATTACK_CONFIG)
    cfg = load_config(path)
    data = open_dataset(cfg)
    good = dict(weight=1.0, dtype="int64", extras={}, events=[], refused=None)
    ups = {0: Update(0, measurements={"attack_boost": 99.0, "attack_sent_norm": 99.0}, **good),
           1: Update(1, measurements={"attack_boost": 3.0, "attack_sent_norm": 0.5}, **good),
           2: Update(2, measurements={}, **good)}
    adversary = build_run_adversary(cfg, data)
    sim = NetworkSimulation(cfg, data, session=FakeSession(ups), adversary=adversary)
    ctx = RoundContext(round_index=0, seed=0, dim=14410, expected_clients=3)
    sim.client_messages(0, ctx, [0, 1, 2], [0, 1, 2], [0, 2], [])  # nobody malicious: nothing taken
    assert adversary.last_attack == {}
    sim.client_messages(0, ctx, [0, 1, 2], [0, 1, 2], [0, 2], [1])
    assert adversary.last_attack == {"round": 0.0, "boost": 3.0, "sent_norm": 0.5}


# ---------------------------------------------------------------- second review, N1: writer identities
def test_hello_proof_known_answer_and_its_checks():
    from fl.net.auth import check_hello_proof, hello_proof

    secret, nonce, server = bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96))
    # HMAC-SHA256(secret, b"sabre/net/hello/v1" || u64be(3) || nonce || server), pinned: over plain
    # TCP the server binding is 32 zero bytes
    assert hello_proof(secret, 3, nonce).hex() == KAT_HELLO_PROOF_TCP
    assert hello_proof(secret, 3, nonce, server).hex() == KAT_HELLO_PROOF_TLS
    proof = hello_proof(secret, 3, nonce, server)
    assert check_hello_proof(secret, 3, nonce, proof, server)
    assert not check_hello_proof(secret, 4, nonce, proof, server)  # another writer
    assert not check_hello_proof(secret, 3, bytes(32), proof, server)  # another challenge (a replay)
    assert not check_hello_proof(bytes(32), 3, nonce, proof, server)  # another secret
    assert not check_hello_proof(secret, 3, nonce, proof)  # another server: a relayed challenge (C3)
    with pytest.raises(ValueError):
        hello_proof(secret[:31], 3, nonce)


KAT_HELLO_PROOF_TCP = "f3667f66f5d626ca7e42771ab492f2e2183339811ada8eac91b7f8a30bf86edf"
KAT_HELLO_PROOF_TLS = "90467beed8aea2649c20b873715d7148c298eba4c4f7bc5c388f0401f7c3b66d"


def test_writer_secrets_files(tmp_path, capsys):
    from fl.cli import main
    from fl.net.auth import load_secrets, write_secrets

    assert main(["writer-secrets", "--writers", "0-9", "--out", str(tmp_path / "all.json")]) == 0
    table = load_secrets(tmp_path / "all.json")
    assert sorted(table) == list(range(10)) and len(set(table.values())) == 10
    assert (tmp_path / "all.json").stat().st_mode & 0o077 == 0  # readable by its owner only
    assert main(["writer-secrets", "--writers", "2-3", "--from", str(tmp_path / "all.json"),
                 "--out", str(tmp_path / "a.json")]) == 0
    assert load_secrets(tmp_path / "a.json") == {2: table[2], 3: table[3]}
    assert main(["writer-secrets", "--writers", "1", "--out", str(tmp_path / "a.json")]) == 2  # no overwrite
    assert main(["writer-secrets", "--writers", "11", "--from", str(tmp_path / "all.json"),
                 "--out", str(tmp_path / "b.json")]) == 2
    good = "ab" * 32
    for bad in ['{"format": 1, "writers": {"x": "00"}}', '{"format": 2, "writers": {}}', "[]", "not json",
                '{"format": 1, "writers": {}}', '{"format": 1, "writers": {"1": "' + "zz" * 32 + '"}}',
                # third review, C5: aliases of another id, a non-ASCII digit, an id past 2^64
                '{"format": 1, "writers": {"03": "' + good + '"}}', '{"format": 1, "writers": {"\u0663": "' + good + '"}}',
                '{"format": 1, "writers": {"\u00b2": "' + good + '"}}',
                '{"format": 1, "writers": {"18446744073709551616": "' + good + '"}}']:
        (tmp_path / "bad.json").write_text(bad)
        (tmp_path / "bad.json").chmod(0o600)
        with pytest.raises(ConfigError, match="writer secrets"):
            load_secrets(tmp_path / "bad.json")
    (tmp_path / "loose.json").write_text('{"format": 1, "writers": {"3": "' + good + '"}}')
    (tmp_path / "loose.json").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_secrets(tmp_path / "loose.json")
    (tmp_path / "loose.json").chmod(0o600)
    assert load_secrets(tmp_path / "loose.json") == {3: bytes.fromhex(good)}
    with pytest.raises(ConfigError, match="exists"):
        write_secrets(tmp_path / "all.json", table)


def _raw_hello(port: int, writer: int, proof_for=None):
    """A raw connection that reads the challenge and sends Hello(writer) with ``proof_for(nonce)``."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    (n,) = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))
    nonce = bytes.fromhex(decode(s.recv(n, socket.MSG_WAITALL), Challenge).nonce)
    proof = proof_for(nonce) if proof_for else ""
    payload = encode(Hello(writer, proof))
    s.sendall(struct.pack(">I", len(payload)) + payload)
    return s, nonce, proof


def _answer(s) -> bytes:
    head = s.recv(4, socket.MSG_WAITALL)
    if len(head) < 4:
        raise ConnectionError("closed")
    (n,) = struct.unpack(">I", head)
    return s.recv(n, socket.MSG_WAITALL)


def test_a_writer_joins_only_with_a_proof_of_its_secret():
    from fl.net.auth import hello_proof, make_secrets
    from fl.net.client import ClientProcess, JoinRefused
    from fl.net.session import ServerSession

    table = make_secrets(range(4))
    lines: list[str] = []
    session = ServerSession("[run]\n", dim=4, timeout=5, writers={0, 1, 2, 3}, hello_timeout=5,
                            writer_secrets=table, log=lines.append)
    try:
        attempts = {
            "no proof": lambda nonce: "",
            "another writer's secret": lambda nonce: hello_proof(table[2], 3, nonce).hex(),
            "a proof for writer 2": lambda nonce: hello_proof(table[2], 2, nonce).hex(),
            "a random secret": lambda nonce: hello_proof(bytes(32), 3, nonce).hex(),
        }
        for name, how in attempts.items():  # an outsider claims writer 3: told no, then closed
            s, _, _ = _raw_hello(session.port, 3, how)
            assert "no valid proof of writer 3's secret" in decode(_answer(s), Refused).reason, name
            with pytest.raises((ConnectionError, OSError)):
                _answer(s)
            s.close()
        assert session.connected() == []
        # fourth review, D4: an unknown writer gets the same answer as a known one without a proof
        s, _, _ = _raw_hello(session.port, 9, lambda nonce: "")
        assert decode(_answer(s), Refused).reason == "no valid proof of writer 9's secret (for this server)"
        s.close()
        # a recorded good Hello cannot be replayed on a new connection (a new challenge)
        good, nonce, proof = _raw_hello(session.port, 3, lambda n: hello_proof(table[3], 3, n).hex())
        assert decode(_answer(good), Setup).config == "[run]\n"
        good.close()
        session.wait_for({3}, 5)
        session._drop(3, "test: the link went away")
        s = socket.create_connection(("127.0.0.1", session.port), timeout=5)
        _answer(s)  # a fresh challenge; the old proof answers another one
        payload = encode(Hello(3, proof))
        s.sendall(struct.pack(">I", len(payload)) + payload)
        assert isinstance(decode(_answer(s), Refused), Refused)
        s.close()
        # the honest writer with its secret joins, over the real client code
        cp = ClientProcess("127.0.0.1", session.port, "synthetic", [3], timeout=5, secrets={3: table[3]})

        async def join():
            reader, conn, setup = await cp._join(3)
            conn.close()
            return setup

        assert asyncio.run(join()).config == "[run]\n"
        assert any("no valid proof of writer 3's secret" in line for line in lines)
        # a refusal is final: the client says why at once instead of trying again
        wrong = ClientProcess("127.0.0.1", session.port, "synthetic", [1], timeout=30, secrets={1: bytes(32)})
        t0 = time.monotonic()
        with pytest.raises(JoinRefused, match="writer 1: the server refused it: no valid proof"):
            asyncio.run(wrong._join(1))
        assert time.monotonic() - t0 < 5
    finally:
        session.close()


def test_one_refused_writer_does_not_end_its_process_siblings():
    from fl.net.auth import make_secrets
    from fl.net.client import ClientProcess
    from fl.net.client import JoinRefused
    from fl.net.session import ServerSession

    table = make_secrets(range(3))
    session = ServerSession("[run]\n", dim=4, timeout=5, writers={0, 1, 2}, hello_timeout=5, writer_secrets=table)
    outcome: list = []
    wrong = {**table, 1: bytes(32)}  # writer 1 holds a wrong secret

    class NoTraining(ClientProcess):
        def _run_for(self, config_text):
            return types.SimpleNamespace(data={0: None, 1: None, 2: None}, dim=4)

    def play():
        try:
            asyncio.run(NoTraining("127.0.0.1", session.port, "synthetic", [0, 1, 2], timeout=10,
                                   secrets=wrong).run())
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcome.append(exc)

    t = threading.Thread(target=play)
    t.start()
    try:
        assert session.wait_for({0, 2}, 10) == {0, 2}
        time.sleep(1)  # writer 1 was refused; 0 and 2 are still there
        assert session.connected() == [0, 2]
    finally:
        session.close()  # Bye: writers 0 and 2 end normally
        t.join(20)
    assert isinstance(outcome[0], JoinRefused) and "writer 1" in str(outcome[0])


def test_serve_cli_needs_writer_secrets_or_an_explicit_open_join(tmp_path, capsys):
    from fl.cli import main

    assert main(["serve", "synthetic_small", "--set", "aggregation.secure=true"]) == 2
    assert "--writer-secrets FILE" in capsys.readouterr().err
    assert main(["serve", "synthetic_small", "--open-join", "--writer-secrets", "x.json"]) == 2


# ---------------------------------------------------------------- N3, N4: TLS handshakes, token holders
def test_connections_in_their_tls_handshake_count_among_the_joining(tmp_path):
    from fl.net.client import ClientProcess
    from fl.net.session import ServerSession
    from fl.net.tls import client_context, make_certificates, server_context

    from fl.net.auth import make_secrets

    ca, cert, key = make_certificates(tmp_path, ("127.0.0.1",))
    table = make_secrets([0])
    session = ServerSession("[run]\n", dim=4, timeout=5, writers={0}, hello_timeout=30,
                            ssl_context=server_context(cert, key), writer_secrets=table)
    try:
        idle = [socket.create_connection(("127.0.0.1", session.port)) for _ in range(80)]  # no handshake
        time.sleep(0.5)
        assert session.evicted >= 80 - 64  # counted from the TCP accept, so capped and evicted
        # the writer's proof binds the server's certificate as the client received it
        cp = ClientProcess("127.0.0.1", session.port, "synthetic", [0], timeout=5, ssl_context=client_context(ca),
                           secrets=table)

        async def join():
            reader, conn, setup = await cp._join(0)
            conn.close()
            return setup

        assert asyncio.run(join()).config == "[run]\n"
        for s in idle:
            s.close()
    finally:
        session.close()


def test_a_listener_without_sockets_is_an_os_error_and_fails_the_round_closed(monkeypatch):
    import secagg.net.server as server_module
    from secagg.params import SecAggParams

    class Empty:
        sockets: list = []

        def close(self):
            pass

    async def start_server(*a, **k):
        return Empty()

    monkeypatch.setattr(server_module.asyncio, "start_server", start_server)
    with pytest.raises(OSError, match="no socket could listen"):
        asyncio.run(server_module.serve_round(SecAggParams(num_clients=3, threshold=2), RID, DIM))


def test_a_token_holder_is_not_evicted_while_it_joins():
    import secrets as secrets_module

    from secagg.net.client import demo_input, run_client
    from secagg.net.framing import write_frame
    from secagg.net.server import JOIN_TOKEN_BYTES, serve_round
    from secagg.params import SecAggParams

    params = SecAggParams(num_clients=3, threshold=2)
    tokens = {u: secrets_module.token_bytes(JOIN_TOKEN_BYTES) for u in params.client_ids}

    async def main():
        ports: asyncio.Queue = asyncio.Queue()
        server = asyncio.create_task(serve_round(params, RID, DIM, on_listening=ports.put_nowait, join_timeout=10,
                                                 step_timeout=10, join_tokens=tokens))
        port = await ports.get()
        idle: list = []

        async def slow_first(writer, spec, payload):  # client 1: token sent, then a flood, then its keys
            if spec.name == "advertise_keys":
                await asyncio.sleep(0.2)
                idle.extend(socket.create_connection(("127.0.0.1", port)) for _ in range(80))
                await asyncio.sleep(0.3)
            await write_frame(writer, payload, timeout=10)

        xs = {u: demo_input(3, u, DIM, BITS) for u in params.client_ids}
        out = await asyncio.gather(*(run_client(params, u, RID, xs[u], port=port, timeout=10, join_token=tokens[u],
                                                send=slow_first if u == 1 else None) for u in params.client_ids))
        res = await server
        for s in idle:
            s.close()
        return out, res

    out, res = asyncio.run(main())
    assert out == ["done"] * 3 and res.survivors == (1, 2, 3)


# ---------------------------------------------------------------- N5, N6
def test_a_config_nested_past_the_parser_is_a_config_error():
    from fl.net.client import ClientProcess

    cp = ClientProcess("127.0.0.1", 1, "synthetic", [0])
    with pytest.raises(ConfigError, match="nested too deeply|not TOML"):
        cp._run_for("a = " + "[" * 5000 + "]" * 5000)


def test_client_counts_are_bounded_and_a_zero_weight_claim_is_excluded():
    from fl.aggregation import RoundContext
    from fl.data import load_dataset
    from fl.net.server import NetworkSimulation

    good = dict(dtype="uint32", extras={}, events=[], refused=None)
    ups = {0: Update(0, weight=3.0, measurements={"quantize_clipped": 1.5e308, "client_nonfinite_zeroed": 5.0}, **good),
           1: Update(1, weight=3.0, measurements={"quantize_clipped": 1.5e308}, **good),
           2: Update(2, weight=3.0, measurements={"quantize_clipped": 7.0, "client_nonfinite_zeroed": 1.0}, **good),
           3: Update(3, weight=0.0, measurements={}, **good)}
    cfg = load_config(find_config("synthetic_small"), ["aggregation.secure=true"])
    sim = NetworkSimulation(cfg, load_dataset("synthetic:12:0"), session=FakeSession(ups))
    ctx = RoundContext(round_index=0, seed=0, dim=14410, expected_clients=4)
    msgs = sim.client_messages(0, ctx, [0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3], [])
    assert ctx.measurements == {"quantize_clipped": 7.0, "client_nonfinite_zeroed": 1.0}
    assert msgs[3].adversary.refused[1] == "malformed_update" and "examples" in msgs[3].adversary.refused[2]
    assert all(m.adversary.refused is None for m in msgs[:3])


# ---------------------------------------------------------------- third review: C1, C2
def test_a_flood_of_idle_connections_from_many_addresses_cannot_keep_writers_out(tmp_path):
    # third review, C1: idle TLS connections from one address at thousands a second closed every
    # writer's connection in its handshake (the longest waiter went); fourth review, D1: evicting
    # the busiest address's longest waiter let idle connections from many addresses aim at a
    # client joining several writers at once (20-50 a second sufficed). The victim is now drawn
    # at random and a client tries again until its timeout.
    from fl.net.auth import make_secrets
    from fl.net.client import ClientProcess
    from fl.net.session import ServerSession
    from fl.net.tls import client_context, make_certificates, server_context

    ca, cert, key = make_certificates(tmp_path, ("127.0.0.1",))
    writers = list(range(6))
    table = make_secrets(writers)
    session = ServerSession("[run]\n", dim=4, timeout=5, writers=set(writers), hello_timeout=30,
                            ssl_context=server_context(cert, key), writer_secrets=table)
    stop = threading.Event()
    opened: list[socket.socket] = []

    def flood():  # idle connections, round-robin over 60 loopback addresses, about 200 a second
        i = 0
        while not stop.is_set():
            i += 1
            try:
                opened.append(socket.create_connection(("127.0.0.1", session.port), timeout=2,
                                                       source_address=(f"127.0.1.{1 + i % 60}", 0)))
            except OSError:
                pass
            if len(opened) > 300:
                for s in opened[:150]:
                    s.close()
                del opened[:150]
            time.sleep(0.005)

    t = threading.Thread(target=flood)
    t.start()
    try:
        time.sleep(1.0)  # the cap is full of idle connections before the writers come
        cp = ClientProcess("127.0.0.1", session.port, "synthetic", writers, timeout=60,
                           ssl_context=client_context(ca), secrets=table)

        async def all_writers():
            joined = await asyncio.gather(*(cp._join(w) for w in writers))
            got = await asyncio.to_thread(session.wait_for, set(writers), 5)
            for _, conn, _ in joined:
                conn.close()
            return got

        assert asyncio.run(all_writers()) == set(writers)
        assert session.evicted > 0  # the flood was there
    finally:
        stop.set()
        t.join(10)
        for s in opened:
            s.close()
        session.close()


def test_a_join_token_on_a_second_connection_excludes_and_names_its_holder():
    import secrets as secrets_module

    from secagg.net.client import demo_input, run_client
    from secagg.net.framing import read_frame, write_frame
    from secagg.net.server import JOIN_TOKEN_BYTES, serve_round
    from secagg.params import SecAggParams

    params = SecAggParams(num_clients=4, threshold=3)
    tokens = {u: secrets_module.token_bytes(JOIN_TOKEN_BYTES) for u in params.client_ids}

    async def main():
        ports: asyncio.Queue = asyncio.Queue()
        faults: dict = {}
        server = asyncio.create_task(serve_round(params, RID, DIM, on_listening=ports.put_nowait, join_timeout=3,
                                                 step_timeout=5, join_tokens=tokens, faults=faults))
        port = await ports.get()
        xs = {u: demo_input(5, u, DIM, BITS) for u in params.client_ids}
        honest = [asyncio.create_task(run_client(params, u, RID, xs[u], port=port, timeout=10, join_token=tokens[u]))
                  for u in (2, 3)]
        first = asyncio.create_task(run_client(params, 1, RID, xs[1], port=port, timeout=10, join_token=tokens[1]))
        await asyncio.sleep(0.3)
        extra = []
        for _ in range(5):  # client 1 presents its token again, on more connections, while others still join
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await write_frame(writer, tokens[1], timeout=5)
            extra.append((reader, writer))
        await asyncio.sleep(0.2)
        honest.append(asyncio.create_task(run_client(params, 4, RID, xs[4], port=port, timeout=10,
                                                     join_token=tokens[4])))
        res = await server
        await asyncio.gather(first, *honest, return_exceptions=True)
        for _, w in extra:
            w.close()
        return res, faults, xs

    res, faults, xs = asyncio.run(main())
    assert res.survivors == (2, 3, 4)  # client 1 is out, the round goes on with the exact sum of the others
    assert np.array_equal(res.vector, sum(xs[u].astype(np.uint64) for u in (2, 3, 4)).astype(np.uint32))
    assert faults[1].reason == "duplicate_join"


def test_closing_the_session_closes_the_connections_still_joining():
    # fourth review, D3: close() left the joining handlers pending and their sockets open
    from fl.net.session import ServerSession

    session = ServerSession("[run]\n", dim=4, timeout=5, writers={0}, hello_timeout=60)
    idle = [socket.create_connection(("127.0.0.1", session.port), timeout=5) for _ in range(10)]
    for s in idle:
        decode(_answer(s), Challenge)  # each is joining: challenged, no Hello yet
    session.close()
    for s in idle:
        with pytest.raises((ConnectionError, OSError)):
            _answer(s)
        s.close()


def test_a_refusal_keeps_only_printable_text_at_the_client():
    # fourth review, D5: a (plain TCP, or impersonated) server's Refused reason reached the
    # client's error with terminal control characters in it
    from fl.net.client import ClientProcess, JoinRefused
    from secagg.net.framing import read_frame, write_frame

    async def main():
        async def hostile(reader, writer):
            await write_frame(writer, encode(Challenge("ab" * 32)), timeout=5)
            await read_frame(reader, 1 << 16, timeout=5)
            await write_frame(writer, encode(Refused("\x1b[2J\x07go away\x1b]0;owned\x07")), timeout=5)
            writer.close()

        server = await asyncio.start_server(hostile, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            await ClientProcess("127.0.0.1", port, "synthetic", [0], timeout=5)._join(0)
        finally:
            server.close()

    with pytest.raises(JoinRefused) as info:
        asyncio.run(main())
    assert "go away" in str(info.value) and all(c.isprintable() for c in str(info.value))


_IDLE_FLOOD = """
import socket, sys, time
port, n, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
held = []
for i in range(n):
    try:
        held.append(socket.create_connection(("127.0.0.1", port)))
    except OSError:
        pass
    time.sleep(1 / rate)
time.sleep(2)
"""


def test_a_steady_flood_on_the_secagg_port_drops_no_invited_client(tmp_path):
    # fifth review, E1: drawing the connection to close at random on the SecAgg port let a flood
    # of a hundred idle connections a second (another process) drop invited clients in their
    # TLS handshakes; they connect only once
    import secrets as secrets_module
    import subprocess
    import sys

    from fl.net.tls import client_context, make_certificates, server_context
    from secagg.net.client import demo_input, run_client
    from secagg.net.server import JOIN_TOKEN_BYTES, serve_round
    from secagg.params import SecAggParams

    ca, cert, key = make_certificates(tmp_path, ("127.0.0.1",))
    params = SecAggParams(num_clients=8, threshold=5)
    tokens = {u: secrets_module.token_bytes(JOIN_TOKEN_BYTES) for u in params.client_ids}

    async def main():
        ports: asyncio.Queue = asyncio.Queue()
        server = asyncio.create_task(serve_round(params, RID, DIM, on_listening=ports.put_nowait, join_timeout=8,
                                                 step_timeout=8, join_tokens=tokens, ssl=server_context(cert, key)))
        port = await ports.get()
        flood = subprocess.Popen([sys.executable, "-c", _IDLE_FLOOD, str(port), "300", "100"])
        try:
            await asyncio.sleep(1.0)  # the cap of 64 is full of idle connections, and more keep coming
            xs = {u: demo_input(9, u, DIM, BITS) for u in params.client_ids}
            out = await asyncio.gather(*(run_client(params, u, RID, xs[u], port=port, timeout=8, join_token=tokens[u],
                                                    ssl=client_context(ca), server_hostname="127.0.0.1")
                                         for u in params.client_ids), return_exceptions=True)
            return out, await server
        finally:
            flood.kill()
            flood.wait()

    out, res = asyncio.run(main())
    assert out == ["done"] * 8, out
    assert res.survivors == tuple(range(1, 9))
