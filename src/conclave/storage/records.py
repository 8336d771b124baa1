"""WAL record framing and payload codec: explicit little-endian binary layouts, never pickle.

Segment file header (16 bytes): magic ``b"CNWL"``, version u8 (1), 3 reserved zero bytes,
u64 sequence number of the segment's first record.

Record: ``u32 length`` of the payload, ``u32 crc`` = ``zlib.crc32(type byte + payload)``,
``u8 type``, then ``length`` payload bytes. (zlib.crc32 is the plain CRC-32, not CRC-32C: it is
in the standard library and is ample for detecting torn and flipped bytes.)

Payloads (all integers unsigned little-endian):
- HARD_STATE (1): u64 term, u64 vote, u64 commit.
- ENTRY (2): u64 term, u64 index, u8 kind (0 normal, 1 noop, 2 conf change), then the data.
- SNAPSHOT_MARKER (3): snapshot meta (see `encode_meta`); the image lives in a snapshot file.
"""

import struct
import zlib
from enum import IntEnum
from typing import Final

from conclave.core.effects import ConfState, Entry, EntryKind, HardState, SnapshotMeta

SEGMENT_MAGIC: Final = b"CNWL"
SEGMENT_VERSION: Final = 1
SEGMENT_HEADER: Final = struct.Struct("<4sB3xQ")
RECORD_HEADER: Final = struct.Struct("<IIB")
# A length above this cannot have been written by us: treat it as damage, never allocate it.
MAX_RECORD_PAYLOAD: Final = 1 << 30

_HARD_STATE: Final = struct.Struct("<QQQ")
_ENTRY: Final = struct.Struct("<QQB")
_META_HEAD: Final = struct.Struct("<QQII")

_KIND_CODES: Final = {EntryKind.NORMAL: 0, EntryKind.NOOP: 1, EntryKind.CONF_CHANGE: 2}
_KINDS_BY_CODE: Final = {code: kind for kind, code in _KIND_CODES.items()}


class RecordType(IntEnum):
    """The type byte of a WAL record."""

    HARD_STATE = 1
    ENTRY = 2
    SNAPSHOT_MARKER = 3


Payload = HardState | Entry | SnapshotMeta


class PayloadError(ValueError):
    """A payload whose CRC matched but whose layout is wrong (a bug or a foreign file)."""


def encode_segment_header(first_seq: int) -> bytes:
    """The 16-byte header that starts every segment file."""
    return SEGMENT_HEADER.pack(SEGMENT_MAGIC, SEGMENT_VERSION, first_seq)


def record_crc(record_type: int, payload: bytes) -> int:
    """CRC over the type byte and the payload, so a flipped type is caught too."""
    return zlib.crc32(payload, zlib.crc32(bytes([record_type])))


def frame(record_type: RecordType, payload: bytes) -> bytes:
    """One framed record: length, crc, type, payload."""
    crc = record_crc(record_type, payload)
    return RECORD_HEADER.pack(len(payload), crc, record_type) + payload


def encode_hard_state(hard_state: HardState) -> bytes:
    """HARD_STATE payload."""
    return _HARD_STATE.pack(hard_state.term, hard_state.vote, hard_state.commit)


def encode_entry(entry: Entry) -> bytes:
    """ENTRY payload."""
    return _ENTRY.pack(entry.term, entry.index, _KIND_CODES[entry.kind]) + entry.data


def encode_meta(meta: SnapshotMeta) -> bytes:
    """Snapshot meta: u64 index, u64 term, u32 #voters, u32 #learners, then u64 node ids."""
    voters, learners = meta.conf.voters, meta.conf.learners
    ids = struct.pack(f"<{len(voters) + len(learners)}Q", *voters, *learners)
    return _META_HEAD.pack(meta.index, meta.term, len(voters), len(learners)) + ids


def encode_payload(item: Payload) -> bytes:
    """A framed record for any payload."""
    if isinstance(item, HardState):
        return frame(RecordType.HARD_STATE, encode_hard_state(item))
    if isinstance(item, Entry):
        return frame(RecordType.ENTRY, encode_entry(item))
    return frame(RecordType.SNAPSHOT_MARKER, encode_meta(item))


def decode_hard_state(payload: bytes) -> HardState:
    """Inverse of `encode_hard_state`."""
    if len(payload) != _HARD_STATE.size:
        raise PayloadError(f"hard state payload of {len(payload)} bytes")
    term, vote, commit = _HARD_STATE.unpack(payload)
    return HardState(term=term, vote=vote, commit=commit)


def decode_entry(payload: bytes) -> Entry:
    """Inverse of `encode_entry`."""
    if len(payload) < _ENTRY.size:
        raise PayloadError(f"entry payload of {len(payload)} bytes")
    term, index, code = _ENTRY.unpack_from(payload)
    if code not in _KINDS_BY_CODE:
        raise PayloadError(f"unknown entry kind {code}")
    data = payload[_ENTRY.size :]
    return Entry(term=term, index=index, kind=_KINDS_BY_CODE[code], data=data)


def decode_meta(payload: bytes) -> tuple[SnapshotMeta, int]:
    """Inverse of `encode_meta`; also returns how many bytes it used."""
    if len(payload) < _META_HEAD.size:
        raise PayloadError(f"snapshot meta of {len(payload)} bytes")
    index, term, n_voters, n_learners = _META_HEAD.unpack_from(payload)
    end = _META_HEAD.size + 8 * (n_voters + n_learners)
    if len(payload) < end:
        raise PayloadError("snapshot meta shorter than its node lists")
    ids = struct.unpack_from(f"<{n_voters + n_learners}Q", payload, _META_HEAD.size)
    conf = ConfState(voters=tuple(ids[:n_voters]), learners=tuple(ids[n_voters:]))
    return SnapshotMeta(index=index, term=term, conf=conf), end


def decode_payload(record_type: int, payload: bytes) -> Payload:
    """Decode a payload whose CRC already matched."""
    if record_type == RecordType.HARD_STATE:
        return decode_hard_state(payload)
    if record_type == RecordType.ENTRY:
        return decode_entry(payload)
    if record_type == RecordType.SNAPSHOT_MARKER:
        meta, used = decode_meta(payload)
        if used != len(payload):
            raise PayloadError("trailing bytes after snapshot meta")
        return meta
    raise PayloadError(f"unknown record type {record_type}")


__all__ = [
    "MAX_RECORD_PAYLOAD",
    "RECORD_HEADER",
    "SEGMENT_HEADER",
    "SEGMENT_MAGIC",
    "SEGMENT_VERSION",
    "Payload",
    "PayloadError",
    "RecordType",
    "decode_entry",
    "decode_hard_state",
    "decode_meta",
    "decode_payload",
    "encode_entry",
    "encode_hard_state",
    "encode_meta",
    "encode_payload",
    "encode_segment_header",
    "frame",
    "record_crc",
]
