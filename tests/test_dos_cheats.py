"""A denial-of-service client in every round: training goes on, the client is named each round,
and the secure pipeline and its fast twin make the same decisions (bit-identical models)."""
import pytest
import torch

import attacks
from fl.config import parse_config
from fl.data import load_dataset
from fl.simulation import Simulation


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic:16:3")


def run(dataset, cheat, rounds=2, **aggregation):
    cfg = parse_config({
        "run": {"seed": 5, "rounds": rounds, "device": "cpu"},
        "model": {"name": "small_cnn"},
        "fedavg": {"clients_per_round": 4, "epochs": 1, "batch_size": 20, "client_lr": 0.1},
        "aggregation": {"weighting": "fixed", "quant_bits": 32, "quant_range": 4.0, **aggregation},
        "attack": {"kind": "boosted", "num_tasks": 3, "frequency": 1, "cheat": cheat},
    })
    adv = attacks.build_adversary(cfg.attack, dataset, cfg.run.seed, weighting=cfg.aggregation.weighting,
                                  clients_per_round=4)
    sim = Simulation(cfg, dataset, adversary=adv)
    return sim, [sim.run_round() for _ in range(rounds)]


@pytest.mark.slow
@pytest.mark.parametrize("cheat,reason", [("nan_update", "non_finite_input"), ("out_of_range", "out_of_range")])
def test_dos_client_excluded_each_round_same_decisions_in_both_pipelines(dataset, cheat, reason):
    fast, fast_results = run(dataset, cheat, quantize=True)
    secure, secure_results = run(dataset, cheat, secure=True)
    for results in (fast_results, secure_results):
        for r in results:
            assert r.failure is None and len(r.malicious) == 1
            assert r.rejected == {r.malicious[0]: reason} and r.row()["rejected"] == 1
            assert len(r.included) == 3 and r.malicious[0] not in r.included
    assert torch.equal(fast.params, secure.params) and torch.isfinite(secure.params).all()


@pytest.mark.slow
def test_wrong_shares_named_round_exact(dataset):
    fast, _ = run(dataset, "wrong_shares", quantize=True)
    secure, results = run(dataset, "wrong_shares", secure=True)
    for r in results:
        assert r.failure is None and r.measurements["secagg_blamed"] == 1
        assert any("blamed (wrong_share)" in e for e in r.events)
    assert torch.equal(fast.params, secure.params)  # the liar's input is in the sum in both


@pytest.mark.slow
def test_bad_bundles_dealer_left_out_before_masking_each_round(dataset):
    _, results = run(dataset, "bad_bundles", secure=True)
    for r in results:
        assert r.failure is None and r.rejected == {r.malicious[0]: "excluded: disputed_shares"}
        assert len(r.included) == 3 and r.malicious[0] not in r.included


@pytest.mark.slow
@pytest.mark.parametrize("cheat,reason", [("off_polynomial", "excluded: disputed_shares"),
                                          ("duplicate_messages", "excluded: duplicate_message")])
def test_dealer_and_duplicate_cheats_left_out_each_round(dataset, cheat, reason):
    _, results = run(dataset, cheat, secure=True)
    for r in results:
        assert r.failure is None and r.rejected == {r.malicious[0]: reason}
        assert len(r.included) == 3 and r.malicious[0] not in r.included


def test_the_old_cheat_key_names_the_new_one():
    """``attack.cheat`` is the key (issue 11's name); a config still written with the earlier
    ``attack.pipeline_cheat`` is refused with the new name in the message."""
    import pytest as _pytest

    from fl.config import ConfigError, parse_config

    with _pytest.raises(ConfigError, match="it is now attack.cheat"):
        parse_config({"attack": {"pipeline_cheat": "nan_update"}})
    assert parse_config({"attack": {"cheat": "nan_update"}}).attack.cheat == "nan_update"
