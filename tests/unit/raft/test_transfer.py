"""Leadership transfer (thesis 3.10)."""

import pytest
from raftnet import Net

from conclave.consensus.raft import ConfChange, ConfChangeOp, RequestVote, Role, TimeoutNow
from conclave.core import NotLeader, ProposalDropped


def test_transfer_to_an_up_to_date_follower() -> None:
    net = Net(3)
    net.elect(1)
    net.tick(count=2)
    net.nodes[1].transfer_leadership(2)
    with pytest.raises(ProposalDropped, match="transfer"):
        net.nodes[1].propose(b"x")
    net.deliver()
    assert net.nodes[2].role is Role.LEADER
    assert net.nodes[2].term == 2
    assert net.nodes[1].role is Role.FOLLOWER
    votes = net.sent_of(RequestVote, src=2)
    assert votes
    assert all(v.transfer and not v.pre_vote for v in votes)


def test_transfer_first_catches_the_target_up() -> None:
    net = Net(3)
    net.elect(1)
    net.isolate(3)
    for i in range(5):
        net.propose(1, b"t%d" % i)
    net.heal()
    net.nodes[1].transfer_leadership(3)
    net.deliver()
    assert net.nodes[3].role is Role.LEADER
    net.tick(count=2)
    assert net.applied_data(3)[:5] == [b"t%d" % i for i in range(5)]


def test_transfer_aborts_after_an_election_timeout() -> None:
    net = Net(3)
    net.elect(1)
    net.isolate(3)
    net.nodes[1].transfer_leadership(3)
    net.tick([1, 2], count=12)
    assert net.nodes[1].role is Role.LEADER
    assert net.nodes[1].lead_transferee == 0
    assert "transfer_aborted" in net.trace_kinds(1)
    net.propose(1, b"accepted again")
    assert net.sent_of(TimeoutNow) == [TimeoutNow(src=1, dst=3, term=1)]  # lost
    assert net.nodes[3].term == 1


def test_transfer_refusals() -> None:
    net = Net(3)
    net.elect(1)
    with pytest.raises(NotLeader):
        net.nodes[2].transfer_leadership(3)
    with pytest.raises(ValueError, match="not a voter"):
        net.nodes[1].transfer_leadership(9)
    net.add_joiner(4)
    net.nodes[1].propose_conf_change(ConfChange(op=ConfChangeOp.ADD_LEARNER, node_id=4))
    net.deliver()
    with pytest.raises(ValueError, match="not a voter"):
        net.nodes[1].transfer_leadership(4)
