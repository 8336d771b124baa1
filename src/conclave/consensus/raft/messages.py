"""Messages exchanged by Raft nodes.

Rules (DESIGN.md rule 7):
- Every message is a frozen, slotted, keyword-only dataclass with tuple fields and a stable
  class-level `TAG` that codecs use on the wire; tags never change once released.
- Every message carries `src`, `dst` and the sender's `term` (Raft paper 5.1: a node that sees
  a higher term adopts it; a message with a lower term is stale).
- Messages say what the sender knows; the receiver validates them and drops (and traces)
  anything impossible, never crashing on remote input (rule 8).
"""

from dataclasses import dataclass
from typing import ClassVar

from conclave.core.effects import Entry, Snapshot
from conclave.core.ids import LogIndex, NodeId, Term


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestVote:
    """Ask for a vote (or, with `pre_vote`, whether a vote would be granted; thesis 9.6).

    A pre-vote carries the term the sender would campaign in (its term + 1) without having
    adopted it. `transfer` marks a campaign started by TimeoutNow (thesis 3.10): voters then
    bypass the leader-stickiness check.
    """

    TAG: ClassVar[str] = "raft.request_vote"
    src: NodeId
    dst: NodeId
    term: Term
    pre_vote: bool = False
    last_log_index: LogIndex
    last_log_term: Term
    transfer: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestVoteResponse:
    """A vote (or pre-vote) granted or refused.

    A granted pre-vote echoes the requested term; a refusal carries the voter's own term.
    """

    TAG: ClassVar[str] = "raft.request_vote_response"
    src: NodeId
    dst: NodeId
    term: Term
    pre_vote: bool = False
    granted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEntries:
    """Replicate `entries` after (`prev_index`, `prev_term`); also the heartbeat (no entries).

    `read_seq` is the leader's current ReadIndex round; followers echo it back so that the
    leader learns that a quorum still followed it after a read was registered (thesis 6.4).
    """

    TAG: ClassVar[str] = "raft.append_entries"
    src: NodeId
    dst: NodeId
    term: Term
    prev_index: LogIndex
    prev_term: Term
    entries: tuple[Entry, ...] = ()
    commit: LogIndex
    read_seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEntriesResponse:
    """The outcome of an AppendEntries.

    On success `match_index` is the last index known to match the leader's log. On rejection
    `match_index` is the rejected `prev_index`, and (`conflict_index`, `conflict_term`) is a
    hint (thesis 5.3's optimisation, as in etcd's findConflictByTerm): the largest index
    <= min(prev_index, last index) whose term is <= the rejected prev_term, and that term.
    `conflict_index == 0` means "I hold nothing usable": the leader sends a snapshot.
    """

    TAG: ClassVar[str] = "raft.append_entries_response"
    src: NodeId
    dst: NodeId
    term: Term
    success: bool
    match_index: LogIndex
    conflict_index: LogIndex = 0
    conflict_term: Term = 0
    read_seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshot:
    """Replace the receiver's log prefix with a state-machine image (thesis 5.2)."""

    TAG: ClassVar[str] = "raft.install_snapshot"
    src: NodeId
    dst: NodeId
    term: Term
    snapshot: Snapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshotResponse:
    """The receiver's log now matches the leader's up to `match_index`."""

    TAG: ClassVar[str] = "raft.install_snapshot_response"
    src: NodeId
    dst: NodeId
    term: Term
    match_index: LogIndex


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutNow:
    """Leadership transfer (thesis 3.10): campaign now, skipping pre-vote."""

    TAG: ClassVar[str] = "raft.timeout_now"
    src: NodeId
    dst: NodeId
    term: Term


RaftMessage = (
    RequestVote
    | RequestVoteResponse
    | AppendEntries
    | AppendEntriesResponse
    | InstallSnapshot
    | InstallSnapshotResponse
    | TimeoutNow
)

MESSAGE_TYPES: tuple[type[RaftMessage], ...] = (
    RequestVote,
    RequestVoteResponse,
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    TimeoutNow,
)

__all__ = [
    "MESSAGE_TYPES",
    "AppendEntries",
    "AppendEntriesResponse",
    "InstallSnapshot",
    "InstallSnapshotResponse",
    "RaftMessage",
    "RequestVote",
    "RequestVoteResponse",
    "TimeoutNow",
]


def may_send_before_persist(message: RaftMessage) -> bool:
    """Whether the driver may send `message` before the Ready's persist step.

    Only a leader's AppendEntries: it promises nothing about the leader's own disk (the leader
    counts its copy toward commit only after persisting, in `advance`), so replication can
    overlap the leader's fsync (Raft thesis 10.2.1). Votes and acknowledgements must wait.
    """
    return isinstance(message, AppendEntries)
