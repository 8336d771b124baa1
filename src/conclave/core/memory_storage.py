"""An in-memory `Storage` with crash semantics, for tests and the simulator's disk.

Rules: writes are buffered as operations; `sync` applies them to the durable image. A crash
keeps the durable image plus a prefix of the buffered operations (the caller chooses how many,
from its own seeded rng), which is what a real disk may do: never a hole, possibly a torn tail.
"""

from dataclasses import dataclass, field

from conclave.core.effects import Entry, HardState, Snapshot
from conclave.core.ports import StableState


@dataclass(frozen=True, slots=True)
class _Write:
    hard_state: HardState | None
    snapshot: Snapshot | None
    entries: tuple[Entry, ...]


@dataclass(slots=True)
class _Image:
    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)

    def apply(self, write: _Write) -> None:
        if write.hard_state is not None:
            self.hard_state = write.hard_state
        if write.snapshot is not None:
            self._apply_snapshot(write.snapshot)
        if write.entries:
            self._append(write.entries)

    def _apply_snapshot(self, snap: Snapshot) -> None:
        at = [e for e in self.entries if e.index == snap.meta.index]
        if at and at[0].term == snap.meta.term:
            self.entries = [e for e in self.entries if e.index > snap.meta.index]
        else:
            self.entries = []
        self.snapshot = snap

    def _append(self, entries: tuple[Entry, ...]) -> None:
        # Stored entries are consecutive, so the overwrite point is an offset: O(new entries),
        # not O(log length) per write (which made every sync slower as the log grew).
        first = entries[0].index
        stored = self.entries
        offset = first - stored[0].index if stored else 0
        if offset < len(stored):
            del stored[max(0, offset) :]
        stored.extend(entries)

    def copy(self) -> "_Image":
        return _Image(self.hard_state, self.snapshot, list(self.entries))


class MemoryStorage:
    """Volatile-until-synced storage of one node."""

    def __init__(self) -> None:
        self._durable = _Image()
        self._pending: list[_Write] = []
        self.sync_count = 0

    def load(self) -> StableState:
        return StableState(
            hard_state=self._durable.hard_state,
            snapshot=self._durable.snapshot,
            entries=tuple(self._durable.entries),
        )

    def save(
        self, hard_state: HardState | None, snapshot: Snapshot | None, entries: tuple[Entry, ...]
    ) -> None:
        if hard_state is None and snapshot is None and not entries:
            return
        self._pending.append(_Write(hard_state, snapshot, entries))

    def sync(self) -> None:
        for write in self._pending:
            self._durable.apply(write)
        self._pending.clear()
        self.sync_count += 1

    @property
    def unsynced_write_count(self) -> int:
        """How many buffered writes a crash could lose."""
        return len(self._pending)

    def crash(self, surviving_unsynced_writes: int = 0) -> None:
        """Lose buffered writes, keeping the first `surviving_unsynced_writes` of them."""
        for write in self._pending[: max(0, surviving_unsynced_writes)]:
            self._durable.apply(write)
        self._pending.clear()

    def view(self) -> StableState:
        """What a reader sees now, synced or not (for checkers, never for recovery)."""
        image = self._durable.copy()
        for write in self._pending:
            image.apply(write)
        return StableState(
            hard_state=image.hard_state, snapshot=image.snapshot, entries=tuple(image.entries)
        )


__all__ = ["MemoryStorage"]
