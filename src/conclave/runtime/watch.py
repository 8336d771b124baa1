"""Watches: the key-value store's changes as an ordered stream per subscriber.

Rules:
- Every applied write that moved the store revision becomes exactly one `ChangeEvent`
  (revisions grow by one per write, so a cached retry, which does not move the revision,
  produces none). Events are published in log order, so every node emits the same sequence.
- The hub keeps the last `history_events_max` events. `history_start` is the smallest revision
  from which the hub can replay everything; a subscription asking for an older revision is
  refused with `WatchCompacted`. Installing a snapshot resets the history (the events inside
  the snapshot were never seen here) and ends every open watch with an error.
- Subscribing replays history and registers the live queue in one synchronous step, so no
  event falls between replay and live delivery.
- A subscriber's queue is bounded; a subscriber that falls behind by `queue_events_max` is
  ended with `too_slow` rather than letting memory grow (etcd cancels slow watchers too).
"""

import asyncio
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

ChangeType = Literal["put", "delete"]


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One change of one key."""

    type: ChangeType
    key: str
    value: str | None
    revision: int

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "key": self.key, "value": self.value, "revision": self.revision}


@dataclass(frozen=True, slots=True)
class WatchEnded:
    """The last item of a watch that the hub ended; `code` is an API error code."""

    code: str
    message: str


class WatchCompacted(Exception):
    """The requested revision is older than the hub's history."""

    def __init__(self, oldest_revision: int) -> None:
        super().__init__(f"history starts at revision {oldest_revision}")
        self.oldest_revision = oldest_revision


@dataclass(eq=False, slots=True)
class Watcher:
    """One subscription; read events from `queue` until a `WatchEnded` arrives."""

    prefix: str
    queue: "asyncio.Queue[ChangeEvent | WatchEnded]" = field(default_factory=asyncio.Queue)
    ended: bool = False


class WatchHub:
    """Keeps recent history and fans events out to subscribers."""

    def __init__(self, *, history_events_max: int, queue_events_max: int) -> None:
        self._history: deque[ChangeEvent] = deque(maxlen=history_events_max)
        self._history_start = 1
        self._queue_events_max = queue_events_max
        self._watchers: set[Watcher] = set()

    @property
    def history_start(self) -> int:
        """The oldest revision this hub can replay from."""
        return self._history[0].revision if self._history else self._history_start

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)

    def reset(self, current_revision: int, reason: str | None) -> None:
        """Forget history (start or snapshot install); end open watches when `reason`."""
        self._history.clear()
        self._history_start = current_revision + 1
        if reason is not None:
            for watcher in list(self._watchers):
                self._end(watcher, WatchEnded("compacted", reason))

    def publish(self, event: ChangeEvent) -> None:
        self._history.append(event)
        for watcher in list(self._watchers):
            if event.key.startswith(watcher.prefix):
                self._offer(watcher, event)

    def subscribe(self, prefix: str, from_revision: int | None) -> Watcher:
        """Register a watcher, replaying events with revision >= from_revision first."""
        watcher = Watcher(prefix=prefix)
        if from_revision is not None:
            if from_revision < self.history_start:
                raise WatchCompacted(self.history_start)
            for event in self._replay(prefix, from_revision):
                self._offer(watcher, event)
        if not watcher.ended:
            self._watchers.add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def close(self, reason: str) -> None:
        """End every watch (node stopping)."""
        for watcher in list(self._watchers):
            self._end(watcher, WatchEnded("unavailable", reason))

    def _replay(self, prefix: str, from_revision: int) -> Iterator[ChangeEvent]:
        for event in self._history:
            if event.revision >= from_revision and event.key.startswith(prefix):
                yield event

    def _offer(self, watcher: Watcher, event: ChangeEvent) -> None:
        if watcher.ended:
            return
        if watcher.queue.qsize() >= self._queue_events_max:
            self._end(watcher, WatchEnded("too_slow", "the watcher fell too far behind"))
            return
        watcher.queue.put_nowait(event)

    def _end(self, watcher: Watcher, ended: WatchEnded) -> None:
        watcher.ended = True
        watcher.queue.put_nowait(ended)  # unbounded queue: the end marker always fits
        self._watchers.discard(watcher)


__all__ = ["ChangeEvent", "WatchCompacted", "WatchEnded", "WatchHub", "Watcher"]
