"""Scripted scenarios: drive the simulator's pieces by hand, one story step at a time.

`Cluster` runs a whole seed on its own (random workload, random faults, two phases). A
`Scenario` is the same machinery with the script in the caller's hands: the caller starts the
nodes, sends client calls to chosen nodes, cuts and heals the network, and advances simulated
time until something it can observe has happened, then reads node states, logs and the core's
trace events to explain what it saw.

Rules:
- Same pieces and same rules as `conclave.sim.cluster`: one `EventQueue` (simulated
  microseconds, no wall clock), one `SimNetwork`, `SimNode`s that execute Readies only through
  the one driver, the `SafetyChecker` after every event (through the nodes) plus a pairwise log
  comparison every `LOG_PAIR_CHECK_EVENTS` events and whenever a `run_*` call returns.
  A broken safety property raises `SafetyViolation` out of the `run_*` call.
- Time advances only inside `step`, `run_for` and `run_until`; between calls nothing happens.
  What the script does not decide comes from the seed, each purpose with its own derived
  `random.Random` (`"<seed>:net"`, `"<seed>:nodes"`, `"<seed>:clientnet"`, `"<seed>:faults"`,
  node cores `"<seed>:node:<id>:<incarnation>"`): clock phases and drift, randomized election
  timeouts, message delays. The same seed and script replay the same run exactly.
- The network is lossless by default (a story should not depend on luck); partitions are the
  script's. Clients reach every node: a partition cuts links between nodes only.
- Clients: one outstanding `Call` per client id. A call is recorded in the `History` when it
  is invoked and completed once: "ok" when a node answers with the result. A retrying call
  (the default) follows a refusal's leader hint (or tries the next node), and tries the next
  node when an attempt is unanswered for `attempt_timeout_us`; a call with `retry=False`
  makes one attempt and ends at its first refusal. At its deadline a call is "unknown" if it
  may have been proposed, else "fail" (the conventions of `conclave.sim.client`). Writes are
  session requests, so retries of one write are executed at most once.
- Observation is read-only and from outside: `status`, `log`, `leader`, `converged`, and
  `happenings`, the cores' trace events stamped with the simulated time they occurred.
- Iteration is over dicts keyed by ints (insertion ordered) or sorted tuples, never sets.
"""

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal, cast

from conclave.apps.kv import (
    CasResult,
    Command,
    CompareAndSet,
    Delete,
    DeleteResult,
    GetResult,
    KVDecodeError,
    Put,
    PutResult,
    Request,
    decode_request,
    encode_request,
)
from conclave.consensus.raft import ConfChange, RaftMessage, RaftNode, Role
from conclave.core.effects import Entry, EntryKind
from conclave.core.ids import NO_NODE, LogIndex, NodeId, Term
from conclave.sim import events as ev
from conclave.sim.client import ClientResultError
from conclave.sim.clock import EventQueue, NodeClock
from conclave.sim.history import History, OpKind
from conclave.sim.invariants import SafetyChecker
from conclave.sim.linearizability import LinearizabilityResult, check_linearizability
from conclave.sim.network import LinkProfile, SimNetwork
from conclave.sim.node import ClientReply, ClientRequest, CoreClass, ReplyKind, SimNode
from conclave.sim.settings import ConfigFactory, default_raft_config

CallStatus = Literal["pending", "ok", "fail", "unknown"]

LOG_PAIR_CHECK_EVENTS: Final = 500
RETRY_BACKOFF_US_MAX: Final = 50_000
CALL_TIMEOUT_US_DEFAULT: Final = 1_000_000
_DEADLINE: Final = 0  # the attempt number of a call's deadline event


# ------------------------------------------------------------------------------ observations


@dataclass(frozen=True, slots=True)
class Happening:
    """One trace event of a core (`kind k=v ...`), with when and where it happened."""

    at_us: int
    node: NodeId
    kind: str
    fields: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str | None:
        """The text of field `name`, or None."""
        for key, value in self.fields:
            if key == name:
                return value
        return None

    def number(self, name: str) -> int | None:
        """Field `name` as an int, or None when absent or not a number."""
        value = self.get(name)
        return int(value) if value is not None and value.lstrip("-").isdigit() else None


