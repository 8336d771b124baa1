"""Wire codecs: versioned envelopes with a stable tag per message type; never pickle.

`encode_raft_message` / `decode_raft_message` turn Raft messages into bytes and back;
`encode_frame` and `FrameDecoder` add and strip the length prefix of the peer transport.
Every decoding error is a `CodecError` (a `RemoteInputError`): the caller drops the input
and, for a stream, closes that connection only.
"""

from conclave.codec.errors import CodecError, FrameTooLargeError
from conclave.codec.frames import FRAME_BYTES_MAX_DEFAULT, FrameDecoder, encode_frame
from conclave.codec.raft_codec import WIRE_VERSION, decode_raft_message, encode_raft_message

__all__ = [
    "FRAME_BYTES_MAX_DEFAULT",
    "WIRE_VERSION",
    "CodecError",
    "FrameDecoder",
    "FrameTooLargeError",
    "decode_raft_message",
    "encode_frame",
    "encode_raft_message",
]
