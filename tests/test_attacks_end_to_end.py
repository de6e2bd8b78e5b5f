"""A tiny attack through the real simulation: synthetic data, small_cnn, a few rounds."""
import numpy as np
import pytest

import attacks
from fl.aggregation import MeanStage, PlainSum
from fl.aggregation.robust import ClientClipStage, ServerThresholdStage
from fl.config import parse_config
from fl.data import load_dataset
from fl.simulation import Simulation

ROUNDS = 3


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic")


def simulate(dataset, attack, pipeline=None, norm_bound=None, rounds=ROUNDS):
    table = {
        "run": {"seed": 0, "rounds": ROUNDS, "device": "cpu"},
        "model": {"name": "small_cnn"},
        "fedavg": {"clients_per_round": 5, "epochs": 1, "batch_size": 20, "client_lr": 0.1},
        "aggregation": {"weighting": "fixed"},
        "attack": attack,
    }
    cfg = parse_config(table)
    adv = attacks.build_adversary(cfg.attack, dataset, 0, norm_bound=norm_bound, weighting="fixed",
                                  clients_per_round=5)
    sim = Simulation(cfg, dataset, adversary=adv, pipeline=pipeline)
    results = [sim.run_round() for _ in range(rounds)]
    return sim, adv, results


@pytest.mark.slow
def test_boosted_attack_plants_the_backdoor_and_a_threshold_stops_it(dataset):
    attack = {"kind": "boosted", "num_tasks": 5, "frequency": 1, "pgd_rounds": 2}
    attacked, adv, results = simulate(dataset, attack)
    assert [len(r.malicious) for r in results] == [1] * ROUNDS
    assert adv.last_attack["boost"] == 5.0  # C*K / (eta * 1)
    metrics = adv.metrics(attacked, attacked.params)
    after = metrics["backdoor_acc"]
    assert after > 0.8
    assert metrics["attack_boost"] == 5.0 and metrics["attack_sent_norm"] == adv.last_attack["sent_norm"]

    guarded = MeanStage(PlainSum(), "fixed")
    # boosted 5 times, the attacker's update is several times longer than any honest one
    stopped, adv2, results = simulate(dataset, attack, pipeline=ServerThresholdStage(guarded, 1.0))
    for r in results:  # the boosted attacker is rejected, the honest clients are not
        ids = {i % dataset.num_clients for i in r.rejected}
        assert ids == set(r.malicious) and r.measurements["norm_attacker_max"] > 1.0
        assert r.measurements["norm_honest_max"] <= 1.0
    # without the attacker's updates (the same run otherwise) the backdoor is not there
    assert adv2.metrics(stopped, stopped.params)["backdoor_acc"] < after - 0.3


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pgd", "at_bound"])
def test_bounded_attackers_respect_the_bound_and_survive_client_clipping(dataset, kind):
    attack = {"kind": kind, "num_tasks": 5, "frequency": 1, "pgd_rounds": 2}
    pipeline = ClientClipStage(MeanStage(PlainSum(), "fixed"), 1.0)
    sim, adv, results = simulate(dataset, attack, pipeline=pipeline, norm_bound=1.0, rounds=1)
    if kind == "pgd":  # trains inside M / beta, then boosts by beta = 5
        assert adv.last_attack["train_bound"] == pytest.approx(1.0 / 5.0)
        assert adv.last_attack["sent_norm"] <= 1.0 + 1e-5
    else:  # trains inside M, sends exactly M without boosting
        assert adv.last_attack["train_bound"] == 1.0 and adv.last_attack["boost"] == 1.0
        assert adv.last_attack["sent_norm"] == pytest.approx(1.0, rel=1e-5)
    assert all(r.measurements["client_clip_clipped"] <= 5 for r in results)
    assert all(r.measurements["norm_attacker_max"] <= 1.0 + 1e-5 for r in results)
    assert np.isfinite(adv.metrics(sim, sim.params)["backdoor_acc"])
