"""MemoryStorage: durable only after sync; a crash keeps a prefix of unsynced writes."""

from conclave.core import ConfState, Entry, HardState, MemoryStorage, Snapshot, SnapshotMeta


def _entries(first: int, last: int, term: int) -> tuple[Entry, ...]:
    return tuple(Entry(term=term, index=i, data=b"x") for i in range(first, last + 1))


def test_unsynced_writes_are_lost_on_crash() -> None:
    store = MemoryStorage()
    store.save(HardState(term=1, vote=1), None, _entries(1, 3, 1))
    store.sync()
    store.save(HardState(term=2, vote=2), None, _entries(4, 5, 2))
    store.crash()
    loaded = store.load()
    assert loaded.hard_state == HardState(term=1, vote=1)
    assert [e.index for e in loaded.entries] == [1, 2, 3]


def test_crash_may_keep_a_prefix_of_unsynced_writes() -> None:
    store = MemoryStorage()
    store.save(None, None, _entries(1, 2, 1))
    store.save(None, None, _entries(3, 3, 1))
    store.crash(surviving_unsynced_writes=1)
    assert [e.index for e in store.load().entries] == [1, 2]


def test_appending_replaces_the_conflicting_suffix() -> None:
    store = MemoryStorage()
    store.save(None, None, _entries(1, 5, 1))
    store.save(None, None, _entries(3, 3, 2))
    store.sync()
    assert [(e.index, e.term) for e in store.load().entries] == [(1, 1), (2, 1), (3, 2)]


def test_snapshot_compacts_a_matching_prefix_and_replaces_a_diverging_log() -> None:
    conf = ConfState(voters=(1, 2, 3))
    store = MemoryStorage()
    store.save(None, None, _entries(1, 5, 1))
    store.save(None, Snapshot(meta=SnapshotMeta(index=3, term=1, conf=conf)), ())
    store.sync()
    assert [e.index for e in store.load().entries] == [4, 5]
    store.save(None, Snapshot(meta=SnapshotMeta(index=4, term=9, conf=conf)), ())
    store.sync()
    assert store.load().entries == ()
