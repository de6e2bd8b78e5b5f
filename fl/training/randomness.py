"""The random draws of local training, shared by the per-client and the batched paths.

Each client owns one ``torch.Generator`` on the training device, seeded with the client's seed.
At the start of every epoch it draws, in this order:

1. the visiting order, ``torch.randperm(n)`` (only when ``LocalConfig.shuffle`` is set);
2. one uniform number per (position in the epoch, dropout unit): ``torch.rand(n, units)``.

Position ``i`` of the epoch (the ``i``-th example visited) keeps dropout unit ``j`` of layer
``l`` iff ``u[i, j] >= rate_l``; kept activations are multiplied by ``1 / (1 - rate_l)``
(inverted dropout, as Keras and PyTorch do). Because the draws depend only on the client's seed,
its data size and the model, a client's update does not depend on the training path nor on the
other clients of the round. The same device and seed give the same draws, bit for bit.
"""
from __future__ import annotations

import functools

import torch

__all__ = ["client_generator", "epoch_draws", "dropout_units"]


def client_generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` private to one client, seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(int(seed))


def dropout_units(model_cls: type) -> int:
    """Total number of dropout units (columns of the ``keep`` mask) of a model class."""
    return sum(units for units, _ in model_cls.dropout_layers)


@functools.lru_cache(maxsize=32)
def _rate_and_scale(model_cls: type, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column dropout rate and keep-multiplier of ``model_cls``'s mask, on ``device``."""
    rates, scales = [], []
    for units, rate in model_cls.dropout_layers:
        rates.append(torch.full((units,), rate, dtype=torch.float32))
        scales.append(torch.full((units,), 1.0 / (1.0 - rate), dtype=torch.float32))
    return torch.cat(rates).to(device), torch.cat(scales).to(device)


def epoch_draws(
    gen: torch.Generator, n: int, model_cls: type, shuffle: bool, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """One epoch's visiting order and dropout multipliers for a client with ``n`` examples.

    Args:
      gen: the client's generator (advanced by this call).
      n: the client's number of examples (positive).
      model_cls: the model class (its ``dropout_layers`` give the mask layout).
      shuffle: draw a permutation first; ``None`` is returned for file order.
      device: the training device (``gen``'s device).

    Returns:
      ``(order, keep)``: ``order`` is ``int64 [n]`` or ``None``; ``keep`` is ``float32 [n, units]``
      holding 0 or ``1 / (1 - rate)``, row ``i`` for the ``i``-th example visited.
    """
    order = torch.randperm(n, generator=gen, device=device) if shuffle else None
    keep = torch.rand(n, dropout_units(model_cls), generator=gen, device=device)
    rate, scale = _rate_and_scale(model_cls, torch.device(device))
    return order, keep.ge_(rate).mul_(scale)
