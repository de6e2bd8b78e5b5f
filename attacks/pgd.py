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

__all__ = ["project_l2", "malicious_delta"]


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
    if isinstance(delta, torch.Tensor):
        norm = float(torch.linalg.vector_norm(delta.double()))
        if norm <= radius:
            return delta
        return (delta.double() * (radius / norm)).to(delta.dtype)
    arr = np.asarray(delta)
    norm = float(np.linalg.norm(arr.astype(np.float64)))
    if norm <= radius:
        return delta
    return (arr.astype(np.float64) * (radius / norm)).astype(arr.dtype)


def _replace_local(local, **changes):
    if dataclasses.is_dataclass(local):
        return dataclasses.replace(local, **changes)
    from fl.training import LocalConfig  # noqa: PLC0415 - lazily, only for non-dataclass configs

    fields = {k: getattr(local, k) for k in ("epochs", "batch_size", "lr", "shuffle")}
    fields.update(changes)
    return LocalConfig(**fields)


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
      view: the simulation's ``fl.hooks.TrainingView``.
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
    mal_cfg = _replace_local(view.local, epochs=malicious_steps, batch_size=int(malicious_size), shuffle=False)
    if attacker_lr is not None:
        mal_cfg = _replace_local(mal_cfg, lr=float(attacker_lr))
    w = start.clone()
    for block in range(rounds):
        seed = int(seeds[block])
        for j, data in enumerate(benign):
            w = w + view.train(w, [data], [(seed + 7919 * (j + 1)) % 2**63])[0].to(w.dtype)
        w = w + view.train(w, [malicious], [seed], mal_cfg)[0].to(w.dtype)
        if bound is not None:
            w = start + project_l2(w - start, bound)
    return (w - start).to(torch.float32)
