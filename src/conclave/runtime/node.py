"""The node runner: one Raft core, its WAL, its peer transport and the KV store in asyncio.

Rules:
- The same `Driver` as the simulator executes every Ready (DESIGN.md rule 5). Inputs (ticks,
  peer messages, proposals, read barriers) only call the core and schedule one drain for the
  current loop turn, so everything that arrives in one turn shares one Ready and one fsync
  (group commit).
- The drain runs on the event loop; fsync blocks it briefly, which is what orders "persist
  before send" without threads. Any exception while executing a Ready (a failed fsync, a
  corrupt snapshot) is fatal: the node stops (fail-stop) and `failure` holds the cause.
- A write waits for its entry: it succeeded iff the entry applied at its index has its term.
  An entry of another term at that index means it was overwritten (`ProposalDropped`); a
  snapshot that jumps past it leaves the outcome unknown (`OutcomeUnknown`), like a timeout.
- Linearizable reads use ReadIndex on the leader (thesis 6.4); the driver hands a read back
  once the state machine has applied its index, and the read is then served locally.
- The member directory (peer and API addresses) is replicated in the KV store under
  `_conclave/members/<id>`, so every node learns a new member's address from the log; the
  initial members come from the settings. A membership change writes the directory first and
  then proposes the conf change.
- Times here are wall-clock (the shell); the core sees only ticks.
"""

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from conclave.apps.kv import (
    SESSIONLESS,
    CasResult,
    Command,
    CompareAndSet,
    Delete,
    DeleteResult,
    Get,
    GetResult,
    KVSettings,
    KVStateMachine,
    Put,
    PutResult,
    Range,
    RangeResult,
    Request,
)
from conclave.apps.kv.codec import encode_request
from conclave.apps.router import (
    APP_PREFIX,
    AppMachine,
    DecisionApplied,
    NodeStateMachine,
    encode_decision,
)
from conclave.consensus.raft import (
    ConfChange,
    ConfChangeOp,
    RaftConfig,
    RaftMessage,
    RaftNode,
    Role,
    may_send_before_persist,
)
from conclave.core.effects import Entry, EntryKind, HardState, ReadState
from conclave.core.env import CoreEnv
from conclave.core.errors import NotLeader, ProposalDropped, RemoteInputError
from conclave.core.ids import NO_NODE, LogIndex, NodeId
from conclave.decision.commands import DecisionCommand, Expire, Stamped
from conclave.decision.machine import DecisionMachine, Result, Status
from conclave.observability import NodeObserver
from conclave.runtime.driver import Driver
from conclave.runtime.settings import MemberAddress, NodeSettings, parse_address
from conclave.runtime.transport import TcpPeerTransport
from conclave.runtime.watch import ChangeEvent, WatchHub
from conclave.storage import FileStorage
from conclave.storage.disk import OsDisk

MEMBER_KEY_PREFIX: Final = "_conclave/members/"
RESERVED_KEY_PREFIX: Final = "_conclave/"
_PROMOTE_RETRY_SECONDS: Final = 0.1

T = TypeVar("T")


class OutcomeUnknown(Exception):
    """The operation may or may not have happened (timeout, or a snapshot jumped past it)."""


class MemberChangeError(Exception):
    """A membership change that cannot be made now; the message says why."""


class NodeStopped(Exception):
    """The node is stopping or has failed."""


@dataclass(slots=True)
class _ProposalWaiter:
    term: int
    future: "asyncio.Future[object]"


class _ObservedMachine(NodeStateMachine):
    """The node's state machines, telling the node when a snapshot replaces their state."""

    def __init__(
        self, settings: KVSettings, *, app: AppMachine | None, on_restore: Callable[[], None]
    ) -> None:
        super().__init__(settings, app)
        self._on_restore = on_restore
        self.observing = False  # off while the node restores its own snapshot at start

    def restore(self, data: bytes, applied_index: LogIndex) -> None:
        super().restore(data, applied_index)
        if self.observing:
            self._on_restore()


