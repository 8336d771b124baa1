"""The two kinds of failure (DESIGN.md rule 8), plus the expected refusals.

- `RemoteInputError`: a message from elsewhere is malformed or impossible. Cores drop it and
  emit a trace event; it never crashes a node.
- `InvariantViolation`: a local invariant is broken. This is a bug: it crashes the node in
  tests and in the simulator, so that the seed that found it can be replayed.
- `Refusal` and its subclasses are expected, typed answers to a caller (`NotLeader` with a hint
  of who leads, `ProposalDropped` with a reason). Callers are meant to catch them.
"""

from conclave.core.ids import NO_NODE, NodeId


class ConclaveError(Exception):
    """Base of every error raised by conclave."""


class InvariantViolation(ConclaveError):
    """A local invariant does not hold: a bug, never a remote's fault."""


class RemoteInputError(ConclaveError):
    """A remote input is invalid; the receiving core drops it and traces the reason."""


class Refusal(ConclaveError):
    """An expected refusal of a request; the caller may retry elsewhere or later."""


class NotLeader(Refusal):
    """This node cannot serve the request because it is not the leader.

    `leader_hint` is the node believed to lead, or `NO_NODE` when unknown.
    """

    def __init__(self, leader_hint: NodeId = NO_NODE) -> None:
        super().__init__(f"not the leader (leader hint: {leader_hint or 'unknown'})")
        self.leader_hint = leader_hint


class ProposalDropped(Refusal):
    """The proposal was not appended (queue full, transfer in progress, change pending...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"proposal dropped: {reason}")
        self.reason = reason


__all__ = [
    "ConclaveError",
    "InvariantViolation",
    "NotLeader",
    "ProposalDropped",
    "Refusal",
    "RemoteInputError",
]
