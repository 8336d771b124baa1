"""Checks of the benchmark's pure parts (names, statistics, report); no timing, no servers.

Run with `.venv/bin/python -m pytest benchmarks/test_smoke.py` (not part of `make test`).
"""

import math
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.loadgen import percentile, summarize
from benchmarks.runner import Record
from benchmarks.systems import SYSTEM_NAMES, create
from benchmarks.workloads import DEFAULT_WORKLOADS, parse_workload


def test_every_default_workload_parses() -> None:
    parsed = [parse_workload(name) for name in DEFAULT_WORKLOADS]
    assert parsed[0].kind == "put"
    assert parsed[0].clients == 1
    assert parsed[0].value_bytes == 10
    assert parse_workload("put-64-1k").value_bytes == 1024
    assert len(parse_workload("put-64-1k").value()) == 1024
    assert parse_workload("get-lin-64").linearizable
    with pytest.raises(ValueError, match="unknown workload"):
        parse_workload("scan-3")
    with pytest.raises(ValueError, match="only puts"):
        parse_workload("get-ser-1-1k")


def test_every_system_name_creates_an_adapter() -> None:
    for name in SYSTEM_NAMES:
        assert create(name).name == name
    assert create("conclave_embedded").name == "conclave-embedded"


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert math.isnan(percentile([], 0.5))
    result = summarize([0.001, 0.002, 0.003], total_ops=5, errors=1, seconds=2.0)
    assert result.ops == 3
    assert result.throughput == 1.5
    assert result.p50_ms == pytest.approx(2.0)


def _record(system: str, workload: str, round_no: int, ops: int, p99: float) -> Record:
    result = summarize([0.001] * ops, total_ops=ops, errors=0, seconds=1.0)
    result.p99_ms = p99
    return Record(
        system,
        workload,
        round_no,
        result=result.to_json(),
        server_cpu_s=0.5,
        client_cpu_s=0.1,
        fsyncs=3 * ops,
    )


def test_report_medians_ratios_and_files(tmp_path: Path) -> None:
    records = [
        _record(system, "put-64", r, ops, 10.0)
        for r in (1, 2, 3)
        for system, ops in (("conclave-http", 100 * r), ("etcd", 50 * r))
    ]
    records.append(Record("zookeeper", "put-64", 1, error="RuntimeError: boom"))
    table = report.cells(records)
    http = next(c for c in table if c.system == "conclave-http")
    assert http.throughput is not None
    assert http.throughput.median == 200
    assert http.fsyncs_per_write is not None
    assert http.fsyncs_per_write.median == 3.0
    ratio = next(r for r in report.ratios(table) if r["peer"] == "etcd")
    assert ratio["throughput"] == pytest.approx(2.0)
    verdicts = {t["target"]: t["verdict"] for t in report.targets(table)}
    assert verdicts["put-64 HTTP throughput / etcd"] == "met"
    assert verdicts["put-64 HTTP throughput / ZooKeeper"] == "n/a"
    meta = {
        "date": "today",
        "cpu": "cpu",
        "cores": 2,
        "memory_gib": 1,
        "os": "os",
        "kernel": "k",
        "workdir_filesystem": "ext4",
        "load_average_at_start": [0.0, 0.0, 0.0],
        "python": "3",
        "event_loop": "asyncio",
    }
    systems = {
        name: {"version": "v", "description": "d", "fsync_note": "f"}
        for name in ("conclave-http", "etcd", "zookeeper")
    }
    options = {"rounds": 3, "seconds": 1.0, "warmup": 0.1}
    written = report.write(tmp_path, records=records, meta=meta, systems=systems, options=options)
    text = (tmp_path / "results.md").read_text()
    assert "| put-64 | zookeeper | failed: RuntimeError: boom" in text
    assert "2.00x" in text
    assert {p.name for p in written} >= {"results.md", "results.json"}
