"""Histories come out in the documented JSON-lines format, one operation per line."""

import io
import json

from conclave.sim import SimSettings, run_seed
from conclave.sim.history import write_json_lines

FIELDS = ("client", "op", "key", "value", "expected", "call", "return", "status", "output")


def test_exported_history_has_exactly_the_documented_fields() -> None:
    result = run_seed(SimSettings(seed=6, nodes=3, ops=60))
    assert result.ok, result.violation
    stream = io.StringIO()
    write_json_lines(result.history, stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == result.ops == 61  # the workload plus the liveness phase's fresh write
    kinds = set()
    for line in lines:
        obj = json.loads(line)
        assert tuple(obj) == FIELDS
        assert isinstance(obj["client"], int)
        assert obj["op"] in ("get", "put", "delete", "cas")
        assert isinstance(obj["key"], str)
        assert obj["value"] is None or isinstance(obj["value"], str)
        assert obj["expected"] is None or obj["op"] == "cas"
        assert isinstance(obj["call"], int)
        assert obj["return"] is None or obj["return"] >= obj["call"]
        assert obj["status"] in ("ok", "fail", "unknown")
        if obj["status"] == "ok":
            assert obj["return"] is not None
        if obj["status"] == "unknown":
            assert obj["return"] is None
            assert obj["output"] is None
        if obj["op"] == "cas" and obj["status"] == "ok":
            assert obj["output"] in ("true", "false")
        kinds.add(obj["op"])
    assert kinds == {"get", "put", "delete", "cas"}


def test_write_values_are_unique() -> None:
    result = run_seed(SimSettings(seed=6, nodes=3, ops=100))
    values = [op.value for op in result.history if op.value is not None]
    assert len(values) == len(set(values))


def test_calls_are_in_invocation_order_per_client() -> None:
    result = run_seed(SimSettings(seed=7, nodes=5, ops=100))
    by_client: dict[int, list[int]] = {}
    for op in result.history:
        by_client.setdefault(op.client, []).append(op.call_us)
    for calls in by_client.values():
        assert calls == sorted(calls)
