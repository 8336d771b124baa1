"""One node of Conclave's embedded mode (`conclave.embedded`), the load run INSIDE it.

    python -m benchmarks.nodes.conclave_embedded_node --id 1 --data DIR \
        --member 1=127.0.0.1:P1,127.0.0.1:A1 --member 2=... --member 3=... [--no-fsync]

The application state is a `ReplicatedState` holding a dict; `set` and `get_linearizable`
are `@replicated`. The node runs in its background thread (`EmbeddedNode.start()`); the load
runs as coroutines on the node's own event loop (`EmbeddedNode.run`), the way an asyncio
application calls it: puts are `await node.call("set", ...)`, linearizable reads
`await node.barrier()` then a local read, serializable reads a local read in a plain loop.
`--no-fsync` sets `NodeSettings(fsync=False)`: NOT durable, labelled so in the report.
Controlled over stdin/stdout like every embedded node (`benchmarks.nodes`).
"""

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from benchmarks.loadgen import closed_loop
from benchmarks.nodes import run_local_reads, serve_commands
from benchmarks.workloads import put_key, read_key, read_keys
from conclave.embedded import EmbeddedNode, ReplicatedState, replicated
from conclave.runtime.settings import MemberAddress, NodeSettings


class BenchState(ReplicatedState):
    """A replicated dict."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    @replicated
    def set(self, key: str, value: str) -> None:
        self.data[key] = value

    @replicated
    def get_linearizable(self, key: str) -> str | None:
        return self.data.get(key)


class Node:
    """The embedded node and the commands of the controller."""

    def __init__(self, embedded: EmbeddedNode, state: BenchState) -> None:
        self.embedded = embedded
        self.state = state

    async def _status(self) -> dict[str, Any]:
        status = self.embedded.node.status()
        return {
            "leader": status["role"] == "leader",
            "ready": self.embedded.node.is_ready(),
            "fsyncs": status.get("wal_syncs"),
        }

    async def _preload(self) -> dict[str, Any]:
        await asyncio.gather(*(self.embedded.call("set", key, "r" * 10) for key in read_keys()))
        return {"ok": True}

    async def _run(self, command: dict[str, Any]) -> dict[str, Any]:
        kind = str(command["kind"])
        value = "v" * int(command["value_bytes"])
        embedded, data = self.embedded, self.state.data

        async def put(client: int, seq: int) -> None:
            await embedded.call("set", put_key(client, seq), value)

        async def get(client: int, seq: int) -> None:
            await embedded.barrier()
            if data.get(read_key(client, seq)) is None:
                raise RuntimeError("read key missing")

        result = await closed_loop(
            put if kind == "put" else get,
            clients=int(command["clients"]),
            seconds=float(command["seconds"]),
            warmup=float(command["warmup"]),
        )
        return result.to_json()

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        match command.get("cmd"):
            case "status":
                return self.embedded.run(self._status())
            case "preload":
                return self.embedded.run(self._preload())
            case "run" if command.get("kind") == "get-ser":
                return run_local_reads(
                    self.state.data.get,
                    seconds=float(command["seconds"]),
                    warmup=float(command["warmup"]),
                )
            case "run":
                return self.embedded.run(self._run(command))
            case _:
                return {"error": f"unknown command {command!r}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--member", action="append", default=[])
    parser.add_argument("--no-fsync", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = NodeSettings(
        node_id=args.id,
        data_dir=args.data,
        members=tuple(MemberAddress.parse(m) for m in args.member),
        cluster_id="conclave-bench-embedded",
        fsync=not args.no_fsync,
    )
    state = BenchState()
    embedded = EmbeddedNode(state, settings)
    embedded.start()
    try:
        serve_commands(Node(embedded, state).handle)
    finally:
        embedded.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
