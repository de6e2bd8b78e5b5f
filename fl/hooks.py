"""How attacks (and other experiment add-ons) plug into the FedAvg simulation.

The simulation asks one :class:`Adversary` per run (``None`` for a clean run):

1. ``plan_round`` - which of the round's sampled clients are malicious;
2. ``malicious_messages`` - what those clients hand to the aggregation pipeline (a
   :class:`~fl.aggregation.ClientMessage` with the update they want counted, their claimed
   weight and, for clients that cheat the secure pipeline itself, an ``adversary`` object);
3. ``metrics`` - extra evaluation numbers (backdoor accuracy, ...) for each evaluated round;
4. ``main_eval_exclude`` - writers whose test data must not count for main-task accuracy.

An adversary that keeps state between rounds also provides ``state_dict()`` (plain values and
tensors) and ``load_state_dict(state)``; checkpoints store it, so a resumed run is exact.

The simulation gives the adversary a :class:`TrainingView`: enough to train and evaluate with
the run's own model, data and hyperparameters, and nothing that would let it read other
clients' updates.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np

if TYPE_CHECKING:  # imported for annotations only
    import torch

    from fl.aggregation import ClientMessage
    from fl.training import LocalConfig


class TrainingView(Protocol):
    """What the simulation exposes to an adversary."""

    #: the run's federated dataset (``fl.data.FederatedDataset``)
    dataset: object
    #: model name understood by ``fl.model.get_model``
    model_name: str
    #: local training hyperparameters of honest clients (``fl.training.LocalConfig``)
    local: "LocalConfig"
    device: "torch.device"
    clients_per_round: int
    server_lr: float
    seed: int

    def client_data(self, client_index: int) -> object:
        """The client's training data as ``fl.training.ClientData`` on the run's device."""

    def train(
        self,
        start: "torch.Tensor",
        datasets: Sequence[object],
        seeds: Sequence[int],
        local: object | None = None,
    ) -> "torch.Tensor":
        """Train from flat weights ``start`` on each dataset; return deltas, shape [k, dim]."""

    def evaluate(self, params: "torch.Tensor", x: "torch.Tensor", y: "torch.Tensor") -> tuple[float, float]:
        """Accuracy and mean loss of flat weights ``params`` on ``(x, y)``."""


class Adversary(Protocol):
    """An attack on the federated run (see the module docstring for the call order)."""

    def plan_round(self, round_index: int, sampled: Sequence[int], rng: np.random.Generator) -> list[int]:
        """Return the subset of ``sampled`` (client indices) that are malicious this round."""

    def malicious_messages(
        self,
        view: TrainingView,
        round_index: int,
        clients: Sequence[int],
        global_params: "torch.Tensor",
    ) -> list["ClientMessage"]:
        """The messages the malicious ``clients`` upload, in the same order."""

    def metrics(self, view: TrainingView, global_params: "torch.Tensor") -> dict[str, float]:
        """Extra metrics for an evaluated round (for example ``backdoor_acc``)."""

    def main_eval_exclude(self) -> set[int]:
        """Client indices whose test images are left out of main-task accuracy."""
