"""From records to the report: medians and ranges, ratios, targets, Markdown, JSON and a chart.

Rules:
- A cell is one (system, workload): the median over the rounds that succeeded, and the range
  (min-max) over them. Failed rounds are counted and their first error is shown.
- CPU per operation = (CPU seconds of the server processes + of the load generator over the
  run, warm-up included) / operations completed over the same time. For embedded systems
  the load runs inside the leader, so it is part of the server figure.
- Fsyncs per write = fsyncs over the run summed over the 3 members / writes completed: 3.0
  means one fsync per member per write; below that, members group writes per fsync.
- Ratios are Conclave / peer of the medians: above 1 is better for throughput, below 1 is
  better for latency.
"""

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.runner import Record
from benchmarks.systems import PEERS
from benchmarks.workloads import parse_workload


@dataclass(slots=True)
class Stat:
    """Median and range of one quantity over rounds."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> "Stat | None":
        finite = [v for v in values if not math.isnan(v)]
        if not finite:
            return None
        return cls(statistics.median(finite), min(finite), max(finite))


@dataclass(slots=True)
class Cell:
    """One (system, workload) over its rounds."""

    system: str
    workload: str
    rounds_ok: int
    rounds_failed: int
    throughput: Stat | None
    p50_ms: Stat | None
    p99_ms: Stat | None
    server_cpu_ms_per_op: Stat | None
    client_cpu_ms_per_op: Stat | None
    cpu_ms_per_op: Stat | None
    fsyncs_per_write: Stat | None
    errors: int
    first_error: str | None


def _per_op(records: Iterable[Record], amount: str) -> list[float]:
    values = []
    for record in records:
        value = getattr(record, amount)
        ops = record.result["total_ops"] if record.result else 0
        if value is not None and ops:
            values.append(1000.0 * value / ops)
    return values


def cells(records: Sequence[Record]) -> list[Cell]:
    """One Cell per (system, workload), in the order first measured."""
    keys: list[tuple[str, str]] = []
    for record in records:
        if (record.system, record.workload) not in keys:
            keys.append((record.system, record.workload))
    out = []
    for system, workload in keys:
        mine = [r for r in records if r.system == system and r.workload == workload]
        ok = [r for r in mine if r.result is not None and r.result["ops"] > 0]
        results = [r.result for r in ok if r.result is not None]
        cpu = [
            1000.0 * ((r.server_cpu_s or 0.0) + (r.client_cpu_s or 0.0)) / r.result["total_ops"]
            for r in ok
            if r.result is not None and r.result["total_ops"]
        ]
        is_write = parse_workload(workload).is_write
        fsyncs = [
            r.fsyncs / r.result["total_ops"]
            for r in ok
            if r.fsyncs is not None and r.result is not None and r.result["total_ops"]
        ]
        errors = [r.error for r in mine if r.error] + [
            res["first_error"] for res in results if res.get("first_error")
        ]
        out.append(
            Cell(
                system=system,
                workload=workload,
                rounds_ok=len(ok),
                rounds_failed=len(mine) - len(ok),
                throughput=Stat.of([res["throughput"] for res in results]),
                p50_ms=Stat.of([res["p50_ms"] for res in results]),
                p99_ms=Stat.of([res["p99_ms"] for res in results]),
                server_cpu_ms_per_op=Stat.of(_per_op(ok, "server_cpu_s")),
                client_cpu_ms_per_op=Stat.of(_per_op(ok, "client_cpu_s")),
                cpu_ms_per_op=Stat.of(cpu),
                fsyncs_per_write=Stat.of(fsyncs) if is_write else None,
                errors=sum(int(res["errors"]) for res in results),
                first_error=errors[0] if errors else None,
            )
        )
    return out


def _find(table: Sequence[Cell], system: str, workload: str) -> Cell | None:
    return next((c for c in table if c.system == system and c.workload == workload), None)


def _ratio(a: Stat | None, b: Stat | None) -> float | None:
    if a is None or b is None or b.median == 0:
        return None
    return a.median / b.median


def ratios(table: Sequence[Cell]) -> list[dict[str, Any]]:
    """Conclave / peer, per workload, for every Conclave system measured and its peers."""
    rows = []
    workloads = list(dict.fromkeys(c.workload for c in table))
    for workload in workloads:
        for conclave, peers in PEERS.items():
            mine = _find(table, conclave, workload)
            for peer in peers:
                theirs = _find(table, peer, workload)
                if mine is None and theirs is None:
                    continue
                rows.append(
                    {
                        "workload": workload,
                        "conclave": conclave,
                        "peer": peer,
                        "throughput": _ratio(
                            mine.throughput if mine else None,
                            theirs.throughput if theirs else None,
                        ),
                        "p50": _ratio(
                            mine.p50_ms if mine else None, theirs.p50_ms if theirs else None
                        ),
                        "p99": _ratio(
                            mine.p99_ms if mine else None, theirs.p99_ms if theirs else None
                        ),
                    }
                )
    return rows


def targets(table: Sequence[Cell]) -> list[dict[str, Any]]:
    """The issue's targets (issue 4), each judged on this run: met, not met or n/a."""

    def check(name: str, measured: float | None, bound: float, op: str) -> dict[str, Any]:
        if measured is None:
            verdict = "n/a"
        elif op == ">=":
            verdict = "met" if measured >= bound else "not met"
        else:
            verdict = "met" if measured <= bound else "not met"
        return {
            "target": name,
            "measured": measured,
            "bound": f"{op} {bound:g}",
            "verdict": verdict,
        }

    def r(system: str, peer: str, workload: str, field: str) -> float | None:
        a, b = _find(table, system, workload), _find(table, peer, workload)
        return _ratio(getattr(a, field) if a else None, getattr(b, field) if b else None)

    http = "conclave-http"
    emb = "conclave-embedded"
    return [
        check("put-64 HTTP throughput / etcd", r(http, "etcd", "put-64", "throughput"), 1.2, ">="),
        check(
            "put-64 HTTP throughput / ZooKeeper",
            r(http, "zookeeper", "put-64", "throughput"),
            1.5,
            ">=",
        ),
        check("put-64 HTTP p99 / etcd", r(http, "etcd", "put-64", "p99_ms"), 1.0, "<="),
        check("put-1 p50 / etcd", r(http, "etcd", "put-1", "p50_ms"), 1.0, "<="),
        check("put-1 p50 / ZooKeeper", r(http, "zookeeper", "put-1", "p50_ms"), 1.0, "<="),
        check(
            "get-lin-64 throughput / etcd", r(http, "etcd", "get-lin-64", "throughput"), 1.5, ">="
        ),
        check(
            "embedded put-64 throughput / PySyncObj tuned",
            r(emb, "pysyncobj-tuned", "put-64", "throughput"),
            1.0,
            ">=",
        ),
        check(
            "embedded put-1 p50 / PySyncObj tuned",
            r(emb, "pysyncobj-tuned", "put-1", "p50_ms"),
            1.5,
            "<=",
        ),
        check(
            "embedded, no fsync, put-64 throughput / PySyncObj tuned",
            r(f"{emb}-nofsync", "pysyncobj-tuned", "put-64", "throughput"),
            1.0,
            ">=",
        ),
        check(
            "embedded, no fsync, put-1 p50 / PySyncObj tuned",
            r(f"{emb}-nofsync", "pysyncobj-tuned", "put-1", "p50_ms"),
            1.0,
            "<=",
        ),
    ]


