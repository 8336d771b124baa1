"""Deterministic bytes for kv requests and results; never pickle.

Rules:
- Canonical JSON: UTF-8, sorted keys, compact separators, no NaN. Equal values encode to equal
  bytes on every replica and every Python version, so log entries and snapshots compare
  byte for byte.
- Every object carries its stable `tag`; a request also carries the format version `v`.
  Decoding is strict: the exact field set, exact types (a bool is not an int), known tags.
- Decoding is hardened against hostile bytes (rule 8: a bad remote input is refused, never a
  crash): no floats, integers of at most 20 characters (checked before conversion, so no
  huge-integer work), no duplicate fields, nesting depth at most `DEPTH_MAX`. Every failure
  raises `KVDecodeError`.
- Replicated apply turns a `KVDecodeError` into an `ErrorResult`, so its message must be the
  same on every replica. A parse failure therefore always has one message, whatever the cause:
  which of two defects the parser meets first may depend on the interpreter's recursion limit,
  the message must not. Shape errors, found after a successful parse, are specific.
"""

import dataclasses
import json
import types
from typing import Any, Final, TypeVar, get_args

from conclave.apps.kv.commands import COMMAND_TYPES, Command, Request
from conclave.apps.kv.results import (
    CasResult,
    CommandResult,
    DeleteResult,
    ErrorCode,
    ErrorResult,
    GetResult,
    KeyValue,
    PutResult,
    RangeResult,
)
from conclave.core.errors import RemoteInputError

FORMAT_VERSION: Final = 1
DEPTH_MAX: Final = 32
_INT_CHARS_MAX: Final = 20  # "-9223372036854775808" is 20 characters

AnyResult = CommandResult | RangeResult
_RESULT_TYPES: Final[tuple[type[AnyResult], ...]] = (
    PutResult,
    DeleteResult,
    CasResult,
    GetResult,
    ErrorResult,
    RangeResult,
)
_COMMAND_BY_TAG: Final = {cls.TAG: cls for cls in COMMAND_TYPES}
_RESULT_BY_TAG: Final = {cls.TAG: cls for cls in _RESULT_TYPES}

T = TypeVar("T")


class KVDecodeError(RemoteInputError):
    """Bytes that are not a valid encoding of a kv request, result or snapshot."""


# ---------------------------------------------------------------------------- canonical JSON


def dumps(obj: object) -> bytes:
    """Canonical JSON bytes of a JSON-compatible value."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _parse_int(text: str) -> int:
    if len(text) > _INT_CHARS_MAX:
        raise ValueError("integer too long")
    return int(text)


def _reject_number(_text: str) -> float:
    raise ValueError("floats, NaN and Infinity are not allowed")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate field")
    return obj


def _nesting_exceeds(value: object, depth_max: int) -> bool:
    # Iterative on purpose: a recursive walk could itself hit the recursion limit.
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children: list[Any]
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > depth_max:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def loads(data: bytes, what: str) -> Any:
    """Parse strict JSON; every parse failure raises one deterministic message."""
    failure = KVDecodeError(
        f"{what} is not JSON of the kv codec (UTF-8, no floats or NaN, no duplicate fields, "
        f"integers of at most {_INT_CHARS_MAX} characters, nesting depth at most {DEPTH_MAX})"
    )
    try:
        value = json.loads(
            data.decode("utf-8"),
            parse_int=_parse_int,
            parse_float=_reject_number,
            parse_constant=_reject_number,
            object_pairs_hook=_object_without_duplicates,
        )
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise failure from None
    if _nesting_exceeds(value, DEPTH_MAX):
        raise failure
    return value


# ---------------------------------------------------------------------------- shape checks


def expect_fields(obj: object, what: str, names: tuple[str, ...]) -> dict[str, Any]:
    """The object's fields, or KVDecodeError unless `obj` has exactly the fields `names`."""
    if not isinstance(obj, dict):
        raise KVDecodeError(f"{what} must be a JSON object")
    if sorted(obj) != sorted(names):
        raise KVDecodeError(f"{what} must have exactly the fields {', '.join(sorted(names))}")
    return obj


def _tagged_fields(obj: object, what: str, cls: type[Any]) -> dict[str, Any]:
    names = tuple(f.name for f in dataclasses.fields(cls))
    return expect_fields(obj, what, ("tag", *names))


def _tag_of(obj: object, what: str) -> str:
    if not isinstance(obj, dict) or not isinstance(obj.get("tag"), str):
        raise KVDecodeError(f"{what} must be a JSON object with a string tag")
    tag: str = obj["tag"]
    return tag


def construct(cls: type[T], what: str, **fields: Any) -> T:
    """Build `cls(**fields)`, turning its validation errors into KVDecodeError."""
    try:
        return cls(**fields)
    except (TypeError, ValueError) as exc:  # raised by our own __post_init__ checks
        raise KVDecodeError(f"invalid {what}: {exc}") from None


# ---------------------------------------------------------------------------- requests


