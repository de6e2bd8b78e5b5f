"""Adversaries of Sun et al. (2019) "Can You Really Backdoor Federated Learning?", and cheats
against the secure pipeline.

Public API:

* :class:`AttackConfig` - the ``[attack]`` section of a run's configuration;
* :func:`build_adversary` - the :class:`fl.hooks.Adversary` a config asks for (``None`` for a
  clean run).

Internals, one module each: ``backdoor`` (the backdoor task D_mal and its metrics),
``schedules`` (who attacks when), ``boosting`` (the boost factor and the unconstrained
model-replacement update), ``pgd`` (the norm-bounded projected attack), ``beyond`` (attacks the
paper did not try), ``adversary`` (the hook that ties them together) and ``pipeline_cheats``
(clients that cheat the secure aggregation pipeline itself).
"""
from __future__ import annotations

from fl.hooks import Adversary

from .adversary import BackdoorAdversary
from .config import ATTACK_KINDS, PIPELINE_CHEATS, SCHEDULES, AttackConfig
from .errors import AttackError, BackdoorTaskError

__all__ = [
    "AttackConfig",
    "ATTACK_KINDS",
    "SCHEDULES",
    "PIPELINE_CHEATS",
    "AttackError",
    "BackdoorTaskError",
    "build_adversary",
]


def build_adversary(
    cfg: AttackConfig,
    dataset: object,
    run_seed: int,
    *,
    norm_bound: float | None = None,
    weighting: str = "examples",
    clients_per_round: int | None = None,
    norm_kind: str = "l2",
    mean_client_weight: float | None = None,
) -> Adversary | None:
    """The adversary ``cfg`` describes, or ``None`` when ``cfg.kind == "none"``.

    Args:
      cfg: the validated ``[attack]`` section.
      dataset: the run's ``fl.data.FederatedDataset``; the backdoor set is built from it.
      run_seed: the run's seed (the target writers come from ``cfg.target_seed``, the
        compromised population of the random-sampling schedule from both).
      norm_bound: ``aggregation.norm_bound`` (L2 bound M on each client's update), needed when
        ``cfg.pgd_bound == "auto"``.
      weighting: ``aggregation.weighting`` (``"examples"``, ``"uniform"`` or ``"fixed"``), for
        the automatic boost.
      clients_per_round: C*K, the clients sampled per round; needed to derive the attack
        period from ``cfg.eps`` (``None``: taken from the training view at the first round).
      norm_kind: ``aggregation.norm_kind``, the norm of ``norm_bound`` (``"l2"`` or ``"linf"``):
        the norm-bounded attacker projects onto that norm's ball.
      mean_client_weight: the average client weight the automatic boost assumes under
        ``"examples"`` (``None``: the participants' mean training-set size; see
        :class:`attacks.adversary.BackdoorAdversary`).

    Returns:
      An object implementing :class:`fl.hooks.Adversary`, or ``None``.

    Raises:
      ValueError: invalid configuration, naming the key.
      AttackError: the dataset cannot support the backdoor task (no writer has the source digit).
    """
    cfg.validate()
    if not cfg.enabled:
        return None
    return BackdoorAdversary(
        cfg, dataset, run_seed, norm_bound=norm_bound, weighting=weighting, clients_per_round=clients_per_round,
        norm_kind=norm_kind, mean_client_weight=mean_client_weight,
    )
