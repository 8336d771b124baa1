"""`conclave serve`: run one node (Raft core, WAL, peer transport, HTTP API) until stopped.

Rules: settings come from flags, `--config FILE` (TOML) and `CONCLAVE_*` variables, merged and
validated once by `conclave.runtime.config` (all problems at once, exit code 2). SIGINT and
SIGTERM stop the node cleanly (exit 0); a fatal storage error stops it with exit code 1.
uvloop runs the event loop when it is installed.
"""

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from conclave.api import NodeServer
from conclave.runtime.config import load_settings
from conclave.runtime.node import ConclaveNode
from conclave.runtime.settings import NodeSettings, SettingsError
from conclave.storage import StorageError


def run_event_loop(main: Any) -> Any:
    """Run a coroutine on uvloop when available, else on asyncio's default loop."""
    try:
        import uvloop  # noqa: PLC0415 - optional accelerator
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def _serve(settings: NodeSettings) -> int:
    server = NodeServer(ConclaveNode(settings))
    log = logging.getLogger("conclave.serve")
    try:
        await server.start()
    except (StorageError, OSError) as exc:
        log.critical("node %d cannot start: %s", settings.node_id, exc)
        await server.stop()
        return 1
    own = settings.own
    log.info(
        "node %d serving: api http://%s  peers %s  cluster %r  data %s",
        settings.node_id,
        own.api_address,
        own.peer_address,
        settings.cluster_id,
        settings.data_dir,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    waiter = asyncio.create_task(server.node.wait_stopped())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    waiter.cancel()
    await server.stop()
    if server.node.failure is not None:
        log.critical("node %d stopped after a fatal error", settings.node_id)
        return 1
    log.info("node %d stopped", settings.node_id)
    return 0


def serve(
    node_id: int | None = typer.Option(None, "--id", help="This node's id."),
    data_dir: Path | None = typer.Option(None, "--data", help="Data folder [./conclave-data]."),
    member: list[str] | None = typer.Option(
        None,
        "--member",
        help="A member as ID=PEER_HOST:PORT,API_HOST:PORT (repeat for each; include this node).",
    ),
    cluster_id: str | None = typer.Option(None, "--cluster-id", help="Cluster name."),
    join: bool | None = typer.Option(None, "--join", help="Join an existing cluster."),
    peer_listen: str | None = typer.Option(None, help="Listen for peers on HOST:PORT."),
    api_listen: str | None = typer.Option(None, help="Serve the API on HOST:PORT."),
    tick_interval_ms: int | None = typer.Option(None, help="One Raft tick [50]."),
    snapshot_entries: int | None = typer.Option(None, help="Compact every N entries [10000]."),
    request_timeout_seconds: float | None = typer.Option(None, help="Request timeout [5]."),
    forward: bool | None = typer.Option(
        None, "--forward/--no-forward", help="Followers forward writes to the leader [on]."
    ),
    tls_cert: Path | None = typer.Option(None, help="Node certificate for mutual TLS."),
    tls_key: Path | None = typer.Option(None, help="Node private key for mutual TLS."),
    tls_ca: Path | None = typer.Option(None, help="CA certificate for mutual TLS."),
    fsync: bool | None = typer.Option(
        None, "--fsync/--no-fsync", help="fsync the WAL [on]; off is NOT durable."
    ),
    token: list[str] | None = typer.Option(
        None, "--token", help="An API token for decisions, TOKEN=PRINCIPAL (repeat)."
    ),
    admin: list[str] | None = typer.Option(
        None, "--admin", help="A principal allowed to declare decision kinds (repeat)."
    ),
    config: Path | None = typer.Option(None, "--config", help="TOML file of settings."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run one node until SIGINT/SIGTERM."""
    flags = {
        "node_id": node_id,
        "data_dir": data_dir,
        "members": member or None,
        "cluster_id": cluster_id,
        "join": join,
        "peer_listen": peer_listen,
        "api_listen": api_listen,
        "tick_interval_ms": tick_interval_ms,
        "snapshot_entries": snapshot_entries,
        "request_timeout_seconds": request_timeout_seconds,
        "forward_to_leader": forward,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "tls_ca": tls_ca,
        "fsync": fsync,
        "tokens": token or None,
        "admins": admin or None,
    }
    try:
        settings = load_settings(flags, config_file=config, environ=os.environ)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    raise typer.Exit(run_event_loop(_serve(settings)))


__all__ = ["run_event_loop", "serve"]
