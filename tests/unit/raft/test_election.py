"""Leader election: randomized timeouts, pre-vote, check-quorum, stickiness, vote rules."""

import random

import pytest
from raftnet import Net

from conclave.consensus.raft import (
    AppendEntries,
    RaftConfig,
    RaftNode,
    RequestVote,
    RequestVoteResponse,
    Role,
)
from conclave.core import CoreEnv, EntryKind, MemoryStorage


def test_one_leader_is_elected_and_commits_a_noop() -> None:
    net = Net(3)
    leader = net.elect(1)
    assert leader.term == 1
    assert net.leaders_by_term() == {1: {1}}
    for node_id in (2, 3):
        node = net.nodes[node_id]
        assert node.role is Role.FOLLOWER
        assert node.leader_id == 1
        assert node.term == 1
    net.tick(count=3)  # heartbeats carry the commit index
    for node in net.nodes.values():
        assert node.commit_index == 1
        assert node.entries(1, 2)[0].kind is EntryKind.NOOP


def test_election_timeout_is_drawn_in_range_on_every_reset() -> None:
    config = RaftConfig(node_id=1, election_timeout_ticks_min=10, election_timeout_ticks_max=20)
    seen = set()
    for seed in range(40):
        node = RaftNode.bootstrap(config, CoreEnv(rng=random.Random(seed)), voters=(1, 2, 3))
        ticks = 0
        while node.role is Role.FOLLOWER:
            node.tick()
            ticks += 1
        assert 10 <= ticks < 20
        seen.add(ticks)
    assert len(seen) > 3  # actually randomized


def test_single_node_cluster_leads_and_commits_only_what_is_persisted() -> None:
    net = Net(1)
    node = net.nodes[1]
    for _ in range(30):
        node.tick()
        if node.role is Role.LEADER:
            break
    assert node.role is Role.LEADER
    ticket = node.propose(b"x")
    ready = node.ready()
    assert ticket.index in [e.index for e in ready.entries]
    assert node.commit_index < ticket.index  # not durable yet: not counted
    net.storages[1].save(ready.hard_state, ready.snapshot, ready.entries)
    net.storages[1].sync()
    node.advance(ready)
    assert node.commit_index == ticket.index


def test_pre_vote_keeps_a_partitioned_node_from_bumping_terms() -> None:
    net = Net(3, pre_vote=True)
    net.elect(1)
    net.isolate(3)
    net.tick(count=100)
    assert net.nodes[3].term == 1  # pre-votes failed; the term never moved
    assert net.nodes[3].role in (Role.FOLLOWER, Role.PRE_CANDIDATE)
    net.heal()
    net.tick(count=5)
    assert net.nodes[1].role is Role.LEADER
    assert {n.term for n in net.nodes.values()} == {1}


def test_without_pre_vote_a_partitioned_node_bumps_terms() -> None:
    net = Net(3, pre_vote=False)
    net.elect(1)
    net.isolate(3)
    net.tick(count=100)
    assert net.nodes[3].term > 2


def test_check_quorum_makes_an_isolated_leader_step_down() -> None:
    net = Net(3, check_quorum=True)
    net.elect(1)
    net.isolate(1)
    net.tick([1], count=25)
    assert net.nodes[1].role is Role.FOLLOWER
    assert "check_quorum_failed" in net.trace_kinds(1)


def test_without_check_quorum_an_isolated_leader_stays() -> None:
    net = Net(3, check_quorum=False)
    net.elect(1)
    net.isolate(1)
    net.tick([1], count=25)
    assert net.nodes[1].role is Role.LEADER


def _vote_request(src: int, dst: int, term: int, *, transfer: bool = False) -> RequestVote:
    return RequestVote(
        src=src, dst=dst, term=term, last_log_index=100, last_log_term=term - 1, transfer=transfer
    )


def test_followers_that_hear_from_a_leader_ignore_vote_requests_unless_transfer() -> None:
    net = Net(3, check_quorum=True)
    net.elect(1)
    follower = net.nodes[2]
    follower.step(_vote_request(3, 2, 5))
    assert follower.term == 1
    assert "vote_ignored" in [t.kind for t in follower.ready().traces]
    follower.step(_vote_request(3, 2, 5, transfer=True))
    assert follower.term == 5
    assert follower.vote == 3


