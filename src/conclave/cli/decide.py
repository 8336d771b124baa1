"""Decision commands: `conclave kinds declare|list`, `conclave propose`, `conclave vote`,
`conclave decisions list|show|explain|conflicts`.

Rules: thin over the HTTP API (docs/http-api.md). The API token comes from `--token` or
`CONCLAVE_TOKEN`; endpoints from `--endpoints` or `CONCLAVE_ENDPOINTS` (followers forward, so
any member works; the next endpoint is tried when one does not answer). Answers print as JSON;
`explain` prints its lines. An error prints `error: <code>: <message>` and exits with code 1.
"""

import json
from pathlib import Path
from typing import Any

import typer

from conclave.cli.ops import ENDPOINTS
from conclave.runtime.local_cluster import http_json

TOKEN = typer.Option(None, "--token", envvar="CONCLAVE_TOKEN", help="API token (Bearer).")

kinds_app = typer.Typer(help="Declare how proposals of a kind are decided.", no_args_is_help=True)
decisions_app = typer.Typer(help="Look at proposals and decisions.", no_args_is_help=True)


def call(
    endpoints: str,
    method: str,
    path: str,
    body: object | None = None,
    token: str | None = None,
) -> Any:
    """The first answer from the endpoints, in order; exit 1 on an error answer."""
    last_error = "no endpoint given"
    for endpoint in [e.strip() for e in endpoints.split(",") if e.strip()]:
        base = endpoint if endpoint.startswith("http") else f"http://{endpoint}"
        try:
            status, answer = http_json(method, base + path, body, timeout_seconds=15.0, token=token)
        except OSError as exc:
            last_error = f"{endpoint}: {exc}"
            continue
        if status >= 400:
            code = answer.get("code") if isinstance(answer, dict) else status
            message = answer.get("message") if isinstance(answer, dict) else answer
            typer.echo(f"error: {code}: {message}", err=True)
            raise typer.Exit(1)
        return answer
    typer.echo(f"error: unavailable: {last_error}", err=True)
    raise typer.Exit(1)


def _print(obj: Any) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2))


@kinds_app.command("declare")
def declare(
    spec: Path = typer.Argument(
        ..., help="JSON file: {kind, policy, electorate, strategy, rules}."
    ),
    endpoints: str = ENDPOINTS,
    token: str | None = TOKEN,
) -> None:
    """Declare (or replace) a kind from a JSON file (needs an admin token)."""
    try:
        body = json.loads(spec.read_text())
    except (OSError, ValueError) as exc:
        typer.echo(f"error: invalid_argument: {spec}: {exc}", err=True)
        raise typer.Exit(1) from None
    _print(call(endpoints, "POST", "/v1/kinds", body, token))


@kinds_app.command("list")
def list_kinds(endpoints: str = ENDPOINTS) -> None:
    """The declared kinds with their electorates."""
    _print(call(endpoints, "GET", "/v1/kinds"))


def propose(
    kind: str = typer.Argument(..., help="The proposal's kind."),
    change: list[str] | None = typer.Option(
        None, "--set", help="KEY=VALUE to write if approved (repeat); KEY= deletes."
    ),
    priority: int = typer.Option(0, help="Higher wins under the priority strategy."),
    deadline_seconds: float = typer.Option(300.0, help="Votes close after this long."),
    depends_on: list[str] | None = typer.Option(None, "--depends-on", help="A proposal id."),
    rollback_of: str | None = typer.Option(None, help="Propose to undo this executed decision."),
    params: str = typer.Option("{}", help="Parameters as a JSON object."),
    endpoints: str = ENDPOINTS,
    token: str | None = TOKEN,
) -> None:
    """Propose a change; prints its id."""
    changes: dict[str, str | None] = {}
    for item in change or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            typer.echo(f"error: invalid_argument: --set {item!r} is not KEY=VALUE", err=True)
            raise typer.Exit(1)
        changes[key] = value if value else None
    try:
        params_obj = json.loads(params)
    except ValueError:
        typer.echo("error: invalid_argument: --params is not JSON", err=True)
        raise typer.Exit(1) from None
    body: dict[str, Any] = {
        "kind": kind,
        "changes": changes,
        "priority": priority,
        "deadline_seconds": deadline_seconds,
        "depends_on": depends_on or [],
        "params": params_obj,
    }
    if rollback_of is not None:
        body["rollback_of"] = rollback_of
    _print(call(endpoints, "POST", "/v1/proposals", body, token))


def vote(
    proposal_id: str = typer.Argument(..., help="The proposal's id, e.g. p12."),
    choice: str = typer.Argument(..., help="approve, reject or abstain."),
    justification: str = typer.Option("", "--why", help="Why (kept in the audit trail)."),
    endpoints: str = ENDPOINTS,
    token: str | None = TOKEN,
) -> None:
    """Vote on a proposal as the principal of your token."""
    body = {"choice": choice, "justification": justification}
    _print(call(endpoints, "POST", f"/v1/proposals/{proposal_id}/votes", body, token))


@decisions_app.command("list")
def list_proposals(
    state: str | None = typer.Option(None, help="open, approved, executed, rejected, ..."),
    endpoints: str = ENDPOINTS,
) -> None:
    """Proposals in log order."""
    query = f"?state={state}" if state else ""
    for item in call(endpoints, "GET", f"/v1/proposals{query}")["proposals"]:
        typer.echo(json.dumps(item, ensure_ascii=False))


@decisions_app.command("show")
def show(proposal_id: str, endpoints: str = ENDPOINTS) -> None:
    """One proposal with its votes and history."""
    _print(call(endpoints, "GET", f"/v1/proposals/{proposal_id}"))


@decisions_app.command("explain")
def explain(proposal_id: str, endpoints: str = ENDPOINTS) -> None:
    """Why it ended this way: policy, votes, arithmetic, conflicts, execution, replicas."""
    for line in call(endpoints, "GET", f"/v1/decisions/{proposal_id}/explain")["lines"]:
        typer.echo(line)


@decisions_app.command("conflicts")
def conflicts(endpoints: str = ENDPOINTS) -> None:
    """Detected conflicts and how they were resolved."""
    _print(call(endpoints, "GET", "/v1/conflicts"))


__all__ = ["call", "decisions_app", "kinds_app", "propose", "vote"]
