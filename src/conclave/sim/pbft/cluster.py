"""The PBFT simulator's world: replicas, Byzantine liars, twins, clients, network and checks.

Rules:
- One seeded event loop (`conclave.sim.clock.EventQueue`) and the shared simulated network
  (`conclave.sim.network.SimNetwork`, generic in the message type); every random draw comes
  from a `random.Random` derived from the seed, so a run replays exactly.
- Each replica process executes its Readies through the shared `conclave.runtime.driver.Driver`
  into a `KVStateMachine` (persist -> send -> apply -> advance). When the core pauses at a
  checkpoint (`pending_checkpoint`), the process hands it the machine's snapshot.
- Faults, all within the budget of `PbftSimSettings`: per-link loss, duplication, delay spikes
  (reordering) and partitions during the fault phase; then a heal (network faults stop;
  Byzantine replicas keep lying) after which every client operation must complete within
  `liveness_bound_us`. Up to f replicas are faulty: Byzantine (a `Liar` around a real core),
  a twin pair (two processes with one identity, each talking to a different subset of the
  other replicas), or crash-stopped.
- Checks observe from outside, after every input of a correct replica: its invariants; a batch
  a correct replica executes was prepared at f + 1 correct replicas (`commit-quorum`, the
  invariant behind view-change safety, OSDI 1999 4.4); no two
  correct replicas execute different batches at one seq (`agreement`), different entries at
  one log index (`entry-agreement`), or reach different checkpoint states at one seq
  (`checkpoint-agreement`); a replica's executed seqs only grow, one by one or by a state
  transfer to a proven checkpoint (`prefix`). The client history is checked for
  linearizability at the end by the runner.
"""

import random
from dataclasses import dataclass, field

from conclave.apps.kv import (
    CasResult,
    CompareAndSet,
    Get,
    GetResult,
    KVStateMachine,
    Put,
    PutResult,
    decode_result,
    encode_request,
    encode_result,
)
from conclave.apps.kv import Request as KVRequest
from conclave.consensus.pbft import (
    PbftClient,
    PbftClientConfig,
    PbftConfig,
    PbftMessage,
    PbftReplica,
    Reply,
    dev_keys,
)
from conclave.core.effects import Entry, EntryKind, Send
from conclave.core.env import CoreEnv
from conclave.core.ids import NodeId
from conclave.core.memory_storage import MemoryStorage
from conclave.runtime.driver import Driver
from conclave.sim.clock import EventQueue, NodeClock
from conclave.sim.history import History, OpKind
from conclave.sim.invariants import SafetyViolation
from conclave.sim.network import LinkProfile, SimNetwork
from conclave.sim.pbft.byzantine import BEHAVIOURS, Liar
from conclave.sim.pbft.settings import PbftSimSettings

DELIVER, TICK, CLIENT_TICK, CLIENT_START, PARTITION, UNPARTITION, CRASH, HEAL = range(8)
CLIENT_ID_BASE = 101
KEY_SEED = b"conclave-sim-pbft"


class _Transport:
    """The `Transport` port of one process: hands its sends to the cluster."""

    __slots__ = ("_cluster", "_process")

    def __init__(self, cluster: "PbftCluster", process: "_Process") -> None:
        self._cluster = cluster
        self._process = process

    def send(self, envelope: Send[PbftMessage]) -> None:
        self._cluster.emit(self._process, envelope)


@dataclass(slots=True)
class _Process:
    """One replica process (a twin pair is two processes with one id)."""

    index: int
    replica_id: NodeId
    replica: PbftReplica
    machine: KVStateMachine
    driver: Driver[PbftMessage] | None = None
    liar: Liar | None = None
    peers: tuple[NodeId, ...] | None = None  # twins: the replicas this process talks to
    crashed: bool = False
    seen_executed: int = 0

    @property
    def correct(self) -> bool:
        return self.liar is None and self.peers is None


@dataclass(slots=True)
class _ClientState:
    client: PbftClient
    rng: random.Random
    ops_left: int
    heal_ops_left: int
    next_no: int = 1
    op_id: int | None = None
    kind: OpKind = "get"
    done_at_us: int | None = None


@dataclass(slots=True)
class FaultPlan:
    """What this seed's faults are (for the report)."""

    byzantine: dict[NodeId, tuple[str, ...]] = field(default_factory=dict)
    twins: NodeId | None = None
    crashed: tuple[NodeId, ...] = ()
    partitions: int = 0


