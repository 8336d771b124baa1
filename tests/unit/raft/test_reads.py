"""Linearizable reads: ReadIndex (thesis 6.4) and leases (thesis 6.4.1)."""

import pytest
from raftnet import Net

from conclave.consensus.raft import AppendEntries, RaftConfig, ReadOnlyOption, Role
from conclave.core import NotLeader, ReadState


def test_read_index_waits_for_a_quorum_round_then_answers_at_the_commit_index() -> None:
    net = Net(3)
    net.elect(1)
    net.propose(1, b"x")
    net.tick(count=2)
    leader = net.nodes[1]
    leader.read_index(7)
    net.process(1)
    assert net.read_states[1] == []  # not before followers confirm leadership
    net.deliver()
    assert net.read_states[1] == [ReadState(request_ctx=7, index=leader.commit_index)]


def test_reads_are_refused_on_followers() -> None:
    net = Net(3)
    net.elect(3)
    with pytest.raises(NotLeader) as refusal:
        net.nodes[1].read_index(1)
    assert refusal.value.leader_hint == 3


def test_a_new_leader_defers_reads_until_it_commits_in_its_term() -> None:
    net = Net(3)
    net.drop = lambda m: isinstance(m, AppendEntries) and bool(m.entries)  # NOOP stuck
    leader = net.elect(1)
    assert leader.commit_index == 0
    leader.read_index(5)
    net.tick(count=3)
    assert net.read_states[1] == []
    net.drop = None
    net.tick(count=12)
    assert net.read_states[1] == [ReadState(request_ctx=5, index=leader.commit_index)]
    assert leader.commit_index >= 1


def test_a_partitioned_leader_never_answers_a_read() -> None:
    net = Net(3, check_quorum=False)
    net.elect(1)
    net.tick(count=2)
    net.isolate(1)
    net.nodes[1].read_index(9)
    net.tick(count=30)
    assert net.read_states[1] == []
    assert net.nodes[1].role is Role.LEADER  # it still believes it leads


def test_lease_reads_require_check_quorum() -> None:
    with pytest.raises(ValueError, match="check_quorum"):
        RaftConfig(node_id=1, read_only=ReadOnlyOption.LEASE_BASED, check_quorum=False)


def test_lease_read_is_served_at_once_while_the_lease_holds() -> None:
    net = Net(3, read_only=ReadOnlyOption.LEASE_BASED, check_quorum=True)
    net.elect(1)
    net.tick(count=3)
    leader = net.nodes[1]
    leader.read_index(1)
    ready = leader.ready()
    assert ready.read_states == (ReadState(request_ctx=1, index=leader.commit_index),)
    net.isolate(1)
    net.tick([1], count=9)  # longer than the lease (10 - 2 ticks) without acknowledgements
    assert leader.role is Role.LEADER
    leader.read_index(2)
    assert leader.ready().read_states == ()  # falls back to a quorum round


def test_no_lease_reads_after_a_transfer_was_started() -> None:
    net = Net(3, read_only=ReadOnlyOption.LEASE_BASED, check_quorum=True)
    net.elect(1)
    net.tick(count=3)
    leader = net.nodes[1]
    net.isolate(2)
    leader.transfer_leadership(2)
    net.process(1)
    leader.read_index(3)
    assert leader.ready().read_states == ()


def test_single_node_reads_are_answered_immediately() -> None:
    net = Net(1)
    node = net.nodes[1]
    while node.role is not Role.LEADER:
        node.tick()
    net.process(1)
    node.read_index(4)
    net.process(1)
    assert net.read_states[1] == [ReadState(request_ctx=4, index=node.commit_index)]
