"""The linearizability checker: known verdicts, explanations, bounds, a brute-force oracle and
generated histories that are linearizable by construction."""

import random
import time
from collections.abc import Sequence
from itertools import combinations, permutations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conclave.apps.kv import (
    CasResult,
    Command,
    CompareAndSet,
    Delete,
    Get,
    GetResult,
    KVStateMachine,
    Put,
    Request,
    encode_request,
)
from conclave.core import Entry
from conclave.sim.history import History, Operation
from conclave.sim.linearizability import (
    LinearizabilityResult,
    Outcome,
    check_key,
    check_linearizability,
)


def op(
    client: int,
    kind: str,
    call: int,
    ret: int | None,
    *,
    key: str = "x",
    value: str | None = None,
    expected: str | None = None,
    output: str | None = None,
    status: str | None = None,
) -> Operation:
    """Shorthand: status defaults to ok when there is a return time, unknown otherwise."""
    return Operation(
        client=client,
        op=kind,  # type: ignore[arg-type]
        key=key,
        value=value,
        expected=expected,
        call_us=call,
        return_us=ret,
        status=(status or ("ok" if ret is not None else "unknown")),  # type: ignore[arg-type]
        output=output,
    )


def put(client: int, call: int, ret: int | None, value: str, key: str = "x") -> Operation:
    return op(client, "put", call, ret, key=key, value=value)


def get(client: int, call: int, ret: int | None, output: str | None, key: str = "x") -> Operation:
    return op(client, "get", call, ret, key=key, output=output if ret is not None else None)


def delete(client: int, call: int, ret: int | None, key: str = "x") -> Operation:
    return op(client, "delete", call, ret, key=key)


def cas(  # noqa: PLR0917 - a compact notation for hand-written histories
    client: int,
    call: int,
    ret: int | None,
    expected: str | None,
    value: str,
    swapped: bool | None,
    key: str = "x",
) -> Operation:
    output = None if swapped is None else ("true" if swapped else "false")
    return op(client, "cas", call, ret, key=key, value=value, expected=expected, output=output)


def check(*ops: Operation, states_max: int = 100_000) -> LinearizabilityResult:
    return check_linearizability(ops, states_per_key_max=states_max)


# ---------------------------------------------------------------------------- linearizable


LINEARIZABLE = {
    "empty": [],
    "sequential": [
        get(1, 0, 1, None),
        put(1, 2, 3, "a"),
        get(2, 4, 5, "a"),
        cas(3, 6, 7, "a", "b", True),
        cas(1, 8, 9, "a", "c", False),
        get(2, 10, 11, "b"),
        delete(3, 12, 13),
        get(1, 14, 15, None),
        cas(2, 16, 17, None, "d", True),
        get(3, 18, 19, "d"),
    ],
    "reads overlapping a write see old or new": [
        put(1, 0, 1, "a"),
        put(1, 10, 20, "b"),
        get(2, 11, 12, "b"),
        get(3, 13, 14, "b"),
        get(4, 12, 19, "a"),  # concurrent with the write and with both reads
    ],
    "concurrent writes in either order": [
        put(1, 0, 10, "a"),
        put(2, 0, 10, "b"),
        get(3, 11, 12, "a"),  # b then a
    ],
    "one of two concurrent cas on the same expectation wins": [
        put(1, 0, 1, "0"),
        cas(2, 2, 10, "0", "1", True),
        cas(3, 2, 10, "0", "2", False),
        get(1, 11, 12, "1"),
    ],
    "equal times are concurrent": [
        put(1, 0, 5, "a"),
        get(2, 5, 6, None),  # called at the write's return: may precede it
    ],
    "unknown write that took effect": [
        put(1, 0, None, "a"),
        get(2, 50, 60, "a"),
    ],
    "unknown write that never took effect": [
        put(1, 0, None, "a"),
        get(2, 50, 60, None),
        get(2, 70, 80, None),
    ],
    "unknown write that took effect late": [
        put(1, 0, None, "a"),
        put(2, 10, 20, "b"),
        get(3, 30, 40, "b"),
        get(3, 50, 60, "a"),  # the unknown put landed after the second one
    ],
    "unknown cas that took effect": [
        put(1, 0, 1, "a"),
        cas(2, 2, None, "a", "b", None),
        get(3, 10, 11, "b"),
    ],
    "chain of unknown cas, each enabled by the previous": [
        put(1, 0, 1, "a"),
        cas(2, 2, None, "a", "b", None),
        cas(3, 3, None, "b", "c", None),
        get(4, 10, 11, "c"),
    ],
    "unknown write enabling an unknown cas": [
        put(1, 0, None, "a"),
        cas(2, 1, None, "a", "b", None),
        get(3, 10, 11, "b"),
    ],
    "unknown write makes a cas fail": [
        put(1, 0, 1, "a"),
        put(2, 2, None, "b"),
        cas(3, 3, 4, "a", "c", False),
        get(3, 5, 6, "b"),
    ],
    "unknown get and delete are harmless": [
        put(1, 0, 1, "a"),
        get(2, 2, None, None),
        delete(3, 3, None),
        get(1, 4, 5, "a"),
    ],
    "failed operations are ignored": [
        op(1, "put", 0, 3, value="a", status="fail"),
        get(2, 5, 6, None),
    ],
}


