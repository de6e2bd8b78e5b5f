"""``sabre client``: one or more clients of a ``sabre serve`` run, each on its own writer's data.

Each writer id gets its own control connection. Per round a sampled client trains from the
model it was sent, runs the pipeline's client halves (:func:`fl.aggregation.remote.client_halves`:
clip, quantize, commit and prove, with the same stage objects the simulation uses, built from
the config the server sent), uploads what they attach (never the vector), and then plays its
own side of the SecAgg round (:func:`secagg.net.client.run_client`) with its own input.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import random
import ssl
from fl.config import tomllib
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from fl.aggregation import ClientMessage, RoundContext
from fl.aggregation.base import InvalidUpdate
from fl.aggregation.prepare import finite_or_zero
from fl.aggregation.remote import client_halves, innermost
from fl.aggregation.secure_sum import FIELD_VECTOR_KEY
from fl.config import ConfigError, ExperimentConfig, parse_config
from fl.experiment import build_run_adversary, open_dataset
from fl.model import num_params
from fl.net.server import ADVERSARY_MEASUREMENTS, network_pipeline
from fl.simulation import Simulation, to_client_data
from fl.training import LocalConfig, train_clients
from rangeproof.blame import SabreError
from secagg.errors import SecAggError
from secagg.keys import SigningKey
from secagg.net.client import ServerClosed, run_client
from secagg.net.framing import ConnectionClosed, read_frame, write_frame
from secagg.randomness import SystemRandom

from .auth import hello_proof, server_binding
from .messages import (SETUP_BOUND, SMALL_BOUND, Bye, Challenge, Hello, MalformedFrame, Refused, RoundEnd, RoundStart, SecAggStart,
                       Setup, Update, decode, encode, round_bound)

__all__ = ["ClientProcess", "JoinRefused", "PolicyRefused", "parse_writers", "run_clients"]


class JoinRefused(SabreError):
    """The server refused a writer at its join (no data for it there, no valid proof of its
    secret, or a connection for it already)."""


class PolicyRefused(SabreError):
    """The server asked this client for a run that protects its update less than the client's
    policy demands (``--expect-config``, ``--require-active``, ``--min-clients``)."""


def parse_writers(text: str) -> list[int]:
    """``"0,3,5-7"`` -> ``[0, 3, 5, 6, 7]``.

    Raises:
      ValueError: not a list of non-negative ids and ranges, or an id given twice.
    """
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"--writers: {part!r} is not an id or a range a-b")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise ValueError(f"--writers: empty range {part!r}")
        out.extend(range(a, b + 1))
    if len(set(out)) != len(out):
        raise ValueError("--writers: an id is given twice")
    return out


@dataclasses.dataclass
class _Run:
    """What every writer of this process shares: the config, its pipeline and the data."""

    cfg: ExperimentConfig
    pipeline: object
    secure_sum: object
    dim: int
    local: LocalConfig
    data: dict
    adversary: object = None
    view: Simulation | None = None
    #: round -> (message ids of the malicious slots, their forged messages)
    forged: dict = dataclasses.field(default_factory=dict)


class ClientProcess:
    """The clients of one process.

    Args:
      host, port: the server.
      data_path: this process's copy of the data (the writers' shards are read from it).
      writers: the writer ids this process plays.
      ssl_context: a client-side TLS context (``None``: plain TCP); ``server_hostname`` the name
        its certificate must carry (default ``host``).
      timeout: seconds to wait for the server at any one point (between rounds included).
      attack: play the config's attack: a writer its schedule makes malicious in a round uploads
        what the adversary forges (computed for all the round's attackers at once, as the
        simulation does, so the split of writers across processes changes nothing).
      expect: the run's config as this client agreed to it: the server's config must have the
        same ``[aggregation]`` settings (SecAgg variant, graph, dropout rate, clipping, proofs,
        noise) and ``fedavg.clients_per_round``, or the client refuses it. Without it the server's
        config chooses the protection this client's update gets.
      require_active: refuse a config without SecAgg's active variant (``aggregation.secagg_active``).
      min_clients: refuse to join a SecAgg round of fewer clients (at least 3).
      secrets: ``{writer: secret}`` (:mod:`fl.net.auth`): each writer proves its secret in its
        ``Hello``; a writer without one sends no proof (a server with an open join takes it).
      log: where to write what happens.

    Raises (from :meth:`run`):
      PolicyRefused: the server asked for less than ``expect``, ``require_active`` or ``min_clients``.
    """

    def __init__(self, host: str, port: int, data_path: str, writers: Sequence[int], *,
                 ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None,
                 timeout: float = 600.0, attack: bool = False, expect: ExperimentConfig | None = None,
                 require_active: bool = False, min_clients: int = 3, secrets: Mapping[int, bytes] | None = None,
                 log: Callable[[str], None] = lambda s: None):
        if min_clients < 3:
            raise ConfigError(f"--min-clients: secure aggregation needs at least 3 clients, got {min_clients}")
        self.attack = attack
        self.secrets = dict(secrets or {})
        self.expect = expect
        self.require_active = require_active
        self.min_clients = min_clients
        self.host, self.port = host, port
        self.data_path = data_path
        self.writers = list(writers)
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname or host
        self.timeout = timeout
        self.log = log
        self._runs: dict[str, _Run] = {}

    def _run_for(self, config_text: str) -> _Run:
        run = self._runs.get(config_text)
        if run is not None:
            return run
        try:
            cfg = parse_config(tomllib.loads(config_text))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"the server's config is not TOML: {e}") from None
        except RecursionError:  # a small config nested deeper than the parser recurses
            raise ConfigError("the server's config is not TOML: nested too deeply") from None
        self._check_policy(cfg)
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=self.data_path))
        dataset = open_dataset(cfg)
        dim = num_params(cfg.model.name)
        pipeline = network_pipeline(cfg, dim, len(dataset.train_clients()), None)
        from_here = [w for w in self.writers if w in set(dataset.train_clients())]
        data = {w: to_client_data(*dataset.client_train(w), torch.device("cpu")) for w in from_here}
        local = LocalConfig(epochs=cfg.fedavg.epochs, batch_size=cfg.fedavg.batch_size, lr=cfg.fedavg.client_lr,
                            shuffle=cfg.fedavg.shuffle)
        run = _Run(cfg, pipeline, innermost(pipeline), dim, local, data)
        if self.attack:
            run.adversary = build_run_adversary(cfg, dataset)
            if run.adversary is None:
                raise ConfigError("--attack: the server's config has no enabled [attack] section")
            # the adversary trains with the run's model and data through the simulation's own view
            run.view = Simulation(cfg, dataset, pipeline=pipeline, device=torch.device("cpu"))
        self._runs[config_text] = run
        return run

    def _check_policy(self, cfg: ExperimentConfig) -> None:
        """Refuse a server config that gives this client's update less protection than it agreed to."""
        if self.expect is not None:
            ours, theirs = self.expect.aggregation, cfg.aggregation
            differ = [f"aggregation.{f.name} = {getattr(theirs, f.name)!r} (expected {getattr(ours, f.name)!r})"
                      for f in dataclasses.fields(ours) if getattr(ours, f.name) != getattr(theirs, f.name)]
            if cfg.fedavg.clients_per_round != self.expect.fedavg.clients_per_round:
                differ.append(f"fedavg.clients_per_round = {cfg.fedavg.clients_per_round} "
                              f"(expected {self.expect.fedavg.clients_per_round})")
            if differ:
                raise PolicyRefused("the server's config differs from --expect-config: " + "; ".join(differ[:6]))
        if self.require_active and not (cfg.aggregation.secure and cfg.aggregation.secagg_active):
            raise PolicyRefused("--require-active: the server's config does not run SecAgg's active variant "
                                "(aggregation.secure and aggregation.secagg_active)")

    def _update(self, run: _Run, writer: int, start: RoundStart) -> tuple[Update, tuple | None]:
        """Train, run the client halves; the upload and what this client keeps for SecAgg."""
        cfg = run.cfg
        if start.params.shape != (run.dim,):
            raise MalformedFrame(f"RoundStart: a model of {start.params.shape[0]} parameters, expected {run.dim}")
        ctx = RoundContext(round_index=start.round, seed=cfg.run.seed, dim=run.dim,
                           expected_clients=start.expected_clients)
        mid = start.message_id
        data = run.data[writer]
        forged = self._forged(run, start, ctx)
        if mid in forged:  # this writer is one of the round's attackers
            message = forged[mid]
            last = run.adversary.last_attack
            if last and last["round"] == start.round:  # the adversary's own columns, which only it knows
                for name, key in ADVERSARY_MEASUREMENTS.items():
                    ctx.record(name, last[key])
        else:
            delta = train_clients(cfg.model.name, torch.from_numpy(start.params.copy()), [data], run.local,
                                  [ctx.derive_seed("train", mid)], "cpu", cfg.run.training_path)
            update, replaced = finite_or_zero(np.ascontiguousarray(delta.detach().to("cpu", torch.float32).numpy()[0]))
            if replaced:
                ctx.record("client_nonfinite_zeroed", 1)
                ctx.events.append("non-finite update after training; sent zeros")
            message = ClientMessage(mid, update, weight=float(len(data)))
        try:
            out = client_halves(run.pipeline, message, ctx)
        except InvalidUpdate as exc:
            refused = [getattr(exc, "stage", ""), exc.reason, str(exc)]
            return Update(mid, message.weight, "int64", {}, dict(ctx.measurements), list(ctx.events), refused), None
        vector, field = run.secure_sum.client_input(out)
        # the active variant signs its SecAgg messages with a key fresh for this round (as the
        # in-process driver does); the server relays the verify keys to all participants
        key = SigningKey.generate(SystemRandom()) if run.secure_sum.active else None
        # the side vector (the commitment's blinding) travels only masked, inside SecAgg: sent in
        # the clear it would let the server test any guess of this client's update
        up = Update(mid, float(out.weight), str(out.vector.dtype),
                    {k: v for k, v in out.extras.items() if k != FIELD_VECTOR_KEY},
                    dict(ctx.measurements), list(ctx.events), None, key.verify_key.hex() if key else "")
        return up, (vector, field, key)

    def _forged(self, run: _Run, start: RoundStart, ctx: RoundContext) -> dict[int, ClientMessage]:
        """The adversary's messages of this round, by message id (empty when it plays no one)."""
        if run.adversary is None:
            return {}
        r = start.round
        if r not in run.forged:
            sampled = list(start.sampled)
            ids = run.view.message_ids(sampled)
            bad = set(run.adversary.plan_round(r, sampled, ctx.rng("adversary")))
            slots_bad = [s for s, c in enumerate(sampled) if c in bad]
            messages = run.adversary.malicious_messages(
                run.view, r, [sampled[s] for s in slots_bad], torch.from_numpy(start.params.copy()))
            if len(messages) != len(slots_bad):
                raise RuntimeError(f"adversary returned {len(messages)} messages for {len(slots_bad)} clients")
            run.forged = {r: {ids[s]: m if m.client_id == ids[s] else m.replace(client_id=ids[s])
                              for s, m in zip(slots_bad, messages)}}
        return run.forged[r]

    async def _join(self, writer: int):
        """Connect, answer the challenge and take the Setup.

        A connection refused or closed before the Setup is tried again, with waits growing from
        0.5 to 5 s, until ``timeout`` seconds have passed (the server may not listen yet, or may
        have closed this connection to make room among joining ones during a flood). A
        :class:`Refused` answer is final.

        Raises:
          JoinRefused: the server refused this writer (and said why).
          ServerClosed: no Setup within ``timeout``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        wait, tries, last = 0.5, 0, None
        while True:
            conn = None
            tries += 1
            try:
                reader, conn = await asyncio.wait_for(asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl_context,
                    server_hostname=self.server_hostname if self.ssl_context is not None else None),
                    max(deadline - loop.time(), 0.001))
                challenge = decode(await read_frame(reader, SMALL_BOUND, timeout=self.timeout), Challenge)
                secret = self.secrets.get(writer)
                proof = ""
                if secret is not None:
                    tls = conn.get_extra_info("ssl_object")
                    binding = server_binding(tls.getpeercert(binary_form=True) if tls is not None else None)
                    proof = hello_proof(secret, writer, bytes.fromhex(challenge.nonce), binding).hex()
                await write_frame(conn, encode(Hello(writer, proof)), timeout=self.timeout)
                answer = decode(await read_frame(reader, SETUP_BOUND, timeout=self.timeout), Setup, Refused)
                if isinstance(answer, Refused):
                    reason = "".join(c for c in " ".join(answer.reason.split()) if c.isprintable())[:200]
                    raise JoinRefused(f"writer {writer}: the server refused it: {reason}")
                return reader, conn, answer
            except (ConnectionError, ConnectionClosed, asyncio.TimeoutError) as exc:
                if conn is not None:
                    conn.close()
                last = exc
                left = deadline - loop.time()
                if left <= 0:
                    raise ServerClosed(f"writer {writer}: no Setup from the server in {self.timeout:g} s "
                                       f"({tries} connection(s), each closed or refused before it; the last: "
                                       f"{type(last).__name__})") from None
                # jittered, so that the writers of one process do not come back all at once
                await asyncio.sleep(min(wait * (0.5 + random.random()), left))
                wait = min(2 * wait, 5.0)
            except BaseException:
                if conn is not None:
                    conn.close()
                raise

    async def _writer(self, writer: int) -> None:
        reader, conn, setup = await self._join(writer)
        try:
            run = self._run_for(setup.config)
            if writer not in run.data:
                raise ConfigError(f"writer {writer} has no training data in {self.data_path}")
            kept: dict[int, tuple] = {}
            tasks: list[asyncio.Task] = []
            while True:
                msg = decode(await read_frame(reader, round_bound(run.dim), timeout=self.timeout),
                             RoundStart, SecAggStart, RoundEnd, Bye)
                if isinstance(msg, Bye):
                    return
                if isinstance(msg, RoundStart):
                    up, keep = await asyncio.get_running_loop().run_in_executor(
                        self._worker, self._update, run, writer, msg)
                    if keep is not None:
                        kept[msg.message_id] = keep
                    await write_frame(conn, encode(up), timeout=self.timeout)
                elif isinstance(msg, SecAggStart):
                    if msg.message_id not in kept:
                        raise MalformedFrame(f"SecAggStart for message {msg.message_id}, which this client did not send")
                    tasks.append(asyncio.ensure_future(self._secagg(run, writer, msg, *kept.pop(msg.message_id))))
                else:  # RoundEnd
                    await asyncio.gather(*tasks)
                    tasks, kept = [], {}
        finally:
            conn.close()

    async def _secagg(self, run: _Run, writer: int, start: SecAggStart, vector: np.ndarray, field: list,
                      key: SigningKey | None) -> None:
        if start.n < self.min_clients:
            raise PolicyRefused(f"writer {writer}: the server asked it to join a SecAgg round of {start.n} "
                                f"clients; --min-clients is {self.min_clients}")
        if start.n > run.cfg.fedavg.clients_per_round:
            raise MalformedFrame(f"SecAggStart: a round of {start.n} clients, the config samples "
                                 f"{run.cfg.fedavg.clients_per_round}")
        params = run.secure_sum.params_for(start.n, start.field_dim)
        if not 1 <= start.pid <= start.n or len(field) != start.field_dim:
            raise MalformedFrame(f"SecAggStart: protocol id {start.pid} of {start.n}, field_dim {start.field_dim}")
        registry = None
        if params.active:
            if len(start.verify_keys) != start.n:
                raise MalformedFrame("SecAggStart: the active variant needs every participant's verify key")
            registry = {i + 1: bytes.fromhex(k) for i, k in enumerate(start.verify_keys)}
            if registry[start.pid] != key.verify_key:
                raise MalformedFrame(f"SecAggStart: the registry holds another key for this client (id {start.pid})")
        elif start.verify_keys:
            raise MalformedFrame("SecAggStart: verify keys outside the active variant")
        try:
            await run_client(params, start.pid, bytes.fromhex(start.round_id), vector, host=self.host,
                             port=start.port, timeout=self.timeout, field_vector=field, ssl=self.ssl_context,
                             join_token=bytes.fromhex(start.join_token),
                             server_hostname=self.server_hostname if self.ssl_context is not None else None,
                             signing_key=key, verify_keys=registry)
        except (SecAggError, OSError) as exc:  # dropped or excluded by the server: the round goes on
            self.log(f"writer {writer}: secure aggregation ended early: {type(exc).__name__}: {exc}")

    async def run(self) -> None:
        # Training and the client halves run on one worker thread, one writer at a time: the
        # event loop stays free for the connections, and the proofs' OpenSSL calls (petlib) can
        # leave nothing in the loop thread's OpenSSL error queue (OpenSSL keeps one per thread),
        # where the ssl module's next TLS call would read it as its own failure.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sabre-client") as worker:
            self._worker = worker
            # each writer stands alone: one refused or failed writer does not end the others
            results = await asyncio.gather(*(self._writer(w) for w in self.writers), return_exceptions=True)
        failed = [(w, r) for w, r in zip(self.writers, results) if isinstance(r, BaseException)]
        for w, exc in failed:
            self.log(f"writer {w} stopped: {type(exc).__name__}: {exc}")
        if failed:  # the process still ends with an error: the first writer's (its status says so)
            raise failed[0][1]


def run_clients(host: str, port: int, data_path: str, writers: Sequence[int], **kw) -> None:
    """Play ``writers`` against the server until it says goodbye."""
    asyncio.run(ClientProcess(host, port, data_path, writers, **kw).run())
