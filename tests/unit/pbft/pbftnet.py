"""A tiny deterministic router of PBFT replicas and clients for unit tests.

Each replica's Readies are executed per the contract (persist into MemoryStorage, sync when
asked, send, apply, advance) and its invariants are checked after every input. Sent messages
wait in a mailbox; `deliver` moves them in FIFO order, or in an order drawn from a seeded rng,
so tests control interleavings. `drop` filters model crashed or cut-off replicas.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from conclave.consensus.pbft import (
    KeyRing,
    PbftClient,
    PbftClientConfig,
    PbftConfig,
    PbftMessage,
    PbftReplica,
    PrePrepare,
    Reply,
    Request,
    auth_payload,
    dev_keys,
    digest_of,
)
from conclave.core import CoreEnv, Entry, EntryKind, MemoryStorage, Send, TraceEvent

KEY_SEED = b"pbft-unit-tests"
DropFilter = Callable[[Send[PbftMessage]], bool]


@dataclass
class Machine:
    """Records every entry applied, checks indices strictly increase, returns b'r:' + data."""

    applied_index: int = 0
    entries: list[Entry] = field(default_factory=list)

    def apply(self, entry: Entry) -> bytes | None:
        assert entry.index > self.applied_index, (entry.index, self.applied_index)
        self.applied_index = entry.index
        self.entries.append(entry)
        return b"r:" + entry.data if entry.kind is EntryKind.NORMAL else None

    def snapshot(self) -> bytes:
        return b"\x00".join(e.data for e in self.entries if e.kind is EntryKind.NORMAL)

    def restore(self, data: bytes, index: int) -> None:
        ops = data.split(b"\x00") if data else []
        self.entries = [Entry(term=0, index=0, data=op) for op in ops]
        self.applied_index = index

    @property
    def operations(self) -> list[bytes]:
        return [e.data for e in self.entries if e.kind is EntryKind.NORMAL]


class Net:
    """Replicas 1..n and clients 101.. joined by a controllable mailbox."""

    def __init__(
        self, n: int = 4, *, clients: int = 1, seed: int | None = None, **settings: object
    ) -> None:
        self.ids = tuple(range(1, n + 1))
        self.keys = dev_keys(self.ids, KEY_SEED)
        self.rng = random.Random(seed) if seed is not None else None
        self.replicas: dict[int, PbftReplica] = {}
        self.machines: dict[int, Machine] = {}
        self.storages: dict[int, MemoryStorage] = {}
        for rid in self.ids:
            config = PbftConfig(
                replica_id=rid,
                replica_ids=self.ids,
                keys=self.keys[rid],
                **settings,  # type: ignore[arg-type]
            )
            self.replicas[rid] = PbftReplica.bootstrap(config, CoreEnv(rng=random.Random(rid)))
            self.machines[rid] = Machine()
            self.storages[rid] = MemoryStorage()
        self.clients: dict[int, PbftClient] = {
            cid: PbftClient(PbftClientConfig(client_id=cid, replica_ids=self.ids))
            for cid in range(101, 101 + clients)
        }
        self.results: dict[int, list[bytes]] = {cid: [] for cid in self.clients}
        self.mailbox: list[Send[PbftMessage]] = []
        self.sent: list[Send[PbftMessage]] = []
        self.traces: list[TraceEvent] = []
        self.drop: DropFilter | None = None
        self.crashed: set[int] = set()
        self.flush()

    # -- driving ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Execute every pending Ready of every replica and collect client output."""
        for rid, replica in self.replicas.items():
            if rid in self.crashed:
                continue
            while True:
                while replica.has_ready():
                    self._execute(rid, replica)
                pending = replica.pending_checkpoint
                if pending is None:
                    break
                replica.checkpoint_state(pending, self.machines[rid].snapshot())
            replica.check_invariants()
        for cid, client in self.clients.items():
            out = client.ready()
            self._post(out.messages)
            self.results[cid].extend(r.result for r in out.results)

    def _execute(self, rid: int, replica: PbftReplica) -> None:
        ready = replica.ready()
        storage = self.storages[rid]
        storage.save(ready.hard_state, ready.snapshot, ready.entries)
        if ready.must_sync:
            storage.sync()
        self._post(ready.messages)
        machine = self.machines[rid]
        if ready.snapshot is not None and ready.snapshot.meta.index > machine.applied_index:
            machine.restore(ready.snapshot.data, ready.snapshot.meta.index)
        for entry in ready.committed_entries:
            if entry.index <= machine.applied_index:
                continue
            result = machine.apply(entry)
            if result is not None:
                replica.record_result(entry.index, result)
        self.traces.extend(ready.traces)
        replica.advance(ready)

    def _post(self, messages: tuple[Send[PbftMessage], ...]) -> None:
        for envelope in messages:
            self.sent.append(envelope)
            self.mailbox.append(envelope)

    def deliver(self, limit: int = 100_000) -> int:
        """Deliver messages (FIFO, or in seeded random order) until none is left."""
        delivered = 0
        while self.mailbox and delivered < limit:
            index = self.rng.randrange(len(self.mailbox)) if self.rng else 0
            envelope = self.mailbox.pop(index)
            delivered += 1
            if self.drop is not None and self.drop(envelope):
                continue
            self.inject(envelope.to, envelope.message)
        return delivered

    def inject(self, to: int, message: PbftMessage) -> None:
        """Hand one message to its receiver, then execute what it produced."""
        if to in self.replicas:
            if to in self.crashed:
                return
            self.replicas[to].step(message)
        elif to in self.clients:
            assert isinstance(message, Reply)
            self.clients[to].step(message)
        self.flush()

    def tick(self, count: int = 1) -> None:
        """Tick every live replica and client `count` times, delivering after each tick."""
        for _ in range(count):
            for rid, replica in self.replicas.items():
                if rid not in self.crashed:
                    replica.tick()
            for client in self.clients.values():
                client.tick()
            self.flush()
            self.deliver()

    def crash(self, rid: int) -> None:
        """The replica stops: it neither receives, sends nor ticks."""
        self.crashed.add(rid)
        self.mailbox = [m for m in self.mailbox if m.to != rid]

    def submit(self, client_id: int, operation: bytes) -> Request:
        request = self.clients[client_id].submit(operation)
        self.flush()
        return request

    def run_until_results(self, client_id: int, count: int, ticks_max: int = 2_000) -> None:
        self.deliver()
        for _ in range(ticks_max):
            if len(self.results[client_id]) >= count:
                return
            self.tick()
        raise AssertionError(f"client {client_id} got {self.results[client_id]}")

    # -- observation -----------------------------------------------------------------------

    def live(self) -> list[int]:
        return [r for r in self.ids if r not in self.crashed]

    def operations(self, rid: int) -> list[bytes]:
        return self.machines[rid].operations

    def trace_kinds(self, rid: int | None = None) -> list[str]:
        return [t.kind for t in self.traces if rid is None or t.node == rid]


