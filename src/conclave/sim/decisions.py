"""The decision workload and its checkers: the decision layer under the simulator's faults.

Workload (`conclave sim decisions`), every draw from an rng derived from the run seed
(`"<seed>:decisions"` for the plan, `"<seed>:dclient:<id>"` per client, `"<seed>:dclock"`
for the nodes' clock offsets), never from the KV workload's rngs:
- The plan: 1-2 kinds, each with an electorate of 3-5 principals with weights 1-3, a policy
  drawn from simple majority, 2/3, unanimity, weighted 3/5, quorum with abstentions (CAST
  basis) and a veto role (sometimes with the proposer barred from approving, or vote changes
  allowed), a strategy drawn from `STRATEGY_NAMES`, and sometimes an `AllowedValues` rule.
- Client 1 declares the kinds first; every client then proposes conflicting changes (written
  keys drawn from a small key set, shared values so that some merges commute, random
  priorities, some `depends_on`, some windows, short deadlines so that expiry happens, some
  rollbacks of proposals seen executed) and casts votes (random principals, including
  non-members, double votes, votes on decided or unknown proposals). Ops travel through the
  Raft log like the KV clients' writes, with the same retries and timeouts; a retried propose
  may create a second proposal (the decision layer has no sessions), which is fine.
- Time arrives inside the command (DESIGN.md rule 2): the node a request reaches stamps it
  with its own clock (`node_time_ms`: the simulated time scaled by the node's drift, plus a
  per-node offset), so leaders disagree on the time and the machine's `now_ms = max(...)`
  is exercised. The leader's expiry timer (`on_tick`) proposes an `Expire` when an open
  proposal's deadline has passed on its clock.

Checkers observe from outside the nodes and raise `SafetyViolation`:
- Continuous, on every applied decision entry (`on_apply`): every node gets the same result
  and appends the same audit events at each index ("decision-agreement"); following the audit
  stream of the first node to apply each index, every status change is allowed (OPEN ->
  APPROVED | REJECTED | EXPIRED, APPROVED -> EXECUTED | FAILED, EXECUTED -> ROLLED_BACK; so
  nothing is decided twice) and the record agrees with it ("decision-transition"); an approval
  is re-tallied from the recorded votes with `policy.evaluate` under the effective policy
  (unanimity once escalated) and must approve ("decision-tally").
- At the end, after the heal phase, on the converged cluster (`final_check`): the decision
  images (`encode_machine`) of all members at one applied index are byte-identical
  ("decision-agreement"); every approved, executed, failed or rolled-back proposal's votes
  approve and every open proposal is still pending under its effective policy
  ("decision-tally"); no two EXECUTED proposals stay in a RESOURCE conflict that was not
  merged ("decision-conflict"); every recorded resolution passes `resolution.validate`
  against the proposals it involves ("decision-resolution"); the KV store holds exactly
  what the audit's executed events wrote, replayed in log order, rollbacks restoring what
  their original overwrote ("decision-kv"); and every member's machine passes its own
  `check_invariants` ("state-machine-invariant"; the nodes also run it after every apply).
Iteration is over sorted ids, tuples and dicts in insertion order; never over sets.
"""

import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from conclave.apps.router import DECISION_PREFIX, DecisionApplied, NodeStateMachine, encode_decision
from conclave.core.effects import Entry, EntryKind
from conclave.core.ids import NodeId
from conclave.decision.commands import (
    STRATEGY_NAMES,
    CastVote,
    DecisionCommand,
    DeclareKind,
    Expire,
    Propose,
    Stamped,
)
from conclave.decision.conflicts import AllowedValues, PolicyRule, apply_changes, detect
from conclave.decision.machine import (
    Accepted,
    AuditEvent,
    DecisionMachine,
    KindConfig,
    ProposalRecord,
    Status,
)
from conclave.decision.model import (
    ApprovalBasis,
    ConflictType,
    Fraction,
    Member,
    Outcome,
    Policy,
    Scope,
    VoteChoice,
    Window,
)
from conclave.decision.policy import Verdict, evaluate
from conclave.decision.resolution import validate
from conclave.decision.snapshot import encode_machine
from conclave.sim.client import ClientOp, ClientResultError, SimClient
from conclave.sim.clock import NodeClock
from conclave.sim.history import History, OpKind
from conclave.sim.invariants import SafetyViolation

