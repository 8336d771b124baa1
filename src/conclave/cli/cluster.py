"""`conclave cluster up|demo`: a local cluster of separate `conclave serve` processes.

Rules: thin over `conclave.runtime.local_cluster`. `demo` checks every fact it prints (a
false one exits with code 1) and works in a temporary folder it removes. `up` prints the
endpoints once every node is ready, waits for Ctrl-C (or SIGTERM), then stops every process
it started. Data stays in `--data` (default ./conclave-cluster), so `cluster up` again
restarts the same cluster.
"""

import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final

import typer
from rich.console import Console
from rich.table import Table

from conclave.client import Client
from conclave.runtime.local_cluster import LocalCluster, http_json
from conclave.runtime.tls import generate_dev_certs, node_cert_file

app = typer.Typer(help="Run a local cluster.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Run a local cluster."""


def _dev_certs(directory: Path, nodes: int, console: Console) -> Path:
    """Certificates for nodes 1..n, created once and reused on the next `up`."""
    if not all(node_cert_file(directory, i).exists() for i in range(1, nodes + 1)):
        generate_dev_certs(directory, list(range(1, nodes + 1)), force=True)
        console.print(f"created development certificates in {directory}")
    return directory


@app.command("up")
def up(
    nodes: int = typer.Option(3, "-n", "--nodes", min=1, max=9, help="How many nodes."),
    data: Path = typer.Option(Path("conclave-cluster"), "--data", help="Data folder."),
    base_port: int = typer.Option(
        7000, help="API of node i on BASE+i, its peer port on BASE+100+i."
    ),
    cluster_id: str = typer.Option("conclave-local", help="Cluster name."),
    tick_interval_ms: int = typer.Option(50, help="One Raft tick."),
    tls: bool = typer.Option(
        False, help="Mutual TLS between nodes (development certificates in DATA/certs)."
    ),
) -> None:
    """Start N nodes on 127.0.0.1 and keep them running until Ctrl-C."""
    console = Console()
    tls_dir = _dev_certs(data / "certs", nodes, console) if tls else None
    cluster = LocalCluster(
        data_dir=data,
        size=nodes,
        base_port=base_port,
        cluster_id=cluster_id,
        extra_args=("--tick-interval-ms", str(tick_interval_ms)),
        tls_dir=tls_dir,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        console.print(f"starting {nodes} nodes in {data} ...")
        cluster.start()
        leader = cluster.leader()
        for member in cluster.members:
            role = "leader" if member.id == leader else "follower"
            console.print(
                f"  node {member.id}  api http://{member.api_address}  "
                f"peers {member.peer_address}  ({role})  log {data}/node-{member.id}.log"
            )
        endpoints = ",".join(cluster.endpoints)
        console.print(f"ready. try:  conclave kv put hello world --endpoints {endpoints}")
        console.print("Ctrl-C stops the cluster.")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping ...")
        codes = cluster.stop()
        console.print(f"stopped: exit codes {codes}")


__all__ = ["app"]


def _fact(console: Console, ok: bool, text: str) -> None:
    """Print a checked fact; a false one ends the demo with exit code 1."""
    if not ok:
        console.print(f"[red]FAILED:[/red] {text}")
        raise typer.Exit(1)
    console.print(f"  [green]ok[/green]  {text}")


def _status_table(cluster: LocalCluster) -> Table:
    table = Table("node", "role", "term", "leader", "commit", "applied", "api")
    for member in cluster.members:
        status = cluster.status(member.id)
        if status is None:
            table.add_row(str(member.id), "[red]down", "", "", "", "", member.api_address)
            continue
        table.add_row(
            str(member.id),
            status["role"],
            str(status["term"]),
            str(status["leader"]),
            str(status["commit_index"]),
            str(status["applied_index"]),
            member.api_address,
        )
    return table


def _converged(cluster: LocalCluster) -> bool:
    statuses = [cluster.status(m.id) for m in cluster.members]
    return None not in statuses and len({s["applied_index"] for s in statuses if s}) == 1


# Demo principals: three voters, two services that propose, one admin. Tokens are demo-only.
_DEMO_TOKENS: Final = {
    p: f"demo-token-{p}" for p in ("ann", "bob", "cyd", "checkout", "billing", "ops")
}
_DEMO_AUTH: Final = (
    *(arg for p, t in _DEMO_TOKENS.items() for arg in ("--token", f"{t}={p}")),
    "--admin",
    "ops",
)


def _api(cluster: LocalCluster, method: str, path: str, body: object, who: str | None) -> Any:
    """One API call as `who` through any live node; a refused call ends the demo."""
    token = _DEMO_TOKENS[who] if who else None
    for node_id in cluster.running():
        try:
            code, answer = http_json(method, cluster.url(node_id, path), body, 10.0, token)
        except OSError:
            continue
        if code >= 400:
            raise typer.Exit(_fail(f"{method} {path} answered {code}: {answer}"))
        return answer
    raise typer.Exit(_fail("no node answered"))


def _fail(text: str) -> int:
    Console().print(f"[red]FAILED:[/red] {text}")
    return 1


def _vote(console: Console, cluster: LocalCluster, pid: str, who: str, why: str) -> str:
    body = {"choice": "approve", "justification": why}
    status: str = _api(cluster, "POST", f"/v1/proposals/{pid}/votes", body, who)["status"]
    console.print(f"      {who} approves {pid} ({why}) -> {status}")
    return status


def _decision_story(console: Console, cluster: LocalCluster) -> None:
    console.rule("6. a decision: two services want different pool sizes")
    _api(cluster, "PUT", "/v1/kv/config/db.pool_size", {"value": "10"}, None)
    kind = {
        "kind": "config",
        "policy": {"threshold": [2, 3], "proposer_may_approve": False},
        "electorate": [{"principal": p} for p in ("ann", "bob", "cyd")],
        "strategy": "priority",
    }
    _api(cluster, "POST", "/v1/kinds", kind, "ops")
    _fact(console, True, "kind 'config': 2/3 of ann, bob, cyd; conflicts resolved by priority")
    change = {"kind": "config", "deadline_seconds": 120}
    small = {**change, "changes": {"config/db.pool_size": "20"}, "priority": 1}
    big = {**change, "changes": {"config/db.pool_size": "50"}, "priority": 5}
    p_small = _api(cluster, "POST", "/v1/proposals", small, "checkout")["id"]
    p_big = _api(cluster, "POST", "/v1/proposals", big, "billing")["id"]
    conflicts = _api(cluster, "GET", "/v1/conflicts", None, None)["conflicts"]
    _fact(
        console,
        len(conflicts) == 1,
        f"checkout proposed {p_small} (20), billing {p_big} (50): "
        f"conflict {conflicts[0]['id'] if conflicts else '?'} detected",
    )
    _vote(console, cluster, p_small, "ann", "small is safer")
    lost = _vote(console, cluster, p_small, "bob", "fine by me")
    _fact(console, lost == "rejected", f"{p_small} reached 2/3 but lost the conflict to priority 5")
    _vote(console, cluster, p_big, "bob", "billing needs it")
    done = _vote(console, cluster, p_big, "cyd", "agreed")
    value = _api(cluster, "GET", "/v1/kv/config/db.pool_size", None, None)["value"]
    _fact(console, done == "executed" and value == "50", f"{p_big} executed: pool_size = {value}")
    undo = _api(cluster, "POST", "/v1/proposals", {**change, "rollback_of": p_big}, "checkout")[
        "id"
    ]
    _vote(console, cluster, undo, "ann", "latency went up")
    _vote(console, cluster, undo, "cyd", "roll back")
    value = _api(cluster, "GET", "/v1/kv/config/db.pool_size", None, None)["value"]
    _fact(console, value == "10", f"rollback {undo} executed: pool_size = {value} again")
    console.rule(f"conclave decisions explain {p_big}")
    for line in _api(cluster, "GET", f"/v1/decisions/{p_big}/explain", None, None)["lines"]:
        console.print(f"  {line}", markup=False, highlight=False)


@app.command("demo")
def demo(
    keys: int = typer.Option(100, min=1, max=10_000, help="How many keys to write."),
) -> None:
    """A real 3-node cluster: write, SIGKILL the leader, watch the failover, check the data."""
    console = Console()
    with tempfile.TemporaryDirectory(prefix="conclave-demo-") as data:
        cluster = LocalCluster(
            data_dir=Path(data), size=3, extra_args=("--tick-interval-ms", "20", *_DEMO_AUTH)
        )
        with cluster:
            console.rule("1. three real processes on 127.0.0.1")
            cluster.start()
            leader = cluster.leader()
            console.print(_status_table(cluster))
            _fact(console, True, f"node {leader} was elected leader")

            console.rule(f"2. write {keys} keys through any node (followers forward)")
            with Client(cluster.endpoints, timeout=10.0) as client:
                for n in range(keys):
                    client.put(f"demo/{n:05d}", f"value-{n}")
            _fact(console, True, f"{keys} writes acknowledged (each fsynced on a majority)")

            console.rule(f"3. kill -9 the leader (node {leader})")
            killed_at = time.monotonic()
            cluster.kill(leader)
            new_leader = cluster.leader(exclude=leader)
            failover_ms = (time.monotonic() - killed_at) * 1000
            console.print(_status_table(cluster))
            _fact(console, new_leader != leader, f"node {new_leader} took over")
            console.print(f"      failover took {failover_ms:.0f} ms (measured, wall clock)")

            console.rule("4. every acknowledged write is still there")
            survivors = [m.api_address for m in cluster.members if m.id != leader]
            with Client(survivors, timeout=10.0) as client:
                found = {kv.key: kv.value for kv in client.items("demo/")}
                client.put("demo/after-failover", "yes")
            expected = {f"demo/{n:05d}": f"value-{n}" for n in range(keys)}
            _fact(
                console,
                all(found.get(k) == v for k, v in expected.items()),
                f"{keys}/{keys} read back",
            )

            console.rule(f"5. node {leader} restarts from its WAL and catches up")
            cluster.start_node(leader)
            cluster.wait_ready(nodes=[leader])
            deadline = time.monotonic() + 30
            while not _converged(cluster) and time.monotonic() < deadline:
                time.sleep(0.1)
            console.print(_status_table(cluster))
            with Client([cluster.api(leader)], timeout=10.0) as client:
                late = client.get("demo/after-failover", consistency="serializable")
            _fact(console, late is not None, "it has the write made while it was down")

            _decision_story(console, cluster)

            console.rule("7. stop")
        codes = cluster.stop()
        _fact(
            console,
            all(code == 0 for code in codes.values()),
            f"every process stopped cleanly {codes}",
        )
