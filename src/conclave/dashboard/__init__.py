"""The web dashboard every node serves at `/ui` (docs/http-api.md, "Dashboard").

No build step: `static/index.html`, `static/app.js` (a plain ES module) and `static/style.css`
are package data, served as they are. The page talks to the node that served it only, through
same-origin JSON endpoints that always answer 200 with what they know, so that a member or an
endpoint being down shows on the page instead of as a failed request:

- `GET /ui/api/cluster`: every member's `/v1/status`, asked server-side (this node answers
  for itself directly; the others over HTTP with a short timeout). A member that does not
  answer is `"up": false` with the error. Doing this server-side rather than letting the
  browser fetch each member cross-origin needs no CORS on the API, uses the addresses the
  nodes use among themselves (the browser may not reach them) and turns a dead member into
  data rather than a browser network error.
- `GET /ui/api/decisions`: open proposals with votes and tally, recent outcomes, conflicts
  with their resolutions, from this node's applied state (`conclave.dashboard.views`).
- `GET /ui/api/alerts`: this node's `GET /v1/alerts` wrapped as
  `{"available": true, "alerts": ...}`, or `{"available": false, "reason": ...}` when that
  endpoint does not answer 200.
- `GET /ui/api/series?node=<id>`: per-second write counts, write latency percentiles and
  applied entries per second of a member (this node's own ring, or another member's fetched
  from it), kept by a sampler task and a timing middleware (`conclave.dashboard.series`).

Rules:
- Only these fixed paths are served (no file-system lookup from a URL path).
- The page carries a strict Content-Security-Policy: scripts, styles and connections to this
  origin only (nothing is ever loaded from a CDN).
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final

import aiohttp
from aiohttp import web

from conclave.dashboard.series import WriteSeries
from conclave.dashboard.views import decisions_json
from conclave.runtime.node import ConclaveNode

UI_PATH: Final = "/ui"
FETCH_TIMEOUT_SECONDS: Final = 1.0
SAMPLE_INTERVAL_SECONDS: Final = 1.0
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_STATIC_FILES: Final = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}
_WRITE_PREFIXES: Final = ("/v1/kv/", "/v1/proposals", "/v1/app/call")
_WRITE_METHODS: Final = frozenset({"PUT", "POST", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _State:
    node: ConclaveNode
    series: WriteSeries = field(default_factory=WriteSeries)
    session: aiohttp.ClientSession | None = None


_STATE: Final = web.AppKey("dashboard", _State)


def static_text(name: str) -> str:
    """One of the dashboard's static files, read from the installed package."""
    return (resources.files(__name__) / "static" / name).read_text(encoding="utf-8")


def _is_write(request: web.Request) -> bool:
    return request.method in _WRITE_METHODS and request.path.startswith(_WRITE_PREFIXES)


def _timing_middleware(series: WriteSeries) -> Any:
    @web.middleware
    async def time_writes(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _is_write(request):
            return await handler(request)
        started = time.perf_counter()
        ok = False
        try:
            response = await handler(request)
            ok = response.status < 400
            return response
        finally:
            series.record(time.perf_counter() - started, ok=ok)

    return time_writes


async def _sample_forever(state: _State) -> None:
    last = time.monotonic()
    while True:
        await asyncio.sleep(SAMPLE_INTERVAL_SECONDS)
        now = time.monotonic()
        state.series.sample(int(time.time() * 1000), state.node.machine.applied_index, now - last)
        last = now


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    state = app[_STATE]
    state.series.sample(int(time.time() * 1000), state.node.machine.applied_index, 0.0)
    state.series.points.clear()  # the first sample only sets the applied-index baseline
    sampler = asyncio.create_task(_sample_forever(state), name="conclave-dashboard-sampler")
    async with aiohttp.ClientSession() as session:
        state.session = session
        try:
            yield
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            state.session = None


def _no_store(response: web.Response) -> web.Response:
    response.headers["Cache-Control"] = "no-store"
    return response


async def _fetch_json(state: _State, url: str) -> tuple[int, Any]:
    """GET `url` with the dashboard's short timeout: (status, parsed JSON body)."""
    if state.session is None:
        raise RuntimeError("the dashboard is not running")
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS)
    async with state.session.get(url, timeout=timeout) as response:
        return response.status, await response.json(content_type=None)


