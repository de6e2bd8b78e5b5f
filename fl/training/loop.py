"""The per-client path: each client trains on its own, one after the other.

Plain SGD on leaf parameter tensors, with the overheads of a generic training loop removed: the
visiting order and the dropout masks are drawn once per epoch (see :mod:`fl.training.randomness`),
batches are views, the gradient comes from :func:`torch.autograd.grad` (no ``.grad`` buffers to
zero) and the update is one fused ``foreach`` operation under ``torch.no_grad``. Nothing in the
step loop synchronises with the device.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from fl.model import model_class, unflatten
from fl.training.config import ClientData, LocalConfig
from fl.training.randomness import client_generator, epoch_draws

__all__ = ["train_loop", "train_one_client"]


def train_one_client(
    model_name: str,
    start: torch.Tensor,
    data: ClientData,
    cfg: LocalConfig,
    seed: int,
    device: torch.device,
) -> torch.Tensor:
    """Local SGD of one client from flat weights ``start`` (already on ``device``).

    Returns:
      The flat float32 update ``local - start`` on ``device``; zeros for a client with no data.
    """
    n = len(data)
    if n == 0 or cfg.epochs == 0:
        return torch.zeros_like(start)
    model_cls = model_class(model_name)
    forward = model_cls.functional
    x = data.x.to(device)
    y = data.y.to(device)
    params = [v.clone().requires_grad_(True) for v in unflatten(model_name, start)]
    gen = client_generator(seed, device)
    bs, neg_lr = cfg.batch_size, -float(cfg.lr)
    for _ in range(cfg.epochs):
        order, keep = epoch_draws(gen, n, model_cls, cfg.shuffle, device)
        xe, ye = (x, y) if order is None else (x[order], y[order])
        for i in range(0, n, bs):
            logits = forward(params, xe[i : i + bs], keep[i : i + bs])
            loss = F.cross_entropy(logits, ye[i : i + bs])
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                torch._foreach_add_(params, grads, alpha=neg_lr)
    with torch.no_grad():
        return torch.cat([p.reshape(-1) for p in params]).sub_(start)


def train_loop(
    model_name: str,
    start: torch.Tensor,
    clients: Sequence[ClientData],
    cfg: LocalConfig,
    seeds: Sequence[int],
    device: torch.device,
) -> torch.Tensor:
    """Train ``clients`` one after the other; returns their updates as ``float32 [k, dim]`` on CPU."""
    start = start.to(device=device, dtype=torch.float32)
    out = torch.empty(len(clients), start.numel(), dtype=torch.float32)
    for k, (data, seed) in enumerate(zip(clients, seeds)):
        out[k].copy_(train_one_client(model_name, start, data, cfg, seed, device))
    return out
