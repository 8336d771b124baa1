"""Quorum arithmetic for majority-based protocols.

Rules: a quorum of n voters is floor(n/2) + 1. The committed index of a set of voters is the
largest index that a quorum has matched; it is computed from the sorted match indices, never
from counting an arbitrary subset. Pure functions only.
"""

from collections.abc import Iterable, Mapping
from enum import Enum

from conclave.core.ids import LogIndex, NodeId


class VoteResult(Enum):
    """State of an election as seen by the candidate."""

    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def quorum_size(voter_count: int) -> int:
    """Smallest number of voters that forms a majority of `voter_count`."""
    if voter_count < 0:
        raise ValueError("voter_count must be >= 0")
    return voter_count // 2 + 1


def max_faults_crash(voter_count: int) -> int:
    """How many crashed voters a majority quorum tolerates."""
    return (voter_count - 1) // 2 if voter_count > 0 else 0


def committed_index(match_index_by_voter: Mapping[NodeId, LogIndex]) -> LogIndex:
    """Largest index replicated on a quorum of the voters in the mapping.

    Voters absent from the mapping must be passed with 0. An empty voter set commits nothing.
    """
    if not match_index_by_voter:
        return 0
    matched = sorted(match_index_by_voter.values(), reverse=True)
    return matched[quorum_size(len(matched)) - 1]


def vote_result(voters: Iterable[NodeId], granted_by: Mapping[NodeId, bool]) -> VoteResult:
    """Tally an election: WON with a quorum of grants, LOST when a quorum can no longer grant."""
    voter_list = sorted(set(voters))
    needed = quorum_size(len(voter_list))
    granted = sum(1 for v in voter_list if granted_by.get(v) is True)
    rejected = sum(1 for v in voter_list if granted_by.get(v) is False)
    if granted >= needed:
        return VoteResult.WON
    if len(voter_list) - rejected < needed:
        return VoteResult.LOST
    return VoteResult.PENDING


__all__ = ["VoteResult", "committed_index", "max_faults_crash", "quorum_size", "vote_result"]
