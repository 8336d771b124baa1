"""Settings of the Raft core.

Rules:
- Every limit is a named `*_max` setting (DESIGN.md rule 10); every duration is in ticks.
- `RaftConfig` validates itself: a bad combination raises `ValueError` at construction, so a
  core never runs with settings that would make it unsafe (e.g. lease reads without
  check-quorum, Raft thesis 6.4.1) or never elect a leader (heartbeat >= election timeout).
"""

from dataclasses import dataclass
from enum import Enum

from conclave.core.ids import NodeId


class ReadOnlyOption(Enum):
    """How the leader confirms that it still leads before serving a read (thesis 6.4)."""

    SAFE = "safe"  # ReadIndex: confirm leadership with a quorum round (default)
    LEASE_BASED = "lease"  # serve from the leader's lease; allowed only with check_quorum=True


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftConfig:
    """Settings of one Raft node. All durations are in ticks."""

    node_id: NodeId
    election_timeout_ticks_min: int = 10  # timeout drawn uniformly in [min, max) from env.rng
    election_timeout_ticks_max: int = 20
    heartbeat_interval_ticks: int = 2
    pre_vote: bool = True
    check_quorum: bool = True
    read_only: ReadOnlyOption = ReadOnlyOption.SAFE
    lease_margin_ticks: int = 2  # lease = election_timeout_ticks_min - margin
    entries_per_message_max: int = 64
    bytes_per_message_max: int = 1 << 20
    inflight_appends_max: int = 8  # unacknowledged appends per follower
    pending_proposals_max: int = 4096  # uncommitted entries the leader accepts
    learner_catch_up_lag_max: int = 16  # a learner may be promoted once this close
    # Additions to the documented surface (backward compatible, all defaulted):
    pending_reads_max: int = 4096  # read_index requests waiting for confirmation
    apply_entries_per_ready_max: int = 512  # committed entries handed out per Ready

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid RaftConfig: " + "; ".join(problems))

    def _problems(self) -> "list[str]":
        out: list[str] = []
        if self.node_id <= 0:
            out.append("node_id must be positive (0 means 'nobody')")
        if self.heartbeat_interval_ticks < 1:
            out.append("heartbeat_interval_ticks must be >= 1")
        if self.election_timeout_ticks_min <= self.heartbeat_interval_ticks:
            out.append("election_timeout_ticks_min must exceed heartbeat_interval_ticks")
        if self.election_timeout_ticks_max <= self.election_timeout_ticks_min:
            out.append("election_timeout_ticks_max must exceed election_timeout_ticks_min")
        if not 0 <= self.lease_margin_ticks < self.election_timeout_ticks_min:
            out.append("lease_margin_ticks must be in [0, election_timeout_ticks_min)")
        if self.read_only is ReadOnlyOption.LEASE_BASED and not self.check_quorum:
            # Thesis 6.4.1: the lease is only sound when followers refuse votes while they
            # hear from a leader, which is what check-quorum turns on.
            out.append("read_only=LEASE_BASED requires check_quorum=True")
        for name in (
            "entries_per_message_max",
            "bytes_per_message_max",
            "inflight_appends_max",
            "pending_proposals_max",
            "pending_reads_max",
            "apply_entries_per_ready_max",
        ):
            if getattr(self, name) < 1:
                out.append(f"{name} must be >= 1")
        if self.learner_catch_up_lag_max < 0:
            out.append("learner_catch_up_lag_max must be >= 0")
        return out

    @property
    def lease_ticks(self) -> int:
        """How long a quorum acknowledgement keeps the leader's lease valid."""
        return self.election_timeout_ticks_min - self.lease_margin_ticks


__all__ = ["RaftConfig", "ReadOnlyOption"]
