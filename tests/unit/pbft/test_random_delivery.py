"""Safety under seeded random delivery orders, losses, crashes and an equivocating primary.

The property (OSDI 1999, section 4.6): no two correct replicas execute different requests at
the same sequence number. Every replica also checks its own invariants after every input.
"""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pbftnet import Net, assert_agreement, pre_prepare

from conclave.consensus.pbft import PbftMessage, PrePrepare


def _run(seed: int, *, equivocate: bool) -> Net:
    rng = random.Random(seed)
    net = Net(
        4,
        clients=3,
        seed=seed,
        checkpoint_interval_seqs=2,
        watermark_window_seqs=4,
        request_timeout_ticks=8,
        view_change_timeout_ticks=6,
    )
    loss = rng.choice((0.0, 0.05, 0.2))
    faulty = rng.choice((1, 2, 3, 4))
    histories: dict[int, dict[int, bytes]] = {}

    def lossy(envelope: object) -> bool:
        return rng.random() < loss

    net.drop = lossy  # type: ignore[assignment]
    if equivocate:
        net.drop = lambda s: _equivocate(net, s) or rng.random() < loss  # type: ignore[assignment,arg-type]
    sent = dict.fromkeys(net.clients, 0)
    for step in range(120):
        for cid, client in net.clients.items():
            if not client.busy and sent[cid] < 4:
                sent[cid] += 1
                net.submit(cid, b"%d:%d" % (cid, sent[cid]))
        if step == 30 and not equivocate:
            net.crash(faulty)
        net.tick()
        assert_agreement(net, histories)
    return net


def _equivocate(net: Net, envelope: object) -> bool:
    """Replica 1 (primary of view 0) sends a conflicting pre-prepare to replica 4."""
    message: PbftMessage = envelope.message  # type: ignore[attr-defined]
    if not (isinstance(message, PrePrepare) and message.src == 1 and envelope.to == 4):  # type: ignore[attr-defined]
        return False
    twin = pre_prepare(net, 1, message.seq, b"evil-%d" % message.seq, view=message.view)
    net.inject(4, twin)
    return True


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_no_two_correct_replicas_execute_different_requests_at_one_seq(seed: int) -> None:
    _run(seed, equivocate=False)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_an_equivocating_primary_never_splits_the_correct_replicas(seed: int) -> None:
    net = _run(seed, equivocate=True)
    correct = [net.operations(r) for r in (2, 3, 4)]
    shortest = min(len(ops) for ops in correct)
    assert all(ops[:shortest] == correct[0][:shortest] for ops in correct)


def test_without_faults_every_request_completes_in_a_random_order() -> None:
    for seed in range(5):
        net = Net(4, clients=2, seed=seed, checkpoint_interval_seqs=2, watermark_window_seqs=4)
        for i in range(5):
            for cid in net.clients:
                net.submit(cid, b"%d-%d" % (cid, i))
            for cid in net.clients:
                net.run_until_results(cid, i + 1)
        ops = [net.operations(r) for r in net.ids]
        assert all(o == ops[0] for o in ops)
        assert len(ops[0]) == 10
