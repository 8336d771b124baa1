"""The pure PBFT consensus core (Castro and Liskov, OSDI 1999 and TOCS 2002).

Public surface: `PbftReplica` with its settings, messages, the pure client and the crypto
helpers. Everything here is pure: inputs in, a `Ready` out (DESIGN.md section 3).
This slice has the normal case, checkpoints, view change, retransmission, state transfer
(checkpoints cover the application snapshot the shell hands in with `checkpoint_state`) and the
client; restore from storage, the read-only path and client authentication come next.
"""

from conclave.consensus.pbft.client import (
    ClientReady,
    ClientResult,
    PbftClient,
    PbftClientConfig,
)
from conclave.consensus.pbft.crypto import (
    KeyRing,
    ReplicaKeys,
    auth_payload,
    canonical_bytes,
    checkpoint_state_digest,
    dev_keys,
    digest_of,
)
from conclave.consensus.pbft.messages import (
    MESSAGE_TYPES,
    Checkpoint,
    ClientRecord,
    Commit,
    NewView,
    PbftMessage,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    Reply,
    Request,
    Seq,
    StateReply,
    StateRequest,
    View,
    ViewChange,
)
from conclave.consensus.pbft.replica import (
    GENESIS_DIGEST,
    PbftReplica,
    entry_index,
    seq_of_index,
)
from conclave.consensus.pbft.settings import PbftConfig
from conclave.consensus.pbft.viewchange import NULL_BATCH, new_view_plan

__all__ = [
    # the replica and its settings
    "PbftReplica",
    "PbftConfig",
    "GENESIS_DIGEST",
    "entry_index",
    "seq_of_index",
    # the client
    "PbftClient",
    "PbftClientConfig",
    "ClientReady",
    "ClientResult",
    # keys and authentication
    "KeyRing",
    "ReplicaKeys",
    "auth_payload",
    "canonical_bytes",
    "checkpoint_state_digest",
    "dev_keys",
    "digest_of",
    # messages
    "MESSAGE_TYPES",
    "NULL_BATCH",
    "Checkpoint",
    "ClientRecord",
    "Commit",
    "NewView",
    "PbftMessage",
    "PrePrepare",
    "Prepare",
    "PreparedCertificate",
    "Reply",
    "Request",
    "Seq",
    "StateReply",
    "StateRequest",
    "View",
    "ViewChange",
    "new_view_plan",
]
