"""Log replication: consistency check, repair with hints, Figure 8, persistence, limits."""

import pytest
from raftnet import Net

from conclave.consensus.raft import (
    AppendEntries,
    AppendEntriesResponse,
    ProgressState,
    RaftConfig,
    RaftNode,
    RequestVoteResponse,
    Role,
)
from conclave.core import (
    ConfState,
    CoreEnv,
    Entry,
    HardState,
    NotLeader,
    ProposalDropped,
    Snapshot,
    SnapshotMeta,
    StableState,
)


def test_proposals_replicate_and_apply_in_order_everywhere() -> None:
    net = Net(3)
    net.elect(1)
    for i in range(10):
        net.nodes[1].propose(b"c%d" % i)
    net.deliver()
    net.tick(count=2)
    expected = [b"c%d" % i for i in range(10)]
    for node_id in (1, 2, 3):
        assert net.applied_data(node_id) == expected
        assert net.nodes[node_id].applied_index == net.nodes[1].last_index


def test_a_follower_refuses_proposals_with_a_leader_hint() -> None:
    net = Net(3)
    net.elect(2)
    with pytest.raises(NotLeader) as refusal:
        net.nodes[1].propose(b"x")
    assert refusal.value.leader_hint == 2
    fresh = Net(3)
    with pytest.raises(NotLeader) as unknown:
        fresh.nodes[1].propose(b"x")
    assert unknown.value.leader_hint == 0


def test_proposals_are_batched_into_one_append_per_follower() -> None:
    net = Net(3)
    net.elect(1)
    net.tick(count=1)
    leader = net.nodes[1]
    for i in range(5):
        leader.propose(b"b%d" % i)
    ready = leader.ready()
    appends = [s.message for s in ready.messages if isinstance(s.message, AppendEntries)]
    assert sorted(a.dst for a in appends) == [2, 3]
    assert all(len(a.entries) == 5 for a in appends)
    assert len(ready.entries) == 5
    assert ready.must_sync


def test_an_append_acknowledgement_leaves_with_its_entries() -> None:
    net = Net(3)
    net.elect(1)
    net.propose(1, b"x")
    for ready in net.readies[2]:
        acks = [s for s in ready.messages if isinstance(s.message, AppendEntriesResponse)]
        for ack in acks:
            assert isinstance(ack.message, AppendEntriesResponse)
            if ack.message.success and ack.message.match_index == 2:
                assert [e.index for e in ready.entries] == [2]
                assert ready.must_sync
                return
    pytest.fail("no acknowledgement of index 2")


def test_follower_rejection_carries_a_conflict_hint() -> None:
    node = RaftNode.bootstrap(RaftConfig(node_id=2), CoreEnv(), voters=(1, 2, 3))
    entries = tuple(Entry(term=1, index=i) for i in range(1, 6))
    node.step(
        AppendEntries(src=1, dst=2, term=1, prev_index=0, prev_term=0, entries=entries, commit=0)
    )
    node.ready()
    node.step(AppendEntries(src=3, dst=2, term=3, prev_index=10, prev_term=3, commit=0))
    (reply,) = [s.message for s in node.ready().messages]
    assert reply == AppendEntriesResponse(
        src=2, dst=3, term=3, success=False, match_index=10, conflict_index=5, conflict_term=1
    )


def _leader_with_log(terms: list[int]) -> RaftNode:
    entries = tuple(Entry(term=t, index=i + 1) for i, t in enumerate(terms))
    snap = Snapshot(meta=SnapshotMeta(index=0, term=0, conf=ConfState(voters=(1, 2, 3))))
    stable = StableState(hard_state=HardState(term=terms[-1]), snapshot=snap, entries=entries)
    config = RaftConfig(node_id=1, pre_vote=False, check_quorum=False)
    node = RaftNode.restore(config, CoreEnv(), stable)
    while node.role is not Role.CANDIDATE:
        node.tick()
    node.step(RequestVoteResponse(src=2, dst=1, term=node.term, granted=True))
    assert node.role is Role.LEADER
    node.advance(node.ready())
    return node


def test_leader_skips_whole_terms_on_a_hinted_rejection() -> None:
    leader = _leader_with_log([1, 1, 1, 2, 2, 4, 4, 4])  # noop lands at 9
    leader.step(
        AppendEntriesResponse(
            src=3,
            dst=1,
            term=leader.term,
            success=False,
            match_index=8,
            conflict_index=7,
            conflict_term=3,
        )
    )
    (probe,) = [s.message for s in leader.ready().messages if s.to == 3]
    assert isinstance(probe, AppendEntries)
    assert probe.prev_index == 5  # the last entry of a term <= 3, not 7


