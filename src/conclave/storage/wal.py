"""Segmented WAL files: naming, reading (with the recovery rules) and directory fsync.

Segments are ``wal-<16-digit first record sequence number>.log``; replaying them in name order
replays every record in the order it was written. Layout of a segment: see `records`.

Recovery rules (applied by `scan_segment`):
- In the LAST segment, a final record that is incomplete (short header, short payload) or whose
  CRC does not match, with nothing after it, is a torn tail: a write the crash interrupted.
  It is reported as a `TornTail` (file, offset, bytes to drop) and the caller truncates it.
  A last segment shorter than its own header is torn at offset 0.
- Anything else that does not decode is corruption and raises `WalCorruptionError` naming the
  file and byte offset: a bad CRC with more bytes after it, any damage in a non-last segment,
  a bad header, an impossible length, an unknown type.
  Limit: a flipped length byte in the final stretch of the last segment that points past the
  end of the file looks exactly like a torn tail and is truncated as one.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from conclave.storage.disk import Disk, OsDisk
from conclave.storage.errors import WalCorruptionError
from conclave.storage.records import (
    MAX_RECORD_PAYLOAD,
    RECORD_HEADER,
    SEGMENT_HEADER,
    SEGMENT_MAGIC,
    SEGMENT_VERSION,
    Payload,
    PayloadError,
    RecordType,
    decode_payload,
    record_crc,
)

_SEGMENT_NAME: Final = re.compile(r"^wal-(\d{16})\.log$")
# The real file system, for callers that pass no `Disk` (the CLI, the tests, production).
OS_DISK: Final = OsDisk()


def segment_name(first_seq: int) -> str:
    """File name of the segment whose first record has sequence number `first_seq`."""
    return f"wal-{first_seq:016d}.log"


def list_segments(directory: Path, disk: Disk = OS_DISK) -> list[tuple[int, Path]]:
    """Every segment in `directory` as (first sequence number, path), in replay order."""
    found = []
    for name in disk.list_dir(directory):
        match = _SEGMENT_NAME.match(name)
        if match:
            found.append((int(match.group(1)), directory / name))
    return sorted(found)


def fsync_dir(directory: Path, disk: Disk = OS_DISK) -> None:
    """Make creations, renames and removals in `directory` durable."""
    disk.fsync_dir(directory)


@dataclass(frozen=True, slots=True)
class ScannedRecord:
    """One decoded record and where it sits in its segment."""

    offset: int
    size: int
    record_type: RecordType
    payload: Payload


@dataclass(frozen=True, slots=True)
class TornTail:
    """The interrupted final write of the last segment: bytes [offset, offset + dropped)."""

    file: Path
    offset: int
    dropped: int
    reason: str


@dataclass(frozen=True, slots=True)
class SegmentScan:
    """What a segment holds, read-only."""

    path: Path
    first_seq: int
    size: int
    records: tuple[ScannedRecord, ...]
    torn: TornTail | None


def _check_header(path: Path, data: bytes, first_seq: int) -> None:
    magic, version, seq = SEGMENT_HEADER.unpack_from(data)
    if magic != SEGMENT_MAGIC:
        raise WalCorruptionError(path, 0, f"bad segment magic {magic!r}")
    if version != SEGMENT_VERSION:
        raise WalCorruptionError(path, 0, f"unsupported segment version {version}")
    if seq != first_seq:
        raise WalCorruptionError(path, 0, f"header sequence {seq} does not match the name")


class _Torn(Exception):
    """Internal: the record at `offset` is incomplete or fails its CRC at the end of file."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


def _read_record(path: Path, data: bytes, offset: int) -> ScannedRecord:
    if len(data) - offset < RECORD_HEADER.size:
        raise _Torn(offset, "short record header")
    length, crc, type_byte = RECORD_HEADER.unpack_from(data, offset)
    if length > MAX_RECORD_PAYLOAD:
        raise WalCorruptionError(path, offset, f"impossible record length {length}")
    start = offset + RECORD_HEADER.size
    end = start + length
    if end > len(data):
        raise _Torn(offset, "short record payload")
    payload = data[start:end]
    if record_crc(type_byte, payload) != crc:
        if end == len(data):
            raise _Torn(offset, "CRC mismatch on the final record")
        raise WalCorruptionError(path, offset, "CRC mismatch followed by more data")
    try:
        item = decode_payload(type_byte, payload)
    except PayloadError as error:
        raise WalCorruptionError(path, offset, str(error)) from error
    return ScannedRecord(offset, end - offset, RecordType(type_byte), item)


def scan_segment(path: Path, first_seq: int, *, is_last: bool, disk: Disk = OS_DISK) -> SegmentScan:
    """Decode a whole segment; a torn tail is allowed only when `is_last`."""
    data = disk.read(path)
    if len(data) < SEGMENT_HEADER.size:
        if not is_last:
            raise WalCorruptionError(path, 0, "segment shorter than its header")
        torn = TornTail(path, 0, len(data), "short segment header")
        return SegmentScan(path, first_seq, len(data), (), torn)
    _check_header(path, data, first_seq)
    records: list[ScannedRecord] = []
    offset = SEGMENT_HEADER.size
    while offset < len(data):
        try:
            record = _read_record(path, data, offset)
        except _Torn as torn_at:
            if not is_last:
                raise WalCorruptionError(path, offset, torn_at.reason) from None
            torn = TornTail(path, offset, len(data) - offset, torn_at.reason)
            return SegmentScan(path, first_seq, len(data), tuple(records), torn)
        records.append(record)
        offset += record.size
    return SegmentScan(path, first_seq, len(data), tuple(records), None)


def scan_directory(directory: Path, disk: Disk = OS_DISK) -> list[SegmentScan]:
    """Scan every segment in replay order (raises on corruption; never writes)."""
    segments = list_segments(directory, disk)
    return [
        scan_segment(path, seq, is_last=i == len(segments) - 1, disk=disk)
        for i, (seq, path) in enumerate(segments)
    ]


__all__ = [
    "OS_DISK",
    "ScannedRecord",
    "SegmentScan",
    "TornTail",
    "fsync_dir",
    "list_segments",
    "scan_directory",
    "scan_segment",
    "segment_name",
]
