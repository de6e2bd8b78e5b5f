"""The boost factor, the L2 projection, the at-bound rescaling and the PGD block loop."""
import numpy as np
import pytest
import torch

from attacks.beyond import scale_to_norm
from attacks.boosting import boost_factor
from attacks.pgd import malicious_delta, project_l2
from fl.training import LocalConfig


def test_boost_is_total_weight_over_lr_times_attacker_weight():
    # unweighted / fixed denominator (the authors' code): C*K / (eta * a)
    assert boost_factor(clients_per_round=30, server_lr=1.0) == 30.0
    assert boost_factor(clients_per_round=30, server_lr=0.5) == 60.0
    assert boost_factor(clients_per_round=30, server_lr=1.0, num_attackers=3, weighting="uniform") == 10.0
    # examples weighting: S = C*K * mean weight, divided by eta * a * n_attacker
    beta = boost_factor(clients_per_round=10, server_lr=1.0, num_attackers=2, weighting="examples",
                        attacker_weight=50.0, mean_client_weight=100.0)
    assert beta == pytest.approx(10 * 100 / (2 * 50))
    with pytest.raises(ValueError, match="aggregation.weighting"):
        boost_factor(clients_per_round=10, server_lr=1.0, weighting="median")


def test_boost_replaces_the_model_under_the_fixed_mean():
    # one attacker sending beta * (x - w) among C honest zero updates moves w exactly to x
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=50), rng.normal(size=50)
    C, eta = 10, 0.5
    beta = boost_factor(clients_per_round=C, server_lr=eta)
    updates = [np.zeros(50)] * (C - 1) + [beta * (x - w)]
    np.testing.assert_allclose(w + eta * sum(updates) / C, x)


@pytest.mark.parametrize("make", [np.asarray, torch.as_tensor])
def test_projection_lands_on_the_sphere_and_keeps_inside_points(make):
    rng = np.random.default_rng(1)
    v = make(rng.normal(size=1000).astype(np.float32))
    norm = float(np.linalg.norm(np.asarray(v, dtype=np.float64)))
    out = project_l2(v, norm / 4)
    assert float(np.linalg.norm(np.asarray(out, dtype=np.float64))) == pytest.approx(norm / 4, rel=1e-6)
    cos = float(np.dot(np.asarray(out, np.float64), np.asarray(v, np.float64))) / (norm * norm / 4)
    assert cos == pytest.approx(1.0, abs=1e-6)  # same direction
    assert project_l2(v, norm * 2) is v  # inside the ball: unchanged
    with pytest.raises(ValueError):
        project_l2(v, 0.0)


def test_scale_to_norm_reaches_the_bound_exactly():
    v = torch.tensor([3.0, 4.0])
    np.testing.assert_allclose(scale_to_norm(v, 10.0).numpy(), [6.0, 8.0], rtol=1e-6)
    np.testing.assert_allclose(scale_to_norm(np.array([0.3, 0.4], np.float32), 1.0), [0.6, 0.8], rtol=1e-6)
    with pytest.raises(ValueError):
        scale_to_norm(torch.zeros(3), 1.0)


class PullView:
    """A fake training view: 'training' on a dataset moves the weights halfway to its target."""

    def __init__(self):
        self.local = LocalConfig(epochs=1, batch_size=20, lr=0.1, shuffle=False)
        self.calls = []
        self.locals = []

    def train(self, start, datasets, seeds, local=None):
        self.calls.append((datasets[0]["name"], (local or self.local).batch_size, float(start.norm())))
        self.locals.append(local)
        return torch.stack([(d["target"] - start) * 0.5 for d in datasets])


def test_pgd_projects_after_every_block_and_uses_a_full_batch_malicious_step():
    view = PullView()
    start = torch.zeros(4)
    benign = {"name": "benign", "target": torch.tensor([1.0, 0, 0, 0])}
    mal = {"name": "mal", "target": torch.tensor([0, 100.0, 0, 0])}
    d = malicious_delta(view, start, [benign], mal, 37, seeds=[1, 2, 3], rounds=3, bound=0.5)
    assert float(d.norm()) == pytest.approx(0.5, rel=1e-6)
    names = [c[0] for c in view.calls]
    assert names == ["benign", "mal"] * 3
    assert [c[1] for c in view.calls if c[0] == "mal"] == [37] * 3  # one step on all of D_mal
    # the start of each block after the first is on the sphere of radius 0.5 (projected)
    block_starts = [c[2] for c in view.calls if c[0] == "benign"]
    assert block_starts[0] == 0.0 and all(s == pytest.approx(0.5, rel=1e-6) for s in block_starts[1:])
    # benign passes use the honest clients' settings; malicious steps a copy of them
    assert all(loc is None for name, loc in zip(names, view.locals) if name == "benign")
    mal_local = [loc for name, loc in zip(names, view.locals) if name == "mal"][0]
    assert mal_local == LocalConfig(epochs=1, batch_size=37, lr=0.1, shuffle=False)


def test_malicious_steps_and_attacker_lr_change_only_the_malicious_config():
    view = PullView()
    mal = {"name": "mal", "target": torch.tensor([0, 100.0, 0, 0])}
    malicious_delta(view, torch.zeros(4), [], mal, 9, seeds=[0], rounds=1, bound=None, malicious_steps=3,
                    attacker_lr=0.5)
    assert view.locals == [LocalConfig(epochs=3, batch_size=9, lr=0.5, shuffle=False)]
    assert view.local == LocalConfig(epochs=1, batch_size=20, lr=0.1, shuffle=False)


def test_unconstrained_training_is_not_projected():
    view = PullView()
    mal = {"name": "mal", "target": torch.tensor([0, 100.0, 0, 0])}
    d = malicious_delta(view, torch.zeros(4), [], mal, 5, seeds=[0, 0], rounds=2, bound=None)
    np.testing.assert_allclose(d.numpy(), [0, 75.0, 0, 0])
    with pytest.raises(ValueError):
        malicious_delta(view, torch.zeros(4), [], mal, 5, seeds=[0], rounds=2, bound=None)
