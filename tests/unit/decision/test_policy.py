"""The tally (`conclave.decision.policy`): closed-form settlement checked against brute force.

The oracle below shares no code with the module: it enumerates every future of the votes
(each free member approves, rejects, abstains or stays silent; with vote changes allowed,
members who voted may switch) and applies the plain rules with `fractions.Fraction`.
"""

import dataclasses
import fractions
import itertools
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from conclave.decision import policy as tally_module
from conclave.decision.model import (
    ApprovalBasis,
    Fraction,
    Member,
    Outcome,
    Policy,
    VoteChoice,
    simple_majority,
    supermajority,
    unanimity,
)
from conclave.decision.policy import Verdict, evaluate

APPROVE, REJECT, ABSTAIN = VoteChoice.APPROVE, VoteChoice.REJECT, VoteChoice.ABSTAIN
ROLES = ("owner", "ops", "audit")


@dataclass(frozen=True)
class Case:
    policy: Policy
    electorate: tuple[Member, ...]
    proposer: str
    votes: Mapping[str, VoteChoice]


Evaluate = Callable[[Policy, Sequence[Member], str, Mapping[str, VoteChoice]], Verdict]


# --- the oracle ---------------------------------------------------------------------------


def plain_approves(
    policy: Policy, electorate: Sequence[Member], votes: Mapping[str, object]
) -> bool:
    """The plain rules on one set of votes (complete or not): quorum, threshold, no veto."""
    weights = {APPROVE: 0, REJECT: 0, ABSTAIN: 0}
    for member in electorate:
        choice = votes.get(member.principal)
        if choice is None:
            continue
        assert isinstance(choice, VoteChoice)
        if choice is REJECT and set(member.roles) & set(policy.veto_roles):
            return False
        weights[choice] += member.weight
    total = sum(m.weight for m in electorate)
    approve, reject = weights[APPROVE], weights[REJECT]
    quorum = fractions.Fraction(policy.quorum.num, policy.quorum.den)
    if fractions.Fraction(sum(weights.values()), total) < quorum:
        return False
    threshold = fractions.Fraction(policy.threshold.num, policy.threshold.den)
    if policy.basis is ApprovalBasis.CAST:
        if approve == 0:
            return False
        share = fractions.Fraction(approve, approve + reject)
    else:
        share = fractions.Fraction(approve, total)
    return share > threshold if policy.strict else share >= threshold


def futures(case: Case) -> Iterator[dict[str, VoteChoice | None]]:
    """Every way the votes may still end up (module rules 6 and 7, by enumeration)."""
    policy, votes = case.policy, case.votes
    everyone_voted = all(m.principal in votes for m in case.electorate)
    if policy.vote_changes_allowed and everyone_voted:
        return iter([dict(votes)])  # the window for changes closes when every member has voted
    options: list[tuple[VoteChoice | None, ...]] = []
    for member in case.electorate:
        voted = member.principal in votes
        if voted and not policy.vote_changes_allowed:
            options.append((votes[member.principal],))
            continue
        barred = member.principal == case.proposer and not policy.proposer_may_approve
        choices: tuple[VoteChoice | None, ...] = (
            (REJECT, ABSTAIN)
            if barred
            else (
                APPROVE,
                REJECT,
                ABSTAIN,
            )
        )
        options.append(choices if voted else (*choices, None))
    principals = [m.principal for m in case.electorate]
    return (dict(zip(principals, combo, strict=True)) for combo in itertools.product(*options))


def oracle(case: Case) -> Outcome:
    policy, electorate = case.policy, case.electorate
    vetoed = any(
        case.votes.get(m.principal) == REJECT and set(m.roles) & set(policy.veto_roles)
        for m in electorate
    )
    if vetoed:
        return Outcome.REJECTED  # a veto is final, even where votes may change
    seen = set()
    for future in futures(case):
        seen.add(plain_approves(policy, electorate, future))
        if len(seen) == 2:
            return Outcome.PENDING  # some futures approve, some do not
    return Outcome.APPROVED if seen == {True} else Outcome.REJECTED


