"""A simulated node's storage on the real WAL: `FileStorage` over a `SimDisk`, self-checked.

Rules:
- The node's Readies are persisted by the production `FileStorage` (records, group commit,
  segments, snapshot files), on a `SimDisk`, so every simulated crash exercises the real
  recovery code: `crash(rng)` closes the storage and lets the disk lose unsynced bytes and
  directory entries (torn tails included); `reopen()` opens the directory again, which
  replays the WAL and truncates a torn tail.
- Self-check. A `SyncLedger`, kept outside the storage, records what each `sync` promised:
  the state as of the last sync and the writes saved since. After each recovery the
  recovered state must equal the synced state plus a prefix of the later writes, cut at
  record granularity in the WAL's record order (a snapshot, one entry at a time, then the
  hard state): every synced write, never a hole. (The memory disk keeps whole writes; the
  WAL may tear inside one, which is why it writes the hard state last.) Anything else, or
  a recovery that refuses to open, is a `SafetyViolation` ("storage-durability" /
  "storage-recovery").
- Persisted entries are reported to the node (`on_entries`) exactly as with the memory disk.
- Crash in the middle of a Ready: when `interrupt_sync(snapshot_pending)` says so, `sync` raises
  `SyncInterrupted` before the fsync; the node dies there (its writes were handed to the
  disk, nothing was sent yet). Only this opens the windows between a write and its fsync
  (a torn entries batch, a torn snapshot checkpoint), since the driver syncs at once.
"""

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from conclave.core.effects import Entry, HardState, Snapshot
from conclave.core.memory_storage import MemoryStorage
from conclave.core.ports import StableState
from conclave.sim.disk import CrashReport, SimDisk
from conclave.sim.invariants import SafetyViolation
from conclave.storage import FileStorage, StorageError

# Small segments, so that simulated runs roll segments and delete them after snapshots.
SIM_SEGMENT_BYTES_MAX: Final = 4096

_Write = tuple[HardState | None, Snapshot | None, tuple[Entry, ...]]


def _pieces(write: _Write) -> Iterator[_Write]:
    """A write as the WAL records it: snapshot, each entry alone, then the hard state."""
    hard_state, snapshot, entries = write
    if snapshot is not None:
        yield None, snapshot, ()
    for entry in entries:
        yield None, None, (entry,)
    if hard_state is not None:
        yield hard_state, None, ()


def _seeded(state: StableState) -> MemoryStorage:
    memory = MemoryStorage()
    memory.save(None, state.snapshot, ())
    memory.save(state.hard_state, None, state.entries)
    memory.sync()
    return memory


def _span(state: StableState) -> str:
    snap = state.snapshot.meta.index if state.snapshot is not None else 0
    entries = state.entries
    log = f"{entries[0].index}..{entries[-1].index}" if entries else "none"
    hard = state.hard_state
    return f"term {hard.term} vote {hard.vote} commit {hard.commit} snapshot {snap} entries {log}"


def _first_difference(synced: StableState, recovered: StableState) -> str:
    held = {(e.index, e.term): e for e in recovered.entries}
    snap = recovered.snapshot.meta.index if recovered.snapshot is not None else 0
    for entry in synced.entries:
        if entry.index > snap and held.get((entry.index, entry.term)) != entry:
            return f"synced entry {entry.index}/{entry.term} is missing"
    if recovered.hard_state != synced.hard_state:
        return f"hard state {synced.hard_state} became {recovered.hard_state}"
    return "state differs from every prefix of the writes"


class SyncInterrupted(Exception):
    """The process died during `sync`, before the fsync (a simulated crash point)."""