def member_key(node_id: NodeId) -> str:
    return f"{MEMBER_KEY_PREFIX}{node_id}"


def _decode_member(key: str, value: str | None) -> MemberAddress | None:
    """A directory entry, or None when the key or value is not one (ignored, logged by caller)."""
    if value is None or not key.startswith(MEMBER_KEY_PREFIX):
        return None
    id_text = key[len(MEMBER_KEY_PREFIX) :]
    try:
        obj = json.loads(value)
        return MemberAddress(id=int(id_text), peer_address=obj["peer"], api_address=obj["api"])
    except (ValueError, KeyError, TypeError):
        return None


def encode_member(member: MemberAddress) -> str:
    return json.dumps({"peer": member.peer_address, "api": member.api_address}, sort_keys=True)


class ConclaveNode:
    """A running member; see the module docstring. Create, `await start()`, `await stop()`."""

    def __init__(
        self,
        settings: NodeSettings,
        logger: logging.Logger | None = None,
        app: AppMachine | None = None,
    ) -> None:
        self.settings = settings
        self.log = logger or logging.getLogger(f"conclave.node.{settings.node_id}")
        self.machine = _ObservedMachine(settings.kv, app=app, on_restore=self._on_snapshot_restored)
        self._published_revision = 0
        self.watch = WatchHub(
            history_events_max=settings.watch_history_events_max,
            queue_events_max=settings.watch_queue_events_max,
        )
        self.directory: dict[NodeId, MemberAddress] = {m.id: m for m in settings.members}
        self.directory.setdefault(settings.node_id, settings.own)
        self.failure: BaseException | None = None
        self.started_at = 0.0
        self._rng = random.Random()
        self._storage: FileStorage | None = None
        self._core: RaftNode | None = None
        self._driver: Driver[RaftMessage] | None = None
        self._transport: TcpPeerTransport | None = None
        self._proposals: dict[LogIndex, _ProposalWaiter] = {}
        self._reads: dict[int, asyncio.Future[LogIndex]] = {}
        self._next_read_ctx = 1
        self._drain_scheduled = False
        self._ticker: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._changed = asyncio.Event()  # set after every drain; waiters re-check conditions
        self._was_leader = False
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._expiry_due_ms = 0
        self._background: set[asyncio.Task[None]] = set()
        # Decision watchers: each gets a wake-up when the audit trail grows (they read it).
        self.audit_listeners: set[asyncio.Event] = set()
        self._removed = False
        # Metrics and alerts (conclave.observability): hooks below, state read when needed.
        self.observer = NodeObserver(self)

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Recover from the data folder, listen, and start ticking."""
        disk = OsDisk(durable=self.settings.fsync)
        if not self.settings.fsync:
            self.log.warning("fsync is OFF: acknowledged writes are NOT durable")
        storage = FileStorage(self.settings.data_dir / f"node-{self.settings.node_id}", disk=disk)
        self._storage = storage
        report = storage.recovery_report
        self.log.info("storage recovered: %s", report.describe())
        core = self._build_core(storage)
        self._core = core
        self._load_directory_from_kv()
        self._published_revision = self.kv.revision
        self.watch.reset(self.kv.revision, reason=None)
        host, port = self.settings.peer_listen_address
        self._transport = TcpPeerTransport(
            node_id=self.settings.node_id,
            cluster_id=self.settings.cluster_id,
            host=host,
            port=port,
            peers=self._peer_addresses(),
            on_message=self._on_peer_message,
            logger=logging.getLogger(f"conclave.transport.{self.settings.node_id}"),
            rng=self._rng,
            tls=self.settings.tls,
        )
        self._driver = Driver(
            core=core,
            storage=self.observer.wrap_storage(storage),
            transport=self.observer.wrap_transport(self._transport),
            state_machine=self.machine,
            on_applied=self._on_applied,
            on_read_ready=self._on_read_ready,
            send_early=may_send_before_persist,
        )
        self.machine.observing = True
        await self._transport.start()
        self.started_at = time.monotonic()
        self._ticker = asyncio.create_task(self._tick_forever(), name="conclave-ticker")
        self.observer.start()
        self._kick()

    async def stop(self) -> None:
        """Stop ticking, close the transport and the WAL, fail what is waiting. Idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._changed.set()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.observer.stop()
        if self._transport is not None:
            await self._transport.close()
        self._cancel_expiry()
        for task in list(self._background):
            task.cancel()
        self._fail_waiters(NodeStopped("the node is stopping"))
        self.watch.close("the node is stopping")
        if self._storage is not None:
            self._storage.close()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    @property
    def running(self) -> bool:
        return self._core is not None and not self._stopped.is_set()

    def _build_core(self, storage: FileStorage) -> RaftNode:
        s = self.settings
        config = RaftConfig(
            node_id=s.node_id,
            election_timeout_ticks_min=s.election_timeout_ticks_min,
            election_timeout_ticks_max=s.election_timeout_ticks_max,
            heartbeat_interval_ticks=s.heartbeat_interval_ticks,
        )
        env = CoreEnv(rng=self._rng)
        stable = storage.load()
        fresh = stable.snapshot is None and not stable.entries and stable.hard_state == HardState()
        if not fresh:
            if stable.snapshot is not None and stable.snapshot.meta.index > 0:
                self.machine.restore(stable.snapshot.data, stable.snapshot.meta.index)
            self.log.info("restarting from the WAL (node %d)", s.node_id)
            return RaftNode.restore(config, env, stable)
        if s.join:
            self.log.info("joining as a learner; waiting for the leader's snapshot")
            return RaftNode.join_as_learner(config, env)
        voters = tuple(sorted(m.id for m in s.members))
        self.log.info("bootstrapping a new cluster with voters %s", voters)
        return RaftNode.bootstrap(config, env, voters=voters)

    # -- the loop -------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        interval = self.settings.tick_interval_ms / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if loop.time() - next_at > 10 * interval:
                next_at = loop.time()  # the process was paused (SIGSTOP): do not replay ticks
            self.core.tick()
            self._kick()

    def _kick(self) -> None:
        """Schedule one drain for this loop turn (coalesces every input of the turn)."""
        if self._drain_scheduled or self._stopped.is_set():
            return
        self._drain_scheduled = True
        asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        if self._stopped.is_set() or self._driver is None:
            return
        try:
            self._driver.run()
            self._after_drain()
        except Exception as exc:  # fail-stop: never run on after a failed Ready
            self.log.critical("fatal error while executing a Ready: %r", exc, exc_info=True)
            self.failure = exc
            asyncio.get_running_loop().create_task(self.stop())
            return
        if self.core.has_ready():
            self._kick()  # the bounded run left work (e.g. a long apply backlog)

    def _after_drain(self) -> None:
        core = self.core
        is_leader = core.role is Role.LEADER
        if self._was_leader and not is_leader:
            self._fail_reads(NotLeader(core.leader_id))
            assert self._driver is not None
            self._driver.drop_pending_reads()
        if is_leader and not self._was_leader:
            self._schedule_expiry()
        elif not is_leader and self._was_leader:
            self._cancel_expiry()
        self._was_leader = is_leader
        self._fail_skipped_proposals()
        self._maybe_compact()
        self.observer.after_drain()
        self._changed.set()
        self._changed = asyncio.Event()

    def _maybe_compact(self) -> None:
        core = self.core
        applied = self.machine.applied_index
        if applied - core.snapshot_meta.index >= self.settings.snapshot_entries:
            core.compact(applied, self.machine.snapshot())
            self.log.info("compacted the log at index %d", applied)
            self._kick()

    @property
    def kv(self) -> KVStateMachine:
        """The KV store (replaced as a whole when a snapshot is installed)."""
        return self.machine.kv

    @property
    def decisions(self) -> DecisionMachine:
        return self.machine.decisions

    @property
    def core(self) -> RaftNode:
        if self._core is None:
            raise NodeStopped("the node has not started")
        return self._core

    @property
    def transport(self) -> TcpPeerTransport:
        if self._transport is None:
            raise NodeStopped("the node has not started")
        return self._transport

    # -- inputs from peers ----------------------------------------------------------------

    def _on_peer_message(self, message: RaftMessage) -> None:
        if self._stopped.is_set():
            return
        try:
            self.core.step(message)
        except RemoteInputError as exc:
            self.log.warning("dropped a bad message from node %s: %s", message.src, exc)
            return
        self.observer.on_peer_message(message)
        self._kick()

    # -- applying -------------------------------------------------------------------------

    def _on_applied(self, entry: Entry, result: object) -> None:
        waiter = self._proposals.pop(entry.index, None)
        if waiter is not None and not waiter.future.done():
            if waiter.term == entry.term:
                waiter.future.set_result(result)
            else:
                waiter.future.set_exception(ProposalDropped("overwritten by a new leader"))
        if entry.kind is EntryKind.CONF_CHANGE:
            self._on_conf_change_applied(entry)
        elif entry.kind is EntryKind.NORMAL:
            self._publish_change(result)

    def _publish_change(self, result: object) -> None:
        if isinstance(result, DecisionApplied):
            self._publish_decision(result)
            return
        # A write moves the revision by exactly one; a cached retry does not move it.
        revision = self.kv.revision
        if revision <= self._published_revision:
            return
        self._published_revision = revision
        if not isinstance(result, PutResult | DeleteResult | CasResult):
            return
        command = self.kv.last_command  # the request the store just executed (no re-decode)
        if command is None:
            return
        event = _change_event(command, revision)
        if event is None:
            return
        self.watch.publish(event)
        if event.key.startswith(MEMBER_KEY_PREFIX):
            self._on_directory_change(event)

    def _publish_decision(self, applied: DecisionApplied) -> None:
        for listener in self.audit_listeners:
            listener.set()
        for key, value, revision in applied.writes:
            self._published_revision = revision
            kind: Literal["put", "delete"] = "put" if value is not None else "delete"
            event = ChangeEvent(kind, key, value, revision)
            self.watch.publish(event)
            if key.startswith(MEMBER_KEY_PREFIX):
                self._on_directory_change(event)
        self._schedule_expiry()

    def _on_snapshot_restored(self) -> None:
        """A leader's snapshot replaced the store: history restarts, the directory reloads."""
        self._published_revision = self.kv.revision
        self.watch.reset(self.kv.revision, reason="a snapshot from the leader was installed")
        self._load_directory_from_kv()
        if self._transport is not None:
            for node_id, address in self._peer_addresses().items():
                self._transport.set_peer(node_id, address)
        self.log.info("installed a snapshot at index %d", self.machine.applied_index)

    def _on_directory_change(self, event: ChangeEvent) -> None:
        id_text = event.key[len(MEMBER_KEY_PREFIX) :]
        if not id_text.isdigit():
            return
        node_id = int(id_text)
        member = _decode_member(event.key, event.value)
        if member is None:
            return  # a delete: the conf change removes the peer
        self.directory[node_id] = member
        if node_id != self.settings.node_id and self._transport is not None:
            self._transport.set_peer(node_id, parse_address(member.peer_address))

    def _on_conf_change_applied(self, entry: Entry) -> None:
        try:
            change = ConfChange.decode(entry.data)
        except ValueError:
            return
        self.log.info("membership change applied: %s", change.encode().decode())
        if change.op is not ConfChangeOp.REMOVE_NODE:
            return
        if change.node_id == self.settings.node_id:
            self._removed = True
            self.log.warning("this node was removed from the cluster")
            return
        self.directory.pop(change.node_id, None)
        if self._transport is not None:
            self._transport.remove_peer(change.node_id)

    def _on_read_ready(self, read: ReadState) -> None:
        future = self._reads.pop(read.request_ctx, None)
        if future is not None and not future.done():
            future.set_result(read.index)

    def _fail_skipped_proposals(self) -> None:
        applied = self.machine.applied_index
        for index in [i for i in self._proposals if i <= applied]:
            waiter = self._proposals.pop(index)
            if not waiter.future.done():
                waiter.future.set_exception(OutcomeUnknown("a snapshot replaced the entry"))

    def _fail_reads(self, exc: Exception) -> None:
        reads, self._reads = self._reads, {}
        for future in reads.values():
            if not future.done():
                future.set_exception(exc)

    def _fail_waiters(self, exc: Exception) -> None:
        self._fail_reads(exc)
        proposals, self._proposals = self._proposals, {}
        for waiter in proposals.values():
            if not waiter.future.done():
                waiter.future.set_exception(exc)

    def _load_directory_from_kv(self) -> None:
        page = self.kv.query(Range(prefix=MEMBER_KEY_PREFIX))
        for item in page.items:
            member = _decode_member(item.key, item.value)
            if member is not None:
                self.directory[member.id] = member

    def _peer_addresses(self) -> dict[NodeId, tuple[str, int]]:
        return {
            node_id: parse_address(member.peer_address)
            for node_id, member in self.directory.items()
            if node_id != self.settings.node_id
        }

    # -- operations for the API -----------------------------------------------------------

    def _check_running(self) -> None:
        if self._stopped.is_set():
            raise NodeStopped("the node is stopping")

    async def _within_timeout(self, awaitable: Awaitable[T], what: str) -> T:
        try:
            return await asyncio.wait_for(awaitable, self.settings.request_timeout_seconds)
        except TimeoutError:
            raise OutcomeUnknown(f"{what} did not finish in time") from None

    async def write(self, command: Command, client_id: int = SESSIONLESS, seq: int = 1) -> Any:
        """Propose one KV command through the log; the state machine's result."""
        data = encode_request(Request(client_id=client_id, seq=seq, command=command))
        return await self._propose_and_wait(data)

    async def _propose_and_wait(self, data: bytes) -> object:
        self._check_running()
        ticket = self.core.propose(data)  # raises NotLeader / ProposalDropped
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._proposals[ticket.index] = _ProposalWaiter(ticket.term, future)
        self._kick()
        try:
            return await self._within_timeout(future, "the write")
        except (ProposalDropped, OutcomeUnknown):
            self.observer.proposal_failed()
            raise

    async def decide(self, command: DecisionCommand) -> Result:
        """Propose a decision command stamped with this leader's clock; the machine's answer.

        Only the leader stamps (followers forward), so the times in the log come from the
        leader of their term; the machine keeps them monotonic across leaders.
        """
        stamped = Stamped(at_ms=int(time.time() * 1000), command=command)
        applied = await self._propose_and_wait(encode_decision(stamped))
        if not isinstance(applied, DecisionApplied):
            raise TypeError("a decision entry must yield a DecisionApplied")
        return applied.result

    def _schedule_expiry(self) -> None:
        """On the leader, propose an Expire just after the earliest open deadline (no polling)."""
        if self._stopped.is_set() or self._core is None or self.core.role is not Role.LEADER:
            self._cancel_expiry()
            return
        deadlines = [
            r.proposal.deadline_ms
            for r in self.decisions.proposals.values()
            if r.status is Status.OPEN
        ]
        if not deadlines:
            self._cancel_expiry()
            return
        due_ms = min(deadlines) + 1
        if self._expiry_due_ms == due_ms:
            return
        self._cancel_expiry()
        delay = max(0.0, due_ms / 1000 - time.time())
        self._expiry_due_ms = due_ms
        loop = asyncio.get_running_loop()
        self._expiry_timer = loop.call_later(delay, self._fire_expiry)

    def _cancel_expiry(self) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        self._expiry_timer = None
        self._expiry_due_ms = 0

    def _fire_expiry(self) -> None:
        self._expiry_timer = None
        self._expiry_due_ms = 0
        task = asyncio.get_running_loop().create_task(self._propose_expire())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _propose_expire(self) -> None:
        try:
            await self.decide(Expire())
        except (NotLeader, ProposalDropped, OutcomeUnknown, NodeStopped) as exc:
            self.log.info("expiry proposal not made: %r", exc)
        self._schedule_expiry()

    async def call_app(self, data: bytes) -> object:
        """Propose one call of the embedded application; its result once applied here."""
        return await self._propose_and_wait(APP_PREFIX + data)

    async def read_barrier(self) -> None:
        """Wait until a linearizable read may be served locally (ReadIndex on the leader)."""
        self._check_running()
        ctx = self._next_read_ctx
        self._next_read_ctx += 1
        future: asyncio.Future[LogIndex] = asyncio.get_running_loop().create_future()
        self._reads[ctx] = future
        try:
            self.core.read_index(ctx)
        except BaseException:
            self._reads.pop(ctx, None)
            raise
        self._kick()
        try:
            await self._within_timeout(future, "the read")
        finally:
            self._reads.pop(ctx, None)

    def get_local(self, key: str) -> GetResult:
        return self.kv.query(Get(key=key))

    def range_local(self, request: Range) -> RangeResult:
        return self.kv.query(request)

    async def wait_for(self, condition: Callable[[], bool], timeout_seconds: float) -> bool:
        """Wait until `condition()` holds after some drain; False on timeout or stop."""
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        while not condition():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or self._stopped.is_set():
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    # -- leadership and membership --------------------------------------------------------

    def leader_address(self) -> tuple[NodeId, str | None]:
        leader = self.core.leader_id
        member = self.directory.get(leader) if leader != NO_NODE else None
        return leader, (member.api_address if member is not None else None)

    async def transfer_leadership(self, target: NodeId | None) -> NodeId:
        core = self.core
        if core.role is not Role.LEADER:
            raise NotLeader(core.leader_id)
        chosen = target if target is not None else self._best_transferee()
        if chosen is None:
            raise MemberChangeError("there is no other voter to transfer leadership to")
        if chosen not in core.conf.voters:
            raise MemberChangeError(f"node {chosen} is not a voter")
        core.transfer_leadership(chosen)
        self._kick()
        done = await self.wait_for(
            lambda: self.core.leader_id == chosen, self.settings.request_timeout_seconds
        )
        if not done:
            raise OutcomeUnknown(f"node {chosen} did not take over in time")
        return chosen

    def _best_transferee(self) -> NodeId | None:
        progress = self.core.progress()
        candidates = [
            (view.match, node_id)
            for node_id, view in progress.items()
            if node_id != self.settings.node_id and node_id in self.core.conf.voters
        ]
        return max(candidates)[1] if candidates else None

    async def add_member(self, member: MemberAddress, *, learner_only: bool) -> bool:
        """Add `member` as a learner, wait for it to catch up, promote it; True if a voter."""
        core = self.core
        if core.role is not Role.LEADER:
            raise NotLeader(core.leader_id)
        conf = core.conf
        if member.id in conf.voters:
            raise MemberChangeError(f"node {member.id} is already a voter")
        self.transport.set_peer(member.id, parse_address(member.peer_address))
        self.directory[member.id] = member
        await self.write(Put(key=member_key(member.id), value=encode_member(member)))
        if member.id not in self.core.conf.learners:
            await self._propose_conf_change(
                ConfChange(op=ConfChangeOp.ADD_LEARNER, node_id=member.id)
            )
        if learner_only:
            return False
        await self._promote_when_caught_up(member.id)
        return True

    async def _promote_when_caught_up(self, node_id: NodeId) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.member_catch_up_timeout_seconds
        change = ConfChange(op=ConfChangeOp.PROMOTE_LEARNER, node_id=node_id)
        while True:
            try:
                await self._propose_conf_change(change)
                return
            except ProposalDropped as exc:
                if loop.time() >= deadline:
                    raise MemberChangeError(f"node {node_id} did not catch up: {exc}") from None
                await asyncio.sleep(_PROMOTE_RETRY_SECONDS)

    async def remove_member(self, node_id: NodeId) -> None:
        core = self.core
        if core.role is not Role.LEADER:
            raise NotLeader(core.leader_id)
        if node_id == self.settings.node_id:
            raise MemberChangeError(
                f"node {node_id} is the leader; transfer leadership first"
                " (POST /v1/leader/transfer)"
            )
        conf = core.conf
        if node_id not in conf.voters and node_id not in conf.learners:
            raise MemberChangeError(f"node {node_id} is not a member")
        if node_id in conf.voters and len(conf.voters) == 1:
            raise MemberChangeError("cannot remove the last voter")
        await self._propose_conf_change(ConfChange(op=ConfChangeOp.REMOVE_NODE, node_id=node_id))
        await self.write(Delete(key=member_key(node_id)))

    async def _propose_conf_change(self, change: ConfChange) -> None:
        self._check_running()
        ticket = self.core.propose_conf_change(change)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._proposals[ticket.index] = _ProposalWaiter(ticket.term, future)
        self._kick()
        await self._within_timeout(future, "the membership change")

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        core = self.core
        leader, leader_api = self.leader_address()
        role = core.role.value
        if core.is_learner and core.role is Role.FOLLOWER:
            role = "learner"
        last = core.last_index
        peers = {
            str(node_id): {
                "match_index": view.match,
                "lag": max(0, last - view.match),
                "state": view.state.value,
                "learner": view.is_learner,
                "active": view.recent_active,
            }
            for node_id, view in core.progress().items()
            if node_id != self.settings.node_id
        }
        conf = core.conf
        return {
            "id": self.settings.node_id,
            "cluster_id": self.settings.cluster_id,
            "role": role,
            "term": core.term,
            "leader": leader if leader != NO_NODE else None,
            "leader_api": leader_api,
            "commit_index": core.commit_index,
            "applied_index": self.machine.applied_index,
            "last_index": last,
            "snapshot_index": core.snapshot_meta.index,
            "revision": self.kv.revision,
            "voters": list(conf.voters),
            "learners": list(conf.learners),
            "removed": self._removed,
            "members": [
                {"id": m.id, "peer_address": m.peer_address, "api_address": m.api_address}
                for m in sorted(self.directory.values(), key=lambda m: m.id)
            ],
            "peers": peers,
            "wal_syncs": self._driver.stats.syncs if self._driver is not None else 0,
        }

    @property
    def proposals_pending(self) -> int:
        """Proposals made on this node that are neither applied nor failed yet."""
        return len(self._proposals)

    def is_ready(self) -> bool:
        core = self.core
        return (
            core.leader_id != NO_NODE
            and core.initialized
            and self.machine.applied_index >= core.commit_index
            and not self._removed
        )


def _change_event(command: Command, revision: int) -> ChangeEvent | None:
    match command:
        case Put(key=key, value=value):
            return ChangeEvent("put", key, value, revision)
        case Delete(key=key):
            return ChangeEvent("delete", key, None, revision)
        case CompareAndSet(key=key, new_value=value):
            return ChangeEvent("put", key, value, revision)
    return None


__all__ = [
    "MEMBER_KEY_PREFIX",
    "RESERVED_KEY_PREFIX",
    "ConclaveNode",
    "MemberChangeError",
    "NodeStopped",
    "OutcomeUnknown",
    "encode_member",
    "member_key",
]
