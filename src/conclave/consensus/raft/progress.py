"""What a leader knows about each follower's log, and the flow control of appends to it.

Rules (modelled on etcd's `tracker.Progress`):
- PROBE: the follower's match is unknown; at most one append is outstanding until a response
  (or the next heartbeat) unpauses it. Rejections walk `next` back using the follower's hint.
- REPLICATE: the follower keeps up; appends are pipelined optimistically (`next` advances when
  sent) with at most `inflight_appends_max` unacknowledged appends.
- SNAPSHOT: an InstallSnapshot is outstanding; nothing else is sent until it is answered or
  the retry timer expires.
- `match` only grows within a term (a follower's claim is durable before it is sent) and
  `match < next <= leader's last index + 1` always holds.
"""

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from conclave.core.ids import LogIndex


class ProgressState(Enum):
    """Replication state of one follower (etcd's StateProbe/StateReplicate/StateSnapshot)."""

    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerProgress:
    """A read-only view of one follower's progress, for status pages and tests."""

    match: LogIndex
    next: LogIndex
    state: ProgressState
    inflight: int
    lag: int
    recent_active: bool
    is_learner: bool


@dataclass(slots=True)
class Progress:
    """Mutable replication progress of one follower, owned by the leader."""

    match: LogIndex
    next: LogIndex
    inflight_max: int
    state: ProgressState = ProgressState.PROBE
    probe_sent: bool = False
    pending_snapshot: LogIndex = 0
    snapshot_elapsed_ticks: int = 0
    stall_elapsed_ticks: int = 0
    recent_active: bool = False
    read_seq_acked: int = 0
    lease_tick: int = -1  # when the newest acknowledged message was first sent
    commit_sent: LogIndex = 0  # highest commit index carried by an append sent to it
    inflights: deque[LogIndex] = field(default_factory=deque)

    # -- state transitions ----------------------------------------------------------------

    def _reset(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snapshot_elapsed_ticks = 0
        self.stall_elapsed_ticks = 0
        self.inflights.clear()

    def become_probe(self) -> None:
        """Probe from just after the known match (or after a snapshot just sent)."""
        pending = self.pending_snapshot if self.state is ProgressState.SNAPSHOT else 0
        self._reset(ProgressState.PROBE)
        self.next = max(self.match + 1, pending + 1 if pending > self.match else 0)

    def become_replicate(self) -> None:
        self._reset(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: LogIndex) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    # -- events ---------------------------------------------------------------------------

    def is_paused(self) -> bool:
        """True when no append may be sent now (flow control)."""
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflights) >= self.inflight_max
        return True

    def sent_append(self, last_sent: LogIndex, entry_count: int) -> None:
        """An append ending at `last_sent` (holding `entry_count` entries) left."""
        if self.state is ProgressState.REPLICATE:
            if entry_count:
                self.next = last_sent + 1
                self.inflights.append(last_sent)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def maybe_update(self, index: LogIndex) -> bool:
        """The follower matches up to `index`; True when that is news."""
        updated = index > self.match
        if updated:
            self.match = index
            self.stall_elapsed_ticks = 0
            self.probe_sent = False
            while self.inflights and self.inflights[0] <= index:
                self.inflights.popleft()
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decrease_to(self, rejected: LogIndex, match_hint: LogIndex) -> bool:
        """The follower rejected an append after `rejected`; False when the rejection is stale.

        In REPLICATE, a rejection at or below match is stale; otherwise fall back to probing
        from match + 1. In PROBE only a rejection of the outstanding probe (next - 1) counts;
        `next` moves to the hint (etcd's MaybeDecrTo).
        """
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.state is ProgressState.SNAPSHOT or self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def view(self, last_index: LogIndex, *, is_learner: bool) -> PeerProgress:
        return PeerProgress(
            match=self.match,
            next=self.next,
            state=self.state,
            inflight=len(self.inflights),
            lag=max(0, last_index - self.match),
            recent_active=self.recent_active,
            is_learner=is_learner,
        )


__all__ = ["PeerProgress", "Progress", "ProgressState"]
