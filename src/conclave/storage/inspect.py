"""Read-only inspection of a storage directory, for `conclave wal inspect`.

Rules: never writes (a torn tail is reported, not truncated); scans segments in replay order
with the same recovery rules as `FileStorage` and stops at the first corruption; checks every
snapshot file's CRC. The verdict is `clean`, `torn tail truncated at FILE:OFFSET` (what opening
the directory would do) or `corrupted at FILE:OFFSET` / `snapshot corrupted: FILE`.
"""

from dataclasses import dataclass
from pathlib import Path

from conclave.core.effects import Entry, HardState
from conclave.storage.disk import Disk
from conclave.storage.errors import SnapshotCorruptionError, StorageError, WalCorruptionError
from conclave.storage.records import Payload
from conclave.storage.snapshots import list_snapshots, read_snapshot_file
from conclave.storage.wal import (
    OS_DISK,
    ScannedRecord,
    SegmentScan,
    list_segments,
    scan_segment,
)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One snapshot file as found on disk."""

    path: Path
    size: int
    index: int
    term: int
    voters: tuple[int, ...]
    error: str | None


@dataclass(frozen=True, slots=True)
class Inspection:
    """Everything `inspect_directory` found."""

    directory: Path
    segments: tuple[SegmentScan, ...]
    snapshots: tuple[SnapshotInfo, ...]
    wal_error: WalCorruptionError | None

    @property
    def ok(self) -> bool:
        """True when opening the directory would succeed."""
        return self.wal_error is None and all(s.error is None for s in self.snapshots)

    def verdict(self) -> str:
        """The recovery verdict, one line."""
        if self.wal_error is not None:
            error = self.wal_error
            return f"corrupted at {error.file}:{error.offset} ({error.reason})"
        bad = [s for s in self.snapshots if s.error is not None]
        if bad:
            return f"snapshot corrupted: {bad[0].path} ({bad[0].error})"
        torn = self.segments[-1].torn if self.segments else None
        if torn is not None:
            return f"torn tail truncated at {torn.file}:{torn.offset} ({torn.dropped} bytes)"
        return "clean"

    def lines(self) -> list[str]:
        """A readable dump: segments and records, snapshots, verdict."""
        out = [f"directory {self.directory}"]
        for scan in self.segments:
            out.append(f"segment {scan.path.name} size={scan.size} records={len(scan.records)}")
            out += [f"  {_describe(record)}" for record in scan.records]
            if scan.torn is not None:
                out.append(f"  @{scan.torn.offset} TORN {scan.torn.reason}")
        for snap in self.snapshots:
            state = "ok" if snap.error is None else f"BAD {snap.error}"
            out.append(
                f"snapshot {snap.path.name} index={snap.index} term={snap.term} "
                f"voters={list(snap.voters)} size={snap.size} {state}"
            )
        out.append(f"verdict: {self.verdict()}")
        return out


def _summary(payload: Payload) -> str:
    if isinstance(payload, HardState):
        return f"term={payload.term} vote={payload.vote} commit={payload.commit}"
    if isinstance(payload, Entry):
        return (
            f"term={payload.term} index={payload.index} kind={payload.kind.value} "
            f"data={len(payload.data)}B"
        )
    conf = payload.conf
    return (
        f"index={payload.index} term={payload.term} voters={list(conf.voters)} "
        f"learners={list(conf.learners)}"
    )


def _describe(record: ScannedRecord) -> str:
    return f"@{record.offset} {record.record_type.name} {_summary(record.payload)}"


def _scan_segments(
    directory: Path, disk: Disk
) -> tuple[list[SegmentScan], WalCorruptionError | None]:
    segments = list_segments(directory, disk)
    scans: list[SegmentScan] = []
    for i, (seq, path) in enumerate(segments):
        try:
            scans.append(scan_segment(path, seq, is_last=i == len(segments) - 1, disk=disk))
        except WalCorruptionError as error:
            return scans, error
    return scans, None


def _snapshot_info(index: int, term: int, path: Path, disk: Disk) -> SnapshotInfo:
    size = disk.size(path)
    try:
        snapshot = read_snapshot_file(path, disk)
    except SnapshotCorruptionError as error:
        return SnapshotInfo(path, size, index, term, (), error.reason)
    return SnapshotInfo(path, size, index, term, snapshot.meta.conf.voters, None)


def inspect_directory(directory: Path, *, disk: Disk = OS_DISK) -> Inspection:
    """Inspect without modifying; raises `StorageError` if `directory` is not a directory."""
    if not disk.is_dir(directory):
        raise StorageError(f"{directory} is not a directory")
    scans, error = _scan_segments(directory, disk)
    snapshots = [_snapshot_info(i, t, p, disk) for i, t, p in list_snapshots(directory, disk)]
    return Inspection(directory, tuple(scans), tuple(snapshots), error)


__all__ = ["Inspection", "SnapshotInfo", "inspect_directory"]
