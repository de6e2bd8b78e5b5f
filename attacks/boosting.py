"""The boost factor beta of model replacement and the unconstrained boosted update.

With server learning rate eta and FedAvg weights n_k, the server step is
``w_{t+1} = w_t + eta * sum_k n_k dw_k / S`` with ``S = sum_k n_k``. An attacker that wants the
next model to be its own ``w*`` sends ``beta * (w* - w_t)`` with

    beta = S / (eta * n_attacker)

so that its term alone moves ``w_t`` to ``w*`` (the honest terms are small once the model has
converged). With ``a`` coordinated attackers that split the update evenly, each sends
``beta_a * (w* - w_t)`` with ``beta_a = S / (eta * a * n_attacker)``. Under unweighted
aggregation (the authors' code: every client weight 1, fixed denominator C*K) this is
``beta_a = C*K / (eta * a)``.
"""
from __future__ import annotations

from fl.aggregation.mean import WEIGHTINGS

__all__ = ["boost_factor", "WEIGHTINGS_FOR_BOOST"]

#: aggregation weightings the automatic boost understands: every one of fl.aggregation.WEIGHTINGS
WEIGHTINGS_FOR_BOOST = tuple(WEIGHTINGS)


def boost_factor(
    *,
    clients_per_round: int,
    server_lr: float,
    num_attackers: int = 1,
    weighting: str = "fixed",
    attacker_weight: float = 1.0,
    mean_client_weight: float = 1.0,
) -> float:
    """The per-attacker boost beta_a = S / (eta * a * n_attacker).

    Args:
      clients_per_round: C*K, the clients sampled per round.
      server_lr: eta.
      num_attackers: a, attackers in the round splitting the update evenly.
      weighting: ``"examples"`` (S estimated as C*K times the mean client weight, divided by the
        attacker's own weight), or ``"uniform"`` / ``"fixed"`` (every weight counts as 1).
      attacker_weight: n_attacker, the weight the attacker claims (examples weighting only).
      mean_client_weight: the attacker's estimate of an average client's weight.

    Returns:
      beta_a.

    Raises:
      ValueError: a non-positive argument or an unknown weighting.
    """
    if clients_per_round < 1 or num_attackers < 1:
        raise ValueError("clients_per_round and num_attackers must be positive")
    if not server_lr > 0:
        raise ValueError(f"server_lr must be positive, got {server_lr!r}")
    if weighting not in WEIGHTINGS_FOR_BOOST:
        raise ValueError(f"aggregation.weighting: expected one of {list(WEIGHTINGS_FOR_BOOST)}, got {weighting!r}")
    if weighting == "examples":
        if not (attacker_weight > 0 and mean_client_weight > 0):
            raise ValueError("attacker_weight and mean_client_weight must be positive")
        total = clients_per_round * mean_client_weight
        return float(total / (server_lr * num_attackers * attacker_weight))
    return float(clients_per_round / (server_lr * num_attackers))