def agrees(case: Case, evaluate_fn: Evaluate = evaluate) -> bool:
    verdict = evaluate_fn(case.policy, case.electorate, case.proposer, case.votes)
    return verdict.outcome == oracle(case)


# --- strategies ---------------------------------------------------------------------------

ROLE_SETS = st.one_of(
    st.just(()), st.lists(st.sampled_from(ROLES), unique=True, max_size=2).map(tuple)
)
# `find` only has to show that an example exists: no shrinking, no example database.
FIND = settings(max_examples=5000, database=None, deadline=None, phases=[Phase.generate])


@st.composite
def fractions_(draw: st.DrawFn) -> Fraction:
    den = draw(st.integers(1, 6))
    return Fraction(num=draw(st.integers(0, den)), den=den)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    threshold = draw(fractions_())
    strict = draw(st.booleans())
    if threshold.num == 0:
        strict = True  # a non-strict 0 threshold is refused by Policy
    if threshold.num == threshold.den:
        strict = False  # a strict threshold of 1 is refused by Policy
    return Policy(
        threshold=threshold,
        strict=strict,
        basis=draw(st.sampled_from(ApprovalBasis)),
        quorum=draw(st.one_of(st.just(Fraction(num=0, den=1)), fractions_())),
        veto_roles=draw(ROLE_SETS),
        proposer_may_approve=draw(st.booleans()),
        vote_changes_allowed=draw(st.booleans()),
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    size = draw(st.integers(1, 6))
    electorate = tuple(
        Member(principal=f"m{i}", weight=draw(st.integers(1, 5)), roles=draw(ROLE_SETS))
        for i in range(size)
    )
    policy = draw(policies())
    proposer = draw(st.sampled_from([*(m.principal for m in electorate), "outsider"]))
    votes: dict[str, VoteChoice] = {}
    for member in electorate:
        barred = member.principal == proposer and not policy.proposer_may_approve
        # Approvals weighted up: settled approvals are the rarest outcome otherwise.
        options = [None, REJECT, ABSTAIN] if barred else [None, APPROVE, APPROVE, REJECT, ABSTAIN]
        choice = draw(st.sampled_from(options))
        if choice is not None:
            votes[member.principal] = choice
    return Case(policy=policy, electorate=electorate, proposer=proposer, votes=votes)


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=600, deadline=None)
@given(cases())
def test_settlement_matches_brute_force_over_every_future(case: Case) -> None:
    verdict = evaluate(case.policy, case.electorate, case.proposer, case.votes)
    assert verdict.outcome == oracle(case), verdict.lines()
    tally = verdict.tally
    assert (
        tally.approve_weight + tally.reject_weight + tally.abstain_weight + tally.undecided_weight
        == tally.total_weight
    )
    assert verdict.reason.startswith(f"{verdict.outcome.value}: ")
    assert verdict.lines()[-1] == f"outcome: {verdict.reason}"


