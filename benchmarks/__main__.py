"""`python -m benchmarks run|sim|list`: the benchmark's command line (see README.md).

python -m benchmarks run                      # everything: 3 rounds, 3 s per configuration
python -m benchmarks run --quick              # smoke run: 1 round, 1 s, a few workloads
python -m benchmarks run --systems conclave-http,etcd --workloads put-1,put-64
python -m benchmarks sim                      # the simulator's own speed
"""

import argparse
import math
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks import env, procs
from benchmarks.systems import SYSTEM_NAMES, System, create
from benchmarks.workloads import DEFAULT_WORKLOADS, QUICK_WORKLOADS, parse_workload


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise KeyboardInterrupt


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _clean(value: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def cmd_run(args: argparse.Namespace) -> int:
    from benchmarks import report  # noqa: PLC0415 - keeps `list` and `sim` light
    from benchmarks.runner import Record, RunOptions, run  # noqa: PLC0415

    workload_names = (
        _split(args.workloads)
        if args.workloads
        else list(QUICK_WORKLOADS if args.quick else DEFAULT_WORKLOADS)
    )
    workloads = [parse_workload(name) for name in workload_names]
    systems: list[System] = [create(name) for name in _split(args.systems)]
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    seconds = args.seconds if args.seconds is not None else (1.0 if args.quick else 3.0)
    warmup = args.warmup if args.warmup is not None else (0.2 if args.quick else 0.5)
    options = RunOptions(
        systems=systems,
        workloads=workloads,
        rounds=rounds,
        seconds=seconds,
        warmup=warmup,
        workdir=args.workdir,
        keep_data=args.keep_data,
    )
    meta = env.machine(args.workdir)
    if args.note:
        meta["note"] = args.note
    print(f"machine: {meta['cpu']}, {meta['cores']} cores, load {meta['load_average_at_start']}")
    print(f"python {meta['python']}, {meta['event_loop']}")
    info: dict[str, dict[str, Any]] = {}
    for system in systems:
        info[system.name] = {
            "version": system.version(),
            "description": system.description,
            "fsync_note": system.fsync_note,
        }
        print(f"  {system.name:<18} {info[system.name]['version']}")
    print(
        f"{len(systems)} systems x {len(workloads)} workloads x {rounds} rounds, "
        f"{seconds:g} s each after {warmup:g} s warm-up"
    )
    records: list[Record] = []
    unavailable: dict[str, str] = {}
    interrupted = False
    try:
        run(options, lambda line: print(line, flush=True), records, unavailable)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: stopping every process started, writing what was measured")
    finally:
        procs.REGISTRY.stop_all()
    for system in systems:  # versions learnt while running (ZooKeeper's from its leader)
        info[system.name]["version"] = system.version()
        if system.name in unavailable:
            info[system.name]["unavailable"] = unavailable[system.name]
    option_data = {
        "rounds": rounds,
        "seconds": seconds,
        "warmup": warmup,
        "systems": [s.name for s in systems],
        "workloads": workload_names,
        "interrupted": interrupted,
    }
    if not records:
        print("nothing was measured")
        return 130 if interrupted else 1
    directory = env.results_dir(args.out)
    clean_records = [Record(**_clean(r.to_json())) for r in records]
    written = report.write(
        directory, records=clean_records, meta=meta, systems=info, options=option_data
    )
    print((directory / "results.md").read_text())
    for path in written:
        print(f"wrote {path}")
    return 130 if interrupted else 0


def cmd_sim(args: argparse.Namespace) -> int:
    from benchmarks import sim  # noqa: PLC0415

    meta = env.machine()
    seeds = args.seeds if args.seeds is not None else (4 if args.quick else 20)
    single = args.single_core_seeds
    if single is None:
        single = 2 if args.quick else 4
    data = sim.measure(
        seeds=seeds,
        single_core_seeds=single,
        jobs=args.jobs,
        nodes=args.nodes,
        ops=args.ops,
        seed_start=args.seed_start,
    )
    directory = env.results_dir(args.out)
    written = sim.write(directory, data, meta)
    print(written[0].read_text())
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    del args
    print("systems:  " + ", ".join(SYSTEM_NAMES))
    print("workloads (default): " + ", ".join(DEFAULT_WORKLOADS))
    print("workloads (--quick): " + ", ".join(QUICK_WORKLOADS))
    print("any workload: put-N, put-N-1k, get-lin-N, get-ser-N (N clients)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="side-by-side benchmark of Conclave and its peers")
    run.add_argument(
        "--systems",
        default=",".join(SYSTEM_NAMES),
        help=f"comma-separated, in run order (default: {','.join(SYSTEM_NAMES)})",
    )
    run.add_argument("--workloads", default=None, help="comma-separated (see `list`)")
    run.add_argument("--rounds", type=int, default=None, help="fresh clusters per system [3]")
    run.add_argument("--seconds", type=float, default=None, help="measured s per config [3]")
    run.add_argument("--warmup", type=float, default=None, help="unmeasured s first [0.5]")
    run.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 round, 1 s, workloads " + ",".join(QUICK_WORKLOADS),
    )
    run.add_argument(
        "--out", type=Path, default=None, help="results folder [benchmarks/results/<date>]"
    )
    run.add_argument("--workdir", type=Path, default=None, help="cluster data [a temp dir]")
    run.add_argument("--keep-data", action="store_true", help="keep the temp cluster data")
    run.add_argument("--note", default="", help="a note printed at the top of the report")
    run.set_defaults(func=cmd_run)

    sim = sub.add_parser("sim", help="the simulator's own speed (issue 4 item 4)")
    sim.add_argument("--seeds", type=int, default=None, help="seeds of the parallel sweep [20]")
    sim.add_argument(
        "--single-core-seeds", type=int, default=None, help="seeds of the one-core sweep [4]"
    )
    sim.add_argument("--jobs", type=int, default=2, help="worker processes [2]")
    sim.add_argument("--nodes", type=int, default=5)
    sim.add_argument("--ops", type=int, default=1000)
    sim.add_argument("--seed-start", type=int, default=0)
    sim.add_argument("--quick", action="store_true", help="4 seeds (2 on one core)")
    sim.add_argument("--out", type=Path, default=None)
    sim.set_defaults(func=cmd_sim)

    lst = sub.add_parser("list", help="systems and workloads")
    lst.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code: int = args.func(args)
    finally:
        procs.REGISTRY.stop_all()
    return code


if __name__ == "__main__":
    sys.exit(main())
