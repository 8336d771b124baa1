"""A fake Conclave HTTP API (docs/http-api.md) for the client tests, on aiohttp.web.

Rules:
- `FakeStore` is one replicated key-value store shared by the fake nodes: revisions, a change
  history for watches, and the at-most-once table of `Conclave-Request-Id`s. It records every
  request id it sees and checks the session rule (one request in flight per client_id, seq
  never going back), listing breaches in `violations`.
- A `FakeNode` serves the store; a node that is not the leader answers writes and
  linearizable reads with `421 not_leader` naming `leader_api`. `scripted` answers (status,
  body) are served first, one per request to the key routes, to inject 503/504/400s.
- `serve_in_loop` runs nodes in the caller's loop; `serve_in_thread` runs them in a thread
  with its own loop (for the blocking client). Both bind 127.0.0.1 port 0 and stop everything
  on exit.
"""

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeStore:
    values: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)
    revision: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    results: dict[tuple[int, int], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)
    last_seq: dict[int, int] = field(default_factory=dict)
    in_flight: set[int] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    write_delay_seconds: float = 0.0
    executions: int = 0

    def apply_put(self, key: str, value: str) -> dict[str, Any]:
        self.revision += 1
        previous = self.values.get(key)
        created, version = (previous[1], previous[3] + 1) if previous else (self.revision, 1)
        self.values[key] = (value, created, self.revision, version)
        self.history.append({"type": "put", "key": key, "value": value, "revision": self.revision})
        return {"key": key, "revision": self.revision, "prev_value": previous and previous[0]}

    def apply_delete(self, key: str) -> dict[str, Any]:
        previous = self.values.pop(key, None)
        if previous is None:
            return {"key": key, "deleted": False, "revision": self.revision, "prev_value": None}
        self.revision += 1
        self.history.append(
            {"type": "delete", "key": key, "value": None, "revision": self.revision}
        )
        return {"key": key, "deleted": True, "revision": self.revision, "prev_value": previous[0]}


def error(status: int, code: str, **fields: Any) -> web.Response:
    return web.json_response({"code": code, "message": code, **fields}, status=status)


