"""Virtual time: the event heap and each node's drifting clock.

Rules:
- Time is an `int` of simulated microseconds. Nothing here reads the wall clock.
- Events are `(at_us, seq, kind, target, payload)` tuples in a binary heap. `seq` is a global
  counter, so two events at the same time run in the order they were scheduled (FIFO) and the
  heap never compares kinds or payloads: a run is a pure function of its seed.
- Time never goes backwards: an event scheduled in the past runs "now".
- A node's clock ticks every `tick_period_us`, its nominal interval scaled by a drift factor
  drawn from the seed, starting at a random phase, so nodes' timeouts slide against each other.
"""

import heapq
import random
from dataclasses import dataclass

Event = tuple[int, int, int, int, object]


class EventQueue:
    """A min-heap of events ordered by (time, scheduling order)."""

    __slots__ = ("_heap", "_seq", "now_us")

    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._seq = 0
        self.now_us = 0

    def schedule(self, at_us: int, kind: int, target: int, payload: object = None) -> None:
        """Run event `kind` for `target` at `at_us` (clamped to now)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(at_us, self.now_us), self._seq, kind, target, payload))

    def after(self, delay_us: int, kind: int, target: int, payload: object = None) -> None:
        """Run event `kind` for `target` `delay_us` from now."""
        self.schedule(self.now_us + delay_us, kind, target, payload)

    def pop(self) -> Event:
        """Remove the earliest event and advance the clock to its time."""
        event = heapq.heappop(self._heap)
        self.now_us = event[0]
        return event

    def peek_time_us(self) -> int | None:
        """Time of the earliest event, or None when empty."""
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


@dataclass(frozen=True, slots=True)
class NodeClock:
    """How one node's ticks fall in simulated time."""

    tick_period_us: int
    phase_us: int

    @classmethod
    def draw(cls, rng: random.Random, tick_interval_us: int, drift_max: float) -> "NodeClock":
        """A clock running `1 + d` times slower than nominal, `d` uniform in +-`drift_max`."""
        drift = rng.uniform(-drift_max, drift_max)
        period = max(1, round(tick_interval_us * (1.0 + drift)))
        return cls(tick_period_us=period, phase_us=rng.randrange(period))


__all__ = ["Event", "EventQueue", "NodeClock"]
