"""When the adversary acts: the fixed-frequency and random-sampling schedules of Sun et al.

* **Fixed frequency.** One attacker every ``f`` rounds, f = 1 / (eps * C * K) rounded to an
  integer, where C * K is the number of clients sampled per round. As in the authors' code, round
  ``r`` is an attack round when ``r mod f == f // 2`` and the *last* sampled client plays the
  attacker (so with f = 1 every round has one).
* **Random sampling.** ``round(eps * K)`` of the K clients are compromised once, before
  training; every round the attackers are the compromised clients among those sampled. With
  sampling without replacement the count in a round of ``n`` clients is hypergeometric
  ``HG(K, round(eps*K), n)``; its mean is ``n * eps`` as in the fixed-frequency schedule.

Both are deterministic: fixed frequency depends only on the round index, random sampling on a
seed.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

__all__ = ["Schedule", "FixedFrequencySchedule", "RandomSamplingSchedule", "attack_frequency"]


class Schedule(Protocol):
    """Chooses which of a round's sampled clients are malicious."""

    def attackers(self, round_index: int, sampled: Sequence[int]) -> list[int]:
        """The malicious clients among ``sampled``, in their sampled order."""


def attack_frequency(eps: float, clients_per_round: int) -> int:
    """f = 1 / (eps * C * K), rounded to the nearest integer and at least 1.

    Args:
      eps: fraction of malicious clients.
      clients_per_round: C * K.

    Returns:
      The attack period in rounds.

    Raises:
      ValueError: ``eps`` not in (0, 1] or ``clients_per_round`` < 1.
    """
    if not 0 < eps <= 1:
        raise ValueError(f"attack.eps: expected a fraction in (0, 1], got {eps!r}")
    if clients_per_round < 1:
        raise ValueError(f"clients_per_round must be positive, got {clients_per_round!r}")
    return max(1, int(round(1.0 / (eps * clients_per_round))))


class FixedFrequencySchedule:
    """One attacker, the last sampled client, in rounds ``r`` with ``r mod f == f // 2``.

    Args:
      frequency: the period f in rounds.
    """

    def __init__(self, frequency: int):
        if int(frequency) < 1:
            raise ValueError(f"attack.frequency: expected a positive integer, got {frequency!r}")
        self.frequency = int(frequency)

    def is_attack_round(self, round_index: int) -> bool:
        """Whether round ``round_index`` (from 0) carries an attacker."""
        return round_index % self.frequency == self.frequency // 2

    def attackers(self, round_index: int, sampled: Sequence[int]) -> list[int]:
        if not sampled or not self.is_attack_round(round_index):
            return []
        return [int(sampled[-1])]

    def __repr__(self) -> str:
        return f"FixedFrequencySchedule(frequency={self.frequency})"


class RandomSamplingSchedule:
    """``round(eps * K)`` compromised clients chosen once; attackers are those sampled.

    Args:
      population: the K client indices the simulation samples from.
      eps: fraction of them compromised (at least one client is compromised).
      seed: seed of the choice.
    """

    def __init__(self, population: Sequence[int], eps: float, seed: int):
        population = sorted(int(c) for c in population)
        if not population:
            raise ValueError("random sampling needs a non-empty client population")
        if not 0 < eps <= 1:
            raise ValueError(f"attack.eps: expected a fraction in (0, 1], got {eps!r}")
        self.num_compromised = max(1, int(round(eps * len(population))))
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0x5A3])))
        picked = rng.choice(len(population), size=self.num_compromised, replace=False)
        self.compromised = frozenset(population[i] for i in picked)
        self.population_size = len(population)

    def attackers(self, round_index: int, sampled: Sequence[int]) -> list[int]:
        return [int(c) for c in sampled if int(c) in self.compromised]

    def __repr__(self) -> str:
        return f"RandomSamplingSchedule(compromised={self.num_compromised} of {self.population_size})"