if TYPE_CHECKING:
    from conclave.sim.node import SimNode

EPOCH_MS: Final = 1_700_000_000_000  # simulated time 0 on a node's wall clock
CLOCK_OFFSET_MS_MAX: Final = 400  # each node's clock is off by up to this much
# Disjoint from the KV workload's keys (k<i>), which the liveness write uses.
KEYS: Final = ("cfg/a", "cfg/b", "cfg/c", "cfg/d", "cfg/e", "cfg/mode")
RULE_PREFIX: Final = "cfg/mode"
PRINCIPALS: Final = ("alice", "bob", "carol", "dave", "erin", "frank", "grace")
OUTSIDERS: Final = ("mallory", "trent")
KIND_NAMES: Final = ("deploy", "quota")
POLICY_NAMES: Final = (
    "simple_majority",
    "two_thirds",
    "unanimity",
    "weighted",
    "quorum_abstain",
    "veto",
)
SHARED_VALUES: Final = ("x", "y")  # equal writes commute, so some merges succeed
DEADLINE_MS_RANGE: Final = (300, 4_000)
EXPIRE_CHECK_US: Final = 50_000  # how often the leader's timer looks for due deadlines
EXPIRE_RETRY_US: Final = 200_000  # and how long it waits before proposing Expire again
RECENT_MAX: Final = 8  # votes mostly target the proposals a client learned last

_MIX: Final = (("propose", 22), ("vote", 65), ("rollback", 5), ("bad_vote", 8))

# The allowed status changes, restated from the machine's docstring (not imported from it).
_NEXT: Final[Mapping[Status, tuple[Status, ...]]] = {
    Status.OPEN: (Status.APPROVED, Status.REJECTED, Status.EXPIRED),
    Status.APPROVED: (Status.EXECUTED, Status.FAILED),
    Status.EXECUTED: (Status.ROLLED_BACK,),
}
_STATUS_EVENTS: Final = tuple(s.value for s in Status if s is not Status.OPEN)
# What one node's apply of one entry did: the result and the audit events it appended.
Fingerprint = tuple[object, tuple[AuditEvent, ...]]
_APPROVING: Final = (Status.APPROVED, Status.EXECUTED, Status.FAILED, Status.ROLLED_BACK)


def node_time_ms(clock: NodeClock, tick_interval_us: int, now_us: int, offset_ms: int) -> int:
    """A node's wall clock: simulated time scaled by its drift, plus its offset."""
    local_us = now_us * tick_interval_us // clock.tick_period_us
    return EPOCH_MS + offset_ms + local_us // 1000


# ------------------------------------------------------------------------------ the plan


def _draw_policy(rng: random.Random, name: str) -> Policy:
    policies = {
        "simple_majority": Policy(threshold=Fraction(num=1, den=2), strict=True),
        "two_thirds": Policy(threshold=Fraction(num=2, den=3)),
        "unanimity": Policy(threshold=Fraction(num=1, den=1)),
        "weighted": Policy(threshold=Fraction(num=3, den=5)),
        "quorum_abstain": Policy(
            threshold=Fraction(num=1, den=2),
            strict=True,
            basis=ApprovalBasis.CAST,
            quorum=Fraction(num=2, den=3),
        ),
        "veto": Policy(threshold=Fraction(num=1, den=2), strict=True, veto_roles=("owner",)),
    }
    policy = policies[name]
    if rng.random() < 0.2:
        policy = replace(policy, proposer_may_approve=False)
    if rng.random() < 0.2:
        policy = replace(policy, vote_changes_allowed=True)
    return policy


def _draw_kind(rng: random.Random, kind: str) -> DeclareKind:
    principals = sorted(rng.sample(PRINCIPALS, rng.randint(3, 5)))
    policy_name = rng.choice(POLICY_NAMES)
    owner = rng.choice(principals) if policy_name == "veto" else ""
    electorate = tuple(
        Member(principal=p, weight=rng.randint(1, 3), roles=("owner",) if p == owner else ())
        for p in principals
    )
    rules: tuple[PolicyRule, ...] = ()
    if rng.random() < 0.3:
        rules = (AllowedValues(key_prefix=RULE_PREFIX, values=("off", "on")),)
    return DeclareKind(
        kind=kind,
        policy=_draw_policy(rng, policy_name),
        electorate=electorate,
        strategy=rng.choice(STRATEGY_NAMES),
        rules=rules,
    )


