"""Embedded systems: 3 node processes driven over stdin/stdout pipes, load run in the leader.

An embedded library (PySyncObj, Conclave's embedded mode) has no client protocol: the
application calls it in its own process. So each member is a small node script
(`benchmarks.nodes.<x>_node`) that the controller (this module, in the benchmark process)
starts three times and talks to with one JSON object per line: `{"cmd": "status"}` (is this
node the leader, is it ready, its fsync counter), `{"cmd": "preload"}` (write the keys that
read workloads read), `{"cmd": "run", ...}` (run a workload inside this process and answer
with a `RunResult`), `{"cmd": "quit"}`. Node logs go to stderr, i.e. to the node's log file.
"""

import json
import os
import select
import subprocess
import sys
import time
from abc import abstractmethod
from pathlib import Path
from typing import Any

from benchmarks import procs
from benchmarks.loadgen import RunResult
from benchmarks.systems.base import System, read_text_tail
from benchmarks.workloads import Workload

REPO_ROOT = Path(__file__).resolve().parents[2]
_READY_SECONDS = 60.0
_ANSWER_GRACE_SECONDS = 60.0


class PipedCluster(System):
    """3 node processes of `node_module`, the load run by the leader (see the module)."""

    embedded = True
    node_module = ""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.leader: subprocess.Popen[bytes] | None = None
        self.workdir = Path()

    @abstractmethod
    def node_args(self, workdir: Path) -> list[list[str]]:
        """The arguments of each of the 3 node processes (after `-m node_module`)."""

    def start(self, workdir: Path) -> None:
        self.workdir = workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        for index, args in enumerate(self.node_args(self.workdir)):
            self.procs.append(
                procs.start(
                    [sys.executable, "-m", self.node_module, *args],
                    log_path=self.workdir / f"node{index + 1}.log",
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    cwd=REPO_ROOT,
                )
            )
        self._wait_leader()
        assert self.leader is not None
        self.ask(self.leader, {"cmd": "preload"}, timeout=60.0)

    def _wait_leader(self) -> None:
        deadline = time.monotonic() + _READY_SECONDS
        while True:
            states = [self.ask(proc, {"cmd": "status"}, timeout=10.0) for proc in self.procs]
            leaders = [p for p, s in zip(self.procs, states, strict=True) if s.get("leader")]
            ready = [
                s.get("ready") for p, s in zip(self.procs, states, strict=True) if p in leaders
            ]
            if len(leaders) == 1 and all(ready):
                self.leader = leaders[0]
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no single ready leader: {states}")
            time.sleep(0.1)

    def ask(
        self, proc: "subprocess.Popen[bytes]", command: dict[str, Any], *, timeout: float
    ) -> dict[str, Any]:
        """Send one command to one node; its answer (raises on an error answer)."""
        assert proc.stdin is not None
        assert proc.stdout is not None
        index = self.procs.index(proc) + 1 if proc in self.procs else 0
        if proc.poll() is not None:
            tail = read_text_tail(self.workdir / f"node{index}.log")
            raise RuntimeError(f"{self.name}: node {index} exited ({proc.returncode}): {tail}")
        proc.stdin.write((json.dumps(command) + "\n").encode())
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"{self.name}: node {index}: no answer to {command} in {timeout}s")
        line = proc.stdout.readline()
        if not line:
            tail = read_text_tail(self.workdir / f"node{index}.log")
            raise RuntimeError(f"{self.name}: node {index} closed its pipe: {tail}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name}: node {index}: {answer['error']}")
        return answer

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None and proc.stdin is not None:
                try:
                    proc.stdin.write(b'{"cmd": "quit"}\n')
                    proc.stdin.flush()
                    proc.wait(5.0)
                except (OSError, subprocess.TimeoutExpired):
                    pass  # procs.stop below terminates it
            procs.stop(proc)
        self.procs = []
        self.leader = None

    def server_pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def fsync_count(self) -> int | None:
        total = 0
        for proc in self.procs:
            count = self.ask(proc, {"cmd": "status"}, timeout=10.0).get("fsyncs")
            if count is None:
                return None
            total += int(count)
        return total

    def run_embedded(self, workload: Workload, *, seconds: float, warmup: float) -> RunResult:
        assert self.leader is not None
        command = {
            "cmd": "run",
            "kind": workload.kind,
            "clients": workload.clients,
            "value_bytes": workload.value_bytes,
            "seconds": seconds,
            "warmup": warmup,
        }
        answer = self.ask(self.leader, command, timeout=seconds + warmup + _ANSWER_GRACE_SECONDS)
        return RunResult.from_json(answer)
