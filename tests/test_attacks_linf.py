"""The norm-bounded attacker follows ``aggregation.norm_kind``: under an L-infinity bound it
projects onto the L-infinity ball (a box), under L2 onto the L2 ball (issue 11, item 4)."""
import numpy as np
import pytest
import torch

import attacks
from attacks.beyond import scale_to_norm
from attacks.pgd import malicious_delta, project, project_l2, project_linf

from test_attacks_backdoor import FakeView, tiny_dataset


@pytest.mark.parametrize("make", [np.asarray, torch.as_tensor])
def test_linf_projection_clamps_each_coordinate_and_keeps_inside_points(make):
    v = make(np.array([3.0, -0.5, -4.0, 1.0], dtype=np.float32))
    out = project_linf(v, 2.0)
    np.testing.assert_array_equal(np.asarray(out), [2.0, -0.5, -2.0, 1.0])
    assert type(out) is type(v) and np.asarray(out).dtype == np.float32
    assert project_linf(v, 4.0) is v
    with pytest.raises(ValueError):
        project_linf(v, 0.0)
    # the box projection is the closest point of the box: it differs from the L2 projection
    assert not np.allclose(np.asarray(project(v, 2.0, "linf")), np.asarray(project(v, 2.0, "l2")))
    np.testing.assert_array_equal(np.asarray(project(v, 2.0, "l2")), np.asarray(project_l2(v, 2.0)))
    with pytest.raises(ValueError, match="norm"):
        project(v, 2.0, "l1")


def test_scale_to_norm_in_linf():
    np.testing.assert_allclose(scale_to_norm(torch.tensor([1.0, -4.0]), 2.0, "linf").numpy(), [0.5, -2.0])
    with pytest.raises(ValueError):
        scale_to_norm(torch.tensor([1.0]), 2.0, "l1")


class PullView:
    """Training on a dataset moves the weights halfway to its target."""

    def __init__(self):
        from fl.training import LocalConfig

        self.local = LocalConfig(epochs=1, batch_size=20, lr=0.1, shuffle=False)

    def train(self, start, datasets, seeds, local=None):
        return torch.stack([(d["target"] - start) * 0.5 for d in datasets])


def test_pgd_projects_onto_the_box_under_linf():
    mal = {"name": "mal", "target": torch.tensor([0, 100.0, -100.0, 1.0])}
    d = malicious_delta(PullView(), torch.zeros(4), [], mal, 5, seeds=[0, 0], rounds=2, bound=0.5, norm="linf")
    # after the first block: (0, 50, -50, 0.5) clamped to the box; the second block pulls again
    assert float(d.abs().max()) == pytest.approx(0.5)
    np.testing.assert_allclose(d.numpy(), [0, 0.5, -0.5, 0.5])
    d2 = malicious_delta(PullView(), torch.zeros(4), [], mal, 5, seeds=[0, 0], rounds=2, bound=0.5)
    assert float(d2.norm()) == pytest.approx(0.5, rel=1e-6) and float(d2.abs().max()) < 0.5


@pytest.mark.parametrize("norm_kind", ["l2", "linf"])
def test_pgd_attacker_stays_within_the_bound_of_the_configured_norm(norm_kind):
    ds = tiny_dataset()
    cfg = attacks.AttackConfig(kind="pgd", num_tasks=2, frequency=1, pgd_rounds=2)
    adv = attacks.build_adversary(cfg, ds, 0, norm_bound=2.0, weighting="fixed", clients_per_round=4,
                                  norm_kind=norm_kind)
    msgs = adv.malicious_messages(FakeView(), 0, [0, 5], torch.zeros(6))
    for m in msgs:
        v = m.vector.astype(np.float64)
        size = float(np.abs(v).max()) if norm_kind == "linf" else float(np.linalg.norm(v))
        assert size == pytest.approx(2.0, rel=1e-5)  # the boost reaches the bound exactly
    if norm_kind == "linf":  # an L2 projection would have stayed far inside the box
        assert float(np.linalg.norm(msgs[0].vector.astype(np.float64))) > 2.0


@pytest.mark.parametrize("norm_kind", ["l2", "linf"])
def test_at_bound_attacker_sends_exactly_the_bound_in_the_configured_norm(norm_kind):
    ds = tiny_dataset()
    cfg = attacks.AttackConfig(kind="at_bound", num_tasks=2, frequency=1, pgd_rounds=2)
    adv = attacks.build_adversary(cfg, ds, 0, norm_bound=2.0, clients_per_round=4, norm_kind=norm_kind)
    (m,) = adv.malicious_messages(FakeView(), 0, [0], torch.zeros(6))
    v = m.vector.astype(np.float64)
    size = float(np.abs(v).max()) if norm_kind == "linf" else float(np.linalg.norm(v))
    assert size == pytest.approx(2.0, rel=1e-6)


def test_unknown_norm_kind_refused():
    with pytest.raises(ValueError, match="norm_kind"):
        attacks.build_adversary(attacks.AttackConfig(kind="pgd", num_tasks=2, frequency=1), tiny_dataset(), 0,
                                norm_bound=2.0, clients_per_round=4, norm_kind="l1")
