"""`FileStorage`: the durable `Storage` of one node, a segmented WAL plus snapshot files.

Semantics are exactly `MemoryStorage`'s (load/save/sync): an in-memory `MemoryStorage` mirrors
every save and sync, so `load()` returns the state as of the last `sync()`, and replaying the
WAL on open rebuilds the same state.

Durability contract:
- All I/O goes through a `Disk` (`conclave.storage.disk`): `OsDisk` by default, the
  simulator's `SimDisk` under simulation, so the simulator exercises exactly this code.
- `save` encodes its records and hands them to the disk with one write per segment touched;
  nothing is durable yet. `sync` issues ONE fsync of the current segment for everything
  saved since the previous sync (group commit), and none when nothing was saved.
- Extra fsyncs happen only on rare events: creating a segment (file + directory), rolling past
  `segment_bytes_max` (the old segment is fsynced before the next one receives records, so a
  crash can never leave a hole), writing a snapshot file, and deleting obsolete files.
- Saving a snapshot writes its file durably first (see `snapshots`), then starts a new segment
  with a checkpoint: the current hard state, the SNAPSHOT_MARKER and every entry kept after the
  snapshot. That segment is self-contained, so once it is durable (the next `sync`) every older
  segment and snapshot file is deleted. Replaying old segments plus any prefix of the checkpoint
  yields a state the writes produced, so a crash in between is harmless. (Replay treats the
  checkpoint's entries as already known where the old segments hold the same entries: a torn
  checkpoint must not truncate the durable entries after its last whole record.)
- Entries passed to one `save` must be consecutive ascending indices (what Raft produces);
  this lets the WAL keep one record per entry and replay them in batches.
- Record order within one `save`: snapshot (its checkpoint), entries, then the hard state.
  A torn tail keeps a prefix of those records, so it may keep new entries with the old hard
  state (the core takes the newer term from the log and clamps commit), but never a new
  commit index with the entries it replaced.

Recovery on open: leftover ``.tmp`` snapshot files are deleted; segments are replayed in order
under the rules of `wal` (a torn tail of the last segment is truncated and reported in
`recovery_report`, anything else raises `WalCorruptionError`); the snapshot file named by the
last marker is read and CRC-checked (`SnapshotCorruptionError` if bad, no fall-back); snapshot
files it does not name are deleted. The unit tests approximate a crash by reopening without
sync and by chopping or flipping bytes; the simulator's `SimDisk` drops unsynced bytes and
directory entries and tears the last write at every simulated crash.
"""

import contextlib
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

from conclave.core.effects import Entry, HardState, Snapshot, SnapshotMeta
from conclave.core.memory_storage import MemoryStorage
from conclave.core.ports import StableState
from conclave.storage.disk import Disk, DiskFile
from conclave.storage.errors import SnapshotCorruptionError
from conclave.storage.records import Payload, encode_payload, encode_segment_header
from conclave.storage.snapshots import (
    list_snapshots,
    read_snapshot_file,
    remove_temp_files,
    snapshot_name,
    write_snapshot_file,
)
from conclave.storage.wal import (
    OS_DISK,
    SegmentScan,
    TornTail,
    scan_directory,
    segment_name,
)

