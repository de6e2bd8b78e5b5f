"""Run configuration: defaults, validation messages that name the key, overrides, TOML round trip,
and the plain aggregation pipeline built from ``[aggregation]``."""
from fl.config import tomllib

import numpy as np
import pytest

from fl.aggregation import ClientMessage, MeanStage, PlainSum, RoundContext
from fl.aggregation.build import build_pipeline
from fl.aggregation.config import AggregationConfig
from fl.cli import BUNDLED_CONFIGS
from fl.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    config_to_toml,
    load_config,
    parse_config,
    parse_override,
)


def test_defaults_are_the_papers_text():
    cfg = parse_config({})
    assert (cfg.fedavg.clients_per_round, cfg.fedavg.epochs, cfg.fedavg.batch_size) == (30, 5, 20)
    assert (cfg.fedavg.client_lr, cfg.fedavg.server_lr) == (0.1, 1.0)
    assert cfg.fedavg.sampling == "without_replacement"
    assert cfg.aggregation == AggregationConfig()
    assert cfg.aggregation.plain and cfg.aggregation.weighting == "examples"
    assert cfg.attack is not None and not cfg.attack.enabled
    assert cfg == ExperimentConfig()


@pytest.mark.parametrize(
    "table, message",
    [
        ({"fedavg": {"clients_per_round": -3}}, "fedavg.clients_per_round: expected a positive integer, got -3"),
        ({"fedavg": {"client_per_round": 3}}, "fedavg.client_per_round: unknown key"),
        ({"fedavg": {"server_lr": True}}, "fedavg.server_lr: expected a positive number, got True"),
        ({"fedavg": {"epochs": 2.0}}, "fedavg.epochs: expected a positive integer, got 2.0"),
        ({"fedavg": {"sampling": "poisson"}}, "fedavg.sampling: expected one of"),
        ({"run": {"device": "gpu"}}, "run.device: expected one of ['auto', 'cpu', 'cuda'], got 'gpu'"),
        ({"run": {"name": "a/b"}}, "run.name: expected a name of letters"),
        ({"run": {"seed": -1}}, "run.seed: expected a non-negative integer, got -1"),
        ({"data": {"max_clients": 0}}, "data.max_clients: expected a positive integer or nothing, got 0"),
        ({"model": {"name": "resnet"}}, "model.name: expected one of ['paper_cnn', 'small_cnn'], got 'resnet'"),
        ({"eval": {"every": 0}}, "eval.every: expected a positive integer, got 0"),
        ({"aggregation": {"weighting": "median"}}, "aggregation.weighting: expected one of"),
        ({"aggregation": {"quant_bits": 100}}, "aggregation.quant_bits: expected an integer in [2, 64], got 100"),
        ({"aggregation": {"secagg_dropout": 1.0}}, "aggregation.secagg_dropout: expected a number in [0, 1)"),
        ({"aggregation": {"noise_std": 0.1}}, "aggregation.noise_std: is 0.1 but aggregation.noise is \"none\""),
        ({"aggregation": {"noise": "central"}}, "aggregation.noise_std: expected a positive number"),
        ({"aggregation": {"noise": "distributed", "noise_std": 1.0}}, "aggregation.noise: \"distributed\""),
        ({"aggregation": {"secure": True, "server_clip": 1.0}}, "aggregation.server_clip: a plaintext baseline"),
        ({"aggregation": {"clip": 1.0}}, "aggregation.clip: unknown key"),
        ({"attack": {"kind": "flood"}}, "attack.kind: expected one of"),
        ({"attack": {"boots": 3}}, "attack.boots: unknown key"),
        ({"fedavg": 3}, "fedavg: expected a table of settings, got 3"),
        ({"training": {}}, "training: unknown section"),
    ],
)
def test_errors_name_the_full_key(table, message):
    with pytest.raises(ConfigError) as info:
        parse_config(table)
    assert str(info.value).startswith(message)


def test_integers_are_accepted_for_numbers_and_stored_as_floats():
    cfg = parse_config({"fedavg": {"server_lr": 1, "client_lr": 2}, "aggregation": {"norm_bound": 3, "weighting": "fixed"}})
    assert type(cfg.fedavg.server_lr) is float and cfg.fedavg.server_lr == 1.0
    assert type(cfg.aggregation.norm_bound) is float and cfg.aggregation.norm_bound == 3.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("aggregation.secure=true", ("aggregation", "secure", True)),
        ("fedavg.epochs = 2", ("fedavg", "epochs", 2)),
        ("fedavg.client_lr=0.05", ("fedavg", "client_lr", 0.05)),
        ('run.name="x y"', ("run", "name", "x y")),
        ("data.path=../shared/data/fed_emnist_digits.npz", ("data", "path", "../shared/data/fed_emnist_digits.npz")),
        ("data.path=synthetic:8:1", ("data", "path", "synthetic:8:1")),
    ],
)
def test_override_values_are_toml_literals_or_bare_strings(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["fedavg.epochs", "epochs=2", "a.b.c=1", ".x=1", "fedavg.=1"])
def test_malformed_overrides_are_rejected(text):
    with pytest.raises(ConfigError, match="expected section.key=value"):
        parse_override(text)


