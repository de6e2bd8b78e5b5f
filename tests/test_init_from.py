"""run.init_from: start a run from another run's parameters (the figures' shared pre-trained start)."""
import pytest
import torch

from fl.config import ConfigError, load_config
from fl.experiment import _prepare, load_initial_params, run_experiment
from fl.cli import find_config


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pre"
    cfg = load_config(find_config("synthetic_small"), ["run.rounds=1"])
    return out, run_experiment(cfg, out=out, progress=False)


def test_a_run_starts_from_the_named_runs_parameters(pretrained):
    out, summary = pretrained
    cfg = load_config(find_config("synthetic_small"), [f"run.init_from={out}"])
    assert torch.equal(_prepare(cfg).params, summary.params)
    fresh = _prepare(load_config(find_config("synthetic_small")))
    assert not torch.equal(fresh.params, summary.params)
    checkpoint = sorted((out / "checkpoints").glob("*.pt"))[-1]
    assert torch.equal(load_initial_params(str(checkpoint), None, summary.params.numel()), summary.params)


def test_bad_init_sources_are_config_errors(pretrained, tmp_path):
    out, summary = pretrained
    with pytest.raises(ConfigError, match="^run.init_from"):
        load_initial_params(str(tmp_path), None, summary.params.numel())  # no checkpoints
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="^run.init_from"):
        load_initial_params(str(tmp_path / "junk.pt"), None, summary.params.numel())
    with pytest.raises(ConfigError, match="another model"):
        load_initial_params(str(out), None, summary.params.numel() + 1)
