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


NOISE = ["aggregation.weighting=fixed", "aggregation.client_clip=1.0", "aggregation.noise=central",
         "aggregation.noise_std=1.0"]


def test_noise_on_an_unaccounted_start_is_refused_unless_stated_public(pretrained, tmp_path):
    out, summary = pretrained
    # the start was trained on the same clients without noise: the epsilon would not cover it
    with pytest.raises(ConfigError, match="^run.init_from: .*run.init_from_public = true"):
        load_config(find_config("synthetic_small"), [f"run.init_from={out}", *NOISE])
    with pytest.raises(ConfigError, match="^run.init_from_public: set without run.init_from"):
        load_config(find_config("synthetic_small"), ["run.init_from_public=true"])
    # built in code (no parse_config): the run refuses it too
    import dataclasses
    cfg = load_config(find_config("synthetic_small"), NOISE)
    with pytest.raises(ConfigError, match="^run.init_from: "):
        _prepare(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, init_from=str(out))))
    # the statement is recorded in config.toml and run.log
    cfg = load_config(find_config("synthetic_small"),
                      [f"run.init_from={out}", "run.init_from_public=true", "run.rounds=1", *NOISE])
    run_experiment(cfg, out=tmp_path / "pub", progress=False)
    assert "init_from_public = true" in (tmp_path / "pub" / "config.toml").read_text()
    assert "run.init_from_public = true" in (tmp_path / "pub" / "run.log").read_text()