@pytest.mark.parametrize("name", sorted(LINEARIZABLE))
def test_linearizable_histories_pass(name: str) -> None:
    result = check(*LINEARIZABLE[name])
    assert result.ok, result.explanation
    assert result.outcome is Outcome.OK
    assert result.key is None
    assert result.failures == ()


# ---------------------------------------------------------------------------- violations


VIOLATIONS = {
    "stale read after a completed write": [
        put(1, 0, 1, "a"),
        put(1, 2, 3, "b"),
        get(2, 4, 5, "a"),
    ],
    "lost write": [
        put(1, 0, 1, "a"),
        put(2, 2, 3, "b"),
        get(3, 4, 5, "b"),
        get(3, 6, 7, None),  # nothing deleted it
    ],
    "read observes a value before its write was invoked": [
        get(2, 0, 5, "a"),
        put(1, 6, 7, "a"),
    ],
    "unknown write observed before its call": [
        get(2, 0, 5, "a"),
        put(1, 6, None, "a"),
    ],
    "both cas succeed on the same expected value": [
        put(1, 0, 1, "0"),
        cas(2, 2, 10, "0", "1", True),
        cas(3, 2, 10, "0", "2", True),
    ],
    "cas fails although the value matched": [
        put(1, 0, 1, "a"),
        cas(2, 2, 3, "a", "b", False),
    ],
    "cas expecting absence succeeds on a present key": [
        put(1, 0, 1, "a"),
        cas(2, 2, 3, None, "b", True),
    ],
    "read of a value never written": [
        put(1, 0, 1, "a"),
        get(2, 2, 3, "zzz"),
    ],
    "read goes backwards between sequential reads of different clients": [
        put(1, 0, 1, "a"),
        put(1, 10, 30, "b"),
        get(2, 11, 12, "b"),
        get(3, 13, 14, "a"),  # called after client 2 saw b returned: too late for a
    ],
    "unknown cas that could never swap is observed": [
        put(1, 0, 1, "a"),
        cas(2, 2, None, "b", "c", None),  # expects b, which is never there
        get(3, 10, 11, "c"),
    ],
    "read of a failed write": [
        op(1, "put", 0, 3, value="a", status="fail"),
        get(2, 5, 6, "a"),
    ],
    "read of a deleted key": [
        put(1, 0, 1, "a"),
        delete(1, 2, 3),
        get(2, 4, 5, "a"),
    ],
}


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_non_linearizable_histories_fail(name: str) -> None:
    result = check(*VIOLATIONS[name])
    assert not result.ok
    assert result.outcome is Outcome.VIOLATION
    assert result.key == "x"


def test_a_violation_is_explained() -> None:
    history = VIOLATIONS["stale read after a completed write"]
    result = check(*reversed(history))
    (failure,) = result.failures
    assert failure.operations == tuple(history)  # sorted by call
    assert failure.longest_prefix == tuple(history[:2])
    assert failure.value_after_prefix == "b"
    assert failure.blocking == history[2]
    assert "not linearizable" in result.explanation
    assert "2 of 3" in result.explanation
    report = failure.report()
    assert "#1" in report
    assert "#2" in report
    assert "-   client 2 get 'x' = 'a' [4, 5]" in report


# ---------------------------------------------------------------------------- keys


def test_keys_are_checked_independently() -> None:
    result = check(
        put(1, 0, 10, "a", key="k1"),
        put(2, 0, 10, "a", key="k2"),
        get(3, 11, 12, "a", key="k1"),
        get(3, 13, 14, None, key="k3"),
        get(4, 11, 12, "a", key="k2"),
    )
    assert result.ok
    assert result.keys_checked == 3
    assert result.operations_checked == 5


