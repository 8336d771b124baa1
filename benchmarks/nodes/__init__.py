"""Node scripts of the embedded systems, and the command loop they share.

Each node script runs as its own process (`python -m benchmarks.nodes.<name>`) and is driven
by `benchmarks.systems.piped.PipedCluster` over its stdin/stdout. This package imports only
the standard library, so a node process does not load the benchmark's client libraries.
"""

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.loadgen import summarize
from benchmarks.workloads import read_key

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def serve_commands(handle: Handler) -> None:
    """The node side: answer JSON-lines commands on stdin until `quit` or EOF."""
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        if command.get("cmd") == "quit":
            return
        try:
            answer = handle(command)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def run_local_reads(
    get: Callable[[str], object], *, seconds: float, warmup: float
) -> dict[str, Any]:
    """Serializable reads of this node's own copy, in one loop (threads would only share the
    GIL); the `RunResult` as JSON."""
    clock = time.perf_counter
    measure_from = clock() + warmup
    until = measure_from + seconds
    latencies: list[float] = []
    total = 0
    while True:
        sent = clock()
        if sent >= until:
            break
        get(read_key(0, total))
        finished_at = clock()
        total += 1
        if finished_at >= measure_from:
            latencies.append(finished_at - sent)
    return summarize(latencies, total_ops=total, errors=0, seconds=seconds).to_json()
