"""Simulated clients of the replicated key-value store: a workload and its session state.

Rules:
- One outstanding operation per client. Each op is recorded in the `History` when invoked and
  completed exactly once.
- Writes (put, delete, cas) are wrapped in a session `Request(client_id, seq, command)`; every
  retry of an op reuses its `seq` and bytes, so the store executes it at most once and a late
  retry returns the cached result. Values are unique per write (`"<client>.<n>"`) so that the
  linearizability checker can tell every write apart.
- Reads are linearizable gets through ReadIndex on the leader.
- Outcome of a write that never got an answer: "unknown" as soon as any attempt may have been
  proposed (an unanswered attempt, or a node said the proposal was lost); "fail" only when
  every attempt was refused before being proposed. A read without an answer is "fail": it has
  no effect, whatever happened.
- Every choice (op kind, key, expected value, next node to try) comes from the client's own
  rng, derived from the run seed and the client id.
"""

import random
from dataclasses import dataclass

from conclave.apps.kv import (
    CasResult,
    Command,
    CompareAndSet,
    Delete,
    DeleteResult,
    GetResult,
    Put,
    PutResult,
    Request,
    encode_request,
)
from conclave.core.ids import NO_NODE, NodeId
from conclave.decision.commands import DecisionCommand
from conclave.sim.history import History, OpKind

# Op kinds with their weights in the workload mix of writes; the share of gets is drawn per
# client (some clients mostly write, some mostly read: a reader stranded with a deposed leader
# is what exposes stale reads).
_WRITE_MIX: tuple[tuple[OpKind, int], ...] = (("put", 3), ("cas", 2), ("delete", 1))
_KINDS: tuple[OpKind, ...] = ("get", *(kind for kind, _ in _WRITE_MIX))
_WRITE_WEIGHTS: tuple[int, ...] = tuple(weight for _, weight in _WRITE_MIX)
_READ_SHARES: tuple[float, ...] = (0.2, 0.4, 0.4, 0.6, 0.9)


class ClientResultError(Exception):
    """The store answered a client with something its session contract forbids."""


@dataclass(slots=True)
class ClientOp:
    """The op a client is working on."""

    op_no: int
    history_id: int
    kind: OpKind
    key: str
    value: str | None
    expected: str | None
    data: bytes | None  # the encoded session request of a write; None for a get
    deadline_us: int | None
    attempt: int = 0
    awaiting: bool = False  # the current attempt has not been answered yet
    maybe_proposed: bool = False
    decision: DecisionCommand | None = None  # a decision op (`conclave.sim.decisions`)

    @property
    def may_have_taken_effect(self) -> bool:
        """True when a write may be in some log: its fate is unknown until learned."""
        return self.data is not None and (self.maybe_proposed or self.awaiting)


