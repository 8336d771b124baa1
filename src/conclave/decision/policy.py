"""The tally: decide a proposal's outcome from its policy, electorate and votes, and say why.

Pure (DESIGN.md section 3): integers only, every comparison cross-multiplied (never divided),
the result independent of the electorate's order and of the votes' mapping order.

Rules (`a`, `r`, `b` are the approve, reject and abstain weights of the votes cast):

1. Weights. `total` is the summed weight of the electorate; `undecided` is the weight of the
   members who have not voted. Participation is `a + r + b`.
2. Quorum. Met when `participation * quorum.den >= quorum.num * total`.
3. Threshold. The basis is `total` (ELECTORATE) or `a + r` (CAST: abstentions count for the
   quorum only). Met when `a * threshold.den >= threshold.num * basis` (`>` when strict); CAST
   also needs `a > 0`, so abstentions alone never approve.
4. Veto. A reject by a member holding any of `policy.veto_roles` vetoes the proposal.
5. A set of votes (complete or not) *approves* when the quorum and the threshold are met and
   there is no veto.
6. Settlement. A *future* of the current votes is any way the members who have not voted may
   still vote or stay silent: approve, reject, abstain or no vote each; a proposer with
   `proposer_may_approve=False` cannot approve (the state machine refuses it, and `evaluate`
   raises ValueError if such an approval is passed in). The outcome is APPROVED when every
   future approves (the present is one: nothing is approved before the quorum is met),
   REJECTED when no future does, PENDING otherwise. Closed form, no enumeration:
   - APPROVED iff the present votes approve, no undecided member holds a veto role, and the
     threshold still holds with every undecided weight counted as a reject (this only matters
     for CAST: under ELECTORATE an undecided member cannot lower the approve weight).
   - REJECTED iff there is a veto, or the threshold fails even when every undecided member who
     may approve does (a barred proposer abstains). That best future has full participation,
     so the quorum alone never forces a rejection: the deadline does (the caller expires it).
7. Vote changes. With `vote_changes_allowed`, a cast vote may change until the outcome, so
   futures also let every member who voted switch to any vote they may cast. Everyone could
   switch to reject, so approval can never be forced; the window therefore closes when every
   member has voted: then the votes as cast decide (APPROVED or REJECTED, as in rule 6 with
   nobody undecided). Before that the outcome is REJECTED only on a veto (a veto is final, not
   taken back by a later change) or when no vote of all members could approve (e.g. unanimity
   with a barred proposer who is a member); otherwise PENDING.
8. EXPIRED is never returned: at the deadline the caller marks a pending proposal expired.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conclave.decision.model import (
    ApprovalBasis,
    Fraction,
    Member,
    Outcome,
    Policy,
    VoteChoice,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tally:
    """The weights behind a verdict, for the present votes.

    - `quorum_weight_needed`: the least participation meeting the quorum,
      `ceil(quorum.num * total / quorum.den)`.
    - `basis_weight`: what approvals are measured against now: `total` or `approve + reject`.
    - `approval_needed`: the least approve weight reaching the threshold of `basis_weight`:
      `ceil(num * basis / den)`, or `floor(num * basis / den) + 1` when strict (at least 1 for
      CAST).
    - `vetoed_by`: members whose reject carried a veto role; `veto_pending`: members holding a
      veto role who have not voted (they could still veto). Both sorted.
    """

    approve_weight: int
    reject_weight: int
    abstain_weight: int
    undecided_weight: int
    total_weight: int
    vetoed_by: tuple[str, ...]
    veto_pending: tuple[str, ...]
    quorum_weight_needed: int
    basis_weight: int
    approval_needed: int

    @property
    def participation_weight(self) -> int:
        return _participation(self.approve_weight, self.reject_weight, self.abstain_weight)

    @property
    def quorum_met(self) -> bool:
        return self.participation_weight >= self.quorum_weight_needed

    @property
    def threshold_met(self) -> bool:
        return self.approve_weight >= self.approval_needed


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The outcome (PENDING, APPROVED or REJECTED), its numbers and a one-line reason."""

    outcome: Outcome
    tally: Tally
    reason: str
    policy: Policy

    def lines(self) -> tuple[str, ...]:
        """A multi-line explanation: the policy, each number and why it is (not) settled."""
        policy, tally = self.policy, self.tally
        quorum, threshold = policy.quorum, policy.threshold
        cast_rule = " and approve > 0" if policy.basis is ApprovalBasis.CAST else ""
        weights = (
            f"weights: approve {tally.approve_weight}, reject {tally.reject_weight}, "
            f"abstain {tally.abstain_weight}, undecided {tally.undecided_weight}, "
            f"total {tally.total_weight}"
        )
        quorum_line = (
            f"quorum: {tally.participation_weight}*{quorum.den} >= "
            f"{quorum.num}*{tally.total_weight} {_met(tally.quorum_met)} "
            f"(participation {tally.participation_weight}, needs {tally.quorum_weight_needed})"
        )
        threshold_line = (
            f"threshold: {tally.approve_weight}*{threshold.den} {_op(policy)} "
            f"{threshold.num}*{tally.basis_weight}{cast_rule} {_met(tally.threshold_met)} "
            f"(approve {tally.approve_weight}, needs {tally.approval_needed})"
        )
        return (
            f"policy: {_describe(policy)}",
            weights,
            quorum_line,
            threshold_line,
            f"veto: {_describe_veto(policy, tally)}",
            f"outcome: {self.reason}",
        )


