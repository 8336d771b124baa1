"""A simulated crash keeps synced writes and a prefix of unsynced ones; restart rebuilds
the node from its disk alone (core from `storage.load()`, state machine from the snapshot)."""

import dataclasses
import random

from conclave.apps.kv import Get, Put, Request, encode_request
from conclave.consensus.raft import RaftConfig, RaftMessage, RaftNode, Role
from conclave.core import Entry, HardState, Ready
from conclave.sim.clock import EventQueue, NodeClock
from conclave.sim.invariants import SafetyChecker
from conclave.sim.network import SimNetwork
from conclave.sim.node import ClientReply, ClientRequest, ReplyKind, SimNode


class NeverSyncs(RaftNode):
    """A broken core that never asks for fsync: everything it writes is volatile."""

    def ready(self) -> Ready[RaftMessage]:
        return dataclasses.replace(super().ready(), must_sync=False)


class KeepNone(random.Random):
    """A crash draw that keeps none of the unsynced writes."""

    def randint(self, a: int, b: int) -> int:
        return a


def _node(
    core_class: type[RaftNode] = RaftNode, compaction: int = 1_000
) -> tuple[SimNode, list[ClientReply]]:
    queue = EventQueue()
    network: SimNetwork[RaftMessage] = SimNetwork(random.Random(1), queue, 1)
    replies: list[ClientReply] = []
    node = SimNode(
        1,
        seed=1,
        core_class=core_class,
        config=RaftConfig(node_id=1),
        clock=NodeClock(tick_period_us=10_000, phase_us=0),
        network=network,
        checker=SafetyChecker(),
        reply=replies.append,
        compaction_entries=compaction,
    )
    return node, replies


def _lead(node: SimNode) -> None:
    node.bootstrap((1,))
    for _ in range(50):
        node.tick()
        if node.core is not None and node.core.role is Role.LEADER:
            return
    raise AssertionError("a single voter elects itself")


def _put(node: SimNode, seq: int) -> None:
    data = encode_request(Request(client_id=1, seq=seq, command=Put(key="k", value=f"v{seq}")))
    node.client_request(ClientRequest(1, seq, 1, "k", data))


def test_memory_disk_crash_keeps_synced_writes_and_a_prefix_of_the_rest() -> None:
    node, _ = _node()
    _lead(node)
    durable = node.storage.view()  # synced, plus a commit-index update the core did not sync
    pending = node.storage.unsynced_write_count
    node.storage.save(HardState(term=99, vote=1, commit=0), None, ())
    node.storage.save(None, None, (Entry(term=99, index=durable.entries[-1].index + 1),))
    assert node.storage.unsynced_write_count == pending + 2

    class Draw(random.Random):
        def randint(self, a: int, b: int) -> int:
            assert (a, b) == (0, pending + 2)
            return pending + 1  # keep all but the last unsynced write: a torn tail

    assert node.crash(Draw()) == pending + 1
    assert node.core is None
    after = node.storage.load()
    assert after.hard_state.term == 99  # in the surviving prefix
    assert after.entries == durable.entries  # the last write was torn off


def test_acknowledged_writes_survive_a_crash_and_are_applied_again() -> None:
    node, replies = _node()
    _lead(node)
    for seq in (1, 2, 3):
        _put(node, seq)
    assert [r.kind for r in replies] == [ReplyKind.OK] * 3
    applied = node.machine.applied_index
    node.crash(random.Random(0))
    node.restart()
    assert node.core is not None
    assert node.incarnation == 1
    for _ in range(50):
        node.tick()
    assert node.machine.applied_index >= applied
    assert node.machine.query(Get(key="k")).value == "v3"


def test_unsynced_writes_are_lost_on_crash() -> None:
    node, _ = _node(NeverSyncs)
    _lead(node)
    for seq in (1, 2, 3):
        _put(node, seq)
    before = node.core.last_index if node.core is not None else 0
    assert before >= 4
    assert node.storage.unsynced_write_count > 0
    node.crash(KeepNone())
    assert node.storage.load().entries == ()
    node.restart()
    assert node.core is not None
    assert node.core.last_index < before


def test_restart_restores_the_state_machine_from_the_snapshot() -> None:
    node, _ = _node(compaction=2)
    _lead(node)
    for seq in (1, 2, 3, 4):
        _put(node, seq)
    snapshot = node.storage.load().snapshot
    assert snapshot is not None
    assert snapshot.meta.index >= 2
    node.crash(random.Random(0))
    node.restart()
    assert node.machine.applied_index >= snapshot.meta.index
