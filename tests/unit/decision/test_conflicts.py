"""Conflict detection: one example per conflict type and rule, the dependency cycle finder,
and properties: symmetric, order-independent, deterministic ids."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conclave.decision.conflicts import (
    AllowedValues,
    JsonSchemaRule,
    MaxKeys,
    ValueLengthMax,
    apply_changes,
    conflict_id,
    detect,
    find_dependency_cycle,
    parse_json,
)
from conclave.decision.model import Conflict, ConflictType, Proposal, Scope, Severity, Window


def _p(
    pid: str,
    *,
    reads: tuple[str, ...] = (),
    writes: tuple[str, ...] = (),
    changes: tuple[tuple[str, str | None], ...] | None = None,
    window: tuple[int, int] | None = None,
    deps: tuple[str, ...] = (),
    index: int = 1,
) -> Proposal:
    return Proposal(
        id=pid,
        proposer="alice",
        kind="config",
        scope=Scope(reads=reads, writes=writes),
        changes=tuple((k, "v") for k in writes) if changes is None else changes,
        depends_on=deps,
        window=None if window is None else Window(start_ms=window[0], end_ms=window[1]),
        deadline_ms=10_000,
        created_at_ms=0,
        index=index,
    )


def _only(conflicts: tuple[Conflict, ...]) -> Conflict:
    assert len(conflicts) == 1, conflicts
    return conflicts[0]


# ----------------------------------------------------------------------------- resource


def test_write_write_is_a_high_resource_conflict_named_by_sorted_ids() -> None:
    a = _p("p7", writes=("cfg/a", "cfg/b"))
    b = _p("p1", writes=("cfg/b", "cfg/c"))
    conflict = _only(detect(a, [b]))
    assert conflict.id == "resource:p1+p7"
    assert conflict.type is ConflictType.RESOURCE
    assert conflict.severity is Severity.HIGH
    assert conflict.proposals == ("p1", "p7")
    assert conflict.reason == 'both write "cfg/b"'


def test_read_write_overlap_is_a_medium_resource_conflict() -> None:
    reader = _p("p1", reads=("cfg/a",))
    writer = _p("p2", writes=("cfg/a",))
    conflict = _only(detect(reader, [writer]))
    assert (conflict.id, conflict.severity) == ("resource:p1+p2", Severity.MEDIUM)
    assert conflict.reason == 'read/write overlap on "cfg/a"'


def test_write_write_and_read_write_keys_are_both_named_once() -> None:
    a = _p("a", reads=("r",), writes=("w",))
    b = _p("b", writes=("r", "w"))
    conflict = _only(detect(a, [b]))
    assert conflict.severity is Severity.HIGH
    assert conflict.reason == 'both write "w"; read/write overlap on "r"'


def test_disjoint_and_read_read_scopes_do_not_conflict_without_windows() -> None:
    a = _p("a", reads=("x",), writes=("a",))
    b = _p("b", reads=("x",), writes=("b",))
    assert detect(a, [b]) == ()


def test_reason_is_one_line_and_bounded() -> None:
    keys = tuple(sorted(f"k\n{i:02}" for i in range(20)))
    conflict = _only(detect(_p("a", writes=keys), [_p("b", writes=keys)]))
    assert "\n" not in conflict.reason
    assert conflict.reason.endswith("and 12 more")


# ----------------------------------------------------------------------------- temporal


def test_overlapping_windows_on_a_shared_read_key_are_a_temporal_conflict() -> None:
    a = _p("a", reads=("x",), writes=("a",), window=(0, 100))
    b = _p("b", reads=("x",), writes=("b",), window=(50, 150))
    conflict = _only(detect(a, [b]))
    assert (conflict.id, conflict.severity) == ("temporal:a+b", Severity.MEDIUM)
    assert conflict.reason == 'windows overlap on "x"'


def test_touching_windows_do_not_overlap() -> None:
    a = _p("a", reads=("x",), window=(0, 100))
    b = _p("b", reads=("x",), window=(100, 200))
    assert detect(a, [b]) == ()


def test_one_window_missing_means_no_temporal_conflict() -> None:
    assert detect(_p("a", reads=("x",), window=(0, 10)), [_p("b", reads=("x",))]) == ()


def test_resource_conflict_subsumes_the_temporal_one() -> None:
    a = _p("a", writes=("x",), window=(0, 100))
    b = _p("b", writes=("x",), window=(0, 100))
    conflict = _only(detect(a, [b]))
    assert conflict.type is ConflictType.RESOURCE
    assert conflict.reason == 'both write "x"; windows also overlap'


# ----------------------------------------------------------------------------- policy


def test_max_keys_fires_when_the_candidate_grows_the_prefix_over_the_limit() -> None:
    rule = MaxKeys(prefix="users/", count_max=2)
    state = {"users/a": "1", "users/b": "1", "other": "1"}
    grow = _p("p1", writes=("users/c",))
    conflict = _only(detect(grow, [], rules=[rule], state=state))
    assert (conflict.id, conflict.severity) == ("policy:p1", Severity.HIGH)
    assert conflict.reason == '"p1" breaks "max-keys(\\"users/\\", 2): 3 keys"'
    overwrite = _p("p2", writes=("users/a",))
    assert detect(overwrite, [], rules=[rule], state=state) == ()


def test_max_keys_does_not_blame_a_proposal_for_an_already_full_state() -> None:
    rule = MaxKeys(prefix="", count_max=1)
    state = {"a": "1", "b": "1", "c": "1"}
    shrink = _p("p1", writes=("a",), changes=(("a", None),))
    assert detect(shrink, [], rules=[rule], state=state) == ()


def test_allowed_values_checks_written_values_and_ignores_deletes() -> None:
    rule = AllowedValues(key_prefix="mode/", values=("on", "off"))
    bad = _p("p1", writes=("mode/x",), changes=(("mode/x", "maybe"),))
    assert "not allowed" in _only(detect(bad, [], rules=[rule])).reason
    good = _p("p2", writes=("mode/x", "z"), changes=(("mode/x", "on"), ("z", "any")))
    delete = _p("p3", writes=("mode/y",), changes=(("mode/y", None),))
    assert detect(good, [], rules=[rule]) == ()
    assert detect(delete, [], rules=[rule], state={"mode/y": "weird"}) == ()


def test_value_length_max_counts_utf8_bytes() -> None:
    rule = ValueLengthMax(prefix="n/", bytes_max=3)
    assert detect(_p("ok", writes=("n/a",), changes=(("n/a", "abc"),)), [], rules=[rule]) == ()
    euro = _p("long", writes=("n/a",), changes=(("n/a", "€€"),))  # 6 bytes, 2 characters
    assert "is 6 bytes" in _only(detect(euro, [], rules=[rule])).reason


SCHEMA = json.dumps(
    {
        "type": "object",
        "required": ["name", "replicas"],
        "properties": {
            "name": {"type": "string", "maxLength": 5},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 7},
            "tier": {"enum": ["gold", "silver", 1]},
        },
    }
)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('{"name":"db","replicas":3}', None),
        ('{"name":"db","replicas":3.0,"tier":1}', None),
        ('{"name":"db","replicas":3,"tier":true}', "$.tier: not one of the allowed values"),
        ('{"name":"db","replicas":3,"tier":"bronze"}', "$.tier: not one of the allowed values"),
        ('{"name":"db"}', '$: missing required \\"replicas\\"'),
        ('{"name":"toolong","replicas":3}', "$.name: longer than 5 characters"),
        ('{"name":"db","replicas":0}', "$.replicas: below minimum 1"),
        ('{"name":"db","replicas":8}', "$.replicas: above maximum 7"),
        ('{"name":"db","replicas":"3"}', "$.replicas: expected integer"),
        ('{"name":"db","replicas":true}', "$.replicas: expected integer"),
        ("[1]", "$: expected object"),
        ("not json", "is not JSON"),
        ('{"name":"db","replicas":NaN}', "is not JSON"),
        ('{"name":"db","name":"db","replicas":3}', "is not JSON"),
    ],
)
def test_json_schema_subset(value: str, problem: str | None) -> None:
    rule = JsonSchemaRule(key_prefix="svc/", schema=SCHEMA)
    proposal = _p("p1", writes=("svc/db",), changes=(("svc/db", value),))
    conflicts = detect(proposal, [], rules=[rule])
    if problem is None:
        assert conflicts == ()
    else:
        assert problem in _only(conflicts).reason


def test_json_schema_rule_refuses_unsupported_or_malformed_schemas() -> None:
    with pytest.raises(ValueError, match="unsupported keyword"):
        JsonSchemaRule(key_prefix="", schema='{"maxItems": 3}')
    with pytest.raises(ValueError, match="unsupported keyword"):
        JsonSchemaRule(key_prefix="", schema='{"properties": {"a": {"minimun": 1}}}')
    with pytest.raises(ValueError, match="type must be one of"):
        JsonSchemaRule(key_prefix="", schema='{"type": "float"}')
    with pytest.raises(ValueError, match="must be a JSON object"):
        JsonSchemaRule(key_prefix="", schema="[]")
    with pytest.raises(ValueError, match="maxLength"):
        JsonSchemaRule(key_prefix="", schema='{"maxLength": -1}')
    with pytest.raises(ValueError, match="Expecting property name"):
        parse_json("{")


def test_rules_outside_their_prefix_do_not_fire_and_reasons_list_rules_in_order() -> None:
    rules = [
        ValueLengthMax(prefix="a/", bytes_max=1),
        AllowedValues(key_prefix="a/", values=("x",)),
        MaxKeys(prefix="b/", count_max=0),
    ]
    proposal = _p("p1", writes=("a/k", "c/k"), changes=(("a/k", "yy"), ("c/k", "zz")))
    reason = _only(detect(proposal, [], rules=rules)).reason
    assert reason.index("value-length-max") < reason.index("allowed-values")
    assert "max-keys" not in reason


# ----------------------------------------------------------------------------- dependency


def test_dependency_on_a_failed_or_unknown_proposal() -> None:
    candidate = _p("p9", deps=("p1", "p2", "p3", "p4"))
    conflict = _only(
        detect(
            candidate,
            [_p("p3")],
            failed={"p1": "rejected"},
            executed=frozenset({"p4"}),
        )
    )
    assert (conflict.id, conflict.severity) == ("dependency:p9", Severity.HIGH)
    assert conflict.reason == (
        '"p9" depends on "p1" which failed: "rejected"; depends on unknown "p2"'
    )


def test_dependency_on_an_open_or_executed_proposal_is_fine() -> None:
    assert detect(_p("b", deps=("a",)), [_p("a")]) == ()
    assert detect(_p("b", deps=("x",)), [], executed=("x",)) == ()


def test_dependency_cycle_through_the_candidate_is_reported_once_for_all() -> None:
    a, b, c = _p("a", deps=("c",)), _p("b", deps=("a",)), _p("c", deps=("b",))
    for candidate, others in ((a, [b, c]), (b, [c, a]), (c, [a, b])):
        conflict = _only(detect(candidate, others))
        assert conflict.id == "dependency:a+b+c"
        assert conflict.reason == 'dependency cycle "a" -> "c" -> "b" -> "a"'


def test_self_dependency_is_a_candidate_dependency_conflict() -> None:
    conflict = _only(detect(_p("a", deps=("a",)), []))
    assert (conflict.id, conflict.reason) == ("dependency:a", '"a" depends on itself')


def test_find_dependency_cycle() -> None:
    assert find_dependency_cycle([]) is None
    assert find_dependency_cycle([_p("a", deps=("b",)), _p("b", deps=("x",))]) is None
    assert find_dependency_cycle([_p("a", deps=("a",))]) == ("a",)
    cycle = [_p("c", deps=("a",)), _p("b", deps=("c",)), _p("a", deps=("b",))]
    assert find_dependency_cycle(cycle) == ("a", "b", "c")
    assert find_dependency_cycle(reversed(cycle)) == ("a", "b", "c")
    # A long chain is searched without recursion.
    chain = [_p(f"n{i:05}", deps=(f"n{i + 1:05}",)) for i in range(5000)]
    assert find_dependency_cycle(chain) is None
    assert find_dependency_cycle([*chain, _p("n05000", deps=("n00000",))]) is not None


# ----------------------------------------------------------------------------- plumbing


def test_candidate_in_others_is_ignored_and_clashing_ids_are_refused() -> None:
    a = _p("a", writes=("x",))
    assert detect(a, [a]) == ()
    with pytest.raises(ValueError, match="share the id"):
        detect(a, [_p("b", writes=("x",)), _p("b", writes=("y",))])


def test_conflict_id_sorts_ids() -> None:
    assert conflict_id(ConflictType.TEMPORAL, ["p7", "p1"]) == "temporal:p1+p7"


def test_apply_changes_deletes_and_keeps_the_input() -> None:
    state = {"a": "1", "b": "2"}
    assert apply_changes(state, [("a", None), ("c", "3")]) == {"b": "2", "c": "3"}
    assert state == {"a": "1", "b": "2"}


# ----------------------------------------------------------------------------- properties

KEYS = ("k1", "k2", "k3", "k4")
key_sets = st.lists(st.sampled_from(KEYS), unique=True, max_size=3).map(
    lambda ks: tuple(sorted(ks))
)
windows = st.one_of(
    st.none(),
    st.tuples(st.integers(0, 50), st.integers(1, 50)).map(lambda t: (t[0], t[0] + t[1])),
)


@st.composite
def proposals(draw: st.DrawFn, pid: str, index: int, ids: tuple[str, ...] = ()) -> Proposal:
    writes = draw(key_sets)
    return _p(
        pid,
        reads=draw(key_sets),
        writes=writes,
        changes=tuple((k, draw(st.sampled_from(["0", "1", None]))) for k in writes),
        window=draw(windows),
        deps=tuple(sorted(draw(st.sets(st.sampled_from((*ids, "gone", "done")), max_size=2)))),
        index=index,
    )


IDS = ("p0", "p1", "p2", "p3", "p4")


@st.composite
def proposal_sets(draw: st.DrawFn) -> list[Proposal]:
    count = draw(st.integers(1, len(IDS)))
    return [draw(proposals(IDS[i], i + 1, IDS)) for i in range(count)]


RULES = (MaxKeys(prefix="k", count_max=2), AllowedValues(key_prefix="k1", values=("0",)))
PAIR_TYPES = (ConflictType.RESOURCE, ConflictType.TEMPORAL)


def _pairwise(conflicts: tuple[Conflict, ...]) -> tuple[Conflict, ...]:
    return tuple(c for c in conflicts if c.type in PAIR_TYPES)


@given(proposals("a", 1), proposals("b", 2))
def test_resource_and_temporal_detection_is_symmetric(a: Proposal, b: Proposal) -> None:
    assert _pairwise(detect(a, [b])) == _pairwise(detect(b, [a]))


def _detect_all_kinds(
    candidate: Proposal, others: list[Proposal], state: dict[str, str]
) -> tuple[Conflict, ...]:
    return detect(
        candidate, others, rules=RULES, state=state, failed={"gone": "expired"}, executed=("done",)
    )


@given(st.data(), proposal_sets(), st.dictionaries(st.sampled_from(KEYS), st.just("1")))
def test_detection_does_not_depend_on_the_order_of_others(
    data: st.DataObject, group: list[Proposal], state: dict[str, str]
) -> None:
    candidate, others = group[0], group[1:]
    shuffled = data.draw(st.permutations(others))
    first = _detect_all_kinds(candidate, others, state)
    assert first == _detect_all_kinds(candidate, list(shuffled), state)
    assert first == tuple(sorted(first, key=lambda c: c.id))
    assert len({c.id for c in first}) == len(first)
    for conflict in first:
        assert candidate.id in conflict.proposals
        assert conflict.proposals == tuple(sorted(conflict.proposals))
        assert conflict.id == conflict_id(conflict.type, conflict.proposals)
        assert "\n" not in conflict.reason


def _reaches(by_id: dict[str, Proposal], start: str, goal: str) -> bool:
    seen: set[str] = set()
    todo = [d for d in by_id[start].depends_on if d in by_id]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo += [d for d in by_id[node].depends_on if d in by_id]
    return False


@given(proposal_sets())
def test_a_found_cycle_is_a_real_cycle(group: list[Proposal]) -> None:
    cycle = find_dependency_cycle(group)
    by_id = {p.id: p for p in group}
    if cycle is None:
        assert not any(_reaches(by_id, p.id, p.id) for p in group)
        return
    assert cycle[0] == min(cycle)
    for i, pid in enumerate(cycle):
        assert cycle[(i + 1) % len(cycle)] in by_id[pid].depends_on
