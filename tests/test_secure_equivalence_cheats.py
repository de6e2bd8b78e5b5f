"""The secure pipeline and its fast twin exclude the same clients that prove over-bound updates.

Whole FedAvg rounds through the real secure aggregation with real proofs
(``aggregation.secure = true``) and through the fast twin (``secure = false``), the attacker
clipping to ``cheat_factor * M`` and proving it with the real prover's bound check bypassed
(``attack.cheat = "prove_over_bound"``), at 1.001 M, 1.1 M and 1.5 M (one round each):
the same client is excluded in both, every round completes, and the models are bit-identical.
"""
import pytest
import torch

import attacks
from fl.config import parse_config
from fl.data import load_dataset
from fl.simulation import Simulation

FACTORS = (1.001, 1.1, 1.5)


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic:16:3")


def run(dataset, secure):
    cfg = parse_config({
        "run": {"seed": 5, "rounds": len(FACTORS), "device": "cpu"},
        "model": {"name": "small_cnn"},
        "fedavg": {"clients_per_round": 4, "epochs": 1, "batch_size": 20, "client_lr": 0.1},
        "aggregation": {"weighting": "fixed", "norm_bound": 0.5, "norm_kind": "l2", "secure": secure},
        "attack": {"kind": "boosted", "num_tasks": 3, "frequency": 1,
                   "cheat": "prove_over_bound", "cheat_factor": FACTORS[0]},
    })
    adv = attacks.build_adversary(cfg.attack, dataset, cfg.run.seed, weighting=cfg.aggregation.weighting,
                                  clients_per_round=4)
    sim = Simulation(cfg, dataset, adversary=adv)
    results = []
    for f in FACTORS:
        adv.cheat.factor = f
        results.append(sim.run_round())
    assert adv.cheat.played == len(FACTORS)
    return sim, results


@pytest.mark.slow
def test_over_bound_provers_are_excluded_in_both_pipelines(dataset):
    fast, r_fast = run(dataset, secure=False)
    secure, r_secure = run(dataset, secure=True)
    for a, b in zip(r_secure, r_fast):
        assert a.failure is None and b.failure is None
        assert len(a.malicious) == 1 and a.malicious == b.malicious
        assert a.rejected == b.rejected == {c: "norm_proof_failed" for c in a.malicious}
        assert a.included == b.included
    assert torch.equal(fast.params, secure.params)
