"""The backdoor set D_mal, the attack config, and the adversary's bookkeeping (no training)."""
import numpy as np
import pytest

import attacks
from attacks.adversary import BackdoorAdversary
from attacks.backdoor import backdoor_metrics, build_backdoor_task
from attacks.errors import BackdoorTaskError
from fl.data import FederatedDataset


def tiny_dataset():
    """8 writers; writers 0..5 have train 7s (writer k has k+1 of them), 6 has none, 7 is test-only."""
    pixels, labels, client, split = [], [], [], []
    for w in range(8):
        if w < 7:
            train_labels = [7] * (w + 1) + [3, 1] if w < 6 else [2, 3, 1]
            for lab in train_labels:
                labels.append(lab), client.append(w), split.append(0)
                pixels.append(np.full((28, 28), 10 * w + lab, np.uint8))
        for lab in (7, 4):
            labels.append(lab), client.append(w), split.append(1)
            pixels.append(np.full((28, 28), 100 + 10 * w + lab, np.uint8))
    return FederatedDataset("tiny", np.stack(pixels), np.array(labels), np.array(client), np.array(split),
                            [f"w{i}" for i in range(8)])


def test_targets_are_chosen_among_participants_without_reading_their_images():
    # the participants are writers 0..6 (7 is test-only); writer 6 has no train 7. Every choice is
    # a subset of the participants, and it is the same when a non-target writer's images change
    ds = tiny_dataset()
    seen = set()
    for seed in range(40):
        try:
            targets = build_backdoor_task(ds, 2, target_seed=seed).target_clients
        except BackdoorTaskError:
            continue
        seen.update(targets)
        assert set(targets) <= set(range(7))
    assert 6 in seen  # a writer without a 7 can be a target (it adds nothing to D_mal)
    assert 7 not in seen


def test_which_other_writers_hold_the_digit_does_not_decide_the_targets():
    # before: the targets were a permutation of the writers holding a train 7, so an unsampled,
    # untargeted writer losing its 7s changed the targets and the attack in every round
    ds = tiny_dataset()
    targets = build_backdoor_task(ds, 2, target_seed=3).target_clients
    other = next(w for w in range(6) if w not in targets)
    labels = ds.labels.copy()
    labels[(ds.client == other) & (ds.split == 0) & (labels == 7)] = 2
    neighbour = FederatedDataset("tiny'", ds.pixels, labels, ds.client, ds.split, list(ds.client_ids))
    assert build_backdoor_task(neighbour, 2, target_seed=3).target_clients == targets


def test_backdoor_set_is_the_targets_train_sevens_labelled_one():
    ds = tiny_dataset()
    task = build_backdoor_task(ds, 3, target_seed=5)
    assert len(task.target_clients) == 3 and set(task.target_clients) <= set(range(7))
    assert list(task.target_clients) == sorted(task.target_clients)
    with_sevens = [w for w in task.target_clients if w < 6]
    assert task.size == sum(w + 1 for w in with_sevens)
    assert (task.train_labels == 1).all() and task.train_labels.dtype == np.int64
    # every image is one of the targets' train 7s (pixel value 10*w + 7)
    assert sorted({int(p[0, 0]) for p in task.train_pixels}) == sorted(10 * w + 7 for w in with_sevens)
    # held-out twin: the targets' test 7s
    assert sorted(int(p[0, 0]) for p in task.test_pixels) == sorted(100 + 10 * w + 7 for w in task.target_clients)
    assert (task.test_labels == 1).all()


def test_targets_stay_in_the_benign_population_with_correct_labels():
    ds = tiny_dataset()
    before = {c: ds.client_train(c)[1].copy() for c in ds.train_clients()}
    task = build_backdoor_task(ds, 2, target_seed=0)
    for c in task.target_clients:
        assert c in ds.train_clients()
        np.testing.assert_array_equal(ds.client_train(c)[1], before[c])
        assert (ds.client_train(c)[1] == 7).sum() == c + 1


def test_choice_is_deterministic_in_the_seed():
    ds = tiny_dataset()
    a = build_backdoor_task(ds, 3, target_seed=1).target_clients
    assert build_backdoor_task(ds, 3, target_seed=1).target_clients == a
    assert len({build_backdoor_task(ds, 3, target_seed=s).target_clients for s in range(10)}) > 1


