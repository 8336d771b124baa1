"""The simulated disk and the real WAL on it: crash semantics, recovery, and teeth.

- `SimDisk.crash` keeps fsynced bytes, a prefix (possibly with a garbled last byte) of the
  unsynced ones, and reverts directory operations no directory fsync made durable.
- `FileStorage` on a `SimDisk`, crashed at random points, always recovers the synced state
  plus a prefix of later writes (the `SyncLedger` self-check), truncating torn tails.
- In the simulator (`disk="wal"`), planted storage bugs are caught within a bounded number of
  seeds, and the seed that caught each passes with the correct storage.
"""

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import planted_bugs as bugs

import conclave.storage.file_storage as file_storage_module
from conclave.core.effects import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from conclave.sim import SimSettings, run_seed
from conclave.sim.disk import SimDisk
from conclave.sim.wal_storage import SyncLedger
from conclave.storage import FileStorage
from conclave.storage.records import SEGMENT_HEADER, encode_payload
from conclave.storage.wal import list_segments

DIR = Path("/sim/n1")


class Lowest(random.Random):
    """A crash draw that keeps nothing unsynced and garbles nothing."""

    def randint(self, a: int, b: int) -> int:
        return a

    def random(self) -> float:
        return 0.99


class Highest(random.Random):
    """A crash draw that keeps everything unsynced, garbling nothing."""

    def randint(self, a: int, b: int) -> int:
        return b

    def random(self) -> float:
        return 0.99


def _disk_with_file(durable: bytes, unsynced: bytes) -> SimDisk:
    disk = SimDisk()
    disk.make_dirs(DIR)
    file = disk.create(DIR / "f", exclusive=True)
    file.write(durable)
    file.fsync()
    disk.fsync_dir(DIR)
    file.write(unsynced)
    return disk


def test_synced_bytes_survive_and_the_unsynced_tail_is_a_possibly_garbled_prefix() -> None:
    durable, unsynced = b"durable-bytes", bytes(range(1, 200))
    garbled = 0
    for seed in range(200):
        disk = _disk_with_file(durable, unsynced)
        report = disk.crash(random.Random(seed))
        after = disk.read(DIR / "f")
        assert after.startswith(durable)
        tail = after[len(durable) :]
        assert len(tail) == report.kept_bytes <= len(unsynced)
        if tail and tail != unsynced[: len(tail)]:
            assert tail[:-1] == unsynced[: len(tail) - 1]  # only the last byte differs
            garbled += 1
        assert report.garbled_files == (1 if tail != unsynced[: len(tail)] else 0)
    assert 10 < garbled < 150  # torn writes happen, but not always


def test_a_crash_keeping_nothing_or_everything() -> None:
    disk = _disk_with_file(b"abc", b"def")
    disk.crash(Lowest())
    assert disk.read(DIR / "f") == b"abc"
    disk = _disk_with_file(b"abc", b"def")
    disk.crash(Highest())
    assert disk.read(DIR / "f") == b"abcdef"
    assert disk.durable_bytes(DIR / "f") == b"abcdef"  # what survived is now on the platter


def test_unsynced_directory_operations_revert() -> None:
    disk = _disk_with_file(b"x", b"")
    disk.rename(DIR / "f", DIR / "g")
    new = disk.create(DIR / "new", exclusive=True)
    new.write(b"data")
    new.fsync()  # the bytes are durable, but the name is not
    disk.crash(Lowest())
    assert disk.list_dir(DIR) == ["f"]
    assert disk.read(DIR / "f") == b"x"


def test_directory_operations_survive_a_directory_fsync() -> None:
    disk = _disk_with_file(b"x", b"")
    disk.rename(DIR / "f", DIR / "g")
    disk.remove(DIR / "g")
    disk.create(DIR / "h", exclusive=True).fsync()
    disk.fsync_dir(DIR)
    disk.crash(Lowest())
    assert disk.list_dir(DIR) == ["h"]


