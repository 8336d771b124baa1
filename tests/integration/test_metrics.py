"""Real processes: `GET /metrics` on every node of a 3-node cluster parses with
prometheus_client's parser and shows plausible values after writes and a decision; each alert
of `GET /v1/alerts` is triggered by the condition it describes; the webhook hears fire and
resolve. Thresholds come from a TOML file passed with `--config`."""

import asyncio
import signal
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from conclave.runtime.local_cluster import LocalCluster, http_json

from .conftest import ClusterFactory

pytestmark = pytest.mark.slow

TOKENS = {"ann": "ann-token-0001", "bob": "bob-token-0001", "cyd": "cyd-token-0001"}
ADMIN = "ops-token-0001"
AUTH_ARGS = (
    *(
        arg
        for principal, token in [*TOKENS.items(), ("ops", ADMIN)]
        for arg in ("--token", f"{token}={principal}")
    ),
    "--admin",
    "ops",
)
KIND = {
    "kind": "config",
    "policy": {"threshold": [2, 3], "quorum": [2, 3]},
    "electorate": [{"principal": p} for p in TOKENS],
    "strategy": "priority",
}
WAIT_SECONDS = 30.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _config(tmp_path: Path, **settings: object) -> tuple[str, ...]:
    lines = []
    for name, value in settings.items():
        lines.append(f"{name} = {value!r}" if isinstance(value, str) else f"{name} = {value}")
    path = tmp_path / "alerts.toml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n")
    return ("--config", str(path))


def _call(
    cluster: LocalCluster, node: int, method: str, path: str, body: object = None, *, who: str = ""
) -> tuple[int, Any]:
    token = ADMIN if who == "ops" else TOKENS.get(who)
    return http_json(method, cluster.url(node, path), body, timeout_seconds=10.0, token=token)


def _ok(answer: tuple[int, Any], status: int = 200) -> Any:
    code, body = answer
    assert code == status, body
    return body


def _scrape(cluster: LocalCluster, node: int) -> tuple[str, Samples]:
    with urllib.request.urlopen(cluster.url(node, "/metrics"), timeout=5) as response:  # noqa: S310
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return content_type, samples


