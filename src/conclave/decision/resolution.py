"""Pluggable, deterministic conflict resolution, and the check that refuses a bad one.

Rules:
- A `Strategy` turns a conflict into a `Resolution` (winners, losers, escalations, merged)
  from the conflict and the proposals alone: no clock, no randomness, ties broken by log
  `index` and then by id, outputs sorted by id, so every replica resolves alike.
- A strategy that cannot decide a conflict raises `CannotResolve` (a typed, expected refusal,
  DESIGN.md section 3 rule 8); it never returns a resolution that claims more than it did.
  The caller then tries another strategy (`escalate` and `reject_all` always answer).
- Built-ins (`default_registry()`):
  - `priority`: the highest `priority` wins, ties go to log order (lower `index`), then to
    the smaller id; every other proposal loses.
  - `first_decided`: the first in log order (lower `index`, then id) wins; the rest lose.
  - `merge`: all win, `merged=True`, only when the changes commute: pairwise, every key both
    write gets the identical value (disjoint writes commute trivially). Reads do not matter
    because changes are literal values, not functions of what was read. Otherwise
    `CannotResolve`.
  - `escalate`: nobody wins or loses yet; every involved proposal is escalated (it needs a
    stricter policy or another vote).
  - `reject_all`: every involved proposal loses.
  `priority`, `first_decided` and `merge` refuse POLICY and DEPENDENCY conflicts: a broken
  rule or a missing dependency is not a contest between proposals, and letting one "win"
  would keep the conflict alive.
- `validate` checks, never assumes: the resolution names exactly the conflict's proposals,
  each once (a merge: all of them as winners, with commuting changes), and applying it
  introduces no conflict that was not there before among the proposals that remain (losers
  removed). A conflict that persists is accepted only when it was merged or escalated.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from conclave.decision.conflicts import apply_changes
from conclave.decision.model import Conflict, ConflictType, Proposal

DetectFn = Callable[[Proposal, Sequence[Proposal]], tuple[Conflict, ...]]

_CONTEST_TYPES: Final = (ConflictType.RESOURCE, ConflictType.TEMPORAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    """How one conflict is settled. Ids in each tuple are sorted."""

    strategy: str
    conflict_id: str
    winners: tuple[str, ...]
    losers: tuple[str, ...]
    escalations: tuple[str, ...]
    merged: bool
    explanation: str


class CannotResolve(Exception):
    """A strategy declares that it cannot settle this conflict (an answer, not a crash)."""

    def __init__(self, strategy: str, conflict_id: str, reason: str) -> None:
        super().__init__(f"{strategy} cannot resolve {conflict_id}: {reason}")
        self.strategy = strategy
        self.conflict_id = conflict_id
        self.reason = reason


class UnknownStrategy(KeyError):
    """No strategy of that name is registered."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = tuple(known)

    def __str__(self) -> str:  # KeyError would print only the repr of the name
        return f"unknown resolution strategy {self.name!r} (known: {', '.join(self.known)})"


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    def resolve(
        self,
        conflict: Conflict,
        proposals: Mapping[str, Proposal],
        decided_order: Sequence[str] = (),
    ) -> Resolution:
        """Settle `conflict`; `decided_order` lists ids already decided, earliest first."""
        ...


# ----------------------------------------------------------------------------- helpers


def _involved(
    strategy: str, conflict: Conflict, proposals: Mapping[str, Proposal]
) -> list[Proposal]:
    missing = [pid for pid in conflict.proposals if pid not in proposals]
    if missing:
        raise CannotResolve(strategy, conflict.id, f"unknown proposals {', '.join(missing)}")
    return [proposals[pid] for pid in sorted(conflict.proposals)]


def _require_contest(strategy: str, conflict: Conflict) -> None:
    if conflict.type not in _CONTEST_TYPES:
        raise CannotResolve(
            strategy, conflict.id, f"a {conflict.type.value} conflict is not a contest"
        )


def non_commuting_keys(a: Proposal, b: Proposal) -> list[str]:
    """Keys both change to different values (last write per key counts), sorted."""
    a_final = dict(a.changes)
    b_final = dict(b.changes)
    return sorted(k for k in a_final if k in b_final and a_final[k] != b_final[k])


def _non_commuting(involved: Sequence[Proposal]) -> list[str]:
    problems = []
    for i, a in enumerate(involved):
        for b in involved[i + 1 :]:
            keys = non_commuting_keys(a, b)
            if keys:
                problems.append(f"{a.id} and {b.id} write different values to {', '.join(keys)}")
    return problems


