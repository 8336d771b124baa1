"""Run many seeds and summarise them.

Rules: the simulator itself never reads the wall clock and never starts processes; a caller
that wants speed figures or parallelism injects them: `clock` (seconds, any monotonic source)
and `mapper` (e.g. a process pool's ordered `imap`; the default is the built-in `map`).
Results arrive in seed order whatever the mapper, so output is reproducible.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from conclave.sim.report import summary_line
from conclave.sim.runner import SeedResult, run_seed
from conclave.sim.settings import SimSettings

Mapper = Callable[
    [Callable[[SimSettings], SeedResult], Iterable[SimSettings]], Iterable[SeedResult]
]
S = TypeVar("S")  # the settings of one seed
R = TypeVar("R")  # the result of one seed
R_contra = TypeVar("R_contra", contravariant=True)


class Summary(Protocol[R_contra]):
    """What `run_seeds` fills: counts results and records the wall time."""

    wall_s: float

    def add(self, result: R_contra) -> None: ...


def run_seeds(
    runs: Iterable[S],
    run_one: Callable[[S], R],
    summary: "Summary[R]",
    *,
    mapper: Callable[[Callable[[S], R], Iterable[S]], Iterable[R]] = map,
    clock: Callable[[], float] | None = None,
    on_result: Callable[[R], None] | None = None,
) -> None:
    """Run every settings in `runs` (in order, through `mapper`), adding each result to
    `summary` and calling `on_result` as each one finishes; the wall time when `clock` is given.
    Shared by every simulator (Raft, decisions, PBFT)."""
    started = clock() if clock is not None else 0.0
    for result in mapper(run_one, runs):
        summary.add(result)
        if on_result is not None:
            on_result(result)
    if clock is not None:
        summary.wall_s = clock() - started


@dataclass(slots=True)
class SweepSummary:
    """Totals over a sweep."""

    seeds: int = 0
    ok: int = 0
    violations: int = 0
    events: int = 0
    sim_time_us: int = 0
    ops: int = 0
    wall_s: float = 0.0
    failed: list[SeedResult] = field(default_factory=list)

    def add(self, result: SeedResult) -> None:
        """Count one seed's result."""
        self.seeds += 1
        self.events += result.events
        self.sim_time_us += result.sim_time_us
        self.ops += result.ops
        if result.ok:
            self.ok += 1
        else:
            self.violations += 1
            self.failed.append(result)

    @property
    def events_per_s(self) -> float:
        """Simulated events per wall-clock second (0 when no clock was given)."""
        return self.events / self.wall_s if self.wall_s > 0 else 0.0

    def line(self) -> str:
        """The one-line summary."""
        return summary_line(self.seeds, self.ok, self.violations, self.events, self.events_per_s)


def seed_settings(base: SimSettings, seeds: Iterable[int]) -> Iterator[SimSettings]:
    """`base` with each seed in turn."""
    for seed in seeds:
        yield replace(base, seed=seed)


def run_sweep(
    runs: Iterable[SimSettings],
    *,
    mapper: Mapper = map,
    clock: Callable[[], float] | None = None,
    on_result: Callable[[SeedResult], None] | None = None,
) -> SweepSummary:
    """Run every settings in `runs` (in order), calling `on_result` as each one finishes."""
    summary = SweepSummary()
    run_seeds(runs, run_seed, summary, mapper=mapper, clock=clock, on_result=on_result)
    return summary


__all__ = ["Mapper", "SweepSummary", "run_sweep", "seed_settings"]
