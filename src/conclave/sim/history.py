"""Histories of client operations on the key-value store, and their JSON-lines export.

A history records, for each client operation, when it was invoked (`call`) and when its
client learned the outcome (`return`), in simulated microseconds, and what it observed. It is
the input of `conclave.sim.linearizability` and of external checkers.

Export format: one JSON object per line, exactly these fields:

    {"client": int, "op": "get"|"put"|"delete"|"cas", "key": str, "value": str|null,
     "expected": str|null, "call": int, "return": int|null,
     "status": "ok"|"fail"|"unknown", "output": str|null}

Conventions:
- status "ok": the operation took effect, between `call` and `return`, and `output` is what
  it observed. "fail": it definitely did not take effect (e.g. refused before it was
  proposed); its `return` is when the client learned that, or null. "unknown": the client never
  learned the outcome (a timeout, a crash); it may or may not have taken effect, at any time
  after `call`; `return` and `output` are null.
- get: `value` and `expected` null; output = the value read, null for an absent key.
- put: `value` = the value written; output null.
- delete: `value` null; output null.
- cas: `value` = the new value, `expected` = the expected value (null: expects the key
  absent); output "true" if it swapped, "false" if not.
- Operations appear in invocation order. An operation still pending when a history is
  exported or read is reported as "unknown": nobody learned its outcome.
- Times only grow along one operation (`return >= call`); calls and returns of different
  operations may interleave in any way, including equal times.

`History` is a recorder for the simulator's clients; file writing lives in
`write_json_lines`, which takes an open text stream, so this module opens no files.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, TextIO, get_args

OpKind = Literal["get", "put", "delete", "cas"]
Status = Literal["ok", "fail", "unknown"]

OP_KINDS: Final[tuple[OpKind, ...]] = get_args(OpKind)
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
CAS_OUTPUTS: Final = ("true", "false")
JSON_FIELDS: Final = (
    "client",
    "op",
    "key",
    "value",
    "expected",
    "call",
    "return",
    "status",
    "output",
)


class HistoryFormatError(ValueError):
    """An operation or a JSON line that breaks the conventions of this module."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_optional_str(value: object) -> bool:
    return value is None or isinstance(value, str)


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One client operation; see the module docstring for the meaning of each field."""

    client: int
    op: OpKind
    key: str
    value: str | None = None
    expected: str | None = None
    call_us: int
    return_us: int | None = None
    status: Status = "unknown"
    output: str | None = None

    def __post_init__(self) -> None:
        problem = _operation_problem(self)
        if problem is not None:
            raise HistoryFormatError(f"{problem}: {self!r}")

    @property
    def is_pending(self) -> bool:
        """Whether nobody learned the outcome (status "unknown")."""
        return self.status == "unknown"

    def describe(self) -> str:
        """A short line such as `client 3 cas 'k' None->'b' = true [10, 25]`."""
        args = {
            "get": "",
            "put": f" {self.value!r}",
            "delete": "",
            "cas": f" {self.expected!r}->{self.value!r}",
        }[self.op]
        if self.status != "ok":
            outcome = " failed" if self.status == "fail" else " = ?"
        elif self.op == "get":
            outcome = f" = {self.output!r}"
        else:
            outcome = f" = {self.output}" if self.op == "cas" else " ok"
        end = "inf" if self.return_us is None else str(self.return_us)
        return f"client {self.client} {self.op} {self.key!r}{args}{outcome} [{self.call_us}, {end}]"


def _operation_problem(op: Operation) -> str | None:
    """Why `op` breaks the conventions, or None."""
    if not (_is_int(op.client) and isinstance(op.key, str) and _is_int(op.call_us)):
        return "client and call must be integers, key a string"
    if op.op not in OP_KINDS or op.status not in STATUSES:
        return "unknown op or status"
    if not (_is_optional_str(op.value) and _is_optional_str(op.expected)):
        return "value and expected must be strings or null"
    if not (_is_optional_str(op.output) and (op.return_us is None or _is_int(op.return_us))):
        return "output must be a string or null, return an integer or null"
    if op.return_us is not None and op.return_us < op.call_us:
        return "return before call"
    if op.status == "ok" and op.return_us is None:
        return "an ok operation has a return time"
    if op.status == "unknown" and op.return_us is not None:
        return "an unknown operation has no return time (its outcome was never learned)"
    if op.status != "ok" and op.output is not None:
        return "only an ok operation has an output"
    return _arguments_problem(op)


def _arguments_problem(op: Operation) -> str | None:
    if op.expected is not None and op.op != "cas":
        return "only cas has an expected value"
    if (op.value is not None) != (op.op in ("put", "cas")):
        return "put and cas carry a value, get and delete do not"
    if op.status == "ok" and op.op in ("put", "delete") and op.output is not None:
        return "put and delete have no output"
    if op.status == "ok" and op.op == "cas" and op.output not in CAS_OUTPUTS:
        return 'cas output must be "true" or "false"'
    return None


# ---------------------------------------------------------------------------- JSON lines


def operation_to_json(op: Operation) -> str:
    """One JSON line (without the newline), fields in the documented order."""
    obj = {
        "client": op.client,
        "op": op.op,
        "key": op.key,
        "value": op.value,
        "expected": op.expected,
        "call": op.call_us,
        "return": op.return_us,
        "status": op.status,
        "output": op.output,
    }
    return json.dumps(obj)


def operation_from_json(line: str) -> Operation:
    """Parse one JSON line, strictly: exactly the documented fields and types."""
    try:
        obj: Any = json.loads(line)
    except ValueError:
        raise HistoryFormatError(f"not JSON: {line[:80]!r}") from None
    if not isinstance(obj, dict) or sorted(obj) != sorted(JSON_FIELDS):
        raise HistoryFormatError(f"an operation has exactly the fields {', '.join(JSON_FIELDS)}")
    return Operation(
        client=obj["client"],
        op=obj["op"],
        key=obj["key"],
        value=obj["value"],
        expected=obj["expected"],
        call_us=obj["call"],
        return_us=obj["return"],
        status=obj["status"],
        output=obj["output"],
    )


def operations_to_json_lines(operations: Iterable[Operation]) -> str:
    """The JSON-lines text of operations, one line each, newline-terminated."""
    return "".join(operation_to_json(op) + "\n" for op in operations)


def operations_from_json_lines(text: str) -> tuple[Operation, ...]:
    """Parse JSON-lines text; blank lines are skipped, errors name the line number."""
    operations = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            operations.append(operation_from_json(line))
        except HistoryFormatError as exc:
            raise HistoryFormatError(f"line {number}: {exc}") from None
    return tuple(operations)


# ---------------------------------------------------------------------------- recording


class History:
    """Records client operations as they are invoked and completed.

    `invoke_*` returns an operation id; complete it once with `ok`, `fail` or `unknown`.
    Operations never completed are reported as "unknown".
    """

    def __init__(self, operations: Iterable[Operation] = ()) -> None:
        self._ops: list[Operation] = list(operations)

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._ops)

    def operations(self) -> tuple[Operation, ...]:
        """Every operation, in invocation order."""
        return tuple(self._ops)

    # ------------------------------------------------------------------------ invocations

    def invoke(
        self,
        *,
        client: int,
        op: OpKind,
        key: str,
        at_us: int,
        value: str | None = None,
        expected: str | None = None,
    ) -> int:
        """Record an invocation; returns the id used to complete it."""
        self._ops.append(
            Operation(client=client, op=op, key=key, value=value, expected=expected, call_us=at_us)
        )
        return len(self._ops) - 1

    def invoke_get(self, *, client: int, key: str, at_us: int) -> int:
        """Record the invocation of a read of `key`."""
        return self.invoke(client=client, op="get", key=key, at_us=at_us)

    def invoke_put(self, *, client: int, key: str, value: str, at_us: int) -> int:
        """Record the invocation of a write of `value` to `key`."""
        return self.invoke(client=client, op="put", key=key, value=value, at_us=at_us)

    def invoke_delete(self, *, client: int, key: str, at_us: int) -> int:
        """Record the invocation of a delete of `key`."""
        return self.invoke(client=client, op="delete", key=key, at_us=at_us)

    def invoke_cas(
        self, *, client: int, key: str, expected: str | None, value: str, at_us: int
    ) -> int:
        """Record a compare-and-set: `expected` None means "expects the key absent"."""
        return self.invoke(
            client=client, op="cas", key=key, value=value, expected=expected, at_us=at_us
        )

    # ------------------------------------------------------------------------ completions

    def ok(self, op_id: int, *, at_us: int, output: str | None = None) -> None:
        """The operation took effect and observed `output` (see the conventions)."""
        self._complete(op_id, status="ok", return_us=at_us, output=output)

    def ok_cas(self, op_id: int, *, at_us: int, swapped: bool) -> None:
        """A compare-and-set completed; `swapped` says whether it set the new value."""
        self.ok(op_id, at_us=at_us, output="true" if swapped else "false")

    def fail(self, op_id: int, *, at_us: int | None = None) -> None:
        """The operation definitely did not take effect."""
        self._complete(op_id, status="fail", return_us=at_us, output=None)

    def unknown(self, op_id: int) -> None:
        """The client gave up without learning the outcome (same as never completing)."""
        self._pending(op_id)

    def _pending(self, op_id: int) -> Operation:
        if not 0 <= op_id < len(self._ops):
            raise HistoryFormatError(f"no operation {op_id}")
        op = self._ops[op_id]
        if op.status != "unknown" or op.return_us is not None:
            raise HistoryFormatError(f"operation {op_id} is already complete")
        return op

    def _complete(
        self, op_id: int, *, status: Status, return_us: int | None, output: str | None
    ) -> None:
        op = self._pending(op_id)
        self._ops[op_id] = replace(op, status=status, return_us=return_us, output=output)

    # ------------------------------------------------------------------------ export

    def to_json_lines(self) -> str:
        """The export format of the module docstring."""
        return operations_to_json_lines(self._ops)

    @classmethod
    def from_json_lines(cls, text: str) -> "History":
        """Load an exported history."""
        return cls(operations_from_json_lines(text))


def write_json_lines(history: History | Iterable[Operation], stream: TextIO) -> None:
    """Write a history in the export format to an open text stream."""
    for op in history:
        stream.write(operation_to_json(op) + "\n")


__all__ = [
    "CAS_OUTPUTS",
    "JSON_FIELDS",
    "OP_KINDS",
    "STATUSES",
    "History",
    "HistoryFormatError",
    "OpKind",
    "Operation",
    "Status",
    "operation_from_json",
    "operation_to_json",
    "operations_from_json_lines",
    "operations_to_json_lines",
    "write_json_lines",
]
