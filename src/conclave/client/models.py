"""Typed results of the Conclave HTTP API and their decoding from JSON bodies.

Rules:
- Every result is a frozen dataclass built from one decoded JSON body by a `*_from_body`
  function; a body missing a field or with a field of the wrong type raises `ProtocolError`
  (never a KeyError or TypeError), so a server mismatch is reported as what it is.
- Revisions follow docs/http-api.md: `revision` is the store revision after (or at) the call;
  an absent key has `mod_revision` 0, and a failed compare reports `current_revision` 0 when
  the key is absent.
- `CasResult.current_value` / `current_revision` always describe the key after the call: the
  new value on success, the value that made the compare fail otherwise.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from conclave.client.errors import ProtocolError

Body = Mapping[str, Any]
WatchEventType = Literal["put", "delete"]


@dataclass(frozen=True, slots=True)
class KeyValue:
    """A key with its value and revisions; `revision` is the store revision of the read."""

    key: str
    value: str
    revision: int
    create_revision: int
    mod_revision: int
    version: int


@dataclass(frozen=True, slots=True)
class PutResult:
    """An unconditional put; `prev_value` is None when the key was absent."""

    key: str
    revision: int
    prev_value: str | None


@dataclass(frozen=True, slots=True)
class CasResult:
    """A compare-and-set; a failed compare is `succeeded=False`, not an exception."""

    key: str
    revision: int
    succeeded: bool
    value: str | None  # the value written; None when the compare failed
    current_value: str | None  # the key's value after the call; None when absent
    current_revision: int  # the key's mod_revision after the call; 0 when absent


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """A delete; `deleted` is False (and `prev_value` None) when the key was absent."""

    key: str
    deleted: bool
    revision: int
    prev_value: str | None


@dataclass(frozen=True, slots=True)
class RangeResult:
    """One page of keys in order; when `more`, ask again with `after=items[-1].key`."""

    revision: int
    items: tuple[KeyValue, ...]
    more: bool


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change seen by a watch; `value` is None for a delete."""

    type: WatchEventType
    key: str
    value: str | None
    revision: int


@dataclass(frozen=True, slots=True)
class Member:
    """A cluster member as listed by `/v1/status`."""

    id: int
    peer_address: str
    api_address: str


@dataclass(frozen=True, slots=True)
class Status:
    """A node's view of the cluster (`GET /v1/status`); `raw` keeps the whole body."""

    id: int
    cluster_id: str
    role: str
    term: int
    leader: int | None
    leader_api: str | None
    commit_index: int
    applied_index: int
    last_index: int
    revision: int
    voters: tuple[int, ...]
    learners: tuple[int, ...]
    members: tuple[Member, ...]
    raw: Body = field(repr=False, compare=False)

    @property
    def is_leader(self) -> bool:
        return self.role == "leader"


@dataclass(frozen=True, slots=True)
class MemberAdded:
    """`POST /v1/members` answered: `voter` is False when the node was kept a learner."""

    id: int
    voter: bool


def _field(body: Body, name: str) -> Any:
    if name not in body:
        raise ProtocolError(f"response has no {name!r}", code="bad_response", body=body)
    return body[name]


