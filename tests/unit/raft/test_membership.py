"""Single-server membership changes with learners (thesis 4.1, 4.2)."""

import pytest
from raftnet import Net

from conclave.consensus.raft import (
    AppendEntries,
    ConfChange,
    ConfChangeOp,
    Role,
    apply_conf_change,
)
from conclave.core import ConfState, EntryKind, NotLeader, ProposalDropped


def add(node_id: int) -> ConfChange:
    return ConfChange(op=ConfChangeOp.ADD_LEARNER, node_id=node_id)


def promote(node_id: int) -> ConfChange:
    return ConfChange(op=ConfChangeOp.PROMOTE_LEARNER, node_id=node_id)


def remove(node_id: int) -> ConfChange:
    return ConfChange(op=ConfChangeOp.REMOVE_NODE, node_id=node_id)


def test_conf_change_encoding_is_stable_and_strict() -> None:
    assert add(4).encode() == b"add_learner:4"
    for change in (add(4), promote(12), remove(3)):
        assert ConfChange.decode(change.encode()) == change
    for bad in (
        b"",
        b"add_learner",
        b"add_learner:x",
        b"grow:4",
        b"remove_node:0",
        b"add_learner:-1",
    ):
        with pytest.raises(ValueError, match="malformed"):
            ConfChange.decode(bad)


def test_apply_conf_change_is_total() -> None:
    conf = ConfState(voters=(1, 2), learners=(3,))
    assert apply_conf_change(conf, add(3)) == conf
    assert apply_conf_change(conf, promote(2)) == conf
    assert apply_conf_change(conf, promote(3)) == ConfState(voters=(1, 2, 3))
    assert apply_conf_change(conf, remove(1)) == ConfState(voters=(2,), learners=(3,))


def _cluster_with_learner() -> Net:
    net = Net(3, learner_catch_up_lag_max=2)
    net.elect(1)
    for i in range(6):
        net.propose(1, b"d%d" % i)
    net.add_joiner(4)
    net.nodes[1].propose_conf_change(add(4))
    net.deliver()
    net.tick(count=4)
    return net


def test_a_learner_is_added_catches_up_and_is_promoted() -> None:
    net = _cluster_with_learner()
    learner = net.nodes[4]
    assert learner.initialized
    assert learner.is_learner
    assert learner.conf == ConfState(voters=(1, 2, 3), learners=(4,))
    assert net.applied_data(4) == [b"d%d" % i for i in range(6)]
    net.tick([4], count=100)
    assert learner.role is Role.FOLLOWER  # learners never campaign
    net.nodes[1].propose_conf_change(promote(4))
    net.deliver()
    net.tick(count=2)
    for node_id in (1, 2, 3, 4):
        assert net.nodes[node_id].conf == ConfState(voters=(1, 2, 3, 4))


def test_learners_do_not_count_toward_commit() -> None:
    net = _cluster_with_learner()
    net.partitions = [{1, 4}]
    net.propose(1, b"needs a voter")
    net.tick([1, 4], count=3)
    assert net.nodes[4].last_index == net.nodes[1].last_index
    assert net.nodes[1].commit_index < net.nodes[1].last_index


def test_promotion_requires_a_caught_up_learner() -> None:
    net = _cluster_with_learner()
    net.isolate(4)
    for i in range(5):
        net.propose(1, b"more%d" % i)
    with pytest.raises(ProposalDropped, match="caught up"):
        net.nodes[1].propose_conf_change(promote(4))


def test_only_one_uncommitted_change_at_a_time() -> None:
    net = Net(3)
    net.elect(1)
    net.isolate(1)
    net.nodes[1].propose_conf_change(add(4))
    with pytest.raises(ProposalDropped, match="not committed"):
        net.nodes[1].propose_conf_change(add(5))


def test_no_change_before_the_leader_commits_in_its_term() -> None:
    net = Net(3)
    net.drop = lambda m: isinstance(m, AppendEntries) and bool(m.entries)
    leader = net.elect(1)
    with pytest.raises(ProposalDropped, match="its term"):
        leader.propose_conf_change(add(4))


def test_invalid_changes_are_refused() -> None:
    net = Net(3)
    net.elect(1)
    leader = net.nodes[1]
    with pytest.raises(ValueError, match="already"):
        leader.propose_conf_change(add(2))
    with pytest.raises(ValueError, match="not a learner"):
        leader.propose_conf_change(promote(2))
    with pytest.raises(ValueError, match="not a member"):
        leader.propose_conf_change(remove(9))
    with pytest.raises(NotLeader):
        net.nodes[2].propose_conf_change(add(4))


def test_removing_a_follower() -> None:
    net = Net(3)
    net.elect(1)
    net.nodes[1].propose_conf_change(remove(3))
    net.deliver()
    net.tick(count=2)
    assert net.nodes[1].conf.voters == (1, 2)
    assert 3 not in net.nodes[1].progress()
    assert net.nodes[3].conf.voters == (1, 2)  # it learned of its removal
    net.tick([3], count=100)
    assert net.nodes[3].role is Role.FOLLOWER
    net.propose(1, b"two voters")
    net.tick(count=2)
    assert net.applied_data(2) == [b"two voters"]


def test_removing_the_leader_makes_it_step_down_once_committed() -> None:
    net = Net(3)
    net.elect(1)
    net.nodes[1].propose_conf_change(remove(1))
    net.deliver()
    assert net.nodes[1].role is Role.FOLLOWER
    assert "removed_self" in net.trace_kinds(1)
    net.tick(count=40)
    leader = net.leader()
    assert leader is not None
    assert leader.id in (2, 3)
    net.propose(leader.id, b"without 1")
    net.tick(count=2)
    other = 5 - leader.id
    assert net.applied_data(other) == [b"without 1"]
    assert net.nodes[1].role is Role.FOLLOWER


def test_a_truncated_change_is_undone() -> None:
    net = Net(3, check_quorum=False, pre_vote=False)
    net.elect(1)
    net.tick(count=2)
    net.isolate(1)
    net.nodes[1].propose_conf_change(add(4))
    net.deliver()
    assert net.nodes[1].conf.learners == (4,)
    net.elect(2)
    net.heal()
    net.tick(count=6)
    assert net.nodes[1].conf == ConfState(voters=(1, 2, 3))
    assert all(e.kind is not EntryKind.CONF_CHANGE for e in net.nodes[1].entries(1, 99))
