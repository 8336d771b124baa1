"""The simulated network and clock: delays, loss, duplication, reordering, partitions."""

import random

import pytest

from conclave.core import Send
from conclave.sim.clock import EventQueue, NodeClock
from conclave.sim.network import LinkProfile, NodeTransport, SimNetwork

DELIVER = 1


def _network(
    profile: LinkProfile | None = None, seed: int = 1
) -> tuple[SimNetwork[str], EventQueue]:
    queue = EventQueue()
    return SimNetwork(random.Random(seed), queue, DELIVER, profile), queue


def _drain(queue: EventQueue) -> list[tuple[int, int, str]]:
    """Every delivery as (time, dst, message), in delivery order."""
    out = []
    while len(queue):
        at, _, kind, dst, payload = queue.pop()
        assert kind == DELIVER
        assert isinstance(payload, tuple)
        out.append((at, dst, str(payload[1])))
    return out


def test_event_queue_orders_by_time_then_fifo() -> None:
    queue = EventQueue()
    queue.schedule(20, 0, 1, "late")
    queue.schedule(10, 0, 1, "first")
    queue.schedule(10, 0, 1, "second")
    assert [queue.pop()[4] for _ in range(3)] == ["first", "second", "late"]
    assert queue.now_us == 20
    queue.schedule(5, 0, 1, "past")  # never runs before now
    assert queue.pop()[0] == 20


def test_node_clock_drift_stays_within_bounds() -> None:
    rng = random.Random(3)
    periods = [NodeClock.draw(rng, 10_000, 0.05).tick_period_us for _ in range(200)]
    assert min(periods) >= 9_500
    assert max(periods) <= 10_500
    assert len(set(periods)) > 50  # nodes really drift apart


def test_delay_is_base_plus_jitter() -> None:
    net, queue = _network(LinkProfile(delay_us_min=1_000, jitter_us=500))
    for i in range(100):
        net.send(1, 2, f"m{i}")
    times = [at for at, _, _ in _drain(queue)]
    assert all(1_000 <= t <= 1_500 for t in times)


def test_jitter_reorders_messages() -> None:
    net, queue = _network(LinkProfile(delay_us_min=100, jitter_us=5_000))
    for i in range(50):
        net.send(1, 2, f"{i:02d}")
    order = [m for _, _, m in _drain(queue)]
    assert sorted(order) == [f"{i:02d}" for i in range(50)]
    assert order != sorted(order)


def test_no_jitter_keeps_fifo_order() -> None:
    net, queue = _network(LinkProfile(delay_us_min=100, jitter_us=0))
    for i in range(20):
        net.send(1, 2, f"{i:02d}")
    assert [m for _, _, m in _drain(queue)] == [f"{i:02d}" for i in range(20)]


def test_loss_drops_about_the_configured_fraction() -> None:
    net, queue = _network(LinkProfile(loss=0.3))
    for i in range(2_000):
        net.send(1, 2, str(i))
    delivered = len(_drain(queue))
    assert net.stats.lost + delivered == 2_000
    assert 1_200 < delivered < 1_600


def test_duplication_delivers_some_messages_twice() -> None:
    net, queue = _network(LinkProfile(duplicate=0.5))
    for i in range(200):
        net.send(1, 2, str(i))
    messages = [m for _, _, m in _drain(queue)]
    assert len(messages) == 200 + net.stats.duplicated
    assert net.stats.duplicated > 50
    assert set(messages) == {str(i) for i in range(200)}


def test_symmetric_partition_blocks_both_directions_between_groups_only() -> None:
    net, queue = _network()
    net.partition([(1, 2), (3, 4, 5)])
    for src in range(1, 6):
        for dst in range(1, 6):
            if src != dst:
                net.send(src, dst, f"{src}->{dst}")
    delivered = {m for _, _, m in _drain(queue)}
    assert delivered == {"1->2", "2->1"} | {
        f"{a}->{b}" for a in (3, 4, 5) for b in (3, 4, 5) if a != b
    }
    assert net.stats.partitioned == 2 * 2 * 3


def test_asymmetric_partition_drops_one_direction_only() -> None:
    net, queue = _network()
    net.block(1, 2)
    assert net.send(1, 2, "a->b") == 0
    assert net.send(2, 1, "b->a") == 1
    assert [m for _, _, m in _drain(queue)] == ["b->a"]


def test_isolate_cuts_one_node_from_all_others() -> None:
    net, _ = _network()
    net.isolate(3, (1, 2, 3, 4, 5))
    assert all(net.is_blocked(3, o) and net.is_blocked(o, 3) for o in (1, 2, 4, 5))
    assert not net.is_blocked(1, 2)


def test_a_cut_also_drops_messages_in_flight_and_heal_restores_delivery() -> None:
    net, queue = _network()
    net.send(1, 2, "in flight")
    net.partition([(1,), (2,)])
    assert not net.admit(1, 2)  # checked again at delivery time
    net.heal()
    assert not net.partitioned
    assert net.admit(1, 2)
    assert net.send(1, 2, "after heal") == 1
    assert len(queue) == 2


def test_set_lossless_keeps_delays_and_removes_loss_dup_and_spikes() -> None:
    profile = LinkProfile(delay_us_min=700, jitter_us=10, loss=1.0, duplicate=1.0, spike=1.0)
    net, queue = _network(profile)
    net.set_link(1, 2, profile)
    net.set_lossless()
    assert net.link(1, 2).loss == 0.0
    assert net.link(3, 4).duplicate == 0.0
    for i in range(10):
        net.send(1, 2, str(i))
    times = [at for at, _, _ in _drain(queue)]
    assert len(times) == 10
    assert all(700 <= t <= 710 for t in times)


def test_transport_stamps_the_sender() -> None:
    net, queue = _network()
    NodeTransport(net, 7).send(Send(to=2, message="hello"))
    _, _, _, dst, payload = queue.pop()
    assert (dst, payload) == (2, (7, "hello"))


def test_same_seed_same_schedule() -> None:
    def schedule(seed: int) -> list[tuple[int, int, str]]:
        net, queue = _network(LinkProfile(jitter_us=2_000, loss=0.2, duplicate=0.2), seed)
        for i in range(100):
            net.send(1, 1 + i % 4, str(i))
        return _drain(queue)

    assert schedule(5) == schedule(5)
    assert schedule(5) != schedule(6)


def test_link_profile_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="probability"):
        LinkProfile(loss=1.5)
    with pytest.raises(ValueError, match="delays"):
        LinkProfile(delay_us_min=-1)
