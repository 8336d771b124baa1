"""The global safety checkers flag each kind of contradiction, and only contradictions."""

from dataclasses import dataclass, field
from typing import cast

import pytest

from conclave.consensus.raft import RaftNode
from conclave.core import ConfState, Entry, EntryKind, SnapshotMeta
from conclave.sim.invariants import SafetyChecker, SafetyViolation


def _e(index: int, term: int, data: bytes = b"x") -> Entry:
    return Entry(index=index, term=term, data=data)


@dataclass
class FakeCore:
    """The read-only surface of a RaftNode that the checker uses."""

    id: int
    term: int
    log: list[Entry] = field(default_factory=list)
    snapshot_meta: SnapshotMeta = field(
        default_factory=lambda: SnapshotMeta(index=0, term=0, conf=ConfState(voters=(1, 2, 3)))
    )

    @property
    def first_index(self) -> int:
        return self.snapshot_meta.index + 1

    @property
    def last_index(self) -> int:
        return self.log[-1].index if self.log else self.snapshot_meta.index

    def term_at(self, index: int) -> int | None:
        if index == self.snapshot_meta.index:
            return self.snapshot_meta.term
        for entry in self.log:
            if entry.index == index:
                return entry.term
        return None

    def entries(self, lo: int, hi: int) -> tuple[Entry, ...]:
        return tuple(e for e in self.log if lo <= e.index < hi)


def _core(fake: FakeCore) -> RaftNode:
    return cast(RaftNode, fake)


def test_two_leaders_in_one_term_break_election_safety() -> None:
    checker = SafetyChecker()
    checker.on_leader(_core(FakeCore(id=1, term=3)))
    checker.on_leader(_core(FakeCore(id=1, term=3)))  # the same leader seen again: fine
    checker.on_leader(_core(FakeCore(id=2, term=4)))
    with pytest.raises(SafetyViolation) as caught:
        checker.on_leader(_core(FakeCore(id=3, term=3)))
    assert caught.value.invariant == "election-safety"


def test_same_index_and_term_with_other_data_breaks_log_matching() -> None:
    checker = SafetyChecker()
    checker.on_persist(1, 0, [_e(1, 1, b"a"), _e(2, 1, b"b")])
    checker.on_persist(2, 0, [_e(1, 1, b"a"), _e(2, 1, b"b")])  # identical copies: fine
    with pytest.raises(SafetyViolation) as caught:
        checker.on_persist(3, 1, [_e(2, 1, b"other")])
    assert caught.value.invariant == "log-matching"


def test_same_entry_after_another_term_breaks_log_matching() -> None:
    checker = SafetyChecker()
    checker.on_persist(1, 1, [_e(5, 2)])
    with pytest.raises(SafetyViolation, match="after term 2"):
        checker.on_persist(2, 2, [_e(5, 2)])


def test_pairwise_log_comparison_finds_a_diverging_prefix() -> None:
    checker = SafetyChecker()
    a = FakeCore(id=1, term=3, log=[_e(1, 1, b"a"), _e(2, 1, b"b"), _e(3, 3)])
    b = FakeCore(id=2, term=3, log=[_e(1, 1, b"a"), _e(2, 1, b"z"), _e(3, 3)])
    c = FakeCore(id=3, term=3, log=[_e(1, 1, b"a"), _e(2, 2, b"q")])  # diverges: allowed
    checker.check_log_pair(_core(a), _core(c))
    with pytest.raises(SafetyViolation) as caught:
        checker.check_log_pair(_core(a), _core(b))
    assert caught.value.invariant == "log-matching"


def test_different_entries_applied_at_one_index_break_state_machine_safety() -> None:
    checker = SafetyChecker()
    checker.on_applied(1, 2, _e(1, 1, b"a"))
    checker.on_applied(2, 2, _e(1, 1, b"a"))
    with pytest.raises(SafetyViolation) as caught:
        checker.on_applied(3, 2, Entry(index=1, term=1, kind=EntryKind.NOOP))
    assert caught.value.invariant == "state-machine-safety"


def test_a_new_leader_missing_a_committed_entry_breaks_leader_completeness() -> None:
    checker = SafetyChecker()
    checker.on_applied(1, 2, _e(1, 2, b"a"))  # committed by term 2 at the latest
    checker.on_leader(_core(FakeCore(id=1, term=2, log=[_e(1, 1, b"old")])))  # not later: ok
    checker.on_leader(_core(FakeCore(id=2, term=3, log=[_e(1, 2, b"a")])))
    with pytest.raises(SafetyViolation) as caught:
        checker.on_leader(_core(FakeCore(id=3, term=4, log=[_e(1, 1, b"old")])))
    assert caught.value.invariant == "leader-completeness"


def test_leader_completeness_accepts_entries_covered_by_a_snapshot() -> None:
    checker = SafetyChecker()
    for index in (1, 2, 3):
        checker.on_applied(1, 1, _e(index, 1))
    snap = SnapshotMeta(index=2, term=1, conf=ConfState(voters=(1, 2, 3)))
    checker.on_leader(_core(FakeCore(id=2, term=2, log=[_e(3, 1)], snapshot_meta=snap)))
    wrong = SnapshotMeta(index=2, term=5, conf=ConfState(voters=(1, 2, 3)))
    with pytest.raises(SafetyViolation, match="snapshot"):
        checker.on_leader(_core(FakeCore(id=3, term=6, log=[_e(3, 1)], snapshot_meta=wrong)))
