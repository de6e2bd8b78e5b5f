"""Exceptions of the data layer: one base class, :class:`DataError`, and specific subclasses."""
from __future__ import annotations

from rangeproof.blame import SabreError

__all__ = ["DataError", "DataFormatError", "DataDownloadError"]


class DataError(SabreError):
    """Base class of every error raised by :mod:`fl.data`.

    Raised directly for a path that does not exist or holds no format :mod:`fl.data` can read,
    and for arrays that break :class:`~fl.data.FederatedDataset`'s invariants.
    """


class DataFormatError(DataError):
    """A file of a known format is malformed: missing keys, wrong shapes or dtypes, bad values."""


class DataDownloadError(DataError):
    """A dataset could not be downloaded, or the download did not match its expected hash."""
