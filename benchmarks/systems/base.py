"""What every benchmarked system offers the runner.

Life of a system in one round: `start(workdir)` (a fresh 3-member cluster, blocking until it
serves), then on one event loop `connect()`, per workload `prepare()` + the load, `close()`;
finally `stop()`, which must stop every process `start` started, also after a failure
half-way through `start`. Server systems return an `operation()` that the shared load
generator drives; embedded systems (`embedded = True`) run the load inside their leader's
process through `run_embedded()` instead.
"""

from abc import ABC, abstractmethod
from pathlib import Path

from benchmarks.loadgen import Op, RunResult
from benchmarks.workloads import Workload


class Unavailable(Exception):
    """The system cannot run here (binary missing, module not implemented yet)."""


class System(ABC):
    """A benchmarked system; see the module docstring."""

    name: str = ""
    description: str = ""
    embedded: bool = False
    is_conclave: bool = False
    # Why fsyncs are what they are (shown in the report next to the fsync column).
    fsync_note: str = ""

    def check_available(self) -> None:  # noqa: B027 - optional hook, default: available
        """Raise `Unavailable` with the reason when this system cannot run here."""

    def version(self) -> str:
        """The version string printed in the report."""
        return "unknown"

    @abstractmethod
    def start(self, workdir: Path) -> None:
        """Start a fresh 3-member cluster under `workdir` and wait until it serves."""

    @abstractmethod
    def stop(self) -> None:
        """Stop every process `start` started (safe to call twice, or after a failed start)."""

    @abstractmethod
    def server_pids(self) -> list[int]:
        """The processes whose CPU time counts as the system's."""

    def fsync_count(self) -> int | None:
        """Fsyncs so far, summed over the members; None when the system does not expose it."""
        return None

    async def connect(self) -> None:  # noqa: B027 - optional hook
        """Open client connections (on the benchmark's event loop)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Close client connections."""

    async def prepare(self, workload: Workload) -> None:
        """Before a workload: e.g. write the keys a read workload reads."""
        del workload

    def operation(self, workload: Workload) -> Op:
        """One operation of `workload` as `op(client, seq)` (server systems)."""
        raise NotImplementedError(f"{self.name} is embedded; use run_embedded")

    def run_embedded(self, workload: Workload, *, seconds: float, warmup: float) -> RunResult:
        """Run `workload` inside the leader's process (embedded systems)."""
        raise NotImplementedError(f"{self.name} is a server; use operation")


def read_text_tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""
