"""One simulated node: a Raft core, its disk, its state machine and the one driver.

Rules:
- Readies are executed only by `conclave.runtime.driver.Driver` (DESIGN.md rule 5); the node
  only feeds inputs to the core (tick, step, propose, read_index, compact, conf changes) and
  then runs the driver until the core is quiet.
- The disk is a `MemoryStorage` that survives crashes: a crash keeps every synced write and a
  prefix of the unsynced ones, whose length the caller draws from the run seed (torn tail).
  Or, with `wal=True`, the real `FileStorage` on a `SimDisk` (`conclave.sim.wal_storage`): a
  crash tears the WAL's files, and restart first reopens it (its recovery runs, and is
  checked to keep every synced write). On that disk a node may also die inside a Ready,
  between its writes and their fsync, when `sync_faults` says so.
  Restart rebuilds the core with `restore(config, env, storage.load())` and the state machine
  from the stored snapshot; entries above it are applied again as the core commits them.
- A crashed node has no core: it neither receives messages nor ticks. Each incarnation gets a
  fresh `CoreEnv` whose rng is derived from the run seed, the node id and the incarnation.
- Client requests: a write is proposed and remembered by its `ProposalTicket`; its answer is
  the result applied at the ticket's index with the ticket's term (another term there means
  the proposal was lost). A read calls `read_index` and is served from the state machine when
  the driver reports the `ReadState` applied. Both are forgotten when the node crashes; reads
  still waiting are refused when the node stops leading (the client retries elsewhere).
- With `decision_class` set (the "decisions" workload), the state machine is the router
  (`NodeStateMachine`: KV and decisions on one log) running that decision machine class, and
  `on_apply` sees every applied entry with its result (the decision checkers' feed). A client
  request may carry a decision command; the cluster stamps it with the node's clock before it
  arrives (DESIGN.md rule 2), so `data` is always the exact bytes proposed.
- After applying `compaction_entries` entries beyond the last snapshot the node compacts, so
  lagging followers are caught up with InstallSnapshot.
- The node never judges safety itself: it reports persisted and applied entries and
  leadership to the `SafetyChecker` and calls the core's own `check_invariants`. Its
  transport checks persist-before-send (DESIGN.md rule 5) on what leaves it: a granted vote
  or an acknowledgement must already be durable on its disk.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from conclave.apps.kv import Get, GetResult, KVStateMachine
from conclave.apps.router import NodeStateMachine
from conclave.consensus.raft import (
    AppendEntriesResponse,
    InstallSnapshotResponse,
    RaftConfig,
    RaftMessage,
    RaftNode,
    RequestVoteResponse,
    Role,
    may_send_before_persist,
)
from conclave.core.effects import Entry, HardState, ReadState, Send, Snapshot, TraceEvent
from conclave.core.env import CoreEnv
from conclave.core.errors import InvariantViolation, NotLeader, ProposalDropped, Refusal
from conclave.core.ids import NO_NODE, LogIndex, NodeId, Term
from conclave.core.memory_storage import MemoryStorage
from conclave.core.ports import StableState
from conclave.decision.commands import DecisionCommand
from conclave.decision.machine import DecisionMachine
from conclave.runtime.driver import Driver
from conclave.sim.clock import NodeClock
from conclave.sim.invariants import SafetyChecker, SafetyViolation
from conclave.sim.network import NodeTransport, SimNetwork
from conclave.sim.wal_storage import SyncInterrupted, WalNodeStorage
from conclave.storage import FileStorage

CoreClass = type[RaftNode]


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """A client's request as it arrives at a node."""

    client_id: int
    op_no: int
    attempt: int
    key: str
    data: bytes | None  # an encoded kv Request for writes; None for a linearizable get
    decision: DecisionCommand | None = None  # a decision command (data: its stamped entry)


class ReplyKind:
    """What a node tells a client (plain strings: cheap and readable in traces)."""

    OK = "ok"  # the result is known
    REFUSED = "refused"  # not proposed here (not leader, dropped): safe to retry elsewhere
    RETRY = "retry"  # proposed here but the outcome is unknown (lost, overwritten)


