"""The decision state machine: votes decide, conflicts resolve, execution is atomic, all audited."""

import pytest

from conclave.decision.commands import (
    CastVote,
    DecisionDecodeError,
    DeclareKind,
    Expire,
    Propose,
    Stamped,
    decode_stamped,
    encode_stamped,
)
from conclave.decision.conflicts import AllowedValues
from conclave.decision.machine import (
    Accepted,
    DecisionMachine,
    MemoryTarget,
    Refused,
    Status,
)
from conclave.decision.model import Member, Policy, Scope, VoteChoice, supermajority
from conclave.decision.snapshot import encode_machine, restore_machine

A, R, X = VoteChoice.APPROVE, VoteChoice.REJECT, VoteChoice.ABSTAIN
MEMBERS = (Member(principal="ann"), Member(principal="bob"), Member(principal="cyd"))


def DictTarget() -> MemoryTarget:
    """A dict-backed target that refuses the value "refuse" (to make executions fail)."""
    return MemoryTarget(refused_values=("refuse",))


class Log:
    """Feeds stamped commands through the codec into a machine, one index each."""

    def __init__(self, machine: DecisionMachine) -> None:
        self.machine = machine
        self.index = 0
        self.at_ms = 1_000

    def apply(self, command: object, *, at_ms: int | None = None) -> Accepted | Refused:
        self.index += 1
        self.at_ms = at_ms if at_ms is not None else self.at_ms + 10
        stamped = Stamped(at_ms=self.at_ms, command=command)  # type: ignore[arg-type]
        decoded = decode_stamped(encode_stamped(stamped))  # every command round-trips
        assert decoded == stamped
        result = self.machine.apply(decoded, self.index)
        self.machine.check_invariants()
        return result

    def propose(self, key: str = "cfg", value: str = "v1", **kwargs: object) -> str:
        fields: dict[str, object] = {
            "proposer": "ann",
            "kind": "config",
            "scope": Scope(writes=(key,)),
            "changes": ((key, value),),
            "deadline_ms": self.at_ms + 10_000,
        }
        fields.update(kwargs)
        result = self.apply(Propose(**fields))  # type: ignore[arg-type]
        assert isinstance(result, Accepted), result
        return result.proposal_id

    def vote(self, pid: str, voter: str, choice: VoteChoice) -> Accepted | Refused:
        return self.apply(CastVote(proposal_id=pid, voter=voter, choice=choice))


def _log(policy: Policy | None = None, strategy: str = "priority", **kind: object) -> Log:
    log = Log(DecisionMachine(DictTarget()))
    declared = log.apply(
        DeclareKind(
            kind="config",
            policy=policy or supermajority(2, 3),
            electorate=MEMBERS,
            strategy=strategy,
            **kind,  # type: ignore[arg-type]
        )
    )
    assert isinstance(declared, Accepted)
    return log


def _status(log: Log, pid: str) -> Status:
    return log.machine.proposals[pid].status


def _data(log: Log) -> dict[str, str]:
    target = log.machine.target
    assert isinstance(target, MemoryTarget)
    return target.data


def test_two_of_three_approve_and_the_change_is_executed_and_audited() -> None:
    log = _log()
    pid = log.propose()
    assert log.vote(pid, "ann", A) == Accepted(pid, Status.OPEN)
    assert log.vote(pid, "bob", A) == Accepted(pid, Status.EXECUTED)
    assert _data(log) == {"cfg": "v1"}
    kinds = [e.type for e in log.machine.events_for(pid)]
    assert kinds == ["proposed", "voted", "voted", "approved", "executed"]


def test_two_rejects_of_three_reject_early_and_nothing_is_written() -> None:
    log = _log()
    pid = log.propose()
    log.vote(pid, "ann", R)
    assert log.vote(pid, "bob", R) == Accepted(pid, Status.REJECTED)
    assert _data(log) == {}


