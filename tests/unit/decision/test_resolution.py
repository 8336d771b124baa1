"""Resolution strategies: one example per built-in, the registry, `validate` refusing broken
resolutions, and properties: built-ins validate or refuse, merge only commutes."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conclave.decision.conflicts import (
    AllowedValues,
    MaxKeys,
    apply_changes,
    conflict_id,
    detect,
)
from conclave.decision.model import Conflict, ConflictType, Proposal, Scope, Severity, Window
from conclave.decision.resolution import (
    CannotResolve,
    DetectFn,
    EscalateStrategy,
    MergeStrategy,
    Resolution,
    Strategy,
    StrategyRegistry,
    UnknownStrategy,
    builtin_strategies,
    conflicts_among,
    default_registry,
    validate,
)


def _p(
    pid: str,
    *,
    reads: tuple[str, ...] = (),
    writes: tuple[str, ...] = (),
    changes: tuple[tuple[str, str | None], ...] | None = None,
    window: tuple[int, int] | None = None,
    deps: tuple[str, ...] = (),
    priority: int = 0,
    index: int = 1,
) -> Proposal:
    return Proposal(
        id=pid,
        proposer="alice",
        kind="config",
        scope=Scope(reads=reads, writes=writes),
        changes=tuple((k, "v") for k in writes) if changes is None else changes,
        depends_on=deps,
        priority=priority,
        window=None if window is None else Window(start_ms=window[0], end_ms=window[1]),
        deadline_ms=10_000,
        created_at_ms=0,
        index=index,
    )


def _by_id(*proposals: Proposal) -> dict[str, Proposal]:
    return {p.id: p for p in proposals}


def _conflict_of(a: Proposal, b: Proposal) -> Conflict:
    (conflict,) = detect(a, [b])
    return conflict


REGISTRY = default_registry()
DETECT: DetectFn = detect


def _resolve(name: str, conflict: Conflict, proposals: Mapping[str, Proposal]) -> Resolution:
    return REGISTRY.get(name).resolve(conflict, proposals)


# ----------------------------------------------------------------------------- built-ins


def test_priority_highest_wins() -> None:
    low = _p("p1", writes=("x",), priority=1, index=1)
    high = _p("p2", writes=("x",), priority=5, index=2)
    proposals = _by_id(low, high)
    conflict = _conflict_of(low, high)
    resolution = _resolve("priority", conflict, proposals)
    assert (resolution.winners, resolution.losers, resolution.escalations) == (("p2",), ("p1",), ())
    assert resolution.strategy == "priority"
    assert resolution.conflict_id == "resource:p1+p2"
    assert not resolution.merged
    assert validate(resolution, conflict, proposals, DETECT) == []


def test_priority_tie_goes_to_log_order_then_id() -> None:
    early = _p("p9", writes=("x",), priority=3, index=4)
    late = _p("p1", writes=("x",), priority=3, index=7)
    assert _resolve("priority", _conflict_of(early, late), _by_id(early, late)).winners == ("p9",)
    same_a = _p("b", writes=("x",), index=4)
    same_b = _p("a", writes=("x",), index=4)
    conflict = _conflict_of(same_a, same_b)
    assert _resolve("priority", conflict, _by_id(same_a, same_b)).winners == ("a",)


def test_first_decided_lower_index_wins_whatever_the_priority() -> None:
    first = _p("p2", writes=("x",), priority=0, index=3)
    second = _p("p1", writes=("x",), priority=9, index=8)
    proposals = _by_id(first, second)
    conflict = _conflict_of(first, second)
    resolution = _resolve("first_decided", conflict, proposals)
    assert (resolution.winners, resolution.losers) == (("p2",), ("p1",))
    assert validate(resolution, conflict, proposals, DETECT) == []


def test_merge_disjoint_writes_with_a_read_overlap() -> None:
    a = _p("a", reads=("y",), writes=("x",))
    b = _p("b", writes=("y",))
    proposals = _by_id(a, b)
    conflict = _conflict_of(a, b)
    resolution = _resolve("merge", conflict, proposals)
    assert resolution.merged
    assert (resolution.winners, resolution.losers, resolution.escalations) == (("a", "b"), (), ())
    assert validate(resolution, conflict, proposals, DETECT) == []


def test_merge_identical_writes_to_a_shared_key() -> None:
    a = _p("a", writes=("x",), changes=(("x", "1"),))
    b = _p("b", writes=("x", "y"), changes=(("x", "1"), ("y", "2")))
    proposals = _by_id(a, b)
    conflict = _conflict_of(a, b)
    resolution = _resolve("merge", conflict, proposals)
    assert resolution.merged
    assert validate(resolution, conflict, proposals, DETECT) == []


def test_merge_refuses_different_writes_to_a_shared_key() -> None:
    a = _p("a", writes=("x",), changes=(("x", "1"),))
    b = _p("b", writes=("x",), changes=(("x", None),))
    with pytest.raises(CannotResolve, match="write different values to x") as info:
        _resolve("merge", _conflict_of(a, b), _by_id(a, b))
    assert (info.value.strategy, info.value.conflict_id) == ("merge", "resource:a+b")


def test_escalate_escalates_everyone() -> None:
    a, b = _p("a", writes=("x",)), _p("b", writes=("x",))
    proposals = _by_id(a, b)
    conflict = _conflict_of(a, b)
    resolution = _resolve("escalate", conflict, proposals)
    assert (resolution.winners, resolution.losers, resolution.escalations) == ((), (), ("a", "b"))
    assert validate(resolution, conflict, proposals, DETECT) == []


def test_reject_all_rejects_everyone() -> None:
    a, b = _p("a", writes=("x",)), _p("b", writes=("x",))
    proposals = _by_id(a, b)
    conflict = _conflict_of(a, b)
    resolution = _resolve("reject_all", conflict, proposals)
    assert (resolution.winners, resolution.losers, resolution.escalations) == ((), ("a", "b"), ())
    assert validate(resolution, conflict, proposals, DETECT) == []


@pytest.mark.parametrize("name", ["priority", "first_decided", "merge"])
def test_contest_strategies_refuse_policy_and_dependency_conflicts(name: str) -> None:
    rules = (MaxKeys(prefix="", count_max=0),)
    bad = _p("p1", writes=("x",), deps=("gone",))
    detect_fn = partial(detect, rules=rules, failed={"gone": "rejected"})
    conflicts = detect_fn(bad, [])
    assert [c.type for c in conflicts] == [ConflictType.DEPENDENCY, ConflictType.POLICY]
    for conflict in conflicts:
        with pytest.raises(CannotResolve, match="not a contest"):
            _resolve(name, conflict, _by_id(bad))
        for fallback in ("escalate", "reject_all"):
            resolution = _resolve(fallback, conflict, _by_id(bad))
            assert validate(resolution, conflict, _by_id(bad), detect_fn) == []


def test_a_strategy_refuses_a_conflict_naming_unknown_proposals() -> None:
    a, b = _p("a", writes=("x",)), _p("b", writes=("x",))
    for name in REGISTRY.names():
        with pytest.raises(CannotResolve, match="unknown proposals b"):
            _resolve(name, _conflict_of(a, b), _by_id(a))


# ----------------------------------------------------------------------------- registry


def test_registry_names_are_sorted_and_unknown_names_are_clear() -> None:
    assert REGISTRY.names() == ("escalate", "first_decided", "merge", "priority", "reject_all")
    with pytest.raises(UnknownStrategy) as info:
        REGISTRY.get("coin_flip")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == (
        "unknown resolution strategy 'coin_flip' "
        "(known: escalate, first_decided, merge, priority, reject_all)"
    )


def test_registry_refuses_duplicates_and_accepts_plugins() -> None:
    registry = StrategyRegistry()
    registry.register(MergeStrategy())
    with pytest.raises(ValueError, match="already registered"):
        registry.register(MergeStrategy())
    registry.register(EscalateStrategy(name="vote_again"))
    assert registry.names() == ("merge", "vote_again")
    assert isinstance(registry.get("vote_again"), EscalateStrategy)


# ----------------------------------------------------------------------------- validate teeth


@dataclass(frozen=True, slots=True)
class EveryoneWins:
    """Broken on purpose: declares all writers winners without merging."""

    name: str = "everyone_wins"

    def resolve(self, conflict: Conflict, proposals: Mapping[str, Proposal]) -> Resolution:
        return Resolution(
            strategy=self.name,
            conflict_id=conflict.id,
            winners=conflict.proposals,
            losers=(),
            escalations=(),
            merged=False,
            explanation="everyone wins",
        )


def test_validate_refuses_two_winning_writers_of_one_key() -> None:
    broken: Strategy = EveryoneWins()
    a, b = _p("a", writes=("x",), changes=(("x", "1"),)), _p("b", writes=("x",))
    proposals = _by_id(a, b)
    conflict = _conflict_of(a, b)
    problems = validate(broken.resolve(conflict, proposals), conflict, proposals, DETECT)
    assert problems == ["resource:a+b still holds among the winners"]


def test_validate_refuses_a_merge_claim_that_does_not_commute() -> None:
    a, b = _p("a", writes=("x",), changes=(("x", "1"),)), _p("b", writes=("x",))
    proposals = _by_id(a, b)
    conflict = _conflict_of(a, b)
    claim = EveryoneWins().resolve(conflict, proposals)
    forged = Resolution(**{**_fields(claim), "merged": True})
    assert validate(forged, conflict, proposals, DETECT) == [
        "merge does not commute: a and b write different values to x"
    ]


def test_validate_refuses_merging_away_a_policy_conflict() -> None:
    detect_fn = partial(detect, rules=(AllowedValues(key_prefix="", values=()),))
    bad = _p("p1", writes=("x",))
    (conflict,) = detect_fn(bad, [])
    forged = Resolution(
        strategy="forged",
        conflict_id=conflict.id,
        winners=("p1",),
        losers=(),
        escalations=(),
        merged=True,
        explanation="",
    )
    assert validate(forged, conflict, _by_id(bad), detect_fn) == [
        "a policy conflict cannot be merged away"
    ]


def _fields(resolution: Resolution) -> dict[str, Any]:
    return {name: getattr(resolution, name) for name in Resolution.__dataclass_fields__}


def test_validate_refuses_malformed_namings() -> None:
    a, b = _p("a", writes=("x",)), _p("b", writes=("x",))
    proposals = _by_id(a, b)
    conflict = _conflict_of(a, b)
    good = _resolve("priority", conflict, proposals)
    cases = {
        "resolution is for resource:a+c, not resource:a+b": {"conflict_id": "resource:a+c"},
        "b of resource:a+b is not settled": {"losers": ()},
        "a is named more than once": {"losers": ("a", "b")},
        "c is not part of resource:a+b": {"escalations": ("c",)},
        "a merge has only winners": {"merged": True},
    }
    for expected, change in cases.items():
        forged = Resolution(**{**_fields(good), **change})
        assert expected in validate(forged, conflict, proposals, DETECT), expected
    missing = validate(good, conflict, _by_id(a), DETECT)
    assert missing == ["b is not among the proposals"]


def test_validate_reports_a_conflict_created_by_removing_a_loser() -> None:
    # c depends on b; if b loses, c depends on a proposal that is gone.
    a = _p("a", writes=("x",), priority=5)
    b = _p("b", writes=("x",))
    c = _p("c", writes=("z",), deps=("b",))
    proposals = _by_id(a, b, c)
    conflict = _conflict_of(a, b)
    resolution = _resolve("priority", conflict, proposals)
    assert resolution.losers == ("b",)
    assert validate(resolution, conflict, proposals, DETECT) == [
        'new conflict dependency:c: "c" depends on unknown "b"'
    ]


def test_conflicts_among_finds_each_conflict_once() -> None:
    a, b, c = _p("a", writes=("x",)), _p("b", writes=("x",)), _p("c", reads=("x",))
    assert sorted(conflicts_among([c, b, a], DETECT)) == [
        "resource:a+b",
        "resource:a+c",
        "resource:b+c",
    ]


# ----------------------------------------------------------------------------- properties

KEYS = ("k1", "k2", "k3")
key_sets = st.lists(st.sampled_from(KEYS), unique=True, max_size=3).map(
    lambda ks: tuple(sorted(ks))
)
windows = st.one_of(
    st.none(),
    st.tuples(st.integers(0, 40), st.integers(1, 40)).map(lambda t: (t[0], t[0] + t[1])),
)
values = st.sampled_from(["0", "1", None])


@st.composite
def proposals(draw: st.DrawFn, pid: str, index: int) -> Proposal:
    writes = draw(key_sets)
    return _p(
        pid,
        reads=draw(key_sets),
        writes=writes,
        changes=tuple((k, draw(values)) for k in writes),
        window=draw(windows),
        # Dependencies point outside the group only: inside it, a loser would leave its
        # dependants hanging, which `validate` must (and does) refuse; see the example test.
        deps=tuple(sorted(draw(st.sets(st.sampled_from(("gone", "done")), max_size=2)))),
        priority=draw(st.integers(0, 2)),
        index=index,
    )


@st.composite
def groups(draw: st.DrawFn) -> list[Proposal]:
    count = draw(st.integers(2, 4))
    indexes = draw(st.lists(st.integers(1, 99), min_size=count, max_size=count, unique=True))
    return [draw(proposals(f"p{i}", indexes[i])) for i in range(count)]


RULES = (MaxKeys(prefix="k", count_max=2), AllowedValues(key_prefix="k1", values=("0", "1")))


@given(groups(), st.dictionaries(st.sampled_from(KEYS), st.just("1")))
def test_builtin_resolutions_validate_or_the_strategy_refuses(
    group: list[Proposal], state: dict[str, str]
) -> None:
    detect_fn = partial(
        detect, rules=RULES, state=state, failed={"gone": "expired"}, executed=("done",)
    )
    proposals_by_id = _by_id(*group)
    for conflict in conflicts_among(group, detect_fn).values():
        for strategy in builtin_strategies():
            try:
                resolution = strategy.resolve(conflict, proposals_by_id)
            except CannotResolve:
                assert strategy.name in ("priority", "first_decided", "merge")
                continue
            assert resolution.strategy == strategy.name
            assert validate(resolution, conflict, proposals_by_id, detect_fn) == []
            # Deterministic: the mapping's order does not matter.
            reordered = dict(reversed(list(proposals_by_id.items())))
            assert strategy.resolve(conflict, reordered) == resolution


def _two_way(a: Proposal, b: Proposal, kind: ConflictType) -> Conflict:
    ids = tuple(sorted((a.id, b.id)))
    return Conflict(
        id=conflict_id(kind, ids), type=kind, severity=Severity.MEDIUM, proposals=ids, reason=""
    )


@given(
    proposals("a", 1),
    proposals("b", 2),
    st.sampled_from(ConflictType),
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from(["0", "1"])),
)
def test_merge_succeeds_exactly_when_the_changes_commute(
    a: Proposal, b: Proposal, kind: ConflictType, state: dict[str, str]
) -> None:
    a_then_b = apply_changes(apply_changes(state, a.changes), b.changes)
    b_then_a = apply_changes(apply_changes(state, b.changes), a.changes)
    # Commuting for every state: the keys both write get the same value.
    commute = all(dict(a.changes)[k] == dict(b.changes)[k] for k in _shared_writes(a, b))
    try:
        resolution = MergeStrategy().resolve(_two_way(a, b, kind), _by_id(a, b))
    except CannotResolve:
        assert not commute or kind in (ConflictType.POLICY, ConflictType.DEPENDENCY)
        return
    assert resolution.merged
    assert a_then_b == b_then_a
    assert commute


def _shared_writes(a: Proposal, b: Proposal) -> list[str]:
    return [k for k, _ in a.changes if k in dict(b.changes)]


def test_builtin_names_match_the_registry() -> None:
    assert sorted(s.name for s in builtin_strategies()) == list(REGISTRY.names())


def test_strategies_satisfy_the_protocol_statically() -> None:
    strategies: Sequence[Strategy] = builtin_strategies()
    assert all(isinstance(s.name, str) for s in strategies)
