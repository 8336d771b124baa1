"""Length-prefixed frames for stream transports.

Layout: a 4-byte big-endian unsigned length, then that many payload bytes. A frame longer than
`frame_bytes_max` is refused as soon as its header arrives (before buffering its body), so a
peer cannot make a node allocate without bound. The decoder is incremental: feed it whatever
the socket returned and take the complete frames out.
"""

import struct
from collections.abc import Iterator
from typing import Final

from conclave.codec.errors import FrameTooLargeError

FRAME_BYTES_MAX_DEFAULT: Final = 16 * 1024 * 1024
_HEADER: Final = struct.Struct(">I")


def encode_frame(payload: bytes, frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT) -> bytes:
    """Prefix `payload` with its length; refuse payloads a receiver would refuse."""
    if len(payload) > frame_bytes_max:
        raise FrameTooLargeError(f"frame of {len(payload)} bytes exceeds {frame_bytes_max}")
    return _HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Splits a byte stream into frames."""

    def __init__(self, frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT) -> None:
        self._frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add received bytes; yield every frame now complete, in order.

        Raises FrameTooLargeError when a header announces an oversized frame; the stream is
        then unusable and the connection should be closed.
        """
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._buffer)
            if length > self._frame_bytes_max:
                raise FrameTooLargeError(
                    f"peer announced a frame of {length} bytes (max {self._frame_bytes_max})"
                )
            end = _HEADER.size + length
            if len(self._buffer) < end:
                return
            frame = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            yield frame


__all__ = ["FRAME_BYTES_MAX_DEFAULT", "FrameDecoder", "encode_frame"]
