"""The machine and the software a run measured: printed at start, stored with the results."""

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from benchmarks.loadgen import loop_name

RESULTS_ROOT = Path(__file__).resolve().parent / "results"


def today() -> str:
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d")


def results_dir(out: Path | None = None) -> Path:
    """`benchmarks/results/<date>/` (or `out`), created."""
    directory = out or RESULTS_ROOT / today()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _filesystem(path: Path) -> str:
    """The filesystem type holding `path` (from /proc/mounts; longest mount prefix wins)."""
    best, kind = "", "unknown"
    try:
        resolved = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and resolved.startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], f"{parts[2]} ({parts[0]} on {parts[1]})"
    except OSError:
        pass
    return kind


def _package(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine(workdir: Path | None = None) -> dict[str, Any]:
    """What this machine is, and how busy it was when asked."""
    memory = psutil.virtual_memory()
    load = os.getloadavg()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory.total / 2**30, 1),
        "kernel": platform.release(),
        "os": _os_release(),
        "python": sys.version.split()[0],
        "event_loop": loop_name(),
        "load_average_at_start": [round(x, 2) for x in load],
        "workdir_filesystem": _filesystem(workdir or Path("/tmp")),  # noqa: S108
        "packages": {
            name: _package(name)
            for name in ("conclave", "aiohttp", "kazoo", "pysyncobj", "psutil", "matplotlib")
        },
    }


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def command_output(args: list[str]) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed commands
            args, capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout or done.stderr).strip()
