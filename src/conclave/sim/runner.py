"""Run one seed: build the cluster, run both phases, check the history, report.

Rules:
- `run_seed(settings)` is a pure function of its settings: same seed, same events, same
  history. It never raises for a bug in the system under test: a broken safety property, a
  failed liveness bound, a crash of a core (any exception escaping it) or a non-linearizable
  history becomes `SeedResult.violation`.
- Runs are untraced by default (fast). When a run fails, it is replayed, which is exact
  because the seed fixes everything, with tracing switched on a few hundred events before
  the end, to attach the last `trace_tail` events.
"""

import traceback
from dataclasses import dataclass, field, replace

from conclave.sim.client import ClientResultError
from conclave.sim.cluster import Cluster
from conclave.sim.history import Operation
from conclave.sim.invariants import SafetyViolation
from conclave.sim.linearizability import Outcome, check_linearizability
from conclave.sim.settings import SimSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedResult:
    """What one seed did, and the first violation it found (None when ok)."""

    seed: int
    ok: bool
    violation: str | None
    invariant: str | None  # which property broke ("election-safety", "linearizability", ...)
    key: str | None  # the non-linearizable key, for linearizability violations
    events: int
    sim_time_us: int
    history: tuple[Operation, ...]
    trace_tail: tuple[str, ...] = ()
    details: str = ""  # a longer explanation (the key's operations, a traceback)
    nodes: int = 0
    ops_requested: int = 0
    clients: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    elections: int = 0
    messages: int = 0
    disk: str = "memory"  # the disk model the run used: "memory" or "wal"
    wal_recoveries: int = 0  # WAL disk: recoveries run at restarts
    wal_torn_tails: int = 0  # WAL disk: of those, how many truncated a torn tail
    workload: str = "kv"  # "kv" or "decisions"
    decisions: dict[str, int] = field(default_factory=dict)  # decision workload counts

    @property
    def ops(self) -> int:
        """Operations recorded."""
        return len(self.history)

    def status_count(self, status: str) -> int:
        """How many operations ended with `status` ("ok", "fail", "unknown")."""
        return sum(1 for op in self.history if op.status == status)


@dataclass(frozen=True, slots=True)
class _Verdict:
    violation: str | None = None
    invariant: str | None = None
    key: str | None = None
    details: str = ""


def _run_cluster(cluster: Cluster) -> _Verdict:
    try:
        cluster.run()
    except SafetyViolation as exc:
        return _Verdict(str(exc), exc.invariant)
    except ClientResultError as exc:
        return _Verdict(f"client-result: {exc}", "client-result")
    except Exception as exc:  # a core crashed: a bug, reported with its traceback
        text = "".join(traceback.format_exception(exc)[-6:])
        return _Verdict(f"exception: {type(exc).__name__}: {exc}", "exception", details=text)
    return _Verdict()


def _check_history(cluster: Cluster) -> _Verdict:
    settings = cluster.settings
    result = check_linearizability(
        cluster.history, states_per_key_max=settings.linearizability_states_max
    )
    if result.ok:
        return _Verdict()
    first = result.failures[0]
    invariant = (
        "linearizability" if result.outcome is Outcome.VIOLATION else "linearizability-undecided"
    )
    return _Verdict(f"{invariant}: {result.explanation}", invariant, result.key, first.report())


def _run_once(settings: SimSettings) -> SeedResult:
    cluster = Cluster(settings)
    verdict = _run_cluster(cluster)
    recoveries, torn = cluster.wal_recoveries()
    cluster.finalize_history()
    if verdict.violation is None and settings.check_linearizability:
        verdict = _check_history(cluster)
    return SeedResult(
        seed=settings.seed,
        ok=verdict.violation is None,
        violation=verdict.violation,
        invariant=verdict.invariant,
        key=verdict.key,
        events=cluster.events,
        sim_time_us=cluster.queue.now_us,
        history=cluster.history.operations(),
        trace_tail=tuple(cluster.tail),
        details=verdict.details,
        nodes=settings.nodes,
        ops_requested=settings.ops,
        clients=len(cluster.clients),
        faults=dict(cluster.faults.injected),
        elections=cluster.checker.elections,
        messages=cluster.network.stats.sent,
        disk="wal" if settings.uses_wal_disk else "memory",
        wal_recoveries=recoveries,
        wal_torn_tails=torn,
        workload=settings.workload,
        decisions=_decision_stats(cluster),
    )


def _decision_stats(cluster: Cluster) -> dict[str, int]:
    if cluster.workload is None:
        return {}
    return cluster.workload.stats([router for _, router in cluster.member_routers()])


def run_seed(settings: SimSettings) -> SeedResult:
    """Run one seed; a failing untraced run is replayed traced to attach its trace tail."""
    result = _run_once(settings)
    if result.ok or settings.trace:
        return result
    trace_from = max(0, result.events - 4 * settings.trace_tail)
    replay = _run_once(replace(settings, trace=True, trace_sink=None, trace_from_event=trace_from))
    tail = replay.trace_tail
    if replay.violation != result.violation or replay.events != result.events:
        note = f"(replay with tracing diverged: {replay.violation} after {replay.events} events)"
        tail = (*tail, note)
    return replace(result, trace_tail=tail)


__all__ = ["SeedResult", "run_seed"]
