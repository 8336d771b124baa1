"""Processes the benchmark starts: tracked, waited for, measured and always stopped.

Rules:
- Every child is started through `start()` and registered in `REGISTRY`; `stop()` ends it
  (SIGTERM, then SIGKILL after a grace period, then reaps it). `stop_all()` is the last line
  of defence (called from `finally` blocks and on SIGTERM/Ctrl-C), and is safe to call twice.
- Children run in their own session (process group), so a Ctrl-C in the terminal reaches
  only the benchmark, which then stops them in order; the whole group is signalled, so
  grandchildren (none are expected) cannot outlive it either.
- CPU time of a process is user + system seconds, children included, read through psutil.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import psutil

_STOP_GRACE_SECONDS = 5.0


class ProcessRegistry:
    """The processes the benchmark started and has not yet stopped."""

    def __init__(self) -> None:
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    def add(self, proc: "subprocess.Popen[bytes]") -> None:
        self._procs[proc.pid] = proc

    def discard(self, proc: "subprocess.Popen[bytes]") -> None:
        self._procs.pop(proc.pid, None)

    def stop_all(self) -> None:
        for proc in list(self._procs.values()):
            stop(proc)

    def live(self) -> list[int]:
        return [pid for pid, proc in self._procs.items() if proc.poll() is None]


REGISTRY = ProcessRegistry()


def start(
    args: Sequence[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = None,
    cwd: Path | None = None,
) -> "subprocess.Popen[bytes]":
    """Start `args` in its own session with stderr (and stdout, unless piped) to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed binaries and our own arguments
            list(args),
            stdin=stdin,
            stdout=log if stdout is None else stdout,
            stderr=log,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    REGISTRY.add(proc)
    return proc


def stop(proc: "subprocess.Popen[bytes]", *, grace_seconds: float = _STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process group, SIGKILL it after `grace_seconds`, reap the process."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    else:
        # The leader is gone; make sure nothing it forked is left in its group.
        _signal_group(proc.pid, signal.SIGKILL)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    REGISTRY.discard(proc)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that the OS considers free on 127.0.0.1 right now."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_port(port: int, *, timeout_seconds: float, proc: "subprocess.Popen[bytes]") -> None:
    """Wait until 127.0.0.1:`port` accepts connections (or the process dies)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} not open after {timeout_seconds}s")
        time.sleep(0.05)


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of these processes (and their reaped children)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads)."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)
