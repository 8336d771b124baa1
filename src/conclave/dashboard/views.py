"""JSON views of one node's applied decision state for the dashboard (no I/O).

The dashboard reads the serving node's own applied state (a serializable read): it keeps
answering while there is no leader, and a follower's view trails the leader's by at most its
apply lag. Every open proposal comes with its votes and its tally under the kind's effective
policy (as `conclave decisions explain` computes it); recent outcomes are the most recently
decided proposals first.
"""

from typing import Any, Final

from conclave.decision.explain import detail, summary
from conclave.decision.machine import ConflictRecord, DecisionMachine, ProposalRecord, Status
from conclave.decision.policy import evaluate

RECENT_OUTCOMES_MAX: Final = 20
CONFLICTS_MAX: Final = 50


def tally_json(machine: DecisionMachine, record: ProposalRecord) -> dict[str, Any] | None:
    """The weights behind `record`'s verdict now (None if its kind is unknown here)."""
    config = machine.kinds.get(record.proposal.kind)
    if config is None:
        return None
    votes = {voter: vote.choice for voter, vote in sorted(record.votes.items())}
    try:
        verdict = evaluate(
            machine.effective_policy(record), config.electorate, record.proposal.proposer, votes
        )
    except ValueError as exc:
        return {"error": str(exc)}
    tally = verdict.tally
    return {
        "approve": tally.approve_weight,
        "reject": tally.reject_weight,
        "abstain": tally.abstain_weight,
        "undecided": tally.undecided_weight,
        "total": tally.total_weight,
        "approval_needed": tally.approval_needed,
        "quorum_needed": tally.quorum_weight_needed,
        "quorum_met": tally.quorum_met,
        "vetoed_by": list(tally.vetoed_by),
        "outcome": verdict.outcome.value,
        "reason": verdict.reason,
        "electorate": [m.principal for m in config.electorate],
    }


def conflict_json(cid: str, found: ConflictRecord) -> dict[str, Any]:
    """A conflict and its resolution, as `GET /v1/conflicts` shows it."""
    c, r = found.conflict, found.resolution
    return {
        "id": cid,
        "type": c.type.value,
        "severity": c.severity.value,
        "proposals": list(c.proposals),
        "reason": c.reason,
        "detected_index": found.detected_index,
        "resolution": None
        if r is None
        else {
            "strategy": r.strategy,
            "winners": list(r.winners),
            "losers": list(r.losers),
            "escalations": list(r.escalations),
            "merged": r.merged,
            "explanation": r.explanation,
        },
    }


def decisions_json(machine: DecisionMachine) -> dict[str, Any]:
    """Open proposals (with votes and tally), recent outcomes, conflicts and counts."""
    records = sorted(machine.proposals.values(), key=lambda r: r.proposal.index)
    open_items = []
    for record in records:
        if record.status is Status.OPEN:
            item = detail(machine, record)
            item["tally"] = tally_json(machine, record)
            del item["events"]
            open_items.append(item)
    decided = [r for r in records if r.status is not Status.OPEN]
    decided.sort(key=lambda r: r.decided_index or r.proposal.index, reverse=True)
    recent = []
    for record in decided[:RECENT_OUTCOMES_MAX]:
        item = summary(record)
        item["verdict"] = record.verdict
        item["decided_index"] = record.decided_index
        item["executed_index"] = record.executed_index
        recent.append(item)
    counts: dict[str, int] = {status.value: 0 for status in Status}
    for record in records:
        counts[record.status.value] += 1
    conflicts = [conflict_json(cid, c) for cid, c in sorted(machine.conflicts.items())]
    conflicts.sort(key=lambda c: c["detected_index"], reverse=True)
    return {
        "open": open_items,
        "recent": recent,
        "conflicts": conflicts[:CONFLICTS_MAX],
        "conflicts_total": len(conflicts),
        "counts": counts,
        "kinds": sorted(machine.kinds),
    }


__all__ = ["CONFLICTS_MAX", "RECENT_OUTCOMES_MAX", "conflict_json", "decisions_json", "tally_json"]
