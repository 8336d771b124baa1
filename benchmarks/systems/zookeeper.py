"""ZooKeeper: a 3-member ensemble of Debian's `zookeeper` package on 127.0.0.1, via kazoo.

Setup: Debian ships the server as `/usr/share/java/zookeeper.jar` (its manifest's Class-Path
names the dependency jars under /usr/share/java) and no daemon of its own in this package,
so each member is started as
`java -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.quorum.QuorumPeerMain
<member>.cfg`, with its own `dataDir` holding a `myid` file, all under the round's work dir.
The configuration is ZooKeeper's default one (tickTime 2000, `forceSync=yes`: the
transaction log is fsynced before a write is acknowledged), with the AdminServer off (it
would take port 8080) and the four-letter commands `srvr`/`mntr` allowed (to find the
leader and the version).

Access: one kazoo `KazooClient` connected to the leader, its asynchronous API (`set_async`,
`get_async`, `sync_async`) bridged into asyncio futures, so many requests are pipelined on
one session. Linearizable reads are `sync()` then `get()` on the same session (FIFO order
makes the get observe the sync); serializable reads are a plain `get()`.

Fsyncs: ZooKeeper 3.8's `mntr` reports `zk_cnt_fsynctime` (the number of transaction-log
fsyncs timed) on each member; when it is missing the report says "n/a".
"""

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError

from benchmarks import procs
from benchmarks.loadgen import Op
from benchmarks.systems.base import System, Unavailable, read_text_tail
from benchmarks.workloads import KEYS_PER_CLIENT, Workload, put_key, read_key, read_keys

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
ZK_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
_READY_SECONDS = 90.0
_JVM_ARGS = ("-Xms256m", "-Xmx1g", "-Dzookeeper.admin.enableServer=false")


