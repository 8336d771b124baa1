"""Real processes with mutual TLS between the nodes (certificates from `certs init`)."""

import time
from pathlib import Path

import pytest

from conclave.client import Client
from conclave.runtime.tls import generate_dev_certs

from .conftest import ClusterFactory

pytestmark = pytest.mark.slow


def test_a_tls_cluster_replicates_and_fails_over(
    make_cluster: ClusterFactory, tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    generate_dev_certs(certs, [1, 2, 3])
    cluster = make_cluster(3, tls_dir=certs)
    cluster.start()
    with Client(cluster.endpoints, timeout=10.0) as api:
        api.put("secret", "kept")
    leader = cluster.leader()
    cluster.kill(leader)
    survivors = [m.api_address for m in cluster.members if m.id != leader]
    cluster.leader(exclude=leader)
    with Client(survivors, timeout=10.0) as api:
        found = api.get("secret")
        assert found is not None
        assert found.value == "kept"


def test_a_node_with_certificates_of_another_ca_cannot_join_the_quorum(
    make_cluster: ClusterFactory, tmp_path: Path
) -> None:
    good, rogue = tmp_path / "good", tmp_path / "rogue"
    generate_dev_certs(good, [1, 2, 3])
    generate_dev_certs(rogue, [1, 2, 3])
    for name in ("node-3.pem", "node-3-key.pem"):  # node 3 holds a certificate of another CA
        (good / name).write_bytes((rogue / name).read_bytes())
    cluster = make_cluster(3, tls_dir=good)
    for node_id in (1, 2):
        cluster.start_node(node_id)
    cluster.start_node(3)
    cluster.wait_ready(nodes=[1, 2], timeout_seconds=30)
    with Client([cluster.api(1), cluster.api(2)], timeout=10.0) as api:
        api.put("k", "v")
    status = cluster.status(3)
    assert status is not None
    assert status["leader"] is None  # it never hears from the others
    assert status["applied_index"] == 0
    # The failed handshakes are logged by the good nodes (as soon as node 3 dials, or is dialled).
    deadline = time.monotonic() + 15
    while True:
        logs = [(cluster.data_dir / f"node-{i}.log").read_text() for i in (1, 2)]
        if any("TLS" in log and "certificate" in log for log in logs):
            break
        assert time.monotonic() < deadline, logs[0][-2000:]
        time.sleep(0.1)
