"""Messages of PBFT (Castro and Liskov, OSDI 1999 section 4; TOCS 2002 section 4).

Rules (DESIGN.md rule 7):
- Every message is a frozen, slotted, keyword-only dataclass with tuple fields and a stable
  class-level `TAG` that codecs use on the wire; tags never change once released.
- `auth` carries the message's authentication: an HMAC-SHA256 for the receiver (`Commit`),
  or an Ed25519 signature by `src` (everything forwarded as a proof: `PrePrepare`, `Prepare`,
  `Checkpoint`, `ViewChange`, `NewView`). It covers every other field (see `crypto.auth_payload`).
  `Request` and `Reply` are not authenticated in this slice (client keys come with the shell).
  `StateRequest` carries a MAC for `dst`. `StateReply` carries no authentication of its own: it
  is self-certifying, checked against the stable-checkpoint proof it carries (2f + 1 signed
  checkpoints whose `state_digest` must equal `checkpoint_state_digest` of its contents).
- Signed messages carry no receiver: the same signed statement goes to every replica and may
  be forwarded inside another message (checkpoint proofs, prepared certificates, the
  view-change set of a new-view).
- A batch is a tuple of requests; the empty batch is the null request that a new primary puts
  in the gaps of a new view (OSDI 1999, section 4.4).
"""

from dataclasses import dataclass
from typing import ClassVar

from conclave.core.ids import NodeId

View = int
Seq = int


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A client's operation. `timestamp` grows per client; it makes execution exactly-once."""

    TAG: ClassVar[str] = "pbft.request"
    AUTH_KIND: ClassVar[str] = "none"
    client_id: NodeId
    timestamp: int
    operation: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class PrePrepare:
    """The primary of `view` assigns `seq` to the batch whose digest is `digest` (signed)."""

    TAG: ClassVar[str] = "pbft.pre_prepare"
    AUTH_KIND: ClassVar[str] = "signature"
    src: NodeId
    view: View
    seq: Seq
    digest: bytes
    batch: tuple[Request, ...]
    auth: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepare:
    """Backup `src` accepted the pre-prepare (`view`, `seq`, `digest`) (signed)."""

    TAG: ClassVar[str] = "pbft.prepare"
    AUTH_KIND: ClassVar[str] = "signature"
    src: NodeId
    view: View
    seq: Seq
    digest: bytes
    auth: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """Replica `src` has prepared (`view`, `seq`, `digest`) (MAC for `dst`)."""

    TAG: ClassVar[str] = "pbft.commit"
    AUTH_KIND: ClassVar[str] = "mac"
    src: NodeId
    dst: NodeId
    view: View
    seq: Seq
    digest: bytes
    auth: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """Replica `src` executed the client's request `timestamp` with `result`."""

    TAG: ClassVar[str] = "pbft.reply"
    AUTH_KIND: ClassVar[str] = "none"
    src: NodeId
    view: View
    client_id: NodeId
    timestamp: int
    result: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """Replica `src` executed through `seq`, reaching `state_digest` (signed)."""

    TAG: ClassVar[str] = "pbft.checkpoint"
    AUTH_KIND: ClassVar[str] = "signature"
    src: NodeId
    seq: Seq
    state_digest: bytes
    auth: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedCertificate:
    """Proof that a request prepared: its pre-prepare and 2f matching prepares of backups."""

    TAG: ClassVar[str] = "pbft.prepared_certificate"
    pre_prepare: PrePrepare
    prepares: tuple[Prepare, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewChange:
    """Replica `src` moves to `new_view` (signed).

    `stable_seq` is its last stable checkpoint, proven by `checkpoint_proof` (2f + 1 matching
    signed checkpoints; empty when `stable_seq` is 0). `prepared` holds, per sequence number
    above `stable_seq`, the certificate of the highest view in which it prepared a request.
    """

    TAG: ClassVar[str] = "pbft.view_change"
    AUTH_KIND: ClassVar[str] = "signature"
    src: NodeId
    new_view: View
    stable_seq: Seq
    checkpoint_proof: tuple[Checkpoint, ...]
    prepared: tuple[PreparedCertificate, ...]
    auth: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewView:
    """The primary of `view` starts it (signed).

    `view_changes` are the 2f + 1 (or more) view-change messages it used; `pre_prepares` is
    the set O computed from them, one per sequence number above the highest stable checkpoint
    up to the highest prepared one, with null requests (empty batches) in the gaps.
    """

    TAG: ClassVar[str] = "pbft.new_view"
    AUTH_KIND: ClassVar[str] = "signature"
    src: NodeId
    view: View
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    auth: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientRecord:
    """One client's exactly-once record: its last executed timestamp and that reply's result.

    `result` is None when the state machine returned nothing for it (the replica then has no
    reply to resend). Part of the checkpointed state: a replica restored by state transfer must
    refuse the same old timestamps as the others.
    """

    TAG: ClassVar[str] = "pbft.client_record"
    client_id: NodeId
    timestamp: int
    result: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StateRequest:
    """Replica `src` is behind and asks `dst` for the state of a checkpoint at or above `seq`."""

    TAG: ClassVar[str] = "pbft.state_request"
    AUTH_KIND: ClassVar[str] = "mac"
    src: NodeId
    dst: NodeId
    seq: Seq
    auth: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class StateReply:
    """The state of the stable checkpoint at `seq`, with its proof (self-certifying).

    `snapshot` is the application snapshot the shell supplied at `seq` (`checkpoint_state`),
    `clients` the replica's exactly-once table at `seq` (least recently executed first).
    """

    TAG: ClassVar[str] = "pbft.state_reply"
    AUTH_KIND: ClassVar[str] = "none"
    src: NodeId
    dst: NodeId
    seq: Seq
    proof: tuple[Checkpoint, ...]
    snapshot: bytes
    clients: tuple[ClientRecord, ...]


PbftMessage = (
    Request
    | PrePrepare
    | Prepare
    | Commit
    | Reply
    | Checkpoint
    | ViewChange
    | NewView
    | StateRequest
    | StateReply
)
AuthenticatedMessage = (
    PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView | StateRequest
)

MESSAGE_TYPES: tuple[type[PbftMessage], ...] = (
    Request,
    PrePrepare,
    Prepare,
    Commit,
    Reply,
    Checkpoint,
    ViewChange,
    NewView,
    StateRequest,
    StateReply,
)

__all__ = [
    "MESSAGE_TYPES",
    "AuthenticatedMessage",
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
]
