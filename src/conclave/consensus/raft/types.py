"""Small value types of the Raft core's public API: roles, tickets, membership changes.

Rules:
- A `ConfChange` is a single-server change (Raft thesis 4.1). It travels inside a
  CONF_CHANGE entry, encoded as ASCII `op:node_id` (e.g. b"add_learner:4"): deterministic,
  human-readable in traces, and stable across versions.
- `apply_conf_change` is total: a change that does not fit the configuration (adding a
  member twice, promoting a non-learner) leaves it unchanged, so every node that applies the
  same entries computes the same membership.
"""

from dataclasses import dataclass
from enum import Enum

from conclave.core.effects import ConfState
from conclave.core.ids import LogIndex, NodeId, Term


class Role(Enum):
    """The role of a node. A learner is a FOLLOWER that is not in `conf.voters`."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalTicket:
    """Where a proposal was appended; it succeeded iff (index, term) is applied."""

    index: LogIndex
    term: Term


class ConfChangeOp(Enum):
    """A single-server membership change (thesis 4.1, with learners as in thesis 4.2.1)."""

    ADD_LEARNER = "add_learner"
    PROMOTE_LEARNER = "promote_learner"
    REMOVE_NODE = "remove_node"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfChange:
    """One membership change."""

    op: ConfChangeOp
    node_id: NodeId

    def encode(self) -> bytes:
        """The payload of the CONF_CHANGE entry, e.g. b"add_learner:4"."""
        return f"{self.op.value}:{self.node_id}".encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> "ConfChange":
        """Parse an encoded change; raises ValueError on anything malformed."""
        try:
            op_text, _, id_text = data.decode("ascii").partition(":")
            op = ConfChangeOp(op_text)
            node_id = int(id_text, 10)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"malformed conf change {data!r}") from exc
        if node_id <= 0 or not id_text.isdigit():
            raise ValueError(f"malformed conf change {data!r}")
        return cls(op=op, node_id=node_id)


def apply_conf_change(conf: ConfState, change: ConfChange) -> ConfState:
    """The membership after `change`; unchanged when the change does not apply."""
    voters = set(conf.voters)
    learners = set(conf.learners)
    node = change.node_id
    if change.op is ConfChangeOp.ADD_LEARNER:
        if node in voters or node in learners:
            return conf
        learners.add(node)
    elif change.op is ConfChangeOp.PROMOTE_LEARNER:
        if node not in learners:
            return conf
        learners.discard(node)
        voters.add(node)
    else:
        if node not in voters and node not in learners:
            return conf
        voters.discard(node)
        learners.discard(node)
    return ConfState(voters=tuple(sorted(voters)), learners=tuple(sorted(learners)))


__all__ = [
    "ConfChange",
    "ConfChangeOp",
    "ProposalTicket",
    "Role",
    "apply_conf_change",
]
