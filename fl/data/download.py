"""Fetching TFF's federated EMNIST archive (``fed_emnist_digitsonly.tar.bz2``) into a cache.

The URL and SHA-256 are those in TensorFlow Federated's
``tensorflow_federated/python/simulation/datasets/emnist.py`` (``load_data``), which passes
them to ``tf.keras.utils.get_file``. The archive holds ``<prefix>_train.h5`` and
``<prefix>_test.h5``; read them with :func:`fl.data.load_tff_h5`.

Offline, :func:`download_tff_emnist` fails at once (one connection attempt with a short
timeout, no retries) with :class:`~fl.data.DataDownloadError` telling how to fetch the file by
hand.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .errors import DataDownloadError

__all__ = ["download_tff_emnist", "default_cache_dir", "TFF_DIGITS_URL", "TFF_DIGITS_SHA256",
           "TFF_ALL_URL", "TFF_ALL_SHA256"]

_BASE_URL = "https://storage.googleapis.com/tff-datasets-public/"
#: TFF's digits-only archive (3,383 writers, labels 0-9)
TFF_DIGITS_URL = _BASE_URL + "fed_emnist_digitsonly.tar.bz2"
#: its SHA-256, as given in TFF's ``emnist.py``
TFF_DIGITS_SHA256 = "55333deb8546765427c385710ca5e7301e16f4ed8b60c1dc5ae224b42bd5b14b"
#: TFF's full archive (3,400 writers, 62 classes; the loaders keep the digits only)
TFF_ALL_URL = _BASE_URL + "fed_emnist.tar.bz2"
#: its SHA-256, as given in TFF's ``emnist.py``
TFF_ALL_SHA256 = "fe1ed5a502cea3a952eb105920bff8cffb32836b5173cb18a57a32c3606f3ea0"

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/sabre`` if set, else ``~/.cache/sabre``."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "sabre"


def download_tff_emnist(
    cache_dir: str | os.PathLike | None = None,
    only_digits: bool = True,
    timeout: float = 10.0,
    *,
    url: str | None = None,
    sha256: str | None = None,
) -> Path:
    """Downloads, verifies and extracts TFF's federated EMNIST archive, once.

    If both ``.h5`` files are already in the cache, nothing is fetched. If the archive is in
    the cache (put there by hand, say) and its hash matches, it is extracted without network.

    Args:
      cache_dir: where to keep the archive and the ``.h5`` files; default
        :func:`default_cache_dir`.
      only_digits: ``True`` for ``fed_emnist_digitsonly`` (the paper's data), ``False`` for the
        62-class ``fed_emnist``.
      timeout: seconds for the connection and for each read; there is a single attempt.
      url: override the download URL (mirrors, tests); the hash check still applies.
      sha256: override the expected SHA-256 (only together with a mirror of another file).

    Returns:
      The directory holding ``<prefix>_train.h5`` and ``<prefix>_test.h5``; pass it to
      :func:`fl.data.load_dataset`.

    Raises:
      DataDownloadError: if the download fails, the hash does not match (the partial file is
        deleted) or the archive lacks the expected members.
    """
    prefix = "fed_emnist_digitsonly" if only_digits else "fed_emnist"
    url = url or (TFF_DIGITS_URL if only_digits else TFF_ALL_URL)
    expected = (sha256 or (TFF_DIGITS_SHA256 if only_digits else TFF_ALL_SHA256)).lower()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    members = (f"{prefix}_train.h5", f"{prefix}_test.h5")
    if all((cache / m).is_file() for m in members):
        return cache
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDownloadError(f"cannot create cache directory {cache}: {exc}") from exc
    archive = cache / f"{prefix}.tar.bz2"
    if not (archive.is_file() and _sha256(archive) == expected):
        _fetch(url, archive, expected, timeout)
    _extract(archive, members, cache)
    return cache


def _manual_hint(url: str, archive: Path) -> str:
    return (f"Download {url} by hand, then either put it at {archive} "
            f"or extract it and pass the directory holding the two .h5 files (or the files "
            f"themselves) as the data path; or use 'synthetic' or an .npz file instead.")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _resolve_within(url: str, timeout: float, archive: Path) -> None:
    """Looks the URL's host up in a helper thread, so that a resolver that hangs (offline
    machines) costs at most ``timeout`` seconds; ``urlopen``'s own timeout does not cover
    name resolution."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DataDownloadError(f"not an http(s) URL: {url!r}")
    outcome: dict[str, BaseException | None] = {}

    def lookup() -> None:
        try:
            socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
            outcome["error"] = None
        except OSError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=lookup, name="sabre-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    if "error" not in outcome:
        raise DataDownloadError(f"could not resolve {parts.hostname} within {timeout:g} s "
                                f"(offline?). {_manual_hint(url, archive)}")
    if outcome["error"] is not None:
        raise DataDownloadError(f"could not resolve {parts.hostname}: {outcome['error']}. "
                                f"{_manual_hint(url, archive)}") from outcome["error"]


def _fetch(url: str, archive: Path, expected: str, timeout: float) -> None:
    _resolve_within(url, timeout, archive)
    fd, tmp_name = tempfile.mkstemp(prefix=archive.name + ".", suffix=".part", dir=archive.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DataDownloadError(
                f"could not download {url}: {exc}. {_manual_hint(url, archive)}") from exc
        actual = digest.hexdigest()
        if actual != expected:
            raise DataDownloadError(
                f"{url}: SHA-256 mismatch (got {actual}, expected {expected}); the download "
                f"was discarded. {_manual_hint(url, archive)}")
        os.replace(tmp, archive)
    finally:
        tmp.unlink(missing_ok=True)


def _extract(archive: Path, members: tuple[str, ...], dest: Path) -> None:
    """Extracts exactly ``members`` (matched by base name, regular files only) from
    ``archive`` into ``dest`` in one pass over the compressed stream. Nothing else in the
    archive is written, so member paths cannot escape ``dest``."""
    written: list[str] = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for info in tar:
                name = os.path.basename(info.name)
                if name not in members or name in written or not info.isfile():
                    continue
                src = tar.extractfile(info)
                if src is None:
                    raise DataDownloadError(f"{archive}: cannot read member {info.name}")
                fd, tmp_name = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=dest)
                try:
                    with os.fdopen(fd, "wb") as out, src:
                        shutil.copyfileobj(src, out, _CHUNK)
                    os.replace(tmp_name, dest / name)
                finally:
                    Path(tmp_name).unlink(missing_ok=True)
                written.append(name)
        missing = [m for m in members if m not in written]
        if missing:
            raise DataDownloadError(f"{archive}: archive lacks {missing}")
    except BaseException as exc:
        for name in written:  # leave no half-set behind: the cache check wants both files
            (dest / name).unlink(missing_ok=True)
        if isinstance(exc, (tarfile.TarError, OSError, EOFError)):
            raise DataDownloadError(f"{archive}: cannot extract ({exc})") from exc
        raise
