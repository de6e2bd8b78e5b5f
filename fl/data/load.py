"""``load_dataset``: one entry point that picks the loader from a spec string or path."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .dataset import FederatedDataset
from .errors import DataError
from .leaf_json import load_leaf_json
from .npz import load_npz
from .synthetic import synthetic_digits
from .tff_h5 import load_tff_h5

__all__ = ["load_dataset", "ACCEPTED_FORMATS"]

#: shown in errors and in the command line's help
ACCEPTED_FORMATS = (
    "'synthetic' or 'synthetic:N_WRITERS[:SEED]' (built-in generator); "
    "a .npz file (format of fed_emnist_digits.npz); "
    "a directory holding TFF's <prefix>_train.h5 and <prefix>_test.h5, one of those files, "
    "or the two paths; "
    "a LEAF FEMNIST directory (train/ and test/ folders of .json shards, or .json shards "
    "named *_train_*/*_test_*)"
)


def load_dataset(
    spec: str | os.PathLike | Sequence[str | os.PathLike], **kwargs
) -> FederatedDataset:
    """Loads a federated digits dataset from a spec.

    Args:
      spec: ``"synthetic"``, ``"synthetic:N_WRITERS"`` or ``"synthetic:N_WRITERS:SEED"``; a
        ``.npz`` file; a directory with TFF's ``*_train.h5`` and ``*_test.h5`` (or one of the
        two files, the other found next to it, or a pair of paths); a LEAF JSON directory or
        shard. See :data:`ACCEPTED_FORMATS`.
      **kwargs: passed to :func:`~fl.data.synthetic_digits` for a synthetic spec
        (``images_per_writer``, ``test_fraction``, ...; ``num_writers``/``seed`` given in the
        spec win over defaults); other formats take none.

    Returns:
      The :class:`FederatedDataset`.

    Raises:
      DataError: if the path does not exist, its format is not one of those accepted, or a
        synthetic spec is malformed; :class:`~fl.data.DataFormatError` for malformed files.
    """
    if isinstance(spec, (list, tuple)):
        if len(spec) != 2:
            raise DataError(f"a list spec must be the two TFF .h5 files (train, test), "
                            f"got {spec!r}")
        _no_kwargs(kwargs, "TFF .h5")
        return load_tff_h5(spec[0], spec[1])
    text = os.fspath(spec)
    if text == "synthetic" or text.startswith("synthetic:"):
        return _synthetic(text, kwargs)
    path = Path(text)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory. Accepted: {ACCEPTED_FORMATS}")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".npz":
            _no_kwargs(kwargs, "npz")
            return load_npz(path)
        if suffix in (".h5", ".hdf5"):
            _no_kwargs(kwargs, "TFF .h5")
            return load_tff_h5(*_h5_pair(path))
        if suffix == ".json":
            _no_kwargs(kwargs, "LEAF json")
            return load_leaf_json(path)
        raise DataError(f"{path}: unknown data format {suffix or '(no suffix)'}. "
                        f"Accepted: {ACCEPTED_FORMATS}")
    h5 = _h5_in_dir(path)
    if h5 is not None:
        _no_kwargs(kwargs, "TFF .h5")
        return load_tff_h5(*h5)
    has_leaf = any((path / d).is_dir() for d in ("train", "test")) or any(path.glob("*.json"))
    if has_leaf:
        _no_kwargs(kwargs, "LEAF json")
        return load_leaf_json(path)
    npz = sorted(path.glob("*.npz"))
    if len(npz) == 1:
        _no_kwargs(kwargs, "npz")
        return load_npz(npz[0])
    raise DataError(f"{path}: directory holds no dataset this loader reads. "
                    f"Accepted: {ACCEPTED_FORMATS}")


def _no_kwargs(kwargs: dict, what: str) -> None:
    if kwargs:
        raise DataError(f"the {what} loader takes no options, got {sorted(kwargs)}")


def _synthetic(text: str, kwargs: dict) -> FederatedDataset:
    parts = text.split(":")[1:]
    if len(parts) > 2 or any(not p.strip().isdigit() for p in parts):
        raise DataError(f"bad synthetic spec {text!r}: expected 'synthetic', "
                        f"'synthetic:N_WRITERS' or 'synthetic:N_WRITERS:SEED' "
                        f"(non-negative integers)")
    options = dict(kwargs)
    if len(parts) >= 1:
        options["num_writers"] = int(parts[0])
    if len(parts) == 2:
        options["seed"] = int(parts[1])
    try:
        return synthetic_digits(**options)
    except TypeError as exc:
        raise DataError(f"bad options for the synthetic generator: {exc}") from exc


def _h5_pair(path: Path) -> tuple[Path, Path]:
    """The (train, test) pair for one of TFF's ``*_train.h5`` / ``*_test.h5`` files."""
    stem = path.stem
    for mine, other in (("_train", "_test"), ("_test", "_train")):
        if stem.endswith(mine):
            sibling = path.with_name(stem[: -len(mine)] + other + path.suffix)
            if not sibling.is_file():
                raise DataError(f"{path}: the matching {sibling.name} is not next to it")
            return (path, sibling) if mine == "_train" else (sibling, path)
    raise DataError(f"{path}: a TFF .h5 file name must end in _train.h5 or _test.h5")


def _h5_in_dir(path: Path) -> tuple[Path, Path] | None:
    """TFF's train/test pair in ``path``, preferring the digits-only files; None if absent."""
    trains = sorted(path.glob("*_train.h5"))
    if not trains:
        return None
    trains.sort(key=lambda p: (not p.name.startswith("fed_emnist_digitsonly"), p.name))
    return _h5_pair(trains[0])
