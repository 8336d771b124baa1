"""The wire form of Raft messages: a msgpack array `[version, tag, field values...]`.

Rules:
- The first element is `WIRE_VERSION`; a message of another version is refused (a future
  version adds a decoder branch, never reinterprets an old layout).
- The second is the message class's stable `TAG`; the fields follow in the schema's order.
  Field order in the schema is part of the wire format: append, never reorder.
- Decoding validates every field's type and range (ids >= 1, terms and indexes >= 0, bools,
  bytes) and raises `CodecError` otherwise: remote input never crashes a node.
- Entries are `[term, index, kind, data]`; snapshots `[index, term, voters, learners, data]`.
"""

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from conclave.codec.errors import CodecError
from conclave.consensus.raft import (
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    RaftMessage,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from conclave.core.effects import ConfState, Entry, EntryKind, Snapshot, SnapshotMeta

WIRE_VERSION: Final = 1
ENTRY_KIND_CODES: Final = {EntryKind.NORMAL: 0, EntryKind.NOOP: 1, EntryKind.CONF_CHANGE: 2}
_KIND_BY_CODE: Final = {code: kind for kind, code in ENTRY_KIND_CODES.items()}

Decoder = Callable[[object], object]


def _nat(value: object) -> int:
    if type(value) is not int or value < 0:
        raise CodecError(f"expected a non-negative integer, got {value!r:.40}")
    return value


def _node(value: object) -> int:
    node = _nat(value)
    if node == 0:
        raise CodecError("node id 0 is not a node")
    return node


def _bool(value: object) -> bool:
    if type(value) is not bool:
        raise CodecError(f"expected a boolean, got {value!r:.40}")
    return value


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise CodecError(f"expected bytes, got {type(value).__name__}")
    return value


def _seq(value: object, length: int | None = None) -> Sequence[object]:
    if not isinstance(value, list):
        raise CodecError(f"expected an array, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise CodecError(f"expected {length} elements, got {len(value)}")
    return value


def _encode_entry(entry: Entry) -> list[object]:
    return [entry.term, entry.index, ENTRY_KIND_CODES[entry.kind], entry.data]


def _decode_entry(value: object) -> Entry:
    term, index, kind, data = _seq(value, 4)
    code = _nat(kind)
    if code not in _KIND_BY_CODE:
        raise CodecError(f"unknown entry kind {code}")
    return Entry(term=_nat(term), index=_nat(index), kind=_KIND_BY_CODE[code], data=_bytes(data))


def _encode_entries(entries: object) -> list[object]:
    assert isinstance(entries, tuple)
    return [_encode_entry(e) for e in entries]


def _decode_entries(value: object) -> tuple[Entry, ...]:
    entries = tuple(_decode_entry(item) for item in _seq(value))
    for before, after in itertools.pairwise(entries):
        if after.index != before.index + 1:
            raise CodecError("entries of one message must have consecutive indexes")
    return entries


def _encode_snapshot(snapshot: object) -> list[object]:
    assert isinstance(snapshot, Snapshot)
    meta = snapshot.meta
    return [meta.index, meta.term, list(meta.conf.voters), list(meta.conf.learners), snapshot.data]


def _decode_snapshot(value: object) -> Snapshot:
    index, term, voters, learners, data = _seq(value, 5)
    conf = ConfState(
        voters=tuple(_node(v) for v in _seq(voters)),
        learners=tuple(_node(v) for v in _seq(learners)),
    )
    meta = SnapshotMeta(index=_nat(index), term=_nat(term), conf=conf)
    return Snapshot(meta=meta, data=_bytes(data))


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    decode: Decoder
    encode: Callable[[object], object] = lambda value: value


def _fields(*pairs: tuple[str, Decoder]) -> tuple[_Field, ...]:
    return tuple(_Field(name, decode) for name, decode in pairs)


_HEAD = (("src", _node), ("dst", _node), ("term", _nat))
_ENTRIES_FIELD = _Field("entries", _decode_entries, _encode_entries)
_SNAPSHOT_FIELD = _Field("snapshot", _decode_snapshot, _encode_snapshot)

# TAG -> (class, fields in wire order). Append fields at the end only.
SCHEMAS: Final[dict[str, tuple[type[RaftMessage], tuple[_Field, ...]]]] = {
    RequestVote.TAG: (
        RequestVote,
        _fields(
            *_HEAD,
            ("pre_vote", _bool),
            ("last_log_index", _nat),
            ("last_log_term", _nat),
            ("transfer", _bool),
        ),
    ),
    RequestVoteResponse.TAG: (
        RequestVoteResponse,
        _fields(*_HEAD, ("pre_vote", _bool), ("granted", _bool)),
    ),
    AppendEntries.TAG: (
        AppendEntries,
        (
            *_fields(*_HEAD, ("prev_index", _nat), ("prev_term", _nat)),
            _ENTRIES_FIELD,
            *_fields(("commit", _nat), ("read_seq", _nat)),
        ),
    ),
    AppendEntriesResponse.TAG: (
        AppendEntriesResponse,
        _fields(
            *_HEAD,
            ("success", _bool),
            ("match_index", _nat),
            ("conflict_index", _nat),
            ("conflict_term", _nat),
            ("read_seq", _nat),
        ),
    ),
    InstallSnapshot.TAG: (InstallSnapshot, (*_fields(*_HEAD), _SNAPSHOT_FIELD)),
    InstallSnapshotResponse.TAG: (
        InstallSnapshotResponse,
        _fields(*_HEAD, ("match_index", _nat)),
    ),
    TimeoutNow.TAG: (TimeoutNow, _fields(*_HEAD)),
}


def encode_raft_message(message: RaftMessage) -> bytes:
    """The wire bytes of one Raft message."""
    _, fields = SCHEMAS[message.TAG]
    values = [field.encode(getattr(message, field.name)) for field in fields]
    packed: bytes = msgpack.packb([WIRE_VERSION, message.TAG, *values], use_bin_type=True)
    return packed


def decode_raft_message(data: bytes) -> RaftMessage:
    """Decode and validate one Raft message; raise CodecError for anything invalid."""
    try:
        decoded = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, msgpack.UnpackException, TypeError) as error:
        raise CodecError(f"not a msgpack message: {error}") from error
    items = _seq(decoded)
    if len(items) < 2:
        raise CodecError("a message needs a version and a tag")
    version, tag, *values = items
    if version != WIRE_VERSION:
        raise CodecError(f"unsupported wire version {version!r:.20}")
    if not isinstance(tag, str) or tag not in SCHEMAS:
        raise CodecError(f"unknown message tag {tag!r:.40}")
    cls, fields = SCHEMAS[tag]
    if len(values) != len(fields):
        raise CodecError(f"{tag}: expected {len(fields)} fields, got {len(values)}")
    kwargs: dict[str, Any] = {
        field.name: field.decode(value) for field, value in zip(fields, values, strict=True)
    }
    return cls(**kwargs)


__all__ = ["SCHEMAS", "WIRE_VERSION", "decode_raft_message", "encode_raft_message"]
