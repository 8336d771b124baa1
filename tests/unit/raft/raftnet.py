"""A tiny deterministic network of RaftNodes for unit tests.

Each node executes its Readies exactly per the contract (persist into MemoryStorage, sync when
asked, send, apply, advance) and checks its invariants after every input. Messages wait in a
mailbox until `deliver` moves them, so tests control interleavings; partitions and a drop
filter model a lossy network.
"""

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from conclave.consensus.raft import (
    RaftConfig,
    RaftMessage,
    RaftNode,
    Role,
)
from conclave.core import (
    CoreEnv,
    Entry,
    EntryKind,
    MemoryStorage,
    ReadState,
    Ready,
    Send,
    TraceEvent,
)

DropFilter = Callable[[RaftMessage], bool]


@dataclass
class Machine:
    """A state machine that records the commands it applied (in order)."""

    applied_index: int = 0
    data: list[bytes] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)

    def apply(self, entry: Entry) -> None:
        assert entry.index == self.applied_index + 1, (entry.index, self.applied_index)
        self.applied_index = entry.index
        self.entries.append(entry)
        if entry.kind is EntryKind.NORMAL:
            self.data.append(entry.data)

    def snapshot(self) -> bytes:
        return b"|".join(self.data)

    def restore(self, data: bytes, index: int) -> None:
        self.applied_index = index
        self.data = [d for d in data.split(b"|") if d]
        self.entries = []