def test_overrides_apply_in_order_and_are_validated(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[fedavg]\nepochs = 3\n[run]\nname = "base"\n')
    cfg = load_config(path, ["fedavg.epochs=1", "fedavg.epochs=2", "aggregation.weighting=uniform"])
    assert cfg.fedavg.epochs == 2 and cfg.aggregation.weighting == "uniform" and cfg.run.name == "base"
    with pytest.raises(ConfigError, match=r"^fedavg\.clients_per_round: expected a positive integer, got -3$"):
        load_config(path, ["fedavg.clients_per_round=-3"])
    with pytest.raises(ConfigError, match=r"^fedavg\.lr: unknown key"):
        load_config(path, ["fedavg.lr=0.1"])
    # the override does not touch the table it was given
    table = {"fedavg": {"epochs": 3}}
    apply_overrides(table, ["fedavg.epochs=9"])
    assert table == {"fedavg": {"epochs": 3}}


def test_file_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[fedavg\nepochs = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)


def test_resolved_config_round_trips_through_toml():
    cfg = parse_config({
        "run": {"name": "rt", "seed": 7, "rounds": 3},
        "data": {"path": 'odd "name"\\dir', "max_clients": 5},
        "fedavg": {"client_lr": 1e-05, "shuffle": True, "sampling": "with_replacement"},
        "aggregation": {"weighting": "fixed", "quant_range": 0.1},
        "attack": {"kind": "pgd", "boost": 5.0, "pgd_bound": 0.33},
    })
    text = config_to_toml(cfg)
    again = parse_config(tomllib.loads(text))
    assert again == cfg
    assert again.data.path == 'odd "name"\\dir' and again.fedavg.client_lr == 1e-05


@pytest.mark.parametrize("name", ["demo", "emnist_baseline", "synthetic_small"])
def test_bundled_configs_are_valid(name):
    cfg = load_config(BUNDLED_CONFIGS / f"{name}.toml")
    assert cfg.run.name == name


def test_emnist_baseline_is_the_paper_setup():
    cfg = load_config(BUNDLED_CONFIGS / "emnist_baseline.toml")
    assert cfg.model.name == "paper_cnn" and cfg.run.rounds == 100 and cfg.eval.every == 1
    assert (cfg.fedavg.clients_per_round, cfg.fedavg.epochs, cfg.fedavg.batch_size) == (30, 5, 20)
    assert (cfg.fedavg.client_lr, cfg.fedavg.server_lr) == (0.1, 1.0)
    assert cfg.data.path == "../shared/data/fed_emnist_digits.npz"
    assert not cfg.attack.enabled and cfg.aggregation.plain


# ---------------------------------------------------------------------------- build_pipeline
@pytest.mark.parametrize("weighting", ["examples", "uniform", "fixed"])
def test_plain_pipeline_is_the_weighted_mean(weighting):
    pipeline = build_pipeline(AggregationConfig(weighting=weighting), clients_per_round=3, dim=2)
    mean = pipeline.inner  # the outermost stage only records update norms
    assert isinstance(mean, MeanStage) and isinstance(mean.inner, PlainSum)
    assert mean.weighting == weighting
    messages = [ClientMessage(0, np.array([1.0, 2.0], np.float32), weight=1.0),
                ClientMessage(1, np.array([4.0, -2.0], np.float32), weight=3.0)]
    ctx = RoundContext(round_index=0, seed=0, dim=2, expected_clients=4)
    out = pipeline.aggregate(messages, ctx).vector
    expected = {"examples": [13 / 4, -1.0], "uniform": [2.5, 0.0], "fixed": [1.25, 0.0]}[weighting]
    np.testing.assert_array_equal(out, np.array(expected, np.float32))


def test_noise_seeded_without_noise_is_refused():
    """Third audit, "checked and held": noise_seeded = true with noise = "none" was accepted and
    meant nothing (and noise_seeded = 1 would be recorded for a run that adds no noise)."""
    with pytest.raises(ConfigError, match=r"aggregation.noise_seeded: .*aggregation.noise is \"none\""):
        parse_config({"aggregation": {"noise_seeded": True}})
    cfg = parse_config({"aggregation": {"noise_seeded": True, "noise": "central", "noise_std": 1.0,
                                        "weighting": "fixed", "client_clip": 1.0}})
    assert cfg.aggregation.noise_seeded


@pytest.mark.parametrize("k", [1, 2])
def test_secure_aggregation_below_its_minimum_sample_is_refused(k):
    """Third audit, "checked and held": secure = true with 2 clients per round was accepted, and
    every round then failed with secagg_too_few."""
    from fl.config import SECURE_MIN_CLIENTS

    with pytest.raises(ConfigError, match=rf"fedavg.clients_per_round: {k} with aggregation.secure = true"):
        parse_config({"fedavg": {"clients_per_round": k}, "aggregation": {"secure": True}})
    cfg = parse_config({"fedavg": {"clients_per_round": SECURE_MIN_CLIENTS}, "aggregation": {"secure": True}})
    assert cfg.aggregation.secure
    parse_config({"fedavg": {"clients_per_round": k}})  # without secure aggregation, any sample size


def test_the_secure_minimum_is_the_secure_sums():
    """SECURE_MIN_CLIENTS is where SecureSum stops failing rounds with secagg_too_few."""
    from fl.aggregation import RoundFailed
    from fl.config import SECURE_MIN_CLIENTS
    from fl.aggregation.secure_sum import QuantizeStage, SecureSum

    def round_of(n):
        rng = np.random.default_rng(0)
        msgs = [ClientMessage(i, rng.normal(0, 0.05, 16).astype(np.float32), weight=1.0) for i in range(n)]
        stage = MeanStage(QuantizeStage(SecureSum(bits=32), bits=32, clip_range=1.0, num_clients=n))
        return stage.aggregate(msgs, RoundContext(round_index=0, seed=0, dim=16, expected_clients=n))

    assert len(round_of(SECURE_MIN_CLIENTS).included) == SECURE_MIN_CLIENTS
    with pytest.raises(RoundFailed) as info:
        round_of(SECURE_MIN_CLIENTS - 1)
    assert info.value.reason == "secagg_too_few"
