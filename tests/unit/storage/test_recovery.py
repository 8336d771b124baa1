"""Recovery: a torn tail is truncated and reported; any other damage refuses to start."""

from pathlib import Path

import pytest

from conclave.core.effects import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from conclave.storage import FileStorage, SnapshotCorruptionError, WalCorruptionError
from conclave.storage.records import RECORD_HEADER, SEGMENT_HEADER
from conclave.storage.snapshots import list_snapshots
from conclave.storage.wal import list_segments, scan_segment


def _entries(first: int, last: int) -> tuple[Entry, ...]:
    return tuple(Entry(term=1, index=i, data=b"payload-%d" % i) for i in range(first, last + 1))


def _write(directory: Path, last: int = 5, segment_bytes_max: int = 1 << 20) -> None:
    with FileStorage(directory, segment_bytes_max=segment_bytes_max) as store:
        store.save(HardState(term=1, vote=1), None, ())
        for index in range(1, last + 1):
            store.save(None, None, _entries(index, index))
        store.sync()


def _last_segment(directory: Path) -> Path:
    return list_segments(directory)[-1][1]


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_torn_tail_is_truncated_at_every_possible_length(tmp_path: Path) -> None:
    _write(tmp_path)
    segment = _last_segment(tmp_path)
    original = segment.read_bytes()
    last = scan_segment(segment, 0, is_last=True).records[-1]
    for kept in range(1, last.size):
        segment.write_bytes(original[: last.offset + kept])
        with FileStorage(tmp_path) as store:
            torn = store.recovery_report.torn
            assert torn is not None
            assert (torn.file, torn.offset, torn.dropped) == (segment, last.offset, kept)
            assert "torn tail truncated at" in store.recovery_report.describe()
            assert [e.index for e in store.load().entries] == [1, 2, 3, 4]
        assert segment.stat().st_size == last.offset  # the tail is gone from disk


def test_storage_keeps_working_after_truncating_a_torn_tail(tmp_path: Path) -> None:
    _write(tmp_path)
    segment = _last_segment(tmp_path)
    segment.write_bytes(segment.read_bytes()[:-3])
    with FileStorage(tmp_path) as store:
        store.save(None, None, _entries(5, 6))
        store.sync()
    with FileStorage(tmp_path) as reopened:
        assert reopened.recovery_report.torn is None
        assert [e.index for e in reopened.load().entries] == [1, 2, 3, 4, 5, 6]


def test_crc_mismatch_on_the_final_record_is_a_torn_tail(tmp_path: Path) -> None:
    _write(tmp_path)
    segment = _last_segment(tmp_path)
    size = segment.stat().st_size
    _flip(segment, size - 1)
    with FileStorage(tmp_path) as store:
        torn = store.recovery_report.torn
        assert torn is not None
        assert torn.offset + torn.dropped == size
        assert "CRC" in torn.reason
        assert len(store.load().entries) == 4


def test_a_segment_shorter_than_its_header_is_restarted(tmp_path: Path) -> None:
    _write(tmp_path, segment_bytes_max=150)
    segment = _last_segment(tmp_path)
    segment.write_bytes(segment.read_bytes()[: SEGMENT_HEADER.size - 1])
    with FileStorage(tmp_path, segment_bytes_max=150) as store:
        assert store.recovery_report.torn is not None
        store.save(None, None, _entries(5, 5))
        store.sync()
    with FileStorage(tmp_path, segment_bytes_max=150) as reopened:
        assert reopened.recovery_report.torn is None
        assert reopened.load().entries[-1].index == 5


def test_corrupted_middle_byte_refuses_with_file_and_offset(tmp_path: Path) -> None:
    _write(tmp_path)
    segment = _last_segment(tmp_path)
    second = scan_segment(segment, 0, is_last=True).records[1]
    _flip(segment, second.offset + RECORD_HEADER.size + 3)
    with pytest.raises(WalCorruptionError) as caught:
        FileStorage(tmp_path)
    assert caught.value.file == segment
    assert caught.value.offset == second.offset
    assert str(segment) in str(caught.value)
    assert f"offset {second.offset}" in str(caught.value)


def test_bad_segment_magic_refuses(tmp_path: Path) -> None:
    _write(tmp_path)
    _flip(_last_segment(tmp_path), 0)
    with pytest.raises(WalCorruptionError, match="offset 0"):
        FileStorage(tmp_path)


def test_torn_record_in_a_non_last_segment_is_corruption(tmp_path: Path) -> None:
    _write(tmp_path, last=20, segment_bytes_max=150)
    segments = list_segments(tmp_path)
    assert len(segments) > 2
    first = segments[0][1]
    first.write_bytes(first.read_bytes()[:-2])
    with pytest.raises(WalCorruptionError) as caught:
        FileStorage(tmp_path, segment_bytes_max=150)
    assert caught.value.file == first


def test_bad_snapshot_crc_refuses_naming_the_file(tmp_path: Path) -> None:
    conf = ConfState(voters=(1, 2, 3))
    snapshot = Snapshot(meta=SnapshotMeta(index=3, term=1, conf=conf), data=b"state image")
    with FileStorage(tmp_path) as store:
        store.save(None, None, _entries(1, 5))
        store.save(None, snapshot, ())
        store.sync()
    ((_, _, path),) = list_snapshots(tmp_path)
    _flip(path, path.stat().st_size - 2)
    with pytest.raises(SnapshotCorruptionError, match="CRC") as caught:
        FileStorage(tmp_path)
    assert str(path) in str(caught.value)


def test_missing_snapshot_file_refuses(tmp_path: Path) -> None:
    conf = ConfState(voters=(1,))
    with FileStorage(tmp_path) as store:
        store.save(None, Snapshot(meta=SnapshotMeta(index=1, term=1, conf=conf)), ())
        store.sync()
    ((_, _, path),) = list_snapshots(tmp_path)
    path.unlink()
    with pytest.raises(SnapshotCorruptionError, match="missing"):
        FileStorage(tmp_path)
