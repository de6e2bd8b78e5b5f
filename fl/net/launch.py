"""Start a networked run: ``sabre serve`` (the server alone) and ``sabre run --transport tcp``
(a local server and ``N`` client processes on 127.0.0.1)."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Mapping

from fl.config import ConfigError, ExperimentConfig, config_to_toml
from fl.experiment import RunSummary, open_dataset, resolve_data_path, run_experiment
from fl.model import num_params
from rangeproof.blame import SabreError

from .auth import make_secrets, write_secrets
from .server import NetworkSimulation, network_pipeline
from .session import ServerSession
from .tls import client_context, make_certificates, server_context

__all__ = ["serve", "run_local", "ClientProcessFailed"]


class ClientProcessFailed(SabreError):
    """A client process of ``sabre run --transport tcp`` exited with an error (the run directory
    is complete as far as the server got; the process's stderr says why)."""


def _resolved(cfg: ExperimentConfig) -> ExperimentConfig:
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=resolve_data_path(cfg.data.path, cfg.source)))


def serve(cfg: ExperimentConfig, *, host: str = "127.0.0.1", port: int = 0, ssl_context=None, out=None,
          progress: bool = True, join_timeout: float = 600.0, secagg_port: int = 0, timeout: float = 600.0,
          on_listening: Callable[[int], None] | None = None, writer_secrets: Mapping[int, bytes] | None = None,
          log: Callable[[str], None] = lambda s: None) -> RunSummary:
    """Serve ``cfg``: wait for the writers with training data to connect (up to ``join_timeout``
    seconds), then run every round with those connected, writing the run directory as ``sabre run``.

    ``writer_secrets``: each writer joins only with a proof of its secret (:mod:`fl.net.auth`);
    ``None``: an open join, any connection may claim any writer (trusting processes only).

    Raises:
      ConfigError: fewer writers connected than a round samples.
    """
    resolved = _resolved(cfg)
    dataset = open_dataset(resolved)
    network_pipeline(resolved, num_params(cfg.model.name), len(dataset.train_clients()), None)  # refuse early
    session = ServerSession(config_to_toml(resolved), num_params(cfg.model.name), host=host, port=port,
                            ssl_context=ssl_context, secagg_port=secagg_port, timeout=timeout,
                            writers=set(dataset.train_clients()), writer_secrets=writer_secrets, log=log)
    try:
        log(f"listening on {host}:{session.port}")
        if writer_secrets is None:
            log("open join: any connection may claim any writer id (no --writer-secrets)")
        else:
            unknown = set(dataset.train_clients()) - set(writer_secrets)
            if unknown:
                log(f"{len(unknown)} writer(s) with training data have no secret and cannot join")
        if on_listening is not None:
            on_listening(session.port)
        want = set(dataset.train_clients())
        got = session.wait_for(want, join_timeout)
        if got != want:
            log(f"{len(got)} of {len(want)} writers connected; rounds sample among those")
        return run_experiment(cfg, out=out, progress=progress, dataset=dataset,
                              simulation=lambda c, d, **kw: NetworkSimulation(c, d, session=session, **kw))
    finally:
        session.close()


def run_local(cfg: ExperimentConfig, processes: int, *, tls: bool = False, out=None, progress: bool = True,
              timeout: float = 600.0, log: Callable[[str], None] = lambda s: None) -> RunSummary:
    """``sabre run --transport tcp``: a server here and ``processes`` client processes on 127.0.0.1.

    The writers with training data are dealt round-robin to the processes; with an enabled
    ``[attack]`` every process plays it for its writers (``sabre client --attack``). Each client
    process holds the run's config (``--expect-config``) and its writers' secrets (``--secrets``,
    fresh for the run). With ``tls`` a fresh CA and server certificate are made; all live in a
    temporary directory, removed at the end.

    Raises:
      ConfigError: ``processes`` below 1.
      ClientProcessFailed: a client process exited with an error.
    """
    if processes < 1:
        raise ConfigError(f"--processes: expected at least 1, got {processes}")
    resolved = _resolved(cfg)
    writers = open_dataset(resolved).train_clients()
    network_pipeline(resolved, num_params(cfg.model.name), len(writers), None)  # refuse before any process starts
    groups = [writers[i::processes] for i in range(min(processes, len(writers)))]
    attack = cfg.attack is not None and cfg.attack.enabled
    tmp = tempfile.mkdtemp(prefix="sabre-net-")
    procs: list[subprocess.Popen] = []
    try:
        # each client holds the config it agreed to and refuses a server that sends another
        agreed = os.path.join(tmp, "agreed.toml")
        with open(agreed, "w", encoding="utf-8") as f:
            f.write(config_to_toml(resolved))
        # each writer's secret: the server holds all, each process only its own writers'
        table = make_secrets(writers)
        own = [write_secrets(os.path.join(tmp, f"secrets-{i}.json"), {w: table[w] for w in g})
               for i, g in enumerate(groups)]
        ctx, ca = None, None
        if tls:
            ca, cert, key = make_certificates(tmp, ("127.0.0.1", "localhost"))
            ctx = server_context(cert, key)
            client_context(ca)  # fails here, not in N processes, if the CA cannot be loaded

        def spawn(port: int) -> None:
            for g, secrets_file in zip(groups, own):
                cmd = [sys.executable, "-m", "fl", "client", "--server", f"127.0.0.1:{port}",
                       "--data", resolved.data.path, "--writers", ",".join(map(str, g)), "--timeout", str(timeout),
                       "--expect-config", agreed, "--secrets", str(secrets_file)]
                if ca is not None:
                    cmd += ["--tls-ca", str(ca)]
                if attack:
                    cmd.append("--attack")
                procs.append(subprocess.Popen(cmd, env=dict(os.environ)))

        summary = serve(cfg, ssl_context=ctx, out=out, progress=progress, join_timeout=timeout, timeout=timeout,
                        on_listening=spawn, writer_secrets=table, log=log)
        codes = [p.wait(timeout=timeout) for p in procs]
        if any(codes):
            raise ClientProcessFailed(f"client processes exited with status {codes}")
        return summary
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