def test_refusals_change_nothing_and_name_their_reason() -> None:
    log = _log(Policy(threshold=supermajority(2, 3).threshold, proposer_may_approve=False))
    pid = log.propose()
    cases = [
        (CastVote(proposal_id="p999", voter="ann", choice=A), "unknown_proposal"),
        (CastVote(proposal_id=pid, voter="eve", choice=A), "not_a_voter"),
        (CastVote(proposal_id=pid, voter="ann", choice=A), "own_proposal"),
        (Propose(proposer="x", kind="nope", deadline_ms=10**9), "unknown_kind"),
        (Propose(proposer="x", kind="config", deadline_ms=1), "deadline_passed"),
        (
            Propose(proposer="x", kind="config", deadline_ms=10**9, depends_on=("p77",)),
            "unknown_dependency",
        ),
        (
            Propose(proposer="x", kind="config", deadline_ms=10**9, rollback_of=pid),
            "invalid_rollback",
        ),
    ]
    for command, code in cases:
        result = log.apply(command)
        assert isinstance(result, Refused)
        assert result.code == code
    log.vote(pid, "bob", A)
    again = log.vote(pid, "bob", R)
    assert isinstance(again, Refused)
    assert again.code == "already_voted"
    log.vote(pid, "cyd", A)
    late = log.vote(pid, "cyd", R)
    assert isinstance(late, Refused)
    assert late.code == "decided"
    assert log.machine.refusals == 9


def test_a_vote_change_is_recorded_when_the_policy_allows_it() -> None:
    log = _log(Policy(threshold=supermajority(2, 3).threshold, vote_changes_allowed=True))
    pid = log.propose()
    log.vote(pid, "bob", R)
    assert log.vote(pid, "bob", A) == Accepted(pid, Status.OPEN)
    assert log.machine.proposals[pid].vote_changes == 1
    assert "approve (was reject)" in log.machine.events_for(pid)[-1].detail


def test_the_deadline_expires_on_the_next_command_after_it() -> None:
    log = _log()
    pid = log.propose(deadline_ms=log.at_ms + 100)
    log.vote(pid, "ann", A)
    log.apply(Expire(), at_ms=log.at_ms + 500)
    assert _status(log, pid) is Status.EXPIRED
    late = log.vote(pid, "bob", A)
    assert isinstance(late, Refused)


def test_time_never_goes_back_when_a_new_leader_stamps_an_earlier_time() -> None:
    log = _log()
    log.apply(Expire(), at_ms=50_000)
    log.apply(Expire(), at_ms=40_000)
    assert log.machine.now_ms == 50_000


def test_priority_strategy_lets_the_higher_priority_proposal_win() -> None:
    log = _log(strategy="priority")
    low = log.propose(value="low", priority=1)
    high = log.propose(value="high", priority=5)
    conflict = log.machine.proposals[high].conflicts
    assert conflict == [f"resource:{low}+{high}"]
    log.vote(low, "bob", A)
    log.vote(low, "cyd", A)  # low is approved first, but loses the conflict
    assert _status(log, low) is Status.REJECTED
    log.vote(high, "bob", A)
    log.vote(high, "cyd", A)
    assert _status(log, high) is Status.EXECUTED
    assert _data(log) == {"cfg": "high"}


def test_first_decided_strategy_lets_the_first_approved_win() -> None:
    log = _log(strategy="first_decided")
    first = log.propose(value="a", priority=1)
    second = log.propose(value="b", priority=9)
    log.vote(first, "bob", A)
    log.vote(first, "cyd", A)
    assert _status(log, first) is Status.EXECUTED
    assert _status(log, second) is Status.REJECTED


def test_merge_accepts_identical_writes_and_escalates_the_rest() -> None:
    log = _log(strategy="merge")
    one = log.propose(value="same")
    two = log.propose(value="same")
    log.vote(one, "bob", A)
    log.vote(one, "cyd", A)
    assert _status(log, one) is Status.EXECUTED
    assert _status(log, two) is Status.OPEN  # merged: still free to be decided
    three = log.propose(key="other", value="x")
    four = log.propose(key="other", value="y")
    log.vote(three, "bob", A)
    log.vote(three, "cyd", A)
    assert log.machine.proposals[three].escalated  # could not merge: unanimity needed now
    assert _status(log, three) is Status.OPEN
    assert _status(log, four) is Status.OPEN
    log.vote(three, "ann", A)
    assert _status(log, three) is Status.EXECUTED


def test_a_refused_execution_rolls_back_every_write() -> None:
    log = _log()
    _data(log)["a"] = "old"
    pid = log.propose(scope=Scope(writes=("a", "b")), changes=(("a", "new"), ("b", "refuse")))
    log.vote(pid, "ann", A)
    log.vote(pid, "bob", A)
    assert _status(log, pid) is Status.FAILED
    assert _data(log) == {"a": "old"}


