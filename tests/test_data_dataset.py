"""FederatedDataset: validation, (client, split) ordering, per-client views, subset, summary."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fl.data import DataError, FederatedDataset, describe, to_model_input


def _toy(seed: int = 0) -> FederatedDataset:
    """Three writers, rows deliberately shuffled; writer 2 has test images only."""
    rng = np.random.default_rng(seed)
    client = np.array([1, 0, 2, 0, 1, 0, 1, 2, 0, 1], dtype=np.int32)
    split = np.array([0, 1, 1, 0, 1, 0, 0, 1, 0, 0], dtype=np.uint8)
    labels = np.arange(10, dtype=np.int64) % 10
    pixels = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    pixels[:, 0, 0] = np.arange(10)  # row tag, to check the order after sorting
    return FederatedDataset("toy", pixels, labels, client, split, ["w0", "w1", "w2"])


def test_rows_sorted_by_client_then_split_stably():
    ds = _toy()
    tags = ds.pixels[:, 0, 0].tolist()
    # client 0: train rows 3, 5, 8 then test row 1; client 1: train 0, 6, 9 then test 4;
    # client 2: test 2, 7
    assert tags == [3, 5, 8, 1, 0, 6, 9, 4, 2, 7]
    assert ds.client.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert ds.split.tolist() == [0, 0, 0, 1, 0, 0, 0, 1, 1, 1]
    assert ds.labels.dtype == np.int64 and ds.client.dtype == np.int32
    assert ds.split.dtype == np.uint8


def test_client_views_and_counts():
    ds = _toy()
    assert ds.num_clients == 3 and len(ds) == 10
    assert ds.train_clients() == [0, 1]
    px, lab = ds.client_train(0)
    assert px.shape == (3, 28, 28) and px.dtype == np.uint8
    assert lab.tolist() == [3, 5, 8]
    assert np.shares_memory(px, ds.pixels)  # a view, not a copy
    px, lab = ds.client_test(2)
    assert lab.tolist() == [2, 7]
    assert ds.client_train(2)[0].shape == (0, 28, 28)
    assert (ds.num_train(1), ds.num_test(1)) == (3, 1)
    with pytest.raises(IndexError):
        ds.client_train(3)
    with pytest.raises(IndexError):
        ds.client_test(-1)


def test_whole_splits():
    ds = _toy()
    px, lab = ds.train_all()
    assert lab.tolist() == [3, 5, 8, 0, 6, 9]
    px, lab, cl = ds.test_all_with_clients()
    assert lab.tolist() == [1, 4, 2, 7] and cl.tolist() == [0, 1, 2, 2]
    assert np.array_equal(ds.test_all()[0], px)


def test_subset_reindexes_in_given_order():
    ds = _toy()
    sub = ds.subset([2, 0])
    assert sub.client_ids == ["w2", "w0"]
    assert sub.train_clients() == [1]
    assert np.array_equal(sub.client_test(0)[0], ds.client_test(2)[0])
    assert np.array_equal(sub.client_train(1)[1], ds.client_train(0)[1])
    assert len(sub) == 6
    with pytest.raises(DataError, match="duplicate"):
        ds.subset([0, 0])
    with pytest.raises(IndexError):
        ds.subset([5])


def test_summary_and_describe():
    ds = _toy()
    s = ds.summary()
    assert (s["num_clients"], s["num_train_clients"], s["num_train"], s["num_test"]) == (3, 2, 6, 4)
    assert sum(s["label_histogram"]["all"]) == 10
    assert s["label_histogram"]["test"] == [0, 1, 1, 0, 1, 0, 0, 1, 0, 0]
    assert s["per_client"]["all"] == {"min": 2, "median": 4.0, "mean": 10 / 3, "max": 4}
    text = describe(ds)
    assert "3 (2 with train data)" in text and "255 = white" in text


@pytest.mark.parametrize("change, message", [
    (dict(pixels=np.zeros((10, 28, 28), np.float32)), "uint8"),
    (dict(pixels=np.zeros((10, 28, 27), np.uint8)), "shape"),
    (dict(labels=np.full(10, 10)), "digits"),
    (dict(labels=np.zeros(9, np.int64)), "shape"),
    (dict(labels=np.zeros(10, np.float32)), "integers"),
    (dict(client=np.full(10, 3)), "client indices"),
    (dict(split=np.full(10, 2)), "split"),
    (dict(client_ids=["a", "a", "b"]), "unique"),
])
def test_validation_errors(change, message):
    args = dict(name="bad", pixels=np.zeros((10, 28, 28), np.uint8), labels=np.zeros(10, np.int64),
                client=np.zeros(10, np.int32), split=np.zeros(10, np.uint8),
                client_ids=["a", "b", "c"])
    args.update(change)
    with pytest.raises(DataError, match=message):
        FederatedDataset(**args)


def test_to_model_input_keeps_orientation():
    px = np.array([[0, 128, 255] + [255] * 25] * 28, dtype=np.uint8)[None]
    x = to_model_input(px)
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
    assert x[0, 0, 0, 0] == 0.0 and x[0, 0, 0, 2] == 1.0
    assert x[0, 0, 0, 1] == np.float32(128) / np.float32(255)
    assert to_model_input(px[0]).shape == (1, 1, 28, 28)
    with pytest.raises(DataError):
        to_model_input(px.astype(np.float32))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1)), max_size=40))
def test_views_partition_the_rows(num_clients, rows):
    """Whatever the input order, each input row lands in exactly its client's split view."""
    rows = [(c % num_clients, s) for c, s in rows]
    n = len(rows)
    pixels = np.zeros((n, 28, 28), np.uint8)
    pixels[:, 0, :2] = np.array([[i // 256, i % 256] for i in range(n)], np.uint8).reshape(n, 2)
    ds = FederatedDataset("prop", pixels, np.arange(n) % 10,
                          np.array([c for c, _ in rows], np.int32),
                          np.array([s for _, s in rows], np.uint8),
                          [f"w{i}" for i in range(num_clients)])
    seen = []
    for c in range(num_clients):
        for part, view in ((0, ds.client_train(c)), (1, ds.client_test(c))):
            tags = [int(a) * 256 + int(b) for a, b in view[0][:, 0, :2]]
            assert [rows[t] for t in tags] == [(c, part)] * len(tags)
            assert tags == sorted(tags)  # stable: input order kept within a client's split
            seen += tags
    assert sorted(seen) == list(range(n))
    assert ds.train_clients() == sorted({c for c, s in rows if s == 0})