def parse_happening(at_us: int, node: NodeId, text: str) -> Happening:
    """Parse `TraceEvent.describe()` text; a token without `name=` continues the last value."""
    kind, _, rest = text.partition(" ")
    fields: list[list[str]] = []
    for token in rest.split(" ") if rest else ():
        name, sep, value = token.partition("=")
        if sep and name.isidentifier():
            fields.append([name, value])
        elif fields:
            fields[-1][1] += " " + token
    return Happening(at_us, node, kind, tuple((k, v) for k, v in fields))


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatus:
    """What a node looks like from outside at one instant."""

    node: NodeId
    up: bool
    role: str  # a `Role` value, or "down"
    term: Term
    vote: NodeId
    leader: NodeId
    commit: LogIndex
    applied: LogIndex
    last_index: LogIndex
    last_term: Term


def describe_entry(entry: Entry, *, client: bool = True) -> str:
    """A short human form of a log entry: `no-op`, `put color=red (client 1)`, ..."""
    if entry.kind is EntryKind.NOOP:
        return "no-op"
    if entry.kind is EntryKind.CONF_CHANGE:
        try:
            change = ConfChange.decode(entry.data)
        except ValueError:
            return "conf change (malformed)"
        return f"conf change {change.op.value} n{change.node_id}"
    try:
        request = decode_request(entry.data)
    except KVDecodeError:
        return f"opaque {len(entry.data)} bytes"
    text = describe_command(request.command)
    return f"{text} (client {request.client_id})" if client else text


def describe_command(command: Command) -> str:
    """`put k=v`, `delete k`, `cas k: old -> new`, `get k`."""
    match command:
        case Put(key=key, value=value):
            return f"put {key}={value}"
        case Delete(key=key):
            return f"delete {key}"
        case CompareAndSet(key=key, new_value=new, expected_value=old, expected_revision=rev):
            before = old if old is not None else ("<absent>" if rev == 0 else f"rev {rev}")
            return f"cas {key}: {before} -> {new}"
        case _:
            return f"get {command.key}"


# ------------------------------------------------------------------------------ client calls


@dataclass(slots=True, kw_only=True)
class Call:
    """One client operation of a scenario, from invocation to its recorded outcome."""

    client: int
    op_no: int
    kind: OpKind
    key: str
    value: str | None
    expected: str | None
    data: bytes | None  # the encoded session request of a write; None for a get
    history_id: int
    call_us: int
    deadline_us: int
    retry: bool  # False: one attempt, answered or not
    target: NodeId
    status: CallStatus = "pending"
    result: object = None
    return_us: int | None = None
    answered_by: NodeId = NO_NODE
    attempt: int = 0
    awaiting: bool = False
    maybe_proposed: bool = False
    # Where a node appended this write: (node, index, term), in the order it happened.
    proposals: list[tuple[NodeId, LogIndex, Term]] = field(default_factory=list)
    # The receiving node's commit index when the last attempt arrived (for a get served by
    # the leader: the read index it records, Raft thesis 6.4).
    commit_at_arrival: LogIndex | None = None

    @property
    def done(self) -> bool:
        """The outcome is recorded (ok, fail or unknown)."""
        return self.status != "pending"

    def describe(self) -> str:
        """`put color=red`, `cas color: red -> blue`, `get color`."""
        if self.kind == "put":
            return f"put {self.key}={self.value}"
        if self.kind == "cas":
            before = self.expected if self.expected is not None else "<absent>"
            return f"cas {self.key}: {before} -> {self.value}"
        return f"{self.kind} {self.key}"


@dataclass(frozen=True, slots=True)
class _Spec:
    kind: OpKind
    key: str
    value: str | None
    expected: str | None
    command: Command | None  # None for a get (a read is not a log entry)


@dataclass(slots=True)
class _Session:
    client_id: int
    seq: int = 0
    op_no: int = 0
    call: Call | None = None


# ------------------------------------------------------------------------------ the scenario