def _int(body: Body, name: str) -> int:
    value = _field(body, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{name!r} is not an integer", code="bad_response", body=body)
    return value


def _optional_int(body: Body, name: str) -> int | None:
    return None if body.get(name) is None else _int(body, name)


def _bool(body: Body, name: str) -> bool:
    value = _field(body, name)
    if not isinstance(value, bool):
        raise ProtocolError(f"{name!r} is not a boolean", code="bad_response", body=body)
    return value


def _str(body: Body, name: str) -> str:
    value = _field(body, name)
    if not isinstance(value, str):
        raise ProtocolError(f"{name!r} is not a string", code="bad_response", body=body)
    return value


def _optional_str(body: Body, name: str) -> str | None:
    return None if body.get(name) is None else _str(body, name)


def _int_list(body: Body, name: str) -> tuple[int, ...]:
    values = body.get(name, [])
    if not isinstance(values, list) or not all(isinstance(v, int) for v in values):
        raise ProtocolError(f"{name!r} is not a list of integers", code="bad_response", body=body)
    return tuple(values)


def _objects(body: Body, name: str) -> list[Body]:
    values = _field(body, name)
    if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
        raise ProtocolError(f"{name!r} is not a list of objects", code="bad_response", body=body)
    return values


def key_value_from_body(body: Body, *, revision: int | None = None) -> KeyValue:
    """Decode a GET body, or a range item (which takes the page's `revision`)."""
    return KeyValue(
        key=_str(body, "key"),
        value=_str(body, "value"),
        revision=_int(body, "revision") if revision is None else revision,
        create_revision=_int(body, "create_revision"),
        mod_revision=_int(body, "mod_revision"),
        version=_int(body, "version"),
    )


def put_result_from_body(body: Body) -> PutResult:
    return PutResult(
        key=_str(body, "key"),
        revision=_int(body, "revision"),
        prev_value=_optional_str(body, "prev_value"),
    )


def cas_success_from_body(body: Body) -> CasResult:
    value = _str(body, "value")
    revision = _int(body, "revision")
    return CasResult(
        key=_str(body, "key"),
        revision=revision,
        succeeded=True,
        value=value,
        current_value=value,
        current_revision=revision,
    )


def cas_failure_from_body(key: str, body: Body) -> CasResult:
    """Decode a `412 compare_failed` body (it does not repeat the key)."""
    return CasResult(
        key=key,
        revision=_int(body, "revision"),
        succeeded=False,
        value=None,
        current_value=_optional_str(body, "current_value"),
        current_revision=_int(body, "current_revision"),
    )


def delete_result_from_body(body: Body) -> DeleteResult:
    return DeleteResult(
        key=_str(body, "key"),
        deleted=_bool(body, "deleted"),
        revision=_int(body, "revision"),
        prev_value=_optional_str(body, "prev_value"),
    )


def range_result_from_body(body: Body) -> RangeResult:
    revision = _int(body, "revision")
    items = tuple(key_value_from_body(item, revision=revision) for item in _objects(body, "items"))
    return RangeResult(revision=revision, items=items, more=_bool(body, "more"))


def watch_event_from_body(body: Body) -> WatchEvent:
    event_type = _str(body, "type")
    if event_type not in ("put", "delete"):
        raise ProtocolError(f"unknown watch event {event_type!r}", code="bad_response", body=body)
    return WatchEvent(
        type="put" if event_type == "put" else "delete",
        key=_str(body, "key"),
        value=_optional_str(body, "value"),
        revision=_int(body, "revision"),
    )


def member_from_body(body: Body) -> Member:
    return Member(
        id=_int(body, "id"),
        peer_address=_str(body, "peer_address"),
        api_address=_str(body, "api_address"),
    )


def status_from_body(body: Body) -> Status:
    return Status(
        id=_int(body, "id"),
        cluster_id=str(_field(body, "cluster_id")),
        role=_str(body, "role"),
        term=_int(body, "term"),
        leader=_optional_int(body, "leader"),
        leader_api=_optional_str(body, "leader_api"),
        commit_index=_int(body, "commit_index"),
        applied_index=_int(body, "applied_index"),
        last_index=_int(body, "last_index"),
        revision=_int(body, "revision"),
        voters=_int_list(body, "voters"),
        learners=_int_list(body, "learners"),
        members=tuple(member_from_body(m) for m in _objects(body, "members")),
        raw=body,
    )


def member_added_from_body(body: Body) -> MemberAdded:
    return MemberAdded(id=_int(body, "id"), voter=_bool(body, "voter"))


def leader_from_body(body: Body) -> int:
    return _int(body, "leader")
