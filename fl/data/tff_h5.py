"""TFF's federated EMNIST ``.h5`` files (``fed_emnist_digitsonly_{train,test}.h5``).

Layout (TFF ``HDF5ClientData``): group ``examples``, one subgroup per writer id, each holding
``pixels`` (``float32 [n, 28, 28]`` in [0, 1], 1.0 = white background) and ``label``
(integers ``[n]``). Labels 10-61 (letters, in the 62-class ``fed_emnist`` files) are dropped.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .dataset import IMAGE_SHAPE, NUM_CLASSES, TEST, TRAIN, FederatedDataset
from .errors import DataError, DataFormatError
from .pixels import floats_to_uint8

__all__ = ["load_tff_h5", "TFF_H5_NAMES"]

#: file names of TFF's digits-only split, as extracted from its archive
TFF_H5_NAMES = ("fed_emnist_digitsonly_train.h5", "fed_emnist_digitsonly_test.h5")


def load_tff_h5(train_path: str | os.PathLike, test_path: str | os.PathLike) -> FederatedDataset:
    """Loads TFF's federated EMNIST train and test ``.h5`` files into one dataset.

    Clients are the union of the writers of both files, sorted by id (TFF's own order).

    Args:
      train_path: the ``*_train.h5`` file.
      test_path: the ``*_test.h5`` file.

    Returns:
      The dataset, digits 0-9 only, named after the train file.

    Raises:
      DataError: if a file does not exist.
      DataFormatError: if a file is not HDF5 or does not have TFF's layout.
    """
    import h5py  # imported here: only this loader needs it

    train_path, test_path = Path(train_path), Path(test_path)
    per_split: list[dict[str, tuple[np.ndarray, np.ndarray]]] = []
    for path in (train_path, test_path):
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        try:
            with h5py.File(path, "r") as f:
                per_split.append(_read_examples(f, path))
        except DataError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise DataFormatError(f"{path}: not a readable TFF EMNIST .h5 file ({exc})") from exc

    ids = sorted(set(per_split[0]) | set(per_split[1]))
    index = {w: i for i, w in enumerate(ids)}
    pixels, labels, client, split = [], [], [], []
    for part, data in zip((TRAIN, TEST), per_split):
        for writer, (px, lab) in data.items():
            pixels.append(px)
            labels.append(lab)
            client.append(np.full(len(lab), index[writer], dtype=np.int32))
            split.append(np.full(len(lab), part, dtype=np.uint8))
    if not pixels:
        raise DataFormatError(f"{train_path}: no digit images found")
    return FederatedDataset(
        name=train_path.name,
        pixels=np.concatenate(pixels),
        labels=np.concatenate(labels),
        client=np.concatenate(client),
        split=np.concatenate(split),
        client_ids=ids,
    )


def _read_examples(f, path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads every writer of an open TFF ``.h5`` file, keeping labels 0-9."""
    if "examples" not in f:
        raise DataFormatError(f"{path}: no 'examples' group (expected TFF's HDF5ClientData layout)")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for writer, group in f["examples"].items():
        where = f"{path} writer {writer}"
        if "pixels" not in group or "label" not in group:
            raise DataFormatError(f"{where}: needs datasets 'pixels' and 'label'")
        px = np.asarray(group["pixels"][()])
        lab = np.asarray(group["label"][()])
        if lab.ndim == 2 and lab.shape[1] == 1:
            lab = lab[:, 0]
        if px.ndim != 3 or px.shape[1:] != IMAGE_SHAPE or lab.shape != (px.shape[0],):
            raise DataFormatError(f"{where}: pixels {px.shape} / label {lab.shape} do not match "
                                  f"[n, 28, 28] / [n]")
        if px.dtype.kind != "f":
            raise DataFormatError(f"{where}: pixels must be floats in [0, 1], got {px.dtype}")
        if lab.dtype.kind not in "iu":
            raise DataFormatError(f"{where}: labels must be integers, got {lab.dtype}")
        keep = (lab >= 0) & (lab < NUM_CLASSES)
        if keep.any():
            out[str(writer)] = (floats_to_uint8(px[keep], where), lab[keep].astype(np.int64))
    return out
