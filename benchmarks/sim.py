"""Item 4 of issue 4: the deterministic simulator's own speed.

Two figures, from the library (the same sweep as `conclave sim raft --nodes 5 --ops 1000
--jobs J`; the default disk model "mixed" and the default faults), timed around the sweep
only (no interpreter start-up):
- simulated events per second on ONE core (`--jobs 1`): the simulator's raw speed;
- seeds per minute of a 5-node, 1,000-operation run with faults using every core of the
  machine (`--jobs 2` here): what the issue's target reads, "1,000 seeds in under 10
  minutes on 2 cores", i.e. >= 100 seeds per minute.
Results go to `sim.md` and `sim.json` in the results folder of the day.
"""

import datetime
import json
import logging
import multiprocessing
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from conclave.sim.runner import SeedResult
from conclave.sim.settings import SimSettings
from conclave.sim.sweep import SweepSummary, run_sweep, seed_settings

TARGET_SEEDS_PER_MINUTE = 100.0  # 1,000 seeds in 10 minutes


def _default_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _sweep(seeds: list[int], *, nodes: int, ops: int, jobs: int) -> SweepSummary:
    base = SimSettings(nodes=nodes, ops=ops)
    runs = seed_settings(base, seeds)
    if jobs <= 1:
        return run_sweep(runs, clock=time.perf_counter)
    # Workers take the default SIGTERM action: Pool.terminate() ends them quietly.
    with multiprocessing.get_context("fork").Pool(jobs, initializer=_default_sigterm) as pool:

        def pooled(
            fn: Callable[[SimSettings], SeedResult], items: Iterable[SimSettings]
        ) -> Iterable[SeedResult]:
            return pool.imap(fn, items, chunksize=1)

        return run_sweep(runs, mapper=pooled, clock=time.perf_counter)


def _figures(summary: SweepSummary, jobs: int) -> dict[str, Any]:
    minutes = summary.wall_s / 60 if summary.wall_s > 0 else 0.0
    per_minute = summary.seeds / minutes if minutes > 0 else 0.0
    return {
        "jobs": jobs,
        "seeds": summary.seeds,
        "ok": summary.ok,
        "violations": summary.violations,
        "events": summary.events,
        "ops": summary.ops,
        "wall_s": round(summary.wall_s, 3),
        "sim_events_per_s": round(summary.events_per_s),
        "seeds_per_minute": round(per_minute, 2),
        "minutes_for_1000_seeds": round(1000 / per_minute, 1) if per_minute else None,
    }


def measure(
    *,
    seeds: int,
    single_core_seeds: int,
    jobs: int,
    nodes: int = 5,
    ops: int = 1000,
    seed_start: int = 0,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run both sweeps; their figures."""
    logging.getLogger("conclave.storage").setLevel(logging.ERROR)
    one = list(range(seed_start, seed_start + single_core_seeds))
    progress(f"sim: {len(one)} seeds, {nodes} nodes, {ops} ops, 1 job (events/s on one core)")
    single = _figures(_sweep(one, nodes=nodes, ops=ops, jobs=1), 1)
    progress(f"sim: {single}")
    many = list(range(seed_start, seed_start + seeds))
    progress(f"sim: {len(many)} seeds, {nodes} nodes, {ops} ops, {jobs} jobs (seeds/minute)")
    parallel = _figures(_sweep(many, nodes=nodes, ops=ops, jobs=jobs), jobs)
    progress(f"sim: {parallel}")
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nodes": nodes,
        "ops": ops,
        "single_core": single,
        "parallel": parallel,
        "target_seeds_per_minute": TARGET_SEEDS_PER_MINUTE,
        "target_met": parallel["seeds_per_minute"] >= TARGET_SEEDS_PER_MINUTE,
        "command": f"conclave sim raft --seeds {seeds} --nodes {nodes} --ops {ops} --jobs {jobs}",
    }


def write(directory: Path, data: dict[str, Any], meta: dict[str, Any]) -> list[Path]:
    """sim.json and sim.md in `directory`."""
    js = directory / "sim.json"
    js.write_text(json.dumps({"meta": meta, **data}, indent=2) + "\n")
    single, parallel = data["single_core"], data["parallel"]
    verdict = "met" if data["target_met"] else "not met"
    md = directory / "sim.md"
    md.write_text(
        "\n".join(
            [
                f"# Simulator speed — {data['date']}",
                "",
                (
                    f"Machine: {meta['cpu']}, {meta['cores']} cores; load average at start "
                    f"{', '.join(map(str, meta['load_average_at_start']))}. Runs of "
                    f"{data['nodes']} nodes and {data['ops']} operations with the default faults "
                    "and disk model (`mixed`); wall time of the sweep only."
                ),
                "",
                (
                    "| sweep | seeds | violations | events | wall s | sim events/s | seeds/min "
                    "| min per 1,000 seeds |"
                ),
                "|---|---|---|---|---|---|---|---|",
                *(
                    f"| {label} | {row['seeds']} | {row['violations']} | {row['events']:,} | "
                    f"{row['wall_s']:.1f} | {row['sim_events_per_s']:,} | "
                    f"{row['seeds_per_minute']:.1f} | {row['minutes_for_1000_seeds']} |"
                    for label, row in (("1 core", single), (f"{parallel['jobs']} jobs", parallel))
                ),
                "",
                (
                    f"Target (issue 4): 1,000 seeds in under 10 minutes on 2 cores, i.e. >= "
                    f"{TARGET_SEEDS_PER_MINUTE:g} seeds/min: **{verdict}** "
                    f"({parallel['seeds_per_minute']:.1f} seeds/min)."
                ),
                f"Same sweep from the shell: `{data['command']}`.",
                "",
            ]
        )
    )
    return [md, js]
