"""`AsyncClient`: the asyncio client of a Conclave cluster's HTTP API (docs/http-api.md).

Rules:
- One `aiohttp.ClientSession` per client, opened on first use (or by `async with`) and closed
  by `close()`. The client may be used by many tasks at once.
- Every call runs a `RetryPlan` against one deadline (`timeout` seconds, per call): it starts
  at the preferred endpoint, follows `421 not_leader` redirects, and moves on after connection
  errors and 503/504 answers with a bounded, jittered back-off (see `conclave.client.retry`).
  4xx answers raise at once.
- Writes (put, cas, delete) hold one session of the pool for the whole call and send its
  `Conclave-Request-Id` on every attempt (see `conclave.client.sessions`).
- An attempt that failed to connect did not take effect; one that failed after the request
  was sent (lost connection, read timeout) may have.
- `watch` is an async generator: close it (`contextlib.aclosing`) when done early, so its
  connection is released.
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator, Sequence
from types import TracebackType
from typing import TypeVar

import aiohttp
import yarl

from conclave.client.endpoints import EndpointRing, normalize_endpoint
from conclave.client.models import (
    Body,
    CasResult,
    DeleteResult,
    KeyValue,
    MemberAdded,
    PutResult,
    RangeResult,
    Status,
    WatchEvent,
)
from conclave.client.protocol import (
    Action,
    Consistency,
    HttpRequest,
    Operation,
    add_member_operation,
    cas_operation,
    decode_body,
    delete_operation,
    get_operation,
    judge_response,
    put_operation,
    range_operation,
    remove_member_operation,
    status_operation,
    transfer_leader_operation,
    with_request_id,
)
from conclave.client.retry import RetryPlan, RetryPolicy, connection_error
from conclave.client.sessions import SessionPool
from conclave.client.watch import LineSplitter, WatchState, WatchStreamEnded

T = TypeVar("T")

# Failures before the request left: the attempt cannot have taken effect.
_NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
# Failures after the request may have left.
_EXCHANGE_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError)
_MIN_ATTEMPT_SECONDS = 0.001
_READ_CHUNK_BYTES = 65536


class AsyncClient:
    """A client of a Conclave cluster for asyncio code.

    `endpoints` are "host:port" or "http://host:port" of some nodes (a leader named by a node
    is added when unknown). `timeout` bounds every call, retries included.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        watch_idle_seconds: float = 30.0,
    ) -> None:
        self._ring = EndpointRing(endpoints)
        self._timeout_seconds = timeout
        self._retry = retry or RetryPolicy()
        self._watch_idle_seconds = watch_idle_seconds
        self._sessions = SessionPool()
        self._rng = random.Random()
        self._http: aiohttp.ClientSession | None = None
        self._closed = False

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The known endpoints as base URLs, in order."""
        return self._ring.endpoints

    @property
    def preferred_endpoint(self) -> str:
        """The endpoint the next call starts at (the last one that answered)."""
        return self._ring.preferred()

    async def __aenter__(self) -> "AsyncClient":
        self._http_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session; the client cannot be used afterwards."""
        self._closed = True
        if self._http is not None:
            await self._http.close()
            self._http = None

    # Keys

    async def put(self, key: str, value: str) -> PutResult:
        """Set `key` to `value` (executed at most once, whatever the retries)."""
        return await self._call(put_operation(key, value))

    async def cas(
        self,
        key: str,
        value: str,
        *,
        prev_revision: int | None = None,
        prev_value: str | None = None,
    ) -> CasResult:
        """Set `key` only if its mod_revision is `prev_revision` (0: absent) or its value is
        `prev_value` (give exactly one); a mismatch returns `succeeded=False`."""
        operation = cas_operation(key, value, prev_revision=prev_revision, prev_value=prev_value)
        return await self._call(operation)

    async def get(self, key: str, *, consistency: Consistency = "linearizable") -> KeyValue | None:
        """The key's value and revisions, or None when it is absent."""
        return await self._call(get_operation(key, consistency))

    async def delete(self, key: str) -> DeleteResult:
        """Delete `key` (executed at most once); `deleted` is False when it was absent."""
        return await self._call(delete_operation(key))

    async def range(
        self,
        prefix: str = "",
        *,
        after: str | None = None,
        limit: int | None = None,
        consistency: Consistency = "linearizable",
    ) -> RangeResult:
        """One page of the keys starting with `prefix`, after the key `after`, in key order."""
        operation = range_operation(prefix, after=after, limit=limit, consistency=consistency)
        return await self._call(operation)

    async def items(
        self,
        prefix: str = "",
        *,
        page_size: int | None = None,
        consistency: Consistency = "linearizable",
    ) -> AsyncGenerator[KeyValue, None]:
        """Every key starting with `prefix`, page by page (each page is its own read)."""
        after: str | None = None
        while True:
            page = await self.range(prefix, after=after, limit=page_size, consistency=consistency)
            for item in page.items:
                yield item
            if not page.more or not page.items:
                return
            after = page.items[-1].key

    async def watch(
        self, prefix: str = "", *, from_revision: int | None = None
    ) -> AsyncGenerator[WatchEvent, None]:
        """Changes of keys starting with `prefix`, from `from_revision` (default: the store
        revision when iteration starts, plus one).

        Resumes on any node after the last delivered revision when a stream ends; raises
        `CompactedError` when a node no longer has the history to resume from.
        """
        if from_revision is None:
            from_revision = (await self.status()).revision + 1
        state = WatchState(prefix, from_revision, self._watch_plan)
        while True:
            try:
                async with contextlib.aclosing(self._watch_stream(state)) as events:
                    async for event in events:
                        yield event
                delay_seconds = state.closed()
            except WatchStreamEnded as exc:
                delay_seconds = state.lost(exc)
            except _NOT_SENT_ERRORS + _EXCHANGE_ERRORS as exc:
                delay_seconds = state.lost(connection_error(state.endpoint, exc))
            await asyncio.sleep(delay_seconds)

    # Cluster

    async def status(self, endpoint: str | None = None) -> Status:
        """A node's view of the cluster: `endpoint`'s (one attempt), else any node's."""
        return await self._call(status_operation(), endpoint=endpoint)

    async def add_member(
        self,
        id: int,  # noqa: A002 - the API's own field name
        peer_address: str,
        api_address: str,
        learner: bool = False,
        *,
        timeout: float | None = None,
    ) -> MemberAdded:
        """Add a node (as a learner, promoted once caught up unless `learner`)."""
        operation = add_member_operation(id, peer_address, api_address, learner=learner)
        return await self._call(operation, timeout=timeout)

    async def remove_member(self, id: int, *, timeout: float | None = None) -> None:  # noqa: A002
        """Remove a node from the cluster."""
        await self._call(remove_member_operation(id), timeout=timeout)

    async def transfer_leader(self, to: int | None = None, *, timeout: float | None = None) -> int:
        """Hand leadership to `to` (default: the most caught-up voter); return the new leader."""
        return await self._call(transfer_leader_operation(to), timeout=timeout)

    # Machinery

    def _http_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the client is closed")
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self._http

    def _plan(
        self,
        operation: Operation[T] | None = None,
        *,
        timeout: float | None = None,
        endpoint: str | None = None,
    ) -> RetryPlan:
        return RetryPlan(
            self._ring,
            self._retry,
            timeout_seconds=self._timeout_seconds if timeout is None else timeout,
            rng=self._rng,
            retry_after_unknown_outcome=operation is None or operation.retry_after_unknown_outcome,
            remember_endpoint=operation is not None and operation.remember_endpoint,
            single_endpoint=None if endpoint is None else normalize_endpoint(endpoint),
        )

    def _watch_plan(self) -> RetryPlan:
        return self._plan()

    async def _call(
        self,
        operation: Operation[T],
        *,
        timeout: float | None = None,
        endpoint: str | None = None,
    ) -> T:
        plan = self._plan(operation, timeout=timeout, endpoint=endpoint)
        if not operation.idempotent_write:
            return await self._attempt_until_answered(operation, operation.request, plan)
        with self._sessions.request_id() as request_id:
            request = with_request_id(operation.request, request_id)
            return await self._attempt_until_answered(operation, request, plan)

    async def _attempt_until_answered(
        self, operation: Operation[T], request: HttpRequest, plan: RetryPlan
    ) -> T:
        while True:
            plan.started()
            try:
                status, body = await self._exchange(plan.endpoint, request, plan)
            except _NOT_SENT_ERRORS as exc:
                error = connection_error(plan.endpoint, exc)
                delay_seconds = plan.failed(error, maybe_took_effect=False)
            except _EXCHANGE_ERRORS as exc:
                error = connection_error(plan.endpoint, exc)
                delay_seconds = plan.failed(error, maybe_took_effect=True)
            else:
                verdict = judge_response(status, body, answer_codes=operation.answer_codes)
                if verdict.action is Action.ANSWER:
                    result = operation.decode(status, body)
                    plan.answered()
                    return result
                delay_seconds = plan.refused(verdict)
            await asyncio.sleep(delay_seconds)

    async def _exchange(
        self, endpoint: str, request: HttpRequest, plan: RetryPlan
    ) -> tuple[int, Body]:
        timeout = aiohttp.ClientTimeout(
            total=max(plan.remaining_seconds(), _MIN_ATTEMPT_SECONDS),
            sock_connect=max(plan.connect_timeout_seconds(), _MIN_ATTEMPT_SECONDS),
        )
        async with self._http_session().request(
            request.method,
            yarl.URL(endpoint + request.target, encoded=True),
            data=request.body,
            headers=request.all_headers(),
            timeout=timeout,
        ) as response:
            raw = await response.read()
            return response.status, decode_body(raw)

    async def _watch_stream(self, state: WatchState) -> AsyncGenerator[WatchEvent, None]:
        """Open one stream at `state.endpoint` and yield its events until it ends."""
        request = state.request()
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=max(state.connect_timeout_seconds(), _MIN_ATTEMPT_SECONDS),
            sock_read=self._watch_idle_seconds,
        )
        async with self._http_session().request(
            request.method,
            yarl.URL(state.endpoint + request.target, encoded=True),
            headers=request.all_headers(),
            timeout=timeout,
        ) as response:
            if response.status != 200:
                state.refused(response.status, decode_body(await response.read()))
                return
            state.opened()
            splitter = LineSplitter()
            async for chunk in response.content.iter_any():
                for line in splitter.feed(chunk):
                    event = state.line_received(line)
                    if event is not None:
                        yield event


__all__ = ["AsyncClient"]
