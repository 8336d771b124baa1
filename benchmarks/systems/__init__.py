"""The benchmarked systems, by name (see each module for how its cluster is set up)."""

from collections.abc import Callable

from benchmarks.systems.base import System, Unavailable
from benchmarks.systems.conclave import ConclaveClient, ConclaveEmbedded, ConclaveHttp
from benchmarks.systems.etcd import Etcd
from benchmarks.systems.pysyncobj_system import PySyncObjSystem
from benchmarks.systems.zookeeper import ZooKeeper

FACTORIES: dict[str, Callable[[], System]] = {
    "conclave-http": ConclaveHttp,
    "conclave-client": ConclaveClient,
    "conclave-embedded": ConclaveEmbedded,
    "conclave-embedded-nofsync": lambda: ConclaveEmbedded(fsync=False),
    "etcd": Etcd,
    "zookeeper": ZooKeeper,
    "pysyncobj-default": lambda: PySyncObjSystem(tuned=False),
    "pysyncobj-tuned": lambda: PySyncObjSystem(tuned=True),
}
SYSTEM_NAMES = tuple(FACTORIES)
# Whom each Conclave access path is compared with in the ratio table.
PEERS: dict[str, tuple[str, ...]] = {
    "conclave-http": ("etcd", "zookeeper"),
    "conclave-client": ("etcd", "zookeeper"),
    "conclave-embedded": ("pysyncobj-default", "pysyncobj-tuned"),
    "conclave-embedded-nofsync": ("pysyncobj-tuned",),
}


def create(name: str) -> System:
    """A new system object (nothing started yet); `_` may stand for `-` in the name."""
    key = name.strip().replace("_", "-")
    if key not in FACTORIES:
        raise ValueError(f"unknown system {name!r}; known: {', '.join(SYSTEM_NAMES)}")
    return FACTORIES[key]()


__all__ = ["PEERS", "SYSTEM_NAMES", "System", "Unavailable", "create"]