class SyncLedger:
    """What the storage promised durable: the state at the last sync and the writes since."""

    def __init__(self, synced: StableState) -> None:
        self._memory = _seeded(synced)  # its durable image is the synced state
        self._pending: list[_Write] = []

    @property
    def synced(self) -> StableState:
        """The state as of the last sync."""
        return self._memory.load()

    @property
    def snapshot_pending(self) -> bool:
        """Whether a snapshot was saved since the last sync (an interesting crash point)."""
        return any(snapshot is not None for _, snapshot, _ in self._pending)

    def saved(self, write: _Write) -> None:
        """A write was handed to the storage (not durable yet)."""
        self._memory.save(*write)
        self._pending.append(write)

    def sync_done(self) -> None:
        """The storage's `sync` returned: everything saved so far is promised durable."""
        if self._pending:
            self._memory.sync()
            self._pending = []

    def violation(self, recovered: StableState) -> str | None:
        """Why `recovered` breaks the contract, or None when it is allowed."""
        synced = self.synced
        if recovered == synced:
            return None
        memory = _seeded(synced)
        for write in self._pending:
            for piece in _pieces(write):
                memory.save(*piece)
                memory.sync()
                if memory.load() == recovered:
                    return None
        return (
            f"{_first_difference(synced, recovered)}; "
            f"synced {_span(synced)}; recovered {_span(recovered)}"
        )


class WalNodeStorage:
    """A node's `Storage`: the real `FileStorage` on a `SimDisk`, with the self-check."""

    def __init__(
        self,
        node_name: str,
        on_entries: Callable[[tuple[Entry, ...]], None],
        *,
        storage_class: type[FileStorage] = FileStorage,
        disk: SimDisk | None = None,
        interrupt_sync: Callable[[bool], bool] | None = None,
    ) -> None:
        self.disk = disk if disk is not None else SimDisk()
        self.directory = Path("/sim") / node_name
        self._node_name = node_name
        self._on_entries = on_entries
        self._storage_class = storage_class
        self._interrupt_sync = interrupt_sync
        self._provisioned = False
        self._files = self._open()
        self.ledger = SyncLedger(self._files.load())
        self.recoveries = 0
        self.torn_tails = 0
        self.last_crash: CrashReport | None = None

    def _open(self) -> FileStorage:
        return self._storage_class(
            self.directory, disk=self.disk, segment_bytes_max=SIM_SEGMENT_BYTES_MAX
        )

    # -- Storage port -----------------------------------------------------------------------

    def load(self) -> StableState:
        """The state as of the last sync."""
        return self._files.load()

    def save(
        self, hard_state: HardState | None, snapshot: Snapshot | None, entries: tuple[Entry, ...]
    ) -> None:
        """Report entries to the node, then write through the real WAL."""
        if entries:
            self._on_entries(entries)
        self._files.save(hard_state, snapshot, entries)
        self.ledger.saved((hard_state, snapshot, entries))

    def sync(self) -> None:
        """Group commit through the real WAL; the ledger then counts it as promised."""
        # Never the first sync of a fresh disk: that is provisioning (bootstrap writes the
        # initial configuration); a node that loses it is a blank node, not a crashed member.
        interrupt = self._interrupt_sync if self._provisioned else None
        if interrupt is not None and interrupt(self.ledger.snapshot_pending):
            raise SyncInterrupted
        self._files.sync()
        self._provisioned = True
        self.ledger.sync_done()

    def recovery_summary(self) -> str:
        """The last recovery in a few words (for traces)."""
        return self._files.recovery_report.describe()

    # -- crash and recovery -----------------------------------------------------------------

    def crash(self, rng: random.Random) -> int:
        """Power loss: the process's handles die, the disk keeps what it keeps."""
        self._files.close()
        self.last_crash = self.disk.crash(rng)
        return self.last_crash.kept_bytes

    def reopen(self) -> None:
        """Open the directory again (the WAL's recovery runs) and check it kept every sync."""
        try:
            self._files = self._open()
        except StorageError as error:
            raise SafetyViolation(
                "storage-recovery", f"{self._node_name} cannot reopen its WAL: {error}"
            ) from error
        self.recoveries += 1
        if self._files.recovery_report.torn is not None:
            self.torn_tails += 1
        recovered = self._files.load()
        why = self.ledger.violation(recovered)
        if why is not None:
            raise SafetyViolation(
                "storage-durability",
                f"{self._node_name} recovered a state its synced writes do not explain: {why}",
            )
        self.ledger = SyncLedger(recovered)


__all__ = ["SIM_SEGMENT_BYTES_MAX", "SyncInterrupted", "SyncLedger", "WalNodeStorage"]
