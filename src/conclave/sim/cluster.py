"""The simulated cluster: nodes, network, clients, faults and checkers on one event loop.

Rules:
- Single-threaded discrete-event simulation. `run()` pops `(time, seq, kind, target,
  payload)` events and dispatches on `kind` through a handler table; there is no other
  source of progress and no wall clock.
- Every random draw comes from a `random.Random` derived from the run seed by purpose
  (`"<seed>:net"`, `"<seed>:clock"`, `"<seed>:client:<id>"`, ...), so adding draws for one
  purpose does not perturb the others.
- Iteration is over dicts keyed by ints (insertion ordered) or sorted tuples, never sets.
- Two phases. Fault phase: faults are injected while clients run their ops, and safety is
  checked after every event. Heal phase (when every client is done, or at the fault phase's
  time bound): the network is healed and made lossless, crashed nodes restart, learners are
  promoted; then a leader must exist, a fresh write must commit, and every live member must
  reach the leader's commit index with an identical state machine, within `heal_bound_us`.
- Node ids are 1..n (initial voters) and n+1 (a spare for membership changes).
- Safety is also checked at the nodes' edges: persist-before-send on what a node sends, the
  order of applied entries, the core's and the state machine's own invariants.
- Clients sit outside the nodes: during a symmetric partition each client reaches only the
  nodes on its side; the network's loss and delays do not apply to them.
- Workload "decisions" (`conclave.sim.decisions`): nodes run the router, clients are decision
  clients, a request carrying a decision command is stamped with the receiving node's clock
  as it arrives, the leader's expiry timer runs on its ticks, and the decision checkers run
  on every applied entry and, once the healed cluster has converged, on the whole state.
  Workload "kv" never touches any of it.
- Traces (only when enabled) are lines `<time> <node> <what>`; the last `trace_tail` are kept
  for a violation report. Tracing may start late (`trace_from_event`) for fast replays.
"""

import dataclasses
import random
from collections import deque
from collections.abc import Callable
from typing import cast

from conclave.apps.router import NodeStateMachine
from conclave.consensus.raft import (
    ConfChange,
    ConfChangeOp,
    RaftMessage,
    Role,
)
from conclave.core.errors import Refusal
from conclave.core.ids import NodeId
from conclave.sim import events as ev
from conclave.sim.client import SimClient
from conclave.sim.clock import EventQueue, NodeClock
from conclave.sim.decisions import DecisionWorkload
from conclave.sim.faults import FaultInjector, FaultPlan
from conclave.sim.history import History
from conclave.sim.invariants import SafetyChecker, SafetyViolation
from conclave.sim.network import LinkProfile, SimNetwork, describe_message
from conclave.sim.node import ClientReply, ClientRequest, ReplyKind, SimNode
from conclave.sim.settings import SimSettings
from conclave.sim.wal_storage import WalNodeStorage

Handler = Callable[[int, object], None]


def _recovery(node: SimNode) -> str:
    """For a trace line: what the WAL's recovery did, on the WAL disk."""
    storage = node.storage
    if not isinstance(storage, WalNodeStorage):
        return ""
    return f", WAL {storage.recovery_summary()}"


class LivenessViolation(SafetyViolation):
    """The healed cluster did not make progress or converge within the bound."""


