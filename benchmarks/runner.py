"""The run: rounds of fresh clusters, systems interleaved, workloads measured, records kept.

Order: for round r in 1..R, for each system in the given order (A, B, C, A, B, C, ...):
start a fresh 3-member cluster in its own work dir, run every selected workload on it (each
`warmup` + `seconds`), stop it. So every (system, workload) configuration is measured once
per round on a fresh cluster, and a slow phase of the machine hits all systems alike rather
than one. Each measurement is a `Record`; failures are records too (with `error`), so a
broken system never stops the others.

Counters around each measurement: CPU seconds of the system's server processes and of this
process (the load generator), and the system's fsync counter (None when not exposed).
"""

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import procs
from benchmarks.loadgen import RunResult, closed_loop, run_async
from benchmarks.systems import System, Unavailable
from benchmarks.workloads import Workload


@dataclass(slots=True)
class Record:
    """One measurement of one workload on one system in one round."""

    system: str
    workload: str
    round: int
    result: dict[str, Any] | None = None
    error: str | None = None
    server_cpu_s: float | None = None
    client_cpu_s: float | None = None
    fsyncs: int | None = None
    started_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class RunOptions:
    """What to run and for how long."""

    systems: list[System]
    workloads: list[Workload]
    rounds: int = 3
    seconds: float = 3.0
    warmup: float = 0.5
    workdir: Path | None = None
    keep_data: bool = False


Progress = Callable[[str], None]


def _counters(system: System) -> tuple[float, float, int | None]:
    try:
        fsyncs = system.fsync_count()
    except (OSError, ValueError, RuntimeError):
        fsyncs = None
    return procs.cpu_seconds(system.server_pids()), procs.own_cpu_seconds(), fsyncs


async def _measure_system(
    *,
    system: System,
    options: RunOptions,
    round_no: int,
    progress: Progress,
    tag: str,
    records: list[Record],
) -> None:
    await system.connect()
    try:
        for workload in options.workloads:
            record = Record(system.name, workload.name, round_no)
            records.append(record)
            progress(f"{tag} {system.name:<25} {workload.name:<11} running {options.seconds:g} s")
            try:
                await system.prepare(workload)
                server0, client0, fsync0 = await asyncio.to_thread(_counters, system)
                result = await _run_one(system, workload, options)
                server1, client1, fsync1 = await asyncio.to_thread(_counters, system)
            except Exception as exc:
                record.error = f"{type(exc).__name__}: {exc}"[:500]
                progress(f"{tag} {system.name:<25} {workload.name:<11} FAILED: {record.error}")
                continue
            record.result = result.to_json()
            record.server_cpu_s = server1 - server0
            record.client_cpu_s = client1 - client0
            if fsync0 is not None and fsync1 is not None:
                record.fsyncs = fsync1 - fsync0
            progress(
                f"{tag} {system.name:<25} {workload.name:<11} "
                f"{result.throughput:>9,.0f} ops/s  p50 {result.p50_ms:7.2f} ms  "
                f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}"
            )
    finally:
        await system.close()


async def _run_one(system: System, workload: Workload, options: RunOptions) -> RunResult:
    if system.embedded:
        return await asyncio.to_thread(
            system.run_embedded, workload, seconds=options.seconds, warmup=options.warmup
        )
    return await closed_loop(
        system.operation(workload),
        clients=workload.clients,
        seconds=options.seconds,
        warmup=options.warmup,
    )


def run(
    options: RunOptions,
    progress: Progress,
    records: list[Record],
    unavailable: dict[str, str],
) -> None:
    """Every round, appending to `records` as measurements finish (so an interrupted run
    keeps what it measured) and noting in `unavailable` why a system could not run."""
    runnable: list[System] = []
    for system in options.systems:
        try:
            system.check_available()
        except Unavailable as exc:
            unavailable[system.name] = str(exc)
            progress(f"skip {system.name}: {exc}")
            continue
        runnable.append(system)
    root = options.workdir or Path(tempfile.mkdtemp(prefix="conclave-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    total = options.rounds * len(runnable)
    step = 0
    try:
        for round_no in range(1, options.rounds + 1):
            for system in runnable:
                step += 1
                tag = f"[{step}/{total} round {round_no}/{options.rounds}]"
                workdir = root / f"round-{round_no}"
                progress(f"{tag} {system.name}: starting a fresh 3-member cluster")
                started = time.monotonic()
                try:
                    system.start(workdir)
                    progress(f"{tag} {system.name}: ready in {time.monotonic() - started:.1f} s")
                    run_async(
                        _measure_system(
                            system=system,
                            options=options,
                            round_no=round_no,
                            progress=progress,
                            tag=tag,
                            records=records,
                        )
                    )
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"[:500]
                    progress(f"{tag} {system.name}: FAILED: {error}")
                    done = {
                        r.workload
                        for r in records
                        if r.system == system.name and r.round == round_no
                    }
                    records.extend(
                        Record(system.name, w.name, round_no, error=error)
                        for w in options.workloads
                        if w.name not in done
                    )
                finally:
                    progress(f"{tag} {system.name}: stopping")
                    system.stop()
    finally:
        procs.REGISTRY.stop_all()
        if not options.keep_data and options.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