def executed_by_seq(net: Net) -> dict[int, dict[int, bytes]]:
    """Per replica: seq -> digest of the batch it executed (only those still in memory)."""
    out: dict[int, dict[int, bytes]] = {}
    for rid, replica in net.replicas.items():
        seqs = range(replica.stable_seq + 1, replica.last_executed + 1)
        out[rid] = {s: d for s in seqs if (d := replica.executed_digest(s)) is not None}
    return out


def assert_agreement(net: Net, histories: dict[int, dict[int, bytes]]) -> None:
    """No two replicas executed different batches at one seq (histories accumulate)."""
    for rid, seqs in executed_by_seq(net).items():
        if rid in net.crashed:
            continue
        for seq, digest in seqs.items():
            histories.setdefault(seq, {})[rid] = digest
    for seq, by_replica in histories.items():
        assert len(set(by_replica.values())) == 1, f"seq {seq}: {by_replica}"


# -- forging messages as a given replica (Byzantine behaviour in tests) -----------------


def ring(net: Net, rid: int) -> KeyRing:
    return KeyRing(rid, net.keys[rid])


def signed(net: Net, rid: int, message: PbftMessage) -> PbftMessage:
    return replace(message, auth=ring(net, rid).sign(auth_payload(message)))  # type: ignore[type-var]


def pre_prepare(net: Net, src: int, seq: int, op: bytes, view: int = 0) -> PrePrepare:
    batch = (Request(client_id=201, timestamp=seq, operation=op),)
    message = PrePrepare(src=src, view=view, seq=seq, digest=digest_of(batch), batch=batch)
    result = signed(net, src, message)
    assert isinstance(result, PrePrepare)
    return result
