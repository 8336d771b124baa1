"""Real processes: a follower removed, a new node added and caught up by a snapshot."""

import pytest

from conclave.client import Client
from conclave.runtime.local_cluster import http_json

from .conftest import ClusterFactory

pytestmark = pytest.mark.slow


def test_remove_a_follower_and_add_a_new_node_caught_up_by_snapshot(
    make_cluster: ClusterFactory,
) -> None:
    # Compact every 50 entries, so the new node cannot be served from the log alone.
    cluster = make_cluster(3, extra_args=("--snapshot-entries", "50"))
    cluster.start()
    leader = cluster.leader()
    follower = next(i for i in cluster.running() if i != leader)
    with Client(cluster.endpoints, timeout=10.0) as api:
        for n in range(200):
            api.put(f"m/{n:03d}", str(n))
        api.remove_member(follower)
        assert follower not in api.status().voters
        cluster.stop_node(follower)
        status = cluster.status(leader)
        assert status is not None
        assert status["snapshot_index"] > 0

        new = cluster.add_node(4)
        added = api.add_member(new.id, new.peer_address, new.api_address)
        assert added.voter
        for n in range(200, 220):
            api.put(f"m/{n:03d}", str(n))

    cluster.wait_ready(nodes=[4], timeout_seconds=30)
    status = cluster.status(4)
    assert status is not None
    assert status["voters"] == sorted([i for i in (1, 2, 3, 4) if i != follower])
    assert status["snapshot_index"] > 0  # it started from the leader's snapshot
    with Client([cluster.api(4)], timeout=10.0) as one:
        page = one.range("m/", limit=1000, consistency="serializable")
        assert len(page.items) == 220
    # The removed node's directory entry is gone from every member.
    code, body = http_json("GET", cluster.url(leader, "/v1/status"))
    assert code == 200
    assert follower not in [m["id"] for m in body["members"]]
