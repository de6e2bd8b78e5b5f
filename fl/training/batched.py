"""The batched path: all clients of a round train together, one SGD step for all at a time.

Every parameter tensor gets a leading client axis (``[k, *shape]``); the model's functional
forward is vectorised over that axis with :func:`torch.func.vmap` (convolutions become grouped
convolutions, dense layers batched matrix products), so one kernel serves all clients.

Ragged clients are handled exactly. Step ``s`` of an epoch processes positions
``[s*B, (s+1)*B)`` of every client's visiting order; the epoch has ``ceil(n_max / B)`` steps.
For client ``k`` with ``n_k`` examples a position ``i < n_k`` in a batch of true size ``b`` gets
the weight ``1 / b``, every padding position the weight 0, and the client's loss is the weighted
sum of per-example cross-entropies: the mean over its true batch, as in the per-client path. A
client whose examples are used up gets loss 0, hence a zero gradient and no update (a masked
step). Randomness comes from each client's own generator, drawn exactly as in the per-client
path (:mod:`fl.training.randomness`), so both paths compute the same updates up to float rounding.
Clients with no examples are left out and get a zero update.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch.func import vmap

from fl.model import model_class, unflatten
from fl.training.config import ClientData, LocalConfig
from fl.training.randomness import client_generator, dropout_units, epoch_draws

__all__ = ["train_batched", "row_weights"]


def row_weights(sizes: Sequence[int], batch_size: int) -> torch.Tensor:
    """Loss weight of each (client, position) of an epoch, ``float32 [k, steps * batch_size]``.

    Position ``i < n_k`` lies in a batch of true size ``b = min(B, n_k - B * (i // B))`` and gets
    ``1 / b``; positions past ``n_k`` get 0.
    """
    steps = max(-(-n // batch_size) for n in sizes)
    w = torch.zeros(len(sizes), steps * batch_size, dtype=torch.float32)
    for k, n in enumerate(sizes):
        for s in range(-(-n // batch_size)):
            lo = s * batch_size
            hi = min(n, lo + batch_size)
            w[k, lo:hi] = 1.0 / (hi - lo)
    return w


def _client_loss(forward):
    def loss(params, x, y, keep, w):
        return (F.cross_entropy(forward(params, x, keep), y, reduction="none") * w).sum()

    return loss


def train_batched(
    model_name: str,
    start: torch.Tensor,
    clients: Sequence[ClientData],
    cfg: LocalConfig,
    seeds: Sequence[int],
    device: torch.device,
) -> torch.Tensor:
    """Train ``clients`` together; returns their updates as ``float32 [k, dim]`` on CPU."""
    start = start.to(device=device, dtype=torch.float32)
    out = torch.zeros(len(clients), start.numel(), dtype=torch.float32)
    active = [k for k, c in enumerate(clients) if len(c) > 0]
    if not active or cfg.epochs == 0:
        return out
    model_cls = model_class(model_name)
    units = dropout_units(model_cls)
    sizes = [len(clients[k]) for k in active]
    xs = [clients[k].x.to(device) for k in active]
    ys = [clients[k].y.to(device) for k in active]
    gens = [client_generator(seeds[k], device) for k in active]
    bs, neg_lr, m = cfg.batch_size, -float(cfg.lr), len(active)
    weights = row_weights(sizes, bs).to(device)
    width = weights.shape[1]
    steps = width // bs

    params = [v.unsqueeze(0).repeat(m, *([1] * v.dim())).requires_grad_(True) for v in unflatten(model_name, start)]
    step_loss = vmap(_client_loss(model_cls.functional))

    xe = torch.zeros(m, width, 1, 28, 28, dtype=torch.float32, device=device)
    ye = torch.zeros(m, width, dtype=torch.int64, device=device)
    keep = torch.zeros(m, width, units, dtype=torch.float32, device=device)
    for _ in range(cfg.epochs):
        for j, n in enumerate(sizes):
            order, kp = epoch_draws(gens[j], n, model_cls, cfg.shuffle, device)
            if order is None:
                xe[j, :n].copy_(xs[j])
                ye[j, :n].copy_(ys[j])
            else:
                torch.index_select(xs[j], 0, order, out=xe[j, :n])
                torch.index_select(ys[j], 0, order, out=ye[j, :n])
            keep[j, :n].copy_(kp)
        for s in range(steps):
            sl = slice(s * bs, (s + 1) * bs)
            loss = step_loss(params, xe[:, sl], ye[:, sl], keep[:, sl], weights[:, sl]).sum()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                torch._foreach_add_(params, grads, alpha=neg_lr)
    with torch.no_grad():
        local = torch.cat([p.reshape(m, -1) for p in params], dim=1)
        out[active] = local.sub_(start).cpu()
    return out
