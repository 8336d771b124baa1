"""The asyncio load generator: closed-loop clients against one operation, and its result.

Rules:
- `clients` tasks each run `op(client, seq)` back to back until the deadline (a closed loop:
  a client sends its next request when the previous one answered). The first `warmup`
  seconds are not measured; then for `seconds`, every operation that COMPLETES inside the
  window counts toward throughput and has its latency recorded.
- A failed operation counts as an error (not as throughput); the client pauses 10 ms so a
  down server does not turn the loop into a busy spin.
- `total_ops` counts every completed operation, warm-up included: the CPU and fsync
  counters are read before and after the whole run, so they are divided by it.
- uvloop is used when it imports (`new_event_loop`).
"""

import asyncio
import contextlib
import importlib.metadata
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

Op = Callable[[int, int], Awaitable[object]]
T = TypeVar("T")

_ERROR_PAUSE_SECONDS = 0.01
_STRAGGLER_SECONDS = 30.0


@dataclass(slots=True)
class RunResult:
    """One measured run of one workload on one system."""

    ops: int  # completed inside the measured window
    total_ops: int  # completed, warm-up included
    errors: int
    seconds: float  # length of the measured window
    p50_ms: float
    p99_ms: float
    mean_ms: float
    first_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["throughput"] = self.throughput
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunResult":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**fields)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]) of already sorted values; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(
    latencies_s: list[float],
    *,
    total_ops: int,
    errors: int,
    seconds: float,
    first_error: str | None = None,
) -> RunResult:
    """A RunResult from the latencies (seconds) of the operations in the measured window."""
    ordered = sorted(latencies_s)
    mean = sum(ordered) / len(ordered) if ordered else math.nan
    return RunResult(
        ops=len(ordered),
        total_ops=total_ops,
        errors=errors,
        seconds=seconds,
        p50_ms=percentile(ordered, 0.50) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        mean_ms=mean * 1000,
        first_error=first_error,
    )


async def closed_loop(op: Op, *, clients: int, seconds: float, warmup: float) -> RunResult:
    """Run `clients` closed-loop clients of `op` for `warmup` + `seconds`; see the module."""
    clock = time.perf_counter
    started = clock()
    measure_from = started + warmup
    until = measure_from + seconds
    latencies: list[float] = []
    counters = {"total": 0, "errors": 0}
    first_error: list[str] = []

    async def client(client_id: int) -> None:
        seq = 0
        while True:
            sent = clock()
            if sent >= until:
                return
            try:
                await op(client_id, seq)
            except Exception as exc:
                counters["errors"] += 1
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(_ERROR_PAUSE_SECONDS)
            else:
                done = clock()
                counters["total"] += 1
                if measure_from <= done <= until:
                    latencies.append(done - sent)
            seq += 1

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    try:
        await asyncio.wait_for(
            asyncio.gather(*tasks), timeout=warmup + seconds + _STRAGGLER_SECONDS
        )
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.gather(*tasks, return_exceptions=True)
    return summarize(
        latencies,
        total_ops=counters["total"],
        errors=counters["errors"],
        seconds=seconds,
        first_error=first_error[0] if first_error else None,
    )


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop imports, else asyncio's default."""
    try:
        import uvloop  # noqa: PLC0415 - optional accelerator
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh (uvloop when available) event loop."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


def loop_name() -> str:
    try:
        return f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        return "asyncio"