def draw_plan(rng: random.Random) -> tuple[DeclareKind, ...]:
    """The kinds a run declares (1 or 2), drawn from the plan rng."""
    return tuple(_draw_kind(rng, kind) for kind in KIND_NAMES[: rng.randint(1, 2)])


# ------------------------------------------------------------------------------ clients


@dataclass(slots=True)
class KnownProposal:
    """What clients learned about a proposal from the answers they got."""

    kind: str
    writes: tuple[str, ...]
    status: Status
    voters: list[str] = field(default_factory=list)  # who clients had vote on it, in order


@dataclass(slots=True)
class Board:
    """Knowledge shared by the decision clients (outside the nodes): the plan and the
    proposals whose ids came back to some client, in the order they were learned."""

    kinds: tuple[DeclareKind, ...]
    proposals: dict[str, KnownProposal] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def learn(self, proposal_id: str, status: Status, propose: Propose | None) -> None:
        known = self.proposals.get(proposal_id)
        if known is None and propose is not None:
            self.proposals[proposal_id] = KnownProposal(propose.kind, propose.scope.writes, status)
            self.order.append(proposal_id)
        elif known is not None:
            known.status = status


@dataclass(slots=True)
class OpCounts:
    """Decision ops by how they ended (the client's view, like the KV history's status)."""

    ops: int = 0
    ok: int = 0
    unknown: int = 0
    fail: int = 0


