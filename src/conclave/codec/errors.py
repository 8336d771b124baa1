"""Errors of the wire codecs: all are bad remote input (DESIGN.md rule 8)."""

from conclave.core.errors import RemoteInputError


class CodecError(RemoteInputError):
    """Bytes from a peer do not decode to a valid message or frame."""


class FrameTooLargeError(CodecError):
    """A frame announces more bytes than the configured maximum."""


__all__ = ["CodecError", "FrameTooLargeError"]
