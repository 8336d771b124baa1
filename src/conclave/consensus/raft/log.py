"""The in-memory Raft log of one node, with its snapshot, commit and apply cursors.

Rules:
- Entries after the snapshot are held contiguously: `first_index == snapshot index + 1`,
  terms never decrease, and the term at the snapshot index is the snapshot's term.
- `commit` never decreases and never exceeds `last_index`; `applied <= applying <= commit`
  (`applying` is what was handed out in a Ready but not yet acknowledged by `advance`).
- Nothing at or below `commit` is ever truncated (Raft paper 5.3, State Machine Safety);
  a request to do so is a broken invariant.
- Persistence is tracked, not assumed: entries at index >= `unstable_from` still have to be
  handed to the driver; `persisted_index` is the last index the driver confirmed durable
  (a leader counts its own copy toward commit only up to it). A truncation lowers both.
"""

from dataclasses import dataclass

from conclave.core.effects import ConfState, Entry, EntryKind, Snapshot, SnapshotMeta
from conclave.core.errors import InvariantViolation
from conclave.core.ids import LogIndex, Term

_EMPTY_CONF = ConfState()


@dataclass(slots=True)
class RaftLog:
    """Snapshot + entries + cursors. Mutated only by the node that owns it."""

    snapshot: Snapshot
    entries: list[Entry]
    commit: LogIndex
    applied: LogIndex
    applying: LogIndex
    unstable_from: LogIndex
    persisted_index: LogIndex
    snapshot_unstable: bool = False

    @classmethod
    def empty(cls, snapshot: Snapshot, *, snapshot_unstable: bool) -> "RaftLog":
        """A log holding only `snapshot` (fresh bootstrap or a joiner)."""
        index = snapshot.meta.index
        return cls(
            snapshot=snapshot,
            entries=[],
            commit=index,
            applied=index,
            applying=index,
            unstable_from=index + 1,
            persisted_index=index if not snapshot_unstable else -1,
            snapshot_unstable=snapshot_unstable,
        )

    @classmethod
    def blank_meta(cls) -> SnapshotMeta:
        """The position of a node that holds nothing yet (a joiner)."""
        return SnapshotMeta(index=0, term=0, conf=_EMPTY_CONF)

    # -- positions ------------------------------------------------------------------------

    @property
    def first_index(self) -> LogIndex:
        return self.snapshot.meta.index + 1

    @property
    def last_index(self) -> LogIndex:
        return self.snapshot.meta.index + len(self.entries)

    @property
    def last_term(self) -> Term:
        return self.entries[-1].term if self.entries else self.snapshot.meta.term

    def term_at(self, index: LogIndex) -> Term | None:
        """The term at `index`, or None when compacted away or beyond the log."""
        snap = self.snapshot.meta
        if index == snap.index:
            return snap.term
        offset = index - snap.index - 1
        if 0 <= offset < len(self.entries):
            return self.entries[offset].term
        return None

    def entry_at(self, index: LogIndex) -> Entry | None:
        offset = index - self.snapshot.meta.index - 1
        if 0 <= offset < len(self.entries):
            return self.entries[offset]
        return None

    def matches(self, index: LogIndex, term: Term) -> bool:
        return self.term_at(index) == term

    def is_up_to_date(self, last_term: Term, last_index: LogIndex) -> bool:
        """Raft paper 5.4.1: a candidate's log is at least as up to date as ours."""
        return last_term > self.last_term or (
            last_term == self.last_term and last_index >= self.last_index
        )

    def slice(
        self,
        lo: LogIndex,
        hi: LogIndex,
        *,
        count_max: int | None = None,
        bytes_max: int | None = None,
    ) -> tuple[Entry, ...]:
        """Entries [lo, hi) that are in memory, bounded by count and bytes (at least one)."""
        lo = max(lo, self.first_index)
        hi = min(hi, self.last_index + 1)
        if lo >= hi:
            return ()
        if count_max is not None:
            hi = min(hi, lo + count_max)
        base = self.snapshot.meta.index + 1
        out = self.entries[lo - base : hi - base]
        if bytes_max is not None:
            size = 0
            for n, entry in enumerate(out):
                size += len(entry.data)
                if size > bytes_max and n > 0:
                    out = out[:n]
                    break
        return tuple(out)

    def find_conflict_by_term(self, index: LogIndex, term: Term) -> tuple[LogIndex, Term]:
        """The largest index <= `index` whose term is <= `term`, with that term (etcd).

        Stops at the snapshot: below it the terms are unknown, reported as term 0.
        """
        index = min(index, self.last_index)
        while index > self.snapshot.meta.index:
            ours = self.term_at(index)
            if ours is not None and ours <= term:
                return index, ours
            index -= 1
        snap = self.snapshot.meta
        if index == snap.index and snap.term <= term:
            return index, snap.term
        return index, 0

    # -- mutation -------------------------------------------------------------------------

    def append(self, entries: tuple[Entry, ...]) -> None:
        """Append entries that continue the log exactly (leader proposals)."""
        for entry in entries:
            if entry.index != self.last_index + 1 or entry.term < self.last_term:
                raise InvariantViolation(
                    f"append {entry.index}/{entry.term} after {self.last_index}/{self.last_term}"
                )
            self.entries.append(entry)

    def find_conflict(self, entries: tuple[Entry, ...]) -> LogIndex:
        """Index of the first entry that is new or differs from ours; 0 if all match."""
        for entry in entries:
            if not self.matches(entry.index, entry.term):
                return entry.index
        return 0

    def truncate_and_append(self, entries: tuple[Entry, ...]) -> None:
        """Replace everything from entries[0].index on with `entries` (Raft paper 5.3)."""
        if not entries:
            return
        first = entries[0].index
        if first <= self.commit:
            raise InvariantViolation(f"truncating committed entries at {first} <= {self.commit}")
        if first > self.last_index + 1 or first <= self.snapshot.meta.index:
            raise InvariantViolation(f"append at {first} leaves a hole (last {self.last_index})")
        del self.entries[first - self.first_index :]
        self.unstable_from = min(self.unstable_from, first)
        self.persisted_index = min(self.persisted_index, first - 1)
        self.append(entries)

    def commit_to(self, index: LogIndex) -> bool:
        """Raise the commit index (never lowers it); True when it moved."""
        if index <= self.commit:
            return False
        if index > self.last_index:
            raise InvariantViolation(f"commit {index} beyond last index {self.last_index}")
        self.commit = index
        return True

    def compact(self, index: LogIndex, data: bytes, conf: ConfState) -> Snapshot:
        """Make `index` (applied, in the log) the snapshot and drop the log before it."""
        term = self.term_at(index)
        if term is None:
            raise InvariantViolation(f"compact at {index} outside the log")
        snap = Snapshot(meta=SnapshotMeta(index=index, term=term, conf=conf), data=data)
        del self.entries[: index - self.snapshot.meta.index]
        self.snapshot = snap
        self.snapshot_unstable = True
        self.unstable_from = max(self.unstable_from, index + 1)
        return snap

    def install(self, snap: Snapshot) -> bool:
        """Install a leader's snapshot; keep the suffix after a matching entry (thesis 5.2).

        Returns True when the suffix was kept.
        """
        meta = snap.meta
        keep = self.matches(meta.index, meta.term) and meta.index <= self.last_index
        if keep:
            del self.entries[: meta.index - self.snapshot.meta.index]
            # Entries after the snapshot that the driver has not seen must follow it in the
            # same Ready, so that storage never holds a hole.
            self.unstable_from = max(self.unstable_from, meta.index + 1)
        else:
            self.entries = []
            self.unstable_from = meta.index + 1
            self.persisted_index = min(self.persisted_index, meta.index)
        self.snapshot = snap
        self.snapshot_unstable = True
        self.commit = max(self.commit, meta.index)
        self.applying = max(self.applying, meta.index)
        return keep

    def take_unstable(self) -> tuple[Entry, ...]:
        """Entries the driver has not been handed yet; marks them handed."""
        out = self.slice(self.unstable_from, self.last_index + 1)
        self.unstable_from = self.last_index + 1
        return out

    def has_unstable(self) -> bool:
        return self.unstable_from <= self.last_index

    def next_committed(self, count_max: int) -> tuple[Entry, ...]:
        """Committed entries not handed out yet, at most `count_max`; marks them handed."""
        hi = min(self.commit, self.applying + count_max)
        out = self.slice(self.applying + 1, hi + 1)
        if out:
            self.applying = out[-1].index
        return out

    def has_committed_to_apply(self) -> bool:
        return self.applying < self.commit

    def stable_to(self, index: LogIndex, term: Term) -> None:
        """The driver made entries up to (index, term) durable; ignored if since replaced."""
        if self.matches(index, term) and index > self.persisted_index:
            self.persisted_index = index

    def snapshot_stable(self, meta: SnapshotMeta) -> None:
        """The driver made the snapshot at `meta` durable."""
        if self.snapshot.meta.index == meta.index and self.snapshot.meta.term == meta.term:
            self.snapshot_unstable = False
        self.persisted_index = max(self.persisted_index, min(meta.index, self.last_index))

    def applied_to(self, index: LogIndex) -> None:
        if index > self.applied:
            self.applied = min(index, self.commit)

    # -- checks ---------------------------------------------------------------------------

    def check(self) -> None:
        """Raise InvariantViolation unless the rules of the module docstring hold."""
        snap = self.snapshot.meta
        if self.entries:
            first, last = self.entries[0], self.entries[-1]
            if first.index != snap.index + 1 or last.index != snap.index + len(self.entries):
                raise InvariantViolation(
                    f"log not contiguous: snapshot {snap.index}, entries "
                    f"{first.index}..{last.index} ({len(self.entries)})"
                )
            if first.term < snap.term:
                raise InvariantViolation(f"entry {first.index} term below snapshot term")
            # Entries change only at the tail (appends, and truncations followed by appends,
            # which are unstable until persisted), and this check runs after every step: so
            # checking the unstable suffix plus a margin covers every change, in O(new
            # entries) instead of O(log length) per step.
            start = max(0, min(self.unstable_from, self.last_index - _TAIL_CHECKED) - first.index)
            prev = snap.term if start == 0 else self.entries[start - 1].term
            for n in range(start, len(self.entries)):
                entry = self.entries[n]
                if entry.index != snap.index + 1 + n or entry.term < prev:
                    raise InvariantViolation(f"log broken at {entry.index}")
                prev = entry.term
        if not snap.index <= self.commit <= self.last_index:
            raise InvariantViolation(
                f"commit {self.commit} outside [{snap.index}, {self.last_index}]"
            )
        if not self.applied <= self.applying <= self.commit:
            raise InvariantViolation(
                f"applied {self.applied} <= applying {self.applying} <= commit {self.commit}"
            )
        if not self.first_index <= self.unstable_from <= self.last_index + 1:
            raise InvariantViolation(f"unstable_from {self.unstable_from} outside the log")
        if self.persisted_index > self.last_index:
            raise InvariantViolation(f"persisted {self.persisted_index} beyond the log")


_TAIL_CHECKED = 64  # stable entries re-checked behind the unstable suffix


def entry_size(entry: Entry) -> int:
    """Bytes an entry counts for in flow control."""
    return len(entry.data)


def is_conf_change(entry: Entry) -> bool:
    return entry.kind is EntryKind.CONF_CHANGE


__all__ = ["RaftLog", "entry_size", "is_conf_change"]
