"""Federated averaging on one machine: client sampling, local training, aggregation, evaluation.

One round ``t`` of :class:`Simulation`:

1. sample ``K`` = ``fedavg.clients_per_round`` clients among those with training data, uniformly,
   without replacement (or with replacement, as the authors' code does);
2. ask the adversary, if any, which of them are malicious;
3. honest clients run ``E`` epochs of SGD (batch ``B``, learning rate ``client_lr``) from
   ``w_t`` and upload ``dw_k = w_k - w_t`` as a :class:`~fl.aggregation.ClientMessage` of
   weight ``n_k`` (their number of training examples); malicious clients upload what the
   adversary makes;
4. the aggregation pipeline turns the messages into one vector ``a_t`` (the weighted mean
   ``sum_k n_k dw_k / sum_k n_k`` in the plain configuration);
5. the server steps ``w_{t+1} = w_t + eta * a_t``. If the pipeline raises
   :class:`~fl.aggregation.RoundFailed`, the model is left as it was.

Every random choice of round ``t`` (the sample, each client's training seed, the adversary's
plan) is derived from ``(run seed, t)`` with :meth:`~fl.aggregation.RoundContext.derive_seed`, so
a run restarted at round ``t`` from ``w_t`` continues exactly as if it had never stopped.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from fl.aggregation import Aggregator, ClientMessage, RoundContext, RoundFailed
from fl.aggregation.build import build_pipeline
from fl.aggregation.prepare import finite_or_zero
from fl.config import ConfigError, ExperimentConfig
from fl.data import FederatedDataset, to_model_input
from fl.hooks import Adversary
from fl.model import evaluate as evaluate_model
from fl.model import init_params, num_params
from fl.training import ClientData, LocalConfig, train_clients

__all__ = ["Simulation", "RoundResult", "sample_clients", "resolve_device", "to_client_data"]


def resolve_device(name: str) -> torch.device:
    """The torch device for ``run.device``: ``"auto"`` picks CUDA when it is available.

    Raises:
      ConfigError: ``"cuda"`` was asked for but no CUDA device is available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device: \"cuda\" asked for, but no CUDA device is available")
    return torch.device(name)


def to_client_data(pixels: np.ndarray, labels: np.ndarray, device: torch.device) -> ClientData:
    """A client's images and labels as the model's input tensors on ``device``."""
    x = torch.from_numpy(to_model_input(pixels)).to(device)
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64)).to(device)
    return ClientData(x, y)


def sample_clients(population: Sequence[int], k: int, rng: np.random.Generator, *, replace: bool) -> list[int]:
    """``k`` clients drawn uniformly from ``population``.

    Args:
      population: client indices to draw from.
      k: how many to draw.
      rng: the round's sampling generator.
      replace: draw with replacement (a client may appear more than once).

    Returns:
      The drawn client indices, in draw order.

    Raises:
      ValueError: ``k`` exceeds the population when drawing without replacement.
    """
    if not replace and k > len(population):
        raise ValueError(f"cannot draw {k} distinct clients from {len(population)}")
    picks = rng.choice(len(population), size=k, replace=replace)
    return [int(population[i]) for i in picks]


@dataclasses.dataclass
class RoundResult:
    """What happened in one round.

    Attributes:
      round_index: the round, from 0.
      seconds: wall time of sampling, training, aggregation and the model step.
      sampled: client indices sampled, in slot order.
      malicious: the sampled clients the adversary played.
      included: ids of the clients whose updates are in the aggregate (empty if the round failed).
      rejected: ids of clients the pipeline left out, with the reason.
      failure: the :class:`RoundFailed` reason tag, or ``None`` when the model was updated.
      measurements: what the pipeline's stages recorded in the round context.
      events: the pipeline's notes for the run log.
    """

    round_index: int
    seconds: float
    sampled: list[int]
    malicious: list[int]
    included: list[int]
    rejected: dict[int, str]
    failure: str | None
    measurements: dict[str, float]
    events: list[str]

    def row(self) -> dict[str, float | int]:
        """The round's columns of ``metrics.csv`` (see :mod:`fl.experiment`)."""
        return {
            "round": self.round_index,
            "seconds": self.seconds,
            "clients": len(self.included),
            "rejected": len(self.rejected),
            "round_failed": int(self.failure is not None),
            "malicious": len(self.malicious),
            **self.measurements,
        }