def evaluate(
    policy: Policy,
    electorate: Sequence[Member],
    proposer: str,
    votes: Mapping[str, VoteChoice],
) -> Verdict:
    """Decide the outcome as soon as it is settled (module rules 6 and 7).

    Raises ValueError for a programming error the state machine must have refused earlier:
    an empty electorate, a principal listed twice, a vote by a non-member, a vote that is not
    a `VoteChoice`, or the proposer's approval under `proposer_may_approve=False`.
    """
    _check(policy, electorate, proposer, votes)
    tally = _tally(policy, electorate, votes)
    outcome, reason = _settle(
        policy, tally, _weight_may_approve(electorate, proposer, votes, policy)
    )
    return Verdict(outcome=outcome, tally=tally, reason=reason, policy=policy)


def _settle(policy: Policy, tally: Tally, may_approve: tuple[int, int]) -> tuple[Outcome, str]:
    """Rules 6 and 7 in closed form; `may_approve` is (undecided, all) weight that may approve."""
    if tally.vetoed_by:
        return Outcome.REJECTED, f"rejected: vetoed by {', '.join(tally.vetoed_by)}"
    undecided_may, all_may = may_approve
    total = tally.total_weight
    if policy.vote_changes_allowed and tally.undecided_weight > 0:
        # Every cast vote may still change, so only an impossibility settles: the best vote of
        # all members is everyone who may approve approving, nobody rejecting.
        if not _threshold(policy, all_may, 0, total):
            return Outcome.REJECTED, _unreachable(policy, all_may, 0, total)
        return Outcome.PENDING, _pending(policy, tally)

    approve, reject, undecided = tally.approve_weight, tally.reject_weight, tally.undecided_weight
    # Worst future: every undecided member rejects (vetoing if they can) for the threshold and
    # stays silent for the quorum, whose worst case is therefore the present participation.
    worst_holds = _threshold(policy, approve, reject + undecided, total)
    if tally.quorum_met and not tally.veto_pending and worst_holds:
        return Outcome.APPROVED, _approved(policy, tally)
    # Best future: every undecided member who may approve does; it has full participation.
    best = approve + undecided_may
    if not _threshold(policy, best, reject, total):
        return Outcome.REJECTED, _unreachable(policy, best, reject, total)
    return Outcome.PENDING, _pending(policy, tally)


# --- arithmetic ---------------------------------------------------------------------------


