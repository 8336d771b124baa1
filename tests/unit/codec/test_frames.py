"""Length-prefixed frames: any chunking of the stream yields the same frames; oversize refused."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conclave.codec import FrameDecoder, FrameTooLargeError, encode_frame


@given(st.lists(st.binary(max_size=100), max_size=10), st.data())
def test_frames_survive_any_chunking(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = FrameDecoder()
    received: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        received.extend(decoder.feed(stream[start:cut]))
        start = cut
    assert received == payloads
    assert decoder.buffered_bytes == 0


def test_an_oversized_frame_is_refused_from_its_header_alone() -> None:
    decoder = FrameDecoder(frame_bytes_max=10)
    header_only = (11).to_bytes(4, "big")
    with pytest.raises(FrameTooLargeError, match="11 bytes"):
        list(decoder.feed(header_only))


def test_the_sender_refuses_to_encode_an_oversized_frame() -> None:
    with pytest.raises(FrameTooLargeError):
        encode_frame(b"x" * 11, frame_bytes_max=10)
