"""One PySyncObj node of the benchmark, run as its own process; the load runs INSIDE it.

    python -m benchmarks.nodes.pysyncobj_node --self 127.0.0.1:P1 \
        --partner 127.0.0.1:P2 --partner 127.0.0.1:P3 [--tuned]

The replicated state is a dict in a `SyncObj` subclass: `set` and `get_linearizable` are
`@replicated` (they go through the Raft log), `get_local` reads this node's copy. `--tuned`
uses `SyncObjConf(appendEntriesUseBatch=False)`, otherwise `SyncObjConf()` defaults. There
is no journal file: PySyncObj never fsyncs (not even with one), so none is configured.

Control protocol: one JSON object per line on stdin, one JSON answer per line on stdout
(`{"cmd": "status"}`, `{"cmd": "preload", ...}`, `{"cmd": "run", ...}`, `{"cmd": "quit"}`).
`run` starts the load in this process: `clients` call chains, each issuing the next call
from the previous call's callback until the deadline, and answers with a `RunResult`.
Logs go to stderr.
"""

import argparse
import threading
import time
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

from benchmarks.loadgen import summarize
from benchmarks.nodes import run_local_reads, serve_commands
from benchmarks.workloads import put_key, read_key, read_keys

_RETRY_PAUSE_SECONDS = 0.01
_STRAGGLER_SECONDS = 30.0


class BenchKV(SyncObj):  # type: ignore[misc]  # pysyncobj ships no type information
    """A replicated dict."""

    def __init__(self, self_address: str, partners: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_address, partners, conf)
        self._data: dict[str, str] = {}

    @replicated  # type: ignore[untyped-decorator]
    def set(self, key: str, value: str) -> None:
        self._data[key] = value

    @replicated  # type: ignore[untyped-decorator]
    def get_linearizable(self, key: str) -> str | None:
        return self._data.get(key)

    def get_local(self, key: str) -> str | None:
        return self._data.get(key)


def run_replicated(
    node: BenchKV, *, kind: str, clients: int, value: str, seconds: float, warmup: float
) -> dict[str, Any]:
    """Closed-loop call chains through the log (puts or linearizable reads)."""
    clock = time.perf_counter
    started = clock()
    measure_from = started + warmup
    until = measure_from + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    state = {"total": 0, "errors": 0, "finished": 0}
    errors: list[str] = []
    done = threading.Event()

    def issue(client: int, seq: int) -> None:
        sent = clock()
        if sent >= until:
            with lock:
                state["finished"] += 1
                if state["finished"] == clients:
                    done.set()
            return

        def callback(_result: object, error: int) -> None:
            finished_at = clock()
            if error == FAIL_REASON.SUCCESS:
                with lock:
                    state["total"] += 1
                    if measure_from <= finished_at <= until:
                        latencies.append(finished_at - sent)
                issue(client, seq + 1)
            else:
                with lock:
                    state["errors"] += 1
                    if not errors:
                        errors.append(f"FAIL_REASON {error}")
                threading.Timer(_RETRY_PAUSE_SECONDS, issue, (client, seq + 1)).start()

        if kind == "put":
            node.set(put_key(client, seq), value, callback=callback)
        else:
            node.get_linearizable(read_key(client, seq), callback=callback)

    for client in range(clients):
        issue(client, 0)
    done.wait(warmup + seconds + _STRAGGLER_SECONDS)
    with lock:
        result = summarize(
            list(latencies),
            total_ops=state["total"],
            errors=state["errors"],
            seconds=seconds,
            first_error=errors[0] if errors else None,
        )
    return result.to_json()


def handle(node: BenchKV, command: dict[str, Any]) -> dict[str, Any]:
    match command.get("cmd"):
        case "status":
            return {"leader": node._isLeader(), "ready": node.isReady(), "fsyncs": 0}
        case "preload":
            for key in read_keys():
                node.set(key, "r" * 10, sync=True, timeout=30)
            return {"ok": True}
        case "run":
            kind = str(command["kind"])
            seconds = float(command["seconds"])
            warmup = float(command["warmup"])
            if kind == "get-ser":
                return run_local_reads(node.get_local, seconds=seconds, warmup=warmup)
            return run_replicated(
                node,
                kind="put" if kind == "put" else "get-lin",
                clients=int(command["clients"]),
                value="v" * int(command["value_bytes"]),
                seconds=seconds,
                warmup=warmup,
            )
        case _:
            return {"error": f"unknown command {command!r}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self", dest="self_address", required=True)
    parser.add_argument("--partner", action="append", default=[])
    parser.add_argument("--tuned", action="store_true")
    args = parser.parse_args()
    conf = SyncObjConf(appendEntriesUseBatch=False) if args.tuned else SyncObjConf()
    node = BenchKV(args.self_address, args.partner, conf)
    try:
        serve_commands(lambda command: handle(node, command))
    finally:
        node.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
