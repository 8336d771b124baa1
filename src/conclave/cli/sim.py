"""`conclave sim ...`: run the deterministic simulator from the command line.

Rules: thin. Options become a `SimSettings`; the library runs the seeds. This layer owns what
the simulator may not touch: the wall clock (to report simulated events per second), worker
processes (`--jobs`), printing and files (`--export-history`). Output: one line per seed,
starting with `seed=<S>`, failure details after a failing seed's line, and last exactly one
summary line `seeds=N ok=N violations=N events=E sim_events_per_s=R`. Exit code 1 when any
seed fails. `raft` runs the KV workload; `decisions` runs the decision layer (proposals,
votes, conflicts, expiry, rollbacks; `conclave.sim.decisions`) under the same faults, with the
same output contract. `pbft` runs PBFT with Byzantine replicas (`conclave.sim.pbft`): one line
per seed naming the Byzantine behaviours it exercised, and a summary line that counts them and
ends with `violations=N`.
"""

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from conclave.cli.progress import progress
from conclave.sim.history import write_json_lines
from conclave.sim.report import failure_lines, seed_line
from conclave.sim.runner import SeedResult
from conclave.sim.settings import DISK_MODELS, DiskModel, SimSettings
from conclave.sim.sweep import Mapper, run_sweep, seed_settings

app = typer.Typer(help="Deterministic simulation under faults.", no_args_is_help=True)


def _export(directory: Path, result: SeedResult) -> None:
    with (directory / f"seed-{result.seed}.jsonl").open("w", encoding="utf-8") as stream:
        write_json_lines(result.history, stream)


@contextmanager
def _mapper(jobs: int) -> Iterator[Mapper]:
    if jobs <= 1:
        yield map
        return
    with multiprocessing.get_context("fork").Pool(jobs) as pool:

        def pooled(
            fn: Callable[[SimSettings], SeedResult], runs: Iterable[SimSettings]
        ) -> Iterable[SeedResult]:
            return pool.imap(fn, runs, chunksize=4)

        yield pooled


