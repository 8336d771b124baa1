"""Operator commands over the HTTP API: `kv put|get|del|list|watch`, `status`, `member add|remove`,
`leader transfer`.

Rules: thin over `conclave.client.Client`. Endpoints come from `--endpoints` (comma-separated)
or `CONCLAVE_ENDPOINTS`, default 127.0.0.1:7001. Results print as JSON (one object per line for
watch) so they can be piped; errors print `error: <code>: <message>` and exit with code 1.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from conclave.client import Client, ConclaveClientError, Consistency

T = TypeVar("T")

ENDPOINTS = typer.Option(
    "127.0.0.1:7001", "--endpoints", envvar="CONCLAVE_ENDPOINTS", help="host:port,host:port"
)
TIMEOUT = typer.Option(10.0, "--timeout", help="Seconds per command, retries included.")

kv_app = typer.Typer(help="Read and write keys.", no_args_is_help=True)
member_app = typer.Typer(help="Change the membership.", no_args_is_help=True)
leader_app = typer.Typer(help="Leadership.", no_args_is_help=True)


@contextmanager
def _client(endpoints: str, timeout: float) -> Iterator[Client]:
    try:
        with Client([e for e in endpoints.split(",") if e], timeout=timeout) as client:
            yield client
    except ConclaveClientError as exc:
        typer.echo(f"error: {exc.code}: {exc}", err=True)
        raise typer.Exit(1) from None


def _print(obj: Any) -> None:
    if hasattr(obj, "__dataclass_fields__"):
        obj = asdict(obj)
        obj.pop("raw", None)
    typer.echo(json.dumps(obj, ensure_ascii=False))


def _run(endpoints: str, timeout: float, action: Callable[[Client], T]) -> T:
    with _client(endpoints, timeout) as client:
        return action(client)


@kv_app.command("put")
def put(
    key: str,
    value: str,
    prev_value: str | None = typer.Option(None, help="Only if the key holds this value."),
    prev_revision: int | None = typer.Option(
        None, help="Only if mod_revision is this (0: absent)."
    ),
    endpoints: str = ENDPOINTS,
    timeout: float = TIMEOUT,
) -> None:
    """Set KEY to VALUE (compare-and-set with --prev-value / --prev-revision)."""
    if prev_value is None and prev_revision is None:
        _print(_run(endpoints, timeout, lambda c: c.put(key, value)))
        return
    result = _run(
        endpoints,
        timeout,
        lambda c: c.cas(key, value, prev_value=prev_value, prev_revision=prev_revision),
    )
    _print(result)
    if not result.succeeded:
        raise typer.Exit(1)


@kv_app.command("get")
def get(
    key: str,
    serializable: bool = typer.Option(False, help="Read this node's copy (may be stale)."),
    endpoints: str = ENDPOINTS,
    timeout: float = TIMEOUT,
) -> None:
    """Print KEY's value and revisions (exit code 1 when absent)."""
    consistency: Consistency = "serializable" if serializable else "linearizable"
    found = _run(endpoints, timeout, lambda c: c.get(key, consistency=consistency))
    if found is None:
        typer.echo(f"error: key_not_found: {key!r}", err=True)
        raise typer.Exit(1)
    _print(found)


@kv_app.command("del")
def delete(key: str, endpoints: str = ENDPOINTS, timeout: float = TIMEOUT) -> None:
    """Delete KEY."""
    _print(_run(endpoints, timeout, lambda c: c.delete(key)))


@kv_app.command("list")
def list_keys(
    prefix: str = typer.Argument("", help="Key prefix."),
    endpoints: str = ENDPOINTS,
    timeout: float = TIMEOUT,
) -> None:
    """Print every key under PREFIX, one JSON object per line."""
    with _client(endpoints, timeout) as client:
        for item in client.items(prefix):
            _print(item)


@kv_app.command("watch")
def watch(
    prefix: str = typer.Argument("", help="Key prefix."),
    from_revision: int | None = typer.Option(None, help="Replay from this revision."),
    endpoints: str = ENDPOINTS,
    timeout: float = TIMEOUT,
) -> None:
    """Print changes under PREFIX as they happen (Ctrl-C stops)."""
    with _client(endpoints, timeout) as client:
        try:
            for event in client.watch(prefix, from_revision=from_revision):
                _print(event)
        except KeyboardInterrupt:
            pass


def status(endpoints: str = ENDPOINTS, timeout: float = TIMEOUT) -> None:
    """A table of the members as each one sees itself."""
    table = Table("id", "role", "term", "leader", "commit", "applied", "lag", "api")
    with _client(endpoints, timeout) as client:
        first = client.status()
        lags = {int(k): v["lag"] for k, v in first.raw.get("peers", {}).items()}
        leader_view = first if first.is_leader else None
        for member in first.members:
            try:
                seen = client.status(member.api_address)
            except ConclaveClientError as exc:
                table.add_row(
                    str(member.id), f"[red]{exc.code}", "", "", "", "", "", member.api_address
                )
                continue
            if seen.is_leader:
                leader_view = seen
                lags = {int(k): v["lag"] for k, v in seen.raw.get("peers", {}).items()}
            table.add_row(
                str(seen.id),
                seen.role,
                str(seen.term),
                str(seen.leader),
                str(seen.commit_index),
                str(seen.applied_index),
                str(lags.get(seen.id, 0)) if leader_view else "?",
                member.api_address,
            )
    Console().print(table)


@member_app.command("add")
def member_add(
    node_id: int = typer.Argument(..., help="The new node's id."),
    peer_address: str = typer.Argument(..., help="Its peer address host:port."),
    api_address: str = typer.Argument(..., help="Its API address host:port."),
    learner: bool = typer.Option(False, help="Keep it a learner (no vote)."),
    endpoints: str = ENDPOINTS,
    timeout: float = typer.Option(120.0, "--timeout", help="Catch-up can take a while."),
) -> None:
    """Add a node (start it first with `conclave serve --join`)."""
    _print(
        _run(
            endpoints,
            timeout,
            lambda c: c.add_member(node_id, peer_address, api_address, learner=learner),
        )
    )


@member_app.command("remove")
def member_remove(node_id: int, endpoints: str = ENDPOINTS, timeout: float = TIMEOUT) -> None:
    """Remove a node from the cluster."""
    _run(endpoints, timeout, lambda c: c.remove_member(node_id))
    _print({"id": node_id, "removed": True})


@leader_app.command("transfer")
def leader_transfer(
    to: int | None = typer.Option(None, "--to", help="Target voter (default: best caught up)."),
    endpoints: str = ENDPOINTS,
    timeout: float = TIMEOUT,
) -> None:
    """Hand leadership to another voter."""
    _print({"leader": _run(endpoints, timeout, lambda c: c.transfer_leader(to))})


__all__ = ["kv_app", "leader_app", "member_app", "status"]