def test_a_value_of_another_key_is_a_violation_on_the_reading_key() -> None:
    result = check(
        put(1, 0, 1, "a", key="k1"),
        get(2, 2, 3, "a", key="k1"),
        get(2, 4, 5, "a", key="k2"),  # "a" was only ever written to k1
    )
    assert result.outcome is Outcome.VIOLATION
    assert result.key == "k2"
    assert [f.key for f in result.failures] == ["k2"]


def test_every_failing_key_is_reported_in_key_order() -> None:
    result = check(
        get(1, 0, 1, "ghost", key="b"),
        get(1, 2, 3, "ghost", key="a"),
        get(1, 4, 5, None, key="c"),
    )
    assert [f.key for f in result.failures] == ["a", "b"]


def test_check_key_refuses_operations_of_another_key() -> None:
    with pytest.raises(ValueError, match="another key"):
        check_key("x", [get(1, 0, 1, None, key="y")])


def test_history_objects_are_accepted() -> None:
    history = History()
    op_id = history.invoke_put(client=1, key="x", value="a", at_us=0)
    history.ok(op_id, at_us=1)
    op_id = history.invoke_get(client=1, key="x", at_us=2)
    history.ok(op_id, at_us=3, output="a")
    assert check_linearizability(history).ok


# ---------------------------------------------------------------------------- the bound


def _hard_history(concurrency: int) -> list[Operation]:
    """Many concurrent writes of one value, then an impossible read: exhausts the search."""
    ops = [put(c, 0, 100, "same") for c in range(concurrency)]
    ops += [delete(c + concurrency, 0, 100) for c in range(concurrency)]
    ops.append(get(99, 200, 201, "never"))
    return ops


def test_exceeding_the_bound_is_unknown_not_a_violation() -> None:
    result = check(*_hard_history(8), states_max=50)
    assert result.outcome is Outcome.UNKNOWN
    assert not result.ok
    assert result.key == "x"
    assert "undecided" in result.explanation
    assert result.failures[0].states_explored == 51
    # The same shape, smaller: the exhaustive search completes and proves the violation.
    assert check(*_hard_history(5)).outcome is Outcome.VIOLATION


def test_a_violation_is_reported_before_a_timeout() -> None:
    ops = [*_hard_history(8), get(1, 0, 1, "ghost", key="y")]
    result = check_linearizability(ops, states_per_key_max=50)
    assert result.outcome is Outcome.VIOLATION
    assert [f.outcome for f in result.failures] == [Outcome.VIOLATION, Outcome.UNKNOWN]
    assert result.key == "y"


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="states_per_key_max"):
        check_linearizability([], states_per_key_max=0)


# ---------------------------------------------------------------------------- oracle


def _legal(sequence: Sequence[Operation]) -> bool:
    state: str | None = None
    for o in sequence:
        if o.op == "get":
            if o.status == "ok" and o.output != state:
                return False
        elif o.op == "put":
            state = o.value
        elif o.op == "delete":
            state = None
        elif o.status == "unknown":
            state = o.value if state == o.expected else state
        elif (o.output == "true") != (state == o.expected):
            return False
        elif o.output == "true":
            state = o.value
    return True


def _respects_real_time(sequence: Sequence[Operation]) -> bool:
    return not any(
        later.return_us is not None and later.return_us < earlier.call_us
        for i, earlier in enumerate(sequence)
        for later in sequence[i + 1 :]
    )


def brute_force_linearizable(ops: Sequence[Operation]) -> bool:
    """Every ordering of the completed operations plus any subset of the unknown ones."""
    completed = [o for o in ops if o.status == "ok"]
    unknown = [o for o in ops if o.status == "unknown"]
    for size in range(len(unknown) + 1):
        for chosen in combinations(unknown, size):
            for sequence in permutations([*completed, *chosen]):
                if _respects_real_time(sequence) and _legal(sequence):
                    return True
    return False


VALUES = st.sampled_from(["a", "b"])


