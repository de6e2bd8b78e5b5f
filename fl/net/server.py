"""``sabre serve``: the server of a federated run whose clients are other processes.

:class:`NetworkSimulation` is :class:`fl.simulation.Simulation` with one method replaced: the
sampled clients' messages come from their processes (:class:`~fl.net.session.ServerSession`)
instead of being trained here. Sampling, the round context, the pipeline's server halves
(proof verification, exclusion, the secure sum - over the network transport - noise, mean),
the model step, evaluation and the run directory are the simulation's own code, so a networked
run gives the model the same config gives in process.

What the server sees of a client: its writer id, its claimed weight, what its pipeline halves
attach (commitments, range proofs, the blinding's share of the side sum, as masked input), the
measurements its halves record, and its masked vector inside SecAgg - never its update.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from fl.aggregation import ClientMessage, RoundContext
from fl.aggregation.build import build_pipeline
from fl.aggregation.remote import PlayedRemotely, check_splittable
from fl.config import ConfigError, ExperimentConfig
from fl.simulation import RoundResult, Simulation

from .session import NetworkTransport, ServerSession

__all__ = ["NetworkSimulation", "network_pipeline"]


def network_pipeline(cfg: ExperimentConfig, dim: int, population: int, session: ServerSession | None):
    """The config's pipeline with its secure sum on the network transport.

    Raises:
      ConfigError: a pipeline that cannot be split across processes (naming why).
    """
    pipeline = build_pipeline(cfg.aggregation, clients_per_round=cfg.fedavg.clients_per_round, dim=dim,
                              population=population, with_replacement=cfg.fedavg.sampling == "with_replacement")
    try:
        secure_sum = check_splittable(pipeline)
    except ValueError as e:
        raise ConfigError(f"aggregation: {e}") from None
    if session is not None:
        secure_sum.transport = NetworkTransport(session)
    return pipeline


class NetworkSimulation(Simulation):
    """A :class:`Simulation` whose clients train in their own processes.

    The attack of the config, if any, is built here as in the simulation, but only to measure:
    its schedule names the round's attackers for the ``malicious`` column and its backdoor task
    is evaluated on the global model. It makes no update: attackers are client processes
    (``sabre client --attack``) that play the same adversary on their own writers.

    Args:
      session: the connected clients.
      (others as :class:`Simulation`.)
    """

    def __init__(self, cfg: ExperimentConfig, dataset, *, session: ServerSession, **kw):
        population = len(dataset.train_clients())
        pipeline = network_pipeline(cfg, session.dim, population, session)
        super().__init__(cfg, dataset, pipeline=pipeline, **kw)
        self.session = session
        self.secure_sum = check_splittable(pipeline)
        # each round samples among the writers connected at the start, as the simulation samples
        # among all writers with data (the same draws when every writer is connected)
        connected = set(session.connected())
        self.population = [c for c in self.population if c in connected]
        if not self.replace and self.clients_per_round > len(self.population):
            raise ConfigError(f"fedavg.clients_per_round: {self.clients_per_round} exceeds the "
                              f"{len(self.population)} connected clients")

    def client_messages(self, r: int, ctx: RoundContext, sampled: Sequence[int], ids: Sequence[int],
                        slots_good: Sequence[int], slots_bad: Sequence[int]) -> list[ClientMessage]:
        slots = [(sampled[s], ids[s]) for s in range(len(sampled))]
        params = self.params.detach().to("cpu").numpy()
        updates = self.session.updates(r, slots, self.clients_per_round, params)
        if self.secure_sum.active:
            # the active variant needs one distinct verify key per client: a client that sent none,
            # or one another client also sent, is left out (named), the round goes on
            keys = [u.verify_key for u in updates.values() if not isinstance(u, str)]
            for mid, up in list(updates.items()):
                if not isinstance(up, str) and (not up.verify_key or keys.count(up.verify_key) > 1):
                    updates[mid] = "no_distinct_verify_key"
        messages = []
        for mid in ids:
            up = updates[mid]
            if isinstance(up, str):
                ctx.events.append(f"client {mid}: no update ({up})")
                ctx.record("net_missing", ctx.measurements.get("net_missing", 0.0) + 1)
                continue
            for name, value in up.measurements.items():  # the client halves' counts add up, as in process
                ctx.record(name, ctx.measurements.get(name, 0.0) + float(value))
            ctx.events.extend(f"client {mid}: {e}" for e in up.events)
            messages.append(ClientMessage(mid, np.zeros(self.dim, dtype=np.dtype(up.dtype)), weight=up.weight,
                                          adversary=PlayedRemotely(tuple(up.refused) if up.refused else None),
                                          extras=dict(up.extras)))
        return messages

    def run_round(self) -> RoundResult:
        r = self.next_round
        try:
            return super().run_round()
        finally:
            self.session.end_round(r)