class DecisionClient(SimClient):
    """A client of the decision layer; the cluster drives it exactly like a KV client."""

    def __init__(
        self,
        client_id: int,
        *,
        rng: random.Random,
        ops: int,
        node_ids: tuple[NodeId, ...],
        history: History,
        board: Board,
        counts: OpCounts,
        declares: bool,
    ) -> None:
        super().__init__(client_id, rng=rng, keys=KEYS, ops=ops, node_ids=node_ids, history=history)
        self.board = board
        self.counts = counts
        self._to_declare = list(board.kinds) if declares else []
        self._proposed = 0

    def start(self, now_us: int, deadline_us: int | None, kind: OpKind | None = None) -> ClientOp:
        """Invoke the next decision op (`kind` is ignored: the mix decides)."""
        del kind
        command = self._next_command(EPOCH_MS + now_us // 1000)
        self.ops_left -= 1
        self._op_no += 1
        self.counts.ops += 1
        data = encode_decision(Stamped(at_ms=0, command=command))  # the node stamps it
        op = ClientOp(self._op_no, -1, "put", describe(command), None, None, data, deadline_us)
        op.decision = command
        self.op = op
        return op

    def _next_command(self, now_ms: int) -> DecisionCommand:
        if self._to_declare:  # until one attempt is seen applied
            return self._to_declare[0]
        names = tuple(name for name, _ in _MIX)
        choice = self.rng.choices(names, tuple(weight for _, weight in _MIX))[0]
        known = self.board.order
        if choice == "rollback" and known:
            return self._rollback(now_ms)
        if choice in ("vote", "bad_vote") and known:
            return self._vote(bad=choice == "bad_vote")
        return self._propose(now_ms)

    def _kind(self, name: str | None = None) -> DeclareKind:
        for declared in self.board.kinds:
            if declared.kind == name:
                return declared
        return self.rng.choice(self.board.kinds)

    def _proposer(self, declared: DeclareKind) -> str:
        if self.rng.random() < 0.15:
            return self.rng.choice(OUTSIDERS)
        return self.rng.choice(declared.electorate).principal

    def _value(self, key: str) -> str | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.1:
            return None
        if key == RULE_PREFIX:
            return rng.choice(("on", "off", "bad"))
        if roll < 0.5:
            return rng.choice(SHARED_VALUES)
        self._proposed += 1
        return f"{self.id}.{self._proposed}"

    def _propose(self, now_ms: int) -> Propose:
        rng = self.rng
        declared = self._kind()
        writes = tuple(sorted(rng.sample(KEYS, rng.randint(1, 2))))
        reads = tuple(sorted(rng.sample(KEYS, rng.randint(0, 1))))
        depends: tuple[str, ...] = ()
        if self.board.order and rng.random() < 0.2:
            depends = (rng.choice(self.board.order[-RECENT_MAX:]),)
        window = None
        if rng.random() < 0.15:
            start = now_ms + rng.randint(0, 2_000)
            window = Window(start_ms=start, end_ms=start + rng.randint(100, 3_000))
        return Propose(
            proposer=self._proposer(declared),
            kind=declared.kind,
            scope=Scope(reads=reads, writes=writes),
            changes=tuple((key, self._value(key)) for key in writes),
            depends_on=depends,
            priority=rng.randint(0, 3),
            window=window,
            deadline_ms=now_ms + rng.randint(*DEADLINE_MS_RANGE),
        )

    def _rollback(self, now_ms: int) -> Propose:
        rng = self.rng
        executed = [
            pid for pid in self.board.order if self.board.proposals[pid].status is Status.EXECUTED
        ]
        # Mostly a proposal seen executed; sometimes any (an invalid rollback, refused).
        pool = executed if executed and rng.random() < 0.8 else self.board.order
        target = rng.choice(pool)
        known = self.board.proposals[target]
        declared = self._kind(known.kind)
        return Propose(
            proposer=self._proposer(declared),
            kind=known.kind,
            scope=Scope(writes=known.writes),
            priority=rng.randint(0, 3),
            deadline_ms=now_ms + rng.randint(*DEADLINE_MS_RANGE),
            rollback_of=target,
        )

    def _vote(self, *, bad: bool) -> CastVote:
        rng = self.rng
        order = self.board.order
        recent_open = [
            pid for pid in order[-RECENT_MAX:] if self.board.proposals[pid].status is Status.OPEN
        ]
        # Mostly one of the last few open proposals (so that some gather enough votes).
        if recent_open and rng.random() < 0.85:
            target = rng.choice(recent_open[-3:])
        else:
            target = rng.choice(order)
        known = self.board.proposals[target]
        members = [m.principal for m in self._kind(known.kind).electorate]
        fresh = [p for p in members if p not in known.voters]
        # Mostly a member who has not voted yet; sometimes anyone (a double vote).
        voter = rng.choice(fresh if fresh and rng.random() < 0.85 else members)
        known.voters.append(voter)
        if bad:
            if rng.random() < 0.5:
                voter = rng.choice(OUTSIDERS)
            else:
                target = f"p{10**6 + rng.randrange(100)}"  # no such proposal
        choice = rng.choices(tuple(VoteChoice), (78, 12, 10))[0]
        return CastVote(proposal_id=target, voter=voter, choice=choice)

    def succeed(self, now_us: int, result: object) -> None:
        """The op's entry was applied: learn what it did."""
        del now_us
        op = self.op
        assert op is not None
        if not isinstance(result, DecisionApplied):
            raise ClientResultError(f"client {self.id}: decision op returned {result!r}")
        answer = result.result
        if self._to_declare and op.decision == self._to_declare[0]:
            self._to_declare.pop(0)
        if isinstance(answer, Accepted) and answer.proposal_id:
            propose = op.decision if isinstance(op.decision, Propose) else None
            self.board.learn(answer.proposal_id, answer.status, propose)
        self.counts.ok += 1
        self.op = None

    def give_up(self, now_us: int | None) -> str:
        """Stop without an answer: "unknown" if it may be in the log, else "fail"."""
        del now_us
        op = self.op
        assert op is not None
        self.op = None
        if op.may_have_taken_effect:
            self.counts.unknown += 1
            return "unknown"
        self.counts.fail += 1
        return "fail"


def describe(command: DecisionCommand) -> str:
    """A short readable form of a command, for traces."""
    match command:
        case DeclareKind():
            return f"declare {command.kind} ({command.strategy})"
        case Propose():
            what = f" rollback of {command.rollback_of}" if command.rollback_of else ""
            return f"propose {command.kind} {','.join(command.scope.writes)}{what}"
        case CastVote():
            return f"vote {command.proposal_id} {command.voter} {command.choice.value}"
        case Expire():
            return "expire"


# ------------------------------------------------------------------------------ checking


def _audit_at(audit: Sequence[AuditEvent], index: int) -> tuple[AuditEvent, ...]:
    """The audit events appended by the entry at `index` (the tail of the trail)."""
    start = len(audit)
    while start > 0 and audit[start - 1].index == index:
        start -= 1
    return tuple(audit[start:])


def _first_difference(mine: "Fingerprint", theirs: "Fingerprint") -> str:
    """The first differing part of two (result, audit events) fingerprints, readably."""
    if mine[0] != theirs[0]:
        return f"result {mine[0]!r} vs {theirs[0]!r}"
    ours, other = mine[1], theirs[1]
    for position, (a, b) in enumerate(zip(ours, other, strict=False)):
        if a != b:
            return f"audit event {position} of the entry: {a!r} vs {b!r}"
    return f"{len(ours)} audit events vs {len(other)}"


def effective_verdict(config: KindConfig, record: ProposalRecord, escalated: bool) -> Verdict:
    """Re-tally a proposal from its recorded votes (unanimity once escalated)."""
    policy = config.policy
    if escalated:
        policy = replace(policy, threshold=Fraction(num=1, den=1), strict=False)
    votes = {voter: vote.choice for voter, vote in sorted(record.votes.items())}
    return evaluate(policy, config.electorate, record.proposal.proposer, votes)


def _tally_problem(
    machine: DecisionMachine, pid: str, escalated: bool, expected: Outcome
) -> str | None:
    record = machine.proposals[pid]
    config = machine.kinds[record.proposal.kind]
    try:
        verdict = effective_verdict(config, record, escalated)
    except ValueError as exc:
        return f"{pid} ({record.status.value}) has invalid votes: {exc}"
    if verdict.outcome is not expected:
        votes = ", ".join(f"{v}={r.choice.value}" for v, r in sorted(record.votes.items()))
        return (
            f"{pid} is {record.status.value} but its votes [{votes}] give "
            f"{verdict.outcome.value}: {verdict.reason}"
        )
    return None


class DecisionChecker:
    """The continuous checks (see the module docstring), fed by every node's applies."""

    def __init__(self) -> None:
        self._by_index: dict[int, tuple[NodeId, Fingerprint]] = {}
        self.status: dict[str, Status] = {}
        self.escalated: dict[str, bool] = {}

    def on_apply(
        self, node_id: NodeId, entry: Entry, result: object, router: NodeStateMachine
    ) -> None:
        if entry.kind is not EntryKind.NORMAL or not entry.data.startswith(DECISION_PREFIX):
            return
        tail = _audit_at(router.decisions.audit, entry.index)
        fingerprint: Fingerprint = (result, tail)
        seen = self._by_index.get(entry.index)
        if seen is None:
            self._by_index[entry.index] = (node_id, fingerprint)
            self._follow(tail, router.decisions)
            return
        first_node, first = seen
        if first != fingerprint:
            raise SafetyViolation(
                "decision-agreement",
                f"entry {entry.index}: n{node_id} and n{first_node} differ: "
                f"{_first_difference(fingerprint, first)}",
            )

    def _follow(self, tail: Sequence[AuditEvent], machine: DecisionMachine) -> None:
        touched: list[str] = []
        for event in tail:
            pid = event.proposal_id
            if event.type == "proposed":
                if pid in self.status:
                    raise SafetyViolation("decision-transition", f"{pid} proposed twice")
                self.status[pid] = Status.OPEN
                touched.append(pid)
            elif event.type == "escalated":
                self.escalated[pid] = True
            elif event.type in _STATUS_EVENTS:
                self._transition(pid, Status(event.type), event)
                touched.append(pid)
        for pid in touched:
            self._check_record(pid, machine)

    def _transition(self, pid: str, new: Status, event: AuditEvent) -> None:
        old = self.status.get(pid)
        if old is None or new not in _NEXT.get(old, ()):
            was = "unknown" if old is None else old.value
            raise SafetyViolation(
                "decision-transition",
                f"{pid}: {was} -> {new.value} at entry {event.index} ({event.detail})",
            )
        self.status[pid] = new

    def _check_record(self, pid: str, machine: DecisionMachine) -> None:
        record = machine.proposals.get(pid)
        expected = self.status[pid]
        if record is None or record.status is not expected:
            got = "missing" if record is None else record.status.value
            raise SafetyViolation(
                "decision-transition", f"{pid}: the audit says {expected.value}, record {got}"
            )
        if expected in _APPROVING:
            problem = _tally_problem(machine, pid, self.escalated.get(pid, False), Outcome.APPROVED)
            if problem is not None:
                raise SafetyViolation("decision-tally", problem)

    # -- the end of the run -------------------------------------------------------------

    def final_check(self, routers: Sequence[tuple[NodeId, NodeStateMachine]]) -> None:
        """The whole-state checks on the converged cluster (see the module docstring)."""
        _check_images(routers)
        router = routers[0][1]
        machine = router.decisions
        for pid, record in sorted(machine.proposals.items()):
            if self.status.get(pid) is not record.status:
                raise SafetyViolation(
                    "decision-transition",
                    f"{pid} is {record.status.value}, its audit trail says {self.status.get(pid)}",
                )
            expected = Outcome.APPROVED if record.status in _APPROVING else None
            if record.status is Status.OPEN:
                expected = Outcome.PENDING
            if expected is not None:
                problem = _tally_problem(machine, pid, self.escalated.get(pid, False), expected)
                if problem is not None:
                    raise SafetyViolation("decision-tally", problem)
        _check_conflicts(machine)
        _check_resolutions(machine)
        _check_kv(router)
        for node_id, member in routers:
            try:
                member.decisions.check_invariants()
            except AssertionError as exc:
                raise SafetyViolation(
                    "state-machine-invariant", f"n{node_id} decision machine: {exc}"
                ) from exc


def _check_images(routers: Sequence[tuple[NodeId, NodeStateMachine]]) -> None:
    """Members at one applied index hold byte-identical decision images."""
    first: dict[int, tuple[NodeId, bytes]] = {}
    for node_id, router in routers:
        image = encode_machine(router.decisions)
        seen = first.setdefault(router.applied_index, (node_id, image))
        if seen[1] != image:
            at = next(
                (i for i, (a, b) in enumerate(zip(seen[1], image, strict=False)) if a != b),
                min(len(image), len(seen[1])),
            )
            raise SafetyViolation(
                "decision-agreement",
                f"n{seen[0]} and n{node_id} at index {router.applied_index} hold different "
                f"decision images (first difference at byte {at}: "
                f"{seen[1][at - 40 : at + 40]!r} vs {image[at - 40 : at + 40]!r})",
            )


def _check_conflicts(machine: DecisionMachine) -> None:
    for cid, record in sorted(machine.conflicts.items()):
        if record.conflict.type is not ConflictType.RESOURCE:
            continue
        executed = [
            pid
            for pid in record.conflict.proposals
            if machine.proposals[pid].status is Status.EXECUTED
        ]
        merged = record.resolution is not None and record.resolution.merged
        if len(executed) > 1 and not merged:
            how = "unresolved" if record.resolution is None else record.resolution.strategy
            raise SafetyViolation(
                "decision-conflict",
                f"{cid} ({how}): {', '.join(executed)} are all executed ({record.conflict.reason})",
            )


def _check_resolutions(machine: DecisionMachine) -> None:
    for cid, record in sorted(machine.conflicts.items()):
        resolution = record.resolution
        if resolution is None:
            continue
        conflict = record.conflict
        involved = {pid: machine.proposals[pid].proposal for pid in conflict.proposals}
        rules = machine.kinds[involved[conflict.proposals[0]].kind].rules
        # Facts of the moment (target state, failed and executed ids) are not kept; with
        # none, a dependency outside the conflict is flagged alike before and after, so only
        # what the resolution itself changes can count as new.
        problems = validate(resolution, conflict, involved, functools.partial(detect, rules=rules))
        if problems:
            raise SafetyViolation(
                "decision-resolution",
                f"{cid} resolved by {resolution.strategy}: {'; '.join(problems)}",
            )


def _check_kv(router: NodeStateMachine) -> None:
    """Replay the audit's executed events in log order; the KV must hold the result."""
    machine = router.decisions
    state: dict[str, str] = {}
    undo: dict[str, tuple[tuple[str, str | None], ...]] = {}
    for event in machine.audit:
        if event.type != "executed":
            continue
        record = machine.proposals[event.proposal_id]
        if record.rollback_of is None:
            changes = record.proposal.changes
        else:
            changes = undo.get(record.rollback_of, ())
        before = tuple((key, state.get(key)) for key, _ in changes)
        if record.rollback != before:
            raise SafetyViolation(
                "decision-kv",
                f"{event.proposal_id} recorded undo {record.rollback!r}, replay gives {before!r}",
            )
        undo[event.proposal_id] = before
        state = apply_changes(state, changes)
    for key in KEYS:
        held = router.target.read(key)
        if held != state.get(key):
            raise SafetyViolation(
                "decision-kv",
                f"{key} holds {held!r} but the executed decisions wrote {state.get(key)!r}",
            )


# ------------------------------------------------------------------------------ the workload


class DecisionWorkload:
    """The plan, the clients' shared board, clock stamping, the expiry timer and the
    checker of one run (see the module docstring)."""

    def __init__(self, seed: int, tick_interval_us: int, node_ids: tuple[NodeId, ...]) -> None:
        self.seed = seed
        self.tick_interval_us = tick_interval_us
        self.board = Board(kinds=draw_plan(random.Random(f"{seed}:decisions")))
        self.counts = OpCounts()
        self.checker = DecisionChecker()
        clock_rng = random.Random(f"{seed}:dclock")
        self.offset_ms = {
            node_id: clock_rng.randint(-CLOCK_OFFSET_MS_MAX, CLOCK_OFFSET_MS_MAX)
            for node_id in node_ids
        }
        self._expire_checked_us: dict[NodeId, int] = {}
        self._expire_proposed_us: dict[NodeId, int] = {}
        self.expires_proposed = 0

    def make_clients(
        self,
        count: int,
        ops: int,
        node_ids: tuple[NodeId, ...],
        history: History,
    ) -> dict[int, SimClient]:
        """`count` clients sharing `ops`; client 1 declares the kinds first."""
        clients: dict[int, SimClient] = {}
        for client_id in range(1, count + 1):
            share = ops // count + (1 if client_id <= ops % count else 0)
            if client_id == 1:
                share += len(self.board.kinds)
            clients[client_id] = DecisionClient(
                client_id,
                rng=random.Random(f"{self.seed}:dclient:{client_id}"),
                ops=share,
                node_ids=node_ids,
                history=history,
                board=self.board,
                counts=self.counts,
                declares=client_id == 1,
            )
        return clients

    def now_ms(self, node: "SimNode", now_us: int) -> int:
        return node_time_ms(node.clock, self.tick_interval_us, now_us, self.offset_ms[node.id])

    def stamp(self, node: "SimNode", now_us: int, command: DecisionCommand) -> bytes:
        """The entry a node proposes for a client's command: stamped with its clock."""
        return encode_decision(Stamped(at_ms=self.now_ms(node, now_us), command=command))

    def on_tick(self, node: "SimNode", now_us: int, is_leader: bool) -> None:
        """The leader's expiry timer: propose `Expire` once a deadline passed on its clock."""
        if not is_leader or not isinstance(node.machine, NodeStateMachine):
            return
        if now_us - self._expire_checked_us.get(node.id, -EXPIRE_CHECK_US) < EXPIRE_CHECK_US:
            return
        self._expire_checked_us[node.id] = now_us
        if now_us - self._expire_proposed_us.get(node.id, -EXPIRE_RETRY_US) < EXPIRE_RETRY_US:
            return
        now_ms = self.now_ms(node, now_us)
        machine = node.machine.decisions
        due = any(
            r.status is Status.OPEN and r.proposal.deadline_ms < now_ms
            for r in machine.proposals.values()
        )
        if due and node.propose_data(encode_decision(Stamped(at_ms=now_ms, command=Expire()))):
            self._expire_proposed_us[node.id] = now_us
            self.expires_proposed += 1

    def stats(self, routers: Sequence[NodeStateMachine]) -> dict[str, int]:
        """Counts for the seed's line: ops by outcome, proposals by final status."""
        out = {
            "ops": self.counts.ops,
            "ok": self.counts.ok,
            "unknown": self.counts.unknown,
            "fail": self.counts.fail,
            "expires": self.expires_proposed,
        }
        if routers:
            machine = routers[0].decisions
            out["proposals"] = len(machine.proposals)
            for status in Status:
                out[status.value] = sum(1 for r in machine.proposals.values() if r.status is status)
            out["conflicts"] = len(machine.conflicts)
            out["refusals"] = machine.refusals
        return out


__all__ = [
    "EPOCH_MS",
    "KEYS",
    "Board",
    "DecisionChecker",
    "DecisionClient",
    "DecisionWorkload",
    "describe",
    "draw_plan",
    "effective_verdict",
    "node_time_ms",
]