class SimClient:
    """One client session: generates ops, tracks the leader it believes in, records results."""

    def __init__(
        self,
        client_id: int,
        *,
        rng: random.Random,
        keys: tuple[str, ...],
        ops: int,
        node_ids: tuple[NodeId, ...],
        history: History,
    ) -> None:
        self.id = client_id
        self.rng = rng
        self.keys = keys
        self.ops_left = ops
        self.node_ids = node_ids
        self.history = history
        self.target: NodeId = rng.choice(node_ids)
        read_share = rng.choice(_READ_SHARES)
        self._weights = (
            read_share * sum(_WRITE_WEIGHTS),
            *(w * (1.0 - read_share) for w in _WRITE_WEIGHTS),
        )
        self.op: ClientOp | None = None
        self._op_no = 0
        self._seq = 0
        self._writes = 0
        self._seen: dict[str, str | None] = {}  # key -> last value this client observed
        self._values: list[str] = []  # every value this client observed (for wrong guesses)

    @property
    def done(self) -> bool:
        """No op in flight and none left to issue."""
        return self.op is None and self.ops_left <= 0

    # -- issuing --------------------------------------------------------------------------

    def start(self, now_us: int, deadline_us: int | None, kind: OpKind | None = None) -> ClientOp:
        """Invoke the next op (drawn from the mix unless `kind` is given)."""
        rng = self.rng
        if kind is None:
            kind = rng.choices(_KINDS, self._weights)[0]
        key = rng.choice(self.keys)
        self.ops_left -= 1
        self._op_no += 1
        if kind == "get":
            op_id = self.history.invoke_get(client=self.id, key=key, at_us=now_us)
            op = ClientOp(self._op_no, op_id, kind, key, None, None, None, deadline_us)
        else:
            op = self._start_write(kind, key, now_us, deadline_us)
        self.op = op
        return op

    def _start_write(
        self, kind: OpKind, key: str, now_us: int, deadline_us: int | None
    ) -> ClientOp:
        value: str | None = None
        expected: str | None = None
        command: Command
        if kind == "delete":
            command = Delete(key=key)
            op_id = self.history.invoke_delete(client=self.id, key=key, at_us=now_us)
        else:
            self._writes += 1
            value = f"{self.id}.{self._writes}"
            if kind == "put":
                command = Put(key=key, value=value)
                op_id = self.history.invoke_put(client=self.id, key=key, value=value, at_us=now_us)
            else:
                expected = self._guess_expected(key)
                command = (
                    CompareAndSet(key=key, new_value=value, expected_revision=0)
                    if expected is None
                    else CompareAndSet(key=key, new_value=value, expected_value=expected)
                )
                op_id = self.history.invoke_cas(
                    client=self.id, key=key, expected=expected, value=value, at_us=now_us
                )
        self._seq += 1
        data = encode_request(Request(client_id=self.id, seq=self._seq, command=command))
        return ClientOp(self._op_no, op_id, kind, key, value, expected, data, deadline_us)

    def _guess_expected(self, key: str) -> str | None:
        """Mostly the last value seen for `key` (a likely swap), sometimes another one."""
        rng = self.rng
        if self._values and rng.random() < 0.2:
            return rng.choice(self._values)
        return self._seen.get(key)

    # -- routing --------------------------------------------------------------------------

    def follow(self, leader_hint: NodeId) -> None:
        """Try `leader_hint` next, or another node when there is no hint."""
        if leader_hint != NO_NODE:
            self.target = leader_hint
        else:
            self.try_another()

    def try_another(self) -> None:
        """Pick another node to try next."""
        others = [n for n in self.node_ids if n != self.target]
        self.target = self.rng.choice(others) if others else self.target

    # -- outcomes -------------------------------------------------------------------------

    def succeed(self, now_us: int, result: object) -> None:
        """The op's result is known: record it as ok."""
        op = self.op
        assert op is not None
        history = self.history
        key = op.key
        if op.kind == "get":
            if not isinstance(result, GetResult):
                raise ClientResultError(f"client {self.id}: get returned {result!r}")
            history.ok(op.history_id, at_us=now_us, output=result.value)
            self._observe(key, result.value)
        elif op.kind == "put":
            if not isinstance(result, PutResult):
                raise ClientResultError(f"client {self.id}: put returned {result!r}")
            history.ok(op.history_id, at_us=now_us)
            self._observe(key, op.value)
        elif op.kind == "delete":
            if not isinstance(result, DeleteResult):
                raise ClientResultError(f"client {self.id}: delete returned {result!r}")
            history.ok(op.history_id, at_us=now_us)
            self._observe(key, None)
        else:
            if not isinstance(result, CasResult):
                raise ClientResultError(f"client {self.id}: cas returned {result!r}")
            history.ok_cas(op.history_id, at_us=now_us, swapped=result.succeeded)
            self._observe(key, result.current_value)
        self.op = None

    def give_up(self, now_us: int | None) -> str:
        """Stop working on the op without a result; returns the recorded status."""
        op = self.op
        assert op is not None
        self.op = None
        if op.may_have_taken_effect:
            self.history.unknown(op.history_id)
            return "unknown"
        self.history.fail(op.history_id, at_us=now_us)
        return "fail"

    def _observe(self, key: str, value: str | None) -> None:
        self._seen[key] = value
        if value is not None:
            self._values.append(value)
            if len(self._values) > 32:
                del self._values[0]


__all__ = ["ClientOp", "ClientResultError", "SimClient"]