class Simulation:
    """FedAvg over a :class:`~fl.data.FederatedDataset`; implements :class:`fl.hooks.TrainingView`.

    Every client's data is loaded onto the device once, when the simulation is built.

    Args:
      cfg: the run's configuration.
      dataset: the federated dataset.
      adversary: the attack, or ``None`` for a clean run.
      pipeline: the aggregator; built from ``cfg.aggregation`` when ``None``.
      device: where to train and evaluate; from ``cfg.run.device`` when ``None``.

    Attributes:
      params: the global model ``w_t`` as a flat float32 tensor on ``device``.
      next_round: the index of the round :meth:`run_round` trains next.

    Raises:
      ConfigError: the dataset cannot support the configuration (too few clients).
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        dataset: FederatedDataset,
        *,
        adversary: Adversary | None = None,
        pipeline: Aggregator | None = None,
        device: torch.device | None = None,
    ):
        self.cfg = cfg
        self.dataset = dataset
        self.adversary = adversary
        self.model_name = cfg.model.name
        self.device = device if device is not None else resolve_device(cfg.run.device)
        self.local = LocalConfig(epochs=cfg.fedavg.epochs, batch_size=cfg.fedavg.batch_size,
                                 lr=cfg.fedavg.client_lr, shuffle=cfg.fedavg.shuffle)
        self.clients_per_round = cfg.fedavg.clients_per_round
        self.server_lr = cfg.fedavg.server_lr
        self.seed = cfg.run.seed
        self.dim = num_params(self.model_name)
        self.population = dataset.train_clients()
        replace = cfg.fedavg.sampling == "with_replacement"
        if not self.population:
            raise ConfigError(f"data.path: dataset {dataset.name!r} has no client with training data")
        if not replace and self.clients_per_round > len(self.population):
            raise ConfigError(f"fedavg.clients_per_round: {self.clients_per_round} exceeds the "
                              f"{len(self.population)} clients with training data in {dataset.name!r}")
        self.replace = replace
        self._clients = {c: self._to_device(*dataset.client_train(c)) for c in self.population}
        # the sensitivity needs the sampling mode; under "examples" weighting it uses the public cap
        # aggregation.max_weight, never the data's largest example count
        self.pipeline = pipeline if pipeline is not None else build_pipeline(
            cfg.aggregation, clients_per_round=self.clients_per_round, dim=self.dim,
            population=len(self.population), with_replacement=replace)
        test_pixels, test_labels, test_clients = dataset.test_all_with_clients()
        if len(test_labels) == 0:
            raise ConfigError(f"data.path: {dataset.name!r} has no test images to evaluate the main task on")
        self._test = self._to_device(test_pixels, test_labels)
        self._test_clients = torch.as_tensor(test_clients.astype(np.int64), device=self.device)
        self.params = init_params(self.model_name, self.seed).to(self.device)
        self.next_round = 0

    def _to_device(self, pixels: np.ndarray, labels: np.ndarray) -> ClientData:
        return to_client_data(pixels, labels, self.device)

    # ------------------------------------------------------------------ TrainingView
    def client_data(self, client_index: int) -> ClientData:
        """Client ``client_index``'s training data on the run's device."""
        try:
            return self._clients[client_index]
        except KeyError:
            raise IndexError(f"client {client_index} has no training data") from None

    def train(
        self,
        start: torch.Tensor,
        datasets: Sequence[ClientData],
        seeds: Sequence[int],
        local: LocalConfig | None = None,
    ) -> torch.Tensor:
        """Train from flat weights ``start`` on each dataset; the deltas, shape ``[k, dim]``."""
        return train_clients(self.model_name, start, list(datasets), local or self.local, list(seeds),
                             self.device, self.cfg.run.training_path)

    def evaluate(self, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """Accuracy and mean loss of flat weights ``params`` on ``(x, y)`` (dropout off)."""
        return evaluate_model(self.model_name, params, x, y, self.cfg.eval.batch_size, self.device)

    # ------------------------------------------------------------------ one round
    def context(self, round_index: int) -> RoundContext:
        """A fresh :class:`RoundContext` for ``round_index``; all its randomness comes from it."""
        return RoundContext(round_index=round_index, seed=self.seed, dim=self.dim,
                            expected_clients=self.clients_per_round)

    def sample(self, round_index: int) -> list[int]:
        """The clients sampled in ``round_index`` (a pure function of the run seed and the round)."""
        rng = self.context(round_index).rng("sampling")
        return sample_clients(self.population, self.clients_per_round, rng, replace=self.replace)

    def message_ids(self, sampled: Sequence[int]) -> list[int]:
        """Unique message ids for the sampled slots.

        A client's id is its index; when sampling with replacement, the ``j``-th repeat of
        client ``c`` in the same round gets ``c + j * num_clients`` (so ``id % num_clients`` is
        always the client).
        """
        seen: dict[int, int] = {}
        ids = []
        for c in sampled:
            j = seen.get(c, 0)
            seen[c] = j + 1
            ids.append(c + j * self.dataset.num_clients)
        return ids

    def client_messages(self, r: int, ctx: RoundContext, sampled: Sequence[int], ids: Sequence[int],
                        slots_good: Sequence[int], slots_bad: Sequence[int]) -> list[ClientMessage]:
        """The sampled clients' messages, in slot order: honest clients train here, the adversary
        forges the malicious ones (a networked server asks the clients' processes instead)."""
        messages: list[ClientMessage | None] = [None] * len(sampled)
        if slots_good:
            deltas = self.train(self.params, [self._clients[sampled[s]] for s in slots_good],
                                [ctx.derive_seed("train", ids[s]) for s in slots_good])
            deltas = deltas.detach().to("cpu", torch.float32).numpy()
            zeroed = []
            for row, s in enumerate(slots_good):
                # an honest client whose training diverged sends zeros, so that its data never fails
                # the round (fl.aggregation.prepare)
                update, replaced = finite_or_zero(np.ascontiguousarray(deltas[row]))
                if replaced:
                    zeroed.append(ids[s])
                messages[s] = ClientMessage(ids[s], update, weight=float(len(self._clients[sampled[s]])))
            if zeroed:
                ctx.record("client_nonfinite_zeroed", len(zeroed))
                ctx.events.append(f"client(s) {zeroed}: non-finite update after training; sent zeros")
        if slots_bad:
            bad_clients = [sampled[s] for s in slots_bad]
            forged = self.adversary.malicious_messages(self, r, bad_clients, self.params.clone())
            if len(forged) != len(slots_bad):
                raise RuntimeError(f"adversary returned {len(forged)} messages for {len(slots_bad)} clients")
            for s, m in zip(slots_bad, forged):
                messages[s] = m if m.client_id == ids[s] else m.replace(client_id=ids[s])
        return messages

    def run_round(self) -> RoundResult:
        """Train round :attr:`next_round` and step the model; returns what happened.

        Messages reach the pipeline in slot (sampling) order. A malicious client's message is
        given the slot's id (see :meth:`message_ids`) whatever id the adversary put on it.

        Raises:
          RuntimeError: the adversary or the pipeline broke its contract (message count, shape).
        """
        t0 = time.perf_counter()
        r = self.next_round
        ctx = self.context(r)
        sampled = self.sample(r)
        ids = self.message_ids(sampled)
        bad: set[int] = set()
        if self.adversary is not None:
            bad = set(self.adversary.plan_round(r, list(sampled), ctx.rng("adversary")))
        slots_bad = [s for s, c in enumerate(sampled) if c in bad]
        slots_good = [s for s, c in enumerate(sampled) if c not in bad]

        messages = self.client_messages(r, ctx, sampled, ids, slots_good, slots_bad)

        failure = None
        included: list[int] = []
        rejected: dict[int, str] = {}
        try:
            result = self.pipeline.aggregate(messages, ctx)
        except RoundFailed as e:
            failure = e.reason
            blame = f" (blamed: {', '.join(map(str, e.blamed))})" if e.blamed else ""
            ctx.events.append(f"round failed ({e.reason}): {e}{blame}")
        else:
            step = torch.from_numpy(np.asarray(result.vector, dtype=np.float32)).to(self.device)
            if step.shape != self.params.shape:
                raise RuntimeError(f"pipeline returned a vector of shape {tuple(step.shape)}, "
                                   f"the model has {tuple(self.params.shape)}")
            self.params.add_(step, alpha=self.server_lr)
            included, rejected = list(result.included), dict(result.rejected)
        self.next_round = r + 1
        return RoundResult(
            round_index=r,
            seconds=time.perf_counter() - t0,
            sampled=list(sampled),
            malicious=[sampled[s] for s in slots_bad],
            included=included,
            rejected=rejected,
            failure=failure,
            measurements=dict(ctx.measurements),
            events=list(ctx.events),
        )

    # ------------------------------------------------------------------ evaluation
    @property
    def num_test(self) -> int:
        """Number of test images (all writers) the main task is evaluated on."""
        return int(self._test.y.shape[0])

    def should_evaluate(self, round_index: int) -> bool:
        """Whether the schedule evaluates after ``round_index`` (every ``eval.every``, and the last)."""
        return (round_index + 1) % self.cfg.eval.every == 0 or round_index + 1 == self.cfg.run.rounds

    def evaluate_global(self) -> dict[str, float]:
        """Main-task accuracy and loss of :attr:`params` on the test images of all writers, plus
        the adversary's metrics. Writers in the adversary's ``main_eval_exclude()`` are left out of
        the main task."""
        x, y = self._test.x, self._test.y
        if self.adversary is not None:
            exclude = sorted(self.adversary.main_eval_exclude())
            if exclude:
                keep = ~torch.isin(self._test_clients, torch.as_tensor(exclude, device=self.device))
                x, y = x[keep], y[keep]
        acc, loss = self.evaluate(self.params, x, y)
        metrics = {"main_acc": acc, "main_loss": loss}
        if self.adversary is not None:
            for key, value in self.adversary.metrics(self, self.params).items():
                if key in metrics:
                    raise RuntimeError(f"adversary metric {key!r} clashes with a main-task column")
                metrics[key] = float(value)
        return metrics

    # ------------------------------------------------------------------ resume
    def restore(self, params: torch.Tensor, next_round: int,
                round_rows: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Continue from ``params`` (``w_t``) with round ``next_round`` (``t``) next.

        ``round_rows`` (the rows of the rounds already run) give the pipeline's stages back what
        they recorded: the privacy accountant of distributed noise composes every released round
        with its own realised noise, so it needs those rounds' multipliers.
        """
        if params.shape != (self.dim,):
            raise ValueError(f"checkpoint params have shape {tuple(params.shape)}, the model needs ({self.dim},)")
        self.params = params.to(device=self.device, dtype=torch.float32).clone()
        self.next_round = int(next_round)
        if round_rows is not None:
            earlier = [r for r in round_rows if int(r["round"]) < self.next_round]
            stage = self.pipeline
            while stage is not None:
                if hasattr(stage, "restore_history"):
                    stage.restore_history(earlier)
                stage = getattr(stage, "inner", None)

    def count_rereleases(self, rereleased: Sequence[tuple[int, float]]) -> None:
        """Hand every accountant in the pipeline the releases a killed run made after its last
        checkpoint (``(round, multiplier)``), which this run recomputes with fresh noise: those
        rounds are then accounted without amplification by sampling (docs/privacy.md)."""
        ledger = tuple((int(r), float(z)) for r, z in rereleased)
        stage = self.pipeline
        while stage is not None:
            if getattr(stage, "accounting", None) is not None:
                stage.accounting = dataclasses.replace(stage.accounting, rereleased=ledger)
            stage = getattr(stage, "inner", None)
