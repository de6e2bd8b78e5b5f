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

import math
import re
from typing import Sequence

import numpy as np

from fl.aggregation import ClientMessage, RoundContext
from fl.aggregation.base import Stage
from fl.aggregation.build import build_pipeline
from fl.aggregation.mean import MeanStage
from fl.aggregation.norm_proof import EXTRA_KEY as NORM_PROOF_KEY
from fl.aggregation.norm_proof import NormProofStage
from fl.aggregation.robust import ATTACKER_EXTRA
from fl.aggregation.secure_sum import FIELD_VECTOR_KEY
from fl.aggregation.remote import PlayedRemotely, check_splittable
from fl.config import ConfigError, ExperimentConfig
from fl.simulation import RoundResult, Simulation

from secagg.prg import ring_dtype

from .session import NetworkTransport, ServerSession

__all__ = ["NetworkSimulation", "network_pipeline", "CLIENT_MEASUREMENTS"]

#: the measurements a client's halves record, which the server adds up, with the most one client
#: can count (``None``: the model's dimension); any other name a client sends (it cannot write
#: the server's own columns), or a larger count, is ignored
CLIENT_MEASUREMENTS = {"quantize_clipped": None, "client_nonfinite_zeroed": 1.0}
#: what a client may give as the reason tag of its own refusal (anything else is "client_refused")
_REASON = re.compile(r"[a-z0-9_]{1,40}")
#: the adversary's own columns (metric name -> its ``last_attack`` key), which only the attacker's
#: process knows: taken from the slots the server's own schedule makes malicious, never others
ADVERSARY_MEASUREMENTS = {"attack_boost": "boost", "attack_sent_norm": "sent_norm"}


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
        stages = []
        agg = pipeline
        while isinstance(agg, Stage):
            stages.append(agg)
            agg = agg.inner
        self._stage_names = {st.name for st in stages}
        proof = any(isinstance(st, NormProofStage) for st in stages)
        # what an honest client's halves hand the sum: the norm stage's signed integers and one
        # blinding in GF(q), or the quantizer's ring words and no side vector
        self._vector_dtype = np.dtype(np.int64) if proof else np.dtype(ring_dtype(self.secure_sum.bits))
        self._field_width = 1 if proof else 0
        # the extras an honest client's halves attach (and the adversary's own label, a measurement)
        self._extras_keys = {ATTACKER_EXTRA} | ({NORM_PROOF_KEY} if proof else set())
        # each round samples among the writers connected at the start, as the simulation samples
        # among all writers with data (the same draws when every writer is connected)
        connected = set(session.connected())
        self.population = [c for c in self.population if c in connected]
        # a client's weight is its own claim here: under "examples" with no public cap, one claim
        # of 1e300 would make every step zero. The cap is then the largest example count among
        # the writers of the server's copy of the data (an honest claim never exceeds it); a
        # deployment whose server holds no data sets aggregation.max_weight
        mean = next((st for st in stages if isinstance(st, MeanStage)), None)
        self._examples_weighting = mean is not None and mean.weighting == "examples"
        if self._examples_weighting and mean.max_weight is None and self.population:
            mean.max_weight = float(max(dataset.num_train(c) for c in self.population))
            session.log(f"weights: each client's claimed example count is capped at {mean.max_weight:g}, "
                        f"the largest among this run's writers (aggregation.max_weight is not set)")
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
        self._adversary_report(r, [ids[s] for s in slots_bad], updates)
        messages = []
        for mid in ids:
            up = updates[mid]
            if isinstance(up, str):
                ctx.events.append(f"client {mid}: no update ({up})")
                ctx.record("net_missing", ctx.measurements.get("net_missing", 0.0) + 1)
                continue
            # a client's own words reach run.log: one line each, bounded (no forged log lines)
            refused = None
            if up.refused:  # the tag from a fixed vocabulary's shape, the text quoted: no forged log lines
                stage, reason, text = (" ".join(x.split())[:200] for x in up.refused)
                refused = (stage, reason if _REASON.fullmatch(reason) else "client_refused",
                           f"client {mid} refused its own update: {text!r}")
            why = self._malformed(up)
            if why is not None:  # excluded and named by the outermost stage, as an invalid update is
                refused, extras = (self.pipeline.name, "malformed_update", f"client {mid}: {why}"), {}
            else:
                extras = dict(up.extras)
                for name, value in up.measurements.items():  # the client halves' counts add up, as in process
                    if name not in CLIENT_MEASUREMENTS:
                        continue
                    cap = CLIENT_MEASUREMENTS[name]
                    if math.isfinite(value) and 0 <= value <= (self.dim if cap is None else cap):
                        ctx.record(name, ctx.measurements.get(name, 0.0) + float(value))
                ctx.events.extend(f"client {mid} says: {' '.join(e.split())[:200]!r}" for e in up.events[:8])
            if refused is None and self._field_width:
                # the client sums its side vector (its commitment's blinding) inside SecAgg itself;
                # the server's stages only see that one is there, never its value
                extras[FIELD_VECTOR_KEY] = [0] * self._field_width
            messages.append(ClientMessage(mid, np.zeros(self.dim, dtype=self._vector_dtype), weight=up.weight,
                                          adversary=PlayedRemotely(refused), extras=extras))
        return messages

    def _adversary_report(self, r: int, bad: Sequence[int], updates) -> None:
        """The attack's own columns (``attack_boost``, ``attack_sent_norm``) as the first of the
        round's attackers reports them; in process the adversary records them itself. Only a slot
        the server's schedule makes malicious is read, so an honest client cannot write them."""
        if self.adversary is None:
            return
        for mid in bad:
            up = updates.get(mid)
            if isinstance(up, str):
                continue
            got = {key: up.measurements.get(name) for name, key in ADVERSARY_MEASUREMENTS.items()}
            if all(isinstance(v, float) and math.isfinite(v) for v in got.values()):
                self.adversary.last_attack = {"round": float(r), **got}
                return

    def _malformed(self, up) -> str | None:
        """Why an update cannot enter the pipeline as it came (``None``: it can). A client's upload
        is checked here against what an honest client's halves produce, so that no field of it
        can make a stage raise anything but an exclusion."""
        if not (math.isfinite(up.weight) and up.weight >= 0):
            return f"weight {up.weight!r}"
        if self._examples_weighting and up.weight < 1:  # a writer of the run has an example at least
            return f"weight {up.weight!r} under weighting = \"examples\""
        if up.refused is not None:
            return None if up.refused[0] in self._stage_names else f"refused at an unknown stage {up.refused[0]!r}"
        if np.dtype(up.dtype) != self._vector_dtype:
            return f"a {up.dtype} vector, expected {self._vector_dtype}"
        if FIELD_VECTOR_KEY in up.extras:
            return "a side vector in the clear (it travels only masked, inside SecAgg)"
        unknown = sorted(set(up.extras) - self._extras_keys)
        if unknown:
            return f"extras no stage of this run sends: {', '.join(repr(k[:40]) for k in unknown[:4])}"
        if ATTACKER_EXTRA in up.extras and not isinstance(up.extras[ATTACKER_EXTRA], bool):
            return f"extras[{ATTACKER_EXTRA!r}] is not a bool"
        if NORM_PROOF_KEY in up.extras:
            blob = up.extras[NORM_PROOF_KEY]
            if not (isinstance(blob, dict) and set(blob) == {"commitment", "proof"}
                    and all(isinstance(v, bytes) for v in blob.values())):
                return f"extras[{NORM_PROOF_KEY!r}] is not {{commitment, proof}} as bytes"
        return None

    def run_round(self) -> RoundResult:
        r = self.next_round
        try:
            return super().run_round()
        finally:
            self.session.end_round(r)