def test_stale_and_duplicate_rejections_are_ignored() -> None:
    leader = _leader_with_log([1, 1, 2])
    leader.step(AppendEntriesResponse(src=3, dst=1, term=leader.term, success=True, match_index=4))
    leader.ready()
    assert leader.progress()[3].state is ProgressState.REPLICATE
    stale = AppendEntriesResponse(
        src=3,
        dst=1,
        term=leader.term,
        success=False,
        match_index=2,
        conflict_index=2,
        conflict_term=1,
    )
    leader.step(stale)
    leader.step(stale)
    assert leader.progress()[3].match == 4
    assert leader.progress()[3].state is ProgressState.REPLICATE


def test_log_repair_replaces_a_deposed_leaders_uncommitted_entries() -> None:
    net = Net(3, check_quorum=False, pre_vote=False)
    net.elect(1)
    net.tick(count=2)
    net.isolate(1)
    for i in range(20):
        net.nodes[1].propose(b"lost%d" % i)
    net.deliver()
    net.elect(2)
    for i in range(3):
        net.nodes[2].propose(b"kept%d" % i)
    net.deliver()
    net.heal()
    net.tick(count=6)
    logs = {n: net.nodes[n].entries(1, 100) for n in (1, 2, 3)}
    assert logs[1] == logs[2] == logs[3]
    assert net.applied_data(1) == [b"kept0", b"kept1", b"kept2"]
    assert "log_truncated" in net.trace_kinds(1)
    rejections = [m for m in net.sent_of(AppendEntriesResponse, src=1) if not m.success]
    assert len(rejections) <= 2


def test_figure_8_a_leader_never_commits_an_older_term_entry_by_counting() -> None:
    net = Net(3, entries_per_message_max=1, pre_vote=False, check_quorum=False)
    net.elect(1)
    net.tick(count=2)
    # X (term 1) reaches node 2 only, and node 1 never learns it did.
    net.drop = lambda m: (isinstance(m, AppendEntriesResponse) and m.src == 2) or m.dst == 3
    net.propose(1, b"X")
    assert net.nodes[2].last_index == 2
    assert net.nodes[1].commit_index == 1
    net.crash(1)
    net.drop = None
    # Node 2 leads term 2; node 3 may receive X (term 1) but not the term-2 NOOP.
    net.drop = lambda m: isinstance(m, AppendEntries) and any(e.term == 2 for e in m.entries)
    leader = net.elect(2)
    assert leader.term == 2
    net.tick([2], count=4)
    assert net.nodes[3].last_index == 2  # X is now on a majority ...
    assert leader.progress()[3].match == 2
    assert leader.commit_index == 1  # ... but of an older term: not committed by counting
    net.drop = None
    net.tick([2, 3], count=15)
    assert leader.commit_index == 3
    assert net.applied_data(3) == [b"X"]


def test_flow_control_limits_entries_bytes_and_inflight_appends() -> None:
    net = Net(3, entries_per_message_max=3, bytes_per_message_max=10, inflight_appends_max=2)
    net.elect(1)
    net.tick(count=2)
    net.drop = lambda m: isinstance(m, AppendEntriesResponse)  # nothing is acknowledged
    leader = net.nodes[1]
    for i in range(12):
        leader.propose(b"%02d" % i)  # 2 bytes each
    net.sent.clear()
    net.deliver()
    appends = [m for m in net.sent_of(AppendEntries, dst=2) if m.entries]
    assert len(appends) == 2  # inflight_appends_max
    assert all(len(m.entries) <= 3 for m in appends)
    big = [b"x" * 8, b"y" * 8, b"z" * 8]
    net.drop = None
    net.tick(count=25)
    for data in big:
        leader.propose(data)
    net.sent.clear()
    net.deliver()
    appends = [m for m in net.sent_of(AppendEntries, dst=2) if m.entries]
    assert appends
    assert all(sum(len(e.data) for e in m.entries) <= 10 for m in appends)
    assert all(len(net.applied_data(n)) == 15 for n in (1, 2, 3))


def test_pending_proposals_are_bounded() -> None:
    net = Net(3, pending_proposals_max=5)
    net.elect(1)
    net.tick(count=2)
    net.isolate(1)
    leader = net.nodes[1]
    for i in range(5):
        leader.propose(b"%d" % i)
    with pytest.raises(ProposalDropped):
        leader.propose(b"one too many")


