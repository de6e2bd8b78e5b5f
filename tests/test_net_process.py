"""A federated run across processes (``sabre run --transport tcp``, ``sabre serve`` / ``sabre client``)
gives the very model of the same config run in process; the FL messages refuse malformed frames."""
from __future__ import annotations

import base64
import json
import struct
import time

import numpy as np
import pytest
import torch

from fl.aggregation.config import AggregationConfig
from fl.cli import main
from fl.config import ConfigError
from fl.config import load_config, find_config
from fl.experiment import read_checkpoint, run_experiment
from fl.model import init_params
from fl.net.client import parse_writers
from fl.net.messages import (Bye, Challenge, Hello, Refused, MalformedFrame, RoundEnd, RoundStart, SecAggStart, Setup, Update, decode,
                             encode)

from net_fakes import FakeSession

pytestmark = pytest.mark.network

SECURE = ["aggregation.secure=true", "run.rounds=2", "eval.every=2", "run.checkpoint_every=2"]


def _final(run_dir) -> torch.Tensor:
    last = sorted((run_dir / "checkpoints").glob("round_*.pt"))[-1]
    return read_checkpoint(last)["params"]


def _in_process(tmp_path, overrides, name="inproc"):
    cfg = load_config(find_config("synthetic_small"), overrides)
    run_experiment(cfg, out=tmp_path / name, progress=False)
    return _final(tmp_path / name)


@pytest.mark.slow
def test_tcp_secure_sum_gives_the_in_process_model(tmp_path, capsys):
    ref = _in_process(tmp_path, SECURE)
    args = ["run", "synthetic_small", "--out", str(tmp_path / "tcp"), "-q", "--transport", "tcp", "--processes", "3"]
    for s in SECURE:
        args += ["--set", s]
    assert main(args) == 0
    got = _final(tmp_path / "tcp")
    assert torch.equal(got, ref)
    # the metrics the server sees agree too (quantization clip counts come from the clients' halves)
    rows_a = (tmp_path / "inproc" / "metrics.csv").read_text().splitlines()
    rows_b = (tmp_path / "tcp" / "metrics.csv").read_text().splitlines()
    col = rows_a[0].split(",").index("quantize_clipped")
    assert [r.split(",")[col] for r in rows_a[1:]] == [r.split(",")[rows_b[0].split(",").index("quantize_clipped")]
                                                       for r in rows_b[1:]]


@pytest.mark.slow
def test_tcp_active_variant_gives_the_in_process_model(tmp_path, capsys):
    # signed messages and the consistency check: each client signs with a fresh key and sends its
    # verify key with its update; the server publishes the registry with the SecAgg invitation
    active = SECURE + ["aggregation.secagg_active=true"]
    ref = _in_process(tmp_path, active)
    args = ["run", "synthetic_small", "--out", str(tmp_path / "tcp"), "-q", "-v", "--transport", "tcp",
            "--processes", "2"]
    for s in active:
        args += ["--set", s]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("step consistency_check") == 2, err  # the active variant ran, once per round
    assert torch.equal(_final(tmp_path / "tcp"), ref)


ATTACK_CONFIG = """
[run]
name = "net_attack"
seed = 5
rounds = 1
device = "cpu"
checkpoint_every = 1

[data]
path = "synthetic:16:3"

[model]
name = "small_cnn"

[fedavg]
clients_per_round = 3
epochs = 1
batch_size = 20
client_lr = 0.1

[aggregation]
secure = true
weighting = "fixed"
norm_bound = 0.5
secagg_dropout = 0.3

[attack]
kind = "boosted"
num_tasks = 3
frequency = 1
cheat = "prove_over_bound"
cheat_factor = 1.1

[eval]
every = 1
"""


