"""The bundled figure configs parse, and describe the paper's settings."""
from pathlib import Path

import pytest

import attacks
from fl.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "fl" / "configs").glob("fig*.toml"))


def test_every_figure_has_configs():
    names = {p.stem.split("_")[0] for p in CONFIGS}
    assert names == {"fig1", "fig2", "fig3", "fig4a", "fig4b"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_figure_config_parses_with_the_paper_hyperparameters(path):
    cfg = load_config(path)
    assert cfg.fedavg.clients_per_round == 30 and cfg.fedavg.epochs == 5 and cfg.fedavg.batch_size == 20
    assert cfg.data.path.endswith("fed_emnist_digits.npz")
    a = cfg.attack
    a.validate()
    if path.stem.startswith("fig1"):
        assert a.kind == "boosted" and cfg.aggregation.norm_bound == 0
    elif path.stem == "fig4a_no_attack":
        assert not a.enabled and cfg.aggregation.norm_bound == 3
    else:
        assert a.kind == "pgd" and a.pgd_bound == "auto" and cfg.aggregation.norm_bound > 0
    if a.enabled:
        assert a.training == "joint" and a.attacker_epochs == 15
    if path.stem.startswith("fig3"):
        assert a.num_tasks == int(path.stem.removeprefix("fig3_tasks"))
    if path.stem == "fig4b_bound5_noise0p025":
        assert cfg.aggregation.noise == "central" and cfg.aggregation.noise_std == 0.025


def test_attack_frequencies_of_figure_1():
    from attacks.schedules import attack_frequency

    freq = {p.stem: attack_frequency(load_config(p).attack.eps, 30) for p in CONFIGS if "fixed" in p.stem}
    assert freq["fig1_fixed_eps3p3"] == 1 and freq["fig1_fixed_eps0p33"] == 10
    assert attacks.AttackConfig.from_mapping({"kind": "boosted"}).enabled
