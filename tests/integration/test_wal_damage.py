"""Real processes: a WAL with a torn tail recovers; a corrupted middle record refuses to start
with an error naming the file and the offset."""

import re
from pathlib import Path

import pytest

from conclave.client import Client

from .conftest import ClusterFactory

pytestmark = pytest.mark.slow


def _segments(node_dir: Path) -> list[Path]:
    return sorted(node_dir.glob("wal-*.log"))


def test_torn_tail_is_truncated_and_the_node_rejoins(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(3)
    cluster.start()
    with Client(cluster.endpoints, timeout=10.0) as api:
        for n in range(20):
            api.put(f"t/{n}", str(n))
    victim = next(i for i in cluster.running() if i != cluster.leader())
    cluster.kill(victim)
    last = _segments(cluster.data_dir / f"node-{victim}")[-1]
    with last.open("ab") as handle:
        handle.write(b"\x00\x00\x01\x00\xde\xad")  # a record header promising bytes never written
    cluster.start_node(victim)
    cluster.wait_ready(nodes=[victim], timeout_seconds=30)
    log = (cluster.data_dir / f"node-{victim}.log").read_text()
    assert "torn" in log
    with Client([cluster.api(victim)], timeout=10.0) as one:
        assert one.get("t/19", consistency="serializable") is not None


def test_corrupted_middle_record_refuses_to_start(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(3)
    cluster.start()
    with Client(cluster.endpoints, timeout=10.0) as api:
        for n in range(20):
            api.put(f"c/{n}", str(n))
    victim = next(i for i in cluster.running() if i != cluster.leader())
    cluster.kill(victim)
    segment = _segments(cluster.data_dir / f"node-{victim}")[0]
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF
    segment.write_bytes(bytes(data))
    cluster.start_node(victim)
    code = cluster.processes[victim].wait(timeout=30)
    assert code == 1
    log = (cluster.data_dir / f"node-{victim}.log").read_text()
    assert re.search(rf"WAL corrupted in \S*{segment.name} at byte offset \d+", log), log[-2000:]