DEFAULT_SEGMENT_BYTES_MAX: Final = 64 * 1024 * 1024
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening the directory found and repaired."""

    segments: int
    records: int
    torn: TornTail | None
    removed_files: tuple[Path, ...]

    def describe(self) -> str:
        """One line: `clean` or where the torn tail was cut."""
        if self.torn is None:
            return f"clean ({self.segments} segments, {self.records} records)"
        torn = self.torn
        return (
            f"torn tail truncated at {torn.file}:{torn.offset} "
            f"({torn.dropped} bytes dropped: {torn.reason})"
        )


def _check_consecutive(entries: tuple[Entry, ...]) -> None:
    for before, after in itertools.pairwise(entries):
        if after.index != before.index + 1:
            raise ValueError(f"entries must be consecutive: {before.index} then {after.index}")


def _known_prefix(mirror: MemoryStorage, batch: list[Entry]) -> int:
    """How many leading entries of `batch` the mirror already holds, identical."""
    held = {entry.index: entry for entry in mirror.view().entries}
    count = 0
    for entry in batch:
        if held.get(entry.index) != entry:
            break
        count += 1
    return count


def _replay(
    mirror: MemoryStorage,
    items: list[Payload],
    last_meta: SnapshotMeta | None,
    last: Snapshot | None,
) -> None:
    """Feed decoded records to the mirror, batching consecutive entries (one append each)."""
    batch: list[Entry] = []
    after_marker = False  # the current batch follows a marker: a checkpoint's entries

    def flush() -> None:
        # A checkpoint re-writes entries the old segments may still hold after it; if the
        # checkpoint is torn, saving its prefix as an ordinary write would truncate the
        # durable entries behind it. So its leading already-held entries are skipped.
        skip = _known_prefix(mirror, batch) if after_marker else 0
        if skip < len(batch):
            mirror.save(None, None, tuple(batch[skip:]))
        batch.clear()

    for item in items:
        if isinstance(item, Entry) and (not batch or item.index == batch[-1].index + 1):
            batch.append(item)
            continue
        if batch:
            flush()
            after_marker = False
        if isinstance(item, Entry):
            batch.append(item)
        elif isinstance(item, HardState):
            mirror.save(item, None, ())
            after_marker = False
        else:
            # Only the last marker's image is kept; earlier ones only truncate the log.
            is_last = last is not None and item is last_meta
            mirror.save(None, last if is_last else Snapshot(meta=item), ())
            after_marker = True
    if batch:
        flush()


def _last_meta(items: list[Payload]) -> SnapshotMeta | None:
    metas = [item for item in items if isinstance(item, SnapshotMeta)]
    return metas[-1] if metas else None


class FileStorage:
    """Durable storage of one node in `directory` (created if missing) on `disk`."""

    def __init__(
        self,
        directory: Path | str,
        *,
        disk: Disk | None = None,
        segment_bytes_max: int = DEFAULT_SEGMENT_BYTES_MAX,
    ) -> None:
        self.directory = Path(directory)
        self.disk: Disk = disk if disk is not None else OS_DISK
        self.disk.make_dirs(self.directory)
        self._segment_bytes_max = segment_bytes_max
        self._mirror = MemoryStorage()
        self._file: DiskFile | None = None
        self._segments: list[Path] = []
        self._segment_records = 0
        self._segment_size = 0
        self._next_seq = 0
        self._dirty = False
        self._snapshot_path: Path | None = None
        self._obsolete_segments: list[Path] = []
        self._obsolete_snapshots: list[Path] = []
        self.sync_count = 0
        self.recovery_report = self._recover()

    # -- Storage protocol ------------------------------------------------------------------

    def load(self) -> StableState:
        """The state as of the last sync (after a reopen: everything the WAL held)."""
        return self._mirror.load()

    def save(
        self, hard_state: HardState | None, snapshot: Snapshot | None, entries: tuple[Entry, ...]
    ) -> None:
        """Write records to the disk (snapshot, entries, hard state LAST); durable after `sync`."""
        if hard_state is None and snapshot is None and not entries:
            return
        _check_consecutive(entries)
        if snapshot is not None:
            self._save_snapshot(snapshot)
        if entries:
            self._write([encode_payload(entry) for entry in entries])
        if hard_state is not None:
            # Last, as etcd's WAL does: a torn tail must never keep a commit index that points
            # at entries this same write was replacing (the old ones would be applied).
            self._write([encode_payload(hard_state)])
        self._mirror.save(hard_state, None, entries)

    def sync(self) -> None:
        """One fsync for everything saved since the last sync, then drop obsolete files."""
        if self._dirty:
            self._current().fsync()
            self._dirty = False
        self._mirror.sync()
        self.sync_count += 1
        self._delete_obsolete()

    # -- life cycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the current segment; unsynced writes stay wherever the OS has them."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "FileStorage":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _current(self) -> DiskFile:
        file = self._file
        if file is None:
            raise ValueError(f"storage in {self.directory} is closed")
        return file

    # -- recovery --------------------------------------------------------------------------

    def _recover(self) -> RecoveryReport:
        disk = self.disk
        removed = remove_temp_files(self.directory, disk)
        scans = scan_directory(self.directory, disk)
        items = [record.payload for scan in scans for record in scan.records]
        last_meta = _last_meta(items)
        last = self._read_marked_snapshot(last_meta)
        _replay(self._mirror, items, last_meta, last)
        self._mirror.sync()
        removed += self._remove_unmarked_snapshots()
        torn = scans[-1].torn if scans else None
        if torn is not None:
            _log.warning("WAL recovery: %s", torn)
        self._open_tail(scans)
        report = RecoveryReport(len(scans), len(items), torn, tuple(removed))
        if removed:
            disk.fsync_dir(self.directory)
        return report

    def _read_marked_snapshot(self, meta: SnapshotMeta | None) -> Snapshot | None:
        if meta is None:
            return None
        path = self.directory / snapshot_name(meta.index, meta.term)
        snapshot = read_snapshot_file(path, self.disk)
        if snapshot.meta != meta:
            raise SnapshotCorruptionError(path, "meta differs from the WAL's marker")
        self._snapshot_path = path
        return snapshot

    def _remove_unmarked_snapshots(self) -> list[Path]:
        # Files the last marker does not name are older (superseded) or newer (marker lost).
        snapshots = list_snapshots(self.directory, self.disk)
        removed = [p for _, _, p in snapshots if p != self._snapshot_path]
        for path in removed:
            self.disk.remove(path)
        return removed

    def _open_tail(self, scans: list[SegmentScan]) -> None:
        self._segments = [scan.path for scan in scans]
        if not scans:
            self._create_segment(0)
            return
        tail = scans[-1]
        if tail.torn is not None and tail.torn.offset == 0:
            # Not even a whole header survived: start that segment afresh.
            self.disk.remove(tail.path)
            self._segments.pop()
            self._create_segment(tail.first_seq)
            return
        if tail.torn is not None:
            self.disk.truncate(tail.path, tail.torn.offset)
        self._file = self.disk.open_append(tail.path)
        if tail.torn is not None:
            self._file.fsync()
        self._segment_records = len(tail.records)
        self._segment_size = self._file.size()
        self._next_seq = tail.first_seq + len(tail.records)

    # -- writing ---------------------------------------------------------------------------

    def _create_segment(self, first_seq: int) -> None:
        path = self.directory / segment_name(first_seq)
        self._file = file = self.disk.create(path, exclusive=True)
        header = encode_segment_header(first_seq)
        file.write(header)
        file.fsync()
        self.disk.fsync_dir(self.directory)
        self._segments.append(path)
        self._segment_records = 0
        self._segment_size = len(header)
        self._next_seq = first_seq

    def _roll(self) -> None:
        # The old segment must be durable before the new one holds anything: no holes.
        file = self._current()
        file.fsync()
        file.close()
        self._file = None
        self._dirty = False
        self._create_segment(self._next_seq)

    def _write_all(self, data: bytes) -> None:
        self._current().write(data)

    def _write(self, records: list[bytes]) -> None:
        buffer: list[bytes] = []
        for record in records:
            too_big = self._segment_size + len(record) > self._segment_bytes_max
            if too_big and self._segment_records > 0:
                self._write_all(b"".join(buffer))
                buffer = []
                self._roll()
            buffer.append(record)
            self._segment_size += len(record)
            self._segment_records += 1
            self._next_seq += 1
        self._write_all(b"".join(buffer))
        self._dirty = True

    def _save_snapshot(self, snapshot: Snapshot) -> None:
        path = write_snapshot_file(self.directory, snapshot, self.disk)
        # The checkpoint restates the hard state as it was BEFORE this write (the new one
        # follows the write's entries, see `save`), so a torn checkpoint changes nothing.
        self._mirror.save(None, snapshot, ())
        view = self._mirror.view()
        if self._segment_records > 0:
            self._roll()
        current = self._segments[-1]
        self._obsolete_segments += [p for p in self._segments if p != current]
        self._segments = [current]
        snapshots = list_snapshots(self.directory, self.disk)
        self._obsolete_snapshots += [p for _, _, p in snapshots if p != path]
        self._snapshot_path = path
        checkpoint: list[Payload] = [view.hard_state, snapshot.meta, *view.entries]
        self._write([encode_payload(item) for item in checkpoint])

    def _delete_obsolete(self) -> None:
        if not self._obsolete_segments and not self._obsolete_snapshots:
            return
        # Segments first: while a segment naming a snapshot exists, its file exists too.
        for path in self._obsolete_segments:
            self._remove_if_present(path)
        for path in self._obsolete_snapshots:
            if path != self._snapshot_path:
                self._remove_if_present(path)
        self._obsolete_segments = []
        self._obsolete_snapshots = []
        self.disk.fsync_dir(self.directory)

    def _remove_if_present(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):  # already gone: removed by an earlier sync
            self.disk.remove(path)


__all__ = ["DEFAULT_SEGMENT_BYTES_MAX", "FileStorage", "RecoveryReport"]