@dataclass(frozen=True, slots=True)
class ClientReply:
    """A node's answer to one attempt of a client op."""

    client_id: int
    op_no: int
    attempt: int
    kind: str
    node: NodeId
    result: object = None
    leader_hint: NodeId = NO_NODE


ReplyFn = Callable[[ClientReply], None]
TraceFn = Callable[[NodeId, str], None]
ApplyHook = Callable[[NodeId, Entry, object, NodeStateMachine], None]


@dataclass(frozen=True, slots=True)
class _PendingWrite:
    term: Term
    request: ClientRequest


class _ObservedStorage(MemoryStorage):
    """The node's disk; reports every persisted entry to the safety checker."""

    def __init__(self, node: "SimNode") -> None:
        super().__init__()
        self._node = node

    def save(
        self, hard_state: HardState | None, snapshot: Snapshot | None, entries: tuple[Entry, ...]
    ) -> None:
        if entries:
            self._node.observe_persist(entries)
        super().save(hard_state, snapshot, entries)


def _durable_through(stable: StableState, index: LogIndex) -> bool:
    """Whether the durable log (snapshot plus entries) reaches `index`."""
    if stable.snapshot is not None and stable.snapshot.meta.index >= index:
        return True
    return bool(stable.entries) and stable.entries[-1].index >= index


class _Loadable(Protocol):
    def load(self) -> StableState: ...


class SyncFaults(Protocol):
    """Who decides that a node dies during a sync, and handles it (the fault injector)."""

    def interrupt_sync(self, node: "SimNode", snapshot_pending: bool) -> bool:
        """Whether this sync of `node` (of a snapshot, or not) is interrupted by a crash."""
        ...

    def sync_interrupted(self, node: "SimNode") -> None:
        """`node` died during a sync: crash its disk and schedule its restart."""
        ...


class _CheckedTransport:
    """The node's `Transport`: checks persist-before-send (DESIGN.md rule 5), then sends.

    A granted vote and an acknowledgement of entries or of a snapshot may leave only once
    the state they promise is durable: a crash right after the send must not lose it.
    """

    def __init__(self, node_id: NodeId, network: SimNetwork[RaftMessage], disk: _Loadable):
        self._inner: NodeTransport[RaftMessage] = NodeTransport(network, node_id)
        self._disk = disk
        self._node_id = node_id

    def send(self, envelope: Send[RaftMessage]) -> None:
        message = envelope.message
        if isinstance(message, AppendEntriesResponse):
            if message.success and message.match_index > 0:
                self._require_log(message.match_index, "acknowledged entries")
        elif isinstance(message, RequestVoteResponse):
            if message.granted and not message.pre_vote:
                hard = self._disk.load().hard_state
                if hard.term != message.term or hard.vote != message.dst:
                    self._fail(
                        f"granted a vote to n{message.dst} in term {message.term} "
                        f"but the disk holds term {hard.term} vote {hard.vote}"
                    )
        elif isinstance(message, InstallSnapshotResponse) and message.match_index > 0:
            self._require_log(message.match_index, "acknowledged a snapshot")
        self._inner.send(envelope)

    def _require_log(self, index: LogIndex, what: str) -> None:
        if not _durable_through(self._disk.load(), index):
            self._fail(f"{what} up to {index} that are not durable")

    def _fail(self, detail: str) -> None:
        raise SafetyViolation("persist-before-send", f"n{self._node_id} {detail}")


class _ObservedMachine(KVStateMachine):
    """The node's kv state machine; reports snapshot restores to the node."""

    def __init__(self, node: "SimNode") -> None:
        super().__init__()
        self._node = node

    def restore(self, data: bytes, applied_index: LogIndex) -> None:
        super().restore(data, applied_index)
        self._node.observe_restore(applied_index)


