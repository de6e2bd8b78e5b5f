"""FedAvg simulation: sampling, the server step on hand-computed updates, failed rounds, the
adversary hook, determinism and resume equivalence of whole runs."""
import csv
import dataclasses

import numpy as np
import pytest
import torch

from fl.aggregation import AggregateResult, Aggregator, ClientMessage, MeanStage, PlainSum, RoundFailed, Stage
from fl.config import ConfigError, parse_config
from fl.data import FederatedDataset, load_dataset
from fl.experiment import RunDirectory, read_checkpoint, read_metrics, resume_experiment, run_experiment
from fl.simulation import Simulation, sample_clients


def tiny_table(**sections):
    """A tiny clean run: small CNN, 2 clients of synthetic writers per round, 1 epoch."""
    table = {
        "run": {"name": "tiny", "seed": 3, "rounds": 4, "device": "cpu", "checkpoint_every": 2},
        "data": {"path": "synthetic:6:1"},
        "model": {"name": "small_cnn"},
        "fedavg": {"clients_per_round": 2, "epochs": 1, "batch_size": 50},
        "eval": {"every": 1},
    }
    for name, values in sections.items():
        table.setdefault(name, {}).update(values)
    return table


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic:6:1")


def handmade_dataset(train_sizes=(1, 2, 5), test_per_client=2):
    """Clients with the given numbers of train images (and a few test images each)."""
    rng = np.random.default_rng(0)
    client, split = [], []
    for c, n in enumerate(train_sizes):
        client += [c] * (n + test_per_client)
        split += [0] * n + [1] * test_per_client
    n = len(client)
    return FederatedDataset("handmade", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                            rng.integers(0, 10, n), np.array(client), np.array(split),
                            [f"w{c}" for c in range(len(train_sizes))])


# ---------------------------------------------------------------------------- sampling
def test_sampling_without_replacement_has_no_duplicates_and_is_seeded():
    population = list(range(100, 150))
    for seed in range(20):
        picks = sample_clients(population, 30, np.random.default_rng(seed), replace=False)
        assert len(picks) == 30 == len(set(picks)) and set(picks) <= set(population)
        assert picks == sample_clients(population, 30, np.random.default_rng(seed), replace=False)
    assert sample_clients(population, 50, np.random.default_rng(0), replace=False) != population
    with pytest.raises(ValueError):
        sample_clients(population, 51, np.random.default_rng(0), replace=False)


def test_round_samples_depend_only_on_seed_and_round(synthetic):
    cfg = parse_config(tiny_table(fedavg={"clients_per_round": 4}))
    a, b = Simulation(cfg, synthetic), Simulation(cfg, synthetic)
    rounds = [a.sample(r) for r in range(8)]
    assert rounds == [b.sample(r) for r in range(8)]
    assert all(len(set(s)) == 4 for s in rounds)
    assert len({tuple(s) for s in rounds}) > 1
    other = Simulation(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, seed=4)), synthetic)
    assert [other.sample(r) for r in range(8)] != rounds


def test_with_replacement_gives_unique_message_ids(synthetic):
    cfg = parse_config(tiny_table(fedavg={"clients_per_round": 30, "sampling": "with_replacement"}))
    sim = Simulation(cfg, synthetic)
    sampled = sim.sample(0)
    assert len(set(sampled)) < len(sampled)  # 30 draws from 6 writers repeat
    ids = sim.message_ids(sampled)
    assert len(set(ids)) == len(ids)
    assert [i % synthetic.num_clients for i in ids] == sampled


def test_too_many_clients_per_round_is_a_config_error(synthetic):
    cfg = parse_config(tiny_table(fedavg={"clients_per_round": 7}))
    with pytest.raises(ConfigError, match="^fedavg.clients_per_round: 7 exceeds the 6 clients"):
        Simulation(cfg, synthetic)


def test_evaluation_schedule():
    cfg = parse_config(tiny_table(run={"rounds": 7}, eval={"every": 3}))
    sim = Simulation.__new__(Simulation)
    sim.cfg = cfg
    assert [r for r in range(7) if sim.should_evaluate(r)] == [2, 5, 6]


