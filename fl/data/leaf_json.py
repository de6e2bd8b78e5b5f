"""LEAF FEMNIST JSON shards.

Each shard is ``{"users": [...], "num_samples": [...], "user_data": {user: {"x": [[784
floats]], "y": [labels]}}}``. ``x`` rows are 28x28 images flattened row by row, floats that are
multiples of 1/255 with 1.0 = white background; ``y`` are LEAF's 62 classes (0-9 digits, 10-35
upper case, 36-61 lower case), of which only the digits are kept.

LEAF's ``preprocess.sh`` writes ``data/train/*_train_*.json`` and ``data/test/*_test_*.json``.
The split of a shard comes from its folder (``train``/``test``) or, failing that, from the
word ``train`` or ``test`` in its file name.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from .dataset import IMAGE_SHAPE, NUM_CLASSES, TEST, TRAIN, FederatedDataset
from .errors import DataError, DataFormatError
from .pixels import floats_to_uint8

__all__ = ["load_leaf_json", "find_leaf_shards"]

_SPLIT_WORD = re.compile(r"(?:^|[^a-z])(train|test)(?:[^a-z]|$)")


def find_leaf_shards(
    root: str | os.PathLike | Iterable[str | os.PathLike],
) -> list[tuple[Path, int]]:
    """Lists the JSON shards under ``root`` with the split each belongs to.

    Args:
      root: a directory with ``train/`` and ``test/`` subfolders of ``.json`` shards, a
        directory of ``.json`` shards whose names say ``train`` or ``test``, one such file,
        or a list of such files.

    Returns:
      ``(path, split)`` pairs sorted by path, ``split`` 0 = train, 1 = test.

    Raises:
      DataError: if ``root`` does not exist or holds no JSON shard.
      DataFormatError: if a shard's split cannot be told from its folder or name.
    """
    if isinstance(root, (str, os.PathLike)):
        root = Path(root)
        if root.is_dir():
            sub = [(root / "train", TRAIN), (root / "test", TEST)]
            if any(d.is_dir() for d, _ in sub):
                pairs = [(p, part) for d, part in sub if d.is_dir()
                         for p in sorted(d.glob("*.json"))]
            else:
                pairs = [(p, _split_from_name(p)) for p in sorted(root.glob("*.json"))]
        elif root.is_file():
            pairs = [(root, _split_from_name(root))]
        else:
            raise DataError(f"{root}: no such file or directory")
        where = str(root)
    else:
        files = [Path(p) for p in root]
        for p in files:
            if not p.is_file():
                raise DataError(f"{p}: no such file")
        pairs = [(p, _split_from_name(p)) for p in sorted(files)]
        where = ", ".join(str(p) for p in files) or "(empty list)"
    if not pairs:
        raise DataError(f"{where}: no LEAF .json shards found")
    return pairs


def _split_from_name(path: Path) -> int:
    words = _SPLIT_WORD.findall(path.stem.lower())
    if set(words) == {"train"}:
        return TRAIN
    if set(words) == {"test"}:
        return TEST
    raise DataFormatError(f"{path}: cannot tell whether this LEAF shard is train or test data; "
                          f"put shards in train/ and test/ folders or name them *_train_*.json / "
                          f"*_test_*.json")


def load_leaf_json(root: str | os.PathLike | Iterable[str | os.PathLike]) -> FederatedDataset:
    """Loads LEAF FEMNIST JSON shards, keeping the digits 0-9.

    A writer that appears in several shards or in both splits is one client. Clients are
    sorted by writer id; within a writer, images keep their shard and file order.

    Args:
      root: see :func:`find_leaf_shards`.

    Returns:
      The dataset, named after ``root``.

    Raises:
      DataError: if ``root`` does not exist or holds no shard.
      DataFormatError: if a shard is not valid JSON, lacks LEAF's keys, has rows that are not
        784 floats in [0, 1], or holds no digit at all.
    """
    pairs = find_leaf_shards(root)
    chunks: list[tuple[str, int, np.ndarray, np.ndarray]] = []
    for path, part in pairs:
        for user, px, lab in _read_shard(path):
            chunks.append((user, part, px, lab))
    if not chunks:
        raise DataFormatError(f"{pairs[0][0]}...: the LEAF shards hold no digit (labels 0-9)")
    ids = sorted({c[0] for c in chunks})
    index = {u: i for i, u in enumerate(ids)}
    name = Path(root).name if isinstance(root, (str, os.PathLike)) else "leaf-json"
    return FederatedDataset(
        name=name,
        pixels=np.concatenate([c[2] for c in chunks]),
        labels=np.concatenate([c[3] for c in chunks]),
        client=np.concatenate([np.full(len(c[3]), index[c[0]], np.int32) for c in chunks]),
        split=np.concatenate([np.full(len(c[3]), c[1], np.uint8) for c in chunks]),
        client_ids=ids,
    )


def _read_shard(path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Parses one shard: ``(user, uint8 pixels [n, 28, 28], int64 labels [n])`` per user."""
    try:
        with open(path, "rb") as f:
            blob = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(blob, dict) or not isinstance(blob.get("users"), list) \
            or not isinstance(blob.get("user_data"), dict):
        raise DataFormatError(f"{path}: not a LEAF shard (needs 'users' list and 'user_data' dict)")
    users = blob["users"]
    counts = blob.get("num_samples")
    if counts is not None and (not isinstance(counts, list) or len(counts) != len(users)):
        raise DataFormatError(f"{path}: 'num_samples' does not match 'users'")
    out = []
    for k, user in enumerate(users):
        where = f"{path} user {user}"
        data = blob["user_data"].get(user)
        if not isinstance(data, dict) or "x" not in data or "y" not in data:
            raise DataFormatError(f"{where}: missing from 'user_data' or lacks 'x'/'y'")
        try:
            x = np.asarray(data["x"], dtype=np.float64)
            y = np.asarray(data["y"])
        except (TypeError, ValueError) as exc:
            raise DataFormatError(f"{where}: 'x' must be rows of 784 numbers ({exc})") from exc
        n = len(data["y"])
        if y.shape != (n,) or (n and y.dtype.kind not in "iu"):
            raise DataFormatError(f"{where}: 'y' must be a list of integer labels")
        if x.shape != (n, IMAGE_SHAPE[0] * IMAGE_SHAPE[1]) and not (n == 0 and x.size == 0):
            raise DataFormatError(f"{where}: 'x' must be {n} rows of 784 floats, got {x.shape}")
        if counts is not None and counts[k] != n:
            raise DataFormatError(f"{where}: num_samples says {counts[k]}, found {n}")
        keep = (y >= 0) & (y < NUM_CLASSES) if n else np.zeros(0, bool)
        if keep.any():
            px = floats_to_uint8(x[keep], where).reshape(-1, *IMAGE_SHAPE)
            out.append((str(user), px, y[keep].astype(np.int64)))
    return out
