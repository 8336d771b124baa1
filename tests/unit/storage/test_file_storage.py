"""FileStorage: same load/save/sync semantics as MemoryStorage, durable across reopen.

A crash is approximated by closing without `sync` and reopening (the OS still has the writes);
real power loss (lost or reordered pages) is not simulated here.
"""

import os
import random
from pathlib import Path

import pytest

from conclave.core.effects import ConfState, Entry, EntryKind, HardState, Snapshot, SnapshotMeta
from conclave.core.memory_storage import MemoryStorage
from conclave.storage import FileStorage
from conclave.storage.snapshots import list_snapshots
from conclave.storage.wal import list_segments

CONF = ConfState(voters=(1, 2, 3), learners=(4,))


def _entries(first: int, last: int, term: int) -> tuple[Entry, ...]:
    return tuple(Entry(term=term, index=i, data=b"x" * i) for i in range(first, last + 1))


def _snapshot(index: int, term: int, data: bytes = b"image") -> Snapshot:
    return Snapshot(meta=SnapshotMeta(index=index, term=term, conf=CONF), data=data)


def test_empty_directory_loads_the_initial_state(tmp_path: Path) -> None:
    with FileStorage(tmp_path / "node") as store:
        loaded = store.load()
        assert (loaded.hard_state, loaded.snapshot, loaded.entries) == (HardState(), None, ())
        assert store.recovery_report.torn is None
    assert [p.name for _, p in list_segments(tmp_path / "node")] == ["wal-0000000000000000.log"]


def test_round_trip_and_reopen(tmp_path: Path) -> None:
    entries = (
        Entry(term=1, index=1, kind=EntryKind.NOOP),
        Entry(term=1, index=2, kind=EntryKind.CONF_CHANGE, data=b"conf"),
        Entry(term=1, index=3, data=b"\x00\xff" * 100),
    )
    with FileStorage(tmp_path) as store:
        store.save(HardState(term=1, vote=2, commit=1), None, entries)
        store.sync()
        expected = store.load()
    assert expected.entries == entries
    with FileStorage(tmp_path) as reopened:
        assert reopened.load() == expected
        assert reopened.recovery_report.describe().startswith("clean")


def test_load_shows_only_synced_writes(tmp_path: Path) -> None:
    with FileStorage(tmp_path) as store:
        store.save(HardState(term=1), None, _entries(1, 2, 1))
        assert store.load().entries == ()
        store.sync()
        assert len(store.load().entries) == 2


def test_reopen_without_sync_keeps_what_the_os_has(tmp_path: Path) -> None:
    with FileStorage(tmp_path) as store:
        store.save(HardState(term=1), None, _entries(1, 2, 1))
        store.sync()
        store.save(HardState(term=2, vote=3), None, _entries(3, 4, 2))
    with FileStorage(tmp_path) as reopened:
        loaded = reopened.load()
    assert loaded.hard_state == HardState(term=2, vote=3)
    assert [e.index for e in loaded.entries] == [1, 2, 3, 4]


def test_appending_replaces_the_conflicting_suffix(tmp_path: Path) -> None:
    with FileStorage(tmp_path) as store:
        store.save(None, None, _entries(1, 5, 1))
        store.save(None, None, _entries(3, 3, 2))
        store.sync()
    with FileStorage(tmp_path) as reopened:
        assert [(e.index, e.term) for e in reopened.load().entries] == [(1, 1), (2, 1), (3, 2)]


def test_non_consecutive_entries_are_refused(tmp_path: Path) -> None:
    with FileStorage(tmp_path) as store, pytest.raises(ValueError, match="consecutive"):
        store.save(None, None, (Entry(term=1, index=1), Entry(term=1, index=3)))


def _random_write(
    rng: random.Random, last: int, term: int
) -> tuple[HardState | None, Snapshot | None, tuple[Entry, ...], int, int]:
    hard_state = HardState(term=term, vote=rng.randint(0, 3), commit=rng.randint(0, last))
    hard_state_or_none = hard_state if rng.random() < 0.5 else None
    snapshot = None
    if rng.random() < 0.15:
        term_at = rng.choice([term, max(1, term - 1)])
        snapshot = _snapshot(rng.randint(0, last + 2), term_at, rng.randbytes(rng.randint(0, 40)))
    entries: tuple[Entry, ...] = ()
    if rng.random() < 0.7:
        first = rng.randint(max(1, last - 3), last + 1)
        count = rng.randint(1, 4)
        entries = tuple(
            Entry(term=term, index=i, data=rng.randbytes(rng.randint(0, 30)))
            for i in range(first, first + count)
        )
        last = first + count - 1
    if rng.random() < 0.2:
        term += 1
    return hard_state_or_none, snapshot, entries, last, term


