"""View change, authentication failures and Byzantine primaries."""

from dataclasses import replace

from pbftnet import Net, assert_agreement, pre_prepare, ring, signed

from conclave.consensus.pbft import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PreparedCertificate,
    Request,
    ViewChange,
    auth_payload,
)

# -- view change -----------------------------------------------------------------------------


def test_a_crashed_primary_is_replaced_and_requests_commit_in_the_new_view() -> None:
    net = Net(4, clients=1)
    net.submit(101, b"before")
    net.run_until_results(101, 1)
    net.crash(1)
    net.submit(101, b"after")
    net.run_until_results(101, 2)
    for rid in (2, 3, 4):
        assert net.replicas[rid].view == 1
        assert net.replicas[rid].primary == 2
        assert net.operations(rid) == [b"before", b"after"]
    assert net.results[101] == [b"r:before", b"r:after"]
    assert "view_started" in net.trace_kinds(3)


def test_a_request_prepared_in_the_old_view_keeps_its_sequence_number() -> None:
    # No retransmission: the lost commits must stay lost for the request to stay uncommitted.
    net = Net(4, clients=0, retransmit_interval_ticks=1_000_000)
    net.replicas[1].propose(Request(client_id=201, timestamp=1, operation=b"prepared"))
    net.flush()
    # Every commit is lost: the request prepares everywhere but commits nowhere.
    net.drop = lambda s: isinstance(s.message, Commit)
    net.deliver()
    assert all(net.replicas[r].last_executed == 0 for r in net.ids)
    net.crash(1)
    net.drop = None
    net.tick(200)
    for rid in (2, 3, 4):
        replica = net.replicas[rid]
        assert replica.view >= 1
        assert replica.view_active
        assert net.operations(rid) == [b"prepared"]
        assert [e.index for e in net.machines[rid].entries] == [1]  # the same seq 1
    new_views = [s.message for s in net.sent if isinstance(s.message, NewView)]
    assert new_views
    assert new_views[0].pre_prepares[0].batch[0].operation == b"prepared"


def test_view_change_timeouts_double_when_the_next_primary_is_dead_too() -> None:
    net = Net(4, clients=1, request_timeout_ticks=5, view_change_timeout_ticks=4)
    net.crash(1)
    net.crash(2)  # two faults: more than f, so no view can start; only the back-off shows
    net.submit(101, b"stuck")
    net.tick(100)
    starts = [
        (t.node, dict(t.fields)["view"])
        for t in net.traces
        if t.kind == "view_change_timeout" and t.node == 3
    ]
    assert len(starts) >= 3
    attempts = [
        dict(t.fields)["attempt"]
        for t in net.traces
        if t.kind == "view_change_started" and t.node == 3
    ]
    assert attempts[:3] == [0, 1, 2]


def test_a_new_view_that_drops_a_prepared_certificate_is_rejected() -> None:
    net = Net(4, clients=0, retransmit_interval_ticks=1_000_000)
    net.replicas[1].propose(Request(client_id=201, timestamp=1, operation=b"keep-me"))
    net.flush()
    net.drop = lambda s: isinstance(s.message, Commit)
    net.deliver()
    net.crash(1)
    # Capture view changes instead of delivering the new-view.
    net.drop = lambda s: isinstance(s.message, NewView)
    while not any(isinstance(s.message, NewView) for s in net.sent):
        net.tick()
    honest = next(s.message for s in net.sent if isinstance(s.message, NewView))
    assert honest.pre_prepares
    lying = signed(net, honest.src, replace(honest, pre_prepares=()))
    target = next(r for r in (2, 3, 4) if r != honest.src and not net.replicas[r].view_active)
    before = net.replicas[target].drop_counts.get("invalid_proof", 0)
    net.inject(target, lying)
    assert net.replicas[target].drop_counts["invalid_proof"] == before + 1
    assert not net.replicas[target].view_active


def test_a_view_change_claiming_an_unproven_prepare_is_rejected() -> None:
    net = Net(4, clients=0)
    fake = pre_prepare(net, 1, 1, b"never-prepared")
    bogus = ViewChange(
        src=4,
        new_view=1,
        stable_seq=0,
        checkpoint_proof=(),
        prepared=(PreparedCertificate(pre_prepare=fake, prepares=()),),
    )
    net.inject(2, signed(net, 4, bogus))
    assert net.replicas[2].drop_counts == {"invalid_proof": 1}


