"""Real processes: a decision story on a 3-node cluster — conflicting proposals, votes under a
2/3 policy, resolution, execution, leader failover, rollback, explain; bad input refused."""

import http.client
import json

import pytest

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
    "policy": {"threshold": [2, 3]},
    "electorate": [{"principal": p} for p in TOKENS],
    "strategy": "priority",
}


def _call(
    cluster: LocalCluster,
    node: int,
    method: str,
    path: str,
    body: object = None,
    *,
    who: str | None = None,
) -> tuple[int, dict]:
    token = ADMIN if who == "ops" else (TOKENS[who] if who else None)
    return http_json(method, cluster.url(node, path), body, timeout_seconds=10.0, token=token)


def _ok(answer: tuple[int, dict], status: int = 200) -> dict:
    code, body = answer
    assert code == status, body
    return body


def test_conflicting_proposals_are_resolved_executed_and_rolled_back(
    make_cluster: ClusterFactory,
) -> None:
    cluster = make_cluster(3, extra_args=AUTH_ARGS)
    cluster.start()
    _ok(_call(cluster, 1, "PUT", "/v1/kv/svc/timeout", {"value": "10"}))
    _ok(_call(cluster, 2, "POST", "/v1/kinds", KIND, who="ops"))
    change = {"kind": "config", "deadline_seconds": 60}
    low = _ok(
        _call(
            cluster,
            3,
            "POST",
            "/v1/proposals",
            {**change, "changes": {"svc/timeout": "30"}, "priority": 1},
            who="ann",
        ),
        201,
    )["id"]
    high = _ok(
        _call(
            cluster,
            1,
            "POST",
            "/v1/proposals",
            {**change, "changes": {"svc/timeout": "45"}, "priority": 5},
            who="bob",
        ),
        201,
    )["id"]
    declared = _ok(_call(cluster, 3, "GET", "/v1/kinds"))["kinds"]
    assert declared[0]["policy"]["threshold"] == [2, 3]  # the policy is data, shown as stored
    conflicts = _ok(_call(cluster, 2, "GET", "/v1/conflicts"))["conflicts"]
    assert [c["id"] for c in conflicts] == [f"resource:{low}+{high}"]

    # A vote for someone else and a vote by a non-member are refused and change nothing.
    assert (
        _call(
            cluster,
            1,
            "POST",
            f"/v1/proposals/{low}/votes",
            {"choice": "approve", "voter": "cyd"},
            who="ann",
        )[0]
        == 403
    )
    _ok(_call(cluster, 1, "POST", f"/v1/proposals/{low}/votes", {"choice": "approve"}, who="bob"))
    _ok(_call(cluster, 2, "POST", f"/v1/proposals/{low}/votes", {"choice": "approve"}, who="cyd"))
    assert _ok(_call(cluster, 3, "GET", f"/v1/proposals/{low}"))["status"] == "rejected"

    leader = cluster.leader()
    cluster.kill(leader)  # the decision survives a failover mid-vote
    alive = next(m.id for m in cluster.members if m.id != leader)
    cluster.leader(exclude=leader)
    _ok(
        _call(
            cluster, alive, "POST", f"/v1/proposals/{high}/votes", {"choice": "approve"}, who="ann"
        )
    )
    _ok(
        _call(
            cluster, alive, "POST", f"/v1/proposals/{high}/votes", {"choice": "approve"}, who="cyd"
        )
    )
    assert _ok(_call(cluster, alive, "GET", f"/v1/proposals/{high}"))["status"] == "executed"
    assert _ok(_call(cluster, alive, "GET", "/v1/kv/svc/timeout"))["value"] == "45"
    late = _call(
        cluster, alive, "POST", f"/v1/proposals/{high}/votes", {"choice": "reject"}, who="bob"
    )
    assert late[0] == 409
    assert late[1]["refusal"] == "decided"

    cluster.start_node(leader)
    cluster.wait_ready(timeout_seconds=30)
    undo = _ok(
        _call(cluster, leader, "POST", "/v1/proposals", {**change, "rollback_of": high}, who="cyd"),
        201,
    )["id"]
    for who in ("ann", "bob"):
        _ok(
            _call(
                cluster,
                leader,
                "POST",
                f"/v1/proposals/{undo}/votes",
                {"choice": "approve"},
                who=who,
            )
        )
    assert _ok(_call(cluster, leader, "GET", "/v1/kv/svc/timeout"))["value"] == "10"
    assert _ok(_call(cluster, alive, "GET", f"/v1/proposals/{high}"))["status"] == "rolled_back"

    lines = _ok(_call(cluster, leader, "GET", f"/v1/decisions/{high}/explain"))["lines"]
    text = "\n".join(lines)
    for fragment in (
        "threshold: 2*3 >= 2*3 met",
        f"resolved by priority: winners ['{high}']",
        "executed at log index",
        "rolled_back",
        "replicas",
    ):
        assert fragment in text, text
    every_node = [line for line in lines if line.strip().startswith("node ")]
    assert len(every_node) == 3

    audit = _ok(_call(cluster, alive, "GET", f"/v1/audit?proposal_id={high}"))["events"]
    kinds = [e["type"] for e in audit]
    assert kinds[-4:] == ["approved", "executed", "refused", "rolled_back"], kinds  # late vote
    streamed = _first_watch_events(cluster, alive, count=4)
    assert [e["seq"] for e in streamed] == [1, 2, 3, 4]  # replayed from the start, in order


