"""Compaction, InstallSnapshot and restart from stable storage (DESIGN.md rule 11)."""

import pytest
from raftnet import Net

from conclave.consensus.raft import (
    AppendEntries,
    InstallSnapshot,
    InstallSnapshotResponse,
    RaftConfig,
    RaftNode,
    Role,
)
from conclave.core import (
    ConfState,
    CoreEnv,
    Entry,
    HardState,
    Snapshot,
    SnapshotMeta,
    StableState,
)

VOTERS = ConfState(voters=(1, 2, 3))


def test_a_lagging_follower_is_caught_up_with_a_snapshot() -> None:
    net = Net(3)
    net.elect(1)
    net.isolate(3)
    for i in range(10):
        net.propose(1, b"s%d" % i)
    leader = net.nodes[1]
    leader.compact(leader.applied_index, net.machines[1].snapshot())
    net.process(1)
    assert leader.first_index == leader.applied_index + 1
    assert net.storages[1].load().snapshot.meta.index == leader.applied_index  # type: ignore[union-attr]
    net.heal()
    net.tick(count=4)
    follower = net.nodes[3]
    assert "snapshot_sent" in net.trace_kinds(1)
    assert "snapshot_installed" in net.trace_kinds(3)
    assert follower.snapshot_meta.index == leader.snapshot_meta.index
    assert net.applied_data(3) == [b"s%d" % i for i in range(10)]
    net.propose(1, b"after")
    net.tick(count=2)
    assert net.applied_data(3)[-1] == b"after"


def test_compaction_refuses_unapplied_indices_and_ignores_old_ones() -> None:
    net = Net(3)
    net.elect(1)
    leader = net.nodes[1]
    with pytest.raises(ValueError, match="applied"):
        leader.compact(leader.applied_index + 1, b"")
    leader.compact(leader.applied_index, b"")
    leader.compact(0, b"")  # older than the snapshot: nothing to do
    net.process(1)
    leader.check_invariants()


def _follower_with(entries: tuple[Entry, ...], commit: int = 0) -> RaftNode:
    snap = Snapshot(meta=SnapshotMeta(index=0, term=0, conf=VOTERS))
    stable = StableState(
        hard_state=HardState(term=1, commit=commit), snapshot=snap, entries=entries
    )
    node = RaftNode.restore(RaftConfig(node_id=2), CoreEnv(), stable)
    node.ready()
    return node


def _install(node: RaftNode, index: int, term: int) -> InstallSnapshotResponse:
    meta = SnapshotMeta(index=index, term=term, conf=VOTERS)
    node.step(InstallSnapshot(src=1, dst=2, term=2, snapshot=Snapshot(meta=meta, data=b"img")))
    ready = node.ready()
    (reply,) = [s.message for s in ready.messages]
    assert isinstance(reply, InstallSnapshotResponse)
    return reply


def test_installing_a_snapshot_keeps_a_matching_suffix() -> None:
    node = _follower_with(tuple(Entry(term=1, index=i) for i in range(1, 6)))
    reply = _install(node, 3, 1)
    assert reply.match_index == 3
    assert node.snapshot_meta.index == 3
    assert node.commit_index == 3
    assert node.last_index == 5
    assert node.first_index == 4
    node.check_invariants()


def test_installing_a_snapshot_over_a_conflicting_log_replaces_it() -> None:
    node = _follower_with(tuple(Entry(term=1, index=i) for i in range(1, 6)))
    reply = _install(node, 4, 2)
    assert reply.match_index == 4
    assert node.last_index == 4
    assert node.entries(1, 10) == ()
    node.check_invariants()


def test_a_snapshot_older_than_the_commit_index_is_not_installed() -> None:
    node = _follower_with(tuple(Entry(term=1, index=i) for i in range(1, 6)), commit=5)
    reply = _install(node, 3, 1)
    assert reply.match_index == 5
    assert node.snapshot_meta.index == 0


def test_restore_rebuilds_term_vote_commit_log_and_membership() -> None:
    net = Net(3)
    net.elect(2)
    for i in range(5):
        net.propose(2, b"r%d" % i)
    net.tick(count=2)
    before = net.nodes[3]
    state = (before.term, before.vote, before.commit_index, before.last_index, before.conf)
    net.crash(3, surviving_unsynced_writes=net.storages[3].unsynced_write_count)
    after = net.restart(3)
    assert (after.term, after.vote, after.commit_index, after.last_index, after.conf) == state
    assert after.role is Role.FOLLOWER
    net.tick(count=3)
    assert net.applied_data(3) == [b"r%d" % i for i in range(5)]


def test_restore_clamps_commit_to_the_surviving_log() -> None:
    snap = Snapshot(meta=SnapshotMeta(index=0, term=0, conf=VOTERS))
    entries = tuple(Entry(term=1, index=i) for i in range(1, 4))
    stable = StableState(hard_state=HardState(term=1, commit=9), snapshot=snap, entries=entries)
    node = RaftNode.restore(RaftConfig(node_id=2), CoreEnv(), stable)
    assert node.commit_index == 3
    node.check_invariants()


def test_a_whole_cluster_restart_keeps_every_committed_entry() -> None:
    net = Net(3)
    net.elect(1)
    for i in range(4):
        net.propose(1, b"k%d" % i)
    net.tick(count=2)
    for node_id in (1, 2, 3):
        net.crash(node_id)
    for node_id in (1, 2, 3):
        net.restart(node_id)
    net.tick(count=40)
    leader = net.leader()
    assert leader is not None
    net.propose(leader.id, b"new")
    net.tick(count=2)
    for node_id in (1, 2, 3):
        assert net.applied_data(node_id) == [b"k0", b"k1", b"k2", b"k3", b"new"]


def test_a_joiner_accepts_no_entries_before_a_snapshot() -> None:
    joiner = RaftNode.join_as_learner(RaftConfig(node_id=4), CoreEnv())
    entries = (Entry(term=1, index=1),)
    joiner.step(
        AppendEntries(src=1, dst=4, term=1, prev_index=0, prev_term=0, entries=entries, commit=1)
    )
    (reply,) = [s.message for s in joiner.ready().messages]
    assert not reply.success
    assert reply.conflict_index == 0
    assert joiner.last_index == 0
    assert not joiner.initialized
