"""`Client`: the blocking client of a Conclave cluster's HTTP API (docs/http-api.md).

Rules:
- Built on the standard library (`http.client`), no event loop: keep-alive connections are
  pooled per endpoint; a connection serves one request at a time and goes back to the pool
  once its response is read whole. The client may be shared by threads.
- Calls behave exactly like `AsyncClient`'s: the same `Operation`s, `RetryPlan`, endpoint ring
  and session pool; only the exchange of bytes differs.
- An attempt that failed while connecting did not take effect; one that failed after the
  request was written may have. When a kept-alive connection turns out closed by the server,
  an idempotent request is resent at once on a fresh connection (no back-off, no new attempt).
- `watch` is a generator holding its own connection: close it (`contextlib.closing`) when
  done early.
"""

import contextlib
import http.client
import random
import select
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from types import TracebackType
from typing import TypeVar
from urllib.parse import urlsplit

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
from conclave.client.watch import WatchState, WatchStreamEnded

T = TypeVar("T")

_EXCHANGE_ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)
# What a kept-alive connection closed by the server while idle fails with.
_STALE_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
)
_MIN_ATTEMPT_SECONDS = 0.001


class _NotSentError(Exception):
    """Connecting failed: the request never left."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.cause = cause


def _new_connection(endpoint: str) -> http.client.HTTPConnection:
    parts = urlsplit(endpoint)
    host, port = parts.hostname or "", parts.port
    if parts.scheme == "https":
        return http.client.HTTPSConnection(host, port)
    return http.client.HTTPConnection(host, port)


def _connect(connection: http.client.HTTPConnection, timeout_seconds: float) -> None:
    connection.timeout = max(timeout_seconds, _MIN_ATTEMPT_SECONDS)
    try:
        connection.connect()
    except OSError as exc:
        connection.close()
        raise _NotSentError(exc) from exc


def _set_read_timeout(connection: http.client.HTTPConnection, timeout_seconds: float) -> None:
    connection.timeout = timeout_seconds
    if connection.sock is not None:
        connection.sock.settimeout(timeout_seconds)


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """True when an idle kept-alive connection was closed by the server (as urllib3 checks).

    An idle HTTP connection has nothing to read; readable means EOF or a reset. Reusing such a
    connection would make even a request that never reached the server look "maybe sent".
    """
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class _ConnectionPool:
    """Idle keep-alive connections per endpoint."""

    def __init__(self) -> None:
        self._idle: dict[str, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def take(self, endpoint: str) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection (reused=True) or a new, unconnected one (reused=False)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the client is closed")
            idle = self._idle.get(endpoint, [])
            while idle:
                connection = idle.pop()
                if not _dropped(connection):
                    return connection, True
                connection.close()
        return _new_connection(endpoint), False

    def give_back(self, endpoint: str, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.setdefault(endpoint, []).append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


class Client:
    """A blocking client of a Conclave cluster; same API as `AsyncClient`, without `await`."""

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
        self._connections = _ConnectionPool()

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The known endpoints as base URLs, in order."""
        return self._ring.endpoints

    @property
    def preferred_endpoint(self) -> str:
        """The endpoint the next call starts at (the last one that answered)."""
        return self._ring.preferred()

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection; the client cannot be used afterwards."""
        self._connections.close()

    # Keys

    def put(self, key: str, value: str) -> PutResult:
        """Set `key` to `value` (executed at most once, whatever the retries)."""
        return self._call(put_operation(key, value))

    def cas(
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
        return self._call(operation)

    def get(self, key: str, *, consistency: Consistency = "linearizable") -> KeyValue | None:
        """The key's value and revisions, or None when it is absent."""
        return self._call(get_operation(key, consistency))

    def delete(self, key: str) -> DeleteResult:
        """Delete `key` (executed at most once); `deleted` is False when it was absent."""
        return self._call(delete_operation(key))

    def range(
        self,
        prefix: str = "",
        *,
        after: str | None = None,
        limit: int | None = None,
        consistency: Consistency = "linearizable",
    ) -> RangeResult:
        """One page of the keys starting with `prefix`, after the key `after`, in key order."""
        operation = range_operation(prefix, after=after, limit=limit, consistency=consistency)
        return self._call(operation)

    def items(
        self,
        prefix: str = "",
        *,
        page_size: int | None = None,
        consistency: Consistency = "linearizable",
    ) -> Iterator[KeyValue]:
        """Every key starting with `prefix`, page by page (each page is its own read)."""
        after: str | None = None
        while True:
            page = self.range(prefix, after=after, limit=page_size, consistency=consistency)
            yield from page.items
            if not page.more or not page.items:
                return
            after = page.items[-1].key

    def watch(
        self, prefix: str = "", *, from_revision: int | None = None
    ) -> Generator[WatchEvent, None, None]:
        """Changes of keys starting with `prefix`, from `from_revision` (default: the store
        revision when iteration starts, plus one).

        Resumes on any node after the last delivered revision when a stream ends; raises
        `CompactedError` when a node no longer has the history to resume from.
        """
        if from_revision is None:
            from_revision = self.status().revision + 1
        state = WatchState(prefix, from_revision, self._plan)
        while True:
            try:
                yield from self._watch_stream(state)
                delay_seconds = state.closed()
            except WatchStreamEnded as exc:
                delay_seconds = state.lost(exc)
            except _NotSentError as exc:
                delay_seconds = state.lost(connection_error(state.endpoint, exc.cause))
            except _EXCHANGE_ERRORS as exc:
                delay_seconds = state.lost(connection_error(state.endpoint, exc))
            time.sleep(delay_seconds)

    # Cluster

    def status(self, endpoint: str | None = None) -> Status:
        """A node's view of the cluster: `endpoint`'s (one attempt), else any node's."""
        return self._call(status_operation(), endpoint=endpoint)

    def add_member(
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
        return self._call(operation, timeout=timeout)

    def remove_member(self, id: int, *, timeout: float | None = None) -> None:  # noqa: A002
        """Remove a node from the cluster."""
        self._call(remove_member_operation(id), timeout=timeout)

    def transfer_leader(self, to: int | None = None, *, timeout: float | None = None) -> int:
        """Hand leadership to `to` (default: the most caught-up voter); return the new leader."""
        return self._call(transfer_leader_operation(to), timeout=timeout)

    # Machinery

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

    def _call(
        self,
        operation: Operation[T],
        *,
        timeout: float | None = None,
        endpoint: str | None = None,
    ) -> T:
        plan = self._plan(operation, timeout=timeout, endpoint=endpoint)
        if not operation.idempotent_write:
            return self._attempt_until_answered(operation, operation.request, plan)
        with self._sessions.request_id() as request_id:
            request = with_request_id(operation.request, request_id)
            return self._attempt_until_answered(operation, request, plan)

    def _attempt_until_answered(
        self, operation: Operation[T], request: HttpRequest, plan: RetryPlan
    ) -> T:
        while True:
            plan.started()
            try:
                status, body = self._exchange(
                    plan.endpoint,
                    request,
                    plan,
                    resend_if_stale=operation.retry_after_unknown_outcome,
                )
            except _NotSentError as exc:
                error = connection_error(plan.endpoint, exc.cause)
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
            time.sleep(delay_seconds)

    def _exchange(
        self, endpoint: str, request: HttpRequest, plan: RetryPlan, *, resend_if_stale: bool
    ) -> tuple[int, Body]:
        connection, reused = self._connections.take(endpoint)
        if reused and resend_if_stale:
            try:
                return self._exchange_on(endpoint, connection, request, plan)
            except _STALE_CONNECTION_ERRORS:
                connection = _new_connection(endpoint)
        return self._exchange_on(endpoint, connection, request, plan)

    def _exchange_on(
        self,
        endpoint: str,
        connection: http.client.HTTPConnection,
        request: HttpRequest,
        plan: RetryPlan,
    ) -> tuple[int, Body]:
        if connection.sock is None:
            _connect(connection, plan.connect_timeout_seconds())
        try:
            _set_read_timeout(connection, max(plan.remaining_seconds(), _MIN_ATTEMPT_SECONDS))
            connection.request(
                request.method, request.target, body=request.body, headers=request.all_headers()
            )
            response = connection.getresponse()
            raw = response.read()
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._connections.give_back(endpoint, connection)
        return response.status, decode_body(raw)

    def _watch_stream(self, state: WatchState) -> Iterator[WatchEvent]:
        """Open one stream at `state.endpoint` and yield its events until it ends."""
        request = state.request()
        connection = _new_connection(state.endpoint)
        with contextlib.closing(connection):
            _connect(connection, state.connect_timeout_seconds())
            _set_read_timeout(connection, self._watch_idle_seconds)
            connection.request(request.method, request.target, headers=request.all_headers())
            response = connection.getresponse()
            if response.status != 200:
                state.refused(response.status, decode_body(response.read()))
                return
            state.opened()
            while line := response.readline():
                event = state.line_received(line.decode(errors="replace"))
                if event is not None:
                    yield event


__all__ = ["Client"]
