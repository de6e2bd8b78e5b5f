"""The attacker's ``joint`` and ``explicit`` training modes (attacks.pgd) and their wiring."""
import numpy as np
import pytest
import torch

import attacks
from attacks.pgd import explicit_parts, joint_malicious_delta
from fl.training import ClientData, LocalConfig
from test_attacks_backdoor import tiny_dataset


def data(n, label):
    return ClientData(torch.full((n, 1, 28, 28), float(label)), torch.full((n,), label, dtype=torch.int64))


class RecordingView:
    """Training view stand-in: a step moves the weights by (mean label of the data) * lr."""

    def __init__(self, dim=4, epochs=3):
        self.local = LocalConfig(epochs=epochs, batch_size=20, lr=0.1, shuffle=False)
        self.device = "cpu"
        self.clients_per_round = 4
        self.server_lr = 1.0
        self.seed = 0
        self.dim = dim
        self.calls = []

    def client_data(self, c):
        return data(3 + c, 2)

    def train(self, start, datasets, seeds, local=None):
        local = local or self.local
        self.calls.append(([len(d) for d in datasets], [d.y.tolist() for d in datasets], list(seeds), local,
                           float(start.norm())))
        return torch.stack([torch.full((self.dim,), float(d.y.double().mean()) * local.lr) for d in datasets])


def test_joint_trains_on_the_union_shuffled_one_epoch_at_a_time_and_projects_every_epoch():
    view = RecordingView()
    benign, mal = data(3, 2), data(5, 1)
    d = joint_malicious_delta(view, torch.zeros(4), [benign], mal, [11, 12, 13, 14], epochs=4, bound=0.2)
    assert len(view.calls) == 4
    for k, (sizes, labels, seeds, local, start_norm) in enumerate(view.calls):
        assert sizes == [8] and sorted(labels[0]) == [1] * 5 + [2] * 3  # D_trn + D_mal in one set
        assert seeds == [11 + k]  # a fresh shuffle per epoch
        assert local == LocalConfig(epochs=1, batch_size=20, lr=0.1, shuffle=True)
        # the first epoch starts at w_t; every later one on the sphere of radius 0.2 (projected)
        assert start_norm == (0.0 if k == 0 else pytest.approx(0.2, rel=1e-6))
    assert float(d.norm()) == pytest.approx(0.2, rel=1e-6)


def test_joint_without_bound_accumulates_and_rejects_bad_arguments():
    view = RecordingView()
    mal = data(5, 1)
    d = joint_malicious_delta(view, torch.zeros(4), [], mal, [1, 2], epochs=2, bound=None, attacker_lr=0.5)
    np.testing.assert_allclose(d.numpy(), [1.0] * 4)  # 2 epochs * label 1 * lr 0.5
    assert all(c[3].lr == 0.5 for c in view.calls)
    with pytest.raises(ValueError, match="seeds"):
        joint_malicious_delta(view, torch.zeros(4), [], mal, [1], epochs=2, bound=None)
    with pytest.raises(ValueError, match="epochs"):
        joint_malicious_delta(view, torch.zeros(4), [], mal, [1], epochs=0, bound=None)


def test_explicit_parts_are_a_benign_update_and_full_batch_malicious_steps_both_from_w_t():
    view = RecordingView()
    start = torch.ones(4)
    benign, mal = [data(3, 2), data(4, 2)], data(5, 1)
    deltas, dm = explicit_parts(view, start, benign, mal, 5, [7, 8, 9], malicious_steps=2, attacker_lr=0.3)
    assert len(deltas) == 2 and all(torch.allclose(b, torch.full((4,), 0.2)) for b in deltas)
    np.testing.assert_allclose(dm.numpy(), [0.3] * 4)
    (b_sizes, _, b_seeds, b_local, b_start), (m_sizes, _, m_seeds, m_local, m_start) = view.calls
    assert b_sizes == [3, 4] and b_seeds == [7, 8] and b_local == view.local  # the honest procedure
    assert m_sizes == [5] and m_seeds == [9]
    assert m_local == LocalConfig(epochs=2, batch_size=5, lr=0.3, shuffle=False)
    assert b_start == m_start == 2.0  # both parts start at w_t
    with pytest.raises(ValueError, match="seeds"):
        explicit_parts(view, start, benign, mal, 5, [7, 8])


def test_explicit_attacker_sends_its_benign_update_plus_the_boosted_malicious_step():
    ds = tiny_dataset()
    cfg = attacks.AttackConfig(kind="boosted", training="explicit", num_tasks=2, frequency=1)
    adv = attacks.build_adversary(cfg, ds, 0, weighting="fixed", clients_per_round=4)
    view = RecordingView()
    msgs = adv.malicious_messages(view, 0, [0, 5], torch.zeros(4))
    # two attackers split the boost: beta_a = 4 / 2; Delta_m = lr * label 1; Delta_b = lr * label 2
    assert adv.last_attack["boost"] == 2.0
    for m in msgs:
        np.testing.assert_allclose(m.vector, [0.2 + 2.0 * 0.1] * 4, rtol=1e-6)
    assert adv.last_attack["delta_norm"] == pytest.approx(0.2, rel=1e-6)
    # without benign data only the boosted malicious step is sent
    adv2 = attacks.build_adversary(attacks.AttackConfig(kind="boosted", training="explicit", num_tasks=2,
                                                        frequency=1, include_benign=False), ds, 0,
                                   weighting="fixed", clients_per_round=4)
    (m,) = adv2.malicious_messages(RecordingView(), 0, [3], torch.zeros(4))
    np.testing.assert_allclose(m.vector, [4 * 0.1] * 4, rtol=1e-6)


def test_joint_attacker_uses_its_own_epochs_and_the_union_of_attackers_data():
    ds = tiny_dataset()
    cfg = attacks.AttackConfig(kind="boosted", training="joint", attacker_epochs=6, num_tasks=2, frequency=1)
    adv = attacks.build_adversary(cfg, ds, 0, weighting="fixed", clients_per_round=4)
    view = RecordingView(epochs=3)
    (m,) = adv.malicious_messages(view, 0, [2], torch.zeros(4))
    assert len(view.calls) == 6  # attacker_epochs, not the clients' 3
    assert view.calls[0][0] == [5 + adv.task.size]  # client 2's data (RecordingView: 3 + c) + D_mal
    seeds = [c[2][0] for c in view.calls]
    assert len(set(seeds)) == 6
    again = RecordingView(epochs=3)
    adv.malicious_messages(again, 0, [2], torch.zeros(4))
    assert [c[2][0] for c in again.calls] == seeds  # the same round gives the same shuffles
    assert float(np.linalg.norm(m.vector.astype(np.float64))) == pytest.approx(4 * adv.last_attack["delta_norm"], rel=1e-6)


def test_training_mode_config_errors_name_the_key():
    with pytest.raises(ValueError, match="attack.training"):
        attacks.AttackConfig.from_mapping({"kind": "boosted", "training": "mixed"})
    with pytest.raises(ValueError, match="attack.training"):
        attacks.AttackConfig.from_mapping({"kind": "pgd", "training": "explicit"})
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="attack.attacker_epochs"):
            attacks.AttackConfig.from_mapping({"kind": "boosted", "attacker_epochs": bad})
    assert attacks.AttackConfig.from_mapping({"kind": "pgd", "training": "joint", "attacker_epochs": 15}).attacker_epochs == 15