# -- formatting -------------------------------------------------------------------------------


def _num(value: float, digits: int) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if 0 < value < 0.1 and digits > 0:
        return f"{value:.2g}"  # e.g. sub-microsecond local reads: 0.00031 ms
    return f"{value:.{digits}f}"


def _stat(stat: Stat | None, digits: int = 2) -> str:
    if stat is None:
        return "-"
    if stat.low == stat.high:
        return _num(stat.median, digits)
    return f"{_num(stat.median, digits)} [{_num(stat.low, digits)}..{_num(stat.high, digits)}]"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def markdown(
    *,
    table: Sequence[Cell],
    meta: dict[str, Any],
    systems: dict[str, dict[str, Any]],
    options: dict[str, Any],
) -> str:
    """The results page."""
    lines = [
        f"# Conclave side-by-side benchmark — {meta['date']}",
        "",
        (
            f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['memory_gib']} GiB, "
            f"{meta['os']}, kernel {meta['kernel']}; work dir on {meta['workdir_filesystem']}. "
            f"Load average at start: {', '.join(map(str, meta['load_average_at_start']))}."
        ),
        (
            f"Load generator: Python {meta['python']}, {meta['event_loop']}, in one process that "
            "shares the cores with the servers."
        ),
        (
            f"Run: {options['rounds']} round(s) of fresh clusters, systems interleaved, "
            f"{options['seconds']:g} s measured per configuration after {options['warmup']:g} s "
            "of warm-up. Figures are medians over rounds, [min..max] when they differ."
        ),
    ]
    if meta.get("note"):
        lines += ["", f"**Note:** {meta['note']}"]
    lines += ["", "## Systems", "", "| system | version | set-up | fsync |", "|---|---|---|---|"]
    for name, info in systems.items():
        setup = info["description"]
        if info.get("unavailable"):
            setup = f"**skipped: {info['unavailable']}**"
        lines.append(f"| {name} | {info['version']} | {setup} | {info['fsync_note']} |")
    lines += [
        "",
        "## Results",
        "",
        (
            "Throughput in operations per second; latencies in ms; CPU in ms of CPU time per "
            "operation (servers + load generator, and the split); fsyncs per write summed over "
            "the 3 members."
        ),
        "",
        (
            "| workload | system | ops/s | p50 ms | p99 ms | CPU ms/op | server / loadgen | "
            "fsyncs/write | errors |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    workloads = list(dict.fromkeys(c.workload for c in table))
    for workload in workloads:
        for cell in (c for c in table if c.workload == workload):
            if cell.rounds_ok == 0:
                reason = (cell.first_error or "failed").replace("|", "/")
                lines.append(f"| {workload} | {cell.system} | failed: {reason} | | | | | | |")
                continue
            split = f"{_stat(cell.server_cpu_ms_per_op, 3)} / {_stat(cell.client_cpu_ms_per_op, 3)}"
            fsync = _stat(cell.fsyncs_per_write, 2)
            if cell.fsyncs_per_write is None and parse_workload(workload).is_write:
                fsync = "n/a"
            errors = str(cell.errors) + (
                f" ({cell.rounds_failed} rounds failed)" if cell.rounds_failed else ""
            )
            lines.append(
                f"| {workload} | {cell.system} | {_stat(cell.throughput, 0)} | "
                f"{_stat(cell.p50_ms)} | {_stat(cell.p99_ms)} | {_stat(cell.cpu_ms_per_op, 3)} | "
                f"{split} | {fsync} | {errors} |"
            )
        for name, info in systems.items():
            if info.get("unavailable"):
                lines.append(f"| {workload} | {name} | {info['unavailable']} | | | | | | |")
    ratio_rows = ratios(table)
    lines += [
        "",
        "## Conclave / peer",
        "",
        (
            "Ratio of medians. Throughput: above 1 means Conclave is faster. Latency: below 1 "
            "means Conclave answers sooner."
        ),
        "",
        "| workload | Conclave | peer | throughput | p50 | p99 |",
        "|---|---|---|---|---|---|",
    ]
    for row in ratio_rows:
        lines.append(
            f"| {row['workload']} | {row['conclave']} | {row['peer']} | "
            f"{_x(row['throughput'])} | {_x(row['p50'])} | {_x(row['p99'])} |"
        )
    lines += [
        "",
        "## Targets of issue 4",
        "",
        "| target | measured | wanted | verdict |",
        "|---|---|---|---|",
    ]
    for row in targets(table):
        lines.append(
            f"| {row['target']} | {_x(row['measured'])} | {row['bound']} | {row['verdict']} |"
        )
    lines += [
        "",
        "## Caveats",
        "",
        (
            "- Everything runs on one machine: the load generator (one Python process) shares the "
            "cores with the 3 members of the system under test, so concurrent figures are "
            "CPU-bound and partly measure the load generator."
        ),
        (
            "- PySyncObj never fsyncs (nor does it have a mode that does); its figures are not "
            "durable ones. Its load runs inside its leader's process, as an embedded library's "
            "does; the serializable reads of PySyncObj are local dict reads in one loop."
        ),
        (
            "- ZooKeeper is driven through one kazoo session (requests pipelined on it); kazoo's "
            "own threads add Python overhead on the client side."
        ),
        (
            "- Fsyncs per write count fsyncs over the whole run (warm-up and the other members "
            "included) against writes completed over the same time."
        ),
        "",
        "Raw per-round records: results.json. Chart: chart.png (throughput against p99).",
        "",
    ]
    return "\n".join(lines)


def to_json(
    *,
    records: Sequence[Record],
    table: Sequence[Cell],
    meta: dict[str, Any],
    systems: dict[str, dict[str, Any]],
    options: dict[str, Any],
) -> dict[str, Any]:
    return {
        "meta": meta,
        "options": options,
        "systems": systems,
        "summary": [asdict(c) for c in table],
        "ratios": ratios(table),
        "targets": targets(table),
        "records": [r.to_json() for r in records],
    }


def chart(table: Sequence[Cell], path: Path) -> Path | None:
    """Throughput against p99 latency, one series per system, one panel per workload family."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional (bench extra), Agg set first

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return None
    families: dict[str, str] = {}
    for cell in table:
        w = parse_workload(cell.workload)
        family = (
            f"puts, {w.value_bytes} B values"
            if w.is_write
            else ("linearizable reads" if w.linearizable else "serializable reads")
        )
        families[cell.workload] = family
    panels = list(dict.fromkeys(families.values()))
    if not panels:
        return None
    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(7 * columns, 5 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for unused in flat[len(panels) :]:
        unused.set_visible(False)
    systems = list(dict.fromkeys(c.system for c in table))
    for ax, panel in zip(flat, panels, strict=False):
        for system in systems:
            points = sorted(
                (parse_workload(c.workload).clients, c.throughput.median, c.p99_ms.median)
                for c in table
                if c.system == system
                and families[c.workload] == panel
                and c.throughput is not None
                and c.p99_ms is not None
            )
            if not points:
                continue
            xs = [p[1] for p in points]
            ys = [p[2] for p in points]
            ax.plot(xs, ys, marker="o", label=system)
            for clients, x, y in points:
                ax.annotate(
                    str(clients), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("throughput (ops/s, median)")
        ax.set_ylabel("p99 latency (ms, median)")
        ax.set_title(f"{panel} (labels: clients)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Conclave vs etcd, ZooKeeper, PySyncObj — 3 members on 127.0.0.1")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(
    directory: Path,
    *,
    records: Sequence[Record],
    meta: dict[str, Any],
    systems: dict[str, dict[str, Any]],
    options: dict[str, Any],
) -> list[Path]:
    """results.md, results.json and chart.png in `directory`; the paths written."""
    table = cells(records)
    md = directory / "results.md"
    md.write_text(markdown(table=table, meta=meta, systems=systems, options=options))
    js = directory / "results.json"
    data = to_json(records=records, table=table, meta=meta, systems=systems, options=options)
    js.write_text(json.dumps(data, indent=2, default=str) + "\n")
    written = [md, js]
    png = chart(table, directory / "chart.png")
    if png is not None:
        written.append(png)
    return written
