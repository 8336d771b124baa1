"""Recording client operations and the JSON-lines export format."""

import io
import json

import pytest

from conclave.sim.history import (
    JSON_FIELDS,
    History,
    HistoryFormatError,
    Operation,
    operation_from_json,
    operation_to_json,
    write_json_lines,
)


def _sample() -> History:
    history = History()
    put = history.invoke_put(client=1, key="k", value="v1", at_us=10)
    get = history.invoke_get(client=2, key="k", at_us=12)
    cas = history.invoke_cas(client=3, key="k", expected=None, value="v2", at_us=13)
    delete = history.invoke_delete(client=4, key="j", at_us=14)
    history.ok(put, at_us=20)
    history.ok(get, at_us=21, output="v1")
    history.ok_cas(cas, at_us=22, swapped=False)
    history.fail(delete, at_us=23)
    lost = history.invoke_put(client=1, key="k", value="v3", at_us=30)
    history.unknown(lost)
    history.invoke_get(client=2, key="absent", at_us=31)  # still pending at export
    return history


def test_recording_assigns_ids_in_invocation_order() -> None:
    history = History()
    assert history.invoke_get(client=1, key="a", at_us=0) == 0
    assert history.invoke_get(client=2, key="a", at_us=0) == 1
    history.ok(1, at_us=5, output=None)
    assert [op.status for op in history] == ["unknown", "ok"]
    assert len(history) == 2


def test_export_is_exactly_the_documented_format() -> None:
    lines = _sample().to_json_lines().splitlines()
    assert len(lines) == 6
    objects = [json.loads(line) for line in lines]
    assert all(tuple(obj) == JSON_FIELDS for obj in objects)  # names and order
    assert objects[0] == {
        "client": 1,
        "op": "put",
        "key": "k",
        "value": "v1",
        "expected": None,
        "call": 10,
        "return": 20,
        "status": "ok",
        "output": None,
    }
    assert objects[2]["output"] == "false"
    assert objects[2]["expected"] is None
    assert objects[3]["status"] == "fail"
    # The client gave up, and an op still pending at export: both unknown, no return.
    assert [(o["status"], o["return"], o["output"]) for o in objects[4:]] == [
        ("unknown", None, None),
        ("unknown", None, None),
    ]


def test_json_lines_round_trip() -> None:
    history = _sample()
    text = history.to_json_lines()
    loaded = History.from_json_lines(text)
    assert loaded.operations() == history.operations()
    assert loaded.to_json_lines() == text


def test_write_json_lines_to_a_text_stream() -> None:
    history = _sample()
    stream = io.StringIO()
    write_json_lines(history, stream)
    assert stream.getvalue() == history.to_json_lines()


def test_loading_skips_blank_lines() -> None:
    text = "\n" + _sample().to_json_lines().replace("\n", "\n\n")
    assert History.from_json_lines(text).operations() == _sample().operations()


def test_a_fail_may_have_no_return_time() -> None:
    history = History()
    history.fail(history.invoke_delete(client=1, key="a", at_us=0))
    op = operation_from_json(operation_to_json(history.operations()[0]))
    assert (op.status, op.return_us) == ("fail", None)


def test_describe_is_readable() -> None:
    ops = _sample().operations()
    assert ops[0].describe() == "client 1 put 'k' 'v1' ok [10, 20]"
    assert ops[1].describe() == "client 2 get 'k' = 'v1' [12, 21]"
    assert ops[2].describe() == "client 3 cas 'k' None->'v2' = false [13, 22]"
    assert ops[3].describe() == "client 4 delete 'j' failed [14, 23]"
    assert ops[4].describe() == "client 1 put 'k' 'v3' = ? [30, inf]"


# ---------------------------------------------------------------------------- refusals


def test_completing_twice_or_an_unknown_id_is_refused() -> None:
    history = History()
    op = history.invoke_get(client=1, key="a", at_us=0)
    history.ok(op, at_us=1, output="x")
    with pytest.raises(HistoryFormatError, match="already complete"):
        history.fail(op, at_us=2)
    with pytest.raises(HistoryFormatError, match="already complete"):
        history.unknown(op)
    with pytest.raises(HistoryFormatError, match="no operation"):
        history.ok(7, at_us=1)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"op": "put", "value": "v", "status": "ok", "return_us": 5, "output": "x"}, "output"),
        ({"op": "cas", "value": "v", "status": "ok", "return_us": 5, "output": "yes"}, "cas"),
        ({"op": "cas", "status": "ok", "return_us": 5, "output": "true"}, "value"),
        ({"op": "get", "value": "v"}, "value"),
        ({"op": "get", "expected": "v"}, "expected"),
        ({"op": "get", "status": "ok"}, "return time"),
        ({"op": "get", "status": "unknown", "return_us": 5}, "return time"),
        ({"op": "get", "status": "ok", "return_us": -1}, "return before call"),
        ({"op": "get", "status": "unknown", "output": "x"}, "output"),
        ({"op": "move"}, "unknown op"),
        ({"op": "get", "status": "done"}, "unknown op or status"),
        ({"op": "get", "client": True}, "integers"),
    ],
)
def test_operations_that_break_the_conventions_are_refused(
    fields: dict[str, object], problem: str
) -> None:
    base: dict[str, object] = {"client": 1, "key": "k", "call_us": 0}
    with pytest.raises(HistoryFormatError, match=problem):
        Operation(**{**base, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[]",
        '{"client": 1}',
        operation_to_json(Operation(client=1, op="get", key="k", call_us=0))[:-1] + ', "x": 1}',
        operation_to_json(Operation(client=1, op="get", key="k", call_us=0)).replace(
            '"call": 0', '"call": 0.5'
        ),
    ],
)
def test_malformed_lines_are_refused_with_their_line_number(line: str) -> None:
    good = operation_to_json(Operation(client=1, op="get", key="k", call_us=0))
    with pytest.raises(HistoryFormatError, match="line 2"):
        History.from_json_lines(good + "\n" + line + "\n")
