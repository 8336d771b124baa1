"""Why a proposal ended the way it did: the policy, each vote, the arithmetic, the conflicts and
their resolutions, and what was executed — as data and as readable lines.

Rules: pure and deterministic (reads only the machine's state); the same state explains the
same way on every replica. `summary` is the short form used by list endpoints.
"""

from typing import Any

from conclave.decision.machine import DecisionMachine, ProposalRecord
from conclave.decision.policy import evaluate


def summary(record: ProposalRecord) -> dict[str, Any]:
    p = record.proposal
    return {
        "id": p.id,
        "kind": p.kind,
        "proposer": p.proposer,
        "status": record.status.value,
        "priority": p.priority,
        "created_at_ms": p.created_at_ms,
        "deadline_ms": p.deadline_ms,
        "index": p.index,
        "votes": len(record.votes),
        "conflicts": list(record.conflicts),
        "escalated": record.escalated,
        "rollback_of": record.rollback_of,
    }


def detail(machine: DecisionMachine, record: ProposalRecord) -> dict[str, Any]:
    p = record.proposal
    out = summary(record)
    out.update(
        {
            "params": p.params,
            "reads": list(p.scope.reads),
            "writes": list(p.scope.writes),
            "changes": dict(p.changes),
            "depends_on": list(p.depends_on),
            "window": None if p.window is None else [p.window.start_ms, p.window.end_ms],
            "verdict": record.verdict,
            "decided_index": record.decided_index,
            "executed_index": record.executed_index,
            "vote_list": [
                {
                    "voter": v.voter,
                    "choice": v.choice.value,
                    "justification": v.justification,
                    "index": v.index,
                    "at_ms": v.at_ms,
                }
                for _, v in sorted(record.votes.items(), key=lambda item: item[1].index)
            ],
            "rollback_record": dict(record.rollback),
            "events": [
                {
                    "seq": e.seq,
                    "index": e.index,
                    "at_ms": e.at_ms,
                    "type": e.type,
                    "detail": e.detail,
                }
                for e in machine.events_for(p.id)
            ],
        }
    )
    return out


def explain_lines(machine: DecisionMachine, record: ProposalRecord) -> list[str]:
    """The story of one proposal, one fact per line."""
    p = record.proposal
    config = machine.kinds[p.kind]
    lines = [
        (
            f"{p.id}: {p.kind} proposed by {p.proposer} at log index {p.index} "
            f"(t={p.created_at_ms} ms, deadline {p.deadline_ms} ms); status {record.status.value}"
        ),
    ]
    if record.rollback_of is not None:
        lines.append(f"it proposes to roll back {record.rollback_of}")
    members = ", ".join(
        f"{m.principal} (weight {m.weight}{', roles ' + '/'.join(m.roles) if m.roles else ''})"
        for m in config.electorate
    )
    lines.append(f"electorate: {members}")
    if record.escalated:
        lines.append("escalated by a conflict: unanimity is required")
    lines.append("votes:")
    for _, vote in sorted(record.votes.items(), key=lambda item: item[1].index):
        why = f" — {vote.justification}" if vote.justification else ""
        lines.append(f"  {vote.voter}: {vote.choice.value} at index {vote.index}{why}")
    if not record.votes:
        lines.append("  (none)")
    votes = {voter: vote.choice for voter, vote in sorted(record.votes.items())}
    verdict = evaluate(machine.effective_policy(record), config.electorate, p.proposer, votes)
    lines.append("arithmetic:")
    lines.extend(f"  {line}" for line in verdict.lines())
    lines.extend(_conflict_lines(machine, record))
    lines.extend(_outcome_lines(machine, record))
    return lines


def _conflict_lines(machine: DecisionMachine, record: ProposalRecord) -> list[str]:
    if not record.conflicts:
        return ["conflicts: none"]
    out = ["conflicts:"]
    for cid in record.conflicts:
        found = machine.conflicts.get(cid)
        if found is None:
            continue
        c = found.conflict
        out.append(f"  {c.id} ({c.type.value}, {c.severity.value}): {c.reason}")
        r = found.resolution
        if r is None:
            out.append("    not resolved (no decision has needed it yet)")
        else:
            out.append(
                f"    resolved by {r.strategy}: winners {list(r.winners)}, losers {list(r.losers)}"
                f", escalated {list(r.escalations)}{', merged' if r.merged else ''}"
            )
            out.append(f"    {r.explanation}")
    return out


def _outcome_lines(machine: DecisionMachine, record: ProposalRecord) -> list[str]:
    out = ["history:"]
    for event in machine.events_for(record.proposal.id):
        out.append(f"  [{event.index}] {event.type}: {event.detail}")
    if record.executed_index:
        changes = ", ".join(f"{k}={v!r}" for k, v in record.proposal.changes) or "(rollback)"
        out.append(f"executed at log index {record.executed_index}: {changes}")
        previous = ", ".join(f"{k}={v!r}" for k, v in record.rollback) or "nothing"
        out.append(f"rollback record (previous values): {previous}")
    return out


__all__ = ["detail", "explain_lines", "summary"]
