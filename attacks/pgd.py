"""The attacker's local optimisation: blocks of (benign pass, malicious steps, projection).

This is the authors' ``ClientProjectBoost`` loop: starting from the global model w_t, repeat
``rounds`` times

1. one pass of ordinary local training on the attacker's own data D_trn (the honest clients'
   epochs, batch size and learning rate);
2. ``malicious_steps`` SGD steps on the whole backdoor set D_mal as a single batch;
3. projection of ``w - w_t`` onto the L2 ball of radius ``bound`` (skipped when ``bound`` is
   ``None``: the unconstrained attack).

The result ``w - w_t`` is boosted by the caller. See docs/attacks.md for the equations.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from fl.aggregation.robust import l2_norm

__all__ = ["project_l2", "malicious_delta"]


def vector_norm64(delta: torch.Tensor | np.ndarray) -> float:
    """The L2 norm of a flat torch or numpy vector, accumulated in float64."""
    if isinstance(delta, torch.Tensor):
        return float(torch.linalg.vector_norm(delta.double()))
    return l2_norm(delta)


def rescale(delta: torch.Tensor | np.ndarray, factor: float):
    """``factor * delta`` computed in float64, in ``delta``'s type and dtype."""
    if isinstance(delta, torch.Tensor):
        return (delta.double() * factor).to(delta.dtype)
    arr = np.asarray(delta)
    return (arr.astype(np.float64) * factor).astype(arr.dtype)


def project_l2(delta: torch.Tensor | np.ndarray, radius: float):
    """Projection onto the L2 ball of ``radius`` centred at 0.

    ``delta`` is returned unchanged (the same object) when ``||delta||_2 <= radius``, otherwise
    scaled to norm ``radius``. The norm is computed in float64.

    Args:
      delta: a flat vector (torch or numpy).
      radius: the ball's radius, positive.

    Returns:
      The projected vector, same type and dtype.

    Raises:
      ValueError: ``radius`` not positive.
    """
    if not radius > 0:
        raise ValueError(f"projection radius must be positive, got {radius!r}")
    norm = vector_norm64(delta)
    return delta if norm <= radius else rescale(delta, radius / norm)


def malicious_delta(
    view,
    start: torch.Tensor,
    benign: Sequence[object],
    malicious: object,
    malicious_size: int,
    seeds: Sequence[int],
    *,
    rounds: int,
    bound: float | None,
    malicious_steps: int = 1,
    attacker_lr: float | None = None,
) -> torch.Tensor:
    """Train the attacker's model from ``start`` and return ``w - start`` (before boosting).

    Args:
      view: the simulation's ``fl.hooks.TrainingView`` (its ``local`` is a
        ``fl.training.LocalConfig``; the malicious steps use a copy with a full D_mal batch).
      start: flat global weights w_t.
      benign: the attacker's own ``ClientData`` (possibly several, trained one after the other
        within a block; empty to skip the benign passes).
      malicious: ``ClientData`` of D_mal.
      malicious_size: |D_mal| (the batch size of a malicious step).
      seeds: one seed per block (``len(seeds) >= rounds``), for dropout and shuffling.
      rounds: number of blocks.
      bound: projection radius, or ``None`` for no projection.
      malicious_steps: SGD steps on D_mal per block.
      attacker_lr: learning rate of the malicious steps (``None``: the clients' lr).

    Returns:
      The flat delta ``w - start`` (float32, on ``start``'s device).
    """
    if len(seeds) < rounds:
        raise ValueError(f"need {rounds} seeds, got {len(seeds)}")
    changes = {"epochs": malicious_steps, "batch_size": int(malicious_size), "shuffle": False}
    if attacker_lr is not None:
        changes["lr"] = float(attacker_lr)
    mal_cfg = dataclasses.replace(view.local, **changes)
    w = start.clone()
    for block in range(rounds):
        seed = int(seeds[block])
        for j, data in enumerate(benign):
            w = w + view.train(w, [data], [(seed + 7919 * (j + 1)) % 2**63])[0].to(w.dtype)
        w = w + view.train(w, [malicious], [seed], mal_cfg)[0].to(w.dtype)
        if bound is not None:
            w = start + project_l2(w - start, bound)
    return (w - start).to(torch.float32)
