"""The HTTP requests of the Conclave API and what each answer means, shared by both clients.

Rules:
- Pure: no I/O. An `Operation` is one API call described as data: the request to send, which
  error codes are answers rather than failures (`key_not_found` for a get, `compare_failed`
  for a compare-and-set), how to decode the answer, and how it may be retried.
- Keys travel percent-encoded in the path (`/` kept, docs/http-api.md "Keys"); query values
  are percent-encoded; bodies are UTF-8 JSON objects.
- Arguments the server is sure to refuse (an empty key, both compares at once, a bad limit)
  raise `InvalidRequestError` before anything is sent.
- `judge_response` maps a status and body to one `Verdict`: ANSWER (2xx or an answer code),
  REDIRECT (421 with a `leader_api`), RETRY (421 without one, 503, 504) or FAIL (anything
  else, raised at once). A RETRY says whether the attempt may have taken effect (504 and
  `proposal_dropped` may have: the proposal can be in a log) and whether to try another node.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote, urlencode

from conclave.client.errors import (
    CompactedError,
    ConclaveClientError,
    InvalidRequestError,
    MemberChangeError,
    NoLeaderError,
    OperationTimeout,
    ProtocolError,
    StaleRequestError,
    UnavailableError,
)
from conclave.client.models import (
    Body,
    CasResult,
    DeleteResult,
    KeyValue,
    MemberAdded,
    PutResult,
    RangeResult,
    Status,
    cas_failure_from_body,
    cas_success_from_body,
    delete_result_from_body,
    key_value_from_body,
    leader_from_body,
    member_added_from_body,
    put_result_from_body,
    range_result_from_body,
    status_from_body,
)
from conclave.client.sessions import REQUEST_ID_HEADER

T = TypeVar("T")
Consistency = Literal["linearizable", "serializable"]
CONSISTENCIES: tuple[str, ...] = ("linearizable", "serializable")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request: `target` is the percent-encoded path with its query."""

    method: str
    target: str
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def with_header(self, name: str, value: str) -> "HttpRequest":
        return replace(self, headers={**self.headers, name: value})

    def all_headers(self) -> dict[str, str]:
        """The headers to send, with the JSON content type when there is a body."""
        headers = {"Accept": "application/json", **self.headers}
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        return headers


@dataclass(frozen=True, slots=True)
class Operation(Generic[T]):
    """One API call: its request, its answers and how it may be retried."""

    request: HttpRequest
    decode: Callable[[int, Body], T]  # (status, body) of an ANSWER -> the call's result
    answer_codes: frozenset[str] = frozenset()
    idempotent_write: bool = False  # carries a Conclave-Request-Id, reused by every retry
    retry_after_unknown_outcome: bool = True  # False: a 504 ends the call (not idempotent)
    remember_endpoint: bool = True  # an answer makes the answering endpoint preferred


