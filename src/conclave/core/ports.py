"""Ports: the interfaces through which the driver executes a `Ready`.

The simulator and the production runtime each implement these in their own way; the driver
(`conclave.runtime.driver`) is the only caller. Contracts:

- `Storage.save` may buffer; only `sync` makes everything saved so far durable. After a crash,
  a store holds every synced write and possibly a prefix of the unsynced ones, never a hole.
- `Storage.load` returns what a core needs to rebuild itself (DESIGN.md rule 11).
- `Transport.send` never blocks and never raises for an unreachable peer: the network may lose
  any message, and the protocol copes.
- `StateMachine.apply` is deterministic: it reads only the entry and the machine's own state
  (rule 6). It returns the result for the client that proposed the entry.
"""

from dataclasses import dataclass
from typing import Protocol, TypeVar

from conclave.core.effects import Entry, HardState, Ready, Send, Snapshot
from conclave.core.ids import LogIndex

M = TypeVar("M")


@dataclass(frozen=True, slots=True, kw_only=True)
class StableState:
    """Everything stable storage holds for one node: enough to rebuild its core."""

    hard_state: HardState
    snapshot: Snapshot | None
    entries: tuple[Entry, ...]


class Storage(Protocol):
    """Stable storage of one node's consensus state."""

    def load(self) -> StableState:
        """The durable state, as of the last sync (plus any unsynced writes that survived)."""
        ...

    def save(
        self, hard_state: HardState | None, snapshot: Snapshot | None, entries: tuple[Entry, ...]
    ) -> None:
        """Buffer a write, in the order of the Ready contract (hard state, snapshot, entries).

        Saving a snapshot drops every entry at or below its index; if the stable entry at its
        index has another term, every entry is dropped (the log is replaced by the snapshot).
        Saving entries replaces every stable entry at index >= the first one's index.
        """
        ...

    def sync(self) -> None:
        """Make every buffered write durable."""
        ...


class Transport(Protocol[M]):
    """Delivers messages to peers, best effort."""

    def send(self, envelope: Send[M]) -> None:
        """Queue a message for delivery; may drop it."""
        ...


class StateMachine(Protocol):
    """A deterministic state machine fed by the replicated log."""

    @property
    def applied_index(self) -> LogIndex:
        """Index of the last entry applied (or of the snapshot restored)."""
        ...

    def apply(self, entry: Entry) -> object:
        """Apply one committed entry; return the result for its proposer."""
        ...

    def snapshot(self) -> bytes:
        """An image of the whole state as of `applied_index`."""
        ...

    def restore(self, data: bytes, applied_index: LogIndex) -> None:
        """Replace the whole state with a snapshot image taken at `applied_index`."""
        ...


class ReadyCore(Protocol[M]):
    """A pure core as the driver sees it: it produces Readies and learns they were executed."""

    def has_ready(self) -> bool:
        """True when `ready()` would return something to do."""
        ...

    def ready(self) -> "Ready[M]":
        """The next batch of effects; must be followed by `advance` with the same batch."""
        ...

    def advance(self, ready: "Ready[M]") -> None:
        """Every effect of `ready` was executed in the contract's order."""
        ...


class ApplyListener(Protocol):
    """Optional observer of applied entries and their results (clients, checkers)."""

    def on_applied(self, entry: Entry, result: object) -> None:
        """Called once per applied entry, in log order."""
        ...


__all__ = ["ApplyListener", "ReadyCore", "StableState", "StateMachine", "Storage", "Transport"]
