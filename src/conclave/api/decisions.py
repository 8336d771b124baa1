"""The decision endpoints of the HTTP API (docs/http-api.md, "Decisions").

Rules:
- Every write names its author by an API token (`Authorization: Bearer <token>`) that the node
  configuration maps to a principal; the proposer and the voter are that principal. A vote
  that names another voter is refused (403 `forbidden`). Declaring a kind needs an admin.
- Input is validated and turned into a decision command before anything is proposed; bad
  input is 4xx and nothing reaches the log. Refusals by the state machine (unknown proposal,
  not a voter, a second vote, a vote after the outcome) come back with the machine's code.
- Reads (`GET`) are linearizable through the leader by default, like KV reads.
- `explain` adds which members have applied the decision, asked of each member's status.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp
from aiohttp import web

from conclave.api.errors import ApiError
from conclave.api.inputs import check_query, consistency, query_int
from conclave.decision.commands import (
    CastVote,
    DecisionCommand,
    DecisionDecodeError,
    DeclareKind,
    Propose,
    member_from_obj,
    policy_from_obj,
    policy_to_obj,
    rule_from_obj,
    rule_to_obj,
)
from conclave.decision.explain import detail, explain_lines, summary
from conclave.decision.machine import Accepted, AuditEvent, Refused, Status
from conclave.decision.model import Scope, VoteChoice, Window
from conclave.runtime.node import RESERVED_KEY_PREFIX, ConclaveNode

REFUSAL_STATUS: Final = {
    "unknown_proposal": "unknown_proposal",
    "not_a_voter": "forbidden",
    "own_proposal": "forbidden",
    "already_voted": "conflict",
    "decided": "conflict",
    "deadline_passed": "conflict",
    "invalid_rollback": "conflict",
    "unknown_kind": "invalid_argument",
    "unknown_dependency": "invalid_argument",
    "unknown_strategy": "invalid_argument",
    "malformed": "invalid_argument",
}
_POLICY_DEFAULTS: Final = {
    "strict": False,
    "basis": "electorate",
    "quorum": [0, 1],
    "veto_roles": [],
    "proposer_may_approve": True,
    "vote_changes_allowed": False,
}
AUDIT_PAGE_MAX: Final = 1000
DEADLINE_SECONDS_MAX: Final = 30 * 24 * 3600

LeaderOnly = Callable[
    [web.Request, Callable[[], Awaitable[web.StreamResponse]]], Awaitable[web.StreamResponse]
]


def _refused(result: Refused) -> ApiError:
    code = REFUSAL_STATUS.get(result.code, "invalid_argument")
    return ApiError(code, result.message, refusal=result.code)


def _strings(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError("invalid_argument", f"{name} must be a list of strings")
    return value


class DecisionApi:
    """Handlers bound to one node; `leader_only` is the KV API's forwarding wrapper."""

    def __init__(
        self,
        node: ConclaveNode,
        leader_only: LeaderOnly,
        read_body: Any,
        session_key: "web.AppKey[aiohttp.ClientSession]",
    ) -> None:
        self.node = node
        self.leader_only = leader_only
        self.read_body = read_body
        self.session_key = session_key

    # -- authentication ---------------------------------------------------------------------

    def principal(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not self.node.settings.tokens:
            raise ApiError(
                "unauthorized",
                "no API tokens are configured on this node (conclave serve --token TOKEN=NAME)",
            )
        if scheme.lower() != "bearer" or not token:
            raise ApiError("unauthorized", "send Authorization: Bearer <token>")
        principal = self.node.settings.principal_of(token.strip())
        if principal is None:
            raise ApiError("unauthorized", "unknown token")
        return principal

    # -- writes -----------------------------------------------------------------------------

    async def _decide(
        self, request: web.Request, command: DecisionCommand, created: bool
    ) -> web.StreamResponse:
        async def run() -> web.StreamResponse:
            result = await self.node.decide(command)
            if isinstance(result, Refused):
                raise _refused(result)
            assert isinstance(result, Accepted)
            body = {"id": result.proposal_id or None, "status": result.status.value}
            return web.json_response(body, status=201 if created else 200)

        return await self.leader_only(request, run)

    async def declare_kind(self, request: web.Request) -> web.StreamResponse:
        principal = self.principal(request)
        if principal not in self.node.settings.admins:
            raise ApiError("forbidden", f"{principal} is not an admin (conclave serve --admin)")
        body = await self.read_body(
            request,
            {"kind": str, "policy": dict, "electorate": list, "strategy": str, "rules": list},
        )
        for name in ("kind", "policy", "electorate"):
            if name not in body:
                raise ApiError("invalid_argument", f"{name} is required")
        try:
            policy = policy_from_obj({**_POLICY_DEFAULTS, **body["policy"]})
            electorate = tuple(
                member_from_obj({"weight": 1, "roles": [], **m}) if isinstance(m, dict) else m
                for m in body["electorate"]
            )
            command = DeclareKind(
                kind=body["kind"],
                policy=policy,
                electorate=tuple(electorate),
                strategy=body.get("strategy", "priority"),
                rules=tuple(rule_from_obj(r) for r in body.get("rules", [])),
            )
            _check_declared(command)
        except DecisionDecodeError as exc:
            raise ApiError("invalid_argument", str(exc)) from None
        return await self._decide(request, command, created=False)

    async def propose(self, request: web.Request) -> web.StreamResponse:
        principal = self.principal(request)
        body = await self.read_body(
            request,
            {
                "kind": str,
                "params": dict,
                "reads": list,
                "writes": list,
                "changes": dict,
                "depends_on": list,
                "priority": int,
                "window": list,
                "deadline_seconds": (int, float),
                "rollback_of": str,
            },
        )
        if "kind" not in body:
            raise ApiError("invalid_argument", "kind is required")
        command = self._proposal(principal, body)
        return await self._decide(request, command, created=True)

    def _proposal(self, principal: str, body: dict[str, Any]) -> Propose:
        changes_obj = body.get("changes", {})
        for key, value in changes_obj.items():
            if value is not None and not isinstance(value, str):
                raise ApiError("invalid_argument", f"change of {key!r} must be a string or null")
            if key.startswith(RESERVED_KEY_PREFIX):
                raise ApiError(
                    "reserved_key", f"keys under {RESERVED_KEY_PREFIX} belong to the cluster"
                )
        changes = tuple(sorted(changes_obj.items()))
        writes = sorted(set(_strings(body, "writes")) | {k for k, _ in changes})
        deadline_seconds = body.get("deadline_seconds", 300)
        if not 0 < deadline_seconds <= DEADLINE_SECONDS_MAX:
            raise ApiError(
                "invalid_argument", f"deadline_seconds must be in (0, {DEADLINE_SECONDS_MAX}]"
            )
        window = body.get("window")
        params = json.dumps(
            body.get("params", {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        try:
            return Propose(
                proposer=principal,
                kind=body["kind"],
                params=params,
                scope=Scope(
                    reads=tuple(sorted(set(_strings(body, "reads")))), writes=tuple(writes)
                ),
                changes=changes,
                depends_on=tuple(sorted(set(_strings(body, "depends_on")))),
                priority=body.get("priority", 0),
                window=None if window is None else Window(start_ms=window[0], end_ms=window[1]),
                deadline_ms=int((time.time() + deadline_seconds) * 1000),
                rollback_of=body.get("rollback_of"),
            )
        except (ValueError, TypeError, IndexError) as exc:
            raise ApiError("invalid_argument", str(exc)) from None

    async def vote(self, request: web.Request) -> web.StreamResponse:
        principal = self.principal(request)
        body = await self.read_body(request, {"choice": str, "justification": str, "voter": str})
        voter = body.get("voter", principal)
        if voter != principal:
            raise ApiError("forbidden", f"{principal} may not vote for {voter}")
        choice = body.get("choice")
        if choice not in {c.value for c in VoteChoice}:
            raise ApiError("invalid_argument", "choice must be approve, reject or abstain")
        justification = body.get("justification", "")
        if len(justification.encode("utf-8", "surrogatepass")) > 4096:
            raise ApiError("too_large", "the justification is over 4096 bytes")
        command = CastVote(
            proposal_id=request.match_info["id"],
            voter=principal,
            choice=VoteChoice(choice),
            justification=justification,
        )
        return await self._decide(request, command, created=False)

    # -- reads ------------------------------------------------------------------------------

    async def _read(
        self, request: web.Request, answer: Callable[[], web.StreamResponse]
    ) -> web.StreamResponse:
        linearizable = consistency(request)

        async def run() -> web.StreamResponse:
            if linearizable:
                await self.node.read_barrier()
            return answer()

        return await self.leader_only(request, run)

    def _record(self, request: web.Request) -> Any:
        pid = request.match_info["id"]
        record = self.node.decisions.proposals.get(pid)
        if record is None:
            raise ApiError("unknown_proposal", f"no proposal {pid!r}")
        return record

    async def list_proposals(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ("state", "consistency"))
        state = request.query.get("state")
        if state is not None and state not in {s.value for s in Status}:
            raise ApiError("invalid_argument", f"state must be one of {[s.value for s in Status]}")

        def answer() -> web.StreamResponse:
            records = sorted(self.node.decisions.proposals.values(), key=lambda r: r.proposal.index)
            items = [summary(r) for r in records if state is None or r.status.value == state]
            return web.json_response({"proposals": items})

        return await self._read(request, answer)

    async def show_proposal(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ("consistency",))
        return await self._read(
            request, lambda: web.json_response(detail(self.node.decisions, self._record(request)))
        )

    async def list_kinds(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ("consistency",))

        def answer() -> web.StreamResponse:
            kinds = [
                {
                    "kind": kind,
                    "policy": policy_to_obj(c.policy),
                    "strategy": c.strategy,
                    "electorate": [
                        {"principal": m.principal, "weight": m.weight, "roles": list(m.roles)}
                        for m in c.electorate
                    ],
                    "rules": [rule_to_obj(rule) for rule in c.rules],
                }
                for kind, c in sorted(self.node.decisions.kinds.items())
            ]
            return web.json_response({"kinds": kinds})

        return await self._read(request, answer)

    async def list_conflicts(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ("consistency",))

        def answer() -> web.StreamResponse:
            items = []
            for cid, c in sorted(self.node.decisions.conflicts.items()):
                r = c.resolution
                items.append(
                    {
                        "id": cid,
                        "type": c.conflict.type.value,
                        "severity": c.conflict.severity.value,
                        "proposals": list(c.conflict.proposals),
                        "reason": c.conflict.reason,
                        "detected_index": c.detected_index,
                        "resolution": None
                        if r is None
                        else {
                            "strategy": r.strategy,
                            "winners": list(r.winners),
                            "losers": list(r.losers),
                            "escalations": list(r.escalations),
                            "merged": r.merged,
                            "explanation": r.explanation,
                        },
                    }
                )
            return web.json_response({"conflicts": items})

        return await self._read(request, answer)

    async def audit(self, request: web.Request) -> web.StreamResponse:
        """The audit trail, filtered: `proposal_id`, `type`, `from_seq`, `limit` (<= 1000)."""
        check_query(request, ("proposal_id", "type", "from_seq", "limit", "consistency"))
        proposal_id = request.query.get("proposal_id")
        kind = request.query.get("type")
        from_seq = query_int(request, "from_seq", 1) or 1
        limit = min(query_int(request, "limit", 1) or AUDIT_PAGE_MAX, AUDIT_PAGE_MAX)

        def answer() -> web.StreamResponse:
            events = []
            for event in self.node.decisions.audit[from_seq - 1 :]:
                if proposal_id is not None and event.proposal_id != proposal_id:
                    continue
                if kind is not None and event.type != kind:
                    continue
                events.append(_event_json(event))
                if len(events) >= limit:
                    break
            return web.json_response({"events": events})

        return await self._read(request, answer)

    async def watch(self, request: web.Request) -> web.StreamResponse:
        """Server-sent audit events (`id:` is the event's seq); `from_seq` replays."""
        check_query(request, ("from_seq",))
        text = request.headers.get("Last-Event-ID") or request.query.get("from_seq", "")
        if text and not text.isdigit():
            raise ApiError("invalid_argument", "from_seq must be a positive integer")
        next_seq = int(text) + (1 if "Last-Event-ID" in request.headers else 0) if text else 0
        if not next_seq:
            next_seq = len(self.node.decisions.audit) + 1  # only new events
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        wake = asyncio.Event()
        self.node.audit_listeners.add(wake)
        try:
            await response.prepare(request)
            await response.write(b": watching decisions\n\n")
            while self.node.running:
                for event in self.node.decisions.audit[next_seq - 1 :]:
                    data = json.dumps(_event_json(event))
                    await response.write(
                        f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n".encode()
                    )
                    next_seq = event.seq + 1
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), 5.0)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.node.audit_listeners.discard(wake)
        return response

    async def explain(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ())
        record = self._record(request)
        lines = explain_lines(self.node.decisions, record)
        index = record.executed_index or record.decided_index or record.proposal.index
        lines.extend(await self._applied_on(request, index))
        body = {"id": record.proposal.id, "status": record.status.value, "lines": lines}
        return web.json_response(body)

    async def _applied_on(self, request: web.Request, index: int) -> list[str]:
        """Ask every member whether it has applied `index` (answers in member order)."""
        session = request.app[self.session_key]
        members = sorted(self.node.directory.values(), key=lambda m: m.id)

        async def ask(api: str) -> str:
            try:
                timeout = aiohttp.ClientTimeout(total=2.0)
                async with session.get(f"http://{api}/v1/status", timeout=timeout) as response:
                    status = await response.json()
                applied = status["applied_index"]
                verdict = "applied" if applied >= index else "not yet applied"
                return f"{verdict} (applied index {applied})"
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
                return f"unknown ({type(exc).__name__})"

        answers = await asyncio.gather(*(ask(m.api_address) for m in members))
        lines = [f"replicas (log index {index}):"]
        lines.extend(f"  node {m.id}: {a}" for m, a in zip(members, answers, strict=True))
        return lines


def _event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "index": event.index,
        "at_ms": event.at_ms,
        "type": event.type,
        "proposal_id": event.proposal_id,
        "detail": event.detail,
    }


def _check_declared(command: DeclareKind) -> None:
    principals = [m.principal for m in command.electorate]
    if not principals or len(set(principals)) != len(principals):
        raise DecisionDecodeError("the electorate must be non-empty with distinct principals")


def add_routes(app: web.Application, api: DecisionApi) -> None:
    app.router.add_route("POST", "/v1/kinds", api.declare_kind)
    app.router.add_route("GET", "/v1/kinds", api.list_kinds)
    app.router.add_route("POST", "/v1/proposals", api.propose)
    app.router.add_route("GET", "/v1/proposals", api.list_proposals)
    app.router.add_route("GET", "/v1/proposals/{id}", api.show_proposal)
    app.router.add_route("POST", "/v1/proposals/{id}/votes", api.vote)
    app.router.add_route("GET", "/v1/decisions/{id}/explain", api.explain)
    app.router.add_route("GET", "/v1/conflicts", api.list_conflicts)
    app.router.add_route("GET", "/v1/decisions/watch", api.watch)
    app.router.add_route("GET", "/v1/audit", api.audit)


__all__ = ["DecisionApi", "add_routes"]
