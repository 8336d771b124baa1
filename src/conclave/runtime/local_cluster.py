"""A local cluster of real `conclave serve` processes on 127.0.0.1 (shell tooling).

Used by `conclave cluster up`, `make demo` and the integration tests. Rules:
- Every node is a separate OS process (`python -m conclave serve`), so SIGKILL, SIGSTOP and
  restarts are real. Its log goes to `DATA/node-<id>.log`; its WAL to `DATA/node-<id>/`.
- Ports are `base_port + id` (API) and `base_port + 100 + id` (peers) when `base_port` is
  given, otherwise free ports picked by the OS (for tests that run side by side).
- With `tls_dir` (a folder made by `conclave certs init`), node i runs with
  `node-<i>.pem`, `node-<i>-key.pem` and `ca.pem` from it: mutual TLS between the nodes.
- `stop()` stops every process this object started (SIGTERM, then SIGKILL after a grace
  period) and is safe to call twice; the object is a context manager.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from conclave.runtime.settings import MemberAddress
from conclave.runtime.tls import CA_CERT_FILE, node_cert_file, node_key_file

_POLL_SECONDS = 0.05
_STOP_GRACE_SECONDS = 5.0


def free_port() -> int:
    """A port the OS considers free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_json(
    method: str,
    url: str,
    body: object | None = None,
    timeout_seconds: float = 2.0,
    token: str | None = None,
) -> tuple[int, Any]:
    """One HTTP request with a JSON body and answer; (status, parsed body)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@dataclass
class LocalCluster:
    """`size` nodes of one cluster under `data_dir`; see the module docstring."""

    data_dir: Path
    size: int = 3
    base_port: int | None = None
    cluster_id: str = "conclave-local"
    extra_args: tuple[str, ...] = ()
    tls_dir: Path | None = None  # from `conclave certs init`: mutual TLS between the nodes
    members: list[MemberAddress] = field(default_factory=list)
    processes: dict[int, "subprocess.Popen[bytes]"] = field(default_factory=dict)
    _logs: dict[int, IO[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.members:
            self.members = [self._new_member(i) for i in range(1, self.size + 1)]

    def _new_member(self, node_id: int) -> MemberAddress:
        if self.base_port is not None:
            api, peer = self.base_port + node_id, self.base_port + 100 + node_id
        else:
            api, peer = free_port(), free_port()
        return MemberAddress(
            id=node_id, peer_address=f"127.0.0.1:{peer}", api_address=f"127.0.0.1:{api}"
        )

    # -- addresses ------------------------------------------------------------------------

    def member(self, node_id: int) -> MemberAddress:
        return next(m for m in self.members if m.id == node_id)

    def api(self, node_id: int) -> str:
        return self.member(node_id).api_address

    def url(self, node_id: int, path: str) -> str:
        return f"http://{self.api(node_id)}{path}"

    @property
    def endpoints(self) -> list[str]:
        return [m.api_address for m in self.members]

    def running(self) -> list[int]:
        return [i for i, p in self.processes.items() if p.poll() is None]

    # -- processes ------------------------------------------------------------------------

    def start(self, *, ready_timeout_seconds: float = 30.0) -> None:
        for member in list(self.members):
            self.start_node(member.id)
        self.wait_ready(timeout_seconds=ready_timeout_seconds)

    def command(self, node_id: int, *, join: bool = False) -> list[str]:
        args = [sys.executable, "-m", "conclave", "serve", "--id", str(node_id)]
        args += ["--data", str(self.data_dir), "--cluster-id", self.cluster_id]
        for member in self.members:
            args += ["--member", member.describe()]
        if join:
            args.append("--join")
        if self.tls_dir is not None:
            args += ["--tls-cert", str(node_cert_file(self.tls_dir, node_id))]
            args += ["--tls-key", str(node_key_file(self.tls_dir, node_id))]
            args += ["--tls-ca", str(self.tls_dir / CA_CERT_FILE)]
        return args + list(self.extra_args)

    def start_node(self, node_id: int, *, join: bool = False) -> None:
        """Start (or restart) one node's process."""
        old = self.processes.get(node_id)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"node {node_id} is already running")
        log = (self.data_dir / f"node-{node_id}.log").open("ab")
        self._close_log(node_id)
        self._logs[node_id] = log
        self.processes[node_id] = subprocess.Popen(  # noqa: S603 - our own interpreter and args
            self.command(node_id, join=join),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def add_node(self, node_id: int) -> MemberAddress:
        """Start a new node that joins (the caller then adds it through the API)."""
        member = self._new_member(node_id)
        self.members.append(member)
        self.start_node(node_id, join=True)
        return member

    def signal(self, node_id: int, signum: int) -> None:
        process = self.processes[node_id]
        if process.poll() is None:
            process.send_signal(signum)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node and reap it."""
        self.signal(node_id, signal.SIGKILL)
        self.processes[node_id].wait()

    def stop_node(self, node_id: int) -> int | None:
        process = self.processes.get(node_id)
        if process is None:
            return None
        if process.poll() is None:
            # A frozen node cannot handle SIGTERM: thaw it first.
            process.send_signal(signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log(node_id)
        return process.returncode

    def stop(self) -> dict[int, int | None]:
        """Stop every process; their exit codes."""
        return {node_id: self.stop_node(node_id) for node_id in list(self.processes)}

    def _close_log(self, node_id: int) -> None:
        log = self._logs.pop(node_id, None)
        if log is not None:
            log.close()

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- observation ----------------------------------------------------------------------

    def status(self, node_id: int) -> dict[str, Any] | None:
        try:
            code, body = http_json("GET", self.url(node_id, "/v1/status"), timeout_seconds=1.0)
        except (OSError, ValueError):
            return None
        return body if code == 200 else None

    def wait_ready(self, *, nodes: list[int] | None = None, timeout_seconds: float = 30.0) -> None:
        """Wait until every given (default: running) node answers /readyz with 200."""
        deadline = time.monotonic() + timeout_seconds
        pending = set(nodes if nodes is not None else self.running())
        while pending:
            for node_id in list(pending):
                self._check_alive(node_id)
                with contextlib.suppress(OSError, ValueError):
                    code, _ = http_json("GET", self.url(node_id, "/readyz"), timeout_seconds=1.0)
                    if code == 200:
                        pending.discard(node_id)
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"nodes {sorted(pending)} not ready in {timeout_seconds}s")
            time.sleep(_POLL_SECONDS)

    def _check_alive(self, node_id: int) -> None:
        process = self.processes[node_id]
        if process.poll() is not None:
            log = (self.data_dir / f"node-{node_id}.log").read_text(errors="replace")
            raise RuntimeError(
                f"node {node_id} exited with {process.returncode}; log tail:\n{log[-3000:]}"
            )

    def leader(self, *, timeout_seconds: float = 30.0, exclude: int | None = None) -> int:
        """The id that a majority of running nodes name as leader (waits for one)."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            votes: dict[int, int] = {}
            for node_id in self.running():
                status = self.status(node_id)
                if status is not None and status["leader"] is not None:
                    votes[status["leader"]] = votes.get(status["leader"], 0) + 1
            for leader, count in votes.items():
                if count > len(self.members) // 2 and leader != exclude:
                    return leader
            if time.monotonic() > deadline:
                raise TimeoutError(f"no leader agreed on in {timeout_seconds}s (saw {votes})")
            time.sleep(_POLL_SECONDS)


__all__ = ["LocalCluster", "free_port", "http_json"]