def _one_winner(
    strategy: str, conflict: Conflict, ranked: Sequence[Proposal], why: str
) -> Resolution:
    winner, rest = ranked[0], ranked[1:]
    return Resolution(
        strategy=strategy,
        conflict_id=conflict.id,
        winners=(winner.id,),
        losers=tuple(sorted(p.id for p in rest)),
        escalations=(),
        merged=False,
        explanation=f"{winner.id} wins {conflict.id}: {why}",
    )


# ----------------------------------------------------------------------------- built-ins


@dataclass(frozen=True, slots=True)
class PriorityStrategy:
    """Highest priority wins; ties: lower log index, then smaller id."""

    name: str = "priority"

    def resolve(
        self,
        conflict: Conflict,
        proposals: Mapping[str, Proposal],
        decided_order: Sequence[str] = (),
    ) -> Resolution:
        del decided_order  # only first_decided needs the order
        _require_contest(self.name, conflict)
        ranked = sorted(
            _involved(self.name, conflict, proposals), key=lambda p: (-p.priority, p.index, p.id)
        )
        top = ranked[0]
        return _one_winner(
            self.name, conflict, ranked, f"priority {top.priority}, log index {top.index}"
        )


@dataclass(frozen=True, slots=True)
class FirstDecidedStrategy:
    """The first decided wins: the earliest of `decided_order` among the conflict's proposals
    (the machine resolves when a proposal is approved, so that is the one approved first);
    when none of them is in `decided_order`, the first in log order (lower index, then id)."""

    name: str = "first_decided"

    def resolve(
        self,
        conflict: Conflict,
        proposals: Mapping[str, Proposal],
        decided_order: Sequence[str] = (),
    ) -> Resolution:
        _require_contest(self.name, conflict)
        involved = _involved(self.name, conflict, proposals)
        order = {pid: n for n, pid in enumerate(decided_order)}
        first = len(order)
        ranked = sorted(involved, key=lambda p: (order.get(p.id, first), p.index, p.id))
        why = (
            f"decided first ({ranked[0].id})"
            if ranked[0].id in order
            else f"first in log (index {ranked[0].index})"
        )
        return _one_winner(self.name, conflict, ranked, why)


@dataclass(frozen=True, slots=True)
class MergeStrategy:
    """All win together when their changes commute; otherwise `CannotResolve`."""

    name: str = "merge"

    def resolve(
        self,
        conflict: Conflict,
        proposals: Mapping[str, Proposal],
        decided_order: Sequence[str] = (),
    ) -> Resolution:
        del decided_order  # only first_decided needs the order
        _require_contest(self.name, conflict)
        involved = _involved(self.name, conflict, proposals)
        problems = _non_commuting(involved)
        if problems:
            raise CannotResolve(self.name, conflict.id, "; ".join(problems))
        return Resolution(
            strategy=self.name,
            conflict_id=conflict.id,
            winners=tuple(p.id for p in involved),
            losers=(),
            escalations=(),
            merged=True,
            explanation=f"{conflict.id} merged: the changes commute",
        )


@dataclass(frozen=True, slots=True)
class EscalateStrategy:
    """Nobody loses: every involved proposal is escalated to a stricter decision."""

    name: str = "escalate"

    def resolve(
        self,
        conflict: Conflict,
        proposals: Mapping[str, Proposal],
        decided_order: Sequence[str] = (),
    ) -> Resolution:
        del decided_order  # only first_decided needs the order
        ids = tuple(p.id for p in _involved(self.name, conflict, proposals))
        return Resolution(
            strategy=self.name,
            conflict_id=conflict.id,
            winners=(),
            losers=(),
            escalations=ids,
            merged=False,
            explanation=f"{conflict.id} escalated: {', '.join(ids)} need a stricter decision",
        )


@dataclass(frozen=True, slots=True)
class RejectAllStrategy:
    """Every involved proposal loses."""

    name: str = "reject_all"

    def resolve(
        self,
        conflict: Conflict,
        proposals: Mapping[str, Proposal],
        decided_order: Sequence[str] = (),
    ) -> Resolution:
        del decided_order  # only first_decided needs the order
        ids = tuple(p.id for p in _involved(self.name, conflict, proposals))
        return Resolution(
            strategy=self.name,
            conflict_id=conflict.id,
            winners=(),
            losers=ids,
            escalations=(),
            merged=False,
            explanation=f"{conflict.id}: all of {', '.join(ids)} rejected",
        )


