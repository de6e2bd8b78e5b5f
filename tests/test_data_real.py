"""The real partial FEMNIST digits file (skipped where ``../shared/data`` is absent)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fl.data import describe, load_dataset

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fed_emnist_digits.npz"

pytestmark = pytest.mark.skipif(not REAL.is_file(), reason="real data file not present")


@pytest.fixture(scope="module")
def real():
    return load_dataset(REAL)


def test_counts(real):
    s = real.summary()
    assert s["num_clients"] == 679
    assert s["num_images"] == 45_936
    assert (s["num_train"], s["num_test"]) == (38_426, 7_510)
    assert s["num_train_clients"] == 384
    assert len(real.train_clients()) == 384
    assert all(real.num_test(c) > 0 for c in range(real.num_clients))


def test_label_histograms(real):
    hist = real.summary()["label_histogram"]
    assert hist["all"] == [4552, 5063, 4561, 4629, 4444, 4324, 4562, 4762, 4480, 4559]
    assert hist["train"] == [3776, 4180, 3831, 3916, 3719, 3599, 3842, 3988, 3767, 3808]
    assert hist["test"] == [776, 883, 730, 713, 725, 725, 720, 774, 713, 751]
    assert sum(hist["all"]) == 45_936


def test_matches_file_arrays_and_convention(real):
    with np.load(REAL) as z:
        assert np.array_equal(real.pixels, z["pixels"])  # file is already (writer, split)-sorted
        assert real.client_ids == [str(w) for w in z["writer_ids"]]
        n_train = np.array([real.num_train(c) for c in range(real.num_clients)])
        assert np.array_equal(n_train, z["writer_n_train"])
    s = real.summary()
    assert s["white_fraction"] > 0.8 and s["mean_pixel"] > 230  # 255 = white background
    assert "679 (384 with train data)" in describe(real)
