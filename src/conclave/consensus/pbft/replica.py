"""The PBFT replica: a pure state machine from inputs (ticks, messages, requests) to a `Ready`.

Rules (DESIGN.md section 3; citations are to Castro and Liskov, OSDI 1999 and TOCS 2002):
- Pure: no I/O, clock, threads or global randomness; time is `tick()`. Peers are visited in
  sorted order; every dict is keyed by ints and iterated in insertion or sorted order.
- Normal case (OSDI 4.2): the primary of view v is replica_ids[v mod n]. It assigns sequence
  numbers in (h, h + L] and batches pending requests into one pre-prepare per `ready()`.
  A backup accepts a pre-prepare from the primary of its current view, with a matching digest,
  inside the watermarks, and no other digest for that view and seq; it then multicasts a
  prepare. Pre-prepare + 2f matching prepares of distinct backups = prepared: multicast a
  commit. Prepared + 2f + 1 matching commits = committed-local. Requests execute strictly in
  sequence order, each at most once per client timestamp (the last reply is cached per client).
- Execution is handed to the driver as `Ready.committed_entries`: the request in slot i of the
  batch at sequence number s becomes an `Entry` at index `entry_index(s, i)` (equal to s when
  `requests_per_batch_max` is 1), term = the view. Null requests and duplicate requests become
  NOOP entries, so every executed seq yields at least one entry and indices strictly increase.
  The driver hands each result back with `record_result(index, result)`; the replica then
  sends the reply and caches it.
- Checkpoints (OSDI 4.3): after executing a multiple of K, execution pauses at that seq
  (`pending_checkpoint`) until the shell hands in the application snapshot taken right after
  applying everything handed out so far: `checkpoint_state(seq, snapshot)`. The checkpoint
  digest is `crypto.checkpoint_state_digest(seq, snapshot, client table)`: it covers the
  replicated state itself (not just the history of batches), so a state-transfer reply can
  be verified against it. The replica keeps the snapshot of its checkpoints at or above the
  stable one. 2f + 1 matching signed checkpoints make it stable: the low watermark moves up
  and the log below it is discarded.
- State transfer (TOCS 5.3, simplified to whole snapshots): a replica that learns of a stable
  checkpoint above its last executed seq (2f + 1 matching checkpoints, a new-view's proof, or
  f + 1 replicas checkpointing beyond its window) waits `state_transfer_retry_ticks`, then asks
  peers (`StateRequest`). A `StateReply` is self-certifying: its proof must be a valid stable
  checkpoint proof whose digest equals that of the reply's snapshot and client table. The
  replica then installs it: the next Ready carries `snapshot` (the driver restores the state
  machine from it; its index is the last entry index of that seq), the client table is
  replaced, the checkpoint becomes stable, and execution continues above it.
- Retransmission (liveness under loss): every `retransmit_interval_ticks` a replica re-sends,
  at most `retransmit_messages_max` messages per round: while changing view its view-change;
  in an active view, for each seq above the stable checkpoint (not yet executed ones first)
  the primary's pre-prepare (the primary only), its own prepare and its own commit; then its
  latest checkpoint. A new primary answers a (re-sent) view-change for a view it already
  started with its new-view. Normal-case messages of later views from f + 1 replicas pull a
  replica into that view (as f + 1 view-changes do, OSDI 4.5.2).
- View change (OSDI 4.4): a backup that waits `request_timeout_ticks` for a known request moves
  to view v + 1 and multicasts a signed view-change with its stable checkpoint proof and its
  prepared certificates. f + 1 view-changes for later views pull a replica along. The new
  primary, with 2f + 1 of them, computes the set O (`viewchange.new_view_plan`) and multicasts
  a signed new-view; backups verify it by recomputing O. A replica waiting for a new-view moves
  on to the next view after a timeout that doubles at each failed attempt.
- Persist before send (rule 5): the view (HardState.term), the last executed seq
  (HardState.commit) and the protocol log (one `Entry` per seq in the window: accepted
  pre-prepare, prepared certificate, flags) go into the same Ready as the prepare, commit or
  view-change that depends on them, with `must_sync`. Rebuilding from storage (`restore`) is
  the next slice.
- Remote input is never trusted: a message with a bad MAC or signature, from a replica that is
  not its claimed sender, or otherwise impossible is dropped, traced and counted by reason in
  `drop_counts`. A broken local invariant raises `InvariantViolation`.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from conclave.consensus.pbft.crypto import (
    KeyRing,
    auth_payload,
    canonical_bytes,
    checkpoint_state_digest,
    digest_of,
)
from conclave.consensus.pbft.messages import (
    MESSAGE_TYPES,
    AuthenticatedMessage,
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
from conclave.consensus.pbft.settings import PbftConfig
from conclave.consensus.pbft.viewchange import (
    batch_problem,
    checkpoint_proof_problem,
    new_view_plan,
    new_view_problem,
    view_change_problem,
)
from conclave.core.effects import (
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Ready,
    Send,
    Snapshot,
    SnapshotMeta,
    TraceEvent,
)
from conclave.core.env import CoreEnv
from conclave.core.errors import InvariantViolation, ProposalDropped
from conclave.core.ids import NO_NODE, LogIndex, NodeId

SignedT = TypeVar("SignedT", PrePrepare, Prepare, Checkpoint, ViewChange, NewView)
NormalCaseMessage = PrePrepare | Prepare | Commit
GENESIS_DIGEST = bytes(32)  # the state digest before anything executed
_BACKOFF_DOUBLINGS_MAX = 30  # keeps 2**attempts an int of sane size


def entry_index(seq: Seq, slot: int, requests_per_batch_max: int) -> LogIndex:
    """The log index of the request in `slot` of the batch ordered at `seq`."""
    return (seq - 1) * requests_per_batch_max + slot + 1


def seq_of_index(index: LogIndex, requests_per_batch_max: int) -> Seq:
    """The sequence number whose batch holds the entry at `index`."""
    return (index - 1) // requests_per_batch_max + 1


@dataclass(slots=True)
class _Slot:
    """What this replica knows about one sequence number in its current view."""

    seq: Seq
    pre_prepare: PrePrepare | None = None
    prepares: dict[NodeId, Prepare] = field(default_factory=dict)
    commits: dict[NodeId, Commit] = field(default_factory=dict)
    prepared: bool = False
    committed: bool = False

    @property
    def digest(self) -> bytes:
        return self.pre_prepare.digest if self.pre_prepare is not None else b""


class PbftReplica:
    """One PBFT replica. Construct with `PbftReplica.bootstrap(config, env)`."""

    def __init__(self, config: PbftConfig, env: CoreEnv) -> None:
        self._config = config
        self._env = env
        self._ring = KeyRing(config.replica_id, config.keys)
        self._peers = tuple(r for r in config.replica_ids if r != config.replica_id)
        self._view: View = 0
        self._view_active = True
        # Normal-case log of the current view, and certificates that survive view changes.
        self._slots: dict[Seq, _Slot] = {}
        self._certificates: dict[Seq, PreparedCertificate] = {}
        self._next_seq: Seq = 0  # last sequence number this replica assigned as primary
        # Execution and checkpoints.
        self._last_executed: Seq = 0
        self._executed_digests: dict[Seq, bytes] = {}
        self._state_digest = GENESIS_DIGEST  # digest of the last own checkpoint
        self._own_checkpoints: dict[Seq, bytes] = {}
        self._own_checkpoint_msgs: dict[Seq, Checkpoint] = {}
        self._checkpoint_states: dict[Seq, tuple[bytes, tuple[ClientRecord, ...]]] = {}
        self._pending_checkpoint: Seq | None = None
        self._checkpoint_votes: dict[Seq, dict[NodeId, Checkpoint]] = {}
        self._stable_seq: Seq = 0
        self._stable_proof: tuple[Checkpoint, ...] = ()
        # Clients (exactly-once, OSDI 4.1): last executed timestamp and last reply per client,
        # ordered from least to most recently executed.
        self._last_timestamps: dict[NodeId, int] = {}
        self._last_replies: dict[NodeId, Reply] = {}
        self._awaiting_results: dict[LogIndex, tuple[NodeId, int]] = {}
        # Requests: known and not executed (one per client), and, on the primary, not ordered.
        self._outstanding: dict[NodeId, Request] = {}
        self._unordered: dict[NodeId, Request] = {}
        # Timers (ticks).
        self._request_wait_ticks = 0
        self._view_change_wait_ticks = 0
        self._view_change_attempts = 0
        # View change.
        self._view_changes: dict[View, dict[NodeId, ViewChange]] = {}
        self._future: list[NormalCaseMessage] = []
        self._later_views: dict[NodeId, View] = {}  # replicas seen in views above ours
        self._last_new_view: NewView | None = None
        # Retransmission and state transfer.
        self._retransmit_wait_ticks = 0
        self._transfer_seq: Seq = 0  # a checkpoint above last executed to fetch (0: none)
        self._transfer_wait_ticks = 0
        self._ahead_checkpoints: dict[NodeId, Seq] = {}  # checkpoints beyond the window
        self._snapshot_out: Snapshot | None = None
        # Outputs waiting for the next Ready.
        self._msgs: list[Send[PbftMessage]] = []
        self._to_apply: list[Entry] = []
        self._traces: list[TraceEvent] = []
        self._dirty_from: Seq | None = None
        self._prev_hard_state = HardState()
        self._drop_counts: dict[str, int] = {}
        self._handlers: dict[type, Callable[[PbftMessage], None]] = {
            Request: self._dispatch_request,
            PrePrepare: self._dispatch_pre_prepare,
            Prepare: self._dispatch_prepare,
            Commit: self._dispatch_commit,
            Checkpoint: self._dispatch_checkpoint,
            ViewChange: self._dispatch_view_change,
            NewView: self._dispatch_new_view,
            StateRequest: self._dispatch_state_request,
            StateReply: self._dispatch_state_reply,
        }

    @classmethod
    def bootstrap(cls, config: PbftConfig, env: CoreEnv) -> "PbftReplica":
        """A replica of a fresh group: view 0, nothing executed."""
        replica = cls(config, env)
        replica._trace("bootstrap", replicas=config.replica_ids, f=config.f)
        return replica

    # == observation =======================================================================

    @property
    def id(self) -> NodeId:
        return self._config.replica_id

    @property
    def config(self) -> PbftConfig:
        return self._config

    @property
    def view(self) -> View:
        return self._view

    @property
    def view_active(self) -> bool:
        """False while a view change is in progress (waiting for the new-view)."""
        return self._view_active

    @property
    def primary(self) -> NodeId:
        return self._config.primary_of(self._view)

    @property
    def is_primary(self) -> bool:
        return self.primary == self.id

    @property
    def last_executed(self) -> Seq:
        return self._last_executed

    @property
    def stable_seq(self) -> Seq:
        """The low watermark h: the last stable checkpoint."""
        return self._stable_seq

    @property
    def high_watermark(self) -> Seq:
        return self._stable_seq + self._config.watermark_window_seqs

    @property
    def stable_proof(self) -> tuple[Checkpoint, ...]:
        return self._stable_proof

    @property
    def state_digest(self) -> bytes:
        """Digest of this replica's last own checkpoint (GENESIS_DIGEST before any)."""
        return self._state_digest

    @property
    def pending_checkpoint(self) -> Seq | None:
        """The checkpoint seq execution waits at for `checkpoint_state`, or None."""
        return self._pending_checkpoint

    @property
    def transferring(self) -> Seq | None:
        """The checkpoint seq a state transfer is fetching, or None."""
        return self._transfer_seq or None

    @property
    def drop_counts(self) -> Mapping[str, int]:
        """How many remote inputs were dropped, by reason category (sorted)."""
        return dict(sorted(self._drop_counts.items()))

    def executed_digest(self, seq: Seq) -> bytes | None:
        """Digest of the batch executed at `seq`, while it is above the stable checkpoint."""
        return self._executed_digests.get(seq)

    def prepared_digest(self, seq: Seq) -> bytes | None:
        """The digest this replica holds a prepared certificate for at `seq`, if any."""
        certificate = self._certificates.get(seq)
        return certificate.pre_prepare.digest if certificate is not None else None

    def own_checkpoint(self, seq: Seq) -> bytes | None:
        """This replica's checkpoint digest at `seq`, while at or above the stable one."""
        return self._own_checkpoints.get(seq)

    def log_seqs(self) -> tuple[Seq, ...]:
        """Sequence numbers with normal-case state in memory (for tests of garbage collection)."""
        return tuple(sorted(set(self._slots) | set(self._certificates)))

    # == inputs ============================================================================

    def tick(self) -> None:
        """One logical clock tick: retransmission, state transfer, request and view timers."""
        self._retransmit_wait_ticks += 1
        if self._retransmit_wait_ticks >= self._config.retransmit_interval_ticks:
            self._retransmit_wait_ticks = 0
            self._retransmit()
        if self._transfer_seq:
            self._transfer_wait_ticks += 1
            if self._transfer_wait_ticks >= self._config.state_transfer_retry_ticks:
                self._transfer_wait_ticks = 0
                self._request_state()
        if self._view_active:
            if not self._outstanding or self.is_primary:
                # The primary does not suspect itself; f + 1 view-changes pull it along.
                self._request_wait_ticks = 0
                return
            self._request_wait_ticks += 1
            if self._request_wait_ticks >= self._config.request_timeout_ticks:
                self._trace("request_timeout", view=self._view)
                self._start_view_change(self._view + 1)
            return
        self._view_change_wait_ticks += 1
        if self._view_change_wait_ticks >= self._view_change_timeout_ticks():
            # OSDI 4.5.2: no new-view in time; try the next view and wait twice as long.
            self._view_change_attempts += 1
            self._trace("view_change_timeout", view=self._view)
            self._start_view_change(self._view + 1)

    def step(self, message: PbftMessage, *, sender: NodeId | None = None) -> None:
        """A message from a replica or a client. Bad input is dropped, traced and counted.

        `sender`, when the transport authenticated its peer, must match the claimed sender.
        """
        handler = self._handlers.get(type(message))
        if handler is None or not isinstance(message, MESSAGE_TYPES):
            self._drop(message, "invalid", "not a message this replica accepts")
            return
        if sender is not None and _claimed_sender(message) != sender:
            self._drop(message, "wrong_sender", f"claims {_claimed_sender(message)} from {sender}")
            return
        handler(message)

    def propose(self, request: Request) -> None:
        """A client request arriving at this replica (OSDI 4.1).

        The primary orders it; a backup forwards it to the primary and starts its request
        timer. A request already executed is answered from the reply cache. Raises
        `ProposalDropped` when the request is too large or too many requests wait.
        """
        if len(request.operation) > self._config.operation_bytes_max:
            raise ProposalDropped("operation exceeds operation_bytes_max")
        if not self._admit_request(request):
            raise ProposalDropped("pending_requests_max requests are waiting")

    def checkpoint_state(self, seq: Seq, snapshot: bytes) -> None:
        """The application snapshot at checkpoint `seq` (see `pending_checkpoint`).

        Call it once every entry handed out so far is applied and its result recorded: the
        snapshot must be the state machine's image right after the last entry of `seq`.
        A call for any other seq than the pending one is ignored.
        """
        if seq != self._pending_checkpoint:
            return
        self._pending_checkpoint = None
        self._take_checkpoint(seq, snapshot)
        self._execute_committed()

    def record_result(self, index: LogIndex, result: bytes) -> None:
        """The state machine's result of the committed entry at `index`: reply to its client."""
        waiting = self._awaiting_results.pop(index, None)
        if waiting is None:
            return  # a NOOP, or a result this replica no longer waits for
        client_id, timestamp = waiting
        reply = Reply(
            src=self.id, view=self._view, client_id=client_id, timestamp=timestamp, result=result
        )
        if self._last_timestamps.get(client_id) == timestamp:
            self._last_replies[client_id] = reply
        self._msgs.append(Send(to=client_id, message=reply))

    # == outputs ===========================================================================

    def has_ready(self) -> bool:
        """True when `ready()` would return something to do."""
        return bool(
            self._msgs
            or self._snapshot_out is not None
            or self._traces
            or self._to_apply
            or self._dirty_from is not None
            or self._hard_state() != self._prev_hard_state
            or self._can_order_more()
        )

    def ready(self) -> Ready[PbftMessage]:
        """Hand the driver everything to persist, send and apply (see `core.effects.Ready`)."""
        self._order_pending_requests()
        hard_state = self._hard_state()
        previous = self._prev_hard_state
        entries = self._take_dirty_records()
        snapshot, self._snapshot_out = self._snapshot_out, None
        ready: Ready[PbftMessage] = Ready(
            hard_state=hard_state if hard_state != previous else None,
            snapshot=snapshot,
            entries=entries,
            must_sync=bool(entries) or snapshot is not None or hard_state.term != previous.term,
            messages=tuple(self._msgs),
            committed_entries=tuple(self._to_apply),
            traces=tuple(self._traces),
        )
        self._prev_hard_state = hard_state
        self._msgs = []
        self._to_apply = []
        self._traces = []
        return ready

    def advance(self, ready: Ready[PbftMessage]) -> None:
        """Everything in `ready` was persisted, sent and applied.

        Nothing waits for it: execution already advanced when the entries were handed out, and
        results come back through `record_result`.
        """
        del ready

    # == invariants (DESIGN.md rule 9) =====================================================

    def check_invariants(self) -> None:
        """Raise InvariantViolation if a local invariant is broken."""
        low, high = self._stable_seq, self.high_watermark
        if low % self._config.checkpoint_interval_seqs != 0:
            raise InvariantViolation(f"stable checkpoint {low} is not a checkpoint")
        if not low <= self._last_executed <= high:
            raise InvariantViolation(f"executed {self._last_executed} outside [{low}, {high}]")
        for seq, slot in self._slots.items():
            self._check_slot(seq, slot, low, high)
        for seq in self._certificates:
            if not low < seq <= high:
                raise InvariantViolation(f"certificate for {seq} outside ({low}, {high}]")
        if sorted(self._executed_digests) != list(range(low + 1, self._last_executed + 1)):
            raise InvariantViolation("executed digests do not cover (stable, last executed]")
        if self._view_active and self.is_primary and self._next_seq < low:
            # (It may exceed the high watermark: a new primary behind the new view's stable
            # checkpoint re-proposes up to max-s and orders nothing new until it catches up.)
            raise InvariantViolation(f"primary's next seq {self._next_seq} below the window")
        if not set(self._unordered) <= set(self._outstanding):
            raise InvariantViolation("an unordered request is not outstanding")
        if len(self._outstanding) > self._config.pending_requests_max:
            raise InvariantViolation("more outstanding requests than pending_requests_max")
        if len(self._last_timestamps) > self._config.clients_max:
            raise InvariantViolation("more cached clients than clients_max")
        if len(self._future) > self._config.future_messages_max:
            raise InvariantViolation("more buffered messages than future_messages_max")

    def _check_slot(self, seq: Seq, slot: _Slot, low: Seq, high: Seq) -> None:
        if not low < seq <= high or slot.seq != seq:
            raise InvariantViolation(f"slot {seq} outside ({low}, {high}]")
        if slot.committed and not slot.prepared:
            raise InvariantViolation(f"slot {seq} committed without being prepared")
        if slot.prepared and slot.pre_prepare is None:
            raise InvariantViolation(f"slot {seq} prepared without a pre-prepare")
        if slot.pre_prepare is not None and slot.pre_prepare.view != self._view:
            raise InvariantViolation(f"slot {seq} holds a pre-prepare of another view")
        executed = self._executed_digests.get(seq)
        if slot.committed and executed is not None and executed != slot.digest:
            # The safety property itself: one request per seq among correct replicas.
            raise InvariantViolation(f"seq {seq} committed with a digest other than executed")

    # == requests (OSDI 4.1) ===============================================================

    def _dispatch_request(self, message: PbftMessage) -> None:
        assert isinstance(message, Request)
        if len(message.operation) > self._config.operation_bytes_max:
            self._drop(message, "invalid", "operation exceeds operation_bytes_max")
            return
        if not self._admit_request(message):
            self._drop(message, "overload", "pending_requests_max requests are waiting")

    def _admit_request(self, request: Request) -> bool:
        """Take a request in; False only when it is new and there is no room for it."""
        client = request.client_id
        last = self._last_timestamps.get(client)
        if last is not None and request.timestamp <= last:
            cached = self._last_replies.get(client)
            if cached is not None and cached.timestamp == request.timestamp:
                self._msgs.append(Send(to=client, message=cached))  # exactly-once: resend
            return True
        known = self._outstanding.get(client)
        if known is not None and known.timestamp > request.timestamp:
            return True  # an older request of a client that has moved on
        if known is None and len(self._outstanding) >= self._config.pending_requests_max:
            return False
        if known is None or known.timestamp < request.timestamp:
            self._outstanding[client] = request
            self._unordered.pop(client, None)
        if self._view_active:
            if self.is_primary:
                if not self._is_ordered(request):
                    self._unordered[client] = request
            else:
                self._send(self.primary, request)  # forward; our timer now watches it
        return True

    def _is_ordered(self, request: Request) -> bool:
        return any(
            slot.pre_prepare is not None and request in slot.pre_prepare.batch
            for slot in self._slots.values()
        )

    def _can_order_more(self) -> bool:
        return (
            self._view_active
            and self.is_primary
            and bool(self._unordered)
            and self._next_seq < self.high_watermark
        )

    def _order_pending_requests(self) -> None:
        """The primary batches waiting requests into pre-prepares (OSDI 4.2, TOCS 5.1.4)."""
        batch_max = self._config.requests_per_batch_max
        while self._can_order_more():
            clients = list(self._unordered)[:batch_max]
            batch = tuple(self._unordered.pop(client) for client in clients)
            self._next_seq += 1
            pre_prepare = self._sign(
                PrePrepare(
                    src=self.id,
                    view=self._view,
                    seq=self._next_seq,
                    digest=digest_of(batch),
                    batch=batch,
                )
            )
            self._broadcast(pre_prepare)
            self._accept_pre_prepare(pre_prepare)

    # == normal case (OSDI 4.2) ============================================================

    def _dispatch_pre_prepare(self, message: PbftMessage) -> None:
        assert isinstance(message, PrePrepare)
        if not self._authentic(message) or not self._in_current_view(message):
            return
        if message.src != self.primary:
            self._drop(message, "not_primary", f"pre-prepare from {message.src}")
            return
        problem = batch_problem(message.batch, message.digest, self._config)
        if problem is not None:
            self._drop(message, "invalid", problem)
            return
        slot = self._slots.get(message.seq)
        if slot is not None and slot.pre_prepare is not None:
            if slot.pre_prepare.digest != message.digest:
                self._drop(message, "equivocation", f"second digest for seq {message.seq}")
            return
        self._accept_pre_prepare(message)

    def _accept_pre_prepare(self, pre_prepare: PrePrepare) -> None:
        slot = self._slot(pre_prepare.seq)
        slot.pre_prepare = pre_prepare
        self._mark_dirty(pre_prepare.seq)
        for request in pre_prepare.batch:
            self._unordered.pop(request.client_id, None)
            if self._outstanding.get(request.client_id) is None:
                self._watch_request(request)
        if not self.is_primary:
            prepare = self._sign(
                Prepare(
                    src=self.id,
                    view=pre_prepare.view,
                    seq=pre_prepare.seq,
                    digest=pre_prepare.digest,
                )
            )
            slot.prepares[self.id] = prepare
            self._broadcast(prepare)
        self._maybe_prepared(slot)

    def _watch_request(self, request: Request) -> None:
        """Start watching a request learnt from a pre-prepare (so its timer can fire)."""
        last = self._last_timestamps.get(request.client_id)
        if last is not None and request.timestamp <= last:
            return
        if len(self._outstanding) < self._config.pending_requests_max:
            self._outstanding[request.client_id] = request

    def _dispatch_prepare(self, message: PbftMessage) -> None:
        assert isinstance(message, Prepare)
        if not self._authentic(message) or not self._in_current_view(message):
            return
        if message.src == self.primary:
            self._drop(message, "invalid", "prepare from the primary")
            return
        slot = self._slot(message.seq)
        known = slot.prepares.get(message.src)
        if known is not None:
            if known.digest != message.digest:
                self._drop(message, "equivocation", f"second prepare digest for {message.seq}")
            return
        slot.prepares[message.src] = message
        self._maybe_prepared(slot)

    def _maybe_prepared(self, slot: _Slot) -> None:
        """Pre-prepare + 2f matching prepares of distinct backups = prepared (OSDI 4.2)."""
        pre_prepare = slot.pre_prepare
        if slot.prepared or pre_prepare is None:
            return
        matching = [p for _, p in sorted(slot.prepares.items()) if p.digest == pre_prepare.digest]
        if len(matching) < self._config.prepared_quorum:
            return
        slot.prepared = True
        prepares = tuple(matching[: self._config.prepared_quorum])
        certificate = PreparedCertificate(pre_prepare=pre_prepare, prepares=prepares)
        self._certificates[slot.seq] = certificate
        self._mark_dirty(slot.seq)
        self._trace("prepared", view=self._view, seq=slot.seq)
        own = Commit(
            src=self.id, dst=self.id, view=self._view, seq=slot.seq, digest=pre_prepare.digest
        )
        slot.commits[self.id] = own
        for peer in self._peers:
            commit = replace(own, dst=peer)
            self._send(peer, replace(commit, auth=self._ring.mac(peer, auth_payload(commit))))
        self._maybe_committed(slot)

    def _dispatch_commit(self, message: PbftMessage) -> None:
        assert isinstance(message, Commit)
        if not self._authentic(message) or not self._in_current_view(message):
            return
        slot = self._slot(message.seq)
        if message.src not in slot.commits:
            slot.commits[message.src] = message
            self._maybe_committed(slot)

    def _maybe_committed(self, slot: _Slot) -> None:
        """Prepared + 2f + 1 matching commits = committed-local (OSDI 4.2)."""
        if slot.committed or not slot.prepared:
            return
        digest = slot.digest
        matching = sum(1 for c in slot.commits.values() if c.digest == digest)
        if matching < self._config.commit_quorum:
            return
        slot.committed = True
        self._mark_dirty(slot.seq)
        self._trace("committed", view=self._view, seq=slot.seq)
        self._execute_committed()

    # == execution =========================================================================

    def _execute_committed(self) -> None:
        """Execute committed batches strictly in sequence order (OSDI 4.2)."""
        while self._pending_checkpoint is None:
            slot = self._slots.get(self._last_executed + 1)
            if slot is None or not slot.committed or slot.pre_prepare is None:
                return
            self._execute(slot.seq, slot.pre_prepare)

    def _execute(self, seq: Seq, pre_prepare: PrePrepare) -> None:
        batch_max = self._config.requests_per_batch_max
        if not pre_prepare.batch:
            index = entry_index(seq, 0, batch_max)
            self._to_apply.append(Entry(term=pre_prepare.view, index=index, kind=EntryKind.NOOP))
        for slot_number, request in enumerate(pre_prepare.batch):
            index = entry_index(seq, slot_number, batch_max)
            self._to_apply.append(self._execute_request(request, index, pre_prepare.view))
        self._executed_digests[seq] = pre_prepare.digest
        self._last_executed = seq
        self._request_wait_ticks = 0  # progress: the primary is doing its job
        if self._transfer_seq and self._transfer_seq <= seq:
            self._transfer_seq = 0  # caught up by executing: no transfer needed
        if seq % self._config.checkpoint_interval_seqs == 0:
            self._pending_checkpoint = seq  # execution waits for the shell's snapshot
            self._trace("checkpoint_pending", seq=seq)

    def _execute_request(self, request: Request, index: LogIndex, view: View) -> Entry:
        client = request.client_id
        waiting = self._outstanding.get(client)
        if waiting is not None and waiting.timestamp <= request.timestamp:
            del self._outstanding[client]
            self._unordered.pop(client, None)
        last = self._last_timestamps.get(client)
        if last is not None and request.timestamp <= last:
            return Entry(term=view, index=index, kind=EntryKind.NOOP)  # at most once
        self._last_timestamps.pop(client, None)
        self._last_timestamps[client] = request.timestamp  # most recently executed last
        self._last_replies.pop(client, None)
        if len(self._last_timestamps) > self._config.clients_max:
            evicted = next(iter(self._last_timestamps))
            del self._last_timestamps[evicted]
            self._last_replies.pop(evicted, None)
        self._awaiting_results[index] = (client, request.timestamp)
        if len(self._awaiting_results) > self._config.clients_max:
            del self._awaiting_results[next(iter(self._awaiting_results))]
        return Entry(term=view, index=index, data=request.operation)

    # == checkpoints and garbage collection (OSDI 4.3) =====================================

    def _client_table(self) -> tuple[ClientRecord, ...]:
        """The exactly-once table, least recently executed first (checkpointed state)."""
        records: list[ClientRecord] = []
        for client, timestamp in self._last_timestamps.items():
            reply = self._last_replies.get(client)
            result = reply.result if reply is not None and reply.timestamp == timestamp else None
            records.append(ClientRecord(client_id=client, timestamp=timestamp, result=result))
        return tuple(records)

    def _take_checkpoint(self, seq: Seq, snapshot: bytes) -> None:
        clients = self._client_table()
        digest = checkpoint_state_digest(seq, snapshot, clients)
        self._state_digest = digest
        self._own_checkpoints[seq] = digest
        self._checkpoint_states[seq] = (snapshot, clients)
        checkpoint = self._sign(Checkpoint(src=self.id, seq=seq, state_digest=digest))
        self._own_checkpoint_msgs[seq] = checkpoint
        self._checkpoint_votes.setdefault(seq, {})[self.id] = checkpoint
        self._broadcast(checkpoint)
        self._maybe_stable(seq)

    def _dispatch_checkpoint(self, message: PbftMessage) -> None:
        assert isinstance(message, Checkpoint)
        if not self._authentic(message):
            return
        seq = message.seq
        if seq <= self._stable_seq:
            return  # already stable here
        if seq % self._config.checkpoint_interval_seqs != 0:
            self._drop(message, "invalid", f"checkpoint at {seq}, not a multiple of K")
            return
        if seq > self._stable_seq + 2 * self._config.watermark_window_seqs:
            self._note_checkpoint_ahead(message)
            return
        self._checkpoint_votes.setdefault(seq, {}).setdefault(message.src, message)
        self._maybe_stable(seq)

    def _maybe_stable(self, seq: Seq) -> None:
        """2f + 1 matching checkpoints, ours among them, make `seq` stable."""
        votes = self._checkpoint_votes.get(seq, {})
        own = self._own_checkpoints.get(seq)
        if own is None:
            self._maybe_trace_behind(seq, votes)
            return
        matching = [cp for _, cp in sorted(votes.items()) if cp.state_digest == own]
        if len(matching) >= self._config.commit_quorum:
            self._make_stable(seq, tuple(matching[: self._config.commit_quorum]))

    def _maybe_trace_behind(self, seq: Seq, votes: Mapping[NodeId, Checkpoint]) -> None:
        by_digest: dict[bytes, int] = {}
        for checkpoint in votes.values():
            by_digest[checkpoint.state_digest] = by_digest.get(checkpoint.state_digest, 0) + 1
        proven = any(count >= self._config.commit_quorum for count in by_digest.values())
        if proven:
            self._need_state(seq)

    def _note_checkpoint_ahead(self, message: Checkpoint) -> None:
        """A checkpoint beyond twice the window: f + 1 such replicas mean we are far behind.

        Only each replica's latest such seq is kept (bounded by n); no proof is needed to ask,
        because the reply proves itself.
        """
        known = self._ahead_checkpoints.get(message.src, 0)
        self._ahead_checkpoints[message.src] = max(known, message.seq)
        ahead = sorted(self._ahead_checkpoints.values(), reverse=True)
        if len(ahead) > self._config.f:
            self._need_state(ahead[self._config.f])

    def _need_state(self, seq: Seq) -> None:
        """Plan to fetch the state of checkpoint `seq` unless execution gets there first."""
        if seq <= self._last_executed or seq <= self._transfer_seq:
            return
        if not self._transfer_seq:
            self._transfer_wait_ticks = 0
        self._transfer_seq = seq
        self._trace("state_transfer_needed", seq=seq, executed=self._last_executed)

    def _make_stable(self, seq: Seq, proof: tuple[Checkpoint, ...]) -> None:
        """Move the low watermark to `seq` and discard the log below it (OSDI 4.3)."""
        self._stable_seq = seq
        self._stable_proof = proof
        self._slots = {s: slot for s, slot in self._slots.items() if s > seq}
        self._certificates = {s: c for s, c in self._certificates.items() if s > seq}
        self._executed_digests = {s: d for s, d in self._executed_digests.items() if s > seq}
        self._own_checkpoints = {s: d for s, d in self._own_checkpoints.items() if s >= seq}
        self._own_checkpoint_msgs = {s: m for s, m in self._own_checkpoint_msgs.items() if s >= seq}
        self._checkpoint_states = {s: st for s, st in self._checkpoint_states.items() if s >= seq}
        self._ahead_checkpoints = {r: s for r, s in self._ahead_checkpoints.items() if s > seq}
        self._checkpoint_votes = {s: v for s, v in self._checkpoint_votes.items() if s > seq}
        self._next_seq = max(self._next_seq, seq)
        self._trace("checkpoint_stable", seq=seq)

    # == view change (OSDI 4.4, 4.5.2) =====================================================

    def _view_change_timeout_ticks(self) -> int:
        doublings = min(self._view_change_attempts, _BACKOFF_DOUBLINGS_MAX)
        timeout = self._config.view_change_timeout_ticks << doublings
        return min(timeout, self._config.view_change_timeout_ticks_max)

    def _start_view_change(self, new_view: View) -> None:
        """Leave the current view for `new_view` and multicast a signed view-change."""
        if new_view <= self._view and not (new_view == self._view and self._view_active):
            return
        self._view = new_view
        self._view_active = False
        self._view_change_wait_ticks = 0
        self._request_wait_ticks = 0
        self._slots = {}
        self._unordered = {}
        self._future = [m for m in self._future if m.view >= new_view]
        self._view_changes = {v: vcs for v, vcs in self._view_changes.items() if v >= new_view}
        prepared = tuple(c for _, c in sorted(self._certificates.items()))
        view_change = self._sign(
            ViewChange(
                src=self.id,
                new_view=new_view,
                stable_seq=self._stable_seq,
                checkpoint_proof=self._stable_proof,
                prepared=prepared,
            )
        )
        self._view_changes.setdefault(new_view, {})[self.id] = view_change
        self._broadcast(view_change)
        self._trace("view_change_started", view=new_view, attempt=self._view_change_attempts)
        self._maybe_send_new_view()

    def _dispatch_view_change(self, message: PbftMessage) -> None:
        assert isinstance(message, ViewChange)
        if not self._authentic(message):
            return
        if message.new_view < self._view or (message.new_view == self._view and self._view_active):
            self._maybe_resend_new_view(message.src)
            self._drop(message, "stale", f"view change to {message.new_view}")
            return
        if message.new_view > self._view + self._config.view_change_views_ahead_max:
            self._drop(message, "out_of_window", f"view change to {message.new_view}")
            return
        problem = view_change_problem(message, self._config, self._ring)
        if problem is not None:
            self._drop(message, "invalid_proof", problem)
            return
        self._view_changes.setdefault(message.new_view, {}).setdefault(message.src, message)
        self._maybe_join_later_view()
        self._maybe_send_new_view()

    def _maybe_join_later_view(self) -> None:
        """f + 1 replicas in later views prove one correct replica is there: join (OSDI 4.5.2)."""
        senders: set[NodeId] = set()
        later = sorted(v for v in self._view_changes if v > self._view)
        for view in later:
            senders.update(self._view_changes[view])
        if later and len(senders) > self._config.f:
            self._start_view_change(later[0])

    def _note_later_view(self, src: NodeId, view: View) -> None:
        """f + 1 replicas working in later views: join the lowest view f + 1 of them reached.

        The normal-case counterpart of OSDI 4.5.2's f + 1 rule: a replica that missed a view
        change (and has no request waiting, so no timer) would otherwise never catch up.
        """
        if view > self._view + self._config.view_change_views_ahead_max:
            return
        self._later_views[src] = max(self._later_views.get(src, 0), view)
        views = sorted((v for v in self._later_views.values() if v > self._view), reverse=True)
        if len(views) > self._config.f:
            self._later_views = {}
            self._start_view_change(views[self._config.f])

    def _maybe_send_new_view(self) -> None:
        """As the new primary with 2f + 1 view-changes, compute O and start the view."""
        if self._view_active or not self.is_primary:
            return
        received = self._view_changes.get(self._view, {})
        if len(received) < self._config.commit_quorum:
            return
        chosen = tuple(vc for _, vc in sorted(received.items()))
        _, plan = new_view_plan(chosen)
        pre_prepares = tuple(
            self._sign(PrePrepare(src=self.id, view=self._view, seq=s, digest=d, batch=b))
            for s, d, b in plan
        )
        new_view = self._sign(
            NewView(src=self.id, view=self._view, view_changes=chosen, pre_prepares=pre_prepares)
        )
        self._broadcast(new_view)
        self._enter_view(new_view)

    def _maybe_resend_new_view(self, peer: NodeId) -> None:
        """A peer still changing to a view we started: as its primary, send it the new-view."""
        new_view = self._last_new_view
        active_primary = self._view_active and self.is_primary
        if active_primary and new_view is not None and new_view.view == self._view:
            self._send(peer, new_view)

    def _dispatch_new_view(self, message: PbftMessage) -> None:
        assert isinstance(message, NewView)
        if not self._authentic(message):
            return
        if message.src != self._config.primary_of(message.view):
            self._drop(message, "not_primary", f"new-view from {message.src}")
            return
        if message.view < self._view or (message.view == self._view and self._view_active):
            self._drop(message, "stale", f"new-view for {message.view}")
            return
        if message.view > self._view + self._config.view_change_views_ahead_max:
            self._drop(message, "out_of_window", f"new-view for {message.view}")
            return
        problem = new_view_problem(message, self._config, self._ring)
        if problem is not None:
            self._drop(message, "invalid_proof", problem)
            return
        self._enter_view(message)

    def _enter_view(self, new_view: NewView) -> None:
        """Install a verified new-view: adopt its checkpoint, re-prepare O, resume work."""
        self._view = new_view.view
        self._view_active = True
        self._view_change_attempts = 0
        self._view_change_wait_ticks = 0
        self._request_wait_ticks = 0
        self._slots = {}
        self._view_changes = {v: vcs for v, vcs in self._view_changes.items() if v > self._view}
        self._later_views = {r: v for r, v in self._later_views.items() if v > self._view}
        self._last_new_view = new_view
        self._adopt_checkpoint(new_view.view_changes)
        min_seq, _ = new_view_plan(new_view.view_changes)
        self._next_seq = max(min_seq, self._stable_seq)
        for pre_prepare in new_view.pre_prepares:
            self._next_seq = max(self._next_seq, pre_prepare.seq)
            if self._stable_seq < pre_prepare.seq <= self.high_watermark:
                self._accept_pre_prepare(pre_prepare)
        self._trace(
            "view_started", view=self._view, primary=self.primary, o=len(new_view.pre_prepares)
        )
        self._resume_requests()
        self._replay_future()

    def _adopt_checkpoint(self, view_changes: tuple[ViewChange, ...]) -> None:
        best = max(view_changes, key=lambda vc: (vc.stable_seq, vc.src))
        seq = best.stable_seq
        if seq <= self._stable_seq:
            return
        votes = self._checkpoint_votes.setdefault(seq, {})
        for checkpoint in best.checkpoint_proof:
            votes.setdefault(checkpoint.src, checkpoint)  # a pending checkpoint may use them
        own = self._own_checkpoints.get(seq)
        if own is not None and own == best.checkpoint_proof[0].state_digest:
            self._make_stable(seq, best.checkpoint_proof)
        else:
            self._need_state(seq)

    def _resume_requests(self) -> None:
        """Hand waiting requests to the new primary (or order them, as the new primary)."""
        for client, request in self._outstanding.items():
            if self.is_primary:
                if not self._is_ordered(request):
                    self._unordered[client] = request
            else:
                self._send(self.primary, request)

    def _replay_future(self) -> None:
        buffered, self._future = self._future, []
        for message in buffered:
            if message.view == self._view:
                self._handlers[type(message)](message)
            elif message.view > self._view:
                self._future.append(message)

    # == retransmission (liveness under message loss) =======================================

    def _retransmit(self) -> None:
        """Re-send, bounded by `retransmit_messages_max`, what peers may have missed."""
        budget = _Budget(self._config.retransmit_messages_max)
        if not self._view_active:
            own = self._view_changes.get(self._view, {}).get(self.id)
            if own is not None:
                self._broadcast_within(own, budget)
            return
        behind = [s for s in sorted(self._slots) if s > self._last_executed]
        done = [s for s in sorted(self._slots) if self._stable_seq < s <= self._last_executed]
        for seq in (*behind, *done):
            slot = self._slots[seq]
            if not self._retransmit_slot(slot, budget):
                return
        latest = max(self._own_checkpoint_msgs, default=None)
        if latest is not None:
            self._broadcast_within(self._own_checkpoint_msgs[latest], budget)

    def _retransmit_slot(self, slot: _Slot, budget: "_Budget") -> bool:
        """Re-send one seq's own messages; False once the budget is spent."""
        pre_prepare = slot.pre_prepare
        if pre_prepare is None:
            return True
        if self.is_primary:
            if not self._broadcast_within(pre_prepare, budget):
                return False
        else:
            prepare = slot.prepares.get(self.id)
            if prepare is not None and not self._broadcast_within(prepare, budget):
                return False
        own = slot.commits.get(self.id)
        if own is not None:
            for peer in self._peers:
                if not budget.take():
                    return False
                commit = replace(own, dst=peer)
                self._send(peer, replace(commit, auth=self._ring.mac(peer, auth_payload(commit))))
        return True

    def _broadcast_within(self, message: PbftMessage, budget: "_Budget") -> bool:
        for peer in self._peers:
            if not budget.take():
                return False
            self._send(peer, message)
        return True

    # == state transfer (TOCS 5.3) ========================================================

    def _request_state(self) -> None:
        """Ask every peer for the state of a checkpoint at or above the target."""
        for peer in self._peers:
            request = StateRequest(src=self.id, dst=peer, seq=self._transfer_seq)
            self._send(peer, replace(request, auth=self._ring.mac(peer, auth_payload(request))))
        self._trace("state_requested", seq=self._transfer_seq, executed=self._last_executed)

    def _dispatch_state_request(self, message: PbftMessage) -> None:
        assert isinstance(message, StateRequest)
        if not self._authentic(message):
            return
        seq = self._stable_seq
        state = self._checkpoint_states.get(seq)
        if seq < message.seq or state is None or not self._stable_proof:
            return  # nothing as recent to offer; another replica will answer
        snapshot, clients = state
        reply = StateReply(
            src=self.id,
            dst=message.src,
            seq=seq,
            proof=self._stable_proof,
            snapshot=snapshot,
            clients=clients,
        )
        self._send(message.src, reply)

    def _dispatch_state_reply(self, message: PbftMessage) -> None:
        assert isinstance(message, StateReply)
        if not self._transfer_seq or message.seq <= self._last_executed:
            return  # not asked for, or execution got there first
        problem = self._state_reply_problem(message)
        if problem is not None:
            self._drop(message, "invalid_proof", problem)
            return
        self._install_state(message)

    def _state_reply_problem(self, reply: StateReply) -> str | None:
        if reply.dst != self.id:
            return f"state reply for {reply.dst}"
        if len(reply.snapshot) > self._config.snapshot_bytes_max:
            return "snapshot exceeds snapshot_bytes_max"
        if len(reply.clients) > self._config.clients_max:
            return "client table exceeds clients_max"
        if reply.seq <= 0:
            return "state reply for the initial state"
        problem = checkpoint_proof_problem(reply.seq, reply.proof, self._config, self._ring)
        if problem is not None:
            return problem
        digest = checkpoint_state_digest(reply.seq, reply.snapshot, reply.clients)
        if digest != reply.proof[0].state_digest:
            return "state reply does not match its checkpoint proof"
        return None

    def _install_state(self, reply: StateReply) -> None:
        """Adopt a verified checkpoint state; the driver restores the state machine from it."""
        seq, batch_max = reply.seq, self._config.requests_per_batch_max
        last_index = entry_index(seq + 1, 0, batch_max) - 1
        self._last_executed = seq
        self._pending_checkpoint = None
        if self._transfer_seq <= seq:
            self._transfer_seq = 0
        digest = reply.proof[0].state_digest
        self._state_digest = digest
        self._own_checkpoints[seq] = digest
        self._checkpoint_states[seq] = (reply.snapshot, reply.clients)
        self._install_clients(reply.clients)
        self._awaiting_results = {i: w for i, w in self._awaiting_results.items() if i > last_index}
        self._executed_digests = {}
        self._snapshot_out = Snapshot(
            meta=SnapshotMeta(
                index=last_index, term=self._view, conf=ConfState(voters=self._config.replica_ids)
            ),
            data=reply.snapshot,
        )
        if seq > self._stable_seq:
            self._make_stable(seq, reply.proof)
        self._mark_dirty(seq + 1)  # the tail is rewritten after the snapshot
        self._trace("state_transferred", seq=seq, src=reply.src)
        self._execute_committed()

    def _install_clients(self, clients: tuple[ClientRecord, ...]) -> None:
        self._last_timestamps = {}
        self._last_replies = {}
        for record in clients:
            self._last_timestamps[record.client_id] = record.timestamp
            if record.result is not None:
                self._last_replies[record.client_id] = Reply(
                    src=self.id,
                    view=self._view,
                    client_id=record.client_id,
                    timestamp=record.timestamp,
                    result=record.result,
                )
        for client, request in list(self._outstanding.items()):
            last = self._last_timestamps.get(client)
            if last is not None and request.timestamp <= last:
                del self._outstanding[client]
                self._unordered.pop(client, None)

    # == message checks ====================================================================

    def _authentic(self, message: AuthenticatedMessage) -> bool:
        """Check the claimed sender and its MAC or signature; drop and count on failure."""
        src = message.src
        if src == self.id or src not in self._config.replica_ids:
            self._drop(message, "unknown_sender", f"claimed sender {src}")
            return False
        payload = auth_payload(message)
        if isinstance(message, Commit | StateRequest):
            if message.dst != self.id or not self._ring.mac_valid(src, payload, message.auth):
                self._drop(message, "bad_mac", f"claimed sender {src}")
                return False
            return True
        if not self._ring.signature_valid(src, payload, message.auth):
            self._drop(message, "bad_signature", f"claimed sender {src}")
            return False
        return True

    def _in_current_view(self, message: NormalCaseMessage) -> bool:
        """True for a normal-case message of the active view inside the watermarks.

        Messages of a later view (or of the view being changed to) wait in a bounded buffer
        until that view starts: delivery order must not cost liveness.
        """
        if message.view < self._view:
            self._drop(message, "stale", f"view {message.view} < {self._view}")
            return False
        if message.view > self._view or not self._view_active:
            if len(self._future) >= self._config.future_messages_max:
                self._drop(message, "overload", "future_messages_max reached")
            else:
                self._future.append(message)
            if message.view > self._view:
                self._note_later_view(message.src, message.view)
            return False
        if not self._stable_seq < message.seq <= self.high_watermark:
            self._drop(message, "out_of_window", f"seq {message.seq}")
            return False
        return True

    # == plumbing ==========================================================================

    def _slot(self, seq: Seq) -> _Slot:
        slot = self._slots.get(seq)
        if slot is None:
            slot = self._slots[seq] = _Slot(seq=seq)
        return slot

    def _mark_dirty(self, seq: Seq) -> None:
        if self._dirty_from is None or seq < self._dirty_from:
            self._dirty_from = seq

    def _take_dirty_records(self) -> tuple[Entry, ...]:
        """The protocol-log records to persist: every seq from the lowest changed one on.

        Storage replaces every stored entry at index >= the first written one, so the whole
        tail is rewritten (at most L records).
        """
        start, self._dirty_from = self._dirty_from, None
        if start is None:
            return ()
        known = [s for s in (*self._slots, *self._certificates) if s >= start]
        if not known:
            return ()
        start = max(start, self._stable_seq + 1)
        return tuple(self._record(seq) for seq in range(start, max(known) + 1))

    def _record(self, seq: Seq) -> Entry:
        slot = self._slots.get(seq)
        certificate = self._certificates.get(seq)
        if certificate is None and (slot is None or slot.pre_prepare is None):
            return Entry(term=self._view, index=seq, kind=EntryKind.NOOP)
        state = (
            slot.pre_prepare if slot is not None else None,
            slot is not None and slot.prepared,
            slot is not None and slot.committed,
            certificate,
        )
        return Entry(term=self._view, index=seq, data=canonical_bytes(state))

    def _hard_state(self) -> HardState:
        return HardState(term=self._view, vote=NO_NODE, commit=self._last_executed)

    def _sign(self, message: SignedT) -> SignedT:
        return replace(message, auth=self._ring.sign(auth_payload(message)))

    def _send(self, to: NodeId, message: PbftMessage) -> None:
        self._msgs.append(Send(to=to, message=message))

    def _broadcast(self, message: PbftMessage) -> None:
        for peer in self._peers:
            self._send(peer, message)

    def _trace(self, kind: str, **fields: object) -> None:
        if self._env.trace_enabled:
            self._traces.append(TraceEvent(node=self.id, kind=kind, fields=tuple(fields.items())))

    def _drop(self, message: object, category: str, reason: str) -> None:
        self._drop_counts[category] = self._drop_counts.get(category, 0) + 1
        tag = getattr(type(message), "TAG", type(message).__name__)
        self._trace("drop", msg=tag, src=_claimed_sender(message), category=category, reason=reason)


class _Budget:
    """A countdown of messages one retransmission round may still send."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def _claimed_sender(message: object) -> NodeId:
    if isinstance(message, Request):
        return message.client_id
    src = getattr(message, "src", NO_NODE)
    return src if isinstance(src, int) else NO_NODE


__all__ = ["GENESIS_DIGEST", "PbftReplica", "entry_index", "seq_of_index"]