def test_too_many_tasks_is_an_error():
    with pytest.raises(BackdoorTaskError, match="num_tasks"):
        build_backdoor_task(tiny_dataset(), 8)  # 7 participants
    assert len(build_backdoor_task(tiny_dataset(), 7).target_clients) == 7
    with pytest.raises(ValueError, match="num_tasks"):
        build_backdoor_task(tiny_dataset(), 0)


def test_targets_without_the_digit_are_refused_naming_the_seed():
    ds = tiny_dataset()
    seed = next(s for s in range(100) if _first_target(ds, s) == 6)
    with pytest.raises(BackdoorTaskError, match="target_seed"):
        build_backdoor_task(ds, 1, target_seed=seed)


def _first_target(ds, seed):
    try:
        return build_backdoor_task(ds, 1, target_seed=seed).target_clients[0]
    except BackdoorTaskError:
        return 6


def test_backdoor_accuracy_is_the_share_classified_as_the_target_label():
    ds = tiny_dataset()
    task = build_backdoor_task(ds, 2, target_seed=0)

    def evaluate(params, x, y):  # a "model" that says 1 for images whose pixel value is even
        pred = np.where(x[:, 0, 0] % 2 == 0, 1, 7)
        return float((pred == y).mean()), 0.0

    out = backdoor_metrics(evaluate, task, lambda p, l: (p, l), params=None)
    assert out["backdoor_acc"] == pytest.approx(np.mean(task.train_pixels[:, 0, 0] % 2 == 0))
    assert out["backdoor_heldout_acc"] == pytest.approx(np.mean(task.test_pixels[:, 0, 0] % 2 == 0))


def test_config_defaults_and_key_named_errors():
    cfg = attacks.AttackConfig()
    assert cfg.kind == "none" and not cfg.enabled
    assert attacks.build_adversary(cfg, None, 0) is None
    for bad, key in [({"kind": "magic"}, "attack.kind"), ({"boost": -1}, "attack.boost"),
                     ({"boost": "big"}, "attack.boost"), ({"eps": 0}, "attack.eps"),
                     ({"frequency": 0}, "attack.frequency"), ({"num_tasks": 0}, "attack.num_tasks"),
                     ({"source_label": 1}, "attack.target_label"), ({"pgd_bound": 0}, "attack.pgd_bound"),
                     ({"schedule": "daily"}, "attack.schedule"), ({"cheat": "x"}, "attack.cheat"),
                     ({"colour": "red"}, "attack.colour")]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            attacks.AttackConfig.from_mapping(bad)
    assert attacks.AttackConfig.from_mapping({"kind": "pgd", "boost": 5}).boost == 5


def test_adversary_plans_and_excludes_the_targets():
    ds = tiny_dataset()
    cfg = attacks.AttackConfig(kind="pgd", num_tasks=2, eps=0.2)
    with pytest.raises(ValueError, match="attack.pgd_bound"):
        attacks.build_adversary(cfg, ds, 0)  # "auto" needs a norm bound
    adv = attacks.build_adversary(cfg, ds, 0, norm_bound=3.0, clients_per_round=5)
    assert isinstance(adv, BackdoorAdversary)
    assert adv.main_eval_exclude() == set(adv.task.target_clients)
    assert adv.schedule.frequency == 1
    assert adv.plan_round(0, [3, 4, 5], None) == [5]
    assert adv._train_bound(5.0) == pytest.approx(3.0 / 5.0)  # M / beta
    rs = attacks.build_adversary(attacks.AttackConfig(kind="boosted", num_tasks=2, eps=0.5,
                                                      schedule="random_sampling"), ds, 0)
    assert rs.schedule.num_compromised == round(0.5 * len(ds.train_clients()))


class FakeView:
    """Training view stand-in: every training call moves the weights by a fixed large step."""

    def __init__(self, dim=6, clients_per_round=4):
        from fl.training import LocalConfig

        self.local = LocalConfig(epochs=1, batch_size=20, lr=0.1, shuffle=False)
        self.device = "cpu"
        self.clients_per_round = clients_per_round
        self.server_lr = 1.0
        self.seed = 0
        self.dim = dim

    def client_data(self, c):
        return {"client": c}

    def train(self, start, datasets, seeds, local=None):
        import torch

        return torch.stack([torch.arange(1.0, self.dim + 1) for _ in datasets])