def _command_to_obj(command: Command) -> dict[str, Any]:
    return {"tag": command.TAG, **{f.name: getattr(command, f.name) for f in _fields(command)}}


def _fields(value: Command | AnyResult | KeyValue) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(value)


def encode_request(request: Request) -> bytes:
    """Canonical bytes of a request, ready to be proposed to the log."""
    return dumps(
        {
            "v": FORMAT_VERSION,
            "tag": Request.TAG,
            "client_id": request.client_id,
            "seq": request.seq,
            "command": _command_to_obj(request.command),
        }
    )


def _decode_command(obj: object) -> Command:
    tag = _tag_of(obj, "command")
    cls = _COMMAND_BY_TAG.get(tag)
    if cls is None:
        raise KVDecodeError(f"unknown command tag {tag!r}")
    fields = _tagged_fields(obj, f"command {tag}", cls)
    return construct(cls, f"command {tag}", **{k: v for k, v in fields.items() if k != "tag"})


def decode_request(data: bytes) -> Request:
    """Parse and validate a request, or raise KVDecodeError."""
    obj = expect_fields(
        loads(data, "request"), "request", ("v", "tag", "client_id", "seq", "command")
    )
    if type(obj["v"]) is not int or obj["v"] != FORMAT_VERSION:
        raise KVDecodeError(
            f"unsupported request format version (this codec reads v{FORMAT_VERSION})"
        )
    if obj["tag"] != Request.TAG:
        raise KVDecodeError(f"request tag must be {Request.TAG!r}")
    command = _decode_command(obj["command"])
    return construct(
        Request, "request", client_id=obj["client_id"], seq=obj["seq"], command=command
    )


# ---------------------------------------------------------------------------- results


def _key_value_to_obj(item: KeyValue) -> dict[str, Any]:
    return {f.name: getattr(item, f.name) for f in _fields(item)}


def result_to_obj(result: AnyResult) -> dict[str, Any]:
    """JSON-compatible form of a result (also used inside snapshots)."""
    obj: dict[str, Any] = {"tag": result.TAG}
    for f in _fields(result):
        value = getattr(result, f.name)
        if isinstance(result, RangeResult) and f.name == "items":
            value = [_key_value_to_obj(item) for item in result.items]
        obj[f.name] = value
    return obj


def _is_text(value: object) -> bool:
    """A str that encodes to UTF-8: JSON escapes can smuggle in lone surrogates."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _matches(value: object, annotation: object) -> bool:
    """Whether a decoded JSON value has the annotated type (str, int, bool, X | None)."""
    if isinstance(annotation, types.UnionType):
        return any(_matches(value, arg) for arg in get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is str:
        return _is_text(value)
    # type(...) is, not isinstance: JSON true must not pass for an integer field.
    return annotation in (int, bool) and type(value) is annotation


def _plain_fields(obj: object, what: str, cls: type[Any], tagged: bool) -> dict[str, Any]:
    names = tuple(f.name for f in dataclasses.fields(cls))
    fields = expect_fields(obj, what, ("tag", *names) if tagged else names)
    for f in dataclasses.fields(cls):
        if f.name in ("code", "items"):
            continue  # converted by the caller
        if not _matches(fields[f.name], f.type):
            raise KVDecodeError(f"{what}: field {f.name} has the wrong type")
    return {k: v for k, v in fields.items() if k != "tag"}


def _error_code(value: object) -> ErrorCode:
    if isinstance(value, str):
        for code in ErrorCode:
            if code.value == value:
                return code
    raise KVDecodeError("result kv.error: unknown error code")


def result_from_obj(obj: object) -> AnyResult:
    """Inverse of `result_to_obj`, strictly validated."""
    tag = _tag_of(obj, "result")
    cls = _RESULT_BY_TAG.get(tag)
    if cls is None:
        raise KVDecodeError(f"unknown result tag {tag!r}")
    fields = _plain_fields(obj, f"result {tag}", cls, tagged=True)
    if cls is ErrorResult:
        fields["code"] = _error_code(fields["code"])
    if cls is RangeResult:
        items = fields["items"]
        if not isinstance(items, list):
            raise KVDecodeError("result kv.range_result: items must be a list")
        fields["items"] = tuple(
            KeyValue(**_plain_fields(item, "key value", KeyValue, tagged=False)) for item in items
        )
    return cls(**fields)


def encode_result(result: AnyResult) -> bytes:
    """Canonical bytes of a result (for the API layer and for tests)."""
    return dumps(result_to_obj(result))


def decode_result(data: bytes) -> AnyResult:
    """Parse and validate a result, or raise KVDecodeError."""
    return result_from_obj(loads(data, "result"))


__all__ = [
    "DEPTH_MAX",
    "FORMAT_VERSION",
    "AnyResult",
    "KVDecodeError",
    "construct",
    "decode_request",
    "decode_result",
    "dumps",
    "encode_request",
    "encode_result",
    "expect_fields",
    "loads",
    "result_from_obj",
    "result_to_obj",
]
