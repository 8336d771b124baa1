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

import typer
from rich.console import Console
from rich.table import Table

from conclave.client import Client
from conclave.runtime.local_cluster import LocalCluster
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


@app.command("demo")
def demo(
    keys: int = typer.Option(100, min=1, max=10_000, help="How many keys to write."),
) -> None:
    """A real 3-node cluster: write, SIGKILL the leader, watch the failover, check the data."""
    console = Console()
    with tempfile.TemporaryDirectory(prefix="conclave-demo-") as data:
        cluster = LocalCluster(data_dir=Path(data), size=3, extra_args=("--tick-interval-ms", "20"))
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

            console.rule("6. stop")
        codes = cluster.stop()
        _fact(
            console,
            all(code == 0 for code in codes.values()),
            f"every process stopped cleanly {codes}",
        )
