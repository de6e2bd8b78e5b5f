"""attack.block_epochs: the authors' blocks loop with a chosen number of benign epochs per block."""
from pathlib import Path

import pytest
import torch

import attacks
from attacks.pgd import malicious_delta
from fl.config import config_to_toml, load_config
from fl.training import LocalConfig
from test_attacks_boost_pgd import PullView

FIG4A = Path(__file__).resolve().parent.parent / "fl" / "configs" / "fig4a_bound3.toml"


def test_block_epochs_sets_only_the_benign_pass():
    view = PullView()
    view.local = LocalConfig(epochs=5, batch_size=20, lr=0.1, shuffle=False)
    benign = {"name": "benign", "target": torch.tensor([1.0, 0, 0, 0])}
    mal = {"name": "mal", "target": torch.tensor([0, 100.0, 0, 0])}
    malicious_delta(view, torch.zeros(4), [benign], mal, 9, seeds=[1, 2], rounds=2, bound=0.5, benign_epochs=1)
    names = [c[0] for c in view.calls]
    assert names == ["benign", "mal"] * 2
    benign_locals = [loc for name, loc in zip(names, view.locals) if name == "benign"]
    assert benign_locals == [LocalConfig(epochs=1, batch_size=20, lr=0.1, shuffle=False)] * 2
    mal_locals = [loc for name, loc in zip(names, view.locals) if name == "mal"]
    assert mal_locals == [LocalConfig(epochs=1, batch_size=9, lr=0.1, shuffle=False)] * 2
    # without it, the benign pass is the clients' own (5 epochs here), as in the authors' code
    view = PullView()
    malicious_delta(view, torch.zeros(4), [benign], mal, 9, seeds=[1], rounds=1, bound=0.5)
    assert view.locals[0] is None
    with pytest.raises(ValueError, match="benign_epochs"):
        malicious_delta(view, torch.zeros(4), [benign], mal, 9, seeds=[1], rounds=1, bound=0.5, benign_epochs=0)


@pytest.mark.parametrize("table, words", [
    ({"kind": "pgd", "block_epochs": 0}, "positive integer"),
    ({"kind": "pgd", "block_epochs": True}, "positive integer"),
    ({"kind": "pgd", "block_epochs": 1, "training": "joint"}, "goes with training"),
])
def test_bad_block_epochs_is_refused(table, words):
    with pytest.raises(ValueError, match="attack.block_epochs") as info:
        attacks.AttackConfig.from_mapping(table)
    assert words in str(info.value)


def test_block_epochs_reaches_the_adversary_and_leaves_other_configs_unchanged():
    cfg = load_config(FIG4A, ["attack.block_epochs=1"])
    assert cfg.attack.block_epochs == 1 and "block_epochs = 1" in config_to_toml(cfg)
    # unset, it is not written: configs and digests of runs made before it existed do not change
    assert "block_epochs" not in config_to_toml(load_config(FIG4A))
