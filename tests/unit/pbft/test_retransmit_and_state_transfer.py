"""Retransmission under message loss, and state transfer to a replica left behind."""

import random
from dataclasses import replace

from pbftnet import Net, assert_agreement

from conclave.consensus.pbft import StateReply, StateRequest


def test_requests_complete_when_a_third_of_all_messages_is_lost() -> None:
    net = Net(4, clients=2, checkpoint_interval_seqs=2, watermark_window_seqs=4)
    rng = random.Random(5)
    net.drop = lambda s: rng.random() < 0.3
    histories: dict[int, dict[int, bytes]] = {}
    for i in range(6):
        for cid in net.clients:
            net.submit(cid, b"%d-%d" % (cid, i))
        for cid in net.clients:
            net.run_until_results(cid, i + 1, ticks_max=5_000)
        assert_agreement(net, histories)
    assert all(len(net.results[cid]) == 6 for cid in net.clients)


def test_a_replica_cut_off_past_a_stable_checkpoint_catches_up_by_state_transfer() -> None:
    net = Net(4, clients=1, checkpoint_interval_seqs=2, watermark_window_seqs=4)
    net.drop = lambda s: s.to == 4 or (s.message is not None and getattr(s.message, "src", 0) == 4)
    for i in range(12):
        net.submit(101, b"op-%d" % i)
        net.run_until_results(101, i + 1)
    assert net.replicas[4].last_executed == 0
    assert net.replicas[1].stable_seq >= 10
    net.drop = None
    net.tick(60)
    behind = net.replicas[4]
    assert behind.last_executed >= net.replicas[1].stable_seq
    assert "state_transferred" in net.trace_kinds(4)
    assert net.operations(4) == net.operations(1)[: len(net.operations(4))]
    assert any(isinstance(s.message, StateRequest) for s in net.sent)
    # It keeps working afterwards: one more request executes everywhere.
    net.submit(101, b"after")
    net.run_until_results(101, 13)
    net.tick(20)
    assert net.operations(4)[-1] == b"after"
    assert net.replicas[4].state_digest == net.replicas[1].state_digest


def test_a_state_reply_that_does_not_match_its_proof_is_dropped() -> None:
    net = Net(4, clients=1, checkpoint_interval_seqs=2, watermark_window_seqs=4)
    net.drop = lambda s: s.to == 4 or getattr(s.message, "src", 0) == 4
    for i in range(8):
        net.submit(101, b"op-%d" % i)
        net.run_until_results(101, i + 1)
    net.drop = None
    forged: list[StateReply] = []

    def tamper(envelope: object) -> bool:
        message = getattr(envelope, "message", None)
        if isinstance(message, StateReply) and not forged:
            forged.append(replace(message, snapshot=message.snapshot + b"\x00evil"))
            net.inject(4, forged[0])
            return True
        return False

    net.drop = tamper  # type: ignore[assignment]
    net.tick(60)
    assert forged
    assert net.replicas[4].drop_counts.get("invalid_proof", 0) >= 1
    assert b"evil" not in b"".join(net.operations(4))
    assert net.replicas[4].last_executed >= 6  # an honest reply arrived afterwards