def test_a_crash_keeps_directory_operations_in_order() -> None:
    for seed in range(50):
        disk = SimDisk()
        disk.make_dirs(DIR)
        for name in ("a", "b", "c", "d"):
            disk.create(DIR / name, exclusive=True).fsync()
        disk.crash(random.Random(seed))
        names = disk.list_dir(DIR)
        assert names == ["a", "b", "c", "d"][: len(names)]  # a journal prefix, never a hole


def test_file_handles_die_with_the_crash() -> None:
    disk = SimDisk()
    disk.make_dirs(DIR)
    file = disk.create(DIR / "f", exclusive=True)
    disk.crash(random.Random(0))
    with pytest.raises(OSError, match="before a crash"):
        file.write(b"late")
    disk.create(DIR / "g", exclusive=True).close()
    with pytest.raises(FileExistsError):
        disk.create(DIR / "g", exclusive=True)
    with pytest.raises(FileNotFoundError):
        disk.read(DIR / "missing")


# -- the real WAL on the simulated disk -------------------------------------------------------


def _random_write(
    rng: random.Random, state: dict[str, int]
) -> tuple[HardState | None, Snapshot | None, tuple[Entry, ...]]:
    """A write Raft could make: new entries (sometimes overwriting a suffix), a hard state
    that never moves term back, sometimes a snapshot of a prefix."""
    last, term = state["last"], state["term"]
    if rng.random() < 0.2:
        term = state["term"] = term + 1
    hard = HardState(term=term, vote=rng.choice((0, 1, 2)), commit=max(0, last - 3))
    if last > state["snap"] + 2 and rng.random() < 0.08:
        index = rng.randint(state["snap"] + 1, last - 1)
        state["snap"] = index
        meta = SnapshotMeta(index=index, term=1, conf=ConfState(voters=(1, 2, 3)))
        return hard, Snapshot(meta=meta, data=rng.randbytes(rng.randint(0, 300))), ()
    start = rng.randint(max(state["snap"] + 1, last - 2), last + 1)
    count = rng.randint(1, 6)
    entries = tuple(
        Entry(term=1, index=i, data=rng.randbytes(rng.randint(0, 80)))
        for i in range(start, start + count)
    )
    state["last"] = start + count - 1
    return (hard if rng.random() < 0.7 else None), None, entries


def test_recovery_on_a_crashing_sim_disk_always_keeps_the_synced_state() -> None:
    torn = 0
    for seed in range(40):
        rng = random.Random(seed)
        disk = SimDisk()
        storage = FileStorage(DIR, disk=disk, segment_bytes_max=rng.choice((256, 1024, 8192)))
        ledger = SyncLedger(storage.load())
        state = {"last": 0, "term": 1, "snap": 0}
        for _ in range(rng.randint(20, 120)):
            write = _random_write(rng, state)
            storage.save(*write)
            ledger.saved(write)
            if rng.random() < 0.6:
                storage.sync()
                ledger.sync_done()
            if rng.random() < 0.1:
                storage.close()
                disk.crash(rng)
                storage = FileStorage(DIR, disk=disk, segment_bytes_max=256)
                recovered = storage.load()
                assert ledger.violation(recovered) is None, f"seed {seed}"
                torn += storage.recovery_report.torn is not None
                ledger = SyncLedger(recovered)
                snap = recovered.snapshot.meta.index if recovered.snapshot else 0
                last = recovered.entries[-1].index if recovered.entries else 0
                state.update(snap=snap, last=max(last, snap))
        storage.close()
    assert torn > 5  # the loop does exercise torn-tail truncation


def test_the_ledger_rejects_a_lost_synced_entry() -> None:
    ledger = SyncLedger(FileStorage(DIR, disk=SimDisk()).load())
    ledger.saved((HardState(term=1), None, (Entry(term=1, index=1), Entry(term=1, index=2))))
    ledger.sync_done()
    synced = ledger.synced
    lost = type(synced)(hard_state=synced.hard_state, snapshot=None, entries=synced.entries[:1])
    why = ledger.violation(lost)
    assert why is not None
    assert "synced entry 2/1 is missing" in why