class _ObservedRouter(NodeStateMachine):
    """The router (KV + decisions) running `decision_class`; reports restores to the node.

    The decision machine's own invariants are assertions; they become `InvariantViolation`s
    here, so that the simulator reports them as the state machine's invariant.
    """

    def __init__(self, node: "SimNode", decision_class: type[DecisionMachine]) -> None:
        super().__init__()
        self._node = node
        self._decision_class = decision_class
        self.decisions = decision_class(self.target)

    def restore(self, data: bytes, applied_index: LogIndex) -> None:
        super().restore(data, applied_index)
        restored = self.decisions
        if type(restored) is not self._decision_class:
            fresh = self._decision_class(self.target)
            fresh.kinds, fresh.proposals = restored.kinds, restored.proposals
            fresh.conflicts, fresh.audit = restored.conflicts, restored.audit
            fresh.now_ms, fresh.refusals = restored.now_ms, restored.refusals
            self.decisions = fresh
        self._node.observe_restore(applied_index)

    def query(self, request: Get) -> GetResult:
        return self.kv.query(request)

    def check_invariants(self) -> None:
        try:
            super().check_invariants()
        except AssertionError as exc:
            raise InvariantViolation(f"decision machine: {exc}") from exc


class SimNode:
    """A node of the simulated cluster, alive or crashed."""

    def __init__(
        self,
        node_id: NodeId,
        *,
        seed: int,
        core_class: CoreClass,
        config: RaftConfig,
        clock: NodeClock,
        network: SimNetwork[RaftMessage],
        checker: SafetyChecker,
        reply: ReplyFn,
        compaction_entries: int,
        trace: TraceFn | None = None,
        wal: bool = False,
        storage_class: type[FileStorage] = FileStorage,
        sync_faults: SyncFaults | None = None,
        decision_class: type[DecisionMachine] | None = None,
        on_apply: ApplyHook | None = None,
    ) -> None:
        self.id = node_id
        self._decision_class = decision_class
        self._on_apply = on_apply
        self.clock = clock
        self._seed = seed
        self._core_class = core_class
        self._config = config
        self._sync_faults = sync_faults
        self.storage: _ObservedStorage | WalNodeStorage = (
            WalNodeStorage(
                f"n{node_id}",
                self.observe_persist,
                storage_class=storage_class,
                interrupt_sync=None if sync_faults is None else self._interrupt_sync,
            )
            if wal
            else _ObservedStorage(self)
        )
        self._transport = _CheckedTransport(node_id, network, self.storage)
        self._checker = checker
        self._reply = reply
        self._trace = trace
        self._core_env: CoreEnv | None = None
        self.compaction_entries = compaction_entries
        self.core: RaftNode | None = None
        self.machine: KVStateMachine | _ObservedRouter = self._new_machine()
        self._driver: Driver[RaftMessage] | None = None
        self.incarnation = 0
        self.slowdown = 1  # tick period multiplier while a slow-clock fault lasts
        self.slowdown_generation = 0
        self.started = False
        self.crashes = 0
        self._pending_writes: dict[LogIndex, _PendingWrite] = {}
        self._pending_reads: dict[int, ClientRequest] = {}
        self._read_ctx = 0
        self._last_applied: LogIndex = 0
        self._checked_applied: LogIndex = -1
        self._leader_term: Term = -1

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        """True while the node runs."""
        return self.core is not None

    def _env(self) -> CoreEnv:
        rng = random.Random(f"{self._seed}:node:{self.id}:{self.incarnation}")
        self._core_env = CoreEnv(rng=rng, trace_enabled=self._trace is not None)
        return self._core_env

    def enable_tracing(self, trace: TraceFn) -> None:
        """Start reporting the core's trace events (switching changes nothing else)."""
        self._trace = trace
        if self._core_env is not None:
            self._core_env.trace_enabled = True

    def _new_machine(self) -> KVStateMachine | _ObservedRouter:
        if self._decision_class is None:
            return _ObservedMachine(self)
        return _ObservedRouter(self, self._decision_class)

    def bootstrap(self, voters: tuple[NodeId, ...]) -> None:
        """Start as a member of the initial cluster."""
        self._start(self._core_class.bootstrap(self._config, self._env(), voters=voters))

    def join(self) -> None:
        """Start as a new, empty node waiting to be added as a learner."""
        self._start(self._core_class.join_as_learner(self._config, self._env()))

    def restart(self) -> None:
        """Rebuild core and state machine from the disk alone (DESIGN.md rule 11)."""
        self.incarnation += 1
        if isinstance(self.storage, WalNodeStorage):
            self.storage.reopen()  # the WAL's recovery, self-checked (may raise a violation)
        stable = self.storage.load()
        self.machine = self._new_machine()
        self._last_applied = 0
        if stable.snapshot is None:
            # Never received anything durable: it is still a blank joiner.
            self._start(self._core_class.join_as_learner(self._config, self._env()))
            return
        if stable.snapshot.meta.index > 0:
            self.machine.restore(stable.snapshot.data, stable.snapshot.meta.index)
        self._start(self._core_class.restore(self._config, self._env(), stable))

    def _start(self, core: RaftNode) -> None:
        self.core = core
        self.started = True
        self._leader_term = -1
        self._driver = Driver(
            core=core,
            storage=self.storage,
            transport=self._transport,
            state_machine=self.machine,
            on_applied=self._on_applied,
            on_read_ready=self._on_read_ready,
            on_trace=self._on_trace,
            send_early=may_send_before_persist,
        )
        self.process()

    def crash(self, rng: random.Random) -> int:
        """Stop now; keep a random prefix of unsynced writes (memory disk: how many survived;
        WAL disk: how many unsynced bytes survived)."""
        storage = self.storage
        if isinstance(storage, WalNodeStorage):
            surviving = storage.crash(rng)
        else:
            surviving = rng.randint(0, storage.unsynced_write_count)
            storage.crash(surviving)
        self.core = None
        self._driver = None
        self._pending_writes.clear()
        self._pending_reads.clear()
        self.crashes += 1
        return surviving

    # -- inputs ---------------------------------------------------------------------------

    def tick(self) -> None:
        """One tick of this node's clock."""
        core = self.core
        assert core is not None
        core.tick()
        self.process()

    def step(self, message: RaftMessage) -> None:
        """Deliver a message from the network."""
        core = self.core
        assert core is not None
        core.step(message)
        self.process()

    def client_request(self, request: ClientRequest) -> None:
        """Handle a client's attempt: propose a write or start a linearizable read."""
        core = self.core
        assert core is not None
        try:
            if request.data is None:
                self._read_ctx += 1
                ctx = self._read_ctx
                self._pending_reads[ctx] = request
                try:
                    core.read_index(ctx)
                except Refusal:
                    del self._pending_reads[ctx]
                    raise
            else:
                ticket = core.propose(request.data)
                self._remember_write(ticket.index, ticket.term, request)
        except NotLeader as exc:
            self._answer(request, ReplyKind.REFUSED, leader_hint=exc.leader_hint)
        except ProposalDropped:
            self._answer(request, ReplyKind.REFUSED, leader_hint=self.id)
        self.process()

    def propose_data(self, data: bytes) -> bool:
        """Propose an entry on the node's own behalf (e.g. the leader's expiry timer);
        False when the core refuses it."""
        core = self.core
        assert core is not None
        try:
            core.propose(data)
        except Refusal:
            return False
        self.process()
        return True

    def _remember_write(self, index: LogIndex, term: Term, request: ClientRequest) -> None:
        older = self._pending_writes.get(index)
        if older is not None:
            # A new entry at this index replaced the older one in this log: lost (if it had
            # been committed, leader completeness would have kept it here).
            self._answer(older.request, ReplyKind.RETRY)
        self._pending_writes[index] = _PendingWrite(term, request)

    # -- the driver loop ------------------------------------------------------------------

    def _interrupt_sync(self, snapshot_pending: bool) -> bool:
        faults = self._sync_faults
        return faults is not None and faults.interrupt_sync(self, snapshot_pending)

    def process(self) -> None:
        """Run the driver until the core is quiet, compact when due, then check invariants.

        A sync interrupted by a simulated crash ends it: the node is down afterwards."""
        core = self.core
        driver = self._driver
        assert core is not None
        assert driver is not None
        machine = self.machine
        try:
            driver.run()
            if machine.applied_index - core.snapshot_meta.index >= self.compaction_entries:
                core.compact(machine.applied_index, machine.snapshot())
                driver.run()
        except SyncInterrupted:
            assert self._sync_faults is not None
            self._sync_faults.sync_interrupted(self)
            return
        if machine.applied_index != self._checked_applied:
            self._checked_applied = machine.applied_index
            try:
                machine.check_invariants()
            except InvariantViolation as exc:
                raise SafetyViolation("state-machine-invariant", f"n{self.id}: {exc}") from exc
        self._check(core)

    def _check(self, core: RaftNode) -> None:
        try:
            core.check_invariants()
        except InvariantViolation as exc:
            raise SafetyViolation("core-invariant", f"n{self.id}: {exc}") from exc
        if core.role is Role.LEADER:
            if core.term != self._leader_term:
                if self._leader_term != -1:
                    self._refuse_reads(core.leader_id)
                self._leader_term = core.term
                self._checker.on_leader(core)
        elif self._leader_term != -1:
            self._leader_term = -1
            self._refuse_reads(core.leader_id)

    def _refuse_reads(self, hint: NodeId) -> None:
        reads, self._pending_reads = self._pending_reads, {}
        for request in reads.values():
            self._answer(request, ReplyKind.REFUSED, leader_hint=hint)

    def observe_restore(self, applied: LogIndex) -> None:
        """The state machine jumped to a snapshot: proposals it covers have unknown fate."""
        self._last_applied = applied
        for index in [i for i in self._pending_writes if i <= applied]:
            self._answer(self._pending_writes.pop(index).request, ReplyKind.RETRY)

    # -- driver callbacks -----------------------------------------------------------------

    def observe_persist(self, entries: tuple[Entry, ...]) -> None:
        """Storage hook: report written entries (with the term before them) to the checker."""
        core = self.core
        prev = core.term_at(entries[0].index - 1) if core is not None else None
        self._checker.on_persist(self.id, prev, entries)

    def _on_applied(self, entry: Entry, result: object) -> None:
        if entry.index != self._last_applied + 1:
            raise SafetyViolation(
                "apply-order", f"n{self.id} applied {entry.index} after {self._last_applied}"
            )
        self._last_applied = entry.index
        core = self.core
        assert core is not None
        self._checker.on_applied(self.id, core.term, entry)
        if self._on_apply is not None and isinstance(self.machine, NodeStateMachine):
            self._on_apply(self.id, entry, result, self.machine)
        pending = self._pending_writes.pop(entry.index, None)
        if pending is None:
            return
        if entry.term != pending.term:
            self._answer(pending.request, ReplyKind.RETRY)
            return
        if entry.data != pending.request.data:
            raise SafetyViolation(
                "proposal-integrity",
                f"n{self.id} applied other data at {entry.index}/{entry.term} than it proposed",
            )
        self._answer(pending.request, ReplyKind.OK, result=result)

    def _on_read_ready(self, read: ReadState) -> None:
        request = self._pending_reads.pop(read.request_ctx, None)
        if request is None:
            return
        machine = self.machine
        if machine.applied_index < read.index:
            raise SafetyViolation(
                "read-index", f"n{self.id} served a read at {machine.applied_index} < {read.index}"
            )
        self._answer(request, ReplyKind.OK, result=machine.query(Get(key=request.key)))

    def _on_trace(self, event: TraceEvent) -> None:
        if self._trace is not None:
            self._trace(self.id, event.describe())

    def _answer(
        self,
        request: ClientRequest,
        kind: str,
        *,
        result: object = None,
        leader_hint: NodeId = NO_NODE,
    ) -> None:
        self._reply(
            ClientReply(
                client_id=request.client_id,
                op_no=request.op_no,
                attempt=request.attempt,
                kind=kind,
                node=self.id,
                result=result,
                leader_hint=leader_hint,
            )
        )


__all__ = ["ClientReply", "ClientRequest", "CoreClass", "ReplyKind", "SimNode", "SyncFaults"]