# ---------------------------------------------------------------------------- the server step
class DropClient(Stage):
    """Probe stage: the server loses one client's message (a dropout) before the sum."""

    def __init__(self, inner, client_id):
        super().__init__(inner)
        self.client_id = client_id

    def aggregate(self, messages, ctx):
        result = self.inner.aggregate([m for m in messages if m.client_id != self.client_id], ctx)
        result.rejected[self.client_id] = "dropped"
        return result


def fake_training(sim, scale):
    """Make ``sim.train`` return ``scale[c] * pattern`` for client c (exact in float32)."""
    pattern = torch.arange(sim.dim, dtype=torch.float32) % 7 - 3
    owner = {id(sim.client_data(c)): c for c in sim.population}
    sim.train = lambda start, datasets, seeds, local=None: torch.stack(
        [scale[owner[id(d)]] * pattern for d in datasets])
    return pattern


@pytest.mark.parametrize(
    "weighting, drop, mean",
    [
        # clients 0, 1, 2 have 1, 2, 5 examples and send 0.5, 1, 2 times the pattern
        ("examples", None, (1 * 0.5 + 2 * 1 + 5 * 2) / 8),
        ("uniform", None, (0.5 + 1 + 2) / 3),
        ("fixed", None, (0.5 + 1 + 2) / 3),
        ("examples", 2, (1 * 0.5 + 2 * 1) / 3),
        ("uniform", 2, (0.5 + 1) / 2),
        ("fixed", 2, (0.5 + 1) / 3),  # the fixed denominator is the 3 clients sampled
    ],
)
def test_fedavg_step_on_hand_computed_updates(weighting, drop, mean):
    cfg = parse_config(tiny_table(fedavg={"clients_per_round": 3, "server_lr": 0.5},
                                  aggregation={"weighting": weighting}))
    pipeline = MeanStage(PlainSum() if drop is None else DropClient(PlainSum(), drop), weighting)
    sim = Simulation(cfg, handmade_dataset(), pipeline=pipeline)
    pattern = fake_training(sim, {0: 0.5, 1: 1.0, 2: 2.0})
    start = sim.params.clone()
    result = sim.run_round()
    assert sorted(result.sampled) == [0, 1, 2] and result.failure is None
    expected_mean = (torch.tensor(mean, dtype=torch.float64) * pattern.double()).float()
    expected = start + 0.5 * expected_mean
    assert torch.allclose(sim.params, expected, rtol=0, atol=1e-6)
    assert sorted(result.included) == sorted({0, 1, 2} - {drop})
    assert result.rejected == ({} if drop is None else {drop: "dropped"})


def test_messages_carry_float32_updates_and_example_counts():
    cfg = parse_config(tiny_table(fedavg={"clients_per_round": 3}))
    seen = []

    class Spy(Aggregator):
        def aggregate(self, messages, ctx):
            seen.extend(messages)
            assert ctx.expected_clients == 3 and ctx.dim == sim.dim and ctx.round_index == 0
            return PlainSum().aggregate(messages, ctx)

    sim = Simulation(cfg, handmade_dataset(), pipeline=Spy())
    sim.run_round()
    assert sorted((m.client_id, m.weight) for m in seen) == [(0, 1.0), (1, 2.0), (2, 5.0)]
    assert all(m.vector.dtype == np.float32 and m.vector.shape == (sim.dim,) for m in seen)
    assert all(m.adversary is None for m in seen)


class FailOnRound(Aggregator):
    """Raises RoundFailed in one round, the plain mean otherwise."""

    def __init__(self, round_index):
        self.round_index = round_index
        self.plain = MeanStage(PlainSum())

    def aggregate(self, messages, ctx):
        if ctx.round_index == self.round_index:
            ctx.record("probe_value", 1.5)
            raise RoundFailed("probe", "the probe refused the round")
        return self.plain.aggregate(messages, ctx)