@pytest.mark.parametrize("seed", range(12))
def test_equivalent_to_memory_storage_under_random_operations(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    reference = MemoryStorage()
    store = FileStorage(tmp_path, segment_bytes_max=rng.choice([120, 400, 1 << 20]))
    last, term = 0, 1
    for _ in range(120):
        roll = rng.random()
        if roll < 0.6:
            hard_state, snapshot, entries, last, term = _random_write(rng, last, term)
            reference.save(hard_state, snapshot, entries)
            store.save(hard_state, snapshot, entries)
        elif roll < 0.85:
            reference.sync()
            store.sync()
        elif roll < 0.93:
            store.close()  # unsynced writes reached the OS: all of them survive
            reference.crash(surviving_unsynced_writes=reference.unsynced_write_count)
            store = FileStorage(tmp_path, segment_bytes_max=store._segment_bytes_max)
        else:
            reference.sync()
            store.sync()
            store.close()
            store = FileStorage(tmp_path, segment_bytes_max=store._segment_bytes_max)
        assert store.load() == reference.load()
    store.close()


def test_group_commit_one_fsync_per_sync_with_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStorage(tmp_path)
    calls: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    syncs_with_writes = 0
    for batch in range(10):
        for k in range(5):  # five saves share one fsync
            index = batch * 5 + k + 1
            store.save(HardState(term=1, commit=index - 1), None, _entries(index, index, 1))
        store.sync()
        syncs_with_writes += 1
        store.sync()  # nothing new: no fsync
    assert len(calls) == syncs_with_writes == 10
    assert store.sync_count == 20
    store.close()


def test_segments_roll_and_are_deleted_after_a_durable_snapshot(tmp_path: Path) -> None:
    store = FileStorage(tmp_path, segment_bytes_max=256)
    for index in range(1, 41):
        store.save(HardState(term=1, commit=index), None, _entries(index, index, 1))
    store.sync()
    assert len(list_segments(tmp_path)) > 5
    store.save(None, _snapshot(10, 1, b"first"), ())
    store.sync()
    store.save(None, _snapshot(30, 1, b"second"), ())
    old = list_segments(tmp_path)
    assert len(list_snapshots(tmp_path)) == 2  # nothing deleted before the marker is durable
    store.sync()
    after = list_segments(tmp_path)
    assert len(after) < len(old)
    assert after[0][0] > old[0][0]
    assert [(i, t) for i, t, _ in list_snapshots(tmp_path)] == [(30, 1)]
    expected = store.load()
    assert [e.index for e in expected.entries] == list(range(31, 41))
    assert expected.snapshot == _snapshot(30, 1, b"second")
    store.close()
    with FileStorage(tmp_path, segment_bytes_max=256) as reopened:
        assert reopened.load() == expected


def test_snapshot_with_another_term_drops_every_entry(tmp_path: Path) -> None:
    with FileStorage(tmp_path) as store:
        store.save(None, None, _entries(1, 5, 1))
        store.save(HardState(term=3), _snapshot(4, 2), _entries(5, 6, 3))
        store.sync()
        expected = store.load()
    assert [(e.index, e.term) for e in expected.entries] == [(5, 3), (6, 3)]
    with FileStorage(tmp_path) as reopened:
        assert reopened.load() == expected


def test_unsynced_snapshot_is_dropped_when_its_marker_is_lost(tmp_path: Path) -> None:
    with FileStorage(tmp_path) as store:
        store.save(None, None, _entries(1, 5, 1))
        store.sync()
        store.save(None, _snapshot(3, 1), ())
    # Simulate losing the unsynced marker: remove the checkpoint segment it went into.
    newest = list_segments(tmp_path)[-1][1]
    newest.unlink()
    with FileStorage(tmp_path) as reopened:
        assert reopened.load().snapshot is None
        assert [e.index for e in reopened.load().entries] == [1, 2, 3, 4, 5]
        assert list_snapshots(tmp_path) == []


def test_snapshot_temp_leftovers_are_removed(tmp_path: Path) -> None:
    with FileStorage(tmp_path) as store:
        store.save(None, _snapshot(2, 1), ())
        store.sync()
        expected = store.load()
    leftover = tmp_path / "snap-0000000000000009-0000000000000001.snap.tmp"
    leftover.write_bytes(b"half a snapshot")
    with FileStorage(tmp_path) as reopened:
        assert reopened.load() == expected
        assert leftover in reopened.recovery_report.removed_files
    assert not leftover.exists()
