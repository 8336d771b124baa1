"""PySyncObj: 3 node processes (`benchmarks.nodes.pysyncobj_node`), load run in the leader.

PySyncObj is a library embedded in the application, so the calls are made inside the
leader's process, as its users do (see `benchmarks.systems.piped`). Two systems:
`pysyncobj-default` (`SyncObjConf()`) and `pysyncobj-tuned` (`appendEntriesUseBatch=False`).
PySyncObj never fsyncs, so its fsync count is 0.
"""

import importlib.metadata
from pathlib import Path

from benchmarks import procs
from benchmarks.systems.base import Unavailable
from benchmarks.systems.piped import PipedCluster


class PySyncObjSystem(PipedCluster):
    """A 3-node PySyncObj cluster of replicated dicts; load inside the leader."""

    node_module = "benchmarks.nodes.pysyncobj_node"
    fsync_note = "never fsyncs (in-memory log; even its journal file is not fsynced)"

    def __init__(self, *, tuned: bool) -> None:
        super().__init__()
        self.tuned = tuned
        self.name = "pysyncobj-tuned" if tuned else "pysyncobj-default"
        conf = "appendEntriesUseBatch=False" if tuned else "default SyncObjConf()"
        self.description = f"3 PySyncObj processes ({conf}); calls inside the leader"

    def check_available(self) -> None:
        try:
            importlib.metadata.version("pysyncobj")
        except importlib.metadata.PackageNotFoundError:
            raise Unavailable("pysyncobj is not installed (pip install -e '.[bench]')") from None

    def version(self) -> str:
        try:
            return f"pysyncobj {importlib.metadata.version('pysyncobj')}"
        except importlib.metadata.PackageNotFoundError:
            return "pysyncobj (not installed)"

    def node_args(self, workdir: Path) -> list[list[str]]:
        del workdir
        addresses = [f"127.0.0.1:{p}" for p in procs.free_ports(3)]
        out = []
        for address in addresses:
            args = ["--self", address]
            for other in addresses:
                if other != address:
                    args += ["--partner", other]
            if self.tuned:
                args.append("--tuned")
            out.append(args)
        return out

    def fsync_count(self) -> int | None:
        return 0
