"""Snapshots of the decision state machine: its whole state as canonical JSON.

Rules:
- The same state gives the same bytes (sorted keys, compact separators, lists in id order), so
  replicas can compare snapshots byte for byte.
- `restore_machine` parses and validates the whole image before replacing anything: a bad
  image raises `DecisionDecodeError` and leaves the machine untouched.
- The audit trail is part of the state: an `explain` after a restart or a snapshot install tells
  the same story.
"""

import json
from typing import Any, Final

from conclave.decision.commands import (
    DecisionDecodeError,
    member_from_obj,
    policy_from_obj,
    policy_to_obj,
    rule_from_obj,
    rule_to_obj,
)
from conclave.decision.machine import (
    AuditEvent,
    ConflictRecord,
    DecisionMachine,
    KindConfig,
    ProposalRecord,
    Status,
    VoteRecord,
)
from conclave.decision.model import (
    Conflict,
    ConflictType,
    Proposal,
    Scope,
    Severity,
    VoteChoice,
    Window,
)
from conclave.decision.resolution import Resolution

SNAPSHOT_VERSION: Final = 1


def _proposal_obj(p: Proposal) -> dict[str, Any]:
    return {
        "id": p.id,
        "proposer": p.proposer,
        "kind": p.kind,
        "params": p.params,
        "reads": list(p.scope.reads),
        "writes": list(p.scope.writes),
        "changes": [[k, v] for k, v in p.changes],
        "depends_on": list(p.depends_on),
        "priority": p.priority,
        "window": None if p.window is None else [p.window.start_ms, p.window.end_ms],
        "deadline_ms": p.deadline_ms,
        "created_at_ms": p.created_at_ms,
        "index": p.index,
    }


def _record_obj(r: ProposalRecord) -> dict[str, Any]:
    return {
        "proposal": _proposal_obj(r.proposal),
        "rollback_of": r.rollback_of,
        "status": r.status.value,
        "votes": [
            [v.voter, v.choice.value, v.justification, v.index, v.at_ms]
            for _, v in sorted(r.votes.items())
        ],
        "vote_changes": r.vote_changes,
        "escalated": r.escalated,
        "verdict": r.verdict,
        "decided_index": r.decided_index,
        "executed_index": r.executed_index,
        "conflicts": list(r.conflicts),
        "rollback": [[k, v] for k, v in r.rollback],
    }


def _resolution_obj(r: Resolution | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "strategy": r.strategy,
        "conflict_id": r.conflict_id,
        "winners": list(r.winners),
        "losers": list(r.losers),
        "escalations": list(r.escalations),
        "merged": r.merged,
        "explanation": r.explanation,
    }


def _conflict_obj(c: ConflictRecord) -> dict[str, Any]:
    return {
        "id": c.conflict.id,
        "type": c.conflict.type.value,
        "severity": c.conflict.severity.value,
        "proposals": list(c.conflict.proposals),
        "reason": c.conflict.reason,
        "detected_index": c.detected_index,
        "resolution": _resolution_obj(c.resolution),
    }


def encode_machine(machine: DecisionMachine) -> bytes:
    """The machine's whole state as canonical JSON bytes."""
    obj = {
        "v": SNAPSHOT_VERSION,
        "now_ms": machine.now_ms,
        "refusals": machine.refusals,
        "kinds": [
            {
                "kind": kind,
                "policy": policy_to_obj(c.policy),
                "electorate": [
                    {"principal": m.principal, "weight": m.weight, "roles": list(m.roles)}
                    for m in c.electorate
                ],
                "strategy": c.strategy,
                "rules": [rule_to_obj(rule) for rule in c.rules],
            }
            for kind, c in sorted(machine.kinds.items())
        ],
        "proposals": [_record_obj(r) for _, r in sorted(machine.proposals.items())],
        "conflicts": [_conflict_obj(c) for _, c in sorted(machine.conflicts.items())],
        "audit": [
            [e.seq, e.index, e.at_ms, e.type, e.proposal_id, e.detail] for e in machine.audit
        ],
    }
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- decoding (trusted shape: written by this module, but still checked) ------------------------


