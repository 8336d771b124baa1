"""The pure Raft consensus core (Raft paper + Ongaro's thesis, in the style of etcd's raft).

Public surface (the contract in docs/raft-core-api.md): `RaftNode` with its settings,
messages and value types. Everything here is pure: inputs in, a `Ready` out.
"""

from conclave.consensus.raft.messages import (
    MESSAGE_TYPES,
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    RaftMessage,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
    may_send_before_persist,
)
from conclave.consensus.raft.node import RaftNode
from conclave.consensus.raft.progress import PeerProgress, ProgressState
from conclave.consensus.raft.settings import RaftConfig, ReadOnlyOption
from conclave.consensus.raft.types import (
    ConfChange,
    ConfChangeOp,
    ProposalTicket,
    Role,
    apply_conf_change,
)

__all__ = [
    "may_send_before_persist",
    # the node and its settings
    "RaftNode",
    "RaftConfig",
    "ReadOnlyOption",
    # values of its API
    "ConfChange",
    "ConfChangeOp",
    "PeerProgress",
    "ProgressState",
    "ProposalTicket",
    "Role",
    "apply_conf_change",
    # messages
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
