"""Recent write throughput and latency of one node, one point per second, for the dashboard.

Rules:
- `record()` is called once per write request this node's API answered (a KV put, delete or
  compare-and-set, a proposal, a vote, an embedded-application call), with its duration as
  measured around the handler: on the leader that is the commit-and-apply latency, on a
  follower it includes the hop to the leader.
- `sample()` closes the current second: the number of writes, their p50/p99/max latency
  (nearest rank, None when there were none) and the rate at which this node applied log
  entries (the applied index's growth divided by the time since the previous sample, so a
  late sample on a loaded machine does not inflate the rate).
- At most `capacity` points are kept (default: five minutes); nothing here does I/O.
"""

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

CAPACITY_DEFAULT: Final = 300


@dataclass(frozen=True, slots=True)
class Point:
    """One second of one node's write activity."""

    at_ms: int
    applied_per_second: float
    writes: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.at_ms,
            "applied_per_second": round(self.applied_per_second, 2),
            "writes": self.writes,
            "errors": self.errors,
            "p50_ms": _rounded(self.p50_ms),
            "p99_ms": _rounded(self.p99_ms),
            "max_ms": _rounded(self.max_ms),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of already sorted values (None for no values)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class WriteSeries:
    """A ring of per-second points; see the module docstring."""

    def __init__(self, capacity: int = CAPACITY_DEFAULT) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.points: deque[Point] = deque(maxlen=capacity)
        self._latencies_ms: list[float] = []
        self._errors = 0
        self._last_applied: int | None = None

    def record(self, seconds: float, *, ok: bool) -> None:
        """One answered write request of `seconds` (an error answer counts as an error)."""
        if ok:
            self._latencies_ms.append(seconds * 1000.0)
        else:
            self._errors += 1

    def sample(self, at_ms: int, applied_index: int, elapsed_seconds: float) -> Point:
        """Close the current second (see the module docstring) and return its point."""
        latencies = sorted(self._latencies_ms)
        previous = applied_index if self._last_applied is None else self._last_applied
        grown = max(0, applied_index - previous)
        rate = grown / elapsed_seconds if elapsed_seconds > 0 else 0.0
        point = Point(
            at_ms=at_ms,
            applied_per_second=rate,
            writes=len(latencies),
            errors=self._errors,
            p50_ms=percentile(latencies, 0.50),
            p99_ms=percentile(latencies, 0.99),
            max_ms=latencies[-1] if latencies else None,
        )
        self.points.append(point)
        self._latencies_ms = []
        self._errors = 0
        self._last_applied = applied_index
        return point

    def to_json(self) -> list[dict[str, Any]]:
        return [point.to_json() for point in self.points]


__all__ = ["CAPACITY_DEFAULT", "Point", "WriteSeries", "percentile"]