@app.command("raft")
def raft(
    seeds: int = typer.Option(10, "--seeds", min=1, help="How many seeds to run."),
    seed_start: int = typer.Option(0, "--seed-start", min=0, help="First seed of the range."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Run (replay) this one seed."),
    nodes: int = typer.Option(5, "--nodes", min=3, max=7, help="Voters: 3, 5 or 7."),
    ops: int = typer.Option(200, "--ops", min=1, help="Client operations per seed."),
    export_history: Path | None = typer.Option(
        None, "--export-history", help="Write DIR/seed-<S>.jsonl for every seed."
    ),
    trace: bool = typer.Option(False, "--trace", help="Print every event (use with --seed)."),
    jobs: int = typer.Option(0, "--jobs", min=0, help="Worker processes (0: one per CPU)."),
    disk: str = typer.Option(
        "mixed",
        "--disk",
        help="Disk model: memory, wal (the real WAL on a simulated disk that tears writes "
        "at crashes) or mixed (wal on every 4th seed).",
    ),
) -> None:
    """Run Raft with a replicated key-value store under faults, seed by seed."""
    seed_range = [seed] if seed is not None else list(range(seed_start, seed_start + seeds))
    base = SimSettings(
        nodes=_node_count(nodes),
        ops=ops,
        trace=trace,
        trace_sink=typer.echo if trace else None,
        disk=_disk_model(disk),
    )
    _sweep(base, seed_range, jobs=jobs, export_history=export_history)


@app.command("decisions")
def decisions(
    seeds: int = typer.Option(10, "--seeds", min=1, help="How many seeds to run."),
    seed_start: int = typer.Option(0, "--seed-start", min=0, help="First seed of the range."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Run (replay) this one seed."),
    nodes: int = typer.Option(3, "--nodes", min=3, max=7, help="Voters: 3, 5 or 7."),
    ops: int = typer.Option(150, "--ops", min=1, help="Decision operations per seed."),
    trace: bool = typer.Option(False, "--trace", help="Print every event (use with --seed)."),
    jobs: int = typer.Option(0, "--jobs", min=0, help="Worker processes (0: one per CPU)."),
    disk: str = typer.Option(
        "mixed", "--disk", help="Disk model: memory, wal or mixed (as for `sim raft`)."
    ),
) -> None:
    """Run the decision layer (on Raft, beside the KV store) under faults, seed by seed."""
    seed_range = [seed] if seed is not None else list(range(seed_start, seed_start + seeds))
    base = SimSettings(
        nodes=_node_count(nodes),
        ops=ops,
        trace=trace,
        trace_sink=typer.echo if trace else None,
        disk=_disk_model(disk),
        workload="decisions",
    )
    _sweep(base, seed_range, jobs=jobs, export_history=None)


def _node_count(nodes: int) -> int:
    if nodes not in (3, 5, 7):
        raise typer.BadParameter("--nodes must be 3, 5 or 7")
    return nodes


def _disk_model(disk: str) -> DiskModel:
    if disk not in DISK_MODELS:
        raise typer.BadParameter(f"--disk must be one of {', '.join(DISK_MODELS)}")
    return "wal" if disk == "wal" else "memory" if disk == "memory" else "mixed"


def _sweep(
    base: SimSettings, seed_range: list[int], *, jobs: int, export_history: Path | None
) -> None:
    """Run the seeds, print one line per seed and the summary; exit 1 on any violation."""
    trace = base.trace
    # The WAL logs each torn tail it truncates; under simulation that is routine (and each
    # seed's line counts them), so only errors get through.
    logging.getLogger("conclave.storage").setLevel(logging.ERROR)
    if export_history is not None:
        export_history.mkdir(parents=True, exist_ok=True)
    workers = jobs or os.cpu_count() or 1
    if trace or len(seed_range) < 8:
        workers = 1  # traces print from this process; tiny sweeps are not worth a pool

    def report(result: SeedResult) -> None:
        typer.echo(seed_line(result))
        for line in failure_lines(result):
            typer.echo(line)
        if export_history is not None:
            _export(export_history, result)
        advance()

    def announced(runs: Iterable[SimSettings]) -> Iterator[SimSettings]:
        for run in runs:
            if trace:  # the seed first, then its event log
                typer.echo(f"seed={run.seed} nodes={run.nodes} ops={run.ops} event log:")
            yield run

    with progress(len(seed_range), "seeds") as advance, _mapper(workers) as mapper:
        summary = run_sweep(
            announced(seed_settings(base, seed_range)),
            mapper=mapper,
            clock=time.perf_counter,
            on_result=report,
        )
    typer.echo(summary.line())
    if summary.violations:
        raise typer.Exit(code=1)


@app.command("pbft")
def pbft(
    seeds: int = typer.Option(10, "--seeds", min=1, help="How many seeds to run."),
    seed_start: int = typer.Option(0, "--seed-start", min=0, help="First seed of the range."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Run (replay) this one seed."),
    f: int = typer.Option(
        1, "--f", min=1, max=2, help="Faults tolerated: 1 (4 replicas) or 2 (7)."
    ),
    jobs: int = typer.Option(0, "--jobs", min=0, help="Worker processes (0: one per CPU)."),
) -> None:
    """Run PBFT with Byzantine replicas, crashes and network faults, seed by seed."""
    from conclave.sim.pbft import (  # noqa: PLC0415 - keeps `sim raft` start-up light
        PbftSeedResult,
        PbftSimSettings,
        pbft_failure_lines,
        pbft_seed_line,
        run_pbft_sweep,
    )

    seed_range = [seed] if seed is not None else list(range(seed_start, seed_start + seeds))
    runs = [PbftSimSettings(seed=s, f=f) for s in seed_range]
    workers = 1 if len(seed_range) < 8 else (jobs or os.cpu_count() or 1)

    with progress(len(runs), "seeds") as advance:

        def report(result: PbftSeedResult) -> None:
            typer.echo(pbft_seed_line(result))
            for line in pbft_failure_lines(result):
                typer.echo(line)
            advance()

        if workers <= 1:
            summary = run_pbft_sweep(runs, clock=time.perf_counter, on_result=report)
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                summary = run_pbft_sweep(
                    runs,
                    mapper=lambda fn, items: pool.imap(fn, items, chunksize=2),
                    clock=time.perf_counter,
                    on_result=report,
                )
    typer.echo(summary.line())
    if summary.violations:
        raise typer.Exit(code=1)
