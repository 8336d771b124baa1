"""The HTTP/JSON API of a node (docs/http-api.md), served with aiohttp.

Rules:
- Input is validated before anything reaches the node: unknown query parameters or body
  fields, bad JSON, bad keys, over-long bodies, keys or values are 4xx answers with a stable
  `code`; nothing malformed is ever proposed.
- A follower forwards writes, linearizable reads and cluster changes to the leader (one hop:
  a forwarded request carries `Conclave-Forwarded`, and a node that is not the leader answers
  such a request with `421 not_leader` instead of forwarding again). With forwarding off it
  answers `421 not_leader` with the leader's API address at once.
- Keys under `_conclave/` belong to the cluster (the member directory): readable, never
  writable through the API.
- A write's outcome is reported only once its entry is applied; a timeout is `504 timeout`
  (outcome unknown: retry with the same `Conclave-Request-Id`).
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp
import msgpack
from aiohttp import web

from conclave.api.decisions import DecisionApi, add_routes
from conclave.api.errors import ApiError
from conclave.api.inputs import check_query, consistency, json_body, query_int
from conclave.api.metrics import add_observability_routes
from conclave.apps.kv import (
    SESSIONLESS,
    CasResult,
    Command,
    CompareAndSet,
    Delete,
    DeleteResult,
    ErrorCode,
    ErrorResult,
    GetResult,
    KeyValue,
    Put,
    PutResult,
    Range,
)
from conclave.apps.kv.commands import ID_MAX, check_key
from conclave.core.errors import NotLeader, ProposalDropped
from conclave.dashboard import add_dashboard_routes
from conclave.decision.machine import Refused
from conclave.runtime.app_call import APP_CALL_PATH, APP_CONTENT_TYPE, decode_call
from conclave.runtime.node import (
    RESERVED_KEY_PREFIX,
    ConclaveNode,
    MemberChangeError,
    NodeStopped,
    OutcomeUnknown,
)
from conclave.runtime.settings import MemberAddress
from conclave.runtime.watch import ChangeEvent, WatchCompacted, WatchEnded

FORWARDED_HEADER: Final = "Conclave-Forwarded"
REQUEST_ID_HEADER: Final = "Conclave-Request-Id"
KEEP_ALIVE_SECONDS: Final = 5.0
_FORWARD_TIMEOUT_MARGIN_SECONDS: Final = 1.0
_NODE_KEY: Final = web.AppKey("node", ConclaveNode)
FORWARD_SESSION: Final = web.AppKey("forward_session", aiohttp.ClientSession)
_LOG = logging.getLogger("conclave.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _text_size(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _checked_key(node: ConclaveNode, key: str, *, writing: bool) -> str:
    try:
        check_key(key)
    except (TypeError, ValueError) as exc:
        raise ApiError("invalid_key", str(exc)) from None
    if _text_size(key) > node.settings.kv.key_bytes_max:
        raise ApiError("too_large", f"the key is over {node.settings.kv.key_bytes_max} bytes")
    if writing and key.startswith(RESERVED_KEY_PREFIX):
        raise ApiError("reserved_key", f"keys under {RESERVED_KEY_PREFIX} belong to the cluster")
    return key


def _checked_value(node: ConclaveNode, name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ApiError("invalid_argument", f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError("invalid_argument", f"{name} is not valid Unicode text") from None
    if _text_size(value) > node.settings.kv.value_bytes_max:
        raise ApiError("too_large", f"{name} is over {node.settings.kv.value_bytes_max} bytes")
    return value


def _request_id(request: web.Request) -> tuple[int, int]:
    header = request.headers.get(REQUEST_ID_HEADER)
    if header is None:
        return SESSIONLESS, 1
    client_text, sep, seq_text = header.partition("/")
    valid = sep and client_text.isdigit() and seq_text.isdigit()
    if not valid or not (1 <= int(client_text) <= ID_MAX and 1 <= int(seq_text) <= ID_MAX):
        raise ApiError("invalid_request_id", f"{REQUEST_ID_HEADER} must be <client_id>/<seq>")
    return int(client_text), int(seq_text)


# -- answers ---------------------------------------------------------------------------------


def _key_value_json(item: KeyValue, revision: int) -> dict[str, Any]:
    return {
        "key": item.key,
        "value": item.value,
        "revision": revision,
        "create_revision": item.create_revision,
        "mod_revision": item.mod_revision,
        "version": item.version,
    }


def _error_result(result: ErrorResult) -> ApiError:
    if result.code is ErrorCode.TOO_LARGE:
        return ApiError("too_large", result.message)
    if result.code is ErrorCode.STALE_SEQUENCE:
        return ApiError("stale_request", result.message)
    return ApiError("invalid_argument", result.message)


def _write_answer(key: str, result: object) -> web.Response:
    match result:
        case PutResult(revision=revision, prev_value=prev):
            return web.json_response({"key": key, "revision": revision, "prev_value": prev})
        case DeleteResult(revision=revision, deleted=deleted, prev_value=prev):
            body = {"key": key, "deleted": deleted, "revision": revision, "prev_value": prev}
            return web.json_response(body)
        case CasResult(succeeded=True, revision=revision, current_value=value):
            body = {"key": key, "revision": revision, "succeeded": True, "value": value}
            return web.json_response(body)
        case CasResult(revision=revision, current_value=value, current_revision=current):
            raise ApiError(
                "compare_failed",
                "the key did not match the expectation",
                key=key,
                revision=revision,
                current_value=value,
                current_revision=current,
            )
        case ErrorResult():
            raise _error_result(result)
    raise ApiError("internal", f"unexpected result {type(result).__name__}")


# -- the application -------------------------------------------------------------------------


class Api:
    """Route handlers bound to one node."""

    def __init__(self, node: ConclaveNode) -> None:
        self.node = node

    # -- forwarding ---------------------------------------------------------------------

    async def leader_only(
        self, request: web.Request, action: Callable[[], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Run `action` here if this node leads; otherwise forward or answer not_leader."""
        try:
            return await action()
        except NotLeader:
            return await self._forward(request)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        node = self.node
        leader, leader_api = node.leader_address()
        already = FORWARDED_HEADER in request.headers
        if leader_api is None or leader == node.settings.node_id:
            raise ApiError("no_leader", "no leader is known right now; retry")
        if already or not node.settings.forward_to_leader:
            raise ApiError(
                "not_leader",
                f"node {node.settings.node_id} is not the leader",
                leader=leader,
                leader_api=leader_api,
            )
        return await self._proxy(request, leader_api)

    async def _proxy(self, request: web.Request, leader_api: str) -> web.Response:
        session = request.app[FORWARD_SESSION]
        headers = {FORWARDED_HEADER: str(self.node.settings.node_id)}
        for name in (REQUEST_ID_HEADER, "Content-Type", "Authorization"):
            if name in request.headers:
                headers[name] = request.headers[name]
        timeout = self.node.settings.request_timeout_seconds + _FORWARD_TIMEOUT_MARGIN_SECONDS
        url = f"http://{leader_api}{request.rel_url}"
        body = await request.read()
        try:
            async with session.request(
                request.method,
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as upstream:
                payload = await upstream.read()
                return web.Response(
                    status=upstream.status,
                    body=payload,
                    content_type=upstream.content_type,
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(
                "unavailable", f"could not reach the leader at {leader_api}: {exc!r}"
            ) from None

    # -- keys -----------------------------------------------------------------------------

    async def put_key(self, request: web.Request) -> web.StreamResponse:
        node = self.node
        check_query(request, ("prev_revision", "prev_value"))
        key = _checked_key(node, request.match_info["key"], writing=True)
        body = await json_body(request, {"value": str})
        if "value" not in body:
            raise ApiError("invalid_argument", 'the body must be {"value": "<string>"}')
        value = _checked_value(node, "value", body["value"])
        prev_revision = query_int(request, "prev_revision", 0)
        prev_value = request.query.get("prev_value")
        if prev_revision is not None and prev_value is not None:
            raise ApiError("invalid_argument", "give prev_revision or prev_value, not both")
        command: Command
        if prev_revision is None and prev_value is None:
            command = Put(key=key, value=value)
        else:
            if prev_value is not None:
                _checked_value(node, "prev_value", prev_value)
            command = CompareAndSet(
                key=key,
                new_value=value,
                expected_value=prev_value,
                expected_revision=prev_revision,
            )
        return await self._write(request, key, command)

    async def delete_key(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ())
        key = _checked_key(self.node, request.match_info["key"], writing=True)
        await json_body(request, {})
        return await self._write(request, key, Delete(key=key))

    async def _write(self, request: web.Request, key: str, command: Command) -> web.StreamResponse:
        client_id, seq = _request_id(request)

        async def run() -> web.StreamResponse:
            result = await self.node.write(command, client_id, seq)
            return _write_answer(key, result)

        return await self.leader_only(request, run)

    async def get_key(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ("consistency",))
        key = _checked_key(self.node, request.match_info["key"], writing=False)
        linearizable = consistency(request)

        async def run() -> web.StreamResponse:
            if linearizable:
                await self.node.read_barrier()
            return self._get_answer(key, self.node.get_local(key))

        return await self.leader_only(request, run)

    def _get_answer(self, key: str, result: GetResult) -> web.Response:
        if result.value is None:
            raise ApiError("key_not_found", f"key {key!r} not found", revision=result.revision)
        return web.json_response(
            {
                "key": key,
                "value": result.value,
                "revision": result.revision,
                "create_revision": result.create_revision,
                "mod_revision": result.mod_revision,
                "version": result.version,
            }
        )

    async def range_keys(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ("prefix", "after", "limit", "consistency"))
        prefix = request.query.get("prefix", "")
        after = request.query.get("after")
        limit = query_int(request, "limit", 1)
        linearizable = consistency(request)
        try:
            query = Range(prefix=prefix, after=after, limit=limit)
        except (TypeError, ValueError) as exc:
            raise ApiError("invalid_argument", str(exc)) from None

        async def run() -> web.StreamResponse:
            if linearizable:
                await self.node.read_barrier()
            page = self.node.range_local(query)
            items = [_key_value_json(item, page.revision) for item in page.items]
            for item in items:
                del item["revision"]
            return web.json_response({"revision": page.revision, "items": items, "more": page.more})

        return await self.leader_only(request, run)

    # -- watch ----------------------------------------------------------------------------

    async def watch(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ("prefix", "from_revision"))
        prefix = request.query.get("prefix", "")
        from_revision = query_int(request, "from_revision", 1)
        last_event_id = request.headers.get("Last-Event-ID")
        if last_event_id is not None:
            if not last_event_id.isdigit():
                raise ApiError("invalid_argument", "Last-Event-ID must be a revision")
            from_revision = int(last_event_id) + 1
        try:
            watcher = self.node.watch.subscribe(prefix, from_revision)
        except WatchCompacted as exc:
            raise ApiError("compacted", str(exc), oldest_revision=exc.oldest_revision) from None
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
            await self._stream(response, watcher.queue)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.node.watch.unsubscribe(watcher)
        return response

    async def _stream(
        self, response: web.StreamResponse, queue: "asyncio.Queue[ChangeEvent | WatchEnded]"
    ) -> None:
        await response.write(b": watching\n\n")
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEP_ALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if isinstance(item, WatchEnded):
                data = json.dumps({"code": item.code, "message": item.message})
                await response.write(f"event: error\ndata: {data}\n\n".encode())
                return
            data = json.dumps(item.to_json())
            frame = f"id: {item.revision}\nevent: {item.type}\ndata: {data}\n\n"
            await response.write(frame.encode())

    # -- cluster --------------------------------------------------------------------------

    async def status(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ())
        return web.json_response(self.node.status())

    async def add_member(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ())
        body = await json_body(
            request, {"id": int, "peer_address": str, "api_address": str, "learner": bool}
        )
        for name in ("id", "peer_address", "api_address"):
            if name not in body:
                raise ApiError("invalid_argument", f"{name} is required")
        try:
            member = MemberAddress(
                id=body["id"], peer_address=body["peer_address"], api_address=body["api_address"]
            )
        except ValueError as exc:
            raise ApiError("invalid_argument", str(exc)) from None
        learner_only = bool(body.get("learner", False))

        async def run() -> web.StreamResponse:
            voter = await self.node.add_member(member, learner_only=learner_only)
            return web.json_response({"id": member.id, "voter": voter})

        return await self.leader_only(request, run)

    async def remove_member(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ())
        id_text = request.match_info["id"]
        if not id_text.isdigit() or int(id_text) < 1:
            raise ApiError("invalid_argument", "the member id must be a positive integer")
        node_id = int(id_text)

        async def run() -> web.StreamResponse:
            await self.node.remove_member(node_id)
            return web.json_response({"id": node_id, "removed": True})

        return await self.leader_only(request, run)

    async def transfer_leader(self, request: web.Request) -> web.StreamResponse:
        check_query(request, ())
        body = await json_body(request, {"to": int})
        target = body.get("to")
        if target is not None and target < 1:
            raise ApiError("invalid_argument", "to must be a positive node id")

        async def run() -> web.StreamResponse:
            leader = await self.node.transfer_leadership(target)
            return web.json_response({"leader": leader})

        return await self.leader_only(request, run)

    async def app_call(self, request: web.Request) -> web.StreamResponse:
        """One call of the embedded application (msgpack in, msgpack out); see embedded.py."""
        check_query(request, ())
        body = await request.read()
        try:
            decode_call(body)
        except ValueError as exc:
            raise ApiError("invalid_argument", str(exc)) from None

        async def run() -> web.StreamResponse:
            answer = await self.node.call_app(body)
            payload = msgpack.packb(_plain(answer), use_bin_type=True)
            return web.Response(body=payload, content_type=APP_CONTENT_TYPE)

        return await self.leader_only(request, run)

    async def read_index(self, request: web.Request) -> web.StreamResponse:
        """A linearizable read point: the leader confirms it leads and answers an index that a
        follower may serve reads at once it has applied it (follower reads, thesis 6.4)."""
        check_query(request, ())

        async def run() -> web.StreamResponse:
            await self.node.read_barrier()
            return web.json_response({"index": self.node.machine.applied_index})

        return await self.leader_only(request, run)

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        del request
        return web.json_response({"status": "ok", "id": self.node.settings.node_id})

    async def readyz(self, request: web.Request) -> web.StreamResponse:
        del request
        if not self.node.running or not self.node.is_ready():
            raise ApiError("unavailable", "not ready: no leader known or applying behind commit")
        leader, _ = self.node.leader_address()
        return web.json_response({"status": "ready", "leader": leader})


def _plain(answer: object) -> object:
    """An application answer as msgpack can carry it (a refusal becomes an error answer)."""
    if isinstance(answer, Refused):
        return ["error", f"{answer.code}: {answer.message}"]
    return answer


def _node_error(exc: Exception) -> ApiError | None:
    """The API error for an exception the node raises, or None if it is not one of them."""
    if isinstance(exc, NotLeader):
        return ApiError("no_leader", "no leader is known right now; retry")
    if isinstance(exc, ProposalDropped):
        return ApiError("proposal_dropped", str(exc))
    if isinstance(exc, OutcomeUnknown):
        return ApiError("timeout", f"{exc}; the outcome is unknown (retry with the same id)")
    if isinstance(exc, NodeStopped):
        return ApiError("unavailable", str(exc))
    if isinstance(exc, MemberChangeError):
        return ApiError("member_error", str(exc))
    return None


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPRequestEntityTooLarge:
        return ApiError("too_large", "the body is too large").response()
    except web.HTTPNotFound:
        return ApiError("not_found", f"no such path: {request.path}").response()
    except web.HTTPMethodNotAllowed:
        return ApiError("method_not_allowed", f"{request.method} is not allowed here").response()
    except web.HTTPException:
        raise
    except Exception as exc:
        mapped = _node_error(exc)
        if mapped is not None:
            return mapped.response()
        _LOG.exception("internal error serving %s %s", request.method, request.path)
        return ApiError("internal", f"internal error: {type(exc).__name__}").response()


async def _forward_session(app: web.Application) -> Any:
    async with aiohttp.ClientSession() as session:
        app[FORWARD_SESSION] = session
        yield


def build_app(node: ConclaveNode) -> web.Application:
    """The aiohttp application of `node`'s API."""
    app = web.Application(
        middlewares=[_errors_as_json], client_max_size=node.settings.body_bytes_max
    )
    app[_NODE_KEY] = node
    app.cleanup_ctx.append(_forward_session)
    api = Api(node)
    app.router.add_route("PUT", "/v1/kv/{key:.+}", api.put_key)
    app.router.add_route("GET", "/v1/kv/{key:.+}", api.get_key)
    app.router.add_route("DELETE", "/v1/kv/{key:.+}", api.delete_key)
    app.router.add_route("GET", "/v1/kv", api.range_keys)
    app.router.add_route("GET", "/v1/watch", api.watch)
    app.router.add_route("GET", "/v1/status", api.status)
    app.router.add_route("POST", "/v1/members", api.add_member)
    app.router.add_route("DELETE", "/v1/members/{id}", api.remove_member)
    app.router.add_route("POST", "/v1/leader/transfer", api.transfer_leader)
    app.router.add_route("POST", APP_CALL_PATH, api.app_call)
    app.router.add_route("GET", "/v1/read_index", api.read_index)
    app.router.add_route("GET", "/healthz", api.healthz)
    app.router.add_route("GET", "/readyz", api.readyz)
    add_routes(app, DecisionApi(node, api.leader_only, json_body, FORWARD_SESSION))
    add_observability_routes(app, node)
    add_dashboard_routes(app, node)
    return app


class NodeServer:
    """A node and its HTTP API, started and stopped together."""

    def __init__(self, node: ConclaveNode) -> None:
        self.node = node
        self._runner: web.AppRunner | None = None
        self.api_port = 0

    async def start(self) -> None:
        await self.node.start()
        self._runner = web.AppRunner(build_app(self.node), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        host, port = self.node.settings.api_listen_address
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.api_port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        self.node.watch.close("the node is stopping")
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
        await self.node.stop()


__all__ = ["FORWARDED_HEADER", "REQUEST_ID_HEADER", "Api", "NodeServer", "build_app"]