def _get(obj: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(obj, dict) or name not in obj:
        raise DecisionDecodeError(f"snapshot: missing {name}")
    value = obj[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise DecisionDecodeError(f"snapshot: {name} has the wrong type")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _proposal(obj: Any) -> Proposal:
    window = _get(obj, "window", (list, type(None)))
    return Proposal(
        id=_get(obj, "id", str),
        proposer=_get(obj, "proposer", str),
        kind=_get(obj, "kind", str),
        params=_get(obj, "params", str),
        scope=Scope(reads=tuple(_get(obj, "reads", list)), writes=tuple(_get(obj, "writes", list))),
        changes=tuple((k, v) for k, v in _get(obj, "changes", list)),
        depends_on=tuple(_get(obj, "depends_on", list)),
        priority=_get(obj, "priority", int),
        window=None if window is None else Window(start_ms=window[0], end_ms=window[1]),
        deadline_ms=_get(obj, "deadline_ms", int),
        created_at_ms=_get(obj, "created_at_ms", int),
        index=_get(obj, "index", int),
    )


def _record(obj: Any) -> ProposalRecord:
    votes = {
        v[0]: VoteRecord(
            voter=v[0], choice=VoteChoice(v[1]), justification=v[2], index=v[3], at_ms=v[4]
        )
        for v in _get(obj, "votes", list)
    }
    return ProposalRecord(
        proposal=_proposal(_get(obj, "proposal", dict)),
        rollback_of=_get(obj, "rollback_of", (str, type(None))),
        status=Status(_get(obj, "status", str)),
        votes=votes,
        vote_changes=_get(obj, "vote_changes", int),
        escalated=_get(obj, "escalated", bool),
        verdict=_get(obj, "verdict", str),
        decided_index=_get(obj, "decided_index", int),
        executed_index=_get(obj, "executed_index", int),
        conflicts=list(_get(obj, "conflicts", list)),
        rollback=tuple((k, v) for k, v in _get(obj, "rollback", list)),
    )


def _resolution(obj: Any) -> Resolution | None:
    if obj is None:
        return None
    return Resolution(
        strategy=_get(obj, "strategy", str),
        conflict_id=_get(obj, "conflict_id", str),
        winners=tuple(_get(obj, "winners", list)),
        losers=tuple(_get(obj, "losers", list)),
        escalations=tuple(_get(obj, "escalations", list)),
        merged=_get(obj, "merged", bool),
        explanation=_get(obj, "explanation", str),
    )


def _conflict(obj: Any) -> ConflictRecord:
    conflict = Conflict(
        id=_get(obj, "id", str),
        type=ConflictType(_get(obj, "type", str)),
        severity=Severity(_get(obj, "severity", str)),
        proposals=tuple(_get(obj, "proposals", list)),
        reason=_get(obj, "reason", str),
    )
    return ConflictRecord(
        conflict=conflict,
        detected_index=_get(obj, "detected_index", int),
        resolution=_resolution(obj.get("resolution")),
    )


def _kind(obj: Any) -> tuple[str, KindConfig]:
    config = KindConfig(
        policy=policy_from_obj(_get(obj, "policy", dict)),
        electorate=tuple(member_from_obj(m) for m in _get(obj, "electorate", list)),
        strategy=_get(obj, "strategy", str),
        rules=tuple(rule_from_obj(r) for r in _get(obj, "rules", list)),
    )
    return _get(obj, "kind", str), config


def restore_machine(machine: DecisionMachine, data: bytes) -> None:
    """Replace `machine`'s state with the image `data` (all or nothing)."""
    try:
        obj = json.loads(data)
        if _get(obj, "v", int) != SNAPSHOT_VERSION:
            raise DecisionDecodeError("snapshot: unsupported version")
        kinds = dict(_kind(k) for k in _get(obj, "kinds", list))
        records = [_record(r) for r in _get(obj, "proposals", list)]
        conflicts = [_conflict(c) for c in _get(obj, "conflicts", list)]
        audit = [AuditEvent(*row) for row in _get(obj, "audit", list)]
        now_ms = _get(obj, "now_ms", int)
        refusals = _get(obj, "refusals", int)
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise DecisionDecodeError(f"snapshot: {exc}") from None
    machine.kinds = kinds
    machine.proposals = {r.proposal.id: r for r in records}
    machine.conflicts = {c.conflict.id: c for c in conflicts}
    machine.audit = audit
    machine.now_ms = now_ms
    machine.refusals = refusals


__all__ = ["encode_machine", "restore_machine"]
