"""Workloads: what one configuration does, named on the command line.

Names:
- `put-<N>`: N concurrent clients each putting 10-byte values in a closed loop (`put-1` is
  sequential puts); `put-<N>-1k`: the same with 1 KiB values.
- `get-lin-<N>` / `get-ser-<N>`: N clients reading existing keys, linearizable or
  serializable (etcd `serializable: true`; ZooKeeper `sync()` + get versus a plain get;
  Conclave `?consistency=`; PySyncObj a replicated call versus a local dict read).

Keys: each client writes its own keys (`bench/c<client>/k<i mod 100>`), so the key space
stays bounded whatever the duration; reads pick among `READ_KEYS` keys written beforehand.
"""

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["put", "get-lin", "get-ser"]

READ_KEYS = 100
KEYS_PER_CLIENT = 100
DEFAULT_WORKLOADS = (
    "put-1",
    "put-16",
    "put-64",
    "put-256",
    "put-1-1k",
    "put-64-1k",
    "get-lin-1",
    "get-lin-64",
    "get-ser-1",
    "get-ser-64",
)
QUICK_WORKLOADS = ("put-1", "put-64", "put-64-1k", "get-lin-64", "get-ser-64")

_NAME = re.compile(r"^(put|get-lin|get-ser)-(\d+)(-1k)?$")


@dataclass(frozen=True, slots=True)
class Workload:
    """One workload: kind, concurrency and value size."""

    name: str
    kind: Kind
    clients: int
    value_bytes: int

    @property
    def is_write(self) -> bool:
        return self.kind == "put"

    @property
    def linearizable(self) -> bool:
        return self.kind == "get-lin"

    def value(self) -> str:
        """The value every put of this workload writes (ASCII, so bytes == characters)."""
        return ("v" * self.value_bytes)[: self.value_bytes]


def parse_workload(name: str) -> Workload:
    """`put-64`, `put-1-1k`, `get-lin-64`, ... into a Workload (ValueError when unknown)."""
    match = _NAME.match(name.strip())
    if match is None:
        raise ValueError(f"unknown workload {name!r} (put-N, put-N-1k, get-lin-N, get-ser-N)")
    kind_text, clients_text, big = match.groups()
    clients = int(clients_text)
    if clients < 1:
        raise ValueError(f"workload {name!r}: at least one client")
    if big and kind_text != "put":
        raise ValueError(f"workload {name!r}: only puts take a value size")
    kind: Kind = "put" if kind_text == "put" else "get-lin" if kind_text == "get-lin" else "get-ser"
    return Workload(name=name.strip(), kind=kind, clients=clients, value_bytes=1024 if big else 10)


def put_key(client: int, seq: int) -> str:
    return f"bench/c{client}/k{seq % KEYS_PER_CLIENT}"


def read_key(client: int, seq: int) -> str:
    return f"bench/r/k{(client * 7919 + seq) % READ_KEYS}"


def read_keys() -> list[str]:
    return [f"bench/r/k{i}" for i in range(READ_KEYS)]