@st.composite
def small_operations(draw: st.DrawFn) -> Operation:
    kind = draw(st.sampled_from(["get", "put", "delete", "cas"]))
    call = draw(st.integers(0, 12))
    status = draw(st.sampled_from(["ok", "ok", "ok", "unknown", "unknown", "fail"]))
    ret = None if status == "unknown" else call + draw(st.integers(0, 12))
    output: str | None = None
    if status == "ok" and kind == "get":
        output = draw(st.sampled_from([None, "a", "b"]))
    if status == "ok" and kind == "cas":
        output = draw(st.sampled_from(["true", "false"]))
    return Operation(
        client=draw(st.integers(1, 3)),
        op=kind,  # type: ignore[arg-type]
        key="x",
        value=draw(VALUES) if kind in ("put", "cas") else None,
        expected=draw(st.sampled_from([None, "a", "b"])) if kind == "cas" else None,
        call_us=call,
        return_us=ret,
        status=status,  # type: ignore[arg-type]
        output=output,
    )


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(small_operations(), max_size=6))
def test_agrees_with_brute_force_on_small_histories(ops: list[Operation]) -> None:
    expected = brute_force_linearizable([o for o in ops if o.status != "fail"])
    result = check_linearizability(ops)
    assert result.ok == expected, result.failures[0].report() if result.failures else ops


# ---------------------------------------------------------------------------- generated


def generate_linearizable(
    rng: random.Random,
    *,
    clients: int,
    keys: int,
    ops_per_client: int,
    values: int | None = None,
    unknown_rate: float = 0.03,
    fail_rate: float = 0.02,
) -> list[Operation]:
    """Clients run ops one at a time; each takes effect at a random instant inside its
    interval (or never, for fails and some unknowns), and outputs come from applying the
    effects in instant order. `values`: size of the value alphabet (None: unique values)."""
    planned = []  # (instant, tie, fields) for every op that takes effect
    ops: list[dict[str, object]] = []
    for client in range(1, clients + 1):
        now = rng.randint(0, 50)
        for n in range(ops_per_client):
            call, duration = now + rng.randint(0, 20), rng.randint(1, 60)
            kind = rng.choice(["get", "get", "put", "put", "cas", "delete"])
            value = f"{client}.{n}" if values is None else str(rng.randrange(values))
            fields: dict[str, object] = {
                "client": client,
                "op": kind,
                "key": f"k{rng.randrange(keys)}",
                "value": value if kind in ("put", "cas") else None,
                "expected": None,
                "call_us": call,
                "return_us": call + duration,
                "status": "ok",
            }
            roll = rng.random()
            if roll < fail_rate:
                fields["status"] = "fail"
            elif roll < fail_rate + unknown_rate:
                fields["status"], fields["return_us"] = "unknown", None
            if fields["status"] != "fail" and (fields["status"] == "ok" or rng.random() < 0.5):
                planned.append((call + rng.randint(0, duration), len(ops), fields))
            ops.append(fields)
            now = call + duration
    _fill_outputs(rng, planned, values)
    return [_finish(fields) for fields in ops]


def _fill_outputs(
    rng: random.Random, planned: list[tuple[int, int, dict[str, object]]], values: int | None
) -> None:
    state: dict[object, str | None] = {}
    seen: list[str] = []
    for _, _, fields in sorted(planned, key=lambda p: (p[0], p[1])):
        key, current = fields["key"], state.get(fields["key"])
        if fields["op"] == "get":
            fields["output"] = current
        elif fields["op"] == "put":
            state[key] = str(fields["value"])
        elif fields["op"] == "delete":
            state[key] = None
        else:  # cas: usually expect what is there, sometimes something else
            guess = current if rng.random() < 0.6 or not seen else rng.choice(seen)
            fields["expected"] = guess if rng.random() < 0.9 else None
            swapped = fields["expected"] == current
            fields["output"] = "true" if swapped else "false"
            if swapped:
                state[key] = str(fields["value"])
        if fields["value"] is not None:
            seen.append(str(fields["value"]))


def _finish(fields: dict[str, object]) -> Operation:
    if fields["status"] != "ok":
        fields["output"] = None
    if fields["op"] == "cas" and "output" not in fields:
        fields["expected"] = None  # an unplaced cas: any expectation would do
    fields.setdefault("output", None)
    return Operation(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(20))
def test_generated_histories_with_few_values_are_linearizable(seed: int) -> None:
    rng = random.Random(seed)
    ops = generate_linearizable(
        rng, clients=5, keys=2, ops_per_client=30, values=3, unknown_rate=0.1
    )
    result = check_linearizability(ops)
    assert result.ok, result.failures[0].report()