@pytest.mark.slow
def test_tls_proofs_and_a_rejected_attacker_give_the_in_process_model(tmp_path):
    # real range proofs; the attacker (a client process with --attack) proves a vector over the
    # bound, fails verification, is excluded before unmasking; the two honest clients' sum is used
    cfg_path = tmp_path / "attack.toml"
    cfg_path.write_text(ATTACK_CONFIG)
    run_experiment(load_config(cfg_path), out=tmp_path / "inproc", progress=False)
    assert main(["run", str(cfg_path), "--out", str(tmp_path / "tcp"), "-q", "--transport", "tcp",
                 "--processes", "2", "--tls"]) == 0
    rounds = [(tmp_path / d / "rounds.csv").read_text().splitlines() for d in ("inproc", "tcp")]
    for rows in rounds:
        head = rows[0].split(",")
        row = dict(zip(head, rows[1].split(",")))
        assert (row["round_failed"], row["malicious"], row["rejected"], row["clients"]) == ("0", "1", "1", "2")
        assert row["norm_proof_rejected"] == "1.0"
    # the adversary's own columns come from the attacker's process, as the in-process adversary records them
    metrics = []
    for d in ("inproc", "tcp"):
        rows = (tmp_path / d / "metrics.csv").read_text().splitlines()
        metrics.append(dict(zip(rows[0].split(","), rows[-1].split(","))))
    for name in ("attack_boost", "attack_sent_norm", "backdoor_acc"):
        assert metrics[0][name] == metrics[1][name] != "", name
    ref, got = _final(tmp_path / "inproc"), _final(tmp_path / "tcp")
    assert not torch.equal(ref, init_params("small_cnn", 5))  # the model moved
    assert torch.equal(got, ref)


def test_tcp_refuses_a_plaintext_pipeline(tmp_path, capsys):
    # the server would see every update in the clear: refused before any process starts
    code = main(["run", "synthetic_small", "--out", str(tmp_path / "x"), "-q", "--transport", "tcp",
                 "--processes", "2", "--set", "run.rounds=1"])
    assert code == 2
    assert "aggregation.secure = true" in capsys.readouterr().err


# ---------------------------------------------------------------------------- messages
def test_messages_round_trip():
    params = np.arange(7, dtype=np.float32) / 3
    msgs = [Challenge("cd" * 32), Refused("no"), Hello(3), Hello(4, "ab" * 32), Setup("[run]\nseed = 1\n"), RoundStart(2, 15, 4, [1, 2, 0], params),
            Update(15, 20.0, "int64", {"norm_proof": {"commitment": b"\x00\x01", "proof": b"\xff" * 9},
                                       "field_vector": [2 ** 255 + 7]}, {"quantize_clipped": 3.0}, ["e"], None),
            Update(16, 1.0, "uint32", {}, {}, [], None, "0f" * 32),
            SecAggStart(15, 2, 4, 1, "ab" * 16, 5555, [], "0f" * 32),
            SecAggStart(15, 2, 2, 0, "ab" * 16, 1, ["00" * 32, "a1" * 32], "0f" * 32),
            RoundEnd(2), Bye()]
    for m in msgs:
        back = decode(encode(m))
        if isinstance(m, RoundStart):
            assert (back.round, back.message_id, back.expected_clients, back.sampled) == (2, 15, 4, [1, 2, 0])
            assert np.array_equal(back.params, params) and back.params.dtype == np.float32
        else:
            assert back == m


