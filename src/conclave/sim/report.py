"""Readable lines about seeds and sweeps, shared by the CLI and the tests.

Rules: every per-seed line starts with `seed=<S>` so that a failing seed is the first thing
a reader sees; a decision-workload line counts decision ops by outcome and proposals by
final status instead of KV operations; the sweep summary is exactly one line of the form
`seeds=N ok=N violations=N events=E sim_events_per_s=R`. Formatting only: no I/O here.
"""

from conclave.sim.runner import SeedResult


def seed_line(result: SeedResult) -> str:
    """One line per seed: verdict, events, simulated time, operations by status, and on the
    WAL disk how many recoveries ran and how many truncated a torn tail."""
    verdict = "ok" if result.ok else "VIOLATION"
    if result.workload == "decisions":
        return _decision_seed_line(result, verdict)
    disk = (
        f" disk=wal recoveries={result.wal_recoveries} torn_tails={result.wal_torn_tails}"
        if result.disk == "wal"
        else ""
    )
    return (
        f"seed={result.seed} {verdict} events={result.events} "
        f"sim_time={result.sim_time_us / 1e6:.3f}s ops={result.ops} "
        f"(ok={result.status_count('ok')} unknown={result.status_count('unknown')} "
        f"fail={result.status_count('fail')}) nodes={result.nodes} clients={result.clients} "
        f"faults={sum(result.faults.values())} elections={result.elections} "
        f"messages={result.messages}{disk}"
    )


def _decision_seed_line(result: SeedResult, verdict: str) -> str:
    d = result.decisions
    disk = (
        f" disk=wal recoveries={result.wal_recoveries} torn_tails={result.wal_torn_tails}"
        if result.disk == "wal"
        else ""
    )
    return (
        f"seed={result.seed} {verdict} events={result.events} "
        f"sim_time={result.sim_time_us / 1e6:.3f}s ops={d.get('ops', 0)} "
        f"(ok={d.get('ok', 0)} unknown={d.get('unknown', 0)} fail={d.get('fail', 0)}) "
        f"proposals={d.get('proposals', 0)} (executed={d.get('executed', 0)} "
        f"rejected={d.get('rejected', 0)} expired={d.get('expired', 0)} "
        f"rolled_back={d.get('rolled_back', 0)} failed={d.get('failed', 0)} "
        f"open={d.get('open', 0)}) conflicts={d.get('conflicts', 0)} "
        f"refusals={d.get('refusals', 0)} nodes={result.nodes} clients={result.clients} "
        f"faults={sum(result.faults.values())} elections={result.elections} "
        f"messages={result.messages}{disk}"
    )


def failure_lines(result: SeedResult) -> list[str]:
    """The explanation of a failing seed: property or key, details, then the trace tail."""
    if result.ok:
        return []
    lines = [f"seed={result.seed} violated {result.invariant}: {result.violation}"]
    if result.key is not None:
        lines.append(f"seed={result.seed} non-linearizable key: {result.key}")
    if result.details:
        lines.extend(f"  {line}" for line in result.details.rstrip().splitlines())
    if result.trace_tail:
        lines.append(f"seed={result.seed} last {len(result.trace_tail)} events:")
        lines.extend(f"  {line}" for line in result.trace_tail)
    command = "decisions" if result.workload == "decisions" else "raft"
    lines.append(
        f"replay: conclave sim {command} --seed {result.seed} --nodes {result.nodes} "
        f"--ops {result.ops_requested} --disk {result.disk} --trace"
    )
    return lines


def summary_line(seeds: int, ok: int, violations: int, events: int, events_per_s: float) -> str:
    """The sweep's last line."""
    return (
        f"seeds={seeds} ok={ok} violations={violations} events={events} "
        f"sim_events_per_s={events_per_s:.0f}"
    )


__all__ = ["failure_lines", "seed_line", "summary_line"]