def _first_watch_events(cluster: LocalCluster, node: int, count: int) -> list[dict]:
    """Read `count` events of the decision watch stream, replaying from seq 1."""
    host, port = cluster.api(node).split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/v1/decisions/watch?from_seq=1")
        response = connection.getresponse()
        assert response.status == 200
        events: list[dict] = []
        while len(events) < count:
            line = response.readline().decode()
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
        return events
    finally:
        connection.close()


BAD_DECISION_INPUT = [
    ("POST", "/v1/proposals", {"kind": "config", "deadline_seconds": 60}, None, 401),
    ("POST", "/v1/proposals", {"kind": "config", "deadline_seconds": 60}, "nobody", 401),
    ("POST", "/v1/kinds", KIND, "ann", 403),
    ("POST", "/v1/proposals", {"kind": "unknown", "deadline_seconds": 60}, "ann", 400),
    ("POST", "/v1/proposals", {"kind": "config", "depends_on": ["p999"]}, "ann", 400),
    ("POST", "/v1/proposals", {"kind": "config", "params": {"x": "y" * 70_000}}, "ann", 400),
    ("POST", "/v1/proposals", {"kind": "config", "deadline_seconds": -1}, "ann", 400),
    ("POST", "/v1/proposals", {"kind": "config", "colour": "red"}, "ann", 400),
    ("POST", "/v1/proposals/p999/votes", {"choice": "approve"}, "ann", 404),
    ("POST", "/v1/proposals/{open}/votes", {"choice": "approve"}, "ops", 403),  # not a voter
    ("POST", "/v1/proposals/{open}/votes", {"choice": "maybe"}, "ann", 400),
    ("POST", "/v1/proposals/{open}/votes", {"choice": "approve", "extra": 1}, "ann", 400),
    ("POST", "/v1/kinds", {**KIND, "policy": {"threshold": [3, 2]}}, "ops", 400),
    ("POST", "/v1/kinds", {**KIND, "strategy": "coin_toss"}, "ops", 400),
    ("GET", "/v1/proposals?state=sideways", None, None, 400),
    ("GET", "/v1/decisions/p999/explain", None, None, 404),
]


def test_bad_decision_input_gets_a_clear_4xx_and_changes_nothing(
    make_cluster: ClusterFactory,
) -> None:
    cluster = make_cluster(3, extra_args=AUTH_ARGS)
    cluster.start()
    _ok(_call(cluster, 1, "POST", "/v1/kinds", KIND, who="ops"))
    proposal = {"kind": "config", "changes": {"k": "v"}, "deadline_seconds": 120}
    open_id = _ok(_call(cluster, 1, "POST", "/v1/proposals", proposal, who="ann"), 201)["id"]
    before = _ok(_call(cluster, 1, "GET", f"/v1/proposals/{open_id}"))
    for method, template, body, who, status in BAD_DECISION_INPUT:
        path = template.replace("{open}", open_id)
        token = {"nobody": "not-a-token-at-all", **TOKENS, "ops": ADMIN}.get(who) if who else None
        code, answer = http_json(
            method, cluster.url(2, path), body, timeout_seconds=10.0, token=token
        )
        assert code == status, (path, body, answer)
        assert "code" in answer
    after = _ok(_call(cluster, 1, "GET", f"/v1/proposals/{open_id}"))
    assert after["vote_list"] == before["vote_list"] == []
    assert after["status"] == "open"
    assert len(_ok(_call(cluster, 1, "GET", "/v1/proposals"))["proposals"]) == 1