class FakeNode:
    def __init__(self, store: FakeStore, *, node_id: int = 1, leader: bool = True) -> None:
        self.store = store
        self.node_id = node_id
        self.leader = leader
        self.leader_api: str | None = None
        self.address = ""
        self.requests: list[Recorded] = []
        self.scripted: deque[tuple[int, dict[str, Any]]] = deque()
        self.drop_watch_after_events: int | None = None
        self.drop_with_error_event = False
        self.stopping = False
        self.app = web.Application()
        self.app.router.add_route("*", "/v1/kv/{key:.+}", self.key_route)
        self.app.router.add_get("/v1/kv", self.range_route)
        self.app.router.add_get("/v1/watch", self.watch_route)
        self.app.router.add_get("/v1/status", self.status_route)

    def record(self, request: web.Request) -> None:
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers))
        )

    def not_leader(self) -> web.Response:
        return error(421, "not_leader", leader=None, leader_api=self.leader_api)

    async def key_route(self, request: web.Request) -> web.StreamResponse:
        self.record(request)
        if self.scripted:
            status, body = self.scripted.popleft()
            return web.json_response(body, status=status)
        key = request.match_info["key"]
        linearizable = request.query.get("consistency", "linearizable") == "linearizable"
        if not self.leader and (request.method != "GET" or linearizable):
            return self.not_leader()
        if request.method == "GET":
            return self.get(key)
        return await self.write(request, key)

    def get(self, key: str) -> web.Response:
        stored = self.store.values.get(key)
        if stored is None:
            return error(404, "key_not_found", revision=self.store.revision)
        value, created, modified, version = stored
        return web.json_response(
            {
                "key": key,
                "value": value,
                "revision": self.store.revision,
                "create_revision": created,
                "mod_revision": modified,
                "version": version,
            }
        )

    async def write(self, request: web.Request, key: str) -> web.Response:
        request_id = request.headers.get("Conclave-Request-Id")
        if request_id is None:
            self.store.violations.append(f"write without request id: {request.method} {key}")
            status, body = self.execute(request.method, key, await request.json(), request)
            return web.json_response(body, status=status)
        self.store.request_ids.append(request_id)
        client_id, seq = (int(part) for part in request_id.split("/"))
        if client_id in self.store.in_flight:
            self.store.violations.append(f"two requests in flight for client {client_id}")
        if seq < self.store.last_seq.get(client_id, 0):
            return error(409, "stale_request")
        self.store.in_flight.add(client_id)
        try:
            await asyncio.sleep(self.store.write_delay_seconds)
            cached = self.store.results.get((client_id, seq))
            if cached is None:
                body = await request.json() if request.method == "PUT" else {}
                cached = self.execute(request.method, key, body, request)
                self.store.results[(client_id, seq)] = cached
                self.store.last_seq[client_id] = seq
        finally:
            self.store.in_flight.discard(client_id)
        return web.json_response(cached[1], status=cached[0])

    def execute(
        self, method: str, key: str, body: dict[str, Any], request: web.Request
    ) -> tuple[int, dict[str, Any]]:
        self.store.executions += 1
        if method == "DELETE":
            return 200, self.store.apply_delete(key)
        current = self.store.values.get(key)
        if "prev_value" in request.query or "prev_revision" in request.query:
            if "prev_value" in request.query:
                matches = current is not None and current[0] == request.query["prev_value"]
            else:
                matches = (current[2] if current else 0) == int(request.query["prev_revision"])
            if not matches:
                fields = {
                    "current_value": current and current[0],
                    "current_revision": current[2] if current else 0,
                    "revision": self.store.revision,
                }
                return 412, {"code": "compare_failed", "message": "compare failed", **fields}
            result = self.store.apply_put(key, body["value"])
            return 200, {
                "key": key,
                "revision": result["revision"],
                "succeeded": True,
                "value": body["value"],
            }
        return 200, self.store.apply_put(key, body["value"])

    async def range_route(self, request: web.Request) -> web.Response:
        self.record(request)
        prefix = request.query.get("prefix", "")
        after = request.query.get("after", "")
        limit = int(request.query.get("limit", "1000"))
        keys = sorted(k for k in self.store.values if k.startswith(prefix) and k > after)
        items = [
            {
                "key": k,
                "value": self.store.values[k][0],
                "create_revision": self.store.values[k][1],
                "mod_revision": self.store.values[k][2],
                "version": self.store.values[k][3],
            }
            for k in keys[:limit]
        ]
        body = {"revision": self.store.revision, "items": items, "more": len(keys) > limit}
        return web.json_response(body)

    async def status_route(self, request: web.Request) -> web.Response:
        self.record(request)
        body = {
            "id": self.node_id,
            "cluster_id": "fake",
            "role": "leader" if self.leader else "follower",
            "term": 3,
            "leader": None,
            "leader_api": self.leader_api,
            "commit_index": 10,
            "applied_index": 10,
            "last_index": 10,
            "revision": self.store.revision,
            "voters": [1, 2, 3],
            "learners": [],
            "members": [{"id": 1, "peer_address": "h:1", "api_address": "h:2"}],
            "peers": {},
        }
        return web.json_response(body)

    async def watch_route(self, request: web.Request) -> web.StreamResponse:
        self.record(request)
        if "from_revision" in request.query:
            next_revision = int(request.query["from_revision"])
        elif "Last-Event-ID" in request.headers:
            next_revision = int(request.headers["Last-Event-ID"]) + 1
        else:
            next_revision = self.store.revision + 1
        if self.store.history and next_revision < self.store.history[0]["revision"]:
            return error(410, "compacted", oldest_revision=self.store.history[0]["revision"])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        sent = 0
        try:
            while not self.stopping:
                for event in [e for e in self.store.history if e["revision"] >= next_revision]:
                    if sent == self.drop_watch_after_events:
                        self.drop_watch_after_events = None  # drop once
                        if self.drop_with_error_event:
                            data = json.dumps({"code": "slow_watcher", "message": "too slow"})
                            await response.write(f"event: error\ndata: {data}\n\n".encode())
                        return response
                    frame = (
                        f"id: {event['revision']}\nevent: {event['type']}\n"
                        f"data: {json.dumps(event)}\n\n"
                    )
                    await response.write(frame.encode())
                    next_revision = event["revision"] + 1
                    sent += 1
                await response.write(b": keep-alive\n\n")
                await asyncio.sleep(0.02)
        except (ConnectionResetError, ConnectionError):
            pass
        return response


def refused_address() -> str:
    """An address nothing listens on (a port just bound and released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return f"{HOST}:{port}"


@asynccontextmanager
async def serve_in_loop(nodes: Sequence[FakeNode]) -> AsyncIterator[list[str]]:
    runners: list[web.AppRunner] = []
    try:
        for node in nodes:
            runner = web.AppRunner(node.app, shutdown_timeout=0.5)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, HOST, 0)
            await site.start()
            port = runner.addresses[0][1]
            node.address = f"{HOST}:{port}"
        yield [node.address for node in nodes]
    finally:
        for node in nodes:
            node.stopping = True
        for runner in runners:
            await runner.cleanup()


@contextmanager
def serve_in_thread(nodes: Sequence[FakeNode]) -> Iterator[list[str]]:
    """Run the nodes in a background thread with its own event loop."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None
    failure: list[BaseException] = []

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            async with serve_in_loop(nodes):
                started.set()
                await stop.wait()
        except BaseException as exc:
            failure.append(exc)
            started.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        started.wait(10)
        if failure:
            raise failure[0]
        yield [node.address for node in nodes]
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
