"""Real processes: SIGKILL the leader again and again under write load; nothing acknowledged
is lost, the history is linearizable, and every node converges (issue 3, Done when)."""

import asyncio
import time

import pytest

from conclave.client import AsyncClient
from conclave.runtime.local_cluster import LocalCluster
from conclave.sim.history import History
from conclave.sim.linearizability import check_linearizability

from .conftest import ClusterFactory
from .workload import SHARED_KEYS, Workload, now_us

pytestmark = pytest.mark.slow

KILL_CYCLES = 20


async def _kill_leaders(cluster: LocalCluster, cycles: int, load_seconds: float) -> list[int]:
    killed: list[int] = []
    for _ in range(cycles):
        leader = await asyncio.to_thread(cluster.leader, timeout_seconds=30)
        await asyncio.sleep(load_seconds)  # let writes flow through this leader
        cluster.kill(leader)
        killed.append(leader)
        await asyncio.to_thread(cluster.leader, timeout_seconds=30, exclude=leader)
        cluster.start_node(leader)  # back as a follower, so every cycle has 3 nodes
    return killed


async def _final_reads(cluster: LocalCluster, history: History) -> None:
    async with AsyncClient(cluster.endpoints, timeout=10.0) as api:
        for key in SHARED_KEYS:
            op = history.invoke_get(client=999, key=key, at_us=now_us())
            found = await api.get(key)
            history.ok(op, at_us=now_us(), output=None if found is None else found.value)


async def _converged_contents(cluster: LocalCluster) -> list[dict[str, str]]:
    """Each node's whole store, read locally once every node applied the same index."""
    deadline = time.monotonic() + 30
    while True:
        statuses = [cluster.status(i) for i in cluster.running()]
        applied = {s["applied_index"] for s in statuses if s is not None}
        if None not in statuses and len(applied) == 1:
            break
        assert time.monotonic() < deadline, f"nodes did not converge: {statuses}"
        await asyncio.sleep(0.1)
    contents = []
    for node_id in cluster.running():
        async with AsyncClient([cluster.api(node_id)], timeout=10.0) as api:
            items = {}
            after = None
            while True:
                page = await api.range("", after=after, consistency="serializable")
                items.update({kv.key: kv.value for kv in page.items})
                if not page.more:
                    break
                after = page.items[-1].key
            contents.append(items)
    return contents


def test_twenty_leader_kills_under_load_lose_nothing(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(3)
    cluster.start()

    async def scenario() -> Workload:
        workload = Workload(cluster.endpoints, clients=4)
        load = asyncio.create_task(workload.run())
        try:
            killed = await _kill_leaders(cluster, KILL_CYCLES, load_seconds=0.4)
        finally:
            workload.stop()
            await load
        assert len(killed) == KILL_CYCLES
        await asyncio.to_thread(cluster.wait_ready, timeout_seconds=30)
        await _final_reads(cluster, workload.history)
        contents = await _converged_contents(cluster)
        assert all(c == contents[0] for c in contents), "nodes hold different data"
        lost = {k: v for k, v in workload.acknowledged_unique.items() if contents[0].get(k) != v}
        assert not lost, f"acknowledged writes lost: {sorted(lost)[:10]}"
        return workload

    workload = asyncio.run(scenario())
    assert workload.counts.get("write_ok", 0) > 100, workload.counts
    result = check_linearizability(workload.history)
    assert result.ok, result.explanation()
    print(f"\n{KILL_CYCLES} leader kills: {workload.counts}, {len(workload.history)} operations")
