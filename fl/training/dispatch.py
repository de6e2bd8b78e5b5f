"""``train_clients``: validate a round's training request and run it on the chosen path."""
from __future__ import annotations

from typing import Sequence

import torch

from fl.model import num_params
from fl.training.batched import train_batched
from fl.training.config import ClientData, LocalConfig
from fl.training.loop import train_loop

__all__ = ["train_clients", "PATHS"]

#: The training paths; ``"auto"`` picks ``"loop"`` on a CPU and ``"batched"`` on CUDA.
PATHS = ("loop", "batched", "auto")


def _auto_path(device: torch.device) -> str:
    """Measured choice: on CPU the per-client loop beats the vectorised step (grouped
    convolutions have no fast CPU kernel); on a GPU one vectorised step for all clients keeps
    the device busy where a 20-image batch would not."""
    return "batched" if device.type == "cuda" else "loop"


def train_clients(
    model_name: str,
    start: torch.Tensor,
    clients: Sequence[ClientData],
    cfg: LocalConfig,
    seeds: Sequence[int],
    device: torch.device | str = "cpu",
    path: str = "auto",
) -> torch.Tensor:
    """Run local SGD for each client from the same flat weights and return the updates.

    Each client trains independently (its own permutations and dropout masks from a generator
    seeded with its seed): plain SGD, ``cfg.epochs`` epochs of batches of ``cfg.batch_size`` with
    the last partial batch kept, loss = mean cross-entropy over the batch, dropout on.

    Args:
      model_name: a key of ``fl.model.MODELS``.
      start: the global weights, flat float32 ``[dim]`` (any device).
      clients: each client's data.
      cfg: local hyperparameters.
      seeds: one seed per client (64-bit unsigned range).
      device: where to train.
      path: ``"loop"``, ``"batched"`` or ``"auto"`` (loop on CPU, batched on CUDA).

    Returns:
      ``float32 [len(clients), dim]`` on CPU: row ``k`` is client ``k``'s ``local - start``
      (zeros for a client without examples).

    Raises:
      ValueError: unknown model or path, wrong ``start`` length, or ``seeds`` and ``clients`` of
        different lengths.
    """
    if path not in PATHS:
        raise ValueError(f"unknown training path {path!r}; choose one of {list(PATHS)}")
    dim = num_params(model_name)
    if start.dim() != 1 or start.numel() != dim:
        raise ValueError(f"start has shape {tuple(start.shape)}, model {model_name!r} needs [{dim}]")
    if len(seeds) != len(clients):
        raise ValueError(f"{len(clients)} clients but {len(seeds)} seeds")
    for k, c in enumerate(clients):
        if not isinstance(c, ClientData):
            raise TypeError(f"client {k} is a {type(c).__name__}, expected ClientData")
    device = torch.device(device)
    if path == "auto":
        path = _auto_path(device)
    run = train_loop if path == "loop" else train_batched
    return run(model_name, start.detach(), clients, cfg, [int(s) for s in seeds], device)
