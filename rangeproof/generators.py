"""Nothing-up-my-sleeve generators: hash-to-curve with domain separation, cached.

Generator ``i`` of the list named ``label`` is ::

    G(label, i) = HashToPoint(GENERATORS
                              || u32(len(label)) || label || u64(i))

where ``HashToPoint`` is petlib's try-and-increment map on P-256 (iterate SHA-512 from the
input until the digest, reduced mod p, is the x-coordinate of a curve point; take the point with
odd y). Nobody, the code's author included, knows a discrete-log relation among the outputs, and
two different ``(label, i)`` never share an input. Because generator ``i`` depends only on
``(label, i)``, any prefix of a longer list is the same points.

Derivation costs about 40 us per point. Lists are cached in memory per label. A disk cache is
available on request (:func:`enable_disk_cache`); see its docstring for what loading checks.
"""
from __future__ import annotations

import hashlib
import operator
import os
import secrets
import threading
from pathlib import Path
from typing import Callable, Sequence

from petlib.bindings import _C as _openssl
from petlib.ec import EcPt

from .errors import EncodingError
from .labels import GENERATORS, PEDERSEN_BASES
from .group import POINT_BYTES, curve, point_from_bytes, point_to_bytes

__all__ = ["generators", "are_generators", "pedersen_bases", "enable_disk_cache", "disable_disk_cache",
           "on_memory_clear",
           "clear_memory_cache"]

_DOMAIN = GENERATORS
_PEDERSEN_LABEL = PEDERSEN_BASES
_FILE_MAGIC = b"SABREGEN1\n"
_SPOT_CHECKS = 32

_lock = threading.Lock()
_memory: dict[bytes, list[EcPt]] = {}
_disk_dir: Path | None = None
_pedersen: tuple[EcPt, EcPt] | None = None


def _hash_to_point(label: bytes, index: int) -> EcPt:
    msg = _DOMAIN + len(label).to_bytes(4, "big") + label + index.to_bytes(8, "big")
    try:
        return curve().hash_to_point(msg)
    finally:
        # try-and-increment leaves one OpenSSL error per x that is not on the curve in this
        # thread's error queue; left there, a later TLS call on the thread read them as its own
        # failure ("invalid compressed point")
        while _openssl.ERR_get_error():
            pass


def _derive(label: bytes, start: int, stop: int) -> list[EcPt]:
    return [_hash_to_point(label, i) for i in range(start, stop)]


def _cache_file(label: bytes) -> Path:
    assert _disk_dir is not None
    return _disk_dir / (hashlib.sha3_256(_DOMAIN + label).hexdigest() + ".gens")


def _load_from_disk(label: bytes) -> list[EcPt]:
    """Loads a cached list; returns [] when absent or when any check fails."""
    path = _cache_file(label)
    try:
        blob = path.read_bytes()
    except OSError:
        return []
    try:
        return _parse_cache(label, blob)
    except EncodingError:
        return []


def _parse_cache(label: bytes, blob: bytes) -> list[EcPt]:
    head = len(_FILE_MAGIC) + 4 + len(label) + 8
    if len(blob) < head + 32 or not blob.startswith(_FILE_MAGIC):
        raise EncodingError("generator cache: bad header")
    body, digest = blob[:-32], blob[-32:]
    if hashlib.sha3_256(body).digest() != digest:
        raise EncodingError("generator cache: digest mismatch")
    pos = len(_FILE_MAGIC)
    if int.from_bytes(body[pos:pos + 4], "big") != len(label) or \
            body[pos + 4:pos + 4 + len(label)] != label:
        raise EncodingError("generator cache: label mismatch")
    count = int.from_bytes(body[head - 8:head], "big")
    if count == 0:
        raise EncodingError("generator cache: no entries")
    if len(body) != head + count * POINT_BYTES:
        raise EncodingError("generator cache: length mismatch")
    pts = [point_from_bytes(body[head + i * POINT_BYTES: head + (i + 1) * POINT_BYTES])
           for i in range(count)]
    # Spot-check against fresh derivation: the first, the last and random indices.
    picks = {0, count - 1} | {secrets.randbelow(count) for _ in range(_SPOT_CHECKS)}
    for i in picks:
        if _hash_to_point(label, i) != pts[i]:
            raise EncodingError("generator cache: content does not match derivation")
    return pts


