"""Conclave: a 3-node cluster of real `conclave serve` processes (LocalCluster), fsync on.

Two access paths to the same kind of cluster, each its own system so they are measured
side by side:
- `conclave-http`: the HTTP API through aiohttp directly (`PUT /v1/kv/{key}`,
  `GET /v1/kv/{key}?consistency=...`), every request sent to the leader, like etcd's.
- `conclave-client`: Conclave's own `AsyncClient` (leader discovery, retries, request ids
  for exactly-once writes), given the leader as its first endpoint.

Conclave always fsyncs its WAL before a write is acknowledged (there is no switch to turn it
off); `fsync_count` sums the `wal_syncs` field of `GET /v1/status` over the nodes.

`conclave-embedded` (and `conclave-embedded-nofsync`, not durable) is the HOOK for issue 4
item 3: Conclave's embedded mode, compared with PySyncObj inside the leader's process. While
`conclave.embedded` does not import it reports itself unavailable and the report shows a
"not implemented yet" row.
"""

import importlib
import importlib.metadata
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import procs
from benchmarks.loadgen import Op
from benchmarks.systems.base import System, Unavailable
from benchmarks.systems.piped import PipedCluster
from benchmarks.workloads import Workload, put_key, read_key, read_keys
from conclave.client import AsyncClient
from conclave.runtime.local_cluster import LocalCluster
from conclave.runtime.settings import MemberAddress, NodeSettings

_SERVE_ARGS = ("--log-level", "warning")


def conclave_version() -> str:
    try:
        return importlib.metadata.version("conclave")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class _ConclaveCluster(System):
    """Shared start/stop/counters of the two server access paths."""

    is_conclave = True
    fsync_note = "WAL fsync on every node before acknowledging (`wal_syncs` of /v1/status)"

    def __init__(self) -> None:
        self.cluster: LocalCluster | None = None
        self.leader_api = ""

    def version(self) -> str:
        return f"conclave {conclave_version()}"

    def start(self, workdir: Path) -> None:
        self.cluster = LocalCluster(data_dir=workdir / "conclave", size=3, extra_args=_SERVE_ARGS)
        self.cluster.start(ready_timeout_seconds=60.0)
        leader = self.cluster.leader(timeout_seconds=30.0)
        self.leader_api = self.cluster.api(leader)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()

    def server_pids(self) -> list[int]:
        if self.cluster is None:
            return []
        return [p.pid for p in self.cluster.processes.values() if p.poll() is None]

    def fsync_count(self) -> int | None:
        assert self.cluster is not None
        total = 0
        for member in self.cluster.members:
            status = self.cluster.status(member.id)
            if status is None or "wal_syncs" not in status:
                return None
            total += int(status["wal_syncs"])
        return total


class ConclaveHttp(_ConclaveCluster):
    """Conclave through its HTTP API with aiohttp, requests to the leader."""

    name = "conclave-http"
    description = "3 `conclave serve` processes; HTTP API via aiohttp, to the leader"

    def __init__(self) -> None:
        super().__init__()
        self.session: aiohttp.ClientSession | None = None

    async def connect(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30.0)
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def _url(self, key: str) -> str:
        return f"http://{self.leader_api}/v1/kv/{urllib.parse.quote(key, safe='/')}"

    async def _put(self, key: str, value: str) -> None:
        assert self.session is not None
        async with self.session.put(self._url(key), json={"value": value}) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"PUT {key}: {response.status} {body[:200]!r}")

    async def prepare(self, workload: Workload) -> None:
        if not workload.is_write:
            for key in read_keys():
                await self._put(key, "r" * 10)

    def operation(self, workload: Workload) -> Op:
        value = workload.value()
        if workload.is_write:

            async def put(client: int, seq: int) -> None:
                await self._put(put_key(client, seq), value)

            return put
        consistency = "linearizable" if workload.linearizable else "serializable"

        async def get(client: int, seq: int) -> None:
            assert self.session is not None
            url = f"{self._url(read_key(client, seq))}?consistency={consistency}"
            async with self.session.get(url) as response:
                body = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET: {response.status} {body[:200]!r}")

        return get


