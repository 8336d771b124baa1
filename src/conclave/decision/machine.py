"""The decision state machine: propose -> vote -> decide -> execute (or roll back), audited.

Rules:
- Deterministic (DESIGN.md rule 6): `apply` reads only the stamped command and this machine's
  state; time is the leader's stamp, kept monotonic (`now_ms = max(now_ms, at_ms)`).
- Every command first expires open proposals whose deadline has passed (`deadline_ms <
  now_ms`): expiry is driven by the log, not by polling. The leader's shell proposes an
  `Expire` at the next deadline so that a quiet cluster still expires on time.
- Ids are assigned at apply: a proposal's id is `p<log index>`, so every replica names it the
  same and a proposal can only depend on proposals that already exist (no cycles possible).
- Refusals (unknown proposal, not a voter, vote after the outcome or the deadline, a second
  vote when changes are not allowed, the proposer approving their own proposal when the policy
  forbids it, unknown kind or dependency) change nothing but the audit trail's refusal count
  and return a `Refused` with a stable `code`.
- A proposal is decided at most once: OPEN -> APPROVED | REJECTED | EXPIRED; APPROVED ->
  EXECUTED | FAILED (execution refused, or a dependency failed); EXECUTED -> ROLLED_BACK.
  Nothing else (`_transition` enforces it).
- Conflicts are detected when a proposal is made and again when it is decided. At decision
  time the kind's strategy resolves each conflict with the other open proposals; the
  resolution is validated (it must name exactly the conflict's proposals and introduce no new
  conflict); an invalid one is refused and the proposal escalated instead. Losers are
  rejected; escalated proposals need unanimity of their electorate from then on.
- Execution applies the changes atomically to the target with a rollback record (the previous
  value of every key written); if the target refuses a change, everything written is restored
  and the proposal is FAILED. An approved proposal with `rollback_of` restores that record.
- The audit trail is append-only: every step is an `AuditEvent` with the log index and time.
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final, Protocol

from conclave.decision.commands import (
    CastVote,
    DecisionCommand,
    DeclareKind,
    Expire,
    Propose,
    Stamped,
)
from conclave.decision.conflicts import PolicyRule, detect
from conclave.decision.model import (
    Conflict,
    ConflictType,
    Fraction,
    Member,
    Outcome,
    Policy,
    Proposal,
    Scope,
    VoteChoice,
)
from conclave.decision.policy import evaluate
from conclave.decision.resolution import (
    CannotResolve,
    DetectFn,
    EscalateStrategy,
    Resolution,
    StrategyRegistry,
    default_registry,
    validate,
)

ID_PREFIX: Final = "p"


class Status(StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    EXECUTED = "executed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


_ALLOWED: Final[dict[Status, frozenset[Status]]] = {
    Status.OPEN: frozenset({Status.APPROVED, Status.REJECTED, Status.EXPIRED}),
    Status.APPROVED: frozenset({Status.EXECUTED, Status.FAILED}),
    Status.EXECUTED: frozenset({Status.ROLLED_BACK}),
    Status.REJECTED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.FAILED: frozenset(),
    Status.ROLLED_BACK: frozenset(),
}
_FAILED_STATES: Final = frozenset({Status.REJECTED, Status.EXPIRED, Status.FAILED})


class ExecutionTarget(Protocol):
    """Where approved changes land (the KV store, later the applications)."""

    def read(self, key: str) -> str | None: ...

    def scan(self, prefix: str) -> list[tuple[str, str]]:
        """Every key under `prefix` with its value, in key order."""
        ...

    def write(self, key: str, value: str | None) -> None:
        """Set (or delete, for None) one key; raise ExecutionRefused to refuse it."""


class ExecutionRefused(Exception):
    """The target cannot take a change (e.g. over a size limit); the message says why."""


class MemoryTarget:
    """An `ExecutionTarget` over a dict (tests, tools, the simulator's own checks).

    `refused_values` are values it refuses to store, so tests can make an execution fail.
    """

    def __init__(self, refused_values: tuple[str, ...] = ()) -> None:
        self.data: dict[str, str] = {}
        self.refused_values = refused_values

    def read(self, key: str) -> str | None:
        return self.data.get(key)

    def scan(self, prefix: str) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in self.data.items() if k.startswith(prefix))

    def write(self, key: str, value: str | None) -> None:
        if value is not None and value in self.refused_values:
            raise ExecutionRefused(f"{key}: value refused")
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value


@dataclass(frozen=True, slots=True)
class Refused:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Accepted:
    proposal_id: str
    status: Status


@dataclass(frozen=True, slots=True)
class VoteRecord:
    voter: str
    choice: VoteChoice
    justification: str
    index: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    index: int
    at_ms: int
    type: str
    proposal_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class KindConfig:
    policy: Policy
    electorate: tuple[Member, ...]
    strategy: str
    rules: tuple[PolicyRule, ...] = ()


@dataclass(slots=True)
class ProposalRecord:
    proposal: Proposal
    rollback_of: str | None
    status: Status = Status.OPEN
    votes: dict[str, VoteRecord] = field(default_factory=dict)
    vote_changes: int = 0
    escalated: bool = False
    verdict: str = ""
    decided_index: int = 0
    executed_index: int = 0
    conflicts: list[str] = field(default_factory=list)
    rollback: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class ConflictRecord:
    conflict: Conflict
    detected_index: int
    resolution: Resolution | None = None


Result = Accepted | Refused


class DecisionMachine:
    """See the module docstring. `target` receives executed changes (None: record only)."""

    def __init__(
        self, target: ExecutionTarget | None = None, registry: StrategyRegistry | None = None
    ) -> None:
        self.target = target
        self.registry = registry if registry is not None else default_registry()
        self.now_ms = 0
        self.kinds: dict[str, KindConfig] = {}
        self.proposals: dict[str, ProposalRecord] = {}
        self.conflicts: dict[str, ConflictRecord] = {}
        self.audit: list[AuditEvent] = []
        self.refusals = 0
        self._index = 0

    # -- entry point ----------------------------------------------------------------------

    def apply(self, stamped: Stamped, index: int) -> Result:
        """Apply one committed command at log `index`."""
        self._index = index
        self.now_ms = max(self.now_ms, stamped.at_ms)
        self._expire_due()
        command: DecisionCommand = stamped.command
        match command:
            case DeclareKind():
                return self._declare(command)
            case Propose():
                return self._propose(command)
            case CastVote():
                return self._vote(command)
            case Expire():
                return Accepted(proposal_id="", status=Status.OPEN)
        raise TypeError(f"not a decision command: {type(command).__name__}")

    def _in_log_order(self) -> list[tuple[str, ProposalRecord]]:
        """Proposals by log index (ids sort as text, "p10" before "p9", which is not order)."""
        return sorted(self.proposals.items(), key=lambda item: item[1].proposal.index)

    # -- audit ----------------------------------------------------------------------------

    def _log(self, kind: str, proposal_id: str, detail: str) -> None:
        event = AuditEvent(
            seq=len(self.audit) + 1,
            index=self._index,
            at_ms=self.now_ms,
            type=kind,
            proposal_id=proposal_id,
            detail=detail,
        )
        self.audit.append(event)

    def _refuse(self, code: str, message: str, proposal_id: str = "") -> Refused:
        self.refusals += 1
        self._log("refused", proposal_id, f"{code}: {message}")
        return Refused(code, message)

    # -- kinds ----------------------------------------------------------------------------

    def _declare(self, command: DeclareKind) -> Result:
        if command.strategy not in self.registry.names():
            return self._refuse("unknown_strategy", f"no strategy named {command.strategy!r}")
        self.kinds[command.kind] = KindConfig(
            policy=command.policy,
            electorate=command.electorate,
            strategy=command.strategy,
            rules=command.rules,
        )
        voters = ", ".join(f"{m.principal}({m.weight})" for m in command.electorate)
        self._log("kind_declared", "", f"{command.kind}: strategy {command.strategy}; {voters}")
        return Accepted(proposal_id="", status=Status.OPEN)

    # -- proposals ------------------------------------------------------------------------

    def _propose(self, command: Propose) -> Result:
        if command.kind not in self.kinds:
            return self._refuse("unknown_kind", f"kind {command.kind!r} is not declared")
        if command.deadline_ms <= self.now_ms:
            return self._refuse("deadline_passed", "the deadline is not in the future")
        for dep in command.depends_on:
            if dep not in self.proposals:
                return self._refuse("unknown_dependency", f"no proposal {dep!r}")
        scope, changes = command.scope, command.changes
        if command.rollback_of is not None:
            problem = self._rollback_problem(command.rollback_of)
            if problem is not None:
                return self._refuse("invalid_rollback", problem)
            # A rollback writes the undo record: declare it, so conflicts, merges and rules
            # see the real writes.
            changes = self.proposals[command.rollback_of].rollback
            written = {key for key, _ in changes} | set(scope.writes)
            scope = Scope(reads=scope.reads, writes=tuple(sorted(written)))
        proposal_id = f"{ID_PREFIX}{self._index}"
        proposal = Proposal(
            id=proposal_id,
            proposer=command.proposer,
            kind=command.kind,
            params=command.params,
            scope=scope,
            changes=changes,
            depends_on=command.depends_on,
            priority=command.priority,
            window=command.window,
            deadline_ms=command.deadline_ms,
            created_at_ms=self.now_ms,
            index=self._index,
        )
        record = ProposalRecord(proposal=proposal, rollback_of=command.rollback_of)
        self.proposals[proposal_id] = record
        target = f" (rollback of {command.rollback_of})" if command.rollback_of else ""
        self._log("proposed", proposal_id, f"{command.kind} by {command.proposer}{target}")
        self._detect_conflicts(record)
        failed_dep = self._failed_dependency(record)
        if failed_dep is not None:
            self._finish(record, Status.REJECTED, f"dependency {failed_dep} did not succeed")
            return Accepted(proposal_id, record.status)
        self._evaluate(record)
        return Accepted(proposal_id, record.status)

    def _rollback_problem(self, target_id: str) -> str | None:
        target = self.proposals.get(target_id)
        if target is None:
            return f"no proposal {target_id!r}"
        if target.status is not Status.EXECUTED:
            return f"{target_id} is {target.status.value}, only an executed decision rolls back"
        later = self._later_writer(target)
        if later is not None:
            return f"{later[1]!r} was changed later by {later[0]}: roll that back first"
        return None

    def _later_writer(self, target: ProposalRecord) -> tuple[str, str] | None:
        """An executed decision after `target` that wrote one of its keys: (id, key)."""
        keys = {key for key, _ in target.rollback}
        for pid, other in self._in_log_order():
            after = other.executed_index > target.executed_index
            if other.status is Status.EXECUTED and after:
                for key, _ in other.proposal.changes:
                    if key in keys:
                        return pid, key
        return None

    def _others_active(self, record: ProposalRecord) -> list[Proposal]:
        own = record.proposal.id
        return [
            r.proposal
            for pid, r in self._in_log_order()
            if pid != own and r.status in (Status.OPEN, Status.APPROVED)
        ]

    def _failed(self) -> dict[str, str]:
        return {
            pid: r.status.value
            for pid, r in self._in_log_order()
            if r.status in _FAILED_STATES or r.status is Status.ROLLED_BACK
        }

    def _detect_fn(self, record: ProposalRecord) -> DetectFn:
        """`detect` bound to this proposal's kind rules and the machine's current facts."""
        return functools.partial(
            detect,
            rules=self.kinds[record.proposal.kind].rules,
            state=self._target_state(record),
            failed=self._failed(),
            executed=frozenset(
                pid for pid, r in self.proposals.items() if r.status is Status.EXECUTED
            ),
        )

    def _detect_conflicts(self, record: ProposalRecord) -> list[Conflict]:
        found = self._detect_fn(record)(record.proposal, self._others_active(record))
        for conflict in found:
            if conflict.id not in self.conflicts:
                self.conflicts[conflict.id] = ConflictRecord(conflict, self._index)
                self._log(
                    "conflict_detected", record.proposal.id, f"{conflict.id}: {conflict.reason}"
                )
            for pid in conflict.proposals:
                other = self.proposals.get(pid)
                if other is not None and conflict.id not in other.conflicts:
                    other.conflicts.append(conflict.id)
        return list(found)

    def _target_state(self, record: ProposalRecord) -> dict[str, str]:
        """What detection needs of the target: the proposal's keys, and every key under the
        prefix of each of its kind's rules (a limit on the number of keys counts them all)."""
        if self.target is None:
            return {}
        state: dict[str, str] = {}
        for prefix in sorted(
            {_rule_prefix(rule) for rule in self.kinds[record.proposal.kind].rules}
        ):
            state.update(self.target.scan(prefix))
        keys = record.proposal.scope.reads + record.proposal.scope.writes
        for key in sorted(set(keys)):
            value = self.target.read(key)
            if value is not None:
                state[key] = value
        return state

    def _failed_dependency(self, record: ProposalRecord) -> str | None:
        for dep in record.proposal.depends_on:
            status = self.proposals[dep].status
            if status in _FAILED_STATES or status is Status.ROLLED_BACK:
                return dep
        return None

    # -- votes ----------------------------------------------------------------------------

    def _vote(self, command: CastVote) -> Result:
        pid = command.proposal_id
        record = self.proposals.get(pid)
        if record is None:
            return self._refuse("unknown_proposal", f"no proposal {pid!r}", pid)
        if record.status is not Status.OPEN:
            return self._refuse("decided", f"{pid} is already {record.status.value}", pid)
        config = self.kinds[record.proposal.kind]
        if command.voter not in {m.principal for m in config.electorate}:
            return self._refuse("not_a_voter", f"{command.voter} may not vote on {pid}", pid)
        policy = self.effective_policy(record)
        own = command.voter == record.proposal.proposer
        if own and command.choice is VoteChoice.APPROVE and not policy.proposer_may_approve:
            return self._refuse("own_proposal", "the proposer may not approve their own", pid)
        previous = record.votes.get(command.voter)
        if previous is not None and not policy.vote_changes_allowed:
            return self._refuse("already_voted", f"{command.voter} already voted", pid)
        record.votes[command.voter] = VoteRecord(
            voter=command.voter,
            choice=command.choice,
            justification=command.justification,
            index=self._index,
            at_ms=self.now_ms,
        )
        changed = "" if previous is None else f" (was {previous.choice.value})"
        if previous is not None:
            record.vote_changes += 1
        why = f": {command.justification}" if command.justification else ""
        self._log("voted", pid, f"{command.voter} {command.choice.value}{changed}{why}")
        self._evaluate(record)
        return Accepted(pid, record.status)

    def effective_policy(self, record: ProposalRecord) -> Policy:
        policy = self.kinds[record.proposal.kind].policy
        if record.escalated:
            # Escalation: unanimity of the same electorate, same other rules.
            return replace(policy, threshold=Fraction(num=1, den=1), strict=False)
        return policy

    def _evaluate(self, record: ProposalRecord) -> None:
        config = self.kinds[record.proposal.kind]
        votes = {voter: vote.choice for voter, vote in sorted(record.votes.items())}
        verdict = evaluate(
            self.effective_policy(record), config.electorate, record.proposal.proposer, votes
        )
        record.verdict = verdict.reason
        if verdict.outcome is Outcome.APPROVED:
            self._approve(record)
        elif verdict.outcome is Outcome.REJECTED:
            self._finish(record, Status.REJECTED, verdict.reason)

    # -- outcomes -------------------------------------------------------------------------

    def _transition(self, record: ProposalRecord, status: Status) -> None:
        if status not in _ALLOWED[record.status]:
            raise AssertionError(
                f"{record.proposal.id}: {record.status.value} -> {status.value} is not allowed"
            )
        record.status = status
        if (
            status in (Status.APPROVED, Status.REJECTED, Status.EXPIRED)
            and not record.decided_index
        ):
            record.decided_index = self._index

    def _finish(self, record: ProposalRecord, status: Status, reason: str) -> None:
        self._transition(record, status)
        if status in (Status.REJECTED, Status.EXPIRED, Status.FAILED):
            record.verdict = reason
        self._log(status.value, record.proposal.id, reason)
        if status in _FAILED_STATES:
            self._fail_dependents(record.proposal.id)

    def _expire_due(self) -> None:
        for _, record in self._in_log_order():
            if record.status is Status.OPEN and record.proposal.deadline_ms < self.now_ms:
                self._finish(
                    record, Status.EXPIRED, f"deadline {record.proposal.deadline_ms} passed"
                )

    def _fail_dependents(self, failed_id: str) -> None:
        for _, record in self._in_log_order():
            if failed_id not in record.proposal.depends_on:
                continue
            reason = f"dependency {failed_id} did not succeed"
            if record.status is Status.OPEN:
                self._finish(record, Status.REJECTED, reason)
            elif record.status is Status.APPROVED:
                self._finish(record, Status.FAILED, reason)

    def _approve(self, record: ProposalRecord) -> None:
        conflicts = self._detect_conflicts(record)
        for conflict in conflicts:
            if record.status is not Status.OPEN:
                break
            self._resolve(record, conflict)
        if record.status is not Status.OPEN or (
            record.escalated and not self._still_approved(record)
        ):
            return
        self._transition(record, Status.APPROVED)
        self._log("approved", record.proposal.id, record.verdict)
        self._maybe_execute(record)

    def _decided_order(self, record: ProposalRecord) -> list[str]:
        """Ids already approved (waiting or executed), earliest first, then `record` (being
        approved now): the order `first_decided` goes by."""
        decided = [
            (r.decided_index, pid)
            for pid, r in self._in_log_order()
            if r.status in (Status.APPROVED, Status.EXECUTED) and pid != record.proposal.id
        ]
        return [pid for _, pid in sorted(decided)] + [record.proposal.id]

    def _still_approved(self, record: ProposalRecord) -> bool:
        config = self.kinds[record.proposal.kind]
        votes = {voter: vote.choice for voter, vote in sorted(record.votes.items())}
        verdict = evaluate(
            self.effective_policy(record), config.electorate, record.proposal.proposer, votes
        )
        record.verdict = verdict.reason
        return verdict.outcome is Outcome.APPROVED

    def _resolve(self, record: ProposalRecord, conflict: Conflict) -> None:
        if conflict.type is ConflictType.DEPENDENCY or conflict.type is ConflictType.POLICY:
            # Not a contest between proposals: the proposal itself cannot go ahead.
            rejected = Resolution(
                strategy=conflict.type.value,
                conflict_id=conflict.id,
                winners=(),
                losers=(record.proposal.id,),
                escalations=(),
                merged=False,
                explanation=f"{record.proposal.id} rejected: {conflict.reason}",
            )
            self.conflicts[conflict.id] = replace(self.conflicts[conflict.id], resolution=rejected)
            self._finish(record, Status.REJECTED, f"{conflict.id}: {conflict.reason}")
            return
        involved = {pid: self.proposals[pid].proposal for pid in conflict.proposals}
        strategy = self.registry.get(self.kinds[record.proposal.kind].strategy)
        try:
            resolution = strategy.resolve(conflict, involved, self._decided_order(record))
            problems = validate(resolution, conflict, involved, self._detect_fn(record))
        except CannotResolve as exc:
            problems = [str(exc)]
        if problems:
            self._log("resolution_refused", record.proposal.id, "; ".join(problems))
            # The fallback that always answers (the "resolution_refused" event says why).
            resolution = EscalateStrategy().resolve(conflict, involved)
        self.conflicts[conflict.id] = replace(self.conflicts[conflict.id], resolution=resolution)
        self._log(
            "resolved",
            record.proposal.id,
            f"{conflict.id} by {resolution.strategy}: {resolution.explanation}",
        )
        for pid in resolution.losers:
            loser = self.proposals[pid]
            reason = f"lost {conflict.id} ({resolution.strategy})"
            if loser.status is Status.OPEN:
                self._finish(loser, Status.REJECTED, reason)
            elif loser.status is Status.APPROVED:
                self._finish(loser, Status.FAILED, reason)
        for pid in resolution.escalations:
            other = self.proposals[pid]
            if other.status is Status.OPEN and not other.escalated:
                other.escalated = True
                self._log("escalated", pid, f"{conflict.id}: now needs unanimity")
                self._reject_if_settled(other)

    def _reject_if_settled(self, record: ProposalRecord) -> None:
        """Escalation makes the policy stricter: the votes already cast may now settle a
        rejection (e.g. one reject under unanimity), which must not wait for another vote or
        the deadline. It never settles an approval the old policy had not."""
        config = self.kinds[record.proposal.kind]
        votes = {voter: vote.choice for voter, vote in sorted(record.votes.items())}
        verdict = evaluate(
            self.effective_policy(record), config.electorate, record.proposal.proposer, votes
        )
        if verdict.outcome is Outcome.REJECTED:
            record.verdict = verdict.reason
            self._finish(record, Status.REJECTED, verdict.reason)

    # -- execution ------------------------------------------------------------------------

    def _maybe_execute(self, record: ProposalRecord) -> None:
        waiting = [
            d for d in record.proposal.depends_on if self.proposals[d].status is not Status.EXECUTED
        ]
        if waiting:
            self._log("waiting", record.proposal.id, f"for dependencies {', '.join(waiting)}")
            return
        self._execute(record)

    def _changes(self, record: ProposalRecord) -> tuple[tuple[str, str | None], ...]:
        return record.proposal.changes  # a rollback's changes are its target's undo record

    def _execute(self, record: ProposalRecord) -> None:
        changes = self._changes(record)
        target = self.target
        if record.rollback_of is not None:
            problem = self._rollback_problem(record.rollback_of)
            if problem is not None:  # things changed since the rollback was proposed
                self._finish(record, Status.FAILED, f"cannot roll back: {problem}")
                return
        undo: list[tuple[str, str | None]] = []
        try:
            for key, value in changes:
                if target is not None:
                    undo.append((key, target.read(key)))
                    target.write(key, value)
        except ExecutionRefused as exc:
            self._undo(undo)
            self._finish(record, Status.FAILED, f"execution refused, rolled back: {exc}")
            return
        record.rollback = tuple(undo)
        record.executed_index = self._index
        self._transition(record, Status.EXECUTED)
        written = ", ".join(k for k, _ in changes) or "nothing"
        self._log("executed", record.proposal.id, f"wrote {written}")
        if record.rollback_of is not None:
            original = self.proposals[record.rollback_of]
            self._transition(original, Status.ROLLED_BACK)
            self._log("rolled_back", original.proposal.id, f"by {record.proposal.id}")
        self._win_resource_conflicts(record)
        self._execute_ready_dependents(record.proposal.id)

    def _win_resource_conflicts(self, record: ProposalRecord) -> None:
        """An executed proposal wins its RESOURCE conflicts that were not merged: the other
        proposals of those conflicts still open or approved lose. Otherwise a conflict that
        decision time no longer sees (the other side is not active any more) would let both
        execute: escalated proposals that each reach unanimity, or a proposal made while
        this one was already approved and waiting for a dependency."""
        for cid in list(record.conflicts):
            found = self.conflicts[cid]
            merged = found.resolution is not None and found.resolution.merged
            if found.conflict.type is not ConflictType.RESOURCE or merged:
                continue
            for pid in found.conflict.proposals:
                other = self.proposals[pid]
                reason = f"lost {cid}: {record.proposal.id} executed first"
                if other.status is Status.OPEN:
                    self._finish(other, Status.REJECTED, reason)
                elif other.status is Status.APPROVED:
                    self._finish(other, Status.FAILED, reason)

    def _undo(self, undo: Sequence[tuple[str, str | None]]) -> None:
        if self.target is None:
            return
        for key, value in reversed(undo):
            self.target.write(key, value)

    def _execute_ready_dependents(self, executed_id: str) -> None:
        for _, record in self._in_log_order():
            if record.status is Status.APPROVED and executed_id in record.proposal.depends_on:
                self._maybe_execute(record)

    # -- queries --------------------------------------------------------------------------

    def events_for(self, proposal_id: str) -> list[AuditEvent]:
        return [e for e in self.audit if e.proposal_id == proposal_id]

    def check_invariants(self) -> None:
        """Raise AssertionError if a local invariant is broken."""
        for pid, record in self.proposals.items():
            config = self.kinds[record.proposal.kind]
            electorate = {m.principal for m in config.electorate}
            assert set(record.votes) <= electorate, f"{pid} has votes from non-members"
            decided = [
                e for e in self.events_for(pid) if e.type in ("approved", "rejected", "expired")
            ]
            assert len(decided) <= 1, f"{pid} decided twice"
        for cid, conflict in self.conflicts.items():
            executed = [
                p
                for p in conflict.conflict.proposals
                if self.proposals[p].status is Status.EXECUTED
            ]
            if len(executed) > 1 and conflict.conflict.type is ConflictType.RESOURCE:
                merged = conflict.resolution is not None and conflict.resolution.merged
                assert merged, f"{cid}: {executed} both executed without a merge"


def _rule_prefix(rule: PolicyRule) -> str:
    """The key prefix a rule watches (field names differ between rule types)."""
    prefix = getattr(rule, "prefix", None)
    return str(prefix if prefix is not None else getattr(rule, "key_prefix", ""))


__all__ = [
    "Accepted",
    "AuditEvent",
    "ConflictRecord",
    "DecisionMachine",
    "ExecutionRefused",
    "ExecutionTarget",
    "KindConfig",
    "MemoryTarget",
    "ProposalRecord",
    "Refused",
    "Result",
    "Status",
    "VoteRecord",
]
