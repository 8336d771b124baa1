"""Effects: what a core asks its driver to do, batched in a `Ready`.

The `Ready` ordering contract (DESIGN.md rules 1 and 5), executed by the one driver in
`conclave.runtime.driver`, identical in production and in the simulator:

1. Persist: write `hard_state` (if not None), then `snapshot` (if not None), then `entries`
   (an entry at index i replaces every stable entry at index >= i). When `must_sync` is true,
   make all of it durable (fsync) before going on. Nothing below may happen before this step.
2. Send `messages`. They may depend on the state persisted in step 1 (a vote, an append
   acknowledgement), which is why they wait for it: persist before send. The one exception
   is a message the core declares independent of its own durability (its
   `may_send_before_persist` predicate, given to the driver): the driver may send it before
   step 1, so the disk write overlaps the network round trip. Raft: a leader's AppendEntries
   (thesis 10.2.1) — the leader counts its own copy toward commit only in step 4.
3. Apply: if `snapshot` is not None and its index is above the state machine's applied index,
   restore the state machine from it; then apply `committed_entries` in order.
   Serve each `ReadState` once the applied index reaches its `index`.
4. Call `advance(ready)` on the core: it learns that the entries are durable (a leader counts
   its own copy only now) and that the committed entries are applied.

Every field is immutable; a Ready is a value that can be logged, compared and replayed.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from conclave.core.ids import NO_NODE, LogIndex, NodeId, Term

M = TypeVar("M")


class EntryKind(Enum):
    """What a log entry carries."""

    NORMAL = "normal"  # an opaque command for the state machine
    NOOP = "noop"  # appended by a new leader to commit its term (Raft paper 5.4.2)
    CONF_CHANGE = "conf_change"  # a membership change (payload: an encoded ConfChange)


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One log entry. `data` is opaque to the consensus core."""

    term: Term
    index: LogIndex
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class HardState:
    """State that must survive a crash: current term, vote in that term, commit index."""

    term: Term = 0
    vote: NodeId = NO_NODE
    commit: LogIndex = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfState:
    """A cluster membership: voters decide; learners only receive the log."""

    voters: tuple[NodeId, ...] = ()
    learners: tuple[NodeId, ...] = ()

    def members(self) -> tuple[NodeId, ...]:
        """Every node that receives the log, sorted."""
        return tuple(sorted((*self.voters, *self.learners)))


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotMeta:
    """Position and membership covered by a snapshot."""

    index: LogIndex
    term: Term
    conf: ConfState


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """A state-machine image as of `meta.index`; `data` is opaque to the consensus core."""

    meta: SnapshotMeta
    data: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Send(Generic[M]):
    """Deliver `message` to node `to`, after the Ready's persistence step."""

    to: NodeId
    message: M


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadState:
    """A linearizable read may be served once the applied index reaches `index`.

    `request_ctx` is the caller's token passed to `read_index`.
    """

    request_ctx: int
    index: LogIndex


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceEvent:
    """Something a core wants observed. The shell turns these into logs, spans and metrics."""

    node: NodeId
    kind: str
    fields: tuple[tuple[str, object], ...] = ()

    def describe(self) -> str:
        """One readable line: `kind k=v k=v`."""
        parts = " ".join(f"{k}={v}" for k, v in self.fields)
        return f"{self.kind} {parts}".rstrip()


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready(Generic[M]):
    """A batch of effects, to be executed in the order of the module docstring."""

    hard_state: HardState | None = None
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()
    must_sync: bool = False
    messages: tuple[Send[M], ...] = ()
    committed_entries: tuple[Entry, ...] = ()
    read_states: tuple[ReadState, ...] = ()
    traces: tuple[TraceEvent, ...] = field(default=())

    def is_empty(self) -> bool:
        """True when there is nothing to persist, send, apply or report."""
        return (
            self.hard_state is None
            and self.snapshot is None
            and not self.entries
            and not self.messages
            and not self.committed_entries
            and not self.read_states
            and not self.traces
        )


__all__ = [
    "ConfState",
    "Entry",
    "EntryKind",
    "HardState",
    "ReadState",
    "Ready",
    "Send",
    "Snapshot",
    "SnapshotMeta",
    "TraceEvent",
]
