"""Length-prefixed frames: ``length u32 big-endian | payload`` (one encoded message per frame)."""
from __future__ import annotations

import asyncio
import struct

from ..errors import OversizedMessage, SecAggError, TruncatedMessage

__all__ = ["ConnectionClosed", "read_frame", "write_frame", "MAX_FRAME_BYTES"]

#: the largest frame accepted: a masked input of 2^28 32-bit words plus headers
MAX_FRAME_BYTES = (1 << 30) + (1 << 20)


class ConnectionClosed(SecAggError):
    """The peer closed the connection at a frame boundary."""


async def read_frame(reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Read one frame.

    Raises:
      ConnectionClosed: clean end of stream before a frame.
      TruncatedMessage: the stream ended inside a frame.
      OversizedMessage: the announced length exceeds ``max_bytes`` (nothing more is read).
    """
    try:
        head = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ConnectionClosed("peer closed the connection") from None
        raise TruncatedMessage("stream ended inside a frame header") from None
    (length,) = struct.unpack(">I", head)
    if length > max_bytes:
        raise OversizedMessage(f"frame of {length} bytes exceeds the limit of {max_bytes}")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise TruncatedMessage("stream ended inside a frame") from None


async def write_frame(writer: asyncio.StreamWriter, payload: bytes) -> None:
    """Write one frame and wait until it is flushed."""
    if len(payload) > MAX_FRAME_BYTES:
        raise OversizedMessage("frame too large")
    writer.write(struct.pack(">I", len(payload)) + payload)
    await writer.drain()
