"""Adversary schedules: fixed-frequency phase, and hypergeometric counts under random sampling."""
import numpy as np
import pytest
from scipy import stats

from attacks.schedules import FixedFrequencySchedule, RandomSamplingSchedule, attack_frequency


def test_attack_frequency_matches_the_paper_settings():
    # 30 clients per round: eps = 3.3% -> every round, eps = 0.33% -> every tenth round
    assert attack_frequency(0.033, 30) == 1
    assert attack_frequency(0.0033, 30) == 10
    assert attack_frequency(1.0, 30) == 1  # never below one round
    with pytest.raises(ValueError, match="attack.eps"):
        attack_frequency(0.0, 30)


@pytest.mark.parametrize("f", [1, 2, 3, 10])
def test_fixed_frequency_phase_is_r_mod_f_equal_f_div_2(f):
    s = FixedFrequencySchedule(f)
    attack_rounds = [r for r in range(40) if s.attackers(r, [5, 6, 7])]
    assert attack_rounds == [r for r in range(40) if r % f == f // 2]
    assert len(attack_rounds) == len(range(f // 2, 40, f))


def test_fixed_frequency_attacker_is_the_last_sampled_client():
    s = FixedFrequencySchedule(10)
    assert s.attackers(5, [11, 4, 9]) == [9]
    assert s.attackers(4, [11, 4, 9]) == []
    assert s.attackers(5, []) == []


def test_random_sampling_compromises_round_eps_k_clients_deterministically():
    population = list(range(100, 484))  # 384 clients, as in the real data
    a = RandomSamplingSchedule(population, 0.033, seed=3)
    b = RandomSamplingSchedule(population, 0.033, seed=3)
    c = RandomSamplingSchedule(population, 0.033, seed=4)
    assert a.num_compromised == round(0.033 * 384) == 13
    assert a.compromised == b.compromised != c.compromised
    assert a.compromised <= set(population)
    assert RandomSamplingSchedule(population, 0.0001, seed=0).num_compromised == 1


def test_random_sampling_counts_are_hypergeometric():
    K, n, eps = 200, 30, 0.05
    schedule = RandomSamplingSchedule(range(K), eps, seed=11)
    m = schedule.num_compromised
    rng = np.random.default_rng(2024)
    draws = 4000
    counts = np.array(
        [len(schedule.attackers(r, rng.choice(K, size=n, replace=False).tolist())) for r in range(draws)]
    )
    # chi-square goodness of fit against HG(K, m, n), pooling sparse tails (expected >= 5)
    dist = stats.hypergeom(K, m, n)
    support = np.arange(0, min(m, n) + 1)
    expected = dist.pmf(support) * draws
    observed = np.bincount(counts, minlength=support.size)[: support.size]
    keep = expected >= 5
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] < 5:  # fold a too-small tail bin into the last kept one
        obs[-2] += obs[-1]
        exp[-2] += exp[-1]
        obs, exp = obs[:-1], exp[:-1]
    exp = exp * obs.sum() / exp.sum()
    _, p = stats.chisquare(obs, exp)
    assert p > 1e-3
    assert abs(counts.mean() - n * m / K) < 0.1
    # a clearly wrong law is rejected by the same test
    wrong = stats.binom(n, 2 * m / K).pmf(support) * draws
    wrong = np.append(wrong[keep], wrong[~keep].sum())
    if wrong.size > obs.size:
        wrong = np.append(wrong[:-2], wrong[-2:].sum())
    assert stats.chisquare(obs, wrong * obs.sum() / wrong.sum())[1] < 1e-6


def test_random_sampling_reports_every_sampled_attacker_in_order():
    s = RandomSamplingSchedule(range(10), 0.3, seed=0)
    bad = sorted(s.compromised)
    sampled = [bad[1], 99, bad[0], bad[1]]
    assert s.attackers(0, sampled) == [bad[1], bad[0], bad[1]]