class Scenario:
    """A simulated Raft cluster with a KV store, driven step by step by a script."""

    def __init__(
        self,
        *,
        seed: int,
        nodes: int = 5,
        tick_interval_us: int = 10_000,
        clock_drift_max: float = 0.02,
        link: LinkProfile | None = None,
        client_delay_us_max: int = 500,
        attempt_timeout_us: int = 100_000,
        compaction_entries: int = 1_000_000,
        raft_config: ConfigFactory = default_raft_config,
        core_class: CoreClass = RaftNode,
    ) -> None:
        if nodes < 1:
            raise ValueError("nodes must be at least 1")
        self.seed = seed
        self.tick_interval_us = tick_interval_us  # nominal; each node's clock drifts from it
        self.raft_config = raft_config
        self.queue = EventQueue()
        self.events = 0
        self.history = History()
        self.checker = SafetyChecker()
        self.happenings: list[Happening] = []
        self.node_ids: tuple[NodeId, ...] = tuple(range(1, nodes + 1))
        self.network: SimNetwork[RaftMessage] = SimNetwork(
            random.Random(f"{seed}:net"), self.queue, ev.DELIVER, default=link or LinkProfile()
        )
        self._client_net = random.Random(f"{seed}:clientnet")
        self._fault_rng = random.Random(f"{seed}:faults")
        self._client_delay_us_max = client_delay_us_max
        self._attempt_timeout_us = attempt_timeout_us
        self._sessions: dict[int, _Session] = {}
        self.nodes = self._make_nodes(
            random.Random(f"{seed}:nodes"),
            tick_interval_us=tick_interval_us,
            clock_drift_max=clock_drift_max,
            compaction_entries=compaction_entries,
            raft_config=raft_config,
            core_class=core_class,
        )
        self._handlers = self._handler_table()
        self.started = False

    def _make_nodes(
        self,
        rng: random.Random,
        *,
        tick_interval_us: int,
        clock_drift_max: float,
        compaction_entries: int,
        raft_config: ConfigFactory,
        core_class: CoreClass,
    ) -> dict[NodeId, SimNode]:
        nodes: dict[NodeId, SimNode] = {}
        for node_id in self.node_ids:
            nodes[node_id] = SimNode(
                node_id,
                seed=self.seed,
                core_class=core_class,
                config=raft_config(node_id),
                clock=NodeClock.draw(rng, tick_interval_us, clock_drift_max),
                network=self.network,
                checker=self.checker,
                reply=self._send_reply,
                compaction_entries=compaction_entries,
                trace=self._record,
            )
        return nodes

    def _handler_table(self) -> dict[int, Callable[[int, object], None]]:
        return {
            ev.TICK: self._on_tick,
            ev.DELIVER: self._on_deliver,
            ev.CLIENT_ARRIVE: self._on_client_arrive,
            ev.CLIENT_REPLY: self._on_client_reply,
            ev.CLIENT_TIMEOUT: self._on_client_timeout,
            ev.CLIENT_RETRY: self._on_client_retry,
        }

    # -- time -----------------------------------------------------------------------------

    @property
    def now_us(self) -> int:
        """The current simulated time."""
        return self.queue.now_us

    def start(self) -> None:
        """Boot every node as a member of the initial cluster, all followers."""
        if self.started:
            raise RuntimeError("the scenario has already started")
        self.started = True
        for node in self.nodes.values():
            node.bootstrap(self.node_ids)
            self._start_ticks(node)

    def step(self) -> bool:
        """Run the next event; False when nothing is scheduled."""
        if not self.queue:
            return False
        _, _, kind, target, payload = self.queue.pop()
        self._handlers[kind](target, payload)
        self.events += 1
        if self.events % LOG_PAIR_CHECK_EVENTS == 0:
            self.check_log_pairs()
        return True

    def run_until(self, done: Callable[[], bool], *, within_us: int) -> bool:
        """Run events until `done()` holds (checked after each); False if `within_us` passes."""
        deadline = self.now_us + within_us
        while not done():
            at = self.queue.peek_time_us()
            if at is None or at > deadline:
                self.queue.now_us = deadline  # nothing happens until then: time just passes
                self.check_log_pairs()
                return False
            self.step()
        self.check_log_pairs()
        return True

    def run_for(self, duration_us: int) -> None:
        """Run every event of the next `duration_us`; time then stands at its end."""
        self.run_until(lambda: False, within_us=duration_us)

    def check_log_pairs(self) -> None:
        """Compare every pair of live logs (the second opinion on log matching)."""
        live = [n.core for n in self.nodes.values() if n.core is not None]
        for i, a in enumerate(live):
            for b in live[i + 1 :]:
                self.checker.check_log_pair(a, b)

    # -- faults ---------------------------------------------------------------------------

    def partition(self, *groups: Iterable[NodeId]) -> None:
        """Cut every link between nodes of different groups (both ways), in flight too."""
        self.network.partition([tuple(group) for group in groups])

    def heal(self) -> None:
        """Remove every partition."""
        self.network.heal()

    def crash(self, node_id: NodeId) -> int:
        """Crash a node now; it keeps a seeded prefix of its unsynced writes (returned)."""
        return self.nodes[node_id].crash(self._fault_rng)

    def restart(self, node_id: NodeId) -> None:
        """Restart a crashed node from its disk alone."""
        node = self.nodes[node_id]
        if node.up:
            raise ValueError(f"n{node_id} is running")
        node.restart()
        self._start_ticks(node)

    # -- clients --------------------------------------------------------------------------

    def put(
        self,
        key: str,
        value: str,
        *,
        via: NodeId,
        client: int = 1,
        timeout_us: int = CALL_TIMEOUT_US_DEFAULT,
        retry: bool = True,
    ) -> Call:
        """Invoke `put key=value` at node `via`."""
        spec = _Spec("put", key, value, None, Put(key=key, value=value))
        return self._invoke(spec, via, client, timeout_us, retry)

    def cas(
        self,
        key: str,
        *,
        expected: str | None,
        value: str,
        via: NodeId,
        client: int = 1,
        timeout_us: int = CALL_TIMEOUT_US_DEFAULT,
        retry: bool = True,
    ) -> Call:
        """Invoke a compare-and-set at node `via`: `expected` None means "the key is absent"."""
        command = (
            CompareAndSet(key=key, new_value=value, expected_revision=0)
            if expected is None
            else CompareAndSet(key=key, new_value=value, expected_value=expected)
        )
        spec = _Spec("cas", key, value, expected, command)
        return self._invoke(spec, via, client, timeout_us, retry)

    def delete(
        self,
        key: str,
        *,
        via: NodeId,
        client: int = 1,
        timeout_us: int = CALL_TIMEOUT_US_DEFAULT,
        retry: bool = True,
    ) -> Call:
        """Invoke a delete of `key` at node `via`."""
        spec = _Spec("delete", key, None, None, Delete(key=key))
        return self._invoke(spec, via, client, timeout_us, retry)

    def get(
        self,
        key: str,
        *,
        via: NodeId,
        client: int = 1,
        timeout_us: int = CALL_TIMEOUT_US_DEFAULT,
        retry: bool = True,
    ) -> Call:
        """Invoke a linearizable read of `key` at node `via` (ReadIndex on the leader)."""
        spec = _Spec("get", key, None, None, None)
        return self._invoke(spec, via, client, timeout_us, retry)

    def _invoke(
        self, spec: "_Spec", via: NodeId, client: int, timeout_us: int, retry: bool
    ) -> Call:
        if via not in self.nodes:
            raise ValueError(f"no node n{via}")
        if timeout_us < 1:
            raise ValueError("timeout_us must be >= 1")
        session = self._sessions.setdefault(client, _Session(client))
        if session.call is not None:
            raise ValueError(f"client {client} already has a call in flight")
        now = self.now_us
        history_id = self.history.invoke(
            client=client,
            op=spec.kind,
            key=spec.key,
            value=spec.value,
            expected=spec.expected,
            at_us=now,
        )
        data = None
        if spec.command is not None:
            session.seq += 1
            data = encode_request(Request(client_id=client, seq=session.seq, command=spec.command))
        session.op_no += 1
        call = Call(
            client=client,
            op_no=session.op_no,
            kind=spec.kind,
            key=spec.key,
            value=spec.value,
            expected=spec.expected,
            data=data,
            history_id=history_id,
            call_us=now,
            deadline_us=now + timeout_us,
            retry=retry,
            target=via,
        )
        session.call = call
        self.queue.schedule(call.deadline_us, ev.CLIENT_TIMEOUT, client, (call.op_no, _DEADLINE))
        self._attempt(call)
        return call

    def _client_delay(self) -> int:
        return 50 + self._client_net.randrange(self._client_delay_us_max + 1)

    def _attempt(self, call: Call) -> None:
        call.attempt += 1
        call.awaiting = True
        request = ClientRequest(call.client, call.op_no, call.attempt, call.key, call.data)
        self.queue.after(self._client_delay(), ev.CLIENT_ARRIVE, call.target, request)
        if call.retry:
            payload = (call.op_no, call.attempt)
            self.queue.after(self._attempt_timeout_us, ev.CLIENT_TIMEOUT, call.client, payload)

    def _current(self, client_id: int, op_no: int) -> Call | None:
        session = self._sessions.get(client_id)
        call = session.call if session is not None else None
        return call if call is not None and call.op_no == op_no else None

    def _on_client_arrive(self, node_id: int, payload: object) -> None:
        request = cast("ClientRequest", payload)
        node = self.nodes[node_id]
        core = node.core
        call = self._current(request.client_id, request.op_no)
        if core is None or call is None:
            return  # a down node hears nothing; a finished call's late attempt is moot
        call.commit_at_arrival = core.commit_index
        last = core.last_index
        node.client_request(request)
        core = node.core
        if request.data is not None and core is not None and core.last_index > last:
            for entry in core.entries(max(last + 1, core.first_index), core.last_index + 1):
                if entry.data == request.data:
                    call.proposals.append((node_id, entry.index, entry.term))

    def _send_reply(self, reply: ClientReply) -> None:
        self.queue.after(self._client_delay(), ev.CLIENT_REPLY, reply.client_id, reply)

    def _on_client_reply(self, client_id: int, payload: object) -> None:
        reply = cast("ClientReply", payload)
        call = self._current(client_id, reply.op_no)
        if call is None or call.done:
            return
        if reply.kind == ReplyKind.OK:
            self._succeed(call, reply)
            return
        if reply.attempt != call.attempt or not call.awaiting:
            return  # a late refusal of an attempt already retried
        call.awaiting = False
        if reply.kind == ReplyKind.RETRY:
            call.maybe_proposed = True  # proposed there, then lost or overwritten: fate unknown
        else:
            call.target = reply.leader_hint if reply.leader_hint != NO_NODE else self._next(call)
        if not call.retry:
            self._give_up(call)
            return
        backoff = min(RETRY_BACKOFF_US_MAX, 2_000 * call.attempt)
        self.queue.after(backoff, ev.CLIENT_RETRY, client_id, (call.op_no, call.attempt))

    def _next(self, call: Call) -> NodeId:
        ids = self.node_ids
        return ids[(ids.index(call.target) + 1) % len(ids)] if call.target in ids else ids[0]

    def _on_client_retry(self, client_id: int, payload: object) -> None:
        op_no, attempt = cast("tuple[int, int]", payload)
        call = self._current(client_id, op_no)
        if call is None or call.done or call.awaiting or call.attempt != attempt:
            return
        self._attempt(call)

    def _on_client_timeout(self, client_id: int, payload: object) -> None:
        op_no, attempt = cast("tuple[int, int]", payload)
        call = self._current(client_id, op_no)
        if call is None or call.done:
            return
        if attempt == _DEADLINE:
            self._give_up(call)
        elif call.awaiting and call.attempt == attempt:
            # No answer in time: the node may be down, cut off, or may have proposed it.
            call.awaiting = False
            call.maybe_proposed = call.maybe_proposed or call.data is not None
            call.target = self._next(call)
            self._attempt(call)

    def _give_up(self, call: Call) -> None:
        """Record the call as "unknown" if it may have been proposed, else as "fail"."""
        may_have_taken_effect = call.data is not None and (call.maybe_proposed or call.awaiting)
        if may_have_taken_effect:
            self.history.unknown(call.history_id)
            call.status = "unknown"
        else:
            self.history.fail(call.history_id, at_us=self.now_us)
            call.status = "fail"
            call.return_us = self.now_us
        call.awaiting = False
        self._sessions[call.client].call = None

    def _succeed(self, call: Call, reply: ClientReply) -> None:
        now = self.now_us
        result = reply.result
        history = self.history
        if call.kind == "get" and isinstance(result, GetResult):
            history.ok(call.history_id, at_us=now, output=result.value)
        elif call.kind == "cas" and isinstance(result, CasResult):
            history.ok_cas(call.history_id, at_us=now, swapped=result.succeeded)
        elif (call.kind == "put" and isinstance(result, PutResult)) or (
            call.kind == "delete" and isinstance(result, DeleteResult)
        ):
            history.ok(call.history_id, at_us=now)
        else:
            raise ClientResultError(f"client {call.client}: {call.kind} returned {result!r}")
        call.status = "ok"
        call.result = result
        call.return_us = now
        call.answered_by = reply.node
        call.awaiting = False
        self._sessions[call.client].call = None

    # -- nodes ----------------------------------------------------------------------------

    def _start_ticks(self, node: SimNode) -> None:
        self.queue.after(node.clock.phase_us, ev.TICK, node.id, node.incarnation)

    def _on_tick(self, node_id: int, incarnation: object) -> None:
        node = self.nodes[node_id]
        if node.core is None or node.incarnation != incarnation:
            return  # the tick chain of a crashed incarnation
        node.tick()
        self.queue.after(node.clock.tick_period_us, ev.TICK, node_id, incarnation)

    def _on_deliver(self, dst: int, payload: object) -> None:
        src, message = cast("tuple[NodeId, RaftMessage]", payload)
        if not self.network.admit(src, dst):
            return
        node = self.nodes[dst]
        if node.core is not None:
            node.step(message)

    def _record(self, node: NodeId, text: str) -> None:
        self.happenings.append(parse_happening(self.now_us, node, text))

    # -- observation ----------------------------------------------------------------------

    def mark(self) -> int:
        """A bookmark in `happenings`, for `happened(since=...)`."""
        return len(self.happenings)

    def happened(
        self, kind: str | None = None, *, since: int = 0, node: NodeId | None = None
    ) -> tuple[Happening, ...]:
        """Trace events since a `mark()`, optionally of one kind and one node, in order."""
        return tuple(
            h
            for h in self.happenings[since:]
            if (kind is None or h.kind == kind) and (node is None or h.node == node)
        )

    def status(self, node_id: NodeId) -> NodeStatus:
        """A node's role, term, vote, leader, commit/applied and last log position."""
        node = self.nodes[node_id]
        core = node.core
        if core is None:
            applied = node.machine.applied_index
            return NodeStatus(
                node=node_id,
                up=False,
                role="down",
                term=0,
                vote=NO_NODE,
                leader=NO_NODE,
                commit=0,
                applied=applied,
                last_index=0,
                last_term=0,
            )
        return NodeStatus(
            node=node_id,
            up=True,
            role=core.role.value,
            term=core.term,
            vote=core.vote,
            leader=core.leader_id,
            commit=core.commit_index,
            applied=node.machine.applied_index,
            last_index=core.last_index,
            last_term=core.term_at(core.last_index) or 0,
        )

    def statuses(self) -> tuple[NodeStatus, ...]:
        """`status` of every node, by id."""
        return tuple(self.status(node_id) for node_id in self.node_ids)

    def log(self, node_id: NodeId) -> tuple[Entry, ...]:
        """The entries a live node holds in memory (after its snapshot), in index order."""
        core = self.nodes[node_id].core
        if core is None:
            return ()
        return core.entries(core.first_index, core.last_index + 1)

    def leader(self) -> NodeId | None:
        """The live leader with the highest term, if any."""
        best: NodeId | None = None
        best_term = -1
        for node in self.nodes.values():
            core = node.core
            if core is not None and core.role is Role.LEADER and core.term > best_term:
                best, best_term = node.id, core.term
        return best

    def leader_ready(self) -> NodeId | None:
        """The leader, once it has committed an entry of its own term (it may serve reads)."""
        leader = self.leader()
        if leader is None:
            return None
        core = self.nodes[leader].core
        assert core is not None
        return leader if core.term_at(core.commit_index) == core.term else None

    def image(self, node_id: NodeId) -> bytes:
        """The snapshot bytes of a node's state machine (equal bytes: equal states)."""
        return self.nodes[node_id].machine.snapshot()

    def converged(self) -> str | None:
        """None when every node is up, applied through the leader's commit, same state."""
        leader = self.leader()
        if leader is None:
            return "no leader"
        target = self.status(leader).commit
        images: dict[bytes, list[NodeId]] = {}
        for node_id in self.node_ids:
            status = self.status(node_id)
            if not status.up:
                return f"n{node_id} is down"
            if status.applied != target:
                return f"n{node_id} applied {status.applied}, leader n{leader} committed {target}"
            images.setdefault(self.image(node_id), []).append(node_id)
        if len(images) > 1:
            return "state machines differ: " + " vs ".join(str(ids) for ids in images.values())
        return None

    def check_history(self, *, states_per_key_max: int = 1_000_000) -> LinearizabilityResult:
        """Check every recorded call with the linearizability checker."""
        return check_linearizability(self.history, states_per_key_max=states_per_key_max)


__all__ = [
    "Call",
    "CallStatus",
    "Happening",
    "NodeStatus",
    "Scenario",
    "describe_command",
    "describe_entry",
    "parse_happening",
]
