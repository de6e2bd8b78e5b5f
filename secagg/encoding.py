"""The wire codec's building blocks: a bounded reader and a writer for the canonical encoding.

Every message (see :mod:`secagg.messages` for the layouts) is::

    magic "SAG" | version u8 = 2 | type u8 | round_id 16 bytes | party u16 | body

All integers are big-endian and unsigned, except vector words (little-endian, so that numpy
reads them without a copy). Lists carry a u16 or u32 count that is checked against the codec's
limits *before* anything is read or allocated; the input must end exactly where the message
does. Decoding errors are :class:`~secagg.errors.DecodeError` subclasses.
"""
from __future__ import annotations

import struct

import numpy as np

from .errors import MalformedMessage, NonCanonicalEncoding, OversizedMessage, TruncatedMessage

__all__ = ["MAGIC", "VERSION", "HEADER_BYTES", "Writer", "Reader"]

MAGIC = b"SAG"
VERSION = 2
#: magic (3) + version (1) + type (1) + round id (16) + party (2)
HEADER_BYTES = 23


class Writer:
    """Accumulates the parts of one encoding."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, v: int) -> "Writer":
        self._parts.append(struct.pack(">B", v))
        return self

    def u16(self, v: int) -> "Writer":
        self._parts.append(struct.pack(">H", v))
        return self

    def u32(self, v: int) -> "Writer":
        self._parts.append(struct.pack(">I", v))
        return self

    def raw(self, b: bytes) -> "Writer":
        self._parts.append(bytes(b))
        return self

    def uint(self, v: int, nbytes: int) -> "Writer":
        self._parts.append(v.to_bytes(nbytes, "big"))
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads fields from ``data``; every method raises a DecodeError subclass on bad input."""

    def __init__(self, data: bytes | bytearray | memoryview):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise MalformedMessage(f"expected bytes, got {type(data).__name__}")
        self._data = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, n: int) -> memoryview:
        if n > self.remaining:
            raise TruncatedMessage(f"need {n} more byte(s) at offset {self._pos}, {self.remaining} left")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        return struct.unpack(">H", self._take(2))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self._take(4))[0]

    def raw(self, n: int) -> bytes:
        return bytes(self._take(n))

    def uint(self, nbytes: int, bound: int, what: str) -> int:
        """A big-endian integer of ``nbytes`` that must be below ``bound``."""
        v = int.from_bytes(self._take(nbytes), "big")
        if v >= bound:
            raise NonCanonicalEncoding(f"{what}: value out of range")
        return v

    def count(self, width: int, limit: int, item_bytes: int, what: str) -> int:
        """A u16/u32 count, checked against ``limit`` and the bytes left before anything is read."""
        n = self.u16() if width == 2 else self.u32()
        if n > limit:
            raise OversizedMessage(f"{what}: count {n} exceeds the limit {limit}")
        if n * item_bytes > self.remaining:
            raise TruncatedMessage(f"{what}: {n} item(s) announced, input too short")
        return n

    def ids(self, limit: int, what: str) -> tuple[int, ...]:
        """A u16-counted list of client ids, strictly increasing, each in 1..65535."""
        n = self.count(2, limit, 2, what)
        out = tuple(struct.unpack(f">{n}H", self._take(2 * n))) if n else ()
        check_ids(out, what)
        return out

    def words(self, count: int, dtype: np.dtype, mask_bits: int) -> np.ndarray:
        """``count`` little-endian words, each below 2^mask_bits (read-only view, no copy)."""
        buf = self._take(count * dtype.itemsize)
        arr = np.frombuffer(buf, dtype=dtype, count=count)
        if mask_bits < dtype.itemsize * 8 and count and int(arr.max()) >> mask_bits:
            raise NonCanonicalEncoding(f"vector: a coordinate is not below 2^{mask_bits}")
        return arr

    def finish(self) -> None:
        if self.remaining:
            raise OversizedMessage(f"{self.remaining} trailing byte(s) after the message")


def check_ids(ids: tuple[int, ...], what: str) -> None:
    """Ids must be strictly increasing and non-zero (the canonical order)."""
    prev = 0
    for i in ids:
        if i <= prev:
            raise NonCanonicalEncoding(f"{what}: ids must be non-zero and strictly increasing")
        prev = i