def test_failed_round_leaves_params_unchanged_and_training_goes_on(synthetic):
    cfg = parse_config(tiny_table())
    sim = Simulation(cfg, synthetic, pipeline=FailOnRound(0))
    start = sim.params.clone()
    failed = sim.run_round()
    assert failed.failure == "probe" and failed.included == [] and sim.next_round == 1
    assert torch.equal(sim.params, start)
    assert failed.row()["round_failed"] == 1 and failed.measurements == {"probe_value": 1.5}
    ok = sim.run_round()
    assert ok.failure is None and not torch.equal(sim.params, start)


def test_failed_round_is_recorded_in_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr("fl.simulation.build_pipeline", lambda cfg, **kw: FailOnRound(1))
    summary = run_experiment(parse_config(tiny_table(run={"rounds": 3})), out=tmp_path / "r", progress=False)
    rows = read_metrics(tmp_path / "r" / "metrics.csv")
    assert [r["round_failed"] for r in rows] == [0, 1, 0]
    assert [r["clients"] for r in rows] == [2, 0, 2]
    assert rows[1]["probe_value"] == 1.5 and "probe_value" not in rows[0]
    assert rows[1]["main_acc"] == rows[0]["main_acc"]  # same model evaluated twice
    assert summary.failed_rounds == [1]
    log = (tmp_path / "r" / "run.log").read_text()
    assert "round 1 failed (probe)" in log and "the probe refused the round" in log


# ---------------------------------------------------------------------------- adversary hook
class FakeAdversary:
    """Marks client 0 malicious whenever sampled; uploads a constant vector under its own id."""

    def __init__(self):
        self.planned = []

    def plan_round(self, round_index, sampled, rng):
        self.planned.append((round_index, list(sampled)))
        return [c for c in sampled if c == 0]

    def malicious_messages(self, view, round_index, clients, global_params):
        assert view.clients_per_round == 3 and global_params.shape == (view.dim,)
        return [ClientMessage(999, np.full(view.dim, 0.25, np.float32), weight=5.0) for _ in clients]

    def metrics(self, view, global_params):
        return {"backdoor_acc": 0.75}

    def main_eval_exclude(self):
        return {1}


def test_adversary_hook_replaces_malicious_training_and_adds_metrics():
    data = handmade_dataset()
    cfg = parse_config(tiny_table(fedavg={"clients_per_round": 3}))
    seen = []

    class Spy(Aggregator):
        def aggregate(self, messages, ctx):
            seen.extend(messages)
            return AggregateResult(np.zeros(ctx.dim, np.float32), [m.client_id for m in messages], 3.0)

    adversary = FakeAdversary()
    sim = Simulation(cfg, data, pipeline=Spy(), adversary=adversary)
    trained = []
    honest_train = sim.train
    sim.train = lambda start, datasets, seeds, local=None: trained.append(len(datasets)) or honest_train(
        start, datasets, seeds, local)
    result = sim.run_round()
    assert result.malicious == [0] and trained == [2]
    forged = [m for m in seen if m.client_id == 0]
    assert len(forged) == 1 and np.all(forged[0].vector == 0.25) and forged[0].weight == 5.0

    evaluated = []
    honest_evaluate = sim.evaluate
    sim.evaluate = lambda params, x, y: evaluated.append(int(y.shape[0])) or honest_evaluate(params, x, y)
    metrics = sim.evaluate_global()
    assert metrics["backdoor_acc"] == 0.75 and set(metrics) == {"main_acc", "main_loss", "backdoor_acc"}
    assert evaluated == [4]  # client 1's two test images are left out of the main task


# ---------------------------------------------------------------------------- whole runs
def columns_without_seconds(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synthetic):
    out = tmp_path_factory.mktemp("ref") / "run"
    return run_experiment(parse_config(tiny_table()), out=out, progress=False, dataset=synthetic)


