"""Snapshot files: ``snap-<16-digit index>-<16-digit term>.snap``, one per snapshot.

Layout: header ``b"CNSP"``, version u8 (1), 3 reserved bytes, u32 crc = ``zlib.crc32(body)``,
u64 body length; body = u32 meta length, snapshot meta (as in a SNAPSHOT_MARKER record),
then the state-machine image.

Durability: written to ``<name>.tmp``, fsynced, renamed over the final name, then the directory
is fsynced; only after that does the WAL get a SNAPSHOT_MARKER pointing at it. So a marker
never points at a half-written file, and a ``.tmp`` leftover is always garbage from a crash.
A file that fails its CRC is refused (`SnapshotCorruptionError`); there is no fall-back to an
older snapshot, because older ones are deleted once a newer marker is durable.
"""

import re
import struct
import zlib
from pathlib import Path
from typing import Final

from conclave.core.effects import Snapshot
from conclave.storage.disk import Disk
from conclave.storage.errors import SnapshotCorruptionError
from conclave.storage.records import PayloadError, decode_meta, encode_meta
from conclave.storage.wal import OS_DISK

SNAPSHOT_MAGIC: Final = b"CNSP"
SNAPSHOT_VERSION: Final = 1
_HEADER: Final = struct.Struct("<4sB3xIQ")
_META_LEN: Final = struct.Struct("<I")
_NAME: Final = re.compile(r"^snap-(\d{16})-(\d{16})\.snap$")
TEMP_SUFFIX: Final = ".tmp"


def snapshot_name(index: int, term: int) -> str:
    """File name of the snapshot at (index, term)."""
    return f"snap-{index:016d}-{term:016d}.snap"


def list_snapshots(directory: Path, disk: Disk = OS_DISK) -> list[tuple[int, int, Path]]:
    """Every snapshot file as (index, term, path), oldest first."""
    found = []
    for name in disk.list_dir(directory):
        match = _NAME.match(name)
        if match:
            found.append((int(match.group(1)), int(match.group(2)), directory / name))
    return sorted(found)


def encode_snapshot_file(snapshot: Snapshot) -> bytes:
    """The full contents of a snapshot file."""
    meta = encode_meta(snapshot.meta)
    body = _META_LEN.pack(len(meta)) + meta + snapshot.data
    return _HEADER.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, zlib.crc32(body), len(body)) + body


def write_snapshot_file(directory: Path, snapshot: Snapshot, disk: Disk = OS_DISK) -> Path:
    """Write durably via temp file + fsync + rename + directory fsync."""
    final = directory / snapshot_name(snapshot.meta.index, snapshot.meta.term)
    temp = final.with_name(final.name + TEMP_SUFFIX)
    stream = disk.create(temp, exclusive=False)
    try:
        stream.write(encode_snapshot_file(snapshot))
        stream.fsync()  # the bytes first: a durable name must never point at a torn file
    finally:
        stream.close()
    disk.rename(temp, final)
    disk.fsync_dir(directory)
    return final


def _body(path: Path, data: bytes) -> bytes:
    if len(data) < _HEADER.size:
        raise SnapshotCorruptionError(path, "shorter than its header")
    magic, version, crc, length = _HEADER.unpack_from(data)
    if magic != SNAPSHOT_MAGIC or version != SNAPSHOT_VERSION:
        raise SnapshotCorruptionError(path, f"bad magic/version {magic!r}/{version}")
    body = data[_HEADER.size :]
    if len(body) != length:
        raise SnapshotCorruptionError(path, f"body is {len(body)} bytes, header says {length}")
    if zlib.crc32(body) != crc:
        raise SnapshotCorruptionError(path, "CRC mismatch")
    return body


def read_snapshot_file(path: Path, disk: Disk = OS_DISK) -> Snapshot:
    """Read and verify one snapshot file."""
    try:
        data = disk.read(path)
    except FileNotFoundError:
        raise SnapshotCorruptionError(path, "missing") from None
    body = _body(path, data)
    (meta_len,) = _META_LEN.unpack_from(body)
    start = _META_LEN.size
    try:
        meta, used = decode_meta(body[start : start + meta_len])
    except PayloadError as error:
        raise SnapshotCorruptionError(path, str(error)) from error
    if used != meta_len:
        raise SnapshotCorruptionError(path, "meta length mismatch")
    return Snapshot(meta=meta, data=body[start + meta_len :])


def remove_temp_files(directory: Path, disk: Disk = OS_DISK) -> list[Path]:
    """Delete leftovers of interrupted snapshot writes; returns what was removed."""
    names = sorted(name for name in disk.list_dir(directory) if name.endswith(TEMP_SUFFIX))
    removed = [directory / name for name in names]
    for path in removed:
        disk.remove(path)
    return removed


__all__ = [
    "SNAPSHOT_MAGIC",
    "SNAPSHOT_VERSION",
    "TEMP_SUFFIX",
    "encode_snapshot_file",
    "list_snapshots",
    "read_snapshot_file",
    "remove_temp_files",
    "snapshot_name",
    "write_snapshot_file",
]