def test_an_approved_rollback_restores_the_earlier_state() -> None:
    log = _log()
    _data(log)["cfg"] = "v0"
    change = log.propose(value="v1")
    log.vote(change, "ann", A)
    log.vote(change, "bob", A)
    assert _data(log) == {"cfg": "v1"}
    undo = log.propose(rollback_of=change, changes=(), scope=Scope(writes=("cfg",)))
    log.vote(undo, "bob", A)
    log.vote(undo, "cyd", A)
    assert _data(log) == {"cfg": "v0"}
    assert _status(log, change) is Status.ROLLED_BACK


def test_a_dependent_waits_for_its_dependency_and_fails_with_it() -> None:
    log = _log()
    base = log.propose(key="base", value="1")
    child = log.propose(key="child", value="2", depends_on=(base,))
    log.vote(child, "bob", A)
    log.vote(child, "cyd", A)
    assert _status(log, child) is Status.APPROVED  # waiting for base
    log.vote(base, "bob", A)
    log.vote(base, "cyd", A)
    assert _status(log, child) is Status.EXECUTED
    doomed = log.propose(key="d", value="1")
    orphan = log.propose(key="o", value="1", depends_on=(doomed,))
    log.vote(doomed, "bob", R)
    log.vote(doomed, "cyd", R)
    assert _status(log, orphan) is Status.REJECTED


def test_a_declared_rule_turns_a_breaking_proposal_into_a_policy_conflict() -> None:
    log = _log(rules=(AllowedValues(key_prefix="mode", values=("on", "off")),))
    bad = log.propose(key="mode", value="maybe")
    assert any(c.startswith("policy:") for c in log.machine.proposals[bad].conflicts)
    log.vote(bad, "bob", A)
    log.vote(bad, "cyd", A)
    assert _status(log, bad) is Status.REJECTED
    assert _data(log) == {}


def test_replicas_fed_the_same_commands_agree_on_everything() -> None:
    logs = [_log(strategy="priority"), _log(strategy="priority")]
    for log in logs:
        p1 = log.propose(value="x", priority=2)
        p2 = log.propose(value="y", priority=3)
        log.vote(p1, "bob", A)
        log.vote(p1, "cyd", A)
        log.vote(p2, "ann", X)
        log.vote(p2, "bob", A)
        log.vote(p2, "cyd", A)
    first, second = (log.machine for log in logs)
    assert first.audit == second.audit
    assert {k: r.status for k, r in first.proposals.items()} == {
        k: r.status for k, r in second.proposals.items()
    }


def test_a_snapshot_restores_the_same_state_and_the_same_future() -> None:
    log = _log(strategy="priority", rules=(AllowedValues(key_prefix="mode", values=("on",)),))
    p1 = log.propose(value="x", priority=2)
    p2 = log.propose(value="y", priority=3)
    log.vote(p1, "bob", A)
    log.vote(p1, "cyd", A)
    image = encode_machine(log.machine)
    twin = Log(DecisionMachine(DictTarget()))
    restore_machine(twin.machine, image)
    assert encode_machine(twin.machine) == image
    twin.index, twin.at_ms = log.index, log.at_ms
    _data(twin).update(_data(log))
    for replica in (log, twin):
        replica.vote(p2, "bob", A)
        replica.vote(p2, "cyd", A)
    assert encode_machine(twin.machine) == encode_machine(log.machine)
    with pytest.raises(DecisionDecodeError):
        restore_machine(twin.machine, image[:-5])
    assert encode_machine(twin.machine) == encode_machine(log.machine)  # untouched


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"v":1,"tag":"decision.vote","at_ms":1,"body":{}}',
        b'{"v":2,"tag":"decision.expire","at_ms":1,"body":{}}',
        b'{"v":1,"tag":"decision.nope","at_ms":1,"body":{}}',
        b'{"v":1,"tag":"decision.expire","at_ms":-1,"body":{}}',
        (
            b'{"v":1,"tag":"decision.vote","at_ms":1,"body":{"proposal_id":"p1","voter":"a",'
            b'"choice":"maybe","justification":""}}'
        ),
    ],
)
def test_malformed_commands_are_refused_by_the_decoder(data: bytes) -> None:
    with pytest.raises(DecisionDecodeError):
        decode_stamped(data)