# -- authentication ----------------------------------------------------------------------------


def test_a_bad_mac_is_dropped_and_counted() -> None:
    net = Net(4, clients=0)
    commit = Commit(src=2, dst=3, view=0, seq=1, digest=bytes(32), auth=b"\x00" * 32)
    net.inject(3, commit)
    assert net.replicas[3].drop_counts == {"bad_mac": 1}


def test_a_forged_signature_is_dropped_and_counted() -> None:
    net = Net(4, clients=0)
    forged = replace(pre_prepare(net, 1, 1, b"x"), auth=b"\x01" * 64)
    net.inject(2, forged)
    assert net.replicas[2].drop_counts == {"bad_signature": 1}
    assert net.replicas[2].log_seqs() == ()


def test_a_message_signed_by_another_replica_than_its_claimed_sender_is_dropped() -> None:
    net = Net(4, clients=0)
    # Replica 4 claims to be the primary, signing with its own key.
    impostor = replace(pre_prepare(net, 4, 1, b"x"), src=1)
    net.inject(2, impostor)
    # Replica 4 sends a commit claiming to be replica 2, with its own pairwise key.
    commit = Commit(src=2, dst=3, view=0, seq=1, digest=bytes(32))
    net.inject(3, replace(commit, auth=ring(net, 4).mac(3, auth_payload(commit))))
    assert net.replicas[2].drop_counts == {"bad_signature": 1}
    assert net.replicas[3].drop_counts == {"bad_mac": 1}


def test_a_transport_authenticated_sender_must_match_the_claimed_one() -> None:
    net = Net(4, clients=0)
    net.replicas[2].step(pre_prepare(net, 1, 1, b"x"), sender=4)
    assert net.replicas[2].drop_counts == {"wrong_sender": 1}


def test_a_forged_checkpoint_cannot_make_a_checkpoint_stable() -> None:
    net = Net(4, clients=0, checkpoint_interval_seqs=2, watermark_window_seqs=4)
    for src in (2, 3, 4):
        bogus = Checkpoint(src=src, seq=2, state_digest=b"\x07" * 32, auth=b"\x00" * 64)
        net.inject(1, bogus)
    assert net.replicas[1].drop_counts == {"bad_signature": 3}
    assert net.replicas[1].stable_seq == 0


def test_bogus_checkpoints_that_are_signed_only_signal_a_gap() -> None:
    net = Net(4, clients=0, checkpoint_interval_seqs=2, watermark_window_seqs=4)
    for src in (2, 3, 4):
        net.inject(1, signed(net, src, Checkpoint(src=src, seq=2, state_digest=b"\x07" * 32)))
    assert net.replicas[1].stable_seq == 0  # never stable without executing it
    assert "state_transfer_needed" in net.trace_kinds(1)


# -- Byzantine primaries -----------------------------------------------------------------------


def test_a_pre_prepare_from_a_non_primary_is_ignored() -> None:
    net = Net(4, clients=0)
    net.inject(2, pre_prepare(net, 3, 1, b"from-a-backup"))
    assert net.replicas[2].drop_counts == {"not_primary": 1}
    assert not any(isinstance(s.message, Prepare) for s in net.sent)
    assert net.replicas[2].log_seqs() == ()


def test_an_equivocating_primary_cannot_commit_two_requests_at_one_seq() -> None:
    net = Net(4, clients=0)
    net.crash(1)  # replica 1's core is replaced by the test, which equivocates
    a, b = pre_prepare(net, 1, 1, b"A"), pre_prepare(net, 1, 1, b"B")
    net.inject(2, a)
    net.inject(3, b)
    net.inject(4, b)
    net.deliver()
    net.tick(200)
    histories: dict[int, dict[int, bytes]] = {}
    assert_agreement(net, histories)
    # B prepared at replicas 3 and 4 (pre-prepare + 2 prepares) but could not commit; the
    # new view carries its certificate, so B is what every correct replica executes at seq 1.
    assert [net.operations(r) for r in (2, 3, 4)] == [[b"B"]] * 3


def test_a_second_pre_prepare_with_another_digest_is_dropped_as_equivocation() -> None:
    net = Net(4, clients=0)
    net.crash(1)
    net.inject(2, pre_prepare(net, 1, 1, b"A"))
    net.inject(2, pre_prepare(net, 1, 1, b"B"))
    assert net.replicas[2].drop_counts == {"equivocation": 1}
