"""The in-memory federated dataset every loader returns: digits grouped by writer (client)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import DataError

__all__ = ["FederatedDataset", "to_model_input", "IMAGE_SHAPE", "NUM_CLASSES", "TRAIN", "TEST"]

#: height and width of every image
IMAGE_SHAPE = (28, 28)
#: digits 0-9
NUM_CLASSES = 10
#: values of the ``split`` array
TRAIN, TEST = 0, 1


class FederatedDataset:
    """Handwritten digits partitioned by writer; each writer is one federated client.

    **Pixel convention.** ``pixels`` are ``uint8`` with **255 = white background and 0 = black
    ink**. This is the orientation of the LEAF/TFF federated EMNIST floats (1.0 = white,
    0.0 = ink) scaled by 255: ``pixels / 255`` gives the LEAF/TFF float values back exactly.
    The model input is ``float32`` ``pixels / 255`` in the same orientation, with no inversion
    (see :func:`to_model_input`), as the reference TFF code feeds its data to the model.

    Rows are stored sorted by ``(client, split)`` (stable, so each writer's images keep their
    order within a split). Each client's train and test images are therefore contiguous and
    :meth:`client_train` / :meth:`client_test` return views in O(1). The arrays are shared
    between the dataset and those views: treat them as read-only.

    Attributes:
      name: a short human-readable name (``"synthetic:60:0"``, the file name, ...).
      client_ids: writer ids; ``client_ids[i]`` is the writer of client index ``i``.
      pixels: ``uint8 [N, 28, 28]``.
      labels: ``int64 [N]``, digits 0-9.
      client: ``int32 [N]``, the client index of each row.
      split: ``uint8 [N]``, 0 = train, 1 = test.
    """

    def __init__(
        self,
        name: str,
        pixels: np.ndarray,
        labels: np.ndarray,
        client: np.ndarray,
        split: np.ndarray,
        client_ids: Sequence[str],
    ):
        """Validates the arrays and stores them sorted by ``(client, split)``.

        Args:
          name: human-readable dataset name.
          pixels: ``uint8 [N, 28, 28]``, 255 = white background, 0 = ink.
          labels: integer ``[N]`` with values in 0-9 (stored as ``int64``).
          client: integer ``[N]`` with values in ``[0, len(client_ids))`` (stored as ``int32``).
          split: integer ``[N]`` with values 0 (train) or 1 (test) (stored as ``uint8``).
          client_ids: one distinct string id per client.

        Raises:
          DataError: if a shape, dtype or value range is wrong, or client ids are not unique.
        """
        self.name = str(name)
        ids = [str(c) for c in client_ids]
        if len(set(ids)) != len(ids):
            raise DataError(f"{self.name}: client_ids are not unique")
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8:
            raise DataError(f"{self.name}: pixels must be uint8 (255 = white), got {pixels.dtype}")
        if pixels.ndim != 3 or pixels.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{self.name}: pixels must have shape [N, 28, 28], got {pixels.shape}")
        n = pixels.shape[0]
        labels = _int_array(self.name, "labels", labels, n)
        client = _int_array(self.name, "client", client, n)
        split = _int_array(self.name, "split", split, n)
        if n and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
            raise DataError(f"{self.name}: labels must be digits 0-9, got range "
                            f"[{labels.min()}, {labels.max()}]")
        if n and (client.min() < 0 or client.max() >= len(ids)):
            raise DataError(f"{self.name}: client indices must lie in [0, {len(ids)}), got range "
                            f"[{client.min()}, {client.max()}]")
        if n and not np.isin(split, (TRAIN, TEST)).all():
            raise DataError(f"{self.name}: split must be 0 (train) or 1 (test)")

        key = client.astype(np.int64) * 2 + split
        order = np.argsort(key, kind="stable")
        if np.array_equal(order, np.arange(n)):
            order = None
        take = (lambda a: a) if order is None else (lambda a: a[order])
        self.pixels = np.ascontiguousarray(take(pixels))
        self.labels = np.ascontiguousarray(take(labels), dtype=np.int64)
        self.client = np.ascontiguousarray(take(client), dtype=np.int32)
        self.split = np.ascontiguousarray(take(split), dtype=np.uint8)
        self.client_ids: list[str] = ids
        sorted_key = take(key)
        # client i: train rows [bounds[2i], bounds[2i+1]), test rows [bounds[2i+1], bounds[2i+2])
        bounds = np.searchsorted(sorted_key, np.arange(2 * len(ids) + 1), side="left")
        self._bounds = bounds.astype(np.int64)
        self._train_index: np.ndarray | None = None
        self._test_index: np.ndarray | None = None

    # ------------------------------------------------------------------ size and clients
    @property
    def num_clients(self) -> int:
        """Number of clients (writers), including those with test images only."""
        return len(self.client_ids)

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    def __repr__(self) -> str:
        n_train = int((self.split == TRAIN).sum())
        return (f"FederatedDataset({self.name!r}, clients={self.num_clients}, "
                f"train={n_train}, test={len(self) - n_train})")

    def train_clients(self) -> list[int]:
        """Client indices with at least one train image, in increasing order."""
        counts = self._bounds[1::2] - self._bounds[0:-1:2]
        return [int(i) for i in np.flatnonzero(counts > 0)]

    def num_train(self, i: int) -> int:
        """Number of train images of client ``i``."""
        i = self._check_client(i)
        return int(self._bounds[2 * i + 1] - self._bounds[2 * i])

    def num_test(self, i: int) -> int:
        """Number of test images of client ``i``."""
        i = self._check_client(i)
        return int(self._bounds[2 * i + 2] - self._bounds[2 * i + 1])

    # ------------------------------------------------------------------ per-client views
    def client_train(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Client ``i``'s train images.

        Args:
          i: client index in ``[0, num_clients)``.

        Returns:
          ``(pixels uint8 [n, 28, 28], labels int64 [n])``, views into the dataset's arrays.

        Raises:
          IndexError: if ``i`` is out of range.
        """
        return self._rows(i, TRAIN)

    def client_test(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Client ``i``'s test images; same contract as :meth:`client_train`."""
        return self._rows(i, TEST)

    def _check_client(self, i: int) -> int:
        i = int(i)
        if not 0 <= i < self.num_clients:
            raise IndexError(f"client index {i} out of range [0, {self.num_clients})")
        return i

    def _rows(self, i: int, part: int) -> tuple[np.ndarray, np.ndarray]:
        i = self._check_client(i)
        lo, hi = self._bounds[2 * i + part], self._bounds[2 * i + part + 1]
        return self.pixels[lo:hi], self.labels[lo:hi]

    # ------------------------------------------------------------------ whole splits
    def _index(self, part: int) -> np.ndarray:
        if part == TRAIN:
            if self._train_index is None:
                self._train_index = np.flatnonzero(self.split == TRAIN)
            return self._train_index
        if self._test_index is None:
            self._test_index = np.flatnonzero(self.split == TEST)
        return self._test_index

    def train_all(self) -> tuple[np.ndarray, np.ndarray]:
        """Every train image, ordered by client: ``(pixels [n, 28, 28], labels [n])`` copies."""
        idx = self._index(TRAIN)
        return self.pixels[idx], self.labels[idx]

    def test_all(self) -> tuple[np.ndarray, np.ndarray]:
        """Every test image, ordered by client: ``(pixels [n, 28, 28], labels [n])`` copies."""
        idx = self._index(TEST)
        return self.pixels[idx], self.labels[idx]

    def test_all_with_clients(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :meth:`test_all`, plus the client index of each row (``int32 [n]``).

        The client column lets an evaluation leave out some writers (for example the target
        writers of a backdoor attack) from main-task accuracy.
        """
        idx = self._index(TEST)
        return self.pixels[idx], self.labels[idx], self.client[idx]

    # ------------------------------------------------------------------ derived datasets
    def subset(self, clients: Sequence[int]) -> "FederatedDataset":
        """A new dataset holding only the given clients, re-indexed in the order given.

        Args:
          clients: distinct client indices of this dataset.

        Returns:
          A :class:`FederatedDataset` whose client ``k`` is this dataset's client
          ``clients[k]`` (same writer id, same images in the same order).

        Raises:
          DataError: if ``clients`` holds duplicates.
          IndexError: if an index is out of range.
        """
        chosen = [self._check_client(c) for c in clients]
        if len(set(chosen)) != len(chosen):
            raise DataError(f"{self.name}: subset() got duplicate client indices")
        parts = [np.arange(self._bounds[2 * c], self._bounds[2 * c + 2]) for c in chosen]
        rows = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        new_client = np.repeat(np.arange(len(chosen), dtype=np.int32),
                               [len(p) for p in parts]) if parts else np.zeros(0, np.int32)
        return FederatedDataset(
            name=f"{self.name}[subset of {len(chosen)}]",
            pixels=self.pixels[rows],
            labels=self.labels[rows],
            client=new_client,
            split=self.split[rows],
            client_ids=[self.client_ids[c] for c in chosen],
        )

    # ------------------------------------------------------------------ statistics
    def summary(self) -> dict:
        """Counts and histograms, as plain Python numbers (JSON-serialisable).

        Returns:
          A dict with keys ``name``, ``num_clients``, ``num_train_clients``, ``num_images``,
          ``num_train``, ``num_test``, ``label_histogram`` (``{"all"|"train"|"test": [10 ints]}``),
          ``per_client`` (``{"all"|"train"|"test": {"min", "median", "mean", "max"}}``, over
          all clients, or for ``"train"`` over clients with train data), ``mean_pixel`` and
          ``white_fraction`` (share of pixels equal to 255).
        """
        n_train_per = self._bounds[1::2] - self._bounds[0:-1:2]
        n_test_per = self._bounds[2::2] - self._bounds[1::2]
        hist = {
            "all": np.bincount(self.labels, minlength=NUM_CLASSES),
            "train": np.bincount(self.labels[self.split == TRAIN], minlength=NUM_CLASSES),
            "test": np.bincount(self.labels[self.split == TEST], minlength=NUM_CLASSES),
        }

        def stats(values: np.ndarray) -> dict:
            if values.size == 0:
                return {"min": 0, "median": 0.0, "mean": 0.0, "max": 0}
            return {"min": int(values.min()), "median": float(np.median(values)),
                    "mean": float(values.mean()), "max": int(values.max())}

        return {
            "name": self.name,
            "num_clients": self.num_clients,
            "num_train_clients": int((n_train_per > 0).sum()),
            "num_images": len(self),
            "num_train": int(n_train_per.sum()),
            "num_test": int(n_test_per.sum()),
            "label_histogram": {k: [int(x) for x in v] for k, v in hist.items()},
            "per_client": {
                "all": stats(n_train_per + n_test_per),
                "train": stats(n_train_per[n_train_per > 0]),
                "test": stats(n_test_per),
            },
            "mean_pixel": float(self.pixels.mean()) if len(self) else 0.0,
            "white_fraction": float((self.pixels == 255).mean()) if len(self) else 0.0,
        }


def to_model_input(pixels: np.ndarray) -> np.ndarray:
    """Converts ``uint8`` pixels to the model's input: ``float32 [n, 1, 28, 28] = pixels / 255``.

    The orientation is kept (1.0 = white background, 0.0 = ink), as TFF feeds its EMNIST data.

    Args:
      pixels: ``uint8 [n, 28, 28]`` (or a single image ``[28, 28]``).

    Returns:
      A new ``float32`` array of shape ``[n, 1, 28, 28]``.

    Raises:
      DataError: if ``pixels`` is not ``uint8`` of a supported shape.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise DataError(f"to_model_input expects uint8 pixels, got {pixels.dtype}")
    if pixels.shape == IMAGE_SHAPE:
        pixels = pixels[None]
    if pixels.ndim != 3 or pixels.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"to_model_input expects shape [n, 28, 28], got {pixels.shape}")
    out = pixels.astype(np.float32)
    out /= np.float32(255.0)
    return out[:, None, :, :]


def _int_array(name: str, what: str, values: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise DataError(f"{name}: {what} must have shape [{n}], got {arr.shape}")
    if n and not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{name}: {what} must be integers, got {arr.dtype}")
    return arr.astype(np.int64, copy=False) if n else np.zeros(0, dtype=np.int64)