def test_a_corrupted_generated_history_is_caught() -> None:
    ops = generate_linearizable(random.Random(7), clients=5, keys=2, ops_per_client=30)
    index = next(i for i, o in enumerate(ops) if o.op == "get" and o.status == "ok")
    corrupted = [*ops]
    original = corrupted[index]
    corrupted[index] = Operation(
        client=original.client,
        op="get",
        key=original.key,
        call_us=original.call_us,
        return_us=original.return_us,
        status="ok",
        output="never-written",
    )
    result = check_linearizability(corrupted)
    assert result.outcome is Outcome.VIOLATION
    assert result.key == original.key


def test_a_large_history_checks_quickly() -> None:
    """A few thousand ops, 10 keys, 10 clients, timeouts included: well under a second."""
    ops = generate_linearizable(random.Random(1), clients=10, keys=10, ops_per_client=300)
    assert len(ops) == 3000
    assert sum(o.status == "unknown" for o in ops) > 50
    started = time.perf_counter()
    result = check_linearizability(ops)
    elapsed = time.perf_counter() - started
    assert result.ok, result.explanation
    assert result.states_explored < 5 * len(ops)  # near-linear: the memo and the order work
    assert elapsed < 5.0  # generous for slow CI machines; typically ~0.1 s


def test_many_timeouts_on_one_key_stay_tractable() -> None:
    """Unknown writes are optional; the dominance rule keeps them from doubling the search."""
    ops = [put(100 + n, n, None, f"lost{n}") for n in range(40)]
    ops += [put(1, 100 + 10 * n, 105 + 10 * n, f"v{n}") for n in range(40)]
    ops += [get(2, 106 + 10 * n, 108 + 10 * n, f"v{n}") for n in range(40)]
    result = check(*ops, states_max=100_000)
    assert result.ok, result.explanation


# ---------------------------------------------------------------------------- the kv store


def test_histories_of_the_kv_state_machine_are_linearizable() -> None:
    """Clients of a real KVStateMachine, recorded with the history conventions, check ok."""
    rng = random.Random(3)
    machine = KVStateMachine()
    history = History()
    pending: list[tuple[int, Request]] = []  # (history id, request) invoked, not yet applied
    seqs: dict[int, int] = {}
    now = index = 0
    for _ in range(600):
        now += 1
        if pending and (rng.random() < 0.5 or len(pending) >= 6):
            op_id, request = pending.pop(rng.randrange(len(pending)))
            index += 1
            applied = machine.apply(Entry(term=1, index=index, data=encode_request(request)))
            _record(history, op_id, applied, now)
            continue
        client = rng.randint(1, 8)
        if any(r.client_id == client for _, r in pending):
            continue  # one outstanding request per client
        seqs[client] = seqs.get(client, 0) + 1
        key, value = rng.choice("ab"), f"{client}.{seqs[client]}"
        command, op_id = _invoke(
            rng, history, client=client, key=key, value=value, now=now, machine=machine
        )
        pending.append((op_id, Request(client_id=client, seq=seqs[client], command=command)))
    verdict = check_linearizability(history)
    assert verdict.ok, verdict.explanation
    assert verdict.operations_checked > 200


def _invoke(
    rng: random.Random,
    history: History,
    *,
    client: int,
    key: str,
    value: str,
    now: int,
    machine: KVStateMachine,
) -> tuple[Command, int]:
    kind = rng.choice(["get", "put", "delete", "cas"])
    if kind == "get":
        return Get(key=key), history.invoke_get(client=client, key=key, at_us=now)
    if kind == "put":
        return Put(key=key, value=value), history.invoke_put(
            client=client, key=key, value=value, at_us=now
        )
    if kind == "delete":
        return Delete(key=key), history.invoke_delete(client=client, key=key, at_us=now)
    expected = machine.query(Get(key=key)).value if rng.random() < 0.7 else "stale"
    command = (
        CompareAndSet(key=key, new_value=value, expected_revision=0)
        if expected is None
        else CompareAndSet(key=key, new_value=value, expected_value=expected)
    )
    op_id = history.invoke_cas(client=client, key=key, expected=expected, value=value, at_us=now)
    return command, op_id


def _record(history: History, op_id: int, result: object, now: int) -> None:
    if isinstance(result, GetResult):
        history.ok(op_id, at_us=now, output=result.value)
    elif isinstance(result, CasResult):
        history.ok_cas(op_id, at_us=now, swapped=result.succeeded)
    else:
        history.ok(op_id, at_us=now)