@settings(max_examples=200, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_verdict_ignores_electorate_and_vote_order(case: Case, rng: random.Random) -> None:
    shuffled = list(case.electorate)
    rng.shuffle(shuffled)
    keys = sorted(case.votes, reverse=True)
    reordered = {key: case.votes[key] for key in keys}
    first = evaluate(case.policy, case.electorate, case.proposer, case.votes)
    second = evaluate(case.policy, shuffled, case.proposer, reordered)
    assert first == second
    assert first.lines() == second.lines()


@pytest.mark.parametrize("changes", [False, True])
@pytest.mark.parametrize("basis", list(ApprovalBasis))
@pytest.mark.parametrize("outcome", [Outcome.APPROVED, Outcome.REJECTED, Outcome.PENDING])
def test_the_generator_reaches_every_outcome(
    outcome: Outcome, basis: ApprovalBasis, changes: bool
) -> None:
    """The property above is only as good as its inputs: each outcome occurs in each mode."""
    found = find(
        cases(),
        lambda c: (
            c.policy.basis is basis
            and c.policy.vote_changes_allowed is changes
            and oracle(c) is outcome
        ),
        settings=FIND,
    )
    assert oracle(found) is outcome


# --- teeth: deliberately wrong variants are caught ----------------------------------------


def _strict_always(value: int, basis: int, fraction: Fraction, *, strict: bool) -> bool:
    return value * fraction.den > fraction.num * basis  # `>` even for non-strict thresholds


def _without_abstentions(approve: int, reject: int, abstain: int) -> int:
    return approve + reject  # abstentions forgotten in the quorum


def _proposer_never_barred(
    electorate: Sequence[Member],
    proposer: str,
    votes: Mapping[str, VoteChoice],
    policy: Policy,
) -> tuple[int, int]:
    total = sum(m.weight for m in electorate)
    return sum(m.weight for m in electorate if m.principal not in votes), total


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("_meets", _strict_always),
        ("_participation", _without_abstentions),
        ("_weight_may_approve", _proposer_never_barred),
    ],
)
def test_the_oracle_catches_a_broken_tally(
    monkeypatch: pytest.MonkeyPatch, name: str, broken: object
) -> None:
    monkeypatch.setattr(tally_module, name, broken)
    counterexample = find(
        cases(),
        lambda c: not agrees(c),
        settings=FIND,
    )
    assert not agrees(counterexample)


def test_the_oracle_catches_a_tally_that_ignores_vote_changes() -> None:
    def frozen_votes(
        policy: Policy,
        electorate: Sequence[Member],
        proposer: str,
        votes: Mapping[str, VoteChoice],
    ) -> Verdict:
        return evaluate(
            dataclasses.replace(policy, vote_changes_allowed=False), electorate, proposer, votes
        )

    counterexample = find(
        cases(),
        lambda c: not agrees(c, frozen_votes),
        settings=FIND,
    )
    assert counterexample.policy.vote_changes_allowed


# --- named policies -----------------------------------------------------------------------


def _members(*specs: tuple[str, int] | tuple[str, int, tuple[str, ...]]) -> tuple[Member, ...]:
    out = []
    for spec in specs:
        roles = spec[2] if len(spec) == 3 else ()
        out.append(Member(principal=spec[0], weight=spec[1], roles=roles))
    return tuple(out)


THREE = _members(("ann", 1), ("bob", 1), ("cat", 1))


def _outcome(
    policy: Policy, votes: Mapping[str, VoteChoice], electorate: Sequence[Member] = THREE
) -> Outcome:
    return evaluate(policy, electorate, "zed", votes).outcome


def test_simple_majority_of_three_is_approved_by_two() -> None:
    policy = simple_majority()
    assert _outcome(policy, {"ann": APPROVE}) is Outcome.PENDING
    assert _outcome(policy, {"ann": APPROVE, "bob": APPROVE}) is Outcome.APPROVED
    assert _outcome(policy, {"ann": REJECT, "bob": REJECT}) is Outcome.REJECTED
    assert _outcome(policy, {"ann": APPROVE, "bob": ABSTAIN}) is Outcome.PENDING


def test_two_thirds_of_three() -> None:
    policy = supermajority(2, 3)
    assert _outcome(policy, {"ann": APPROVE, "bob": APPROVE}) is Outcome.APPROVED  # 2*3 >= 2*3
    assert _outcome(policy, {"ann": REJECT}) is Outcome.PENDING
    assert _outcome(policy, {"ann": REJECT, "bob": REJECT}) is Outcome.REJECTED
    assert _outcome(policy, {"ann": ABSTAIN, "bob": ABSTAIN}) is Outcome.REJECTED


def test_unanimity_is_rejected_by_one_reject_or_abstain() -> None:
    policy = unanimity()
    assert _outcome(policy, {"ann": REJECT}) is Outcome.REJECTED
    assert _outcome(policy, {"ann": ABSTAIN}) is Outcome.REJECTED
    assert _outcome(policy, {"ann": APPROVE, "bob": APPROVE}) is Outcome.PENDING
    all_approve = {"ann": APPROVE, "bob": APPROVE, "cat": APPROVE}
    assert _outcome(policy, all_approve) is Outcome.APPROVED