class Net:
    """A cluster of nodes 1..n joined by a controllable mailbox."""

    def __init__(
        self,
        n: int = 3,
        *,
        voters: Iterable[int] | None = None,
        seed: int = 0,
        **settings: object,
    ) -> None:
        self.seed = seed
        self.settings = settings
        self.nodes: dict[int, RaftNode] = {}
        self.storages: dict[int, MemoryStorage] = {}
        self.machines: dict[int, Machine] = {}
        self.mailbox: list[Send[RaftMessage]] = []
        self.sent: list[Send[RaftMessage]] = []
        self.traces: list[TraceEvent] = []
        self.read_states: dict[int, list[ReadState]] = {}
        self.readies: dict[int, list[Ready[RaftMessage]]] = {}
        self.crashed: set[int] = set()
        self.partitions: list[set[int]] = []
        self.drop: DropFilter | None = None
        self.incarnation: dict[int, int] = {}
        member_ids = tuple(voters) if voters is not None else tuple(range(1, n + 1))
        for node_id in range(1, n + 1):
            self.nodes[node_id] = RaftNode.bootstrap(
                self.config(node_id), self.env(node_id), voters=member_ids
            )
            self._fresh_disk(node_id)
        self.process_all()

    # -- set-up ---------------------------------------------------------------------------

    def config(self, node_id: int) -> RaftConfig:
        return RaftConfig(node_id=node_id, **self.settings)  # type: ignore[arg-type]

    def env(self, node_id: int) -> CoreEnv:
        inc = self.incarnation.get(node_id, 0)
        return CoreEnv(rng=random.Random(f"{self.seed}:{node_id}:{inc}"))

    def _fresh_disk(self, node_id: int) -> None:
        self.storages[node_id] = MemoryStorage()
        self.machines[node_id] = Machine()
        self.read_states[node_id] = []
        self.readies[node_id] = []

    def add_joiner(self, node_id: int) -> RaftNode:
        """Start an empty node that waits to be added as a learner."""
        node = RaftNode.join_as_learner(self.config(node_id), self.env(node_id))
        self.nodes[node_id] = node
        self._fresh_disk(node_id)
        return node

    # -- the Ready loop -------------------------------------------------------------------

    def process(self, node_id: int) -> None:
        node = self.nodes[node_id]
        while node.has_ready():
            ready = node.ready()
            self.readies[node_id].append(ready)
            storage = self.storages[node_id]
            storage.save(ready.hard_state, ready.snapshot, ready.entries)
            if ready.must_sync:
                storage.sync()
            self.mailbox.extend(ready.messages)
            self.sent.extend(ready.messages)
            machine = self.machines[node_id]
            if ready.snapshot is not None and ready.snapshot.meta.index > machine.applied_index:
                machine.restore(ready.snapshot.data, ready.snapshot.meta.index)
            for entry in ready.committed_entries:
                if entry.index > machine.applied_index:
                    machine.apply(entry)
            self.read_states[node_id].extend(ready.read_states)
            self.traces.extend(ready.traces)
            node.advance(ready)
            node.check_invariants()
        node.check_invariants()

    def process_all(self) -> None:
        for node_id in self.live():
            self.process(node_id)

    def live(self) -> list[int]:
        return [n for n in sorted(self.nodes) if n not in self.crashed]

    def connected(self, a: int, b: int) -> bool:
        if a in self.crashed or b in self.crashed or b not in self.nodes:
            return False
        return all((a in p) == (b in p) for p in self.partitions)

    def deliver(self, rounds_max: int = 10_000) -> int:
        """Process and deliver until the network is quiet; returns messages delivered."""
        delivered = 0
        for _ in range(rounds_max):
            self.process_all()
            if not self.mailbox:
                return delivered
            batch, self.mailbox = self.mailbox, []
            for envelope in batch:
                msg = envelope.message
                if not self.connected(msg.src, envelope.to):
                    continue
                if self.drop is not None and self.drop(msg):
                    continue
                self.nodes[envelope.to].step(msg)
                delivered += 1
        raise AssertionError("network did not quiesce")

    def tick(self, nodes: Iterable[int] | None = None, count: int = 1) -> None:
        """Tick nodes (default: all live ones) `count` times, delivering after each tick."""
        targets = list(nodes) if nodes is not None else self.live()
        for _ in range(count):
            for node_id in targets:
                if node_id not in self.crashed:
                    self.nodes[node_id].tick()
            self.deliver()

    # -- scenarios ------------------------------------------------------------------------

    def elect(self, node_id: int, ticks_max: int = 200) -> RaftNode:
        """Tick only `node_id` until it campaigns, then let the election finish."""
        node = self.nodes[node_id]
        for _ in range(ticks_max):
            node.tick()
            if node.role is not Role.FOLLOWER:
                break
        self.deliver()
        # A pre-vote win turns into a real campaign within the same delivery.
        assert node.role is Role.LEADER, f"{node_id} is {node.role} at term {node.term}"
        return node

    def leader(self) -> RaftNode | None:
        leaders = [self.nodes[n] for n in self.live() if self.nodes[n].role is Role.LEADER]
        if not leaders:
            return None
        return max(leaders, key=lambda n: n.term)

    def leaders_by_term(self) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for node_id in self.live():
            node = self.nodes[node_id]
            if node.role is Role.LEADER:
                out.setdefault(node.term, set()).add(node_id)
        return out

    def propose(self, node_id: int, data: bytes) -> None:
        self.nodes[node_id].propose(data)
        self.deliver()

    def isolate(self, node_id: int) -> None:
        self.partitions.append({node_id})

    def heal(self) -> None:
        self.partitions = []

    def crash(self, node_id: int, surviving_unsynced_writes: int = 0) -> None:
        self.crashed.add(node_id)
        self.storages[node_id].crash(surviving_unsynced_writes)
        self.mailbox = [m for m in self.mailbox if m.to != node_id]

    def restart(self, node_id: int) -> RaftNode:
        self.crashed.discard(node_id)
        self.incarnation[node_id] = self.incarnation.get(node_id, 0) + 1
        stable = self.storages[node_id].load()
        machine = Machine()
        if stable.snapshot is not None and stable.snapshot.meta.index > 0:
            machine.restore(stable.snapshot.data, stable.snapshot.meta.index)
        self.machines[node_id] = machine
        node = RaftNode.restore(self.config(node_id), self.env(node_id), stable)
        self.nodes[node_id] = node
        self.process(node_id)
        return node

    def applied_data(self, node_id: int) -> list[bytes]:
        return self.machines[node_id].data

    def trace_kinds(self, node_id: int | None = None) -> list[str]:
        return [t.kind for t in self.traces if node_id is None or t.node == node_id]

    def sent_of(self, kind: type, *, src: int | None = None, dst: int | None = None) -> list:  # type: ignore[type-arg]
        return [
            s.message
            for s in self.sent
            if isinstance(s.message, kind)
            and (src is None or s.message.src == src)
            and (dst is None or s.to == dst)
        ]


def with_term(msg: RaftMessage, term: int) -> RaftMessage:
    return replace(msg, term=term)


__all__ = ["Machine", "Net", "with_term"]
