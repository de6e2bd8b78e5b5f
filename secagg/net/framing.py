"""Length-prefixed frames: ``length u32 big-endian | payload`` (one encoded message per frame).

Every read names its bound (the step's :func:`secagg.protocol.max_frame_bytes`): a frame that
announces more is refused from its 4-byte header, before a byte of it is read or allocated.
Every read and write can carry a deadline: past it the call raises :class:`DeadlineExceeded`
and, for a write, aborts the connection (a peer that stops reading cannot hold the writer).
"""
from __future__ import annotations

import asyncio
import struct

from ..errors import OversizedMessage, SecAggError, TruncatedMessage

__all__ = ["ConnectionClosed", "ClosedInFrame", "DeadlineExceeded", "read_frame", "write_frame", "MAX_FRAME_BYTES"]

#: the largest frame either side ever handles: a masked input of 2^28 32-bit words plus headers
#: (a ceiling for the codec; each read passes the tighter bound of its step)
MAX_FRAME_BYTES = (1 << 30) + (1 << 20)


class ConnectionClosed(SecAggError):
    """The peer closed the connection at a frame boundary."""


class ClosedInFrame(TruncatedMessage):
    """The peer closed the connection inside a frame (a crash looks like this, as does a cut line)."""


class DeadlineExceeded(SecAggError):
    """A frame was not read, or not flushed to the peer, before the deadline."""


async def _with_deadline(aw, timeout: float | None, what: str):
    if timeout is None:
        return await aw
    try:
        return await asyncio.wait_for(aw, max(timeout, 0.0))
    except asyncio.TimeoutError:
        raise DeadlineExceeded(f"{what}: no progress within {timeout:.3g} s") from None


async def read_frame(reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME_BYTES, *,
                     timeout: float | None = None) -> bytes:
    """Read one frame.

    Args:
      max_bytes: the largest payload accepted.
      timeout: seconds to wait for the whole frame (``None``: no deadline).

    Raises:
      ConnectionClosed: clean end of stream before a frame.
      ClosedInFrame: the stream ended inside a frame (a :class:`TruncatedMessage`).
      OversizedMessage: the announced length exceeds ``max_bytes`` (nothing more is read).
      DeadlineExceeded: the frame did not arrive in time.
    """
    return await _with_deadline(_read(reader, min(max_bytes, MAX_FRAME_BYTES)), timeout, "read")


async def _read(reader: asyncio.StreamReader, max_bytes: int) -> bytes:
    try:
        head = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ConnectionClosed("peer closed the connection") from None
        raise ClosedInFrame("stream ended inside a frame header") from None
    (length,) = struct.unpack(">I", head)
    if length > max_bytes:
        raise OversizedMessage(f"frame of {length} bytes exceeds the limit of {max_bytes}")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ClosedInFrame("stream ended inside a frame") from None


async def write_frame(writer: asyncio.StreamWriter, payload: bytes, *, timeout: float | None = None) -> None:
    """Write one frame and wait until it is flushed.

    Args:
      timeout: seconds to wait for the flush (``None``: no deadline). Past it the connection is
        aborted (its buffered data dropped) and :class:`DeadlineExceeded` raised.

    Raises:
      OversizedMessage: the payload exceeds :data:`MAX_FRAME_BYTES`.
      DeadlineExceeded: the peer did not take the frame in time.
    """
    if len(payload) > MAX_FRAME_BYTES:
        raise OversizedMessage("frame too large")
    writer.write(struct.pack(">I", len(payload)) + payload)
    try:
        await _with_deadline(writer.drain(), timeout, "write")
    except DeadlineExceeded:
        writer.transport.abort()
        raise