def test_weighted_threshold_counts_weight_not_heads() -> None:
    board = _members(("chair", 5), ("cfo", 3), ("a", 1), ("b", 1))
    policy = supermajority(1, 2)  # half of 10 weight
    assert _outcome(policy, {"chair": APPROVE}, board) is Outcome.APPROVED
    assert _outcome(policy, {"cfo": APPROVE, "a": APPROVE}, board) is Outcome.PENDING
    assert _outcome(policy, {"cfo": APPROVE, "a": APPROVE, "b": APPROVE}, board) is Outcome.APPROVED
    assert _outcome(policy, {"chair": REJECT, "a": REJECT}, board) is Outcome.REJECTED  # 4 < 5


def test_abstentions_count_toward_quorum_not_approval() -> None:
    four = (*THREE, Member(principal="dan"))
    policy = Policy(threshold=Fraction(num=1, den=4), quorum=Fraction(num=3, den=4))
    verdict = evaluate(policy, four, "zed", {"ann": APPROVE})
    assert verdict.outcome is Outcome.PENDING  # threshold met, quorum 1 of 3 not met
    assert verdict.tally.threshold_met
    assert not verdict.tally.quorum_met
    votes = {"ann": APPROVE, "bob": ABSTAIN, "cat": ABSTAIN}
    assert _outcome(policy, votes, four) is Outcome.APPROVED

    five = (*four, Member(principal="eve"))
    cast = Policy(threshold=Fraction(num=1, den=2), strict=True, basis=ApprovalBasis.CAST)
    votes = {"ann": APPROVE, "bob": APPROVE, "cat": REJECT, "dan": ABSTAIN, "eve": ABSTAIN}
    assert _outcome(cast, votes, five) is Outcome.APPROVED  # 2 of 3 cast > 1/2
    on_electorate = dataclasses.replace(cast, basis=ApprovalBasis.ELECTORATE)
    assert _outcome(on_electorate, votes, five) is Outcome.REJECTED  # 2 of 5 is not > 1/2


def test_cast_basis_waits_for_undecided_who_could_reject() -> None:
    cast = Policy(threshold=Fraction(num=2, den=3), basis=ApprovalBasis.CAST)
    assert _outcome(cast, {"ann": APPROVE}) is Outcome.PENDING  # 1 of 3 if both reject
    assert _outcome(cast, {"ann": APPROVE, "bob": APPROVE}) is Outcome.APPROVED  # 2 of 3
    assert _outcome(cast, {"ann": ABSTAIN, "bob": ABSTAIN, "cat": ABSTAIN}) is Outcome.REJECTED


def test_a_veto_role_rejects_at_once_and_must_be_heard_before_approval() -> None:
    team = _members(("ann", 1), ("bob", 1), ("sec", 1, ("security",)))
    policy = dataclasses.replace(simple_majority(), veto_roles=("security",))
    waiting = evaluate(policy, team, "ann", {"ann": APPROVE, "bob": APPROVE})
    assert waiting.outcome is Outcome.PENDING
    assert waiting.tally.veto_pending == ("sec",)
    vetoed = evaluate(policy, team, "ann", {"ann": APPROVE, "bob": APPROVE, "sec": REJECT})
    assert vetoed.outcome is Outcome.REJECTED
    assert vetoed.tally.vetoed_by == ("sec",)
    assert vetoed.reason == "rejected: vetoed by sec"
    assert _outcome(policy, {"ann": APPROVE, "sec": ABSTAIN}, team) is Outcome.PENDING
    assert _outcome(policy, {"ann": APPROVE, "bob": APPROVE, "sec": ABSTAIN}, team) is (
        Outcome.APPROVED
    )


