"""Commands validate their shape; the codec is canonical, strict and hardened."""

import json

import pytest

from conclave.apps.kv import (
    CasResult,
    Command,
    CompareAndSet,
    Delete,
    DeleteResult,
    ErrorCode,
    ErrorResult,
    Get,
    GetResult,
    KeyValue,
    KVDecodeError,
    Put,
    PutResult,
    Range,
    RangeResult,
    Request,
    decode_request,
    decode_result,
    encode_request,
    encode_result,
)
from conclave.apps.kv.codec import DEPTH_MAX
from conclave.core import RemoteInputError

COMMANDS: list[Command] = [
    Put(key="a", value="1"),
    Put(key="ключ", value=""),
    Delete(key="a"),
    CompareAndSet(key="a", new_value="2", expected_value="1"),
    CompareAndSet(key="a", new_value="2", expected_revision=0),
    CompareAndSet(key="a", new_value="2", expected_revision=7),
    Get(key='a\nb"c\\'),
]


def _request_obj(**overrides: object) -> dict[str, object]:
    obj: dict[str, object] = {
        "v": 1,
        "tag": "kv.request",
        "client_id": 1,
        "seq": 1,
        "command": {"tag": "kv.put", "key": "a", "value": "b"},
    }
    obj.update(overrides)
    return obj


def _raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


# ---------------------------------------------------------------------------- commands


def test_cas_needs_exactly_one_expectation() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        CompareAndSet(key="a", new_value="x")
    with pytest.raises(ValueError, match="exactly one"):
        CompareAndSet(key="a", new_value="x", expected_value="y", expected_revision=1)
    with pytest.raises(ValueError, match="expected_revision"):
        CompareAndSet(key="a", new_value="x", expected_revision=-1)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Put(key="", value="x"),
        lambda: Get(key="\ud800"),
        lambda: Put(key="a", value="\udfff"),
        lambda: Request(client_id=-1, seq=1, command=Get(key="a")),
        lambda: Request(client_id=1, seq=0, command=Get(key="a")),
        lambda: Request(client_id=True, seq=1, command=Get(key="a")),
        lambda: Request(client_id=1, seq=2**63, command=Get(key="a")),
        lambda: Request(client_id=1, seq=1, command=Range()),  # type: ignore[arg-type]
        lambda: Range(limit=0),
    ],
)
def test_invalid_shapes_cannot_be_built(build: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        build()  # type: ignore[operator]


def test_commands_are_frozen_slotted_and_tagged() -> None:
    tags = {type(c).TAG for c in COMMANDS}
    assert tags == {"kv.put", "kv.delete", "kv.cas", "kv.get"}
    with pytest.raises(AttributeError):
        Put(key="a", value="b").key = "c"  # type: ignore[misc]
    assert not hasattr(Put(key="a", value="b"), "__dict__")


# ---------------------------------------------------------------------------- requests


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_request_round_trip(command: Put | Delete | CompareAndSet | Get) -> None:
    request = Request(client_id=3, seq=2**63 - 1, command=command)
    data = encode_request(request)
    assert decode_request(data) == request
    assert encode_request(decode_request(data)) == data


def test_request_bytes_are_canonical() -> None:
    data = encode_request(Request(client_id=1, seq=2, command=Put(key="k", value="é")))
    assert data == (
        b'{"client_id":1,"command":{"key":"k","tag":"kv.put","value":"\xc3\xa9"},'
        b'"seq":2,"tag":"kv.request","v":1}'
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"null",
        b"[]",
        b"{",
        _raw(_request_obj(v=2)),
        _raw(_request_obj(v=True)),
        _raw(_request_obj(tag="kv.other")),
        _raw(_request_obj(client_id=1.0)),
        _raw(_request_obj(client_id=True)),
        _raw(_request_obj(client_id=-1)),
        _raw(_request_obj(seq=-1)),
        _raw(_request_obj(seq="1")),
        _raw(_request_obj(command=None)),
        _raw(_request_obj(command={"tag": "kv.nope", "key": "a"})),
        _raw(_request_obj(command={"tag": "kv.put", "key": "a"})),
        _raw(_request_obj(command={"tag": "kv.put", "key": "a", "value": "b", "x": 1})),
        _raw(_request_obj(command={"tag": "kv.put", "key": "", "value": "b"})),
        _raw(_request_obj(command={"tag": "kv.put", "key": 5, "value": "b"})),
        _raw(_request_obj(command={"tag": "kv.get", "key": "\ud800"})),
        _raw(
            _request_obj(
                command={
                    "tag": "kv.cas",
                    "key": "a",
                    "new_value": "b",
                    "expected_value": None,
                    "expected_revision": None,
                }
            )
        ),
        _raw({**_request_obj(), "extra": 1}),
        (
            b'{"v":1,"v":1,"tag":"kv.request","client_id":1,"seq":1,'
            b'"command":{"tag":"kv.get","key":"a"}}'
        ),
        b'{"v":1,"tag":"kv.request","client_id":NaN,"seq":1,"command":{"tag":"kv.get","key":"a"}}',
        b'{"v":1,"tag":"kv.request","client_id":' + b"9" * 5000 + b',"seq":1,"command":1}',
        b"[" * 100_000 + b"]" * 100_000,
        b"[" * (DEPTH_MAX + 1) + b"]" * (DEPTH_MAX + 1),
    ],
)
def test_malformed_requests_are_refused_as_remote_input(data: bytes) -> None:
    with pytest.raises(KVDecodeError) as caught:
        decode_request(data)
    assert isinstance(caught.value, RemoteInputError)