def test_committed_entries_per_ready_are_bounded() -> None:
    net = Net(1, apply_entries_per_ready_max=4)
    node = net.nodes[1]
    while node.role is not Role.LEADER:
        node.tick()
    net.process(1)
    for i in range(10):
        node.propose(b"%d" % i)
    net.process(1)
    sizes = [len(r.committed_entries) for r in net.readies[1]]
    assert max(sizes) <= 4
    assert net.applied_data(1) == [b"%d" % i for i in range(10)]


def test_invalid_remote_input_is_dropped_and_traced() -> None:
    net = Net(3)
    net.elect(1)
    node = net.nodes[2]
    bad = [
        AppendEntries(src=1, dst=3, term=1, prev_index=0, prev_term=0, commit=0),  # misaddressed
        AppendEntries(src=0, dst=2, term=1, prev_index=0, prev_term=0, commit=0),  # no source
        AppendEntries(src=1, dst=2, term=1, prev_index=-1, prev_term=0, commit=0),
        AppendEntries(
            src=1,
            dst=2,
            term=1,
            prev_index=1,
            prev_term=1,
            commit=0,
            entries=(Entry(term=1, index=5),),
        ),
        AppendEntries(
            src=1,
            dst=2,
            term=1,
            prev_index=1,
            prev_term=1,
            commit=0,
            entries=(Entry(term=9, index=2),),
        ),
        AppendEntriesResponse(src=3, dst=2, term=1, success=True, match_index=-4),
    ]
    before = (node.term, node.last_index, node.commit_index)
    for message in bad:
        node.step(message)
    traces = node.ready().traces
    assert sum(1 for t in traces if t.kind == "drop") == len(bad)
    assert (node.term, node.last_index, node.commit_index) == before
    node.check_invariants()
    leader = net.nodes[1]
    leader.step(AppendEntriesResponse(src=2, dst=1, term=1, success=True, match_index=999))
    leader.step(AppendEntriesResponse(src=7, dst=1, term=1, success=True, match_index=1))
    assert [t.kind for t in leader.ready().traces].count("drop") == 2
    leader.check_invariants()


def test_stale_term_messages_are_dropped() -> None:
    net = Net(3, check_quorum=False, pre_vote=False)
    net.elect(1)
    net.isolate(1)
    net.elect(2)
    node = net.nodes[3]
    node.step(AppendEntries(src=1, dst=3, term=1, prev_index=1, prev_term=1, commit=1))
    ready = node.ready()
    assert any(t.kind == "drop" for t in ready.traces)
    (reply,) = [s.message for s in ready.messages]
    assert isinstance(reply, AppendEntriesResponse)
    assert reply.term == node.term
    assert not reply.success


def test_an_append_below_the_commit_index_never_truncates_committed_entries() -> None:
    snap = Snapshot(meta=SnapshotMeta(index=0, term=0, conf=ConfState(voters=(1, 2, 3))))
    entries = tuple(Entry(term=1, index=i) for i in range(1, 6))
    stable = StableState(hard_state=HardState(term=2, commit=5), snapshot=snap, entries=entries)
    node = RaftNode.restore(RaftConfig(node_id=2), CoreEnv(), stable)
    node.ready()
    rogue = (Entry(term=2, index=4), Entry(term=2, index=5), Entry(term=2, index=6))
    node.step(
        AppendEntries(src=1, dst=2, term=2, prev_index=3, prev_term=1, entries=rogue, commit=6)
    )
    (reply,) = [s.message for s in node.ready().messages]
    assert reply == AppendEntriesResponse(src=2, dst=1, term=2, success=True, match_index=5)
    assert [e.term for e in node.entries(1, 10)] == [1, 1, 1, 1, 1]
    node.check_invariants()


def test_a_rejection_pointing_below_the_compacted_log_gets_a_snapshot() -> None:
    leader = _leader_with_log([1, 1, 1, 1])  # noop at 5
    leader.step(AppendEntriesResponse(src=2, dst=1, term=leader.term, success=True, match_index=5))
    assert leader.commit_index == 5
    leader.advance(leader.ready())  # applies 1..5
    leader.compact(4, b"image")
    leader.step(
        AppendEntriesResponse(
            src=3,
            dst=1,
            term=leader.term,
            success=False,
            match_index=4,
            conflict_index=2,
            conflict_term=1,
        )
    )
    sent = [s.message for s in leader.ready().messages if s.to == 3]
    assert [type(m).__name__ for m in sent] == ["InstallSnapshot"]
    assert leader.progress()[3].state is ProgressState.SNAPSHOT
