"""Linearizability checker for key-value histories (`conclave.sim.history`).

A history is linearizable when every operation can be given one instant between its call and
its return such that the operations, in the order of their instants, are a legal sequential
run of the store (Herlihy & Wing 1990). Rules of this checker:

- P-compositionality (Herlihy & Wing, theorem 1; used by Porcupine): a history is linearizable
  iff each key's sub-history is, so keys are checked one by one against a single-register
  model whose state is the key's value, None while the key is absent.
- Model, with the conventions of `conclave.sim.history`: get observes the state (null output
  = absent); put sets it; delete clears it; cas with output "true" requires state == expected
  (expected None: absent) and sets the new value, with output "false" requires
  state != expected and changes nothing.
- Status "fail" operations did not take effect: they are ignored. Status "unknown" operations
  return at +infinity and are optional: each may take effect at any instant after its call,
  or never. An unknown get observes nothing and is ignored; an unknown cas takes effect with
  whatever outcome the state dictates.
- Equal times are concurrent: an operation called at the very microsecond another returned
  may be ordered before it (the lenient reading, so rounding never invents a violation).
- Search: Wing & Gong's depth-first search with Lowe's refinement (only calls before the
  earliest pending return are candidates; operations are lifted out of a doubly linked event
  list and put back when backtracking) and Porcupine's memoisation of visited
  (linearized set, model state) configurations. Extensions:
  - completed operations are tried before unknown ones, so a linearization that needs no
    unknown operation is found first;
  - a configuration is skipped when one with the same completed set and state, and a subset of
    its unknown operations, was visited: an unknown operation has no deadline, so taking it
    can only remove options;
  - an unknown operation is placed only inside a chain that ends with the completed
    operation it enables: at most one unknown put or delete, then unknown cas operations
    that each swap thanks to the previous one, then a get that reads the chain's value or a
    cas that the chain makes succeed or fail. Any linearization can be rewritten into this
    form: elsewhere an unknown operation's effect is overwritten unseen, or it commutes with
    the next operation and moves later, to the end, where it is dropped. Equal unknown
    operations (same kind and values) are interchangeable, so only one of them is tried.
  The last two keep histories with many timeouts tractable.
- The search is bounded: after `states_per_key_max` new configurations on one key the verdict
  for that key is UNKNOWN (a timeout), reported distinctly from a VIOLATION.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from conclave.sim.history import History, Operation

STATES_PER_KEY_MAX_DEFAULT: Final = 1_000_000

_GET, _PUT, _DELETE, _CAS = range(4)
_KIND_CODES: Final = {"get": _GET, "put": _PUT, "delete": _DELETE, "cas": _CAS}
_END: Final = -1  # end of the event list


class Outcome(StrEnum):
    """Verdict of a check."""

    OK = "ok"  # linearizable
    VIOLATION = "violation"  # proven not linearizable
    UNKNOWN = "unknown"  # the search bound was reached first (a timeout, not a verdict)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyResult:
    """Verdict for one key, with what explains a failure."""

    key: str
    outcome: Outcome
    operations: tuple[Operation, ...]  # checked ones (not "fail"), sorted by call
    longest_prefix: tuple[Operation, ...]  # longest linearization found, in its order
    value_after_prefix: str | None  # model state after `longest_prefix`
    blocking: Operation | None  # earliest-returning operation not in the prefix
    states_explored: int
    explanation: str

    def report(self) -> str:
        """A readable explanation: the verdict, then every operation by call time.

        Operations in the longest linearizable prefix are marked with their position in it.
        """
        lines = [self.explanation, f"operations on {self.key!r} by call time:"]
        for op in self.operations:
            # Identity, not equality: two identical operations may be distinct events.
            at = next((n for n, p in enumerate(self.longest_prefix, 1) if p is op), None)
            mark = "  -  " if at is None else f"#{at:<4}"
            lines.append(f"  {mark} {op.describe()}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinearizabilityResult:
    """Verdict for a whole history: OK only if every key is OK."""

    outcome: Outcome
    keys_checked: int
    operations_checked: int
    states_explored: int
    failures: tuple[KeyResult, ...] = field(default=())  # violations first, then timeouts

    @property
    def ok(self) -> bool:
        """Whether the history is linearizable."""
        return self.outcome is Outcome.OK

    @property
    def key(self) -> str | None:
        """The first failing key (a violation before a timeout), None when OK."""
        return self.failures[0].key if self.failures else None

    @property
    def explanation(self) -> str:
        """Why the first failing key failed, or a one-line summary when OK."""
        if self.failures:
            return self.failures[0].explanation
        return f"linearizable: {self.operations_checked} operations on {self.keys_checked} keys"


def check_linearizability(
    history: History | Iterable[Operation],
    *,
    states_per_key_max: int = STATES_PER_KEY_MAX_DEFAULT,
) -> LinearizabilityResult:
    """Check a key-value history; every key is checked, in key order."""
    if states_per_key_max < 1:
        raise ValueError("states_per_key_max must be at least 1")
    by_key: dict[str, list[Operation]] = {}
    for op in history:
        if op.status != "fail":
            by_key.setdefault(op.key, []).append(op)
    results = [
        check_key(key, by_key[key], states_per_key_max=states_per_key_max) for key in sorted(by_key)
    ]
    violations = tuple(r for r in results if r.outcome is Outcome.VIOLATION)
    timeouts = tuple(r for r in results if r.outcome is Outcome.UNKNOWN)
    outcome = Outcome.VIOLATION if violations else Outcome.UNKNOWN if timeouts else Outcome.OK
    return LinearizabilityResult(
        outcome=outcome,
        keys_checked=len(results),
        operations_checked=sum(len(r.operations) for r in results),
        states_explored=sum(r.states_explored for r in results),
        failures=violations + timeouts,
    )


def check_key(
    key: str,
    operations: Iterable[Operation],
    *,
    states_per_key_max: int = STATES_PER_KEY_MAX_DEFAULT,
) -> KeyResult:
    """Check the operations of one key (all must be on `key`; "fail" ones are ignored)."""
    checked = sorted(
        (op for op in operations if op.status != "fail"),
        key=lambda op: (op.call_us, _return_or_inf(op), op.client),
    )
    if any(op.key != key for op in checked):
        raise ValueError(f"check_key({key!r}) received an operation on another key")
    search = _Search(checked, states_per_key_max)
    outcome = search.run()
    prefix = tuple(search.ops[i] for i in search.best_path)
    blocking = search.ops[search.best_blocking] if search.best_blocking != _END else None
    explanation = _explain(
        key=key,
        outcome=outcome,
        total=len(checked),
        prefix=prefix,
        value=search.best_state,
        blocking=blocking,
        states_max=states_per_key_max,
    )
    return KeyResult(
        key=key,
        outcome=outcome,
        operations=tuple(checked),
        longest_prefix=prefix,
        value_after_prefix=search.best_state,
        blocking=blocking,
        states_explored=search.states,
        explanation=explanation,
    )


def _return_or_inf(op: Operation) -> float:
    return float("inf") if op.return_us is None else op.return_us


def _explain(
    *,
    key: str,
    outcome: Outcome,
    total: int,
    prefix: tuple[Operation, ...],
    value: str | None,
    blocking: Operation | None,
    states_max: int,
) -> str:
    if outcome is Outcome.OK:
        return f"key {key!r}: linearizable ({total} operations)"
    if outcome is Outcome.UNKNOWN:
        return (
            f"key {key!r}: undecided, the search explored {states_max} states without a "
            f"verdict (raise states_per_key_max or shorten the history)"
        )
    stuck = blocking.describe() if blocking is not None else "an operation"
    return (
        f"key {key!r}: not linearizable. The longest linearizable prefix found has "
        f"{len(prefix)} of {total} operations and leaves the value {value!r}; after it, "
        f"{stuck} cannot take effect before its return, whatever the order of the "
        f"operations still pending"
    )


Move = tuple[int, ...]  # one completed op, or a chain of unknown ops and the op it enables


@dataclass(slots=True)
class _Pending:
    """What may take effect next from one configuration, indexed for building moves."""

    singles: list[Move] = field(default_factory=list)  # completed operations
    needs: dict[str | None, list[int]] = field(default_factory=dict)  # get, cas true: by need
    cas_false: list[int] = field(default_factory=list)  # failed cas, illegal in this state
    writers: dict[str | None, int] = field(default_factory=dict)  # unknown put/delete by value
    cas_by_expected: dict[str | None, list[int]] = field(default_factory=dict)  # unknown cas
    cas_pairs: set[tuple[str | None, str | None]] = field(default_factory=set)
    blocking: int = _END


class _Search:
    """One key's depth-first search over linearizations (see the module docstring).

    Operations are numbered with the completed ("ok") ones first, so the completed set and the
    unknown set are two bitmasks. Events live in arrays forming a doubly linked list in time
    order; lifting an operation unlinks its call and return events, in O(1).
    """

    def __init__(self, checked: list[Operation], states_max: int) -> None:
        # An unknown get observes nothing and changes nothing: never worth placing.
        completed = [op for op in checked if op.status == "ok"]
        unknown = [op for op in checked if op.status == "unknown" and op.op != "get"]
        self.ops = completed + unknown
        self.ok_count = len(completed)
        self.states_max = states_max
        self.states = 0
        self.best_moves: list[Move] = []
        self.best_placed = 0
        self.best_state: str | None = None
        self.best_blocking = _END
        # Flat arrays: the search reads these millions of times.
        self.kind = [_KIND_CODES[op.op] for op in self.ops]
        self.value = [op.value for op in self.ops]  # None for delete: the state it leaves
        self.expected = [op.expected for op in self.ops]
        self.output = [op.output for op in self.ops]  # None for unknown operations
        self._build_events()

    def _build_events(self) -> None:
        events: list[tuple[int, int, int]] = []  # (time, 0 call / 1 return, op)
        for i, op in enumerate(self.ops):
            events.append((op.call_us, 0, i))
            if i < self.ok_count:
                events.append((_returned(op), 1, i))
        events.sort()  # calls before returns at equal times: equal times are concurrent
        count = len(events)
        self.head = count  # sentinel node before the first event
        self.event_op = [op for _, _, op in events]
        self.event_is_call = [kind == 0 for _, kind, _ in events]
        self.next = [*range(1, count), _END, 0 if count else _END]
        self.prev = [count, *range(count - 1), _END]
        self.call_event = [0] * len(self.ops)
        self.return_event = [_END] * len(self.ops)
        for e, (_, kind, op_index) in enumerate(events):
            if kind == 0:
                self.call_event[op_index] = e
            else:
                self.return_event[op_index] = e

    # ------------------------------------------------------------------------ event list

    def _unlink(self, e: int) -> None:
        before, after = self.prev[e], self.next[e]
        self.next[before] = after
        if after != _END:
            self.prev[after] = before

    def _relink(self, e: int) -> None:
        # Dancing links: e still remembers its neighbours, valid because undo is LIFO.
        self.next[self.prev[e]] = e
        if self.next[e] != _END:
            self.prev[self.next[e]] = e

    def _lift(self, move: Move) -> None:
        for op in move:
            self._unlink(self.call_event[op])
            if self.return_event[op] != _END:
                self._unlink(self.return_event[op])

    def _unlift(self, move: Move) -> None:
        for op in reversed(move):
            if self.return_event[op] != _END:
                self._relink(self.return_event[op])
            self._relink(self.call_event[op])

    # ------------------------------------------------------------------------ moves

    def _moves(self, state: str | None) -> tuple[list[Move], int]:
        """The moves from a configuration, and the op of the earliest pending return.

        Lowe: only calls before the earliest pending return qualify, since that operation
        must take effect before it returned. Completed operations come first (one each), then
        the chains of unknown operations that end with the completed operation they enable.
        """
        pending = self._pending(state)
        if (pending.writers or pending.cas_by_expected) and (pending.needs or pending.cas_false):
            return pending.singles + self._chains(state, pending), pending.blocking
        return pending.singles, pending.blocking

    def _pending(self, state: str | None) -> "_Pending":
        pending = _Pending()
        e = self.next[self.head]
        while e != _END and self.event_is_call[e]:
            op = self.event_op[e]
            kind = self.kind[op]
            if op < self.ok_count:
                pending.singles.append((op,))
                if kind == _GET or (kind == _CAS and self.output[op] == "true"):
                    need = self.output[op] if kind == _GET else self.expected[op]
                    if need != state:
                        pending.needs.setdefault(need, []).append(op)
                elif kind == _CAS and self.expected[op] == state:
                    pending.cas_false.append(op)
            elif kind == _CAS:
                # Equal (expected, value) pairs are interchangeable: both are pending.
                pair = (self.expected[op], self.value[op])
                if pair not in pending.cas_pairs:
                    pending.cas_pairs.add(pair)
                    pending.cas_by_expected.setdefault(pair[0], []).append(op)
            else:
                # Equal values are interchangeable: both are pending, only the first is tried.
                pending.writers.setdefault(self.value[op], op)
            e = self.next[e]
        pending.blocking = self.event_op[e] if e != _END else _END
        return pending

    def _chains(self, state: str | None, pending: "_Pending") -> list[Move]:
        """Chains of unknown operations, each enabling the next, ending in a completed one.

        An unknown operation is placed only in such a chain: anywhere else its effect is
        overwritten unseen, or it commutes with the next operation and can be moved later, to
        the end, and dropped. So a chain is at most one unknown blind write, then unknown cas
        operations that each swap because of the previous one, through states never repeated
        (a loop could be cut out, leaving fewer unknown operations).
        """
        moves: list[Move] = []
        # (chain, state reached, states visited), depth-first.
        stack: list[tuple[Move, str | None, tuple[str | None, ...]]] = [
            ((w,), value, (state, value)) for value, w in pending.writers.items() if value != state
        ]
        stack += [
            ((c,), self.value[c], (state, self.value[c]))
            for c in pending.cas_by_expected.get(state, ())
            if self.value[c] != state
        ]
        stack.reverse()
        while stack:
            chain, reached, visited = stack.pop()
            moves.extend((*chain, o) for o in pending.needs.get(reached, ()))
            if len(chain) == 1:  # a cas that fails needs a change from its expected value
                moves.extend((*chain, o) for o in pending.cas_false)
            for c in reversed(pending.cas_by_expected.get(reached, ())):
                if self.value[c] not in visited:
                    stack.append(((*chain, c), self.value[c], (*visited, self.value[c])))
        return moves

    def _step(self, state: str | None, op: int) -> tuple[bool, str | None]:
        """Whether `op` may take effect in `state`, and the state after it."""
        kind = self.kind[op]
        if kind == _GET:
            return self.output[op] == state, state
        if kind != _CAS:  # put or delete: a blind write
            return True, self.value[op]
        swaps = state == self.expected[op]
        output = self.output[op]
        if output is None:  # cas whose outcome nobody saw: the state decides
            return True, (self.value[op] if swaps else state)
        if output == "true":
            return swaps, self.value[op]
        return not swaps, state

    def _apply(self, state: str | None, move: Move) -> tuple[bool, str | None]:
        for op in move:
            legal, state = self._step(state, op)
            if not legal:
                return False, state
        return True, state

    # ------------------------------------------------------------------------ search

    def run(self) -> Outcome:
        """Search for a linearization of every completed operation."""
        seen: dict[tuple[int, str | None], list[int]] = {(0, None): [0]}
        ok_bits = unknown_bits = 0
        path: list[Move] = []  # moves made so far, in order
        placed_ok = placed = 0
        moves, blocking = self._moves(None)
        # One frame per configuration on the path: its moves, how many were tried, and its
        # model state (frame i is the configuration after path[:i]).
        frame_moves, frame_tried = [moves], [0]
        frame_state: list[str | None] = [None]
        self._note_progress(path, 0, None, blocking)
        while placed_ok < self.ok_count:
            tried = frame_tried[-1]
            if tried == len(frame_moves[-1]):  # dead end: backtrack
                frame_moves.pop(), frame_tried.pop(), frame_state.pop()
                if not path:
                    return Outcome.VIOLATION
                undone = path.pop()
                self._unlift(undone)
                ok_bits, unknown_bits = self._toggle(undone, ok_bits, unknown_bits)
                placed_ok -= self._ok_in(undone)
                placed -= len(undone)
                continue
            frame_tried[-1] = tried + 1
            move = frame_moves[-1][tried]
            legal, after = self._apply(frame_state[-1], move)
            if not legal:
                continue
            new_ok_bits, new_unknown_bits = self._toggle(move, ok_bits, unknown_bits)
            if self._dominated(seen, new_ok_bits, new_unknown_bits, after):
                continue
            self.states += 1
            if self.states > self.states_max:
                return Outcome.UNKNOWN
            self._lift(move)
            path.append(move)
            ok_bits, unknown_bits = new_ok_bits, new_unknown_bits
            placed_ok += self._ok_in(move)
            placed += len(move)
            moves, blocking = self._moves(after)
            frame_moves.append(moves)
            frame_tried.append(0)
            frame_state.append(after)
            if placed > self.best_placed:
                self._note_progress(path, placed, after, blocking)
        return Outcome.OK

    def _ok_in(self, move: Move) -> int:
        return sum(1 for op in move if op < self.ok_count)

    def _toggle(self, move: Move, ok_bits: int, unknown_bits: int) -> tuple[int, int]:
        for op in move:
            if op < self.ok_count:
                ok_bits ^= 1 << op
            else:
                unknown_bits ^= 1 << (op - self.ok_count)
        return ok_bits, unknown_bits

    @staticmethod
    def _dominated(
        seen: dict[tuple[int, str | None], list[int]],
        ok_bits: int,
        unknown_bits: int,
        state: str | None,
    ) -> bool:
        """Whether this configuration, or one that dominates it, was visited; else record it.

        (ok, state, U) dominates (ok, state, U') when U is a subset of U': the unknown
        operations in U' but not in U may still be placed later from the former, or never.
        Without unknown operations this is Porcupine's plain cache lookup.
        """
        visited = seen.get((ok_bits, state))
        if visited is None:
            seen[(ok_bits, state)] = [unknown_bits]
            return False
        if any(v | unknown_bits == unknown_bits for v in visited):
            return True
        visited.append(unknown_bits)
        return False

    def _note_progress(
        self, path: list[Move], placed: int, state: str | None, blocking: int
    ) -> None:
        self.best_moves = list(path)  # a C-speed copy: this runs at every new depth record
        self.best_placed = placed
        self.best_state = state
        self.best_blocking = blocking

    @property
    def best_path(self) -> list[int]:
        """The operations of the longest linearizable prefix found, in order."""
        return [op for move in self.best_moves for op in move]


def _returned(op: Operation) -> int:
    assert op.return_us is not None  # an ok operation has a return time
    return op.return_us


__all__ = [
    "STATES_PER_KEY_MAX_DEFAULT",
    "KeyResult",
    "LinearizabilityResult",
    "Outcome",
    "check_key",
    "check_linearizability",
]