class Cluster:
    """One simulated run; build it from settings, call `run()`, then read the results."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        seed = settings.seed
        self.queue = EventQueue()
        self.events = 0
        self.phase = "faults"
        self.finished = False
        self.tail: deque[str] = deque(maxlen=settings.trace_tail)
        self._trace_wanted = settings.trace or settings.trace_sink is not None
        self.tracing = self._trace_wanted and settings.trace_from_event <= 0
        trace = self.trace if self.tracing else None
        self.node_ids: tuple[NodeId, ...] = tuple(range(1, settings.nodes + 2))
        self.voters0: tuple[NodeId, ...] = self.node_ids[:-1]
        self.network: SimNetwork[RaftMessage] = SimNetwork(
            random.Random(f"{seed}:net"), self.queue, ev.DELIVER, trace=trace
        )
        self._draw_links(random.Random(f"{seed}:links"))
        self.checker = SafetyChecker()
        self.workload: DecisionWorkload | None = (
            DecisionWorkload(seed, settings.tick_interval_us, self.node_ids)
            if settings.workload == "decisions"
            else None
        )
        self.nodes: dict[NodeId, SimNode] = self._make_nodes(random.Random(f"{seed}:nodes"))
        self.history = History()
        self._client_net = random.Random(f"{seed}:clientnet")
        # While a partition lasts, a client reaches only the nodes of its side (empty: all).
        self.client_reach: dict[int, frozenset[NodeId]] = {}
        self.attempt_timeout_us = self._client_net.randint(
            settings.attempt_timeout_us_min, settings.attempt_timeout_us_max
        )
        self.op_timeout_us = self._client_net.randint(
            settings.op_timeout_us_min, settings.op_timeout_us_max
        )
        self.clients: dict[int, SimClient] = self._make_clients(random.Random(f"{seed}:clients"))
        self._clients_busy = sum(1 for c in self.clients.values() if not c.done)
        self.liveness_client = self._make_liveness_client()
        self.liveness_result: str | None = None
        self.heal_started_us: int | None = None
        plan_rng = random.Random(f"{seed}:plan")
        self.faults = FaultInjector(
            self, random.Random(f"{seed}:faults"), FaultPlan.draw(plan_rng, settings)
        )
        self._handlers: list[Handler] = self._handler_table()

    # -- construction ---------------------------------------------------------------------

    def _draw_links(self, rng: random.Random) -> None:
        s = self.settings
        intensity = rng.random()  # some seeds have a calm network, some a rough one
        for src in self.node_ids:
            for dst in self.node_ids:
                if src != dst:
                    profile = LinkProfile.draw(
                        rng,
                        loss_max=s.loss_max * intensity,
                        duplicate_max=s.duplicate_max * intensity,
                        spike_max=s.spike_max * intensity,
                    )
                    self.network.set_link(src, dst, profile)

    def _make_nodes(self, rng: random.Random) -> dict[NodeId, SimNode]:
        s = self.settings
        compaction = rng.randint(s.compaction_entries_min, s.compaction_entries_max)
        trace = self.trace if self.tracing else None
        configs = s.node_configs(self.node_ids)
        workload = self.workload
        nodes: dict[NodeId, SimNode] = {}
        for node_id in self.node_ids:
            nodes[node_id] = SimNode(
                node_id,
                seed=s.seed,
                core_class=s.core_class,
                config=configs[node_id],
                clock=NodeClock.draw(rng, s.tick_interval_us, s.clock_drift_max),
                network=self.network,
                checker=self.checker,
                reply=self._send_reply,
                compaction_entries=compaction,
                trace=trace,
                wal=s.uses_wal_disk,
                storage_class=s.storage_class,
                sync_faults=self if s.uses_wal_disk and s.faults else None,
                decision_class=None if workload is None else s.decision_machine_class,
                on_apply=None if workload is None else workload.checker.on_apply,
            )
        return nodes

    def _make_clients(self, rng: random.Random) -> dict[int, SimClient]:
        s = self.settings
        count = s.clients if s.clients is not None else rng.randint(s.clients_min, s.clients_max)
        if self.workload is not None:
            return self.workload.make_clients(count, s.ops, self.node_ids, self.history)
        keys = tuple(f"k{i}" for i in range(s.keys))
        clients: dict[int, SimClient] = {}
        for client_id in range(1, count + 1):
            share = s.ops // count + (1 if client_id <= s.ops % count else 0)
            clients[client_id] = SimClient(
                client_id,
                rng=random.Random(f"{s.seed}:client:{client_id}"),
                keys=keys,
                ops=share,
                node_ids=self.node_ids,
                history=self.history,
            )
        return clients

    def _make_liveness_client(self) -> SimClient:
        client_id = len(self.clients) + 1
        return SimClient(
            client_id,
            rng=random.Random(f"{self.settings.seed}:client:{client_id}"),
            keys=("k0",),
            ops=1,
            node_ids=self.node_ids,
            history=self.history,
        )

    def _handler_table(self) -> list[Handler]:
        table: list[Handler] = [self._on_unknown] * ev.KIND_COUNT
        table[ev.TICK] = self._on_tick
        table[ev.DELIVER] = self._on_deliver
        table[ev.CLIENT_ARRIVE] = self._on_client_arrive
        table[ev.CLIENT_REPLY] = self._on_client_reply
        table[ev.CLIENT_TIMEOUT] = self._on_client_timeout
        table[ev.CLIENT_RETRY] = self._on_client_retry
        table[ev.CLIENT_NEXT] = self._on_client_next
        table[ev.FAULT] = self._on_fault
        table[ev.RESTART] = self._on_restart
        table[ev.PARTITION_END] = self._on_partition_end
        table[ev.MEMBERSHIP] = self._on_membership
        table[ev.CONTROL] = self._on_control
        table[ev.FAULT_PHASE_END] = self._on_fault_phase_end
        table[ev.HEAL_DEADLINE] = self._on_heal_deadline
        table[ev.CLOCK_RESTORE] = self._on_clock_restore
        return table

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        """Boot the initial voters and schedule clients, faults and the phase bound."""
        s = self.settings
        for node_id in self.voters0:
            node = self.nodes[node_id]
            node.bootstrap(self.voters0)
            self._start_ticks(node)
        start_rng = random.Random(f"{s.seed}:start")
        for client in self.clients.values():
            if not client.done:
                self.queue.after(start_rng.randrange(200_000), ev.CLIENT_NEXT, client.id)
        if s.faults:
            self.faults.schedule_next()
        self.queue.after(s.fault_phase_us_max, ev.FAULT_PHASE_END, 0)
        if self._clients_busy == 0:
            self._begin_heal()

    def run(self) -> None:
        """Run events until the heal phase succeeds; raises SafetyViolation otherwise."""
        self.start()
        queue = self.queue
        handlers = self._handlers
        pair_every = self.settings.log_pair_check_events
        trace_from = (
            self.settings.trace_from_event if self._trace_wanted and not self.tracing else -1
        )
        while not self.finished:
            _, _, kind, target, payload = queue.pop()
            if self.events == trace_from:
                self._enable_tracing()
            handlers[kind](target, payload)
            self.events += 1
            if self.events % pair_every == 0:
                self.check_log_pairs()
                self._check_runaway()
        self.check_log_pairs()

    def _enable_tracing(self) -> None:
        self.tracing = True
        self.network.set_trace(self.trace)
        for node in self.nodes.values():
            node.enable_tracing(self.trace)
        self.trace(0, f"tracing from event {self.events}")

    def _check_runaway(self) -> None:
        """A run that never ends or floods the network is a bug too (e.g. an append/reject
        ping-pong that duplication amplifies); stop it with a clear verdict."""
        s = self.settings
        if self.events >= s.events_max:
            raise LivenessViolation("runaway", f"more than {s.events_max} events")
        if len(self.queue) > s.pending_events_max:
            raise LivenessViolation(
                "message-storm", f"{len(self.queue)} events pending after {self.events} events"
            )

    def check_log_pairs(self) -> None:
        """Compare every pair of live logs (the periodic second opinion on log matching)."""
        live = [n.core for n in self.nodes.values() if n.core is not None]
        for i, a in enumerate(live):
            for b in live[i + 1 :]:
                self.checker.check_log_pair(a, b)

    # -- tracing --------------------------------------------------------------------------

    def trace(self, node: NodeId, text: str) -> None:
        """Record one line of the event log (only called when tracing)."""
        who = f"n{node}" if node else "--"
        line = f"{self.queue.now_us / 1e6:10.6f}s {who:>3} {text}"
        self.tail.append(line)
        sink = self.settings.trace_sink
        if sink is not None:
            sink(line)

    # -- nodes ----------------------------------------------------------------------------

    def _start_ticks(self, node: SimNode) -> None:
        self.queue.after(node.clock.phase_us, ev.TICK, node.id, node.incarnation)

    def _on_tick(self, node_id: int, incarnation: object) -> None:
        node = self.nodes[node_id]
        if node.core is None or node.incarnation != incarnation:
            return  # a tick chain of a crashed incarnation
        node.tick()
        self.queue.after(node.clock.tick_period_us * node.slowdown, ev.TICK, node_id, incarnation)
        if self.workload is not None and node.core is not None:
            is_leader = node.core.role is Role.LEADER
            self.workload.on_tick(node, self.queue.now_us, is_leader)

    def _on_deliver(self, dst: int, payload: object) -> None:
        src, message = cast("tuple[NodeId, RaftMessage]", payload)
        if not self.network.admit(src, dst):
            if self.tracing:
                self.trace(dst, f"net dropped in flight (partition): <- n{src}")
            return
        node = self.nodes[dst]
        if node.core is None:
            return
        if self.tracing:
            self.trace(dst, f"<- n{src} {describe_message(message)}")
        commit_before = node.core.commit_index
        was_leader = node.core.role is Role.LEADER
        node.step(message)
        if self.phase == "faults":
            self._buggify(node, commit_before, was_leader)

    def _buggify(self, node: SimNode, commit_before: int, was_leader: bool) -> None:
        """Faults at interesting moments of a node's life (FoundationDB's "buggify")."""
        plan = self.faults.plan
        if plan.isolate_new_leader_p:
            self.faults.maybe_isolate_new_leader(node, was_leader)
        if plan.isolate_after_first_commit_p:
            self.faults.maybe_isolate_after_first_commit(node, commit_before)
        if plan.crash_after_commit_p:
            self.faults.maybe_crash_after_commit(node, commit_before)

    def leader(self) -> SimNode | None:
        """The live leader with the highest term, if any."""
        best: SimNode | None = None
        best_term = -1
        for node in self.nodes.values():
            core = node.core
            if core is not None and core.role is Role.LEADER and core.term > best_term:
                best, best_term = node, core.term
        return best

    def crash(self, node: SimNode, rng: random.Random | None = None, what: str = "crash") -> None:
        """Crash `node` now (torn tail drawn from `rng`, by default the fault rng)."""
        kept = node.crash(rng if rng is not None else self.faults.rng)
        if self.tracing:
            unit = "bytes" if self.settings.uses_wal_disk else "writes"
            self.trace(node.id, f"fault {what} (kept {kept} unsynced {unit})")

    def interrupt_sync(self, node: SimNode, snapshot_pending: bool) -> bool:
        """`SyncFaults`: during the fault phase, the injector may kill a node mid-sync."""
        del node  # any node may die; the injector only bounds how many are down
        return self.phase == "faults" and self.faults.maybe_crash_in_sync(snapshot_pending)

    def sync_interrupted(self, node: SimNode) -> None:
        """`SyncFaults`: the node died in its sync; crash its disk, restart it later."""
        self.faults.crash_in_sync(node)

    def restart(self, node: SimNode) -> None:
        """Restart a crashed node from its disk."""
        if node.core is not None or not node.started:
            return
        node.restart()
        if self.tracing:
            self.trace(node.id, f"restart (incarnation {node.incarnation}{_recovery(node)})")
        self._start_ticks(node)

    def join(self, node: SimNode) -> None:
        """Start a never-started node as an empty learner-to-be."""
        node.join()
        if self.tracing:
            self.trace(node.id, "join (empty node)")
        self._start_ticks(node)

    def wal_recoveries(self) -> tuple[int, int]:
        """(recoveries, recoveries that truncated a torn tail) over every WAL disk."""
        recoveries = torn = 0
        for node in self.nodes.values():
            if isinstance(node.storage, WalNodeStorage):
                recoveries += node.storage.recoveries
                torn += node.storage.torn_tails
        return recoveries, torn

    def _on_restart(self, node_id: int, _payload: object) -> None:
        self.restart(self.nodes[node_id])

    # -- clients --------------------------------------------------------------------------

    def _client(self, client_id: int) -> SimClient:
        if client_id == self.liveness_client.id:
            return self.liveness_client
        return self.clients[client_id]

    def _client_delay(self) -> int:
        return 50 + self._client_net.randrange(self.settings.client_delay_us_max + 1)

    def _on_client_next(self, client_id: int, _payload: object) -> None:
        client = self._client(client_id)
        if client.op is not None or client.ops_left <= 0:
            return
        now = self.queue.now_us
        if client is self.liveness_client:
            op = client.start(now, None, kind="put")
        else:
            op = client.start(now, now + self.op_timeout_us)
        if self.tracing:
            what = op.kind if op.value is None else f"{op.kind} {op.value}"
            if op.decision is not None:
                self.trace(0, f"client c{client.id} invokes {op.key}")
            else:
                self.trace(0, f"client c{client.id} invokes {what} on {op.key}")
        self._attempt(client)

    def _attempt(self, client: SimClient) -> None:
        op = client.op
        assert op is not None
        now = self.queue.now_us
        if op.deadline_us is not None and now >= op.deadline_us:
            self._finish_op(client, client.give_up(now))
            return
        op.attempt += 1
        op.awaiting = True
        request = ClientRequest(client.id, op.op_no, op.attempt, op.key, op.data, op.decision)
        self.queue.after(self._client_delay(), ev.CLIENT_ARRIVE, client.target, request)
        self.queue.after(
            self.attempt_timeout_us, ev.CLIENT_TIMEOUT, client.id, (op.op_no, op.attempt)
        )

    def reachable(self, client_id: int, node_id: NodeId) -> bool:
        """Whether a partition separates the client from the node."""
        reach = self.client_reach.get(client_id)
        return reach is None or node_id in reach

    def _on_client_arrive(self, node_id: int, payload: object) -> None:
        node = self.nodes[node_id]
        assert isinstance(payload, ClientRequest)
        if node.core is None or not self.reachable(payload.client_id, node_id):
            return
        if self.tracing:
            what = "get" if payload.data is None else "write"
            self.trace(node_id, f"client c{payload.client_id} {what} {payload.key} arrives")
        if payload.decision is not None and self.workload is not None:
            data = self.workload.stamp(node, self.queue.now_us, payload.decision)
            payload = dataclasses.replace(payload, data=data)
        node.client_request(payload)

    def _send_reply(self, reply: ClientReply) -> None:
        self.queue.after(self._client_delay(), ev.CLIENT_REPLY, reply.client_id, reply)

    def _on_client_reply(self, client_id: int, payload: object) -> None:
        assert isinstance(payload, ClientReply)
        if not self.reachable(client_id, payload.node):
            return
        client = self._client(client_id)
        op = client.op
        if op is None or payload.op_no != op.op_no:
            return  # an answer to an op already finished
        if payload.kind == ReplyKind.OK:
            client.succeed(self.queue.now_us, payload.result)
            self._finish_op(client, "ok")
            return
        if payload.attempt != op.attempt or not op.awaiting:
            return  # a late refusal of an attempt already retried
        op.awaiting = False
        if payload.kind == ReplyKind.RETRY:
            op.maybe_proposed = True
            client.try_another()
        else:
            client.follow(payload.leader_hint)
        backoff = min(50_000, 2_000 * op.attempt)
        self.queue.after(backoff, ev.CLIENT_RETRY, client_id, (op.op_no, op.attempt))

    def _on_client_timeout(self, client_id: int, payload: object) -> None:
        client = self._client(client_id)
        op = client.op
        if op is None or payload != (op.op_no, op.attempt) or not op.awaiting:
            return
        op.awaiting = False
        op.maybe_proposed = op.data is not None
        client.try_another()
        self._attempt(client)

    def _on_client_retry(self, client_id: int, payload: object) -> None:
        client = self._client(client_id)
        op = client.op
        if op is None or payload != (op.op_no, op.attempt) or op.awaiting:
            return
        self._attempt(client)

    def _finish_op(self, client: SimClient, status: str) -> None:
        if self.tracing:
            self.trace(0, f"client c{client.id} op done: {status}")
        if client is self.liveness_client:
            self.liveness_result = status
            return
        if client.ops_left > 0:
            think = client.rng.randrange(self.settings.client_think_us_max + 1)
            self.queue.after(think, ev.CLIENT_NEXT, client.id)
            return
        self._clients_busy -= 1
        if self._clients_busy == 0 and self.phase == "faults":
            self._begin_heal()

    def finalize_history(self) -> None:
        """Record every op still in flight at the end of the run."""
        for client in (*self.clients.values(), self.liveness_client):
            if client.op is not None:
                client.give_up(None)

    # -- faults ---------------------------------------------------------------------------

    def _on_fault(self, _target: int, _payload: object) -> None:
        if self.phase != "faults":
            return
        self.faults.inject()
        self.faults.schedule_next()

    def _on_partition_end(self, _target: int, payload: object) -> None:
        self.faults.end_partition(payload)

    def _on_clock_restore(self, node_id: int, generation: object) -> None:
        node = self.nodes[node_id]
        if node.slowdown_generation == generation and node.slowdown != 1:
            node.slowdown = 1
            if self.tracing:
                self.trace(node_id, "clock back to normal speed")

    def _on_membership(self, target: int, _payload: object) -> None:
        if self.phase == "faults":
            self.faults.membership_follow_up(target)

    def propose_conf_change(self, op: ConfChangeOp, node_id: NodeId) -> bool:
        """Ask the leader for a membership change; False when it refuses."""
        leader = self.leader()
        if leader is None or leader.core is None:
            return False
        try:
            leader.core.propose_conf_change(ConfChange(op=op, node_id=node_id))
        except (Refusal, ValueError) as exc:
            if self.tracing:
                self.trace(leader.id, f"conf change {op.value} n{node_id} refused: {exc}")
            return False
        if self.tracing:
            self.trace(leader.id, f"conf change {op.value} n{node_id} proposed")
        leader.process()
        return True

    # -- phases ---------------------------------------------------------------------------

    def _on_fault_phase_end(self, _target: int, _payload: object) -> None:
        if self.phase == "faults":
            self._begin_heal()

    def _begin_heal(self) -> None:
        self.phase = "heal"
        now = self.queue.now_us
        self.heal_started_us = now
        if self.tracing:
            self.trace(0, "heal: network healed and lossless, every node restarts")
        self.network.heal()
        self.client_reach.clear()
        self.network.set_lossless()
        for node in self.nodes.values():
            node.slowdown = 1
            self.restart(node)
        self.queue.after(self.settings.control_interval_us, ev.CONTROL, 0)
        self.queue.after(self.settings.heal_bound_us, ev.HEAL_DEADLINE, 0)

    def _on_control(self, _target: int, _payload: object) -> None:
        self.queue.after(self.settings.control_interval_us, ev.CONTROL, 0)
        leader = self.leader()
        if leader is None or leader.core is None:
            return
        conf = leader.core.conf
        if conf.learners:
            self.propose_conf_change(ConfChangeOp.PROMOTE_LEARNER, conf.learners[0])
            return
        if self.liveness_client.ops_left > 0:
            if self.liveness_client.op is None:
                self.queue.after(0, ev.CLIENT_NEXT, self.liveness_client.id)
            return
        if self.liveness_result != "ok" or self._clients_busy > 0:
            return
        if self.converged() is None:
            if self.workload is not None:
                self.workload.checker.final_check(self.member_routers())
            self.finished = True
            if self.tracing:
                self.trace(0, "converged: every live member has the same state")

    def converged(self) -> str | None:
        """None when every member is live, at the leader's commit, with the same state."""
        leader = self.leader()
        if leader is None or leader.core is None:
            return "no leader"
        core = leader.core
        target = core.commit_index
        images: dict[bytes, list[NodeId]] = {}
        for member in core.conf.members():
            node = self.nodes.get(member)
            if node is None or node.core is None:
                return f"member n{member} is down"
            if node.machine.applied_index != target:
                return (
                    f"n{member} applied {node.machine.applied_index}, "
                    f"leader n{leader.id} committed {target}"
                )
            images.setdefault(node.machine.snapshot(), []).append(member)
        if len(images) > 1:
            groups = " vs ".join(str(ids) for ids in images.values())
            return f"state machines differ at index {target}: {groups}"
        return None

    def member_routers(self) -> list[tuple[NodeId, NodeStateMachine]]:
        """The live members' routers, the leader's first (decision workload only)."""
        leader = self.leader()
        if leader is None or leader.core is None:
            return []
        members = [leader.id, *(m for m in leader.core.conf.members() if m != leader.id)]
        routers: list[tuple[NodeId, NodeStateMachine]] = []
        for member in members:
            node = self.nodes.get(member)
            if node is not None and node.core is not None:
                machine = node.machine
                if isinstance(machine, NodeStateMachine):
                    routers.append((member, machine))
        return routers

    def _on_heal_deadline(self, _target: int, _payload: object) -> None:
        if self.finished:
            return
        bound = self.settings.heal_bound_us
        if self.leader() is None:
            why = "no leader"
        elif self.liveness_result != "ok":
            why = f"the fresh write did not commit (status {self.liveness_result})"
        elif self._clients_busy > 0:
            why = f"{self._clients_busy} clients still waiting"
        else:
            why = self.converged() or "controller did not finish"
        raise LivenessViolation("liveness", f"{bound} us after heal: {why}")

    def _on_unknown(self, target: int, payload: object) -> None:
        raise AssertionError(f"unknown event for {target}: {payload!r}")


__all__ = ["Cluster", "LivenessViolation"]