def _own_address(request: web.Request) -> str:
    """The address this request reached, so that the node can call its own API."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        raise RuntimeError("the local address of this connection is unknown")
    host, port = sockname[0], sockname[1]
    if host in {"0.0.0.0", "::"}:  # noqa: S104 - an address we connect to, not bind
        host = "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _problem(exc: BaseException) -> str:
    """A short reason why a member did not answer, for a table cell."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        return "unreachable: connection refused" if refused else "unreachable"
    if isinstance(exc, TimeoutError):
        return f"no answer within {FETCH_TIMEOUT_SECONDS:g} s"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Handlers:
    def __init__(self, state: _State) -> None:
        self.state = state

    async def page(self, request: web.Request) -> web.StreamResponse:
        del request
        response = web.Response(text=static_text("index.html"), content_type="text/html")
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        return _no_store(response)

    def asset(self, name: str) -> Handler:
        content_type = _STATIC_FILES[name]

        async def serve(request: web.Request) -> web.StreamResponse:
            del request
            response = web.Response(text=static_text(name), content_type=content_type)
            response.headers["X-Content-Type-Options"] = "nosniff"
            return _no_store(response)

        return serve

    async def _member(self, member: dict[str, Any]) -> dict[str, Any]:
        node = self.state.node
        entry: dict[str, Any] = {
            "id": member["id"],
            "api_address": member["api_address"],
            "up": False,
            "status": None,
            "error": None,
        }
        if member["id"] == node.settings.node_id:
            entry.update(up=True, status=node.status())
            return entry
        try:
            code, body = await _fetch_json(self.state, f"http://{member['api_address']}/v1/status")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            entry["error"] = _problem(exc)
            return entry
        if code != 200 or not isinstance(body, dict):
            entry["error"] = f"HTTP {code}"
        else:
            entry.update(up=True, status=body)
        return entry

    async def cluster(self, request: web.Request) -> web.StreamResponse:
        del request
        node = self.state.node
        own = node.status()
        members = await asyncio.gather(*(self._member(m) for m in own["members"]))
        body = {
            "self": node.settings.node_id,
            "cluster_id": node.settings.cluster_id,
            "at_ms": int(time.time() * 1000),
            "members": list(members),
        }
        return _no_store(web.json_response(body))

    async def decisions(self, request: web.Request) -> web.StreamResponse:
        del request
        return _no_store(web.json_response(decisions_json(self.state.node.decisions)))

    async def alerts(self, request: web.Request) -> web.StreamResponse:
        try:
            code, body = await _fetch_json(self.state, f"http://{_own_address(request)}/v1/alerts")
        except (aiohttp.ClientError, TimeoutError, ValueError, RuntimeError) as exc:
            answer: dict[str, Any] = {"available": False, "reason": _problem(exc)}
        else:
            if code == 200:
                answer = {"available": True, "alerts": body}
            else:
                answer = {"available": False, "reason": f"GET /v1/alerts answered {code}"}
        return _no_store(web.json_response(answer))

    async def series(self, request: web.Request) -> web.StreamResponse:
        node = self.state.node
        own = node.settings.node_id
        text = request.query.get("node", str(own))
        if not text.isdigit():
            return _no_store(web.json_response({"available": False, "reason": "bad node id"}))
        wanted = int(text)
        if wanted == own:
            body = {
                "available": True,
                "node": own,
                "interval_seconds": SAMPLE_INTERVAL_SECONDS,
                "points": self.state.series.to_json(),
            }
            return _no_store(web.json_response(body))
        member = node.directory.get(wanted)
        if member is None:
            answer = {"available": False, "node": wanted, "reason": "not a member"}
            return _no_store(web.json_response(answer))
        url = f"http://{member.api_address}{UI_PATH}/api/series?node={wanted}"
        try:
            code, body = await _fetch_json(self.state, url)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            body = {"available": False, "node": wanted, "reason": _problem(exc)}
        else:
            if code != 200 or not isinstance(body, dict):
                body = {"available": False, "node": wanted, "reason": f"HTTP {code}"}
        return _no_store(web.json_response(body))


def add_dashboard_routes(app: web.Application, node: ConclaveNode) -> None:
    """Serve the dashboard of `node` at `/ui` on `app` (call before the app starts)."""
    state = _State(node=node)
    app[_STATE] = state
    app.middlewares.append(_timing_middleware(state.series))
    app.cleanup_ctx.append(_lifetime)
    handlers = _Handlers(state)
    router = app.router
    router.add_route("GET", UI_PATH, handlers.page)
    router.add_route("GET", f"{UI_PATH}/", handlers.page)
    for name in _STATIC_FILES:
        if name != "index.html":
            router.add_route("GET", f"{UI_PATH}/{name}", handlers.asset(name))
    router.add_route("GET", f"{UI_PATH}/api/cluster", handlers.cluster)
    router.add_route("GET", f"{UI_PATH}/api/decisions", handlers.decisions)
    router.add_route("GET", f"{UI_PATH}/api/alerts", handlers.alerts)
    router.add_route("GET", f"{UI_PATH}/api/series", handlers.series)


__all__ = ["UI_PATH", "add_dashboard_routes", "static_text"]
