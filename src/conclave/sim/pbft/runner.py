"""Run one PBFT seed, format its line, and summarise a sweep.

Rules:
- `run_pbft_seed(settings)` is a pure function of its settings: same seed, same line. A broken
  safety property, a missed liveness bound, an exception escaping a core (a crash of a
  correct replica's invariants) or a non-linearizable KV history becomes the seed's
  `violation`; it never raises for a bug in the system under test.
- A seed line starts with `seed=<S>` and names the faults of the seed, the Byzantine
  behaviours it exercised among them (`byz=...`, each with how often it changed a message);
  the summary line is `seeds=N ok=N events=E sim_events_per_s=R exercised=<behaviour>:<seeds>
  ... violations=N`, last field `violations` as in `conclave sim raft`.
- Formatting only: no I/O; the wall clock and worker processes are the caller's.
"""

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from conclave.sim.history import Operation
from conclave.sim.invariants import SafetyViolation
from conclave.sim.linearizability import Outcome, check_linearizability
from conclave.sim.pbft.byzantine import BEHAVIOURS
from conclave.sim.pbft.cluster import PbftCluster
from conclave.sim.pbft.settings import PbftSimSettings
from conclave.sim.sweep import run_seeds


@dataclass(frozen=True, slots=True, kw_only=True)
class PbftSeedResult:
    """What one seed did and the first violation it found (None when ok)."""

    seed: int
    f: int
    violation: str | None
    invariant: str | None
    events: int
    sim_time_us: int
    history: tuple[Operation, ...]
    exercised: dict[str, int] = field(default_factory=dict)
    byzantine: tuple[int, ...] = ()
    twins: int | None = None
    crashed: tuple[int, ...] = ()
    partitions: int = 0
    view_max: int = 0
    messages: int = 0
    details: str = ""

    @property
    def ok(self) -> bool:
        return self.violation is None

    def status_count(self, status: str) -> int:
        return sum(1 for op in self.history if op.status == status)


def run_pbft_seed(settings: PbftSimSettings) -> PbftSeedResult:
    """Run one seed and check it."""
    cluster = PbftCluster(settings)
    violation: str | None = None
    invariant: str | None = None
    details = ""
    try:
        cluster.run()
    except SafetyViolation as exc:
        violation, invariant = str(exc), exc.invariant
    except Exception as exc:  # a correct core broke (an invariant, an assertion): a bug
        violation, invariant = f"exception: {type(exc).__name__}: {exc}", "exception"
        details = "".join(traceback.format_exception(exc)[-6:])
    if violation is None and settings.check_linearizability:
        result = check_linearizability(
            cluster.history, states_per_key_max=settings.linearizability_states_max
        )
        if not result.ok:
            invariant = (
                "linearizability"
                if result.outcome is Outcome.VIOLATION
                else "linearizability-undecided"
            )
            violation = f"{invariant}: {result.explanation}"
            details = result.failures[0].report()
    plan = cluster.plan
    return PbftSeedResult(
        seed=settings.seed,
        f=settings.f,
        violation=violation,
        invariant=invariant,
        events=cluster.events,
        sim_time_us=cluster.queue.now_us,
        history=cluster.history.operations(),
        exercised=cluster.exercised(),
        byzantine=tuple(sorted(plan.byzantine)),
        twins=plan.twins,
        crashed=plan.crashed,
        partitions=plan.partitions,
        view_max=cluster.view_changes(),
        messages=cluster.network.stats.sent,
        details=details,
    )


def pbft_seed_line(result: PbftSeedResult) -> str:
    """One line per seed."""
    verdict = "ok" if result.ok else "VIOLATION"
    byz = ",".join(f"{name}:{count}" for name, count in result.exercised.items()) or "-"
    faulty = [f"byzantine={','.join(map(str, result.byzantine))}"] if result.byzantine else []
    if result.twins is not None:
        faulty.append(f"twins={result.twins}")
    if result.crashed:
        faulty.append(f"crashed={','.join(map(str, result.crashed))}")
    return (
        f"seed={result.seed} {verdict} f={result.f} events={result.events} "
        f"sim_time={result.sim_time_us / 1e6:.3f}s ops={len(result.history)} "
        f"(ok={result.status_count('ok')} unknown={result.status_count('unknown')}) "
        f"faulty=[{' '.join(faulty)}] byz={byz} partitions={result.partitions} "
        f"views={result.view_max} messages={result.messages}"
    )


def pbft_failure_lines(result: PbftSeedResult) -> list[str]:
    """What a failing seed violated, and how to replay it."""
    if result.ok:
        return []
    lines = [f"seed={result.seed} violated {result.invariant}: {result.violation}"]
    lines.extend(f"  {line}" for line in result.details.rstrip().splitlines())
    lines.append(f"replay: conclave sim pbft --seed {result.seed} --f {result.f}")
    return lines


@dataclass(slots=True)
class PbftSweepSummary:
    """Totals over a sweep, and in how many seeds each Byzantine behaviour was exercised."""

    seeds: int = 0
    ok: int = 0
    violations: int = 0
    events: int = 0
    wall_s: float = 0.0
    exercised: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BEHAVIOURS, 0))
    failed: list[PbftSeedResult] = field(default_factory=list)

    def add(self, result: PbftSeedResult) -> None:
        self.seeds += 1
        self.events += result.events
        for name in result.exercised:
            self.exercised[name] = self.exercised.get(name, 0) + 1
        if result.ok:
            self.ok += 1
        else:
            self.violations += 1
            self.failed.append(result)

    def line(self) -> str:
        rate = self.events / self.wall_s if self.wall_s > 0 else 0.0
        exercised = ",".join(f"{name}:{count}" for name, count in self.exercised.items())
        return (
            f"seeds={self.seeds} ok={self.ok} events={self.events} sim_events_per_s={rate:.0f} "
            f"exercised={exercised} violations={self.violations}"
        )


PbftMapper = Callable[
    [Callable[[PbftSimSettings], PbftSeedResult], Iterable[PbftSimSettings]],
    Iterable[PbftSeedResult],
]


def run_pbft_sweep(
    runs: Iterable[PbftSimSettings],
    *,
    mapper: PbftMapper = map,
    clock: Callable[[], float] | None = None,
    on_result: Callable[[PbftSeedResult], None] | None = None,
) -> PbftSweepSummary:
    """Run every settings in order (the mapper may run them in parallel, in order)."""
    summary = PbftSweepSummary()
    run_seeds(runs, run_pbft_seed, summary, mapper=mapper, clock=clock, on_result=on_result)
    return summary


__all__ = [
    "PbftMapper",
    "PbftSeedResult",
    "PbftSweepSummary",
    "pbft_failure_lines",
    "pbft_seed_line",
    "run_pbft_seed",
    "run_pbft_sweep",
]