def _frame(kind: int, header: dict, blob: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return struct.pack(">BI", kind, len(head)) + head + blob


def _raw(kind: int, text: str) -> bytes:
    return struct.pack(">BI", kind, len(text)) + text.encode()


GOOD_UPDATE = {"message_id": 1, "weight": 1.0, "dtype": "int64", "extras": {}, "measurements": {}, "events": [],
               "refused": None, "verify_key": ""}
GOOD_START = {"message_id": 1, "pid": 1, "n": 2, "field_dim": 0, "round_id": "ab" * 16, "port": 1, "verify_keys": [],
              "join_token": "0f" * 32}


@pytest.mark.parametrize("data, why", [
    (b"", "shorter"),
    (struct.pack(">BI", 99, 0), "unknown message kind"),
    (struct.pack(">BI", 1, 50) + b"{}", "runs past"),
    (_frame(1, {"writer": "3", "proof": ""}), "wrong type"),
    (_frame(1, {"writer": True, "proof": ""}), "wrong type"),
    (_frame(1, {"writer": 3, "proof": "", "extra": 1}), "expected the fields"),
    (_frame(1, {"writer": 3}), "expected the fields"),
    (_frame(1, {"writer": -1, "proof": ""}), "2\\^64"),
    (_frame(1, {"writer": 2 ** 64, "proof": ""}), "2\\^64"),
    (_frame(1, {"writer": 3, "proof": "ab"}), "64 hex"),
    (_frame(8, {"nonce": "ab"}), "64 hex"),
    (_frame(8, {"nonce": "ab" * 32}, b"x"), "carries no blob"),
    (_frame(1, {}), "expected the fields"),
    (struct.pack(">BI", 1, 3) + b"\xff\xfe{", "not JSON"),
    (struct.pack(">BI", 1, 14) + b'{"writer":NaN}', "not JSON"),
    (_frame(1, {"writer": 3, "proof": ""}, b"x"), "carries no blob"),
    (_frame(3, {"round": 0, "message_id": 1, "expected_clients": 2, "sampled": []}, b"abc"), "float32"),
    (_frame(3, {"round": 0, "message_id": 1, "expected_clients": 2, "sampled": [-1]}), "writer ids"),
    (_frame(4, {**GOOD_UPDATE, "dtype": "float64"}), "integers"),
    (_frame(4, {**GOOD_UPDATE, "dtype": "object"}), "integers"),
    (_frame(4, {**GOOD_UPDATE, "dtype": "no such type"}), "dtype"),
    (_frame(4, {**GOOD_UPDATE, "extras": {"p": {"$b": "!!"}}}), "base64"),
    (_frame(4, {**GOOD_UPDATE, "extras": {"p": {"$x": "AA=="}}}), "tagged"),
    (_frame(4, {**GOOD_UPDATE, "measurements": {"a": "1"}}), "numbers"),
    (_frame(4, {**GOOD_UPDATE, "refused": ["a", "b"]}), "refused"),
    (_frame(4, {**GOOD_UPDATE, "events": [1]}), "events"),
    (_frame(4, {**GOOD_UPDATE, "weight": -1.0}), "weight"),
    (_frame(4, {**GOOD_UPDATE, "weight": 1e400}), "not JSON"),  # json writes Infinity: refused
    (_raw(4, json.dumps({**GOOD_UPDATE, "weight": 7.0}).replace("7.0", "1e400")), "weight"),  # parses as inf
    (_frame(4, {**GOOD_UPDATE, "verify_key": "AB" * 32}), "verify_key"),
    (_frame(4, {**GOOD_UPDATE, "verify_key": "ab" * 31}), "verify_key"),
    (_frame(5, {**GOOD_START, "verify_keys": ["ab" * 32]}), "verify_keys"),
    (_frame(5, {**GOOD_START, "verify_keys": ["ab" * 32, 7]}), "verify_keys"),
    (_frame(5, {**GOOD_START, "round_id": "ab"}), "round_id"),
    (_frame(5, {**GOOD_START, "round_id": "zz" * 16}), "round_id"),
    (_frame(5, {**GOOD_START, "join_token": ""}), "join_token"),
    # network review, F1 and F4: these raised RecursionError / OverflowError and ended the run
    (_raw(4, "[" * 200_000), "more JSON values"),  # counted before the parser runs (F8)
    (_raw(4, "[" * 1000), "not JSON"),
    (_raw(4, json.dumps({**GOOD_UPDATE, "weight": 7}).replace(": 7,", ": " + "9" * 401 + ",")), "not JSON"),
    (_raw(4, json.dumps({**GOOD_UPDATE, "measurements": {"quantize_clipped": 7}}).replace("7}", "9" * 401 + "}")),
     "not JSON"),
    (_raw(4, json.dumps({**GOOD_UPDATE, "measurements": {"q": 7.0}}).replace("7.0", "1e400")), "finite"),
])
def test_malformed_frames_are_refused(data, why):
    with pytest.raises(MalformedFrame, match=why):
        decode(data)


def test_a_message_of_another_kind_is_refused():
    with pytest.raises(MalformedFrame, match="expected Update"):
        decode(encode(Hello(1)), Update)


def test_bytes_in_extras_are_tagged_not_guessed():
    up = Update(1, 1.0, "uint32", {"b": b"\x00", "s": base64.b64encode(b"\x00").decode()}, {}, [], None)
    back = decode(encode(up))
    assert back.extras == {"b": b"\x00", "s": "AA=="}


def test_parse_writers():
    assert parse_writers("0,3,5-7") == [0, 3, 5, 6, 7]
    for bad in ("", "a", "3-1", "1,1", "-2", "1-"):
        with pytest.raises(ValueError):
            parse_writers(bad)


@pytest.mark.parametrize("extra, why", [
    ({"secagg_active": True}, "needs aggregation.secure"),
    ({"secagg_active": True, "secure": True, "secagg_graph": "sparse"}, "complete graph only"),
])
def test_secagg_active_is_checked_against_the_other_keys(extra, why):
    with pytest.raises(ConfigError, match=why):
        AggregationConfig.from_table(extra)


# ---------------------------------------------------------------------------- the server's session
def _client(port: int, writer: int):
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    _send(s, encode(Hello(writer)))  # an open join: no proof needed (the challenge is read below)
    decode(_recv(s), Challenge)
    return s


def _send(sock, payload: bytes) -> None:
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def _recv(sock) -> bytes:
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf
    (n,) = struct.unpack(">I", exactly(4))
    return exactly(n)


def test_session_drops_misbehaving_clients_and_keeps_the_others():
    import threading

    from fl.net.session import ServerSession
    session = ServerSession("[run]\n", dim=4, timeout=5, writers={0, 1, 2, 3}, hello_timeout=2)
    try:
        stranger = _client(session.port, 7)  # not a writer of this run: refused at its Hello, told why
        assert "writer 7 has no training data" in decode(_recv(stranger), Refused).reason
        with pytest.raises((ConnectionError, OSError)):
            _recv(stranger)
        import socket
        silent = socket.create_connection(("127.0.0.1", session.port), timeout=10)  # never says Hello
        socks = {w: _client(session.port, w) for w in range(4)}
        assert session.wait_for({0, 1, 2, 3}, 10) == {0, 1, 2, 3}
        for s in socks.values():
            assert decode(_recv(s), Setup).config == "[run]\n"
        twin = _client(session.port, 0)  # a second connection for writer 0 is refused
        assert "a second connection for writer 0" in decode(_recv(twin), Refused).reason
        with pytest.raises((ConnectionError, OSError)):
            _recv(twin)

        def play(w, s):
            start = decode(_recv(s), RoundStart)
            assert start.sampled == [0, 1, 2, 3] and start.params.shape == (4,)
            good = Update(start.message_id, 5.0, "int64", {"x": b"\x01"}, {}, [], None)
            if w == 0:
                _send(s, encode(good))
            elif w == 1:
                _send(s, b"\x04garbage")
            elif w == 2:
                _send(s, encode(Update(99, 5.0, "int64", {}, {}, [], None)))  # another slot's id
            else:
                s.sendall(struct.pack(">I", 1 << 30))  # announces a frame far over the bound

        threads = [threading.Thread(target=play, args=(w, s)) for w, s in socks.items()]
        for t in threads:
            t.start()
        out = session.updates(0, [(w, w) for w in range(4)], 4, np.zeros(4, np.float32))
        for t in threads:
            t.join(10)
        assert isinstance(out[0], Update) and out[0].extras == {"x": b"\x01"}
        assert out[1] == "dropped: MalformedFrame" and out[2] == "dropped: MalformedFrame"
        assert out[3] == "dropped: OversizedMessage"
        assert session.connected() == [0]
        decode(_recv(silent), Challenge)  # the server speaks first
        t0 = time.monotonic()
        with pytest.raises((ConnectionError, OSError)):
            _recv(silent)  # closed once its hello_timeout passed
        assert time.monotonic() - t0 < 5
    finally:
        session.close()


def test_cli_usage_errors(capsys):
    assert main(["serve", "synthetic_small", "--tls-cert", "c.pem"]) == 2
    assert "--tls-cert and --tls-key together" in capsys.readouterr().err
    assert main(["client", "--server", "nohost", "--data", "synthetic", "--writers", "0"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    assert main(["client", "--server", "127.0.0.1:1", "--data", "synthetic", "--writers", "3-1"]) == 2
    assert "empty range" in capsys.readouterr().err
    assert main(["run", "synthetic_small", "--processes", "2"]) == 2
    assert "--transport tcp" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("proofs", [False, True])
def test_bench_net_reports_an_exact_round_and_its_bytes(capsys, proofs):
    assert main(["bench", "net", "--clients", "3", "--dim", "64", "--json"] + (["--proofs"] if proofs else [])) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["exact"] is True and r["clients"] == 3 and r["dim"] == 64 and r["proofs"] is proofs
    assert list(r["net"]["step_s"]) == ["advertise_keys", "share_keys", "receipt", "masked_input", "unmask"]
    # the same messages as in process, plus a 4-byte frame header each (5 up, 4 down per client);
    # with proofs, the upload of commitment and proof adds its frame header, the id and a length byte
    extra = 4 + 4 + 1 if proofs else 0
    assert r["net"]["upload_bytes_per_client"] == r["inprocess"]["upload_bytes_per_client"] + 5 * 4 + extra
    assert r["net"]["download_bytes_per_client"] == r["inprocess"]["download_bytes_per_client"] + 4 * 4
    if proofs:
        assert r["binding_ok"] is True and r["net"]["proof_bytes_per_client"] > 1000


def test_server_excludes_and_names_uploads_no_honest_client_makes():
    # a client's Update is checked against what honest halves produce before any stage sees it:
    # a wrong vector type, a side vector the pipeline does not sum, or a refusal at a stage that
    # does not exist is excluded by the outermost stage (named in `rejected`); unknown measurement
    # names cannot write the server's columns
    from fl.aggregation import RoundContext
    from fl.aggregation.base import screen
    from fl.data import load_dataset
    from fl.net.server import NetworkSimulation

    cfg = load_config(find_config("synthetic_small"), ["aggregation.secure=true"])
    good = dict(weight=3.0, dtype="uint32", extras={}, events=["ok"], refused=None)
    ups = {0: Update(0, measurements={"quantize_clipped": 2.0, "binding_failed": 1.0}, **good),
           1: Update(1, measurements={}, **{**good, "dtype": "int64"}),
           2: Update(2, measurements={}, **{**good, "extras": {"field_vector": [1]}}),
           3: Update(3, measurements={}, **{**good, "refused": ["nowhere", "x", "y"]}),
           4: "dropped: MalformedFrame"}
    sim = NetworkSimulation(cfg, load_dataset("synthetic:12:0"), session=FakeSession(ups))
    ctx = RoundContext(round_index=0, seed=0, dim=14410, expected_clients=4)
    msgs = sim.client_messages(0, ctx, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [])
    assert [m.client_id for m in msgs] == [0, 1, 2, 3]  # 4 never answered: missing, and logged
    assert ctx.measurements == {"quantize_clipped": 2.0, "net_missing": 1.0}
    kept, rejected = screen(msgs, ctx, sim.pipeline.name, lambda m: sim.pipeline.run_client(m, ctx))
    assert [m.client_id for m in kept] == [0]
    assert rejected == {1: "malformed_update", 2: "malformed_update", 3: "malformed_update"}
    assert all(m.vector.dtype == np.uint32 for m in msgs)


def test_a_clients_refusal_text_cannot_forge_log_lines():
    """Network review, F7: the reason text of an Update's refusal reached run.log as sent,
    newlines included, so a client could write a line blaming an honest client."""
    from fl.aggregation import RoundContext
    from fl.data import load_dataset
    from fl.net.server import NetworkSimulation

    forged = "x\n2026-12-06 round 0: client 7 excluded: forged_proof\n" + "y" * 1000

    session = FakeSession({0: Update(0, weight=3.0, dtype="uint32", extras={}, measurements={}, events=[],
                                     refused=["quantize", "clip " + forged, forged])})
    cfg = load_config(find_config("synthetic_small"), ["aggregation.secure=true"])
    sim = NetworkSimulation(cfg, load_dataset("synthetic:12:0"), session=session)
    assert "quantize" in sim._stage_names  # a real stage: the refusal is taken as the client's own
    ctx = RoundContext(round_index=0, seed=0, dim=14410, expected_clients=1)
    msgs = sim.client_messages(0, ctx, [0], [0], [0], [])
    refused = msgs[0].adversary.refused
    assert refused is not None and all("\n" not in x and len(x) <= 300 for x in refused)
    # second review, N7: the reason tag is the one log field a reader greps; free text there
    # could still spell another client's rejection on the same line
    assert refused[1] == "client_refused" and refused[2].startswith("client 0 refused its own update: '")


def test_a_blinding_sent_in_the_clear_is_refused_and_the_server_never_needs_one():
    """Network review, F5: with norm proofs the clients uploaded their commitment's blinding in
    Update.extras (the server required it), which lets the server test any guess of an update.
    It travels only masked now: an Update carrying it is excluded, one without it is taken, and
    the server's stages see a placeholder of the right length."""
    from fl.aggregation import RoundContext
    from fl.aggregation.secure_sum import FIELD_VECTOR_KEY
    from fl.data import load_dataset
    from fl.net.server import NetworkSimulation

    good = dict(weight=3.0, dtype="int64", measurements={}, events=[], refused=None)
    session = FakeSession({0: Update(0, extras={}, **good), 1: Update(1, extras={FIELD_VECTOR_KEY: [12345]}, **good)})
    cfg = load_config(find_config("synthetic_small"), ["aggregation.secure=true", "aggregation.weighting=fixed",
                                                        "aggregation.norm_bound=1.0"])
    sim = NetworkSimulation(cfg, load_dataset("synthetic:12:0"), session=session)
    ctx = RoundContext(round_index=0, seed=0, dim=14410, expected_clients=2)
    msgs = sim.client_messages(0, ctx, [0, 1], [0, 1], [0, 1], [])
    assert msgs[0].extras[FIELD_VECTOR_KEY] == [0] and msgs[0].adversary.refused is None
    assert FIELD_VECTOR_KEY not in msgs[1].extras and msgs[1].adversary.refused[1] == "malformed_update"
    assert "in the clear" in msgs[1].adversary.refused[2]


@pytest.mark.slow
def test_a_client_process_killed_mid_run_leaves_the_server_running(tmp_path):
    # availability: the writers of a SIGKILLed process are missing from the SecAgg round it dies
    # in and from every later round; the server names them in run.log and finishes the run
    import subprocess
    import sys

    from fl.net.launch import serve
    cfg = load_config(find_config("synthetic_small"), SECURE + ["eval.every=1", "run.checkpoint_every=1",
                                                                "run.rounds=3"])
    procs = []
    killed = []

    def spawn(port):
        for group in ("0-5", "6-11"):
            procs.append(subprocess.Popen([sys.executable, "-m", "fl", "client", "--server", f"127.0.0.1:{port}",
                                           "--data", "synthetic:12:0", "--writers", group, "--timeout", "60"],
                                          stderr=subprocess.DEVNULL))

    def log(text):
        if text == "step masked_input" and not killed:
            procs[1].kill()
            killed.append(True)

    try:
        summary = serve(cfg, out=tmp_path / "run", progress=False, join_timeout=60, timeout=60, on_listening=spawn,
                        log=log)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert killed and summary.rounds_done == 3
    text = (tmp_path / "run" / "run.log").read_text()
    lines = (tmp_path / "run" / "rounds.csv").read_text().splitlines()
    rows = [dict(zip(lines[0].split(","), line.split(","))) for line in lines[1:]]
    assert len(rows) == 3
    # the round it dies in goes on without its writer (dropped at masked_input, named) ...
    assert rows[0]["round_failed"] == "0" and int(rows[0]["rejected"]) >= 1
    assert "dropped at masked_input" in text
    # ... and a later round that samples its writers names them as missing; the run goes on
    assert "no update (" in text
    assert rows[-1]["round_failed"] == "0" or rows[-2]["round_failed"] == "0"


DEMO = ["aggregation.secure=true", "aggregation.weighting=fixed", "aggregation.norm_bound=2.0", "aggregation.norm_kind=l2", "run.rounds=1",
        "run.checkpoint_every=1"]


@pytest.mark.slow
@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_the_demo_over_five_processes_gives_the_in_process_model(tmp_path, tls):
    """Issue 12's check: `sabre run demo --transport tcp --processes 5` with secure aggregation and
    a proven L2 bound ends with the in-process run's parameters, bit for bit; the same over TLS."""
    cfg = load_config(find_config("demo"), DEMO)
    run_experiment(cfg, out=tmp_path / "inproc", progress=False)
    args = ["run", "demo", "--out", str(tmp_path / "tcp"), "-q", "--transport", "tcp", "--processes", "5"]
    args += ["--tls"] if tls else []
    for s in DEMO:
        args += ["--set", s]
    assert main(args) == 0
    ref, got = _final(tmp_path / "inproc"), _final(tmp_path / "tcp")
    assert torch.equal(got, ref)
    head, row = (tmp_path / "tcp" / "rounds.csv").read_text().splitlines()[:2]
    assert dict(zip(head.split(","), row.split(",")))["round_failed"] == "0"
