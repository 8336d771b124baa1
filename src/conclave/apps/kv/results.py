"""Typed results of the key-value store.

Rules:
- Revisions follow etcd: one store-wide counter, incremented by every successful write
  (a put, a delete of an existing key, a compare-and-set that swapped). A key records
  `create_revision` (the write that created it), `mod_revision` (the last write to it) and
  `version` (writes since it was created, 1 after creation). Deleting a key forgets all three;
  recreating it starts again at version 1. An absent key has mod_revision 0.
- Every `revision` field of a result is the store revision after the command.
- Results are frozen values with a stable `TAG`: the codec stores them in snapshots (client
  sessions cache the last result of each client), so their encoding must never change.
- A request that cannot be served yields an `ErrorResult` with a stable `ErrorCode`; its
  `message` is written by this package (never an exception text of the Python runtime), so
  every replica produces the same bytes.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class ErrorCode(StrEnum):
    """Why a request was not executed. The values are part of the wire format."""

    MALFORMED = "malformed"  # the entry data is not a valid kv request
    TOO_LARGE = "too_large"  # a key, value or request is over a KVSettings limit
    STALE_SEQUENCE = "stale_sequence"  # seq below the session's last: an old duplicate


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyValue:
    """A key with its value and revisions, as stored and as returned by range queries."""

    TAG: ClassVar[str] = "kv.key_value"
    key: str
    value: str
    create_revision: int
    mod_revision: int
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PutResult:
    """The put happened at `revision`; `prev_value` is what the key held (None: absent)."""

    TAG: ClassVar[str] = "kv.put_result"
    revision: int
    prev_value: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteResult:
    """`deleted` is False when the key was absent (then `revision` did not move)."""

    TAG: ClassVar[str] = "kv.delete_result"
    revision: int
    deleted: bool
    prev_value: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CasResult:
    """Outcome of a compare-and-set.

    `current_value` and `current_revision` describe the key after the command: the new value
    and revision when it swapped, the unchanged ones otherwise (None and 0 for an absent key),
    which is what a client needs for its next attempt.
    """

    TAG: ClassVar[str] = "kv.cas_result"
    succeeded: bool
    revision: int
    current_value: str | None
    current_revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GetResult:
    """A read at store revision `revision`; every key field is None when the key is absent."""

    TAG: ClassVar[str] = "kv.get_result"
    revision: int
    value: str | None
    create_revision: int | None
    mod_revision: int | None
    version: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeResult:
    """Keys of a range query in key order; `more` is True when the limit cut the range."""

    TAG: ClassVar[str] = "kv.range_result"
    revision: int
    items: tuple[KeyValue, ...]
    more: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorResult:
    """The request was not executed (see `ErrorCode`)."""

    TAG: ClassVar[str] = "kv.error"
    code: ErrorCode
    message: str


CommandResult = PutResult | DeleteResult | CasResult | GetResult | ErrorResult

__all__ = [
    "CasResult",
    "CommandResult",
    "DeleteResult",
    "ErrorCode",
    "ErrorResult",
    "GetResult",
    "KeyValue",
    "PutResult",
    "RangeResult",
]