@pytest.mark.parametrize("weighting", ["fixed", "examples"])
def test_coordinated_attackers_split_the_update_and_each_stays_within_the_bound(weighting):
    import torch

    ds = tiny_dataset()
    cfg = attacks.AttackConfig(kind="pgd", num_tasks=2, frequency=1, pgd_rounds=2)
    adv = attacks.build_adversary(cfg, ds, 0, norm_bound=2.0, weighting=weighting, clients_per_round=4)
    view = FakeView()
    attackers = [0, 5]  # 3 and 8 train images: different weights
    msgs = adv.malicious_messages(view, 0, attackers, torch.zeros(view.dim))
    assert [m.client_id for m in msgs] == attackers
    assert [m.weight for m in msgs] == [float(ds.num_train(c)) for c in attackers]
    assert all(m.extras["attacker"] and m.adversary is None for m in msgs)
    norms = [float(np.linalg.norm(m.vector.astype(np.float64))) for m in msgs]
    assert max(norms) == pytest.approx(2.0, rel=1e-5)  # the largest boost reaches M exactly
    assert all(n <= 2.0 * (1 + 1e-6) for n in norms)
    # the weighted contributions add up to one replacement step: sum_a w_a u_a is parallel to
    # the trained direction with the same boost in total
    if weighting == "fixed":
        np.testing.assert_allclose(msgs[0].vector, msgs[1].vector)
        assert adv.last_attack["boost"] == 4 / 2
    else:
        np.testing.assert_allclose(msgs[0].vector * msgs[0].weight, msgs[1].vector * msgs[1].weight, rtol=1e-5)


def test_at_bound_attackers_each_send_exactly_the_bound_in_their_own_vector():
    import torch

    ds = tiny_dataset()
    cfg = attacks.AttackConfig(kind="at_bound", num_tasks=2, frequency=1, pgd_rounds=2)
    adv = attacks.build_adversary(cfg, ds, 0, norm_bound=2.0, clients_per_round=4)
    msgs = adv.malicious_messages(FakeView(), 0, [0, 5], torch.zeros(6))
    for m in msgs:
        assert float(np.linalg.norm(m.vector.astype(np.float64))) == pytest.approx(2.0, rel=1e-6)
    np.testing.assert_array_equal(msgs[0].vector, msgs[1].vector)
    assert not np.shares_memory(msgs[0].vector, msgs[1].vector)
    assert adv.last_attack["boost"] == 1.0 and adv.last_attack["train_bound"] == 2.0


def test_under_noise_the_boost_reads_no_clients_count():
    # before: the examples-weighting boost used the mean train count over every participant, so
    # one unsampled writer's data moved the attacker's update (and the release) in every round
    from fl.config import parse_config
    from fl.experiment import build_run_adversary

    def adversary(ds, noise):
        aggregation = {"weighting": "examples", "max_weight": 100.0, "server_clip": 1.0}
        if noise:
            aggregation.update(noise="central", noise_std=200.0)
        cfg = parse_config({
            "run": {"name": "a", "seed": 0, "rounds": 1, "device": "cpu"}, "data": {"path": "synthetic"},
            "model": {"name": "small_cnn"}, "fedavg": {"clients_per_round": 2}, "aggregation": aggregation,
            "attack": {"kind": "pgd", "eps": 0.25, "num_tasks": 1},
        })
        return build_run_adversary(cfg, ds)

    ds = tiny_dataset()
    keep = np.ones(len(ds.labels), bool)
    keep[np.flatnonzero((ds.client == 2) & (ds.split == 0))[1:]] = False  # writer 2 keeps one train image
    neighbour = FederatedDataset("tiny'", ds.pixels[keep], ds.labels[keep], ds.client[keep], ds.split[keep],
                                 list(ds.client_ids))
    assert adversary(ds, True).mean_client_weight == adversary(neighbour, True).mean_client_weight == 100.0
    # without noise there is no privacy claim and the boost keeps the authors' estimate
    assert adversary(ds, False).mean_client_weight != adversary(neighbour, False).mean_client_weight
