"""The watch hub: ordered events, replay from history, compaction and slow watchers."""

import asyncio

import pytest

from conclave.runtime.watch import ChangeEvent, WatchCompacted, WatchEnded, WatchHub


def _drain(queue: "asyncio.Queue[ChangeEvent | WatchEnded]") -> list[ChangeEvent | WatchEnded]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def _put(revision: int, key: str = "a") -> ChangeEvent:
    return ChangeEvent("put", key, f"v{revision}", revision)


def test_replay_then_live_events_in_order_filtered_by_prefix() -> None:
    hub = WatchHub(history_events_max=100, queue_events_max=100)
    hub.reset(0, reason=None)
    hub.publish(_put(1, "a/1"))
    hub.publish(_put(2, "b/1"))
    watcher = hub.subscribe("a/", from_revision=1)
    hub.publish(_put(3, "a/2"))
    assert [e.revision for e in _drain(watcher.queue)] == [1, 3]  # type: ignore[union-attr]


def test_without_from_revision_only_new_events_arrive() -> None:
    hub = WatchHub(history_events_max=100, queue_events_max=100)
    hub.publish(_put(1))
    watcher = hub.subscribe("", from_revision=None)
    hub.publish(_put(2))
    assert _drain(watcher.queue) == [_put(2)]


def test_a_revision_older_than_the_history_is_compacted() -> None:
    hub = WatchHub(history_events_max=2, queue_events_max=100)
    for revision in (1, 2, 3):
        hub.publish(_put(revision))
    assert hub.history_start == 2
    with pytest.raises(WatchCompacted) as raised:
        hub.subscribe("", from_revision=1)
    assert raised.value.oldest_revision == 2


def test_a_snapshot_reset_ends_open_watches_and_restarts_history() -> None:
    hub = WatchHub(history_events_max=10, queue_events_max=10)
    watcher = hub.subscribe("", from_revision=None)
    hub.reset(41, reason="snapshot installed")
    assert _drain(watcher.queue) == [WatchEnded("compacted", "snapshot installed")]
    assert hub.history_start == 42
    assert hub.watcher_count == 0


def test_a_slow_watcher_is_ended_instead_of_growing_memory() -> None:
    hub = WatchHub(history_events_max=10, queue_events_max=2)
    watcher = hub.subscribe("", from_revision=None)
    for revision in (1, 2, 3, 4):
        hub.publish(_put(revision))
    items = _drain(watcher.queue)
    assert items[:2] == [_put(1), _put(2)]
    assert isinstance(items[2], WatchEnded)
    assert items[2].code == "too_slow"
    assert len(items) == 3