class Action(Enum):
    ANSWER = "answer"
    REDIRECT = "redirect"
    RETRY = "retry"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one response."""

    action: Action
    error: ConclaveClientError | None = None  # the failure, for every action but ANSWER
    leader_api: str | None = None  # REDIRECT: where the leader's API is
    maybe_took_effect: bool = False  # RETRY: the attempt may have been executed
    switch_endpoint: bool = True  # RETRY: try the next endpoint (False: this node is fine)


def json_body(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def decode_body(raw: bytes) -> dict[str, Any]:
    """Decode a response body; a body that is not a JSON object becomes `{"message": text}`."""
    try:
        decoded = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError):
        decoded = None
    if isinstance(decoded, dict):
        return decoded
    return {"message": raw[:500].decode(errors="replace")}


def _target(path: str, query: Mapping[str, str | int | None] | None = None) -> str:
    pairs = {name: str(value) for name, value in (query or {}).items() if value is not None}
    return f"{path}?{urlencode(pairs, quote_via=quote)}" if pairs else path


def _key_path(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidRequestError("the key must be a non-empty string", code="invalid_key")
    return "/v1/kv/" + quote(key, safe="/")


def _check_value(value: str) -> None:
    if not isinstance(value, str):
        raise InvalidRequestError("the value must be a string", code="invalid_argument")


def _check_consistency(consistency: str) -> None:
    if consistency not in CONSISTENCIES:
        raise InvalidRequestError(
            f"consistency must be one of {CONSISTENCIES}, not {consistency!r}",
            code="invalid_argument",
        )


def _body_only(decode: Callable[[Body], T]) -> Callable[[int, Body], T]:
    return lambda _status, body: decode(body)


def put_operation(key: str, value: str) -> Operation[PutResult]:
    _check_value(value)
    request = HttpRequest("PUT", _key_path(key), json_body({"value": value}))
    return Operation(request, _body_only(put_result_from_body), idempotent_write=True)


def cas_operation(
    key: str, value: str, *, prev_revision: int | None, prev_value: str | None
) -> Operation[CasResult]:
    _check_value(value)
    if (prev_revision is None) == (prev_value is None):
        raise InvalidRequestError(
            "give exactly one of prev_revision and prev_value", code="invalid_argument"
        )
    if prev_revision is not None and (isinstance(prev_revision, bool) or prev_revision < 0):
        raise InvalidRequestError("prev_revision must be >= 0", code="invalid_argument")
    query = {"prev_revision": prev_revision, "prev_value": prev_value}
    request = HttpRequest("PUT", _target(_key_path(key), query), json_body({"value": value}))

    def decode(status: int, body: Body) -> CasResult:
        if status == 412:
            return cas_failure_from_body(key, body)
        return cas_success_from_body(body)

    return Operation(
        request, decode, answer_codes=frozenset({"compare_failed"}), idempotent_write=True
    )


def get_operation(key: str, consistency: Consistency) -> Operation[KeyValue | None]:
    _check_consistency(consistency)
    request = HttpRequest("GET", _target(_key_path(key), {"consistency": consistency}))

    def decode(status: int, body: Body) -> KeyValue | None:
        return None if status == 404 else key_value_from_body(body)

    return Operation(request, decode, answer_codes=frozenset({"key_not_found"}))


def delete_operation(key: str) -> Operation[DeleteResult]:
    request = HttpRequest("DELETE", _key_path(key))
    return Operation(request, _body_only(delete_result_from_body), idempotent_write=True)


def range_operation(
    prefix: str, *, after: str | None, limit: int | None, consistency: Consistency
) -> Operation[RangeResult]:
    _check_consistency(consistency)
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise InvalidRequestError("limit must be a positive integer", code="invalid_argument")
    query: dict[str, str | int | None] = {
        "prefix": prefix or None,
        "after": after,
        "limit": limit,
        "consistency": consistency,
    }
    request = HttpRequest("GET", _target("/v1/kv", query))
    return Operation(request, _body_only(range_result_from_body))


def status_operation() -> Operation[Status]:
    request = HttpRequest("GET", "/v1/status")
    return Operation(request, _body_only(status_from_body), remember_endpoint=False)


def add_member_operation(
    member_id: int, peer_address: str, api_address: str, *, learner: bool
) -> Operation[MemberAdded]:
    fields = {
        "id": member_id,
        "peer_address": peer_address,
        "api_address": api_address,
        "learner": learner,
    }
    request = HttpRequest("POST", "/v1/members", json_body(fields))
    return Operation(request, _body_only(member_added_from_body), retry_after_unknown_outcome=False)


def remove_member_operation(member_id: int) -> Operation[None]:
    request = HttpRequest("DELETE", f"/v1/members/{int(member_id)}")
    return Operation(request, lambda _status, _body: None, retry_after_unknown_outcome=False)


def transfer_leader_operation(to: int | None) -> Operation[int]:
    fields = {} if to is None else {"to": to}
    request = HttpRequest("POST", "/v1/leader/transfer", json_body(fields))
    return Operation(request, _body_only(leader_from_body))


def watch_request(prefix: str, *, from_revision: int) -> HttpRequest:
    """The watch request resuming at `from_revision` (also given as `Last-Event-ID`)."""
    query: dict[str, str | int | None] = {"prefix": prefix or None, "from_revision": from_revision}
    request = HttpRequest(
        "GET", _target("/v1/watch", query), headers={"Accept": "text/event-stream"}
    )
    if from_revision > 1:
        request = request.with_header("Last-Event-ID", str(from_revision - 1))
    return request


def with_request_id(request: HttpRequest, request_id: str) -> HttpRequest:
    return request.with_header(REQUEST_ID_HEADER, request_id)


def _message(status: int, body: Body) -> str:
    message = body.get("message")
    return str(message) if message else f"HTTP {status}"


def error_from_response(status: int, body: Body) -> ConclaveClientError:
    """The exception for a failed response (by `code`, else by status)."""
    code = str(body.get("code") or f"http_{status}")
    message = _message(status, body)
    error_class: type[ConclaveClientError]
    if code == "stale_request":
        error_class = StaleRequestError
    elif code == "member_error":
        error_class = MemberChangeError
    elif code == "compacted" or status == 410:
        error_class = CompactedError
    elif code == "no_leader" or status == 421:
        error_class = NoLeaderError
    elif status == 503:
        error_class = UnavailableError
    elif status == 504:
        error_class = OperationTimeout
    elif 400 <= status < 500:
        error_class = InvalidRequestError
    else:
        error_class = ProtocolError
    return error_class(message, code=code, status=status, body=body)


def judge_response(status: int, body: Body, *, answer_codes: frozenset[str]) -> Verdict:
    """Decide what one response means for the call that got it."""
    if 200 <= status < 300 or body.get("code") in answer_codes:
        return Verdict(Action.ANSWER)
    error = error_from_response(status, body)
    if status == 421:
        leader_api = body.get("leader_api")
        if isinstance(leader_api, str) and leader_api:
            return Verdict(Action.REDIRECT, error, leader_api=leader_api)
        return Verdict(Action.RETRY, error)
    if status == 503:
        maybe_took_effect = body.get("code") == "proposal_dropped"
        return Verdict(Action.RETRY, error, maybe_took_effect=maybe_took_effect)
    if status == 504:
        return Verdict(Action.RETRY, error, maybe_took_effect=True, switch_endpoint=False)
    return Verdict(Action.FAIL, error)
