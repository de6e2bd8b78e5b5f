"""Loaders on tiny files written to tmp_path: npz, TFF h5, LEAF JSON, and load_dataset dispatch."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from fl.data import (
    DataError,
    DataFormatError,
    load_dataset,
    load_leaf_json,
    load_npz,
    load_tff_h5,
    save_npz,
    synthetic_digits,
)

# ----------------------------------------------------------------------------- helpers


def _levels(rng, n):
    """uint8 images [n, 28, 28] with every level 0..255 present somewhere."""
    px = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    px.reshape(-1)[:256] = np.arange(256, dtype=np.uint8)
    return px


def _write_tff(path, writers):
    """writers: {id: (uint8 pixels [n,28,28], labels [n])}, stored as TFF floats (1.0 = white)."""
    with h5py.File(path, "w") as f:
        ex = f.create_group("examples")
        for wid, (px, lab) in writers.items():
            g = ex.create_group(wid)
            g.create_dataset("pixels", data=(px.astype(np.float32) / np.float32(255)))
            g.create_dataset("label", data=np.asarray(lab, dtype=np.int32))


def _leaf_shard(path, users):
    """users: {id: (uint8 pixels [n,28,28], labels [n])} -> LEAF JSON with floats x/255."""
    blob = {"users": list(users), "num_samples": [len(v[1]) for v in users.values()],
            "user_data": {u: {"x": (px.reshape(len(lab), -1) / 255.0).tolist(),
                              "y": [int(y) for y in lab]} for u, (px, lab) in users.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(blob))


# ----------------------------------------------------------------------------- npz


def test_npz_round_trip(tmp_path):
    ds = synthetic_digits(num_writers=4, images_per_writer=12, seed=5)
    path = save_npz(ds, tmp_path / "d.npz")
    back = load_npz(path)
    assert back.client_ids == ds.client_ids
    for name in ("pixels", "labels", "client", "split"):
        assert np.array_equal(getattr(back, name), getattr(ds, name)), name
    assert load_dataset(path).summary()["num_images"] == 48


def test_npz_missing_array_and_garbage(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, pixels=np.zeros((1, 28, 28), np.uint8), labels=np.zeros(1, np.uint8))
    with pytest.raises(DataFormatError, match="writer"):
        load_npz(bad)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DataFormatError):
        load_dataset(junk)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, pixels=np.zeros((2, 28, 28), np.uint8), labels=np.array([1, 12], np.uint8),
             writer=np.zeros(2, np.int32), writer_ids=np.array(["a"]), split=np.zeros(2, np.uint8))
    with pytest.raises(DataFormatError, match="digits"):
        load_npz(wrong)


# ----------------------------------------------------------------------------- TFF h5


def test_tff_h5_exact_pixels_and_digit_filter(tmp_path):
    rng = np.random.default_rng(1)
    a_train, b_train, a_test, c_test = (_levels(rng, n) for n in (5, 3, 2, 2))
    _write_tff(tmp_path / "fed_emnist_digitsonly_train.h5",
               {"f0001_01": (a_train, [0, 1, 2, 3, 40]), "f0002_02": (b_train, [9, 9, 8])})
    _write_tff(tmp_path / "fed_emnist_digitsonly_test.h5",
               {"f0001_01": (a_test, [4, 5]), "f0003_03": (c_test, [6, 7])})
    ds = load_tff_h5(tmp_path / "fed_emnist_digitsonly_train.h5",
                     tmp_path / "fed_emnist_digitsonly_test.h5")
    assert ds.client_ids == ["f0001_01", "f0002_02", "f0003_03"]
    px, lab = ds.client_train(0)
    assert lab.tolist() == [0, 1, 2, 3]  # label 40 (a letter) dropped
    assert np.array_equal(px, a_train[:4])  # float -> uint8 exact
    assert np.array_equal(ds.client_test(0)[0], a_test)
    assert ds.train_clients() == [0, 1]
    # directory dispatch, single-file dispatch and pair dispatch agree
    for spec in (tmp_path, tmp_path / "fed_emnist_digitsonly_test.h5",
                 [tmp_path / "fed_emnist_digitsonly_train.h5",
                  tmp_path / "fed_emnist_digitsonly_test.h5"]):
        assert np.array_equal(load_dataset(spec).pixels, ds.pixels)


def test_tff_h5_malformed(tmp_path):
    train, test = tmp_path / "x_train.h5", tmp_path / "x_test.h5"
    with h5py.File(train, "w") as f:
        f.create_group("other")
    _write_tff(test, {"w": (np.zeros((1, 28, 28), np.uint8), [1])})
    with pytest.raises(DataFormatError, match="examples"):
        load_tff_h5(train, test)
    with h5py.File(train, "w") as f:
        g = f.create_group("examples").create_group("w")
        g.create_dataset("pixels", data=np.full((1, 28, 28), 200.0, np.float32))  # 0-255 scale
        g.create_dataset("label", data=np.array([1], np.int32))
    with pytest.raises(DataFormatError, match=r"\[0, 1\]"):
        load_tff_h5(train, test)
    train.write_bytes(b"not hdf5 at all")
    with pytest.raises(DataFormatError):
        load_dataset(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        load_tff_h5(tmp_path / "missing_train.h5", test)


# ----------------------------------------------------------------------------- LEAF JSON


def _leaf_tree(root, rng):
    u1_train, u2_train, u1_test = _levels(rng, 4), _levels(rng, 3), _levels(rng, 2)
    _leaf_shard(root / "train" / "all_data_0_niid_05_keep_0_train_9.json",
                {"f0100_10": (u1_train, [3, 17, 5, 61]), "f0200_20": (u2_train, [36, 10, 11])})
    _leaf_shard(root / "test" / "all_data_0_niid_05_keep_0_test_9.json",
                {"f0100_10": (u1_test, [0, 9])})
    return u1_train, u1_test


def test_leaf_json_filters_letters_and_round_trips_pixels(tmp_path):
    rng = np.random.default_rng(2)
    u1_train, u1_test = _leaf_tree(tmp_path, rng)
    ds = load_leaf_json(tmp_path)
    assert ds.client_ids == ["f0100_10"]  # f0200_20 has letters only
    px, lab = ds.client_train(0)
    assert lab.tolist() == [3, 5]
    assert np.array_equal(px, u1_train[[0, 2]])  # LEAF float x/255 -> uint8 exact
    assert np.array_equal(ds.client_test(0)[0], u1_test)
    assert np.array_equal(load_dataset(tmp_path).pixels, ds.pixels)
    # a flat directory of shards named *_train_* / *_test_* reads the same
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in (tmp_path / "train").glob("*.json"):
        (flat / f.name).write_bytes(f.read_bytes())
    for f in (tmp_path / "test").glob("*.json"):
        (flat / f.name).write_bytes(f.read_bytes())
    assert np.array_equal(load_dataset(flat).pixels, ds.pixels)


def test_leaf_every_level_exact(tmp_path):
    px = (np.arange(784) % 256).astype(np.uint8).reshape(1, 28, 28)
    x = px.reshape(1, -1) / 255.0
    blob = {"users": ["u"], "num_samples": [1], "user_data": {"u": {"x": x.tolist(), "y": [7]}}}
    path = tmp_path / "one_train_0.json"
    path.write_text(json.dumps(blob))
    ds = load_leaf_json(path)
    assert np.array_equal(ds.pixels[0], px[0]) and set(np.unique(ds.pixels)) == set(range(256))


@pytest.mark.parametrize("content, message", [
    ("{not json", "JSON"),
    (json.dumps({"users": ["u"]}), "LEAF"),
    (json.dumps({"users": ["u"], "user_data": {"u": {"x": [[0.5] * 783], "y": [1]}}}), "784"),
    (json.dumps({"users": ["u"], "num_samples": [2],
                 "user_data": {"u": {"x": [[0.5] * 784], "y": [1]}}}), "num_samples"),
    (json.dumps({"users": ["u"], "user_data": {"u": {"x": [[1.5] * 784], "y": [1]}}}), r"\[0, 1\]"),
    (json.dumps({"users": ["u"], "user_data": {"u": {"x": [[0.5] * 784], "y": [1.5]}}}), "integer"),
    (json.dumps({"users": ["u"], "user_data": {}}), "missing"),
])
def test_leaf_malformed(tmp_path, content, message):
    path = tmp_path / "train" / "s_train.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message):
        load_dataset(tmp_path)


def test_leaf_split_must_be_known(tmp_path):
    _leaf_shard(tmp_path / "shard.json", {"u": (np.zeros((1, 28, 28), np.uint8), [1])})
    with pytest.raises(DataFormatError, match="train or test"):
        load_dataset(tmp_path)


# ----------------------------------------------------------------------------- dispatch


def test_dispatch_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "nope.npz")
    other = tmp_path / "data.csv"
    other.write_text("1,2,3\n")
    with pytest.raises(DataError, match="unknown data format"):
        load_dataset(other)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="Accepted"):
        load_dataset(empty)
    for spec in ("synthetic:x", "synthetic:3:4:5", "synthetic:-1"):
        with pytest.raises(DataError, match="synthetic"):
            load_dataset(spec)
    with pytest.raises(DataError, match="options"):
        load_dataset("synthetic:2", bogus=1)
    with pytest.raises(DataError):
        load_dataset(tmp_path / "nope.npz", images_per_writer=3)


def test_dispatch_synthetic_specs():
    ds = load_dataset("synthetic:3:7", images_per_writer=10)
    assert ds.name == "synthetic:3:7" and ds.num_clients == 3 and len(ds) == 30
    assert np.array_equal(ds.pixels, synthetic_digits(3, 10, seed=7).pixels)
    assert load_dataset("synthetic:2", images_per_writer=5).name == "synthetic:2:0"