# -- the simulator with the WAL disk ------------------------------------------------------------


def test_mixed_disk_uses_the_wal_on_every_fourth_seed() -> None:
    assert [SimSettings(seed=s).uses_wal_disk for s in range(8)] == [False, False, False, True] * 2
    assert SimSettings(seed=0, disk="wal").uses_wal_disk
    assert not SimSettings(seed=3, disk="memory").uses_wal_disk


def test_a_wal_seed_recovers_torn_tails_and_passes() -> None:
    result = run_seed(SimSettings(seed=3, nodes=3, ops=200))
    assert result.ok, result.violation
    assert result.disk == "wal"
    assert result.wal_recoveries > 0
    assert result.wal_torn_tails > 0


STORAGE_BUGS = [
    # (planted storage, seeds to search)
    (bugs.SkipsWalFsync, 10),
    (bugs.WritesHardStateFirst, 20),
]
CAUGHT_BY = frozenset(
    {"storage-durability", "storage-recovery", "state-machine-safety", "linearizability"}
)


def _first_catch(storage_class: type[FileStorage], seeds_max: int) -> int | None:
    for seed in range(seeds_max):
        settings = SimSettings(seed=seed, nodes=3, disk="wal", storage_class=storage_class)
        result = run_seed(settings)
        if not result.ok:
            assert result.invariant in CAUGHT_BY, result.violation
            return seed
    return None


@pytest.mark.parametrize(("storage_class", "seeds_max"), STORAGE_BUGS, ids=str)
def test_planted_storage_bug_is_caught(storage_class: type[FileStorage], seeds_max: int) -> None:
    seed = _first_catch(storage_class, seeds_max)
    assert seed is not None, f"{storage_class.__name__} not caught in {seeds_max} seeds"
    correct = run_seed(SimSettings(seed=seed, nodes=3, disk="wal"))
    assert correct.ok, f"the correct storage fails seed {seed} too: {correct.violation}"


def _torn_checkpoint(disk: SimDisk) -> FileStorage:
    """Entries 1..15 synced, then a snapshot at 10 whose checkpoint is torn after entry 12."""
    storage = FileStorage(DIR, disk=disk)
    entries = tuple(Entry(term=1, index=i, data=b"x") for i in range(1, 16))
    storage.save(HardState(term=1, commit=15), None, entries)
    storage.sync()
    meta = SnapshotMeta(index=10, term=1, conf=ConfState(voters=(1,)))
    storage.save(None, Snapshot(meta=meta, data=b"image"), ())
    storage.close()
    checkpoint = list_segments(DIR, disk)[-1][1]  # the new segment, holding the checkpoint
    kept = [HardState(term=1, commit=15), meta, entries[10], entries[11]]  # hs, marker, 11, 12
    size = SEGMENT_HEADER.size + sum(len(encode_payload(item)) for item in kept)
    assert disk.size(checkpoint) > size
    disk.truncate(checkpoint, size)
    return FileStorage(DIR, disk=disk)


def test_a_torn_checkpoint_keeps_the_synced_entries_behind_it() -> None:
    """The bug this disk model found: replaying a torn snapshot checkpoint as ordinary
    writes truncated the synced entries after its last whole record (13..15 here)."""
    recovered = _torn_checkpoint(SimDisk()).load()
    assert [e.index for e in recovered.entries] == [11, 12, 13, 14, 15]


def test_torn_checkpoint_replay_bug_is_caught_by_the_simulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pinned: the first seed of a search from 0 (nodes=3, disk="wal") that catches the old
    # replay; the search takes minutes because compactions rarely keep entries beyond them.
    monkeypatch.setattr(file_storage_module, "_known_prefix", lambda mirror, batch: 0)
    broken = run_seed(SimSettings(seed=107, nodes=3, disk="wal"))
    assert broken.invariant == "storage-durability", broken.violation
    monkeypatch.undo()
    assert run_seed(SimSettings(seed=107, nodes=3, disk="wal")).ok
