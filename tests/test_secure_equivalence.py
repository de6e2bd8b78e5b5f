"""Whole FedAvg rounds: real secure aggregation and its fast twin give bit-identical models."""
import pytest
import torch

import attacks
from fl.config import parse_config
from fl.data import load_dataset
from fl.simulation import Simulation


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic:16:3")


def run(dataset, rounds=2, **aggregation):
    cfg = parse_config({
        "run": {"seed": 5, "rounds": rounds, "device": "cpu"},
        "model": {"name": "small_cnn"},
        "fedavg": {"clients_per_round": 4, "epochs": 1, "batch_size": 20, "client_lr": 0.1},
        "aggregation": aggregation,
        "attack": {"kind": "boosted", "num_tasks": 3, "frequency": 1},
    })
    adv = attacks.build_adversary(cfg.attack, dataset, cfg.run.seed, weighting=cfg.aggregation.weighting,
                                  clients_per_round=4)
    sim = Simulation(cfg, dataset, adversary=adv)
    results = [sim.run_round() for _ in range(rounds)]
    return sim, results


@pytest.mark.slow
def test_secure_rounds_equal_the_fast_twin_bit_for_bit(dataset, weighting="fixed"):
    common = dict(weighting=weighting, quant_bits=32, quant_range=4.0)
    fast, fast_results = run(dataset, quantize=True, **common)
    secure, secure_results = run(dataset, secure=True, **common)
    assert [r.malicious for r in secure_results] == [r.malicious for r in fast_results]
    assert all(len(r.malicious) == 1 for r in secure_results)  # an attacker in every round
    assert torch.equal(fast.params, secure.params)
    # and the integer pipeline really ran: the plain float pipeline ends elsewhere
    plain, _ = run(dataset, weighting=weighting)
    assert not torch.equal(plain.params, secure.params)