def test_run_writes_its_directory(reference):
    d = RunDirectory(reference.run_dir)
    assert reference.finished and reference.rounds_done == 4
    for path in (d.config, d.metrics, d.rounds, d.log, d.plot):
        assert path.is_file(), path
    assert sorted(p.name for p in d.checkpoints.iterdir()) == ["config.pin", "round_000002.pt", "round_000004.pt"]
    rows = read_metrics(d.metrics)
    assert [r["round"] for r in rows] == [0, 1, 2, 3]
    header = d.metrics.read_text().splitlines()[0].split(",")
    assert header[:8] == ["round", "main_acc", "main_loss", "seconds", "clients", "rejected", "round_failed",
                          "malicious"]
    assert all(0 <= r["main_acc"] <= 1 and r["clients"] == 2 and r["round_failed"] == 0 for r in rows)
    assert parse_config(__import__("fl.config", fromlist=["tomllib"]).tomllib.loads(d.config.read_text())) == parse_config(tiny_table())


def test_same_seed_same_run_bit_for_bit(reference, tmp_path, synthetic):
    again = run_experiment(parse_config(tiny_table()), out=tmp_path / "again", progress=False, dataset=synthetic)
    assert torch.equal(again.params, reference.params)
    assert columns_without_seconds(again.run_dir / "metrics.csv") == \
        columns_without_seconds(reference.run_dir / "metrics.csv")
    other = run_experiment(parse_config(tiny_table(run={"seed": 4, "rounds": 1})), out=tmp_path / "other",
                           progress=False, dataset=synthetic)
    first = run_experiment(parse_config(tiny_table(run={"rounds": 1})), out=tmp_path / "first",
                           progress=False, dataset=synthetic)
    assert not torch.equal(other.params, first.params)


def test_resume_after_a_kill_matches_the_uninterrupted_run(reference, tmp_path, synthetic):
    out = tmp_path / "killed"
    stopped = run_experiment(parse_config(tiny_table()), out=out, progress=False, stop_after=3, dataset=synthetic)
    assert not stopped.finished and stopped.rounds_done == 3
    assert len(read_metrics(out / "metrics.csv")) == 3  # round 2 is past the last checkpoint (after 2)
    resumed = resume_experiment(out, progress=False, dataset=synthetic)
    assert resumed.finished and resumed.rounds_done == 4
    assert torch.equal(resumed.params, reference.params)
    for name in ("metrics.csv", "rounds.csv"):
        assert columns_without_seconds(out / name) == columns_without_seconds(reference.run_dir / name)
    final = read_checkpoint(out / "checkpoints" / "round_000004.pt")
    assert final["next_round"] == 4 and torch.equal(final["params"], reference.params)


def test_resume_refuses_changes_that_alter_results(reference):
    with pytest.raises(ConfigError, match="^fedavg.epochs: cannot be changed when resuming"):
        resume_experiment(reference.run_dir, ["fedavg.epochs=2"], progress=False)


def test_resume_can_extend_a_finished_run(tmp_path, synthetic):
    short = run_experiment(parse_config(tiny_table(run={"rounds": 2})), out=tmp_path / "s", progress=False,
                           dataset=synthetic)
    longer = resume_experiment(short.run_dir, ["run.rounds=3"], progress=False, dataset=synthetic)
    straight = run_experiment(parse_config(tiny_table(run={"rounds": 3})), out=tmp_path / "t", progress=False,
                              dataset=synthetic)
    assert longer.rounds_done == 3 and torch.equal(longer.params, straight.params)


def test_resume_passes_over_a_damaged_checkpoint_and_refuses_when_none_verifies(reference, tmp_path, synthetic):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(reference.run_dir, copy)
    latest = copy / "checkpoints" / "round_000004.pt"
    latest.write_bytes(latest.read_bytes()[:100])
    resumed = resume_experiment(copy, progress=False, dataset=synthetic)  # from round_000002.pt
    assert torch.equal(resumed.params, reference.params)
    assert (copy / "checkpoints" / "round_000004.pt.bad").is_file()
    for path in (copy / "checkpoints").glob("round_*.pt"):
        path.write_bytes(b"")
    with pytest.raises(ConfigError, match="no checkpoint verifies: round_000004.pt: empty file; round_000002.pt"):
        resume_experiment(copy, progress=False)
    with pytest.raises(ConfigError, match="not a run directory"):
        resume_experiment(tmp_path, progress=False)