def test_the_proposer_may_not_approve_their_own_proposal() -> None:
    policy = dataclasses.replace(supermajority(2, 3), proposer_may_approve=False)
    with pytest.raises(ValueError, match="may not approve"):
        evaluate(policy, THREE, "ann", {"ann": APPROVE})
    # ann can add nothing, so bob and cat must both approve: one reject settles it.
    assert evaluate(policy, THREE, "ann", {"bob": REJECT}).outcome is Outcome.REJECTED
    assert evaluate(policy, THREE, "ann", {"bob": APPROVE, "cat": APPROVE}).outcome is (
        Outcome.APPROVED
    )
    barred_unanimity = dataclasses.replace(unanimity(), proposer_may_approve=False)
    impossible = evaluate(barred_unanimity, THREE, "ann", {})
    assert impossible.outcome is Outcome.REJECTED
    assert (
        impossible.reason
        == "rejected: at most 2 of 3 weight can approve, not >= 1/1 of 3 (needs 3)"
    )


def test_with_vote_changes_nothing_is_approved_until_everyone_has_voted() -> None:
    policy = dataclasses.replace(simple_majority(), vote_changes_allowed=True)
    early = evaluate(policy, THREE, "zed", {"ann": APPROVE, "bob": APPROVE})
    assert early.outcome is Outcome.PENDING
    assert early.reason.endswith("; votes may change until every member has voted")
    assert _outcome(policy, {"ann": REJECT, "bob": REJECT}) is Outcome.PENDING
    votes = {"ann": APPROVE, "bob": APPROVE, "cat": REJECT}
    assert _outcome(policy, votes) is Outcome.APPROVED
    assert _outcome(policy, {**votes, "ann": REJECT}) is Outcome.REJECTED


def test_programming_errors_raise() -> None:
    policy = simple_majority()
    with pytest.raises(ValueError, match="not in the electorate"):
        evaluate(policy, THREE, "ann", {"mallory": APPROVE})
    with pytest.raises(ValueError, match="empty"):
        evaluate(policy, (), "ann", {})
    with pytest.raises(ValueError, match="twice"):
        evaluate(policy, (*THREE, Member(principal="ann")), "ann", {})
    with pytest.raises(ValueError, match="VoteChoice"):
        evaluate(policy, THREE, "ann", {"ann": "approve"})  # type: ignore[dict-item]


# --- explanation text ---------------------------------------------------------------------

COUNCIL = _members(("alice", 3, ("owner",)), ("bob", 2), ("carol", 2), ("dave", 1), ("erin", 1))
COUNCIL_POLICY = Policy(
    threshold=Fraction(num=2, den=3), quorum=Fraction(num=1, den=2), veto_roles=("owner",)
)


def test_reason_and_lines_of_an_approval_are_stable() -> None:
    votes = {"alice": APPROVE, "bob": APPROVE, "carol": APPROVE, "dave": REJECT, "erin": ABSTAIN}
    verdict = evaluate(COUNCIL_POLICY, COUNCIL, "bob", votes)
    assert verdict.outcome is Outcome.APPROVED
    assert verdict.reason == "approved: 7 of 9 weight approve >= 2/3 of 9 (needs 6); quorum 9 >= 5"
    assert verdict.lines() == (
        (
            "policy: approve >= 2/3 of the electorate weight; quorum 1/2 of the electorate "
            "weight; veto roles: owner; proposer may approve; vote changes not allowed"
        ),
        "weights: approve 7, reject 1, abstain 1, undecided 0, total 9",
        "quorum: 9*2 >= 1*9 met (participation 9, needs 5)",
        "threshold: 7*3 >= 2*9 met (approve 7, needs 6)",
        "veto: none",
        "outcome: approved: 7 of 9 weight approve >= 2/3 of 9 (needs 6); quorum 9 >= 5",
    )


def test_reason_of_a_pending_vote_names_what_is_missing() -> None:
    verdict = evaluate(COUNCIL_POLICY, COUNCIL, "bob", {"bob": APPROVE, "carol": APPROVE})
    assert verdict.outcome is Outcome.PENDING
    assert verdict.reason == (
        "pending: 4 of 9 weight approve >= 2/3 of 9 (needs 6); quorum 4 of 5; "
        "5 weight undecided; could still be vetoed by alice"
    )
    assert verdict.lines()[4] == "veto: none yet; could still veto: alice"
