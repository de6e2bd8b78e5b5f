"""The synthetic generator: determinism, shapes, label balance, splits, writer styles."""
from __future__ import annotations

import numpy as np
import pytest

from fl.data import DataError, synthetic_digits


@pytest.fixture(scope="module")
def small():
    return synthetic_digits(num_writers=8, images_per_writer=40, seed=11, test_fraction=0.25)


def test_same_seed_bit_identical(small):
    again = synthetic_digits(num_writers=8, images_per_writer=40, seed=11, test_fraction=0.25)
    for name in ("pixels", "labels", "client", "split"):
        assert np.array_equal(getattr(small, name), getattr(again, name)), name
    assert small.client_ids == again.client_ids


def test_other_seed_differs(small):
    other = synthetic_digits(num_writers=8, images_per_writer=40, seed=12, test_fraction=0.25)
    assert not np.array_equal(small.pixels, other.pixels)
    assert not np.array_equal(small.labels, other.labels)


def test_shapes_balance_and_split(small):
    assert small.name == "synthetic:8:11"
    assert small.num_clients == 8 and small.client_ids[0] == "syn0000"
    assert small.pixels.shape == (320, 28, 28) and small.pixels.dtype == np.uint8
    for c in range(8):
        train_px, train_y = small.client_train(c)
        test_px, test_y = small.client_test(c)
        assert (len(train_y), len(test_y)) == (30, 10)
        counts = np.bincount(np.concatenate([train_y, test_y]), minlength=10)
        assert counts.tolist() == [4] * 10  # 40 images: exactly balanced
        assert np.bincount(test_y, minlength=10).tolist() == [1] * 10  # and so is the test split
    assert small.train_clients() == list(range(8))


def test_unbalanced_count_and_extremes():
    ds = synthetic_digits(num_writers=2, images_per_writer=13, seed=1, test_fraction=0.0)
    for c in range(2):
        _, y = ds.client_train(c)
        counts = np.bincount(y, minlength=10)
        assert counts.max() - counts.min() <= 1 and counts.sum() == 13
        assert ds.num_test(c) == 0
    ds = synthetic_digits(num_writers=1, images_per_writer=1, seed=0, test_fraction=0.9)
    assert ds.num_train(0) == 1 and ds.num_test(0) == 0  # at least one train image


def test_pixel_convention_white_background(small):
    px = small.pixels
    border = np.concatenate([px[:, 0, :], px[:, -1, :], px[:, :, 0], px[:, :, -1]], axis=1)
    assert (border == 255).mean() > 0.95  # white paper around the digit
    assert px.min(axis=(1, 2)).max() < 100  # every image has dark ink
    ink = (px < 128).mean(axis=(1, 2))
    assert 0.03 < ink.mean() < 0.3


def test_writers_differ_more_than_images_of_one_writer():
    """Writer style is visible: mean images of one digit differ more across writers than
    between two halves of one writer's images."""
    ds = synthetic_digits(num_writers=6, images_per_writer=200, seed=3, test_fraction=0.0)
    means = []
    for c in range(6):
        px, y = ds.client_train(c)
        sevens = px[y == 7].astype(np.float64)
        means.append((sevens[::2].mean(0), sevens[1::2].mean(0)))
    within = np.mean([np.abs(a - b).mean() for a, b in means])
    across = np.mean([np.abs(means[i][0] - means[j][0]).mean()
                      for i in range(6) for j in range(i + 1, 6)])
    assert across > 2 * within


def test_classes_are_separable():
    """A nearest-class-mean classifier fit on some writers beats chance by far on others."""
    ds = synthetic_digits(num_writers=20, images_per_writer=50, seed=4, test_fraction=0.0)
    px, y = ds.train_all()
    x = px.reshape(len(y), -1).astype(np.float64) / 255
    fit = ds.client < 15
    centroids = np.stack([x[fit & (y == d)].mean(0) for d in range(10)])
    dist = ((x[~fit, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = (dist.argmin(1) == y[~fit]).mean()
    assert accuracy > 0.7


@pytest.mark.parametrize("kwargs", [
    dict(num_writers=0), dict(images_per_writer=0), dict(seed=-1), dict(test_fraction=1.0),
    dict(test_fraction=-0.1), dict(num_writers=2.5),
])
def test_bad_arguments(kwargs):
    with pytest.raises(DataError):
        synthetic_digits(**kwargs)


@pytest.mark.slow
def test_small_cnn_learns_and_generalises_to_new_writers():
    """Learnable: a tiny CNN trained on 30 writers classifies 10 unseen writers well."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from fl.data import to_model_input

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: threads only add overhead on a busy machine
    try:
        accuracy = _train_tiny_cnn(torch, nn, to_model_input)
    finally:
        torch.set_num_threads(threads)
    assert accuracy > 0.85


def _train_tiny_cnn(torch, nn, to_model_input) -> float:
    torch.manual_seed(0)
    full = synthetic_digits(num_writers=40, images_per_writer=60, seed=1, test_fraction=0.0)
    train, held_out = full.subset(range(30)), full.subset(range(30, 40))
    x, y = (torch.from_numpy(a) for a in (to_model_input(train.train_all()[0]), train.train_all()[1]))
    tx, ty = (torch.from_numpy(a) for a in (to_model_input(held_out.train_all()[0]),
                                            held_out.train_all()[1]))
    net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 32), nn.ReLU(),
                        nn.Linear(32, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    order = torch.Generator().manual_seed(0)
    for _ in range(4):
        perm = torch.randperm(len(y), generator=order)
        for i in range(0, len(y), 20):
            batch = perm[i:i + 20]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
            opt.step()
    with torch.no_grad():
        return (net(tx).argmax(1) == ty).float().mean().item()
