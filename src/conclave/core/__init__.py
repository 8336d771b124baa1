"""The vocabulary shared by every core: ids, effects, the Ready batch, ports, errors, quorums.

Pure (DESIGN.md section 3): nothing here performs I/O, reads a clock or uses global randomness.
"""

from conclave.core.effects import (
    ConfState,
    Entry,
    EntryKind,
    HardState,
    ReadState,
    Ready,
    Send,
    Snapshot,
    SnapshotMeta,
    TraceEvent,
)
from conclave.core.env import CoreEnv
from conclave.core.errors import (
    ConclaveError,
    InvariantViolation,
    NotLeader,
    ProposalDropped,
    Refusal,
    RemoteInputError,
)
from conclave.core.ids import NO_NODE, LogIndex, NodeId, Term
from conclave.core.memory_storage import MemoryStorage
from conclave.core.ports import StableState, StateMachine, Storage, Transport
from conclave.core.quorum import VoteResult, committed_index, quorum_size, vote_result

__all__ = [
    "NO_NODE",
    "ConclaveError",
    "ConfState",
    "CoreEnv",
    "Entry",
    "EntryKind",
    "HardState",
    "InvariantViolation",
    "LogIndex",
    "MemoryStorage",
    "NodeId",
    "NotLeader",
    "ProposalDropped",
    "ReadState",
    "Ready",
    "Refusal",
    "RemoteInputError",
    "Send",
    "Snapshot",
    "SnapshotMeta",
    "StableState",
    "StateMachine",
    "Storage",
    "Term",
    "TraceEvent",
    "Transport",
    "VoteResult",
    "committed_index",
    "quorum_size",
    "vote_result",
]
