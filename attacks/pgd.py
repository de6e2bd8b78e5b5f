"""The attacker's local optimisation, in two flavours.

``blocks`` (:func:`malicious_delta`) is the authors' ``ClientProjectBoost`` loop: starting from
the global model w_t, repeat ``rounds`` times

1. one pass of ordinary local training on the attacker's own data D_trn (the honest clients'
   epochs, batch size and learning rate; ``benign_epochs`` epochs instead when given, e.g. 1
   for blocks of one benign epoch);
2. ``malicious_steps`` SGD steps on the whole backdoor set D_mal as a single batch;
3. projection of ``w - w_t`` onto the L2 ball of radius ``bound`` (skipped when ``bound`` is
   ``None``: the unconstrained attack).

``joint`` (:func:`joint_malicious_delta`) trains on the union D_trn + D_mal, shuffled into the
honest clients' batches, for the honest clients' number of epochs, and projects onto the ball
after every epoch (the data-poisoning attacker of Bagdasaryan et al., which the paper's text
describes: "train on both benign and backdoor data"). Every backdoor example is then seen in
every epoch, as part of ordinary mini-batches.

``explicit`` (:func:`explicit_parts`) is the authors' ``ClientExplicitBoosting``: the attacker
computes an ordinary benign update Delta_b from w_t and, separately from w_t, the malicious step
Delta_m (``malicious_steps`` full-batch SGD steps on D_mal), and sends Delta_b + beta Delta_m: only
the malicious part is boosted, so each attack round moves the global model by about one malicious
step instead of replacing it.

The result ``w - w_t`` is boosted by the caller. See docs/attacks.md for the equations.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from fl.aggregation.robust import l2_norm
from fl.training import ClientData

__all__ = ["project_l2", "project_linf", "project", "NORMS", "malicious_delta", "joint_malicious_delta", "explicit_parts"]

#: the norms the attacker can project onto (``aggregation.norm_kind``)
NORMS = ("l2", "linf")


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


def project_linf(delta: torch.Tensor | np.ndarray, radius: float):
    """Projection onto the L-infinity ball of ``radius`` centred at 0: each coordinate clamped to
    ``[-radius, radius]`` (the Euclidean projection onto a box).

    ``delta`` is returned unchanged (the same object) when ``max |delta_i| <= radius``.

    Raises:
      ValueError: ``radius`` not positive.
    """
    if not radius > 0:
        raise ValueError(f"projection radius must be positive, got {radius!r}")
    if isinstance(delta, torch.Tensor):
        if not delta.numel() or float(delta.abs().max()) <= radius:
            return delta
        return delta.clamp(-radius, radius)
    arr = np.asarray(delta)
    if not arr.size or float(np.abs(arr).max()) <= radius:
        return delta
    return np.clip(arr, -radius, radius).astype(arr.dtype)


def project(delta: torch.Tensor | np.ndarray, radius: float, norm: str = "l2"):
    """Projection onto the ball of ``radius`` of ``norm`` (``"l2"`` or ``"linf"``)."""
    if norm == "l2":
        return project_l2(delta, radius)
    if norm == "linf":
        return project_linf(delta, radius)
    raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")


def attacker_config(view, attacker_lr: float | None = None, **changes):
    """A copy of the honest clients' ``LocalConfig`` with ``changes`` (and ``attacker_lr``, if given)."""
    if attacker_lr is not None:
        changes["lr"] = float(attacker_lr)
    return dataclasses.replace(view.local, **changes)


