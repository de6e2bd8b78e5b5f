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
from fl.net.messages import (MAX_CONTAINERS, MAX_SEPARATORS, Hello, MalformedFrame, SecAggStart, Setup, Update,
                             decode, encode)

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
class _Session:
    dim = 14410

    def __init__(self, ups):
        self.ups = ups
        self.lines: list[str] = []

    def connected(self):
        return list(range(12))

    def updates(self, r, slots, k, params):
        return self.ups

    def log(self, text):
        self.lines.append(text)


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
    sim = NetworkSimulation(cfg, load_dataset("synthetic:12:0"), session=_Session(ups))
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
    session = _Session({})
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
    sim2 = NetworkSimulation(cfg2, data, session=_Session({}))
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
    from tests.test_net_process import ATTACK_CONFIG

    path = tmp_path / "attack.toml"
    path.write_text(ATTACK_CONFIG)
    cfg = load_config(path)
    data = open_dataset(cfg)
    good = dict(weight=1.0, dtype="int64", extras={}, events=[], refused=None)
    ups = {0: Update(0, measurements={"attack_boost": 99.0, "attack_sent_norm": 99.0}, **good),
           1: Update(1, measurements={"attack_boost": 3.0, "attack_sent_norm": 0.5}, **good),
           2: Update(2, measurements={}, **good)}
    adversary = build_run_adversary(cfg, data)
    sim = NetworkSimulation(cfg, data, session=_Session(ups), adversary=adversary)
    ctx = RoundContext(round_index=0, seed=0, dim=14410, expected_clients=3)
    sim.client_messages(0, ctx, [0, 1, 2], [0, 1, 2], [0, 2], [])  # nobody malicious: nothing taken
    assert adversary.last_attack == {}
    sim.client_messages(0, ctx, [0, 1, 2], [0, 1, 2], [0, 2], [1])
    assert adversary.last_attack == {"round": 0.0, "boost": 3.0, "sent_norm": 0.5}
