"""Normal case: ordering, batching, execution in order, replies, exactly-once, checkpoints."""

from dataclasses import replace

import pytest
from pbftnet import Net

from conclave.consensus.pbft import (
    Commit,
    PrePrepare,
    Request,
    entry_index,
    seq_of_index,
)
from conclave.core import EntryKind, ProposalDropped


def test_a_request_commits_and_executes_in_order_on_every_replica() -> None:
    net = Net(4, clients=3)
    for cid, op in ((101, b"x=1"), (102, b"y=2"), (103, b"z=3")):
        net.submit(cid, op)
        net.deliver()
    for rid in net.ids:
        assert net.operations(rid) == [b"x=1", b"y=2", b"z=3"]
        assert net.replicas[rid].last_executed == 3
        indices = [e.index for e in net.machines[rid].entries]
        assert indices == sorted(indices)
    digests = {net.replicas[r].executed_digest(2) for r in net.ids}
    assert len(digests) == 1


def test_the_primary_batches_requests_into_one_sequence_number() -> None:
    net = Net(4, clients=0)
    primary = net.replicas[1]
    for client in (201, 202, 203):
        primary.propose(Request(client_id=client, timestamp=1, operation=b"op%d" % client))
    net.flush()
    pre_prepares = [s.message for s in net.sent if isinstance(s.message, PrePrepare)]
    assert {p.seq for p in pre_prepares} == {1}
    assert len(pre_prepares[0].batch) == 3
    net.deliver()
    for rid in net.ids:
        entries = net.machines[rid].entries
        assert [e.index for e in entries] == [entry_index(1, i, 16) for i in range(3)]
        assert {seq_of_index(e.index, 16) for e in entries} == {1}
        assert net.operations(rid) == [b"op201", b"op202", b"op203"]


def test_batch_size_one_makes_the_entry_index_the_sequence_number() -> None:
    net = Net(4, clients=2, requests_per_batch_max=1)
    net.replicas[1].propose(Request(client_id=101, timestamp=1, operation=b"a"))
    net.replicas[1].propose(Request(client_id=102, timestamp=1, operation=b"b"))
    net.flush()
    net.deliver()
    assert [e.index for e in net.machines[3].entries] == [1, 2]


def test_a_backup_forwards_a_request_to_the_primary() -> None:
    net = Net(4, clients=0)
    net.replicas[3].propose(Request(client_id=201, timestamp=1, operation=b"via-3"))
    net.flush()
    forwarded = [s for s in net.sent if isinstance(s.message, Request)]
    assert [s.to for s in forwarded] == [1]
    net.deliver()
    assert all(net.operations(r) == [b"via-3"] for r in net.ids)


def test_the_client_accepts_on_f_plus_one_matching_replies() -> None:
    net = Net(4, clients=1)
    net.submit(101, b"k")
    # Hold back all replies but those of replicas 1 and 2: f + 1 = 2 suffice.
    net.drop = lambda s: s.to == 101 and s.message.src not in (1, 2)  # type: ignore[union-attr]
    net.deliver()
    assert net.results[101] == [b"r:k"]


def test_the_client_does_not_accept_f_matching_replies_alone() -> None:
    net = Net(4, clients=1)
    net.submit(101, b"k")
    net.drop = lambda s: s.to == 101 and s.message.src != 2  # type: ignore[union-attr]
    net.deliver()
    assert net.results[101] == []
    assert net.clients[101].busy


def test_a_retransmitted_request_executes_once_and_gets_the_cached_reply() -> None:
    net = Net(4, clients=1)
    net.submit(101, b"once")
    net.drop = lambda s: s.to == 101  # every reply is lost
    net.deliver()
    assert all(net.operations(r) == [b"once"] for r in net.ids)
    net.drop = None
    net.run_until_results(101, 1)  # the client times out and retransmits to all replicas
    assert net.results[101] == [b"r:once"]
    assert all(net.operations(r) == [b"once"] for r in net.ids)
    assert all(net.replicas[r].view == 0 for r in net.ids)


def test_a_duplicate_inside_a_batch_becomes_a_noop() -> None:
    net = Net(4, clients=0)
    request = Request(client_id=201, timestamp=5, operation=b"dup")
    net.replicas[1].propose(request)
    net.flush()
    net.deliver()
    # An old timestamp of the same client is answered from the cache, never ordered again.
    net.replicas[1].propose(replace(request, timestamp=4))
    net.flush()
    assert not any(isinstance(s.message, PrePrepare) and s.message.seq == 2 for s in net.sent)
    assert all(net.operations(r) == [b"dup"] for r in net.ids)


def test_checkpoints_become_stable_and_the_log_is_garbage_collected() -> None:
    net = Net(4, clients=1, checkpoint_interval_seqs=2, watermark_window_seqs=4)
    for i in range(7):
        net.submit(101, b"op%d" % i)
        net.run_until_results(101, i + 1)
    for rid in net.ids:
        replica = net.replicas[rid]
        assert replica.last_executed == 7
        assert replica.stable_seq == 6
        assert len(replica.stable_proof) == 3
        assert all(seq > 6 for seq in replica.log_seqs())
        assert replica.executed_digest(5) is None  # discarded below the stable checkpoint
    assert len({net.replicas[r].stable_proof[0].state_digest for r in net.ids}) == 1
    assert "checkpoint_stable" in net.trace_kinds(4)


def test_the_primary_stops_at_the_high_watermark_until_a_checkpoint_is_stable() -> None:
    net = Net(4, clients=0, checkpoint_interval_seqs=2, watermark_window_seqs=4)
    primary = net.replicas[1]
    # Cut the primary off: nothing commits, so no checkpoint becomes stable.
    net.drop = lambda s: True
    for client in range(201, 207):
        primary.propose(Request(client_id=client, timestamp=1, operation=b"x"))
        net.flush()
    seqs = {s.message.seq for s in net.sent if isinstance(s.message, PrePrepare)}
    assert seqs == {1, 2, 3, 4}


def test_persist_before_send_the_view_and_the_log_go_out_with_must_sync() -> None:
    net = Net(4, clients=1)
    net.submit(101, b"p")
    net.deliver()
    stored = net.storages[2].load()
    assert stored.hard_state.commit == 1
    assert [e.index for e in stored.entries] == [1]
    assert stored.entries[0].kind is EntryKind.NORMAL


def test_propose_refuses_oversized_operations_and_overload() -> None:
    net = Net(4, clients=0, operation_bytes_max=4, pending_requests_max=1)
    with pytest.raises(ProposalDropped):
        net.replicas[2].propose(Request(client_id=201, timestamp=1, operation=b"too-big"))
    net.replicas[2].propose(Request(client_id=201, timestamp=1, operation=b"ok"))
    with pytest.raises(ProposalDropped):
        net.replicas[2].propose(Request(client_id=202, timestamp=1, operation=b"ok"))


def test_commits_of_two_f_plus_one_distinct_replicas_suffice() -> None:
    net = Net(4, clients=1)
    net.submit(101, b"c")
    # Replica 4 never hears commits of replica 3: those of 1, 2 and its own are 2f + 1.
    net.drop = lambda s: s.to == 4 and s.message.__class__ is Commit and s.message.src == 3  # type: ignore[union-attr]
    net.deliver()
    assert net.replicas[4].last_executed == 1  # 1, 2 and 4 are 2f + 1 = 3 distinct commits
