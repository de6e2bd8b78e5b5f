"""The ``.npz`` format of ``fed_emnist_digits.npz``: flat arrays, rows grouped by writer.

Required arrays (``np.load`` without pickle):

=============  ===================  ==============================================
name           dtype / shape        meaning
=============  ===================  ==============================================
``pixels``     uint8 [N, 28, 28]    255 = white background, 0 = ink
``labels``     integer [N]          digit 0-9
``writer``     integer [N]          index into ``writer_ids``
``writer_ids`` str [W]              writer ids (``f0005_26``, ...)
``split``      integer [N]          0 = train, 1 = test
=============  ===================  ==============================================

Other arrays (``source``, ``writer_n_train``, ...) may be present and are ignored.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .dataset import FederatedDataset
from .errors import DataError, DataFormatError

__all__ = ["load_npz", "save_npz", "NPZ_KEYS"]

#: arrays a dataset ``.npz`` file must hold
NPZ_KEYS = ("pixels", "labels", "writer", "writer_ids", "split")


def load_npz(path: str | os.PathLike) -> FederatedDataset:
    """Loads a writer-partitioned digits ``.npz`` file.

    Args:
      path: the ``.npz`` file.

    Returns:
      The dataset, named after the file.

    Raises:
      DataError: if ``path`` does not exist.
      DataFormatError: if the file is not a readable ``.npz`` or lacks or mis-shapes an array.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise DataFormatError(f"{path}: npz lacks array(s) {missing}; "
                                      f"expected {list(NPZ_KEYS)}")
            arrays = {k: z[k] for k in NPZ_KEYS}
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise DataFormatError(f"{path}: not a readable npz file ({exc})") from exc
    ids = arrays["writer_ids"]
    if ids.ndim != 1 or ids.dtype.kind not in "US":
        raise DataFormatError(f"{path}: writer_ids must be a 1-D string array, "
                              f"got {ids.dtype} {ids.shape}")
    for key in ("labels", "writer", "split"):
        if arrays[key].dtype.kind not in "iu":
            raise DataFormatError(f"{path}: {key} must be integers, got {arrays[key].dtype}")
    try:
        return FederatedDataset(
            name=path.name,
            pixels=arrays["pixels"],
            labels=arrays["labels"],
            client=arrays["writer"],
            split=arrays["split"],
            client_ids=[str(x) for x in ids.tolist()],
        )
    except DataError as exc:
        raise DataFormatError(f"{path}: {exc}") from exc


def save_npz(ds: FederatedDataset, path: str | os.PathLike) -> Path:
    """Writes ``ds`` in the format :func:`load_npz` reads (compressed).

    Args:
      ds: the dataset.
      path: destination file; ``.npz`` is appended by numpy if missing.

    Returns:
      The path written.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez_compressed(
        path,
        pixels=ds.pixels,
        labels=ds.labels.astype(np.uint8),
        writer=ds.client.astype(np.int32),
        writer_ids=np.array(ds.client_ids, dtype=str),
        split=ds.split.astype(np.uint8),
    )
    return path
