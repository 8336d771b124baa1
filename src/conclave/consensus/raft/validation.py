"""Validation of remote messages (DESIGN.md rule 8).

Rules: a message is checked for what no correct peer could send (wrong address, negative
indices, entries that do not follow `prev_index`, terms above the message's term, undecodable
membership changes, snapshots without a configuration). Such input is dropped and traced by
the node; it never raises. What is merely stale (an older term, a reordered response) is
plausible and left to the protocol.
"""

from conclave.consensus.raft.messages import (
    MESSAGE_TYPES,
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    RequestVote,
)
from conclave.consensus.raft.types import ConfChange
from conclave.core.effects import Entry, EntryKind, Snapshot
from conclave.core.ids import NodeId


def invalid_reason(msg: object, receiver: NodeId) -> str | None:
    """Why a remote message is impossible (and must be dropped), or None if plausible."""
    if not isinstance(msg, MESSAGE_TYPES):
        return "unknown message type"
    if msg.dst != receiver:
        return f"addressed to {msg.dst}"
    if msg.src <= 0 or msg.src == receiver:
        return f"bad source {msg.src}"
    if msg.term < 0:
        return "negative term"
    if isinstance(msg, RequestVote):
        if msg.last_log_index < 0 or not 0 <= msg.last_log_term <= msg.term:
            return "impossible last log position"
    elif isinstance(msg, AppendEntries):
        return _invalid_append(msg)
    elif isinstance(msg, AppendEntriesResponse):
        if min(msg.match_index, msg.conflict_index, msg.conflict_term, msg.read_seq) < 0:
            return "negative index"
    elif isinstance(msg, InstallSnapshot):
        return _invalid_snapshot(msg)
    elif isinstance(msg, InstallSnapshotResponse) and msg.match_index < 0:
        return "negative index"
    return None


def _invalid_append(msg: AppendEntries) -> str | None:
    if min(msg.prev_index, msg.prev_term, msg.commit, msg.read_seq) < 0:
        return "negative index"
    if msg.prev_term > msg.term:
        return "prev_term above message term"
    prev_term = msg.prev_term
    for n, entry in enumerate(msg.entries):
        if not isinstance(entry, Entry) or entry.index != msg.prev_index + 1 + n:
            return "entries not contiguous"
        if not prev_term <= entry.term <= msg.term:
            return f"impossible term at {entry.index}"
        prev_term = entry.term
        if entry.kind is EntryKind.CONF_CHANGE:
            try:
                ConfChange.decode(entry.data)
            except ValueError:
                return f"malformed conf change at {entry.index}"
    return None


def _invalid_snapshot(msg: InstallSnapshot) -> str | None:
    snap = msg.snapshot
    if not isinstance(snap, Snapshot):
        return "not a snapshot"
    meta = snap.meta
    if meta.index < 0 or not 0 <= meta.term <= msg.term:
        return "impossible snapshot position"
    conf = meta.conf
    if not conf.voters or any(n <= 0 for n in conf.members()):
        return "snapshot without a valid configuration"
    if set(conf.voters) & set(conf.learners):
        return "snapshot configuration overlaps"
    return None


__all__ = ["invalid_reason"]
