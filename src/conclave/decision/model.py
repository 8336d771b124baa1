"""The vocabulary of decisions: members, policies, proposals, votes, conflicts.

Rules:
- Pure data (DESIGN.md section 3): frozen, slotted, keyword-only dataclasses with tuple fields,
  validated at construction, so an invalid policy or proposal cannot exist in memory.
- Weights and thresholds are integers and exact fractions (`num/den`), never floats: every
  replica must compute the same tally bit for bit.
- Times are integers (milliseconds since the epoch) stamped by the leader into the log entry
  that carries a command; this package never reads a clock.
- A policy is data, declared per proposal kind and stored in the replicated state: the tally
  (`conclave.decision.policy`) interprets it; there is no code path per named policy.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

PRINCIPAL_BYTES_MAX: Final = 128
KIND_BYTES_MAX: Final = 128


class VoteChoice(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    ABSTAIN = "abstain"


class ApprovalBasis(StrEnum):
    """What approvals are measured against."""

    ELECTORATE = "electorate"  # approve weight / total weight of all eligible voters
    CAST = "cast"  # approve weight / (approve + reject) weight; abstentions count for quorum only


class Outcome(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # the deadline passed while still pending


def _check_name(what: str, value: object, bytes_max: int) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    if len(value.encode("utf-8", "surrogatepass")) > bytes_max:
        raise ValueError(f"{what} is over {bytes_max} bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fraction:
    """An exact ratio `num/den` with 0 <= num <= den, den >= 1."""

    num: int
    den: int

    def __post_init__(self) -> None:
        for name in ("num", "den"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"fraction {name} must be an integer")
        if self.den < 1 or not 0 <= self.num <= self.den:
            raise ValueError(
                f"fraction must satisfy 0 <= num <= den, den >= 1 ({self.num}/{self.den})"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One eligible voter: a principal with a positive integer weight and roles."""

    principal: str
    weight: int = 1
    roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name("principal", self.principal, PRINCIPAL_BYTES_MAX)
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 1:
            raise ValueError("weight must be a positive integer")
        for role in self.roles:
            _check_name("role", role, PRINCIPAL_BYTES_MAX)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """How votes decide a proposal (see `conclave.decision.policy` for the arithmetic).

    - `threshold`: the fraction of the basis that approvals must reach (`strict`: exceed).
      Simple majority = 1/2 strict on ELECTORATE; 2/3 supermajority = 2/3 non-strict;
      unanimity = 1/1 non-strict; a weighted threshold is the same with member weights.
    - `quorum`: the fraction of the electorate's weight that must take part (approve, reject
      or abstain) before anything can be approved; 0/1 means no quorum.
    - `veto_roles`: a reject by a member holding one of these roles rejects at once.
    - `proposer_may_approve`: False means the proposer's own approval is refused.
    - `vote_changes_allowed`: True lets a voter change their vote until the outcome (each
      change is recorded); False refuses a second vote.
    """

    threshold: Fraction
    strict: bool = False
    basis: ApprovalBasis = ApprovalBasis.ELECTORATE
    quorum: Fraction = Fraction(num=0, den=1)
    veto_roles: tuple[str, ...] = ()
    proposer_may_approve: bool = True
    vote_changes_allowed: bool = False

    def __post_init__(self) -> None:
        if self.threshold.num == 0 and not self.strict:
            raise ValueError("a threshold of 0 (not strict) would approve with no votes")
        if self.strict and self.threshold.num == self.threshold.den:
            raise ValueError("a strict threshold of 1 can never be reached")
        for role in self.veto_roles:
            _check_name("veto role", role, PRINCIPAL_BYTES_MAX)


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """The time a decision takes effect: [start_ms, end_ms) in leader-stamped milliseconds."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_ms < self.end_ms:
            raise ValueError("a window needs 0 <= start_ms < end_ms")

    def overlaps(self, other: "Window") -> bool:
        return self.start_ms < other.end_ms and other.start_ms < self.end_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """The resources (keys) a proposal reads and writes; sorted and unique."""

    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("reads", "writes"):
            items = getattr(self, name)
            if list(items) != sorted(set(items)):
                raise ValueError(f"scope {name} must be sorted and unique")
            for item in items:
                _check_name(f"scope {name} item", item, 4096)


class ConflictType(StrEnum):
    RESOURCE = "resource"  # both write a shared resource
    TEMPORAL = "temporal"  # their windows of effect overlap on a shared resource
    POLICY = "policy"  # a declared rule would be broken (schema, limit on the target state)
    DEPENDENCY = "dependency"  # depends on a proposal that was rejected, expired or conflicted


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """A proposed change; `id`, `created_at_ms` and `index` are assigned when it is applied.

    `params` is canonical JSON text (sorted keys, no spaces), so equal parameters are equal
    bytes on every replica. `changes` is what execution writes: (key, value or None=delete)
    pairs, sorted by key; their keys must be in `scope.writes`.
    """

    id: str
    proposer: str
    kind: str
    params: str = "{}"
    scope: Scope = Scope()
    changes: tuple[tuple[str, str | None], ...] = ()
    depends_on: tuple[str, ...] = ()
    priority: int = 0
    window: Window | None = None
    deadline_ms: int
    created_at_ms: int
    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Conflict:
    """A detected conflict between proposals (sorted ids), with a deterministic id."""

    id: str
    type: ConflictType
    severity: Severity
    proposals: tuple[str, ...]
    reason: str


def simple_majority() -> Policy:
    return Policy(threshold=Fraction(num=1, den=2), strict=True)


def supermajority(num: int, den: int) -> Policy:
    return Policy(threshold=Fraction(num=num, den=den))


def unanimity() -> Policy:
    return Policy(threshold=Fraction(num=1, den=1))


__all__ = [
    "Conflict",
    "ConflictType",
    "Proposal",
    "Scope",
    "Severity",
    "Window",
    "KIND_BYTES_MAX",
    "PRINCIPAL_BYTES_MAX",
    "ApprovalBasis",
    "Fraction",
    "Member",
    "Outcome",
    "Policy",
    "VoteChoice",
    "simple_majority",
    "supermajority",
    "unanimity",
]