def _participation(approve: int, reject: int, abstain: int) -> int:
    # Abstentions take part: they count toward the quorum, never toward approval.
    return approve + reject + abstain


def _meets(value: int, basis: int, fraction: Fraction, *, strict: bool) -> bool:
    """`value / basis` reaches `fraction`: `value * den >= num * basis` (`>` when strict)."""
    if strict:
        return value * fraction.den > fraction.num * basis
    return value * fraction.den >= fraction.num * basis


def _least_meeting(basis: int, fraction: Fraction, *, strict: bool) -> int:
    """The least integer `value` for which `_meets(value, basis, fraction)` holds."""
    if strict:
        return fraction.num * basis // fraction.den + 1
    return -(-fraction.num * basis // fraction.den)


def _basis(policy: Policy, approve: int, reject: int, total: int) -> int:
    return total if policy.basis is ApprovalBasis.ELECTORATE else approve + reject


def _threshold(policy: Policy, approve: int, reject: int, total: int) -> bool:
    """Rule 3 for these weights (`reject` may include undecided weight counted as rejects)."""
    if policy.basis is ApprovalBasis.CAST and approve == 0:
        return False  # abstentions alone never approve
    basis = _basis(policy, approve, reject, total)
    return _meets(approve, basis, policy.threshold, strict=policy.strict)


def _approval_needed(policy: Policy, basis: int) -> int:
    needed = _least_meeting(basis, policy.threshold, strict=policy.strict)
    return max(needed, 1) if policy.basis is ApprovalBasis.CAST else needed


# --- inputs -------------------------------------------------------------------------------


def _check(
    policy: Policy,
    electorate: Sequence[Member],
    proposer: str,
    votes: Mapping[str, VoteChoice],
) -> None:
    if not electorate:
        raise ValueError("the electorate is empty")
    principals = {member.principal for member in electorate}  # membership tests only
    if len(principals) != len(electorate):
        raise ValueError("a principal appears twice in the electorate")
    for principal in sorted(votes):
        if principal not in principals:
            raise ValueError(f"vote by {principal!r}, who is not in the electorate")
        if not isinstance(votes[principal], VoteChoice):
            raise ValueError(f"vote by {principal!r} is not a VoteChoice")
    if not policy.proposer_may_approve and votes.get(proposer) is VoteChoice.APPROVE:
        raise ValueError(f"the proposer {proposer!r} may not approve their own proposal")


def _holds_veto(policy: Policy, member: Member) -> bool:
    return any(role in policy.veto_roles for role in member.roles)


def _tally(policy: Policy, electorate: Sequence[Member], votes: Mapping[str, VoteChoice]) -> Tally:
    weights = dict.fromkeys(VoteChoice, 0)
    undecided = 0
    vetoed_by: list[str] = []
    veto_pending: list[str] = []
    for member in electorate:
        choice = votes.get(member.principal)
        if choice is None:
            undecided += member.weight
            if _holds_veto(policy, member):
                veto_pending.append(member.principal)
            continue
        weights[choice] += member.weight
        if choice is VoteChoice.REJECT and _holds_veto(policy, member):
            vetoed_by.append(member.principal)
    approve, reject = weights[VoteChoice.APPROVE], weights[VoteChoice.REJECT]
    total = sum(member.weight for member in electorate)
    basis = _basis(policy, approve, reject, total)
    return Tally(
        approve_weight=approve,
        reject_weight=reject,
        abstain_weight=weights[VoteChoice.ABSTAIN],
        undecided_weight=undecided,
        total_weight=total,
        vetoed_by=tuple(sorted(vetoed_by)),
        veto_pending=tuple(sorted(veto_pending)),
        quorum_weight_needed=_least_meeting(total, policy.quorum, strict=False),
        basis_weight=basis,
        approval_needed=_approval_needed(policy, basis),
    )


def _weight_may_approve(
    electorate: Sequence[Member],
    proposer: str,
    votes: Mapping[str, VoteChoice],
    policy: Policy,
) -> tuple[int, int]:
    """The weight that may still approve: (of the undecided, of all members if votes change).

    Everyone may approve except a proposer under `proposer_may_approve=False`.
    """
    undecided = everyone = 0
    for member in electorate:
        if member.principal == proposer and not policy.proposer_may_approve:
            continue
        everyone += member.weight
        if member.principal not in votes:
            undecided += member.weight
    return undecided, everyone


# --- explanations -------------------------------------------------------------------------


def _op(policy: Policy) -> str:
    return ">" if policy.strict else ">="


def _met(met: bool) -> str:
    return "met" if met else "not met"


def _describe(policy: Policy) -> str:
    threshold, quorum = policy.threshold, policy.quorum
    basis = (
        "the electorate weight"
        if policy.basis is ApprovalBasis.ELECTORATE
        else "the cast (approve + reject) weight"
    )
    veto = ", ".join(policy.veto_roles) if policy.veto_roles else "none"
    proposer = "may" if policy.proposer_may_approve else "may not"
    changes = "allowed" if policy.vote_changes_allowed else "not allowed"
    return (
        f"approve {_op(policy)} {threshold.num}/{threshold.den} of {basis}; "
        f"quorum {quorum.num}/{quorum.den} of the electorate weight; veto roles: {veto}; "
        f"proposer {proposer} approve; vote changes {changes}"
    )


def _describe_veto(policy: Policy, tally: Tally) -> str:
    if not policy.veto_roles:
        return "no veto roles"
    if tally.vetoed_by:
        return f"vetoed by {', '.join(tally.vetoed_by)}"
    if tally.veto_pending:
        return f"none yet; could still veto: {', '.join(tally.veto_pending)}"
    return "none"


def _share(policy: Policy, approve: int, basis: int) -> str:
    """E.g. `7 of 9 weight approve >= 2/3 of 9 (needs 6)`."""
    cast = " cast" if policy.basis is ApprovalBasis.CAST else ""
    threshold = policy.threshold
    return (
        f"{approve} of {basis}{cast} weight approve {_op(policy)} "
        f"{threshold.num}/{threshold.den} of {basis} (needs {_approval_needed(policy, basis)})"
    )


def _approved(policy: Policy, tally: Tally) -> str:
    undecided = tally.undecided_weight
    # Under CAST the decisive case counts every undecided weight as a reject.
    basis = _basis(
        policy, tally.approve_weight, tally.reject_weight + undecided, tally.total_weight
    )
    text = f"approved: {_share(policy, tally.approve_weight, basis)}"
    if undecided and policy.basis is ApprovalBasis.CAST:
        text += f" even if the {undecided} undecided weight rejects"
    text += f"; quorum {tally.participation_weight} >= {tally.quorum_weight_needed}"
    if undecided:
        text += f"; settled with {undecided} weight undecided"
    return text


def _unreachable(policy: Policy, best: int, reject: int, total: int) -> str:
    basis = _basis(policy, best, reject, total)
    cast = " cast" if policy.basis is ApprovalBasis.CAST else ""
    threshold = policy.threshold
    return (
        f"rejected: at most {best} of {basis}{cast} weight can approve, not "
        f"{_op(policy)} {threshold.num}/{threshold.den} of {basis} "
        f"(needs {_approval_needed(policy, basis)})"
    )


def _pending(policy: Policy, tally: Tally) -> str:
    text = (
        f"pending: {_share(policy, tally.approve_weight, tally.basis_weight)}; "
        f"quorum {tally.participation_weight} of {tally.quorum_weight_needed}; "
        f"{tally.undecided_weight} weight undecided"
    )
    if tally.veto_pending:
        text += f"; could still be vetoed by {', '.join(tally.veto_pending)}"
    if policy.vote_changes_allowed:
        text += "; votes may change until every member has voted"
    return text


__all__ = ["Tally", "Verdict", "evaluate"]