def four_letter(port: int, command: str, timeout: float = 2.0) -> str:
    """Send a four-letter command to 127.0.0.1:`port`; the answer ('' when it fails)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout) as sock:
            sock.sendall(command.encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


def _path(key: str) -> str:
    return "/" + key


class ZooKeeper(System):
    """ZooKeeper 3.x, 3 members, through kazoo."""

    name = "zookeeper"
    description = "3 ZooKeeper members (Debian zookeeper, QuorumPeerMain); kazoo, to the leader"
    fsync_note = "txn log fsync on every member (forceSync=yes; `zk_cnt_fsynctime` of mntr)"

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.client_ports: list[int] = []
        self.leader_port = 0
        self.zk: KazooClient | None = None
        self._version = ""

    def check_available(self) -> None:
        if not ZK_JAR.exists():
            raise Unavailable(f"{ZK_JAR} is missing (apt-get install zookeeper)")
        if shutil.which("java") is None:
            raise Unavailable("java is missing (apt-get install default-jre-headless)")

    def version(self) -> str:
        if self._version:
            return self._version
        jars = sorted(ZK_JAR.parent.glob("zookeeper-3*.jar"))
        main = [j.name for j in jars if j.name.count("-") == 1]
        return (
            f"zookeeper {main[0].removeprefix('zookeeper-').removesuffix('.jar')}"
            if main
            else "zookeeper"
        )

    def start(self, workdir: Path) -> None:
        base = workdir / "zookeeper"
        ports = procs.free_ports(9)
        self.client_ports = ports[:3]
        quorum, election = ports[3:6], ports[6:9]
        servers = [f"server.{i + 1}=127.0.0.1:{quorum[i]}:{election[i]}" for i in range(3)]
        for index in range(3):
            member = index + 1
            data = base / f"zk{member}"
            data.mkdir(parents=True, exist_ok=True)
            (data / "myid").write_text(f"{member}\n")
            cfg = data / "zoo.cfg"
            cfg.write_text(
                "\n".join(
                    [
                        "tickTime=2000",
                        "initLimit=10",
                        "syncLimit=5",
                        f"dataDir={data}",
                        f"clientPort={self.client_ports[index]}",
                        "clientPortAddress=127.0.0.1",
                        "maxClientCnxns=0",
                        "admin.enableServer=false",
                        "4lw.commands.whitelist=srvr,mntr,ruok",
                        *servers,
                        "",
                    ]
                )
            )
            args = [
                "java",
                *_JVM_ARGS,
                f"-Dzookeeper.log.dir={data}",
                "-cp",
                str(ZK_JAR),
                ZK_MAIN,
                str(cfg),
            ]
            self.procs.append(procs.start(args, log_path=base / f"zk{member}.log"))
        self._wait_ready(base)

    def _wait_ready(self, base: Path) -> None:
        deadline = time.monotonic() + _READY_SECONDS
        while True:
            for index, proc in enumerate(self.procs):
                if proc.poll() is not None:
                    tail = read_text_tail(base / f"zk{index + 1}.log")
                    raise RuntimeError(f"zookeeper zk{index + 1} exited: {tail}")
            modes = {port: four_letter(port, "srvr") for port in self.client_ports}
            leaders = [port for port, text in modes.items() if "Mode: leader" in text]
            followers = [port for port, text in modes.items() if "Mode: follower" in text]
            if len(leaders) == 1 and len(followers) == 2:
                self.leader_port = leaders[0]
                for line in modes[self.leader_port].splitlines():
                    if line.startswith("Zookeeper version:"):
                        text = line.removeprefix("Zookeeper version:").strip()
                        number = re.match(r"[0-9][0-9.]*", text)
                        self._version = f"zookeeper {number.group(0) if number else text}"
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"zookeeper: no leader after {_READY_SECONDS}s: {modes}")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.procs:
            procs.stop(proc)
        self.procs = []

    def server_pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def fsync_count(self) -> int | None:
        total = 0
        for port in self.client_ports:
            text = four_letter(port, "mntr")
            values = dict(
                line.split("\t", 1) for line in text.splitlines() if line.count("\t") == 1
            )
            if "zk_cnt_fsynctime" not in values:
                return None
            total += int(float(values["zk_cnt_fsynctime"]))
        return total

    # -- client ---------------------------------------------------------------------------

    async def connect(self) -> None:
        self.zk = KazooClient(hosts=f"127.0.0.1:{self.leader_port}", timeout=30.0)
        await asyncio.to_thread(self.zk.start, 30.0)
        await asyncio.to_thread(self.zk.ensure_path, "/bench/r")

    async def close(self) -> None:
        zk, self.zk = self.zk, None
        if zk is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(zk.stop)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(zk.close)

    async def _await(self, async_result: Any) -> Any:
        """An asyncio future for a kazoo IAsyncResult (completed from kazoo's thread)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any) -> None:
            if future.done():
                return
            if result.successful():
                future.set_result(result.value)
            else:
                future.set_exception(result.exception)

        async_result.rawlink(lambda result: loop.call_soon_threadsafe(settle, result))
        return await future

    async def _create_all(self, paths: list[str], value: bytes) -> None:
        assert self.zk is not None
        for batch_start in range(0, len(paths), 500):
            batch = paths[batch_start : batch_start + 500]
            results = await asyncio.gather(
                *(self._await(self.zk.create_async(p, value)) for p in batch),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, NodeExistsError):
                    raise result

    async def prepare(self, workload: Workload) -> None:
        if workload.is_write:
            parents = [f"/bench/c{c}" for c in range(workload.clients)]
            await self._create_all(parents, b"")
            keys = [
                _path(put_key(c, i))
                for c in range(workload.clients)
                for i in range(KEYS_PER_CLIENT)
            ]
            await self._create_all(keys, b"")
        else:
            await self._create_all([_path(k) for k in read_keys()], b"r" * 10)

    def operation(self, workload: Workload) -> Op:
        value = workload.value().encode()
        if workload.is_write:

            async def put(client: int, seq: int) -> None:
                assert self.zk is not None
                await self._await(self.zk.set_async(_path(put_key(client, seq)), value))

            return put
        linearizable = workload.linearizable

        async def get(client: int, seq: int) -> None:
            assert self.zk is not None
            path = _path(read_key(client, seq))
            if linearizable:
                synced = self._await(self.zk.sync_async(path))
                got = self._await(self.zk.get_async(path))
                await asyncio.gather(synced, got)
            else:
                await self._await(self.zk.get_async(path))

        return get


def java_version() -> str:
    try:
        out = subprocess.run(
            ["java", "-version"],  # noqa: S607 - the JRE on PATH is the one ZooKeeper uses
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env={**os.environ},
        )
    except (OSError, subprocess.TimeoutExpired):
        return "java (unknown)"
    lines = (out.stderr or out.stdout).strip().splitlines()
    return lines[0] if lines else "java (unknown)"