def test_every_parse_failure_has_the_same_message() -> None:
    """Which defect the parser meets first may depend on the recursion limit; not the text."""
    messages = set()
    for data in (b"{", b"[" * 5000 + b"1.5", b"1.5", b'{"a":1,"a":1}', b"\xff"):
        with pytest.raises(KVDecodeError) as caught:
            decode_request(data)
        messages.add(str(caught.value))
    assert len(messages) == 1


# ---------------------------------------------------------------------------- results

RESULTS = [
    PutResult(revision=1, prev_value=None),
    PutResult(revision=2, prev_value="x"),
    DeleteResult(revision=2, deleted=False, prev_value=None),
    CasResult(succeeded=True, revision=3, current_value="y", current_revision=3),
    GetResult(revision=3, value=None, create_revision=None, mod_revision=None, version=None),
    GetResult(revision=3, value="v", create_revision=1, mod_revision=3, version=2),
    ErrorResult(code=ErrorCode.STALE_SEQUENCE, message="old"),
    RangeResult(
        revision=4,
        items=(KeyValue(key="a", value="1", create_revision=1, mod_revision=4, version=3),),
        more=True,
    ),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_result_round_trip(result: object) -> None:
    data = encode_result(result)  # type: ignore[arg-type]
    assert decode_result(data) == result


@pytest.mark.parametrize(
    "obj",
    [
        {"tag": "kv.put_result", "revision": True, "prev_value": None},
        {"tag": "kv.put_result", "revision": 1},
        {"tag": "kv.delete_result", "revision": 1, "deleted": 1, "prev_value": None},
        {"tag": "kv.error", "code": "boom", "message": "x"},
        {"tag": "kv.error", "code": ["malformed"], "message": "x"},
        {"tag": "kv.range_result", "revision": 1, "items": {}, "more": False},
        {"tag": "kv.range_result", "revision": 1, "items": [{"key": "a"}], "more": False},
        {"tag": "kv.get_result", "revision": 1, "value": "\ud800", "create_revision": 1,
         "mod_revision": 1, "version": 1},
        {"tag": "kv.unknown"},
    ],
)  # fmt: skip
def test_malformed_results_are_refused(obj: object) -> None:
    with pytest.raises(KVDecodeError):
        decode_result(_raw(obj))