def _store_to_disk(label: bytes, pts: list[EcPt]) -> None:
    path = _cache_file(label)
    body = b"".join([_FILE_MAGIC, len(label).to_bytes(4, "big"), label,
                     len(pts).to_bytes(8, "big")] + [point_to_bytes(P) for P in pts])
    blob = body + hashlib.sha3_256(body).digest()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    except OSError:
        pass  # the disk cache is an optimisation only


def generators(label: bytes, n: int) -> list[EcPt]:
    """Returns the first ``n`` generators of the list named ``label``.

    Args:
      label: the list's name (domain separation: different labels give independent lists).
      n: how many generators, ``n >= 0``.

    Returns:
      A new list of ``n`` points; ``generators(label, k) == generators(label, n)[:k]``.

    Raises:
      ValueError: ``n`` is negative.
      TypeError: ``label`` is not bytes.
    """
    if not isinstance(label, (bytes, bytearray)):
        raise TypeError(f"generator label must be bytes, not {type(label).__name__}")
    if n < 0:
        raise ValueError(f"generators: n must be >= 0, got {n}")
    label = bytes(label)
    with _lock:
        have = _memory.get(label, [])
        if len(have) < n:
            if _disk_dir is not None and not have:
                have = _load_from_disk(label)
            if len(have) < n:
                have = have + _derive(label, len(have), n)
                if _disk_dir is not None:
                    _store_to_disk(label, have)
            _memory[label] = have
        return have[:n]


def are_generators(points: Sequence[EcPt], label: bytes, offset: int) -> bool:
    """Whether ``points`` are the very objects ``generators(label)[offset:offset + len(points)]``
    already held in memory (derives nothing; an identity check per point, about 30 ns)."""
    with _lock:
        have = _memory.get(bytes(label), [])
    end = offset + len(points)
    if offset < 0 or end > len(have):
        return False
    return all(map(operator.is_, points, have[offset:end]))


def pedersen_bases() -> tuple[EcPt, EcPt]:
    """Returns ``(B, B_blinding)``, the bases of scalar Pedersen commitments.

    Derived like :func:`generators` (indices 0 and 1 of a reserved label), so they are
    independent of every generator list.
    """
    global _pedersen
    if _pedersen is None:
        B, B_blinding = _derive(_PEDERSEN_LABEL, 0, 2)
        _pedersen = (B, B_blinding)
    return _pedersen


def enable_disk_cache(directory: str | os.PathLike | None = None) -> Path:
    """Also caches generator lists on disk (off by default).

    Loading a cached list checks a SHA3-256 digest over the file (catches corruption), decodes
    every point strictly (on the curve, canonical), and re-derives the first, the last and 32
    random points; any failure discards the file and derives afresh. The random spot checks catch
    a wrong or stale file, not a single targeted substitution: the cache directory must be as
    trusted as the installed code.

    Args:
      directory: where to keep the files; default ``$XDG_CACHE_HOME/sabre/generators`` (or
        ``~/.cache/sabre/generators``).

    Returns:
      The directory in use.
    """
    global _disk_dir
    if directory is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        directory = os.path.join(base, "sabre", "generators")
    with _lock:
        _disk_dir = Path(directory)
    return _disk_dir


def disable_disk_cache() -> None:
    """Stops using the disk cache (files already written stay)."""
    global _disk_dir
    with _lock:
        _disk_dir = None


_derived_caches: list[Callable[[], None]] = []


def on_memory_clear(forget: Callable[[], None]) -> None:
    """Registers ``forget``, called by :func:`clear_memory_cache`: for caches derived from the
    generators (the native code's affine tables)."""
    _derived_caches.append(forget)


def clear_memory_cache() -> None:
    """Forgets every generator list held in memory, and what was derived from them (tests and
    memory pressure)."""
    with _lock:
        _memory.clear()
    for forget in _derived_caches:
        forget()