def _eventually(what: str, check: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not seen in {timeout}s (last: {last!r})")


def _alerts(cluster: LocalCluster, node: int) -> dict[str, Any]:
    return _ok(http_json("GET", cluster.url(node, "/v1/alerts"), timeout_seconds=5.0))


def _active(cluster: LocalCluster, node: int, name: str) -> dict[str, Any] | None:
    return next((a for a in _alerts(cluster, node)["active"] if a["name"] == name), None)


def _resolved(cluster: LocalCluster, node: int, name: str) -> dict[str, Any] | None:
    return next((a for a in _alerts(cluster, node)["resolved"] if a["name"] == name), None)


def _propose(
    cluster: LocalCluster, node: int, who: str, changes: dict[str, str], **extra: object
) -> str:
    body = {"kind": "config", "deadline_seconds": 60, "changes": changes, **extra}
    return str(_ok(_call(cluster, node, "POST", "/v1/proposals", body, who=who), 201)["id"])


def _vote(cluster: LocalCluster, node: int, pid: str, who: str) -> None:
    _ok(_call(cluster, node, "POST", f"/v1/proposals/{pid}/votes", {"choice": "approve"}, who=who))


# -- a webhook receiver on its own event loop --------------------------------------------------


class Webhook:
    """A tiny aiohttp server on 127.0.0.1 that records the JSON bodies POSTed to /hook."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.bodies.append(body)
        return web.Response(status=204)

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    def start(self) -> None:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def seen(self, node: int, status: str, name: str) -> bool:
        with self._lock:
            return any(
                b["node"] == node and b["status"] == status and b["alert"]["name"] == name
                for b in self.bodies
            )


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.start()
    yield hook
    hook.stop()


# -- metrics ------------------------------------------------------------------------------------


def test_every_node_exposes_the_metrics_after_writes_and_a_decision(
    make_cluster: ClusterFactory, tmp_path: Path
) -> None:
    config = _config(tmp_path, alert_conflicts_per_minute_max=0)
    cluster = make_cluster(3, extra_args=(*AUTH_ARGS, "--snapshot-entries", "10", *config))
    cluster.start()
    for i in range(15):
        _ok(_call(cluster, 1 + i % 3, "PUT", f"/v1/kv/app/k{i}", {"value": str(i)}))
    _ok(_call(cluster, 2, "POST", "/v1/kinds", KIND, who="ops"))
    low = _propose(cluster, 3, "ann", {"svc/timeout": "30"}, priority=1)
    high = _propose(cluster, 1, "bob", {"svc/timeout": "45"}, priority=5)
    _vote(cluster, 2, high, "ann")
    _vote(cluster, 3, high, "cyd")
    assert _ok(_call(cluster, 1, "GET", f"/v1/proposals/{high}"))["status"] == "executed"
    assert _ok(_call(cluster, 1, "GET", f"/v1/proposals/{low}"))["status"] == "rejected"

    leader = cluster.leader()
    approved = ("conclave_decision_duration_seconds_count", (("outcome", "approved"),))
    scrapes: dict[int, Samples] = {}
    for node in (1, 2, 3):
        content_type, _ = _scrape(cluster, node)
        assert content_type.startswith("text/plain")
        scrapes[node] = _eventually(
            f"node {node} applied the decision",
            lambda node=node: (s := _scrape(cluster, node)[1]).get(approved) == 1 and s,
        )
    assert sum(s["conclave_server_is_leader", ()] for s in scrapes.values()) == 1
    for node, s in scrapes.items():
        peers = [str(p) for p in (1, 2, 3) if p != node]
        assert s["conclave_server_has_leader", ()] == 1
        assert s["conclave_server_leader_changes_seen_total", ()] >= 1
        assert s["conclave_server_proposals_committed_total", ()] >= 20
        assert s["conclave_server_proposals_applied_total", ()] >= 20
        assert s["conclave_server_proposals_pending", ()] == 0
        assert s["conclave_server_proposals_failed_total", ()] == 0
        assert s["conclave_disk_wal_fsync_duration_seconds_count", ()] > 0
        assert s["conclave_disk_wal_fsync_duration_seconds_sum", ()] > 0
        assert s["conclave_disk_snapshot_duration_seconds_count", ()] >= 1
        for peer in peers:
            # Followers talk to the leader; to each other only when one of them campaigned.
            talks = node == leader or peer == str(leader)
            sent = s["conclave_network_peer_sent_bytes_total", (("peer", peer),)]
            received = s["conclave_network_peer_received_bytes_total", (("peer", peer),)]
            assert (sent > 0 and received > 0) if talks else (sent >= 0 and received >= 0)
        votes = ("conclave_decision_votes_total", (("choice", "approve"), ("kind", "config")))
        assert s[votes] == 2
        assert s["conclave_decision_proposals_total", (("kind", "config"),)] == 2
        assert s["conclave_decision_conflicts_total", (("type", "resource"),)] == 1
        resolution = (("strategy", "priority"), ("type", "resource"))
        assert s["conclave_decision_conflict_resolutions_total", resolution] == 1
        assert s["conclave_decision_duration_seconds_count", (("outcome", "rejected"),)] == 1
        assert 0 < s["conclave_decision_duration_seconds_sum", (("outcome", "approved"),)] < 60
        assert s["conclave_decision_executions_total", (("result", "executed"),)] == 1
        assert s["conclave_decision_rollbacks_total", ()] == 0
        if node == leader:
            for peer in peers:
                assert s["conclave_server_follower_lag_entries", (("peer", peer),)] >= 0
                rtt = ("conclave_network_peer_round_trip_time_seconds_count", (("peer", peer),))
                assert s[rtt] > 0
        else:
            assert not any(k[0] == "conclave_server_follower_lag_entries" for k in s)
        # One conflict in the last minute is over a threshold of 0 conflicts per minute.
        alert = _eventually(
            f"conflict-rate alert on node {node}",
            lambda node=node: _active(cluster, node, "decision_conflict_rate"),
        )
        assert (alert["value"], alert["threshold"], alert["severity"]) == (1, 0, "warning")


# -- alerts -------------------------------------------------------------------------------------


def test_no_leader_and_open_overdue_proposal_alerts_reach_the_webhook(
    make_cluster: ClusterFactory, tmp_path: Path, webhook: Webhook
) -> None:
    config = _config(
        tmp_path,
        alert_no_leader_seconds=1.0,
        alert_stuck_proposal_grace_seconds=1.0,
        alert_webhook_url=webhook.url,
    )
    cluster = make_cluster(3, extra_args=(*AUTH_ARGS, *config))
    cluster.start()
    _ok(_call(cluster, 1, "POST", "/v1/kinds", KIND, who="ops"))
    survivor = 3
    pid = _propose(cluster, survivor, "ann", {"svc/x": "1"}, deadline_seconds=2)
    _eventually(
        "the proposal on the survivor",
        lambda: (
            _call(cluster, survivor, "GET", f"/v1/proposals/{pid}?consistency=serializable")[0]
            == 200
        ),
    )
    cluster.kill(1)
    cluster.kill(2)
    alert = _eventually(
        "no_leader on the survivor", lambda: _active(cluster, survivor, "no_leader")
    )
    assert alert["severity"] == "critical"
    assert alert["value"] > 1.0
    assert alert["threshold"] == 1.0
    # Nobody can propose the expiry: the proposal stays open past its deadline.
    stuck = _eventually(
        "proposal_stuck on the survivor", lambda: _active(cluster, survivor, "proposal_stuck")
    )
    assert pid in stuck["message"]
    _eventually("webhook heard no_leader", lambda: webhook.seen(survivor, "firing", "no_leader"))
    cluster.start_node(1)
    _eventually("a leader again", lambda: _resolved(cluster, survivor, "no_leader"))
    assert _active(cluster, survivor, "no_leader") is None
    _eventually(
        "webhook heard the resolve", lambda: webhook.seen(survivor, "resolved", "no_leader")
    )


def test_slow_fsync_and_leader_changes_alerts(make_cluster: ClusterFactory, tmp_path: Path) -> None:
    config = _config(tmp_path, alert_fsync_p99_seconds=1e-9, alert_leader_changes_max=2)
    cluster = make_cluster(3, extra_args=config)
    cluster.start()
    for i in range(5):
        _ok(_call(cluster, 1, "PUT", f"/v1/kv/k{i}", {"value": "v"}))
    for node in (1, 2, 3):
        alert = _eventually(
            f"fsync alert on node {node}",
            lambda node=node: _active(cluster, node, "wal_fsync_slow"),
        )
        assert alert["value"] > alert["threshold"] == 1e-9
    for _ in range(2):
        old = cluster.leader()
        # Retried: on a loaded machine a transfer may time out or race an election.
        _eventually(
            "a leadership transfer",
            lambda old=old: _call(cluster, old, "POST", "/v1/leader/transfer", {})[0] == 200,
        )
        cluster.leader(exclude=old)
    for node in (1, 2, 3):
        alert = _eventually(
            f"leader-changes alert on node {node}",
            lambda node=node: _active(cluster, node, "leader_changes"),
        )
        assert alert["value"] >= 3
        assert alert["threshold"] == 2


def test_follower_lag_alert_on_the_leader_while_a_follower_is_stopped(
    make_cluster: ClusterFactory, tmp_path: Path
) -> None:
    cluster = make_cluster(3, extra_args=_config(tmp_path, alert_follower_lag_entries_max=5))
    cluster.start()
    leader = cluster.leader()
    follower = next(m.id for m in cluster.members if m.id != leader)
    cluster.signal(follower, signal.SIGSTOP)
    try:
        for i in range(20):
            _ok(_call(cluster, leader, "PUT", f"/v1/kv/k{i}", {"value": "v"}))
        alert = _eventually("lag alert", lambda: _active(cluster, leader, "follower_lag"))
        assert f"node {follower} by" in alert["message"]
        assert alert["value"] > 5
    finally:
        cluster.signal(follower, signal.SIGCONT)
    _eventually("the lag alert resolves", lambda: _resolved(cluster, leader, "follower_lag"))
    assert _active(cluster, follower, "follower_lag") is None  # a follower never raises it


def test_a_proposal_expiring_without_quorum_raises_the_stuck_alert(
    make_cluster: ClusterFactory, tmp_path: Path
) -> None:
    cluster = make_cluster(3, extra_args=AUTH_ARGS)
    cluster.start()
    _ok(_call(cluster, 1, "POST", "/v1/kinds", KIND, who="ops"))
    pid = _propose(cluster, 2, "ann", {"svc/y": "1"}, deadline_seconds=1)
    _eventually(
        "the proposal expired",
        lambda: _ok(_call(cluster, 1, "GET", f"/v1/proposals/{pid}"))["status"] == "expired",
    )
    for node in (1, 2, 3):
        alert = _eventually(
            f"stuck alert on node {node}",
            lambda node=node: _active(cluster, node, "proposal_stuck"),
        )
        assert f"expired without quorum: {pid}" in alert["message"]
    _, samples = _scrape(cluster, 1)
    assert samples["conclave_decision_duration_seconds_count", (("outcome", "expired"),)] == 1