class StrategyRegistry:
    """Strategies by name. Names are unique; listing is sorted."""

    def __init__(self, strategies: Iterable[Strategy] = ()) -> None:
        self._by_name: dict[str, Strategy] = {}
        for strategy in strategies:
            self.register(strategy)

    def register(self, strategy: Strategy) -> None:
        if not strategy.name:
            raise ValueError("a strategy needs a non-empty name")
        if strategy.name in self._by_name:
            raise ValueError(f"strategy {strategy.name!r} is already registered")
        self._by_name[strategy.name] = strategy

    def get(self, name: str) -> Strategy:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownStrategy(name, self.names()) from None

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_name))


def builtin_strategies() -> tuple[Strategy, ...]:
    return (
        PriorityStrategy(),
        FirstDecidedStrategy(),
        MergeStrategy(),
        EscalateStrategy(),
        RejectAllStrategy(),
    )


def default_registry() -> StrategyRegistry:
    """A fresh registry with the built-ins (fresh: no shared module-level mutable state)."""
    return StrategyRegistry(builtin_strategies())


# ----------------------------------------------------------------------------- validation


def conflicts_among(proposals: Iterable[Proposal], detect_fn: DetectFn) -> dict[str, Conflict]:
    """Every conflict among `proposals`, by id: each one as candidate against the rest, in
    sorted id order, so the first report of a conflict id is the same on every replica."""
    ordered = sorted(proposals, key=lambda p: p.id)
    found: dict[str, Conflict] = {}
    for i, candidate in enumerate(ordered):
        for conflict in detect_fn(candidate, (*ordered[:i], *ordered[i + 1 :])):
            found.setdefault(conflict.id, conflict)
    return found


def _naming_problems(resolution: Resolution, conflict: Conflict) -> list[str]:
    named = [*resolution.winners, *resolution.losers, *resolution.escalations]
    problems = []
    for pid in sorted({pid for pid in named if named.count(pid) > 1}):
        problems.append(f"{pid} is named more than once")
    expected = set(conflict.proposals)
    for pid in sorted(set(named) - expected):
        problems.append(f"{pid} is not part of {conflict.id}")
    for pid in sorted(expected - set(named)):
        problems.append(f"{pid} of {conflict.id} is not settled")
    if resolution.merged and (resolution.losers or resolution.escalations):
        problems.append("a merge has only winners")
    return problems


def _merge_problems(resolution: Resolution, proposals: Mapping[str, Proposal]) -> list[str]:
    involved = [proposals[pid] for pid in resolution.winners if pid in proposals]
    problems = [f"merge does not commute: {p}" for p in _non_commuting(involved)]
    # Belt and braces: pairwise equal writes must also give one state in both orders.
    if not problems and len(involved) > 1:
        forward = apply_changes({}, [c for p in involved for c in p.changes])
        backward = apply_changes({}, [c for p in reversed(involved) for c in p.changes])
        if forward != backward:
            problems.append("merge does not commute: the order of application matters")
    return problems


def validate(
    resolution: Resolution,
    conflict: Conflict,
    proposals: Mapping[str, Proposal],
    detect_fn: DetectFn,
) -> list[str]:
    """Problems that make `resolution` unacceptable for `conflict`; [] means accept.

    `proposals` are the proposals the conflict was detected among (at least the conflict's
    own); `detect_fn` is `detect` bound to the same rules, state and failed ids.
    """
    problems: list[str] = []
    if resolution.conflict_id != conflict.id:
        problems.append(f"resolution is for {resolution.conflict_id}, not {conflict.id}")
    problems += _naming_problems(resolution, conflict)
    unknown = [pid for pid in conflict.proposals if pid not in proposals]
    problems += [f"{pid} is not among the proposals" for pid in unknown]
    if problems:
        return problems  # the survivors cannot be computed from a malformed resolution
    if resolution.merged and conflict.type not in _CONTEST_TYPES:
        problems.append(f"a {conflict.type.value} conflict cannot be merged away")
    if resolution.merged:
        problems += _merge_problems(resolution, proposals)
    before = conflicts_among(proposals.values(), detect_fn)
    losers = frozenset(resolution.losers)
    after = conflicts_among((p for p in proposals.values() if p.id not in losers), detect_fn)
    for cid in sorted(after):
        if cid not in before:
            problems.append(f"new conflict {cid}: {after[cid].reason}")
    if conflict.id in after and not resolution.merged and not resolution.escalations:
        problems.append(f"{conflict.id} still holds among the winners")
    return problems


__all__ = [
    "CannotResolve",
    "DetectFn",
    "EscalateStrategy",
    "FirstDecidedStrategy",
    "MergeStrategy",
    "PriorityStrategy",
    "RejectAllStrategy",
    "Resolution",
    "Strategy",
    "StrategyRegistry",
    "UnknownStrategy",
    "builtin_strategies",
    "default_registry",
    "conflicts_among",
    "non_commuting_keys",
    "validate",
]