class ConclaveClient(_ConclaveCluster):
    """Conclave through `conclave.client.AsyncClient`."""

    name = "conclave-client"
    description = "3 `conclave serve` processes; conclave.client.AsyncClient"

    def __init__(self) -> None:
        super().__init__()
        self.client: AsyncClient | None = None

    async def connect(self) -> None:
        assert self.cluster is not None
        others = [api for api in self.cluster.endpoints if api != self.leader_api]
        self.client = AsyncClient([self.leader_api, *others], timeout=30.0)
        await self.client.__aenter__()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def prepare(self, workload: Workload) -> None:
        assert self.client is not None
        if not workload.is_write:
            for key in read_keys():
                await self.client.put(key, "r" * 10)

    def operation(self, workload: Workload) -> Op:
        value = workload.value()
        if workload.is_write:

            async def put(client: int, seq: int) -> None:
                assert self.client is not None
                await self.client.put(put_key(client, seq), value)

            return put
        consistency: Any = "linearizable" if workload.linearizable else "serializable"

        async def get(client: int, seq: int) -> None:
            assert self.client is not None
            if await self.client.get(read_key(client, seq), consistency=consistency) is None:
                raise RuntimeError("read key missing")

        return get


class ConclaveEmbedded(PipedCluster):
    """Conclave embedded in the application (issue 4 item 3), compared with PySyncObj.

    HOOK: this adapter follows `conclave.embedded` as it is being built; while that module
    (or a name used here) is missing, the system is skipped with a "not implemented yet"
    row. The node script is `benchmarks/nodes/conclave_embedded_node.py`: 3 processes, the
    load run on the leader's own event loop, latencies reported back, as for PySyncObj.
    """

    node_module = "benchmarks.nodes.conclave_embedded_node"
    is_conclave = True

    def __init__(self, *, fsync: bool = True) -> None:
        super().__init__()
        self.fsync = fsync
        self.name = "conclave-embedded" if fsync else "conclave-embedded-nofsync"
        self.description = (
            "3 processes running `conclave.embedded.EmbeddedNode`; calls inside the leader"
            + ("" if fsync else "; fsync OFF: NOT durable")
        )
        self.fsync_note = (
            "WAL fsync on every node before acknowledging (same WAL as the server)"
            if fsync
            else "fsync turned off (`NodeSettings(fsync=False)`): NOT durable; `wal_syncs` still "
            "counts the sync points, no fsync is issued"
        )

    def check_available(self) -> None:
        try:
            module = importlib.import_module("conclave.embedded")
        except ImportError as exc:
            raise Unavailable(
                f"not implemented yet: `conclave.embedded` does not import ({exc})"
            ) from None
        missing = [
            name
            for name in ("EmbeddedNode", "ReplicatedState", "replicated")
            if not hasattr(module, name)
        ]
        if missing:
            raise Unavailable(f"not implemented yet: `conclave.embedded` lacks {missing}")
        if not self.fsync and "fsync" not in getattr(NodeSettings, "__dataclass_fields__", {}):
            raise Unavailable("not implemented yet: NodeSettings has no `fsync` switch")

    def version(self) -> str:
        return f"conclave {conclave_version()} (embedded)"

    def node_args(self, workdir: Path) -> list[list[str]]:
        ports = procs.free_ports(6)
        members = [
            MemberAddress(
                id=i + 1,
                peer_address=f"127.0.0.1:{ports[i]}",
                api_address=f"127.0.0.1:{ports[3 + i]}",
            )
            for i in range(3)
        ]
        out = []
        for member in members:
            args = ["--id", str(member.id), "--data", str(workdir / f"node-{member.id}")]
            for other in members:
                args += ["--member", other.describe()]
            if not self.fsync:
                args.append("--no-fsync")
            out.append(args)
        return out