def full_batch_steps(view, malicious_size: int, malicious_steps: int, attacker_lr: float | None):
    """The config of ``malicious_steps`` SGD steps on all of D_mal as one batch, in file order."""
    return attacker_config(view, attacker_lr, epochs=malicious_steps, batch_size=int(malicious_size), shuffle=False)


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
    norm: str = "l2",
    benign_epochs: int | None = None,
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
      norm: the norm of the ball (``aggregation.norm_kind``: ``"l2"`` or ``"linf"``).
      benign_epochs: epochs of each block's benign pass (``None``: the clients' epochs, what the
        authors' repeated dataset gives).

    Returns:
      The flat delta ``w - start`` (float32, on ``start``'s device).

    Raises:
      ValueError: fewer seeds than blocks, or ``benign_epochs`` below 1.
    """
    if len(seeds) < rounds:
        raise ValueError(f"need {rounds} seeds, got {len(seeds)}")
    if benign_epochs is not None and benign_epochs < 1:
        raise ValueError(f"benign_epochs must be positive, got {benign_epochs!r}")
    mal_cfg = full_batch_steps(view, malicious_size, malicious_steps, attacker_lr)
    benign_cfg = None if benign_epochs is None else attacker_config(view, epochs=int(benign_epochs))
    w = start.clone()
    for block in range(rounds):
        seed = int(seeds[block])
        for j, data in enumerate(benign):
            w = _trained(view, w, data, (seed + 7919 * (j + 1)) % 2**63, benign_cfg)
        w = _in_ball(start, _trained(view, w, malicious, seed, mal_cfg), bound, norm)
    return (w - start).to(torch.float32)


def joint_malicious_delta(
    view,
    start: torch.Tensor,
    benign: Sequence[object],
    malicious: object,
    seeds: Sequence[int],
    *,
    epochs: int,
    bound: float | None,
    attacker_lr: float | None = None,
    norm: str = "l2",
) -> torch.Tensor:
    """Train on D_trn + D_mal mixed into shuffled mini-batches; return ``w - start``.

    Args:
      view: the simulation's ``fl.hooks.TrainingView`` (batch size and learning rate of its
        ``local``; the examples are reshuffled every epoch from that epoch's seed).
      start: flat global weights w_t.
      benign: the attacker's own ``ClientData`` (empty: D_mal alone).
      malicious: ``ClientData`` of D_mal.
      seeds: one seed per epoch (``len(seeds) >= epochs``).
      epochs: passes over the union.
      bound: radius of the L2 ball around ``start`` that ``w`` is projected onto after every
        epoch, or ``None`` for no projection.
      attacker_lr: learning rate (``None``: the clients' lr).
      norm: the norm of the ball (``"l2"`` or ``"linf"``).

    Returns:
      The flat delta ``w - start`` (float32, on ``start``'s device).

    Raises:
      ValueError: fewer seeds than epochs, or ``epochs`` below 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be positive, got {epochs!r}")
    if len(seeds) < epochs:
        raise ValueError(f"need {epochs} seeds, got {len(seeds)}")
    parts = [*benign, malicious]
    union = ClientData(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))
    cfg = attacker_config(view, attacker_lr, epochs=1, shuffle=True)
    w = start.clone()
    for epoch in range(epochs):
        w = _in_ball(start, _trained(view, w, union, int(seeds[epoch]), cfg), bound, norm)
    return (w - start).to(torch.float32)


def _trained(view, w: torch.Tensor, data, seed: int, local=None) -> torch.Tensor:
    """``w`` after local training on ``data`` (``local``: the config, ``None`` the clients')."""
    return w + view.train(w, [data], [seed], local)[0].to(w.dtype)


def _in_ball(start: torch.Tensor, w: torch.Tensor, bound: float | None, norm: str = "l2") -> torch.Tensor:
    """``w`` projected onto the ``norm`` ball of radius ``bound`` around ``start`` (``None``: unchanged)."""
    return w if bound is None else start + project(w - start, bound, norm)


def explicit_parts(
    view,
    start: torch.Tensor,
    benign: Sequence[object],
    malicious: object,
    malicious_size: int,
    seeds: Sequence[int],
    *,
    malicious_steps: int = 1,
    attacker_lr: float | None = None,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The two parts of the explicit-boosting update, both trained from ``start``.

    Args:
      view: the simulation's ``fl.hooks.TrainingView``.
      start: flat global weights w_t.
      benign: the attackers' own ``ClientData`` (one benign update each).
      malicious: ``ClientData`` of D_mal.
      malicious_size: |D_mal| (the batch size of a malicious step).
      seeds: ``len(benign) + 1`` seeds (the benign updates', then the malicious steps').
      malicious_steps: full-batch SGD steps on D_mal.
      attacker_lr: learning rate of the malicious steps (``None``: the clients' lr).

    Returns:
      ``(benign_deltas, malicious_delta)``: one float32 delta per benign dataset, and Delta_m.

    Raises:
      ValueError: too few seeds.
    """
    if len(seeds) < len(benign) + 1:
        raise ValueError(f"need {len(benign) + 1} seeds, got {len(seeds)}")
    mal_cfg = full_batch_steps(view, malicious_size, malicious_steps, attacker_lr)
    benign_deltas = []
    if benign:
        deltas = view.train(start, list(benign), [int(s) for s in seeds[: len(benign)]])
        benign_deltas = [d.to(torch.float32) for d in deltas]
    mal = view.train(start, [malicious], [int(seeds[len(benign)])], mal_cfg)[0].to(torch.float32)
    return benign_deltas, mal
