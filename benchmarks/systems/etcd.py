"""etcd: a 3-member cluster of Debian's `etcd-server` (`/usr/bin/etcd`) on 127.0.0.1.

Setup: three `etcd` processes, each with its own data dir under the round's work dir, static
bootstrap (`--initial-cluster`), plain HTTP, default settings otherwise (etcd fsyncs its WAL
on every member before acknowledging a write; nothing here changes that). Logging is reduced
to warnings, as for Conclave.

Access: the JSON gateway (grpc-gateway) that every etcd serves on its client URL,
`POST /v3/kv/put` and `POST /v3/kv/range` with base64 keys and values, through aiohttp, to
the leader's client URL. Serializable reads set `"serializable": true`.

Fsyncs: `etcd_disk_wal_fsync_duration_seconds_count` from each member's `/metrics`, summed.
"""

import base64
import json
import re
import secrets
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import aiohttp

from benchmarks import procs
from benchmarks.loadgen import Op
from benchmarks.systems.base import System, Unavailable, read_text_tail
from benchmarks.workloads import Workload, put_key, read_key, read_keys

ETCD = "/usr/bin/etcd"
_FSYNC_METRIC = re.compile(rb"^etcd_disk_wal_fsync_duration_seconds_count\s+(\d+)", re.M)
_READY_SECONDS = 60.0


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _post_json(url: str, body: object, timeout: float = 2.0) -> dict[str, object]:
    request = urllib.request.Request(  # noqa: S310 - our own 127.0.0.1 server
        url, data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        data: dict[str, object] = json.loads(response.read())
        return data


class Etcd(System):
    """etcd 3.x, 3 members, through its JSON gateway."""

    name = "etcd"
    description = "3 `etcd` processes (Debian etcd-server); JSON gateway via aiohttp, to leader"
    fsync_note = "WAL fsync on every member (`etcd_disk_wal_fsync_duration_seconds_count`)"

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.client_urls: list[str] = []
        self.leader_url = ""
        self.session: aiohttp.ClientSession | None = None

    def check_available(self) -> None:
        if shutil.which(ETCD) is None:
            raise Unavailable(f"{ETCD} is missing (apt-get install etcd-server)")

    def version(self) -> str:
        try:
            out = subprocess.run(  # noqa: S603 - fixed binary
                [ETCD, "--version"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return "etcd (version unknown)"
        first = out.strip().splitlines()[0] if out.strip() else "unknown"
        return first.replace("etcd Version:", "etcd").strip()

    def start(self, workdir: Path) -> None:
        base = workdir / "etcd"
        ports = procs.free_ports(6)
        client_ports, peer_ports = ports[:3], ports[3:]
        names = [f"m{i}" for i in range(1, 4)]
        initial = ",".join(
            f"{n}=http://127.0.0.1:{p}" for n, p in zip(names, peer_ports, strict=True)
        )
        token = f"bench-{secrets.token_hex(4)}"
        self.client_urls = [f"http://127.0.0.1:{p}" for p in client_ports]
        for name, cport, pport in zip(names, client_ports, peer_ports, strict=True):
            args = [
                ETCD,
                "--name", name,
                "--data-dir", str(base / name),
                "--listen-client-urls", f"http://127.0.0.1:{cport}",
                "--advertise-client-urls", f"http://127.0.0.1:{cport}",
                "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
                "--initial-cluster", initial,
                "--initial-cluster-token", token,
                "--initial-cluster-state", "new",
                "--logger", "zap",
                "--log-level", "warn",
            ]  # fmt: skip
            self.procs.append(procs.start(args, log_path=base / f"{name}.log"))
        self._wait_ready(base)

    def _wait_ready(self, base: Path) -> None:
        deadline = time.monotonic() + _READY_SECONDS
        while True:
            for index, proc in enumerate(self.procs):
                if proc.poll() is not None:
                    tail = read_text_tail(base / f"m{index + 1}.log")
                    raise RuntimeError(f"etcd m{index + 1} exited: {tail}")
            leader = self._find_leader()
            if leader:
                self.leader_url = leader
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd: no leader after {_READY_SECONDS}s")
            time.sleep(0.1)

    def _find_leader(self) -> str:
        for url in self.client_urls:
            try:
                status = _post_json(f"{url}/v3/maintenance/status", {})
                _post_json(f"{url}/v3/kv/range", {"key": _b64("ready-check")})
            except (OSError, ValueError):
                return ""
            header = status.get("header")
            member = header.get("member_id") if isinstance(header, dict) else None
            if member is not None and str(status.get("leader")) == str(member):
                return url
        return ""

    def stop(self) -> None:
        for proc in self.procs:
            procs.stop(proc)
        self.procs = []

    def server_pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def fsync_count(self) -> int | None:
        total = 0
        for url in self.client_urls:
            with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:  # noqa: S310
                match = _FSYNC_METRIC.search(response.read())
            if match is None:
                return None
            total += int(match.group(1))
        return total

    async def connect(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=30.0)
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def _put(self, key: str, value: str) -> None:
        assert self.session is not None
        body = {"key": _b64(key), "value": _b64(value)}
        async with self.session.post(f"{self.leader_url}/v3/kv/put", json=body) as response:
            data = await response.read()
            if response.status != 200:
                raise RuntimeError(f"put: {response.status} {data[:200]!r}")

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
        serializable = not workload.linearizable
        url = f"{self.leader_url}/v3/kv/range"

        async def get(client: int, seq: int) -> None:
            assert self.session is not None
            body: dict[str, object] = {"key": _b64(read_key(client, seq))}
            if serializable:
                body["serializable"] = True
            async with self.session.post(url, json=body) as response:
                data = await response.read()
                if response.status != 200 or b'"kvs"' not in data:
                    raise RuntimeError(f"range: {response.status} {data[:200]!r}")

        return get
