"""The :class:`fl.hooks.Adversary` of Sun et al. (2019): backdoor task + schedule + attack.

Call order (see ``fl.hooks``): the simulation asks :meth:`BackdoorAdversary.plan_round` which
sampled clients are malicious, then :meth:`~BackdoorAdversary.malicious_messages` for what they
upload, then :meth:`~BackdoorAdversary.metrics` after evaluation. Several attackers in one round
coordinate: they train one malicious model together (on D_mal and, by default, on all their own
benign data) and split the boosted update evenly, each claiming its own example count as weight.

Each malicious message carries ``extras["attacker"] = True``. This is simulation ground truth
for measurements only (attacker norms in the defense stages' logs); no stage may use it to
decide anything.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from fl.aggregation.base import ClientMessage
from fl.aggregation.robust import ATTACKER_EXTRA
from fl.data import to_model_input
from fl.training import ClientData

from .backdoor import BackdoorTask, backdoor_metrics, build_backdoor_task
from .beyond import scale_to_norm
from .boosting import WEIGHTINGS_FOR_BOOST, boost_factor
from .config import AttackConfig
from .pgd import NORMS, explicit_parts, joint_malicious_delta, malicious_delta, vector_norm64
from .pipeline_cheats import build_cheat
from .schedules import FixedFrequencySchedule, RandomSamplingSchedule, Schedule, attack_frequency

__all__ = ["BackdoorAdversary", "ATTACKER_EXTRA"]


class BackdoorAdversary:
    """The paper's adversary: plans attack rounds and crafts the malicious updates.

    Args:
      cfg: the validated ``[attack]`` section (``kind != "none"``).
      dataset: the run's ``fl.data.FederatedDataset``.
      run_seed: the run's seed (with ``cfg.target_seed``, seeds the random-sampling population).
      norm_bound: ``aggregation.norm_bound`` M, or ``None`` when the run has no bound.
      weighting: ``aggregation.weighting``, for the automatic boost.
      clients_per_round: C*K; ``None`` takes the number of clients sampled in the first round.
      mean_client_weight: under ``"examples"`` weighting, the average weight the automatic
        boost assumes. ``None``: the mean training-set size over all participants, which reads
        every participant's count; a run with noise passes the public cap ``max_weight`` (the
        server divides by ``K * max_weight`` then, so that is also the right boost).

    Raises:
      ValueError: the config needs a norm bound (``pgd_bound = "auto"`` with ``kind`` pgd or
        at_bound) and none was given, or an unknown weighting.
      BackdoorTaskError: the data cannot support ``cfg.num_tasks`` target writers.
    """

    def __init__(
        self,
        cfg: AttackConfig,
        dataset,
        run_seed: int,
        *,
        norm_bound: float | None = None,
        weighting: str = "examples",
        clients_per_round: int | None = None,
        norm_kind: str = "l2",
        mean_client_weight: float | None = None,
    ):
        cfg.validate()
        if cfg.kind == "none":
            raise ValueError("attack.kind: BackdoorAdversary needs an attack kind other than \"none\"")
        if cfg.kind in ("pgd", "at_bound") and cfg.pgd_bound == "auto" and norm_bound is None:
            raise ValueError(f"attack.pgd_bound: \"auto\" with kind {cfg.kind!r} needs aggregation.norm_bound")
        if weighting not in WEIGHTINGS_FOR_BOOST:
            raise ValueError(f"aggregation.weighting: expected one of {list(WEIGHTINGS_FOR_BOOST)}, got {weighting!r}")
        self.cfg = cfg
        self.dataset = dataset
        self.run_seed = int(run_seed)
        self.norm_bound = None if norm_bound is None else float(norm_bound)
        if norm_kind not in NORMS:
            raise ValueError(f"aggregation.norm_kind: expected one of {list(NORMS)}, got {norm_kind!r}")
        #: the norm of the bound, hence of the ball the attacker projects onto
        self.norm_kind = norm_kind
        self.weighting = weighting
        self.clients_per_round = clients_per_round
        self.task: BackdoorTask = build_backdoor_task(
            dataset,
            cfg.num_tasks,
            source_label=cfg.source_label,
            target_label=cfg.target_label,
            target_seed=cfg.target_seed,
        )
        if mean_client_weight is not None:
            if not (math.isfinite(mean_client_weight) and mean_client_weight > 0):
                raise ValueError(f"mean_client_weight: expected a positive finite number, got {mean_client_weight!r}")
            # a public figure (the server's fixed denominator K * W under noise): the boost then
            # reads no client's data
            self.mean_client_weight = float(mean_client_weight)
        else:
            train_counts = [dataset.num_train(c) for c in dataset.train_clients()]
            self.mean_client_weight = float(np.mean(train_counts)) if train_counts else 1.0
        self.schedule: Schedule | None = None
        if cfg.schedule == "random_sampling":
            self.schedule = RandomSamplingSchedule(
                dataset.train_clients(), cfg.eps, seed=self.run_seed * 1_000_003 + cfg.target_seed
            )
        elif clients_per_round is not None or cfg.frequency is not None:
            self._make_fixed(clients_per_round)
        self.cheat = build_cheat(cfg.cheat, cfg.cheat_factor)
        #: the task's arrays on a device, keyed by (device, id of the task's pixel array)
        self._device_cache: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._planned_round: int | None = None
        #: facts about the last attack round (boost, bound, norms), for logs and tests
        self.last_attack: dict[str, float] = {}

    def _make_fixed(self, clients_per_round: int | None) -> None:
        freq = self.cfg.frequency
        if freq is None:
            freq = attack_frequency(self.cfg.eps, int(clients_per_round))
        self.schedule = FixedFrequencySchedule(freq)

    # ------------------------------------------------------------------ fl.hooks.Adversary
    def plan_round(self, round_index: int, sampled: Sequence[int], rng: np.random.Generator) -> list[int]:
        """The malicious clients among ``sampled`` (``rng`` is unused: the schedules are seeded)."""
        if self.schedule is None:
            self._make_fixed(self.clients_per_round or len(sampled))
        self._planned_round = int(round_index)
        return self.schedule.attackers(round_index, sampled)

    def malicious_messages(
        self, view, round_index: int, clients: Sequence[int], global_params: torch.Tensor
    ) -> list[ClientMessage]:
        """Train the malicious model once and split its boosted update among ``clients``."""
        clients = [int(c) for c in clients]
        if not clients:
            return []
        cfg = self.cfg
        a = len(clients)
        weights = [float(self.dataset.num_train(c)) for c in clients]
        betas = [self._boost(view, a, w) for w in weights]
        # the largest boost sets the radius, so that every attacker's boosted update stays within M
        bound = self._train_bound(max(betas))
        # a client sampled twice (sampling with replacement) contributes its data once
        benign = [view.client_data(c) for c in dict.fromkeys(clients)] if cfg.include_benign else []
        mal_data = self._malicious_data(view)
        if cfg.training == "explicit":
            return self._explicit_messages(view, round_index, clients, global_params, weights, betas, benign, mal_data)
        delta = self._trained_delta(view, round_index, global_params, benign, mal_data, bound)
        if cfg.kind == "at_bound":
            at_bound = scale_to_norm(delta, self._at_bound_norm(), self.norm_kind)
            sent = [at_bound.clone() for _ in clients]  # one norm, but each message owns its vector
            boost = 1.0
        else:
            sent = [(delta.double() * b).to(torch.float32) for b in betas]
            boost = betas[0]
        self._record(round_index, clients, boost, bound, delta, sent)
        return self._messages(clients, sent, weights)

    def _trained_delta(self, view, round_index, global_params, benign, mal_data, bound) -> torch.Tensor:
        """The malicious model's ``w - w_t`` (before boosting), trained as ``attack.training`` says."""
        cfg = self.cfg
        if cfg.training == "joint":
            epochs = int(view.local.epochs if cfg.attacker_epochs is None else cfg.attacker_epochs)
            delta = joint_malicious_delta(
                view, global_params, benign, mal_data, self._seeds(round_index, 0x101D, epochs),
                epochs=epochs, bound=bound, attacker_lr=cfg.attacker_lr, norm=self.norm_kind,
            )
        else:
            delta = malicious_delta(
                view, global_params, benign, mal_data, self.task.size,
                self._seeds(round_index, 0xBAD, cfg.pgd_rounds),
                rounds=cfg.pgd_rounds, bound=bound, malicious_steps=cfg.malicious_steps,
                attacker_lr=cfg.attacker_lr, norm=self.norm_kind, benign_epochs=cfg.block_epochs,
            )
        return delta.detach().to("cpu", torch.float32)

    def _explicit_messages(self, view, round_index, clients, global_params, weights, betas, benign, mal_data):
        """Each attacker sends its own benign update plus its share beta_a * Delta_m."""
        cfg = self.cfg
        benign_deltas, mal = explicit_parts(
            view, global_params, benign, mal_data, self.task.size,
            self._seeds(round_index, 0xE8B, len(benign) + 1),
            malicious_steps=cfg.malicious_steps, attacker_lr=cfg.attacker_lr,
        )
        mal = mal.detach().to("cpu")
        own = {c: d.detach().to("cpu") for c, d in zip(dict.fromkeys(clients), benign_deltas)}
        sent = []
        for c, b in zip(clients, betas):
            v = mal.double() * b
            if c in own:
                v = v + own[c].double()
            sent.append(v.to(torch.float32))
        self._record(round_index, clients, betas[0], None, mal, sent)
        return self._messages(clients, sent, weights)

    def _record(self, round_index, clients, boost, bound, delta, sent) -> None:
        """Facts about this attack round, for logs, metrics and tests (:attr:`last_attack`)."""
        self.last_attack = {
            "round": float(round_index),
            "attackers": float(len(clients)),
            "boost": float(boost),
            "train_bound": float("inf") if bound is None else float(bound),
            "delta_norm": vector_norm64(delta),
            "sent_norm": vector_norm64(sent[0]),
            "sent_linf": float(sent[0].abs().max()),
        }

    def _messages(self, clients, sent, weights) -> list[ClientMessage]:
        return [
            ClientMessage(
                client_id=c,
                vector=np.ascontiguousarray(v.numpy(), dtype=np.float32),
                weight=w,
                adversary=self.cheat,
                extras={ATTACKER_EXTRA: True},
            )
            for c, v, w in zip(clients, sent, weights)
        ]

    def metrics(self, view, global_params: torch.Tensor) -> dict[str, float]:
        """``backdoor_acc`` on D_mal and ``backdoor_heldout_acc`` on the targets' test 7s.

        After an attack round also ``attack_boost`` (beta per attacker, 1 for at_bound) and
        ``attack_sent_norm`` (L2 norm of one attacker's update before the pipeline).
        """
        out = backdoor_metrics(
            view.evaluate, self.task, lambda pixels, labels: self._on_device(view, pixels, labels), global_params
        )
        if self.last_attack and self.last_attack["round"] == self._planned_round:
            out["attack_boost"] = self.last_attack["boost"]
            out["attack_sent_norm"] = self.last_attack["sent_norm"]
        return out

    def main_eval_exclude(self) -> set[int]:
        """The target writers: their test data is not main-task data."""
        return set(self.task.target_clients)

    # ------------------------------------------------------------------ helpers
    def _boost(self, view, num_attackers: int, weight: float) -> float:
        if self.cfg.boost != "auto":
            return float(self.cfg.boost)
        return boost_factor(
            clients_per_round=int(view.clients_per_round),
            server_lr=float(view.server_lr),
            num_attackers=num_attackers,
            weighting=self.weighting,
            attacker_weight=weight,
            mean_client_weight=self.mean_client_weight,
        )

    def _seeds(self, round_index: int, tag: int, count: int) -> list[int]:
        """``count`` training seeds for the attack of ``round_index`` (``tag`` separates the modes)."""
        state = np.random.SeedSequence([self.run_seed, int(round_index), tag]).generate_state(count, np.uint64)
        return [int(s) % 2**63 for s in state]

    def _at_bound_norm(self) -> float:
        return float(self.norm_bound if self.cfg.pgd_bound == "auto" else self.cfg.pgd_bound)

    def _train_bound(self, beta: float) -> float | None:
        kind = self.cfg.kind
        if kind == "boosted":
            return None
        if kind == "at_bound":
            return self._at_bound_norm()
        if self.cfg.pgd_bound == "auto":
            return float(self.norm_bound) / beta
        return float(self.cfg.pgd_bound)

    def _on_device(self, view, pixels: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``pixels`` (one of the task's arrays) and ``labels`` as model input on the view's device, cached."""
        key = (str(view.device), id(pixels))
        if key not in self._device_cache:
            self._device_cache[key] = (
                torch.as_tensor(to_model_input(pixels)).to(view.device),
                torch.as_tensor(labels).to(view.device),
            )
        return self._device_cache[key]

    def _malicious_data(self, view):
        return ClientData(*self._on_device(view, self.task.train_pixels, self.task.train_labels))

    def __repr__(self) -> str:
        return (
            f"BackdoorAdversary(kind={self.cfg.kind!r}, schedule={self.schedule!r}, "
            f"targets={len(self.task.target_clients)}, |D_mal|={self.task.size})"
        )