def test_a_voter_grants_one_vote_per_term_and_only_to_up_to_date_logs() -> None:
    net = Net(3, check_quorum=False)
    net.elect(1)
    node = net.nodes[2]
    stale = RequestVote(src=3, dst=2, term=2, last_log_index=0, last_log_term=0)
    node.step(stale)
    responses = [s.message for s in node.ready().messages]
    assert responses == [RequestVoteResponse(src=2, dst=3, term=2, granted=False)]
    fresh = RequestVote(src=3, dst=2, term=3, last_log_index=1, last_log_term=1)
    node.step(fresh)
    other = RequestVote(src=1, dst=2, term=3, last_log_index=1, last_log_term=1)
    node.step(other)
    granted = [s.message.granted for s in node.ready().messages]  # type: ignore[union-attr]
    assert granted == [True, False]
    assert node.vote == 3


def test_a_vote_leaves_only_with_its_hard_state_in_the_same_synced_ready() -> None:
    net = Net(3)
    net.nodes[1].tick()
    for _ in range(40):
        net.nodes[1].tick()
        if net.nodes[1].role is Role.PRE_CANDIDATE:
            break
    net.deliver()
    for ready in net.readies[2]:
        votes = [
            s.message
            for s in ready.messages
            if isinstance(s.message, RequestVoteResponse)
            and s.message.granted
            and not s.message.pre_vote
        ]
        if votes:
            assert ready.hard_state is not None
            assert ready.hard_state.vote == 1
            assert ready.must_sync
            break
    else:
        pytest.fail("no vote granted")


def test_learners_and_joiners_never_campaign() -> None:
    net = Net(3, voters=(1, 2))
    net.tick([3], count=100)
    assert net.nodes[3].role is Role.FOLLOWER
    joiner = RaftNode.join_as_learner(RaftConfig(node_id=9), CoreEnv())
    for _ in range(100):
        joiner.tick()
    assert joiner.role is Role.FOLLOWER
    assert not joiner.has_ready()


def test_a_stale_leader_learns_the_new_term_from_an_append_response() -> None:
    net = Net(3, pre_vote=False, check_quorum=False)
    net.elect(1)
    net.isolate(1)
    net.tick([2, 3], count=40)
    assert net.leader() is not None
    assert net.leader().id != 1
    net.heal()
    net.tick([1], count=3)  # old leader's heartbeats get a higher-term answer
    assert net.nodes[1].role is Role.FOLLOWER
    assert net.nodes[1].term > 1


def test_restart_refuses_votes_for_one_minimum_election_timeout() -> None:
    net = Net(3, check_quorum=True)
    net.elect(1)
    net.crash(2)
    node = net.restart(2)
    node.step(_vote_request(3, 2, 7))
    assert node.term == 1
    for _ in range(10):
        node.tick()
    node.step(_vote_request(3, 2, 7))
    assert node.term == 7
    assert node.vote == 3


def test_storage_holds_the_bootstrap_snapshot_after_the_first_ready() -> None:
    storage = MemoryStorage()
    node = RaftNode.bootstrap(RaftConfig(node_id=1), CoreEnv(), voters=(1, 2))
    ready = node.ready()
    assert ready.snapshot is not None
    assert ready.snapshot.meta.conf.voters == (1, 2)
    assert ready.must_sync
    storage.save(ready.hard_state, ready.snapshot, ready.entries)
    storage.sync()
    node.advance(ready)
    assert storage.load().snapshot == ready.snapshot


def test_append_from_a_leader_of_the_same_term_turns_a_candidate_into_a_follower() -> None:
    net = Net(3, pre_vote=False)
    node = net.nodes[3]
    while node.role is not Role.CANDIDATE:
        node.tick()
    node.step(AppendEntries(src=2, dst=3, term=node.term, prev_index=0, prev_term=0, commit=0))
    assert node.role is Role.FOLLOWER
    assert node.leader_id == 2


def test_pre_votes_are_refused_while_a_leader_is_heard_even_without_check_quorum() -> None:
    net = Net(3, check_quorum=False, pre_vote=True)
    net.elect(1)
    net.isolate(1)
    net.tick([2], count=40)  # node 3 is never ticked: it still "hears" node 1
    assert net.nodes[2].term == 1
    assert "pre_vote_refused" in net.trace_kinds(3)
    net.tick([2, 3], count=40)
    leader = net.leader()
    assert leader is not None
    assert leader.term == 2
