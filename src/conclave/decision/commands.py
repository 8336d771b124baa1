"""Commands of the decision state machine and their canonical JSON form.

Rules:
- Every command is a frozen, keyword-only dataclass with a stable `TAG`; tags are part of the
  log format: never rename one.
- A command travels in a `Stamped` envelope: `at_ms` is the leader's wall-clock time when it
  proposed the command (DESIGN.md section 3 rule 2). The machine never reads a clock; it keeps
  `now_ms = max(now_ms, at_ms)` so time never goes back when leaders change.
- Encoding is canonical JSON (sorted keys, compact, UTF-8); decoding is strict (exact fields,
  exact types, known tags) and raises `DecisionDecodeError`, a remote-input error: replicated
  apply turns it into a refusal with the same message on every replica.
- Sizes are bounded here (`*_MAX`) so a hostile entry cannot make apply slow.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from conclave.core.errors import RemoteInputError
from conclave.decision.conflicts import (
    AllowedValues,
    JsonSchemaRule,
    MaxKeys,
    PolicyRule,
    ValueLengthMax,
)
from conclave.decision.model import (
    KIND_BYTES_MAX,
    PRINCIPAL_BYTES_MAX,
    ApprovalBasis,
    Fraction,
    Member,
    Policy,
    Scope,
    VoteChoice,
    Window,
)

FORMAT_VERSION: Final = 1
PARAMS_BYTES_MAX: Final = 64 * 1024
JUSTIFICATION_BYTES_MAX: Final = 4096
SCOPE_ITEMS_MAX: Final = 256
CHANGES_MAX: Final = 256
DEPENDENCIES_MAX: Final = 64
ELECTORATE_MAX: Final = 256
VALUE_BYTES_MAX: Final = 64 * 1024
RULES_MAX: Final = 32
STRATEGY_NAMES: Final = ("priority", "first_decided", "merge", "escalate", "reject_all")


class DecisionDecodeError(RemoteInputError):
    """Bytes or JSON that are not a valid decision command."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclareKind:
    """Declare (or replace) how proposals of `kind` are decided."""

    TAG: ClassVar[str] = "decision.declare_kind"
    kind: str
    policy: Policy
    electorate: tuple[Member, ...]
    strategy: str = "priority"
    rules: tuple[PolicyRule, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Propose:
    """Propose a change; `rollback_of` makes it a proposal to undo an executed decision."""

    TAG: ClassVar[str] = "decision.propose"
    proposer: str
    kind: str
    params: str = "{}"
    scope: Scope = field(default_factory=Scope)
    changes: tuple[tuple[str, str | None], ...] = ()
    depends_on: tuple[str, ...] = ()
    priority: int = 0
    window: Window | None = None
    deadline_ms: int
    rollback_of: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CastVote:
    TAG: ClassVar[str] = "decision.vote"
    proposal_id: str
    voter: str
    choice: VoteChoice
    justification: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Expire:
    """Carries only time: proposals whose deadline passed are expired (the leader's timer)."""

    TAG: ClassVar[str] = "decision.expire"


DecisionCommand = DeclareKind | Propose | CastVote | Expire


@dataclass(frozen=True, slots=True, kw_only=True)
class Stamped:
    at_ms: int
    command: DecisionCommand


# -- encoding ----------------------------------------------------------------------------------


def policy_to_obj(policy: Policy) -> dict[str, Any]:
    return {
        "threshold": [policy.threshold.num, policy.threshold.den],
        "strict": policy.strict,
        "basis": policy.basis.value,
        "quorum": [policy.quorum.num, policy.quorum.den],
        "veto_roles": list(policy.veto_roles),
        "proposer_may_approve": policy.proposer_may_approve,
        "vote_changes_allowed": policy.vote_changes_allowed,
    }


def rule_to_obj(rule: PolicyRule) -> dict[str, Any]:
    match rule:
        case MaxKeys():
            return {"type": "max_keys", "prefix": rule.prefix, "count_max": rule.count_max}
        case AllowedValues():
            return {
                "type": "allowed_values",
                "key_prefix": rule.key_prefix,
                "values": list(rule.values),
            }
        case ValueLengthMax():
            return {"type": "value_length_max", "prefix": rule.prefix, "bytes_max": rule.bytes_max}
        case JsonSchemaRule():
            return {"type": "json_schema", "key_prefix": rule.key_prefix, "schema": rule.schema}
    raise TypeError(f"unknown rule {type(rule).__name__}")


def rule_from_obj(obj: object) -> PolicyRule:
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise DecisionDecodeError("a rule must be an object with a type")
    kind = obj["type"]
    fields = {k: v for k, v in obj.items() if k != "type"}
    try:
        if kind == "max_keys":
            r = _Reader(fields, "max_keys", ("prefix", "count_max"))
            return MaxKeys(
                prefix=r.text("prefix", 4096, empty=True), count_max=r.integer("count_max")
            )
        if kind == "allowed_values":
            r = _Reader(fields, "allowed_values", ("key_prefix", "values"))
            values = r.texts("values", VALUE_BYTES_MAX, 256)
            return AllowedValues(key_prefix=r.text("key_prefix", 4096, empty=True), values=values)
        if kind == "value_length_max":
            r = _Reader(fields, "value_length_max", ("prefix", "bytes_max"))
            bytes_max = r.integer("bytes_max")
            return ValueLengthMax(prefix=r.text("prefix", 4096, empty=True), bytes_max=bytes_max)
        if kind == "json_schema":
            r = _Reader(fields, "json_schema", ("key_prefix", "schema"))
            schema = r.text("schema", PARAMS_BYTES_MAX)
            return JsonSchemaRule(key_prefix=r.text("key_prefix", 4096, empty=True), schema=schema)
    except (ValueError, TypeError) as exc:
        raise DecisionDecodeError(f"rule {kind}: {exc}") from None
    raise DecisionDecodeError(f"unknown rule type {kind!r}")


def _command_obj(command: DecisionCommand) -> dict[str, Any]:
    match command:
        case DeclareKind():
            return {
                "kind": command.kind,
                "policy": policy_to_obj(command.policy),
                "electorate": [
                    {"principal": m.principal, "weight": m.weight, "roles": list(m.roles)}
                    for m in command.electorate
                ],
                "strategy": command.strategy,
                "rules": [rule_to_obj(rule) for rule in command.rules],
            }
        case Propose():
            window = command.window
            return {
                "proposer": command.proposer,
                "kind": command.kind,
                "params": command.params,
                "reads": list(command.scope.reads),
                "writes": list(command.scope.writes),
                "changes": [[k, v] for k, v in command.changes],
                "depends_on": list(command.depends_on),
                "priority": command.priority,
                "window": None if window is None else [window.start_ms, window.end_ms],
                "deadline_ms": command.deadline_ms,
                "rollback_of": command.rollback_of,
            }
        case CastVote():
            return {
                "proposal_id": command.proposal_id,
                "voter": command.voter,
                "choice": command.choice.value,
                "justification": command.justification,
            }
        case Expire():
            return {}


def encode_stamped(stamped: Stamped) -> bytes:
    obj = {
        "v": FORMAT_VERSION,
        "tag": stamped.command.TAG,
        "at_ms": stamped.at_ms,
        "body": _command_obj(stamped.command),
    }
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- decoding ----------------------------------------------------------------------------------


class _Reader:
    """Strict field access on one JSON object; every failure is a DecisionDecodeError."""

    def __init__(self, obj: object, what: str, names: tuple[str, ...]) -> None:
        if not isinstance(obj, dict):
            raise DecisionDecodeError(f"{what} must be an object")
        if set(obj) != set(names):
            raise DecisionDecodeError(f"{what} must have exactly the fields {sorted(names)}")
        self.obj: dict[str, Any] = obj
        self.what = what

    def integer(self, name: str, minimum: int = 0) -> int:
        value = self.obj[name]
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value < 2**63:
            raise DecisionDecodeError(f"{self.what}.{name} must be an integer >= {minimum}")
        return value

    def boolean(self, name: str) -> bool:
        value = self.obj[name]
        if not isinstance(value, bool):
            raise DecisionDecodeError(f"{self.what}.{name} must be true or false")
        return value

    def text(self, name: str, bytes_max: int, *, empty: bool = False) -> str:
        return _text(self.obj[name], f"{self.what}.{name}", bytes_max, empty=empty)

    def texts(self, name: str, bytes_max: int, items_max: int) -> tuple[str, ...]:
        value = self.obj[name]
        if not isinstance(value, list) or len(value) > items_max:
            raise DecisionDecodeError(f"{self.what}.{name} must be a list of at most {items_max}")
        return tuple(_text(v, f"{self.what}.{name}[]", bytes_max) for v in value)

    def list(self, name: str, items_max: int) -> list[Any]:
        value = self.obj[name]
        if not isinstance(value, list) or len(value) > items_max:
            raise DecisionDecodeError(f"{self.what}.{name} must be a list of at most {items_max}")
        return value


def _text(value: object, what: str, bytes_max: int, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise DecisionDecodeError(f"{what} must be a {'' if empty else 'non-empty '}string")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise DecisionDecodeError(f"{what} is not valid Unicode text") from None
    if size > bytes_max:
        raise DecisionDecodeError(f"{what} is over {bytes_max} bytes")
    return value


def _fraction(value: object, what: str) -> Fraction:
    if not isinstance(value, list) or len(value) != 2:
        raise DecisionDecodeError(f"{what} must be [num, den]")
    try:
        return Fraction(num=value[0], den=value[1])
    except ValueError as exc:
        raise DecisionDecodeError(f"{what}: {exc}") from None


def policy_from_obj(obj: object) -> Policy:
    r = _Reader(
        obj,
        "policy",
        (
            "threshold",
            "strict",
            "basis",
            "quorum",
            "veto_roles",
            "proposer_may_approve",
            "vote_changes_allowed",
        ),
    )
    basis = r.text("basis", 32)
    if basis not in {b.value for b in ApprovalBasis}:
        raise DecisionDecodeError("policy.basis must be electorate or cast")
    try:
        return Policy(
            threshold=_fraction(r.obj["threshold"], "policy.threshold"),
            strict=r.boolean("strict"),
            basis=ApprovalBasis(basis),
            quorum=_fraction(r.obj["quorum"], "policy.quorum"),
            veto_roles=r.texts("veto_roles", PRINCIPAL_BYTES_MAX, 16),
            proposer_may_approve=r.boolean("proposer_may_approve"),
            vote_changes_allowed=r.boolean("vote_changes_allowed"),
        )
    except ValueError as exc:
        raise DecisionDecodeError(f"policy: {exc}") from None


def member_from_obj(obj: object) -> Member:
    r = _Reader(obj, "member", ("principal", "weight", "roles"))
    try:
        return Member(
            principal=r.text("principal", PRINCIPAL_BYTES_MAX),
            weight=r.integer("weight", 1),
            roles=r.texts("roles", PRINCIPAL_BYTES_MAX, 16),
        )
    except ValueError as exc:
        raise DecisionDecodeError(f"member: {exc}") from None


def _declare(obj: object) -> DeclareKind:
    r = _Reader(obj, "declare_kind", ("kind", "policy", "electorate", "strategy", "rules"))
    electorate = tuple(member_from_obj(m) for m in r.list("electorate", ELECTORATE_MAX))
    principals = [m.principal for m in electorate]
    if not electorate or len(set(principals)) != len(principals):
        raise DecisionDecodeError("the electorate must be non-empty with distinct principals")
    strategy = r.text("strategy", 64)
    if strategy not in STRATEGY_NAMES:
        raise DecisionDecodeError(f"unknown strategy {strategy!r}; known: {list(STRATEGY_NAMES)}")
    return DeclareKind(
        kind=r.text("kind", KIND_BYTES_MAX),
        policy=policy_from_obj(r.obj["policy"]),
        electorate=electorate,
        strategy=strategy,
        rules=tuple(rule_from_obj(rule) for rule in r.list("rules", RULES_MAX)),
    )


def _changes(items: list[Any]) -> tuple[tuple[str, str | None], ...]:
    out: list[tuple[str, str | None]] = []
    for item in items:
        if not isinstance(item, list) or len(item) != 2:
            raise DecisionDecodeError("a change must be [key, value or null]")
        key = _text(item[0], "change key", 4096)
        raw = item[1]
        value = None if raw is None else _text(raw, "change value", VALUE_BYTES_MAX, empty=True)
        out.append((key, value))
    keys = [k for k, _ in out]
    if keys != sorted(set(keys)):
        raise DecisionDecodeError("changes must be sorted by key, each key once")
    return tuple(out)


def _params(value: object) -> str:
    text = _text(value, "params", PARAMS_BYTES_MAX)
    try:
        parsed = json.loads(text)
    except ValueError:
        raise DecisionDecodeError("params must be JSON text") from None
    canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if canonical != text or not isinstance(parsed, dict):
        raise DecisionDecodeError("params must be a canonical JSON object")
    return text


def _window(value: object) -> Window | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise DecisionDecodeError("window must be [start_ms, end_ms] or null")
    try:
        return Window(start_ms=value[0], end_ms=value[1])
    except (ValueError, TypeError) as exc:
        raise DecisionDecodeError(f"window: {exc}") from None


def _propose(obj: object) -> Propose:
    r = _Reader(
        obj,
        "propose",
        (
            "proposer",
            "kind",
            "params",
            "reads",
            "writes",
            "changes",
            "depends_on",
            "priority",
            "window",
            "deadline_ms",
            "rollback_of",
        ),
    )
    try:
        scope = Scope(
            reads=r.texts("reads", 4096, SCOPE_ITEMS_MAX),
            writes=r.texts("writes", 4096, SCOPE_ITEMS_MAX),
        )
    except ValueError as exc:
        raise DecisionDecodeError(str(exc)) from None
    changes = _changes(r.list("changes", CHANGES_MAX))
    outside = [k for k, _ in changes if k not in scope.writes]
    if outside:
        raise DecisionDecodeError(f"changes outside the written scope: {outside[:5]}")
    depends = r.texts("depends_on", 64, DEPENDENCIES_MAX)
    if list(depends) != sorted(set(depends)):
        raise DecisionDecodeError("depends_on must be sorted and unique")
    rollback_of = r.obj["rollback_of"]
    return Propose(
        proposer=r.text("proposer", PRINCIPAL_BYTES_MAX),
        kind=r.text("kind", KIND_BYTES_MAX),
        params=_params(r.obj["params"]),
        scope=scope,
        changes=changes,
        depends_on=depends,
        priority=r.integer("priority", 0),
        window=_window(r.obj["window"]),
        deadline_ms=r.integer("deadline_ms", 0),
        rollback_of=None if rollback_of is None else _text(rollback_of, "rollback_of", 64),
    )


def _vote(obj: object) -> CastVote:
    r = _Reader(obj, "vote", ("proposal_id", "voter", "choice", "justification"))
    choice = r.text("choice", 16)
    if choice not in {c.value for c in VoteChoice}:
        raise DecisionDecodeError("choice must be approve, reject or abstain")
    return CastVote(
        proposal_id=r.text("proposal_id", 64),
        voter=r.text("voter", PRINCIPAL_BYTES_MAX),
        choice=VoteChoice(choice),
        justification=r.text("justification", JUSTIFICATION_BYTES_MAX, empty=True),
    )


def _expire(obj: object) -> Expire:
    _Reader(obj, "expire", ())
    return Expire()


_DECODERS: Final[dict[str, Callable[[object], DecisionCommand]]] = {
    DeclareKind.TAG: _declare,
    Propose.TAG: _propose,
    CastVote.TAG: _vote,
    Expire.TAG: _expire,
}


def decode_stamped(data: bytes) -> Stamped:
    """Parse one entry's bytes; raises DecisionDecodeError for anything invalid."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise DecisionDecodeError("not a JSON decision command") from None
    r = _Reader(obj, "command", ("v", "tag", "at_ms", "body"))
    if r.obj["v"] != FORMAT_VERSION or isinstance(r.obj["v"], bool):
        raise DecisionDecodeError(f"unsupported format version {r.obj['v']!r}")
    decoder = _DECODERS.get(r.obj["tag"]) if isinstance(r.obj["tag"], str) else None
    if decoder is None:
        raise DecisionDecodeError(f"unknown decision command {r.obj['tag']!r}")
    return Stamped(at_ms=r.integer("at_ms", 0), command=decoder(r.obj["body"]))


__all__ = [
    "CHANGES_MAX",
    "STRATEGY_NAMES",
    "CastVote",
    "DecisionCommand",
    "DecisionDecodeError",
    "DeclareKind",
    "Expire",
    "Propose",
    "Stamped",
    "decode_stamped",
    "encode_stamped",
    "member_from_obj",
    "policy_from_obj",
    "policy_to_obj",
    "rule_from_obj",
    "rule_to_obj",
]