class PbftCluster:
    """Builds the world of one seed and runs it to the end."""

    def __init__(self, settings: PbftSimSettings) -> None:
        self.settings = settings
        seed = settings.seed
        self.ids: tuple[NodeId, ...] = tuple(range(1, settings.n + 1))
        self.rng = random.Random(f"pbft-sim-{seed}")
        self.queue = EventQueue()
        self.network: SimNetwork[PbftMessage] = SimNetwork(
            random.Random(f"pbft-net-{seed}"), self.queue, DELIVER
        )
        self.history = History()
        self.events = 0
        self.plan = FaultPlan()
        self.heal_at_us = settings.fault_phase_us
        self.healed = False
        self.processes: list[_Process] = []
        self.routes: dict[NodeId, list[_Process]] = {}
        self.keys = dev_keys(self.ids, KEY_SEED + str(seed).encode())
        self.batch_at: dict[int, bytes] = {}
        self.entry_at: dict[int, tuple[EntryKind, bytes]] = {}
        self.checkpoint_at: dict[int, bytes] = {}
        # (seq, digest) -> correct replicas that held a prepared certificate for it (a set of
        # ints, only tested for size and membership).
        self.prepared_by: dict[tuple[int, bytes], set[NodeId]] = {}
        self.clients: dict[NodeId, _ClientState] = {}
        self._draw_network()
        self._draw_faults()
        self._build_replicas()
        self._build_clients()
        self._schedule_faults()

    # == building =========================================================================

    def _config(self, rid: NodeId) -> PbftConfig:
        s = self.settings
        return PbftConfig(
            replica_id=rid,
            replica_ids=self.ids,
            keys=self.keys[rid],
            checkpoint_interval_seqs=s.checkpoint_interval_seqs,
            watermark_window_seqs=s.watermark_window_seqs,
            requests_per_batch_max=s.requests_per_batch_max,
            request_timeout_ticks=s.request_timeout_ticks,
            view_change_timeout_ticks=s.view_change_timeout_ticks,
            retransmit_interval_ticks=s.retransmit_interval_ticks,
            state_transfer_retry_ticks=s.retransmit_interval_ticks,
        )

    def _draw_network(self) -> None:
        s, rng = self.settings, self.rng
        nodes = (*self.ids, *(CLIENT_ID_BASE + c for c in range(s.clients)))
        for a in nodes:
            for b in nodes:
                if a != b:
                    self.network.set_link(
                        a,
                        b,
                        LinkProfile.draw(
                            rng,
                            loss_max=s.loss_max,
                            duplicate_max=s.duplicate_max,
                            spike_max=s.spike_max,
                        ),
                    )

    def _draw_faults(self) -> None:
        s, rng = self.settings, self.rng
        faulty = (s.f if rng.random() < 0.85 else s.f - 1) if (s.byzantine or s.crashes) else 0
        candidates = list(self.ids)
        rng.shuffle(candidates)
        crashed: list[NodeId] = []
        pool = [b for b in BEHAVIOURS if b != "twins"]
        for rid in candidates[:faulty]:
            roll = rng.random()
            if s.byzantine and roll < 0.15 and self.plan.twins is None:
                self.plan.twins = rid
            elif s.byzantine and (roll < 0.8 or not s.crashes):
                count = rng.choice((1, 1, 2, 3))
                self.plan.byzantine[rid] = tuple(sorted(rng.sample(pool, count)))
            elif s.crashes:
                crashed.append(rid)
        self.plan.crashed = tuple(crashed)

    def _new_process(
        self, rid: NodeId, replica: PbftReplica, liar: Liar | None, peers: tuple[NodeId, ...] | None
    ) -> _Process:
        process = _Process(
            index=len(self.processes),
            replica_id=rid,
            replica=replica,
            machine=KVStateMachine(),
            liar=liar,
            peers=peers,
        )
        process.driver = Driver(
            core=replica,
            storage=MemoryStorage(),
            transport=_Transport(self, process),
            state_machine=process.machine,
            on_applied=lambda entry, result: self._applied(process, entry, result),
        )
        self.processes.append(process)
        self.routes.setdefault(rid, []).append(process)
        return process

    def _build_replicas(self) -> None:
        s = self.settings
        for rid in self.ids:
            config = self._config(rid)
            env = CoreEnv(rng=random.Random(f"pbft-core-{s.seed}-{rid}"), trace_enabled=False)
            behaviours = self.plan.byzantine.get(rid)
            if behaviours is not None:
                liar = Liar(config, behaviours, random.Random(f"pbft-liar-{s.seed}-{rid}"))
                self._new_process(rid, PbftReplica.bootstrap(config, env), liar, None)
            elif rid == self.plan.twins:
                others = [r for r in self.ids if r != rid]
                self.rng.shuffle(others)
                cut = self.rng.randint(1, len(others) - 1)
                for group in (others[:cut], others[cut:]):
                    twin_env = CoreEnv(rng=random.Random(f"pbft-twin-{s.seed}-{len(group)}"))
                    twin_env.trace_enabled = False
                    replica = PbftReplica.bootstrap(config, twin_env)
                    self._new_process(rid, replica, None, tuple(sorted(group)))
            else:
                self._new_process(rid, s.replica_class.bootstrap(config, env), None, None)
        for process in self.processes:
            clock = NodeClock.draw(self.rng, s.tick_us, 0.05)
            self.queue.schedule(clock.phase_us, TICK, process.index, clock.tick_period_us)

    def _build_clients(self) -> None:
        s = self.settings
        for c in range(s.clients):
            cid = CLIENT_ID_BASE + c
            client = PbftClient(
                PbftClientConfig(client_id=cid, replica_ids=self.ids, retransmit_timeout_ticks=25)
            )
            rng = random.Random(f"pbft-client-{s.seed}-{cid}")
            self.clients[cid] = _ClientState(client, rng, s.ops_per_client, s.heal_ops_per_client)
            self.queue.schedule(rng.randrange(s.tick_us), CLIENT_TICK, cid)
            self.queue.schedule(rng.randrange(s.think_us_max), CLIENT_START, cid)

    def _schedule_faults(self) -> None:
        s, rng = self.settings, self.rng
        for rid in self.plan.crashed:
            self.queue.schedule(rng.randrange(s.fault_phase_us), CRASH, rid)
        if s.partitions:
            episodes = rng.randint(0, 4)
            self.plan.partitions = episodes
            for _ in range(episodes):
                start = rng.randrange(s.fault_phase_us)
                length = rng.randrange(100_000, max(100_001, s.fault_phase_us // 3))
                self.queue.schedule(start, PARTITION, 0)
                self.queue.schedule(min(start + length, s.fault_phase_us), UNPARTITION, 0)
        self.queue.schedule(self.heal_at_us, HEAL, 0)

    # == the event loop ===================================================================

    def run(self) -> None:
        """Run until every client is done after the heal, or the liveness bound passes."""
        deadline = self.heal_at_us + self.settings.liveness_bound_us
        while self.queue:
            at, _, kind, target, payload = self.queue.pop()
            if at > deadline:
                break
            self.events += 1
            self._handle(kind, target, payload)
            if self.healed and all(c.done_at_us is not None for c in self.clients.values()):
                return
        waiting = sorted(cid for cid, c in self.clients.items() if c.done_at_us is None)
        raise SafetyViolation(
            "liveness",
            f"clients {waiting} still waiting {self.settings.liveness_bound_us} us after the heal",
        )

    def _handle(self, kind: int, target: int, payload: object) -> None:
        if kind == DELIVER:
            assert isinstance(payload, tuple)
            self._deliver(target, payload[0], payload[1])
        elif kind == TICK:
            assert isinstance(payload, int)
            self._tick(self.processes[target], payload)
        elif kind == CLIENT_TICK:
            self._client_tick(target)
        elif kind == CLIENT_START:
            self._client_start(target)
        elif kind == PARTITION:
            self._partition()
        elif kind == UNPARTITION:
            self.network.heal()
        elif kind == CRASH:
            for process in self.routes[target]:
                process.crashed = True
        elif kind == HEAL:
            self.healed = True
            self.network.heal()
            self.network.set_lossless()
            for cid, state in self.clients.items():
                if state.op_id is None and state.done_at_us is not None:
                    state.done_at_us = None
                    self.queue.after(0, CLIENT_START, cid)

    def _partition(self) -> None:
        rng = self.rng
        ids = list(self.ids)
        rng.shuffle(ids)
        style = rng.randrange(3)
        if style == 0:
            cut = rng.randint(1, len(ids) - 1)
            self.network.partition([ids[:cut], ids[cut:]])
        elif style == 1:
            self.network.isolate(ids[0], self.ids)
        else:
            for _ in range(rng.randint(1, len(ids))):
                a, b = rng.sample(ids, 2)
                self.network.block(a, b)

    # == replicas =========================================================================

    def emit(self, process: _Process, envelope: Send[PbftMessage]) -> None:
        """A process sends: through its liar, inside its twin subset, onto the network."""
        outgoing = [envelope]
        if process.liar is not None:
            outgoing = process.liar.outgoing(envelope, process.replica.view)
        for out in outgoing:
            if process.peers is not None and out.to in self.routes and out.to not in process.peers:
                continue  # a twin talks only to its own subset of replicas
            self.network.send(process.replica_id, out.to, out.message)

    def _deliver(self, dst: NodeId, src: NodeId, message: PbftMessage) -> None:
        if not self.network.admit(src, dst):
            return
        state = self.clients.get(dst)
        if state is not None:
            if isinstance(message, Reply):
                state.client.step(message)
                self._client_flush(dst)
            return
        for process in self.routes.get(dst, ()):
            if process.crashed:
                continue
            if process.peers is not None and src in self.routes and src not in process.peers:
                continue
            if process.liar is not None:
                for extra in process.liar.incoming(message, process.replica.view):
                    self.network.send(process.replica_id, extra.to, extra.message)
            process.replica.step(message)
            self._run(process)

    def _tick(self, process: _Process, period_us: int) -> None:
        if process.crashed:
            return
        self.queue.after(period_us, TICK, process.index, period_us)
        process.replica.tick()
        self._run(process)

    def _run(self, process: _Process) -> None:
        """Execute Readies; at a pending checkpoint, hand in the machine's snapshot."""
        replica, driver = process.replica, process.driver
        assert driver is not None
        while True:
            driver.run()
            self._observe(process)
            pending = replica.pending_checkpoint
            if pending is not None and not replica.has_ready():
                replica.checkpoint_state(pending, process.machine.snapshot())
            elif not replica.has_ready():
                break
        if process.correct:
            replica.check_invariants()
            self._observe(process)

    def _applied(self, process: _Process, entry: Entry, result: object) -> None:
        if result is not None:
            process.replica.record_result(entry.index, encode_result(result))  # type: ignore[arg-type]
        if not process.correct:
            return
        value = (entry.kind, entry.data)
        known = self.entry_at.setdefault(entry.index, value)
        if known != value:
            raise SafetyViolation(
                "entry-agreement",
                f"replica {process.replica_id} applied {value!r} at index {entry.index}, "
                f"another correct replica {known!r}",
            )

    def _observe(self, process: _Process) -> None:
        """Agreement and prefix checks on what a correct replica executed since last time."""
        if not process.correct:
            return
        replica = process.replica
        for seq in range(replica.stable_seq + 1, replica.high_watermark + 1):
            prepared = replica.prepared_digest(seq)
            if prepared is not None:
                self.prepared_by.setdefault((seq, prepared), set()).add(process.replica_id)
        last = replica.last_executed
        if last < process.seen_executed:
            raise SafetyViolation(
                "prefix",
                f"replica {process.replica_id} went back to {last} from {process.seen_executed}",
            )
        for seq in range(process.seen_executed + 1, last + 1):
            digest = replica.executed_digest(seq)
            if digest is None:
                if replica.own_checkpoint(last) is None and seq == last:
                    raise SafetyViolation(
                        "prefix",
                        f"replica {process.replica_id} skipped to {last} without a checkpoint",
                    )
                continue  # skipped by a state transfer to a proven checkpoint
            self._check_commit_quorum(process, seq, digest)
            known = self.batch_at.setdefault(seq, digest)
            if known != digest:
                raise SafetyViolation(
                    "agreement",
                    f"replica {process.replica_id} executed batch {digest.hex()[:12]} at seq "
                    f"{seq}, another correct replica {known.hex()[:12]}",
                )
        process.seen_executed = last
        for seq in (replica.stable_seq, last):
            checkpoint = replica.own_checkpoint(seq)
            if checkpoint is None or seq == 0:
                continue
            known = self.checkpoint_at.setdefault(seq, checkpoint)
            if known != checkpoint:
                raise SafetyViolation(
                    "checkpoint-agreement",
                    f"replica {process.replica_id} reached another state at checkpoint {seq}",
                )

    def _check_commit_quorum(self, process: _Process, seq: int, digest: bytes) -> None:
        """Committed-local implies prepared at f + 1 correct replicas (OSDI 1999, 4.4)."""
        prepared = self.prepared_by.get((seq, digest), set())
        if len(prepared) < self.settings.f + 1:
            raise SafetyViolation(
                "commit-quorum",
                f"replica {process.replica_id} executed seq {seq} prepared only at correct "
                f"replicas {sorted(prepared)}",
            )

    # == clients ==========================================================================

    def _client_tick(self, cid: NodeId) -> None:
        state = self.clients[cid]
        self.queue.after(self.settings.tick_us, CLIENT_TICK, cid)
        state.client.tick()
        self._client_flush(cid)

    def _client_start(self, cid: NodeId) -> None:
        state = self.clients[cid]
        if state.op_id is not None:
            return
        if self.healed:
            if state.heal_ops_left <= 0:
                state.done_at_us = self.queue.now_us
                return
            state.heal_ops_left -= 1
        else:
            if state.ops_left <= 0:
                state.done_at_us = self.queue.now_us
                return
            state.ops_left -= 1
        self._invoke(cid, state)

    def _invoke(self, cid: NodeId, state: _ClientState) -> None:
        rng, now = state.rng, self.queue.now_us
        key = f"k{rng.randrange(self.settings.keys)}"
        number = state.next_no
        state.next_no += 1
        kind: OpKind = rng.choice(("get", "put", "put", "cas"))
        value = f"{cid}.{number}"
        command: Get | Put | CompareAndSet
        if kind == "get":
            command = Get(key=key)
            state.op_id = self.history.invoke_get(client=cid, key=key, at_us=now)
        elif kind == "put":
            command = Put(key=key, value=value)
            state.op_id = self.history.invoke_put(client=cid, key=key, value=value, at_us=now)
        else:
            expected = (
                None
                if rng.random() < 0.3
                else f"{rng.choice(tuple(self.clients))}.{rng.randint(1, number)}"
            )
            command = (
                CompareAndSet(key=key, new_value=value, expected_revision=0)
                if expected is None
                else CompareAndSet(key=key, new_value=value, expected_value=expected)
            )
            state.op_id = self.history.invoke_cas(
                client=cid, key=key, expected=expected, value=value, at_us=now
            )
        state.kind = kind
        state.client.submit(encode_request(KVRequest(client_id=cid, seq=number, command=command)))
        self._client_flush(cid)

    def _client_flush(self, cid: NodeId) -> None:
        state = self.clients[cid]
        out = state.client.ready()
        for envelope in out.messages:
            self.network.send(cid, envelope.to, envelope.message)
        for accepted in out.results:
            self._complete(cid, state, accepted.result)

    def _complete(self, cid: NodeId, state: _ClientState, data: bytes) -> None:
        op_id, now = state.op_id, self.queue.now_us
        assert op_id is not None
        result = decode_result(data)
        if state.kind == "get" and isinstance(result, GetResult):
            self.history.ok(op_id, at_us=now, output=result.value)
        elif state.kind == "put" and isinstance(result, PutResult):
            self.history.ok(op_id, at_us=now)
        elif state.kind == "cas" and isinstance(result, CasResult):
            self.history.ok_cas(op_id, at_us=now, swapped=result.succeeded)
        else:
            raise SafetyViolation("client-result", f"client {cid} {state.kind} got {result!r}")
        state.op_id = None
        self.queue.after(state.rng.randrange(self.settings.think_us_max), CLIENT_START, cid)

    # == report ===========================================================================

    def exercised(self) -> dict[str, int]:
        """Per behaviour, how often it changed what was sent (twins: messages of the pair)."""
        out: dict[str, int] = {}
        for process in self.processes:
            if process.liar is not None:
                for name, count in process.liar.exercised.items():
                    out[name] = out.get(name, 0) + count
            if process.peers is not None:
                out["twins"] = out.get("twins", 0) + process.driver.stats.messages_sent  # type: ignore[union-attr]
        return dict(sorted(out.items()))

    def view_changes(self) -> int:
        """The highest view any correct replica reached."""
        return max((p.replica.view for p in self.processes if p.correct), default=0)


__all__ = ["FaultPlan", "PbftCluster"]
