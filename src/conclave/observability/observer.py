"""The observer of one running node: its metrics, round-trip probes, decision follower and
alerts, attached to a `ConclaveNode` by a handful of hooks (the shell side of DESIGN.md rule 12).

Rules:
- The node calls `wrap_storage` and `wrap_transport` once at start (the driver then uses the
  wrapped ports), `on_peer_message` for every inbound message, `after_drain` after every
  executed batch, `proposal_failed` when one of its own proposals is dropped or times out, and
  `start` / `stop` with itself. Everything else is read from the node when it is needed (a
  scrape, an alert evaluation): no state is copied ahead of time.
- Leader changes are counted as etcd counts them: each time the known leader becomes a
  different node than the last one seen (including the first leader, and the same node again
  after a spell without a leader).
- Wall-clock times (`clock`, `time.time` by default) date the recent events the alerts look
  at; durations are measured with `time.perf_counter`.
"""

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from conclave.consensus.raft import RaftMessage, Role
from conclave.core.ids import NO_NODE
from conclave.core.ports import Storage, Transport
from conclave.observability.alerts import AlertEvaluator, AlertInputs, AlertManager, AlertThresholds
from conclave.observability.metrics import (
    RECENT_EVENTS_MAX,
    DecisionFollower,
    NodeMetrics,
    NodeSample,
    ProbingTransport,
    RttProbe,
    TimedStorage,
)

if TYPE_CHECKING:
    from conclave.runtime.node import ConclaveNode
    from conclave.runtime.settings import NodeSettings

FSYNC_RING_MAX: Final = 4096  # recent fsync durations kept for the p99 alert


def thresholds_of(settings: "NodeSettings") -> AlertThresholds:
    """The alert thresholds of a node's settings (`alert_*`)."""
    return AlertThresholds(
        no_leader_seconds=settings.alert_no_leader_seconds,
        leader_changes_max=settings.alert_leader_changes_max,
        leader_changes_window_seconds=settings.alert_leader_changes_window_seconds,
        fsync_p99_seconds=settings.alert_fsync_p99_seconds,
        fsync_window_seconds=settings.alert_fsync_window_seconds,
        follower_lag_entries_max=settings.alert_follower_lag_entries_max,
        conflicts_per_minute_max=settings.alert_conflicts_per_minute_max,
        stuck_proposal_grace_seconds=settings.alert_stuck_proposal_grace_seconds,
        stuck_proposal_window_seconds=settings.alert_stuck_proposal_window_seconds,
    )


class NodeObserver:
    """See the module docstring."""

    def __init__(self, node: "ConclaveNode", clock: Callable[[], float] = time.time) -> None:
        self._node = node
        self._clock = clock
        settings = node.settings
        self.metrics = NodeMetrics(self.sample)
        self.rtt = RttProbe(self._observe_rtt)
        self.decisions = DecisionFollower(self.metrics)
        self.leader_change_times: deque[float] = deque(maxlen=RECENT_EVENTS_MAX)
        self.fsyncs: deque[tuple[float, float]] = deque(maxlen=FSYNC_RING_MAX)
        self._last_leader = NO_NODE
        self.alerts = AlertManager(
            AlertEvaluator(thresholds_of(settings), clock),
            self.alert_inputs,
            interval_seconds=settings.alert_interval_seconds,
            logger=logging.getLogger(f"conclave.alerts.{settings.node_id}"),
            webhook_url=settings.alert_webhook_url,
            webhook_timeout_seconds=settings.alert_webhook_timeout_seconds,
            origin={"node": settings.node_id, "cluster": settings.cluster_id},
        )

    # -- hooks called by the node ---------------------------------------------------------

    def wrap_storage(self, storage: Storage) -> Storage:
        return TimedStorage(storage, on_fsync=self._observe_fsync, on_snapshot=self._on_snapshot)

    def wrap_transport(self, transport: Transport[RaftMessage]) -> Transport[RaftMessage]:
        return ProbingTransport(transport, self.rtt)

    def on_peer_message(self, message: RaftMessage) -> None:
        self.rtt.received(message)

    def after_drain(self) -> None:
        node = self._node
        leader = node.core.leader_id
        if leader != self._last_leader:
            if leader != NO_NODE:
                self.metrics.leader_changes.inc()
                self.leader_change_times.append(self._clock())
            self._last_leader = leader
        self.decisions.follow(node.decisions)

    def proposal_failed(self) -> None:
        self.metrics.proposals_failed.inc()

    def start(self) -> None:
        self.alerts.start()

    async def stop(self) -> None:
        await self.alerts.stop()

    # -- reading --------------------------------------------------------------------------

    def sample(self) -> NodeSample | None:
        """The node's state now, or None when it is not running."""
        node = self._node
        if not node.running:
            return None
        core = node.core
        is_leader = core.role is Role.LEADER
        lag: dict[int, int] = {}
        if is_leader:
            last = core.last_index
            lag = {
                peer: max(0, last - view.match)
                for peer, view in core.progress().items()
                if peer != node.settings.node_id
            }
        peers = node.transport.stats.peers
        return NodeSample(
            leader_id=core.leader_id,
            is_leader=is_leader,
            term=core.term,
            commit_index=core.commit_index,
            applied_index=node.machine.applied_index,
            proposals_pending=node.proposals_pending,
            follower_lag=lag,
            peer_bytes_sent={peer: stats.bytes_sent for peer, stats in peers.items()},
            peer_bytes_received={peer: stats.bytes_received for peer, stats in peers.items()},
        )

    def alert_inputs(self) -> AlertInputs | None:
        sample = self.sample()
        if sample is None:
            return None
        follower = self.decisions
        follower.follow(self._node.decisions)
        return AlertInputs(
            has_leader=sample.has_leader,
            is_leader=sample.is_leader,
            leader_change_times=tuple(self.leader_change_times),
            fsyncs=tuple(self.fsyncs),
            follower_lag=sample.follower_lag,
            conflict_times=tuple(ms / 1000 for ms in follower.conflict_times_ms),
            open_deadlines={pid: ms / 1000 for pid, ms in follower.open_deadlines_ms.items()},
            expired_without_quorum=tuple(
                (ms / 1000, pid) for ms, pid in follower.expired_without_quorum
            ),
        )

    def metrics_text(self) -> bytes:
        """`GET /metrics`: the Prometheus text exposition."""
        if self._node.running:
            self.decisions.follow(self._node.decisions)
        return self.metrics.exposition()

    def alerts_json(self) -> dict[str, Any]:
        """`GET /v1/alerts`: active and recently resolved alerts."""
        return {"node": self._node.settings.node_id, **self.alerts.to_json()}

    # -- instruments ----------------------------------------------------------------------

    def _observe_fsync(self, seconds: float) -> None:
        self.metrics.wal_fsync.observe(seconds)
        self.fsyncs.append((self._clock(), seconds))

    def _on_snapshot(self, seconds: float) -> None:
        self.metrics.snapshot_save.observe(seconds)

    def _observe_rtt(self, peer: int, seconds: float) -> None:
        self.metrics.peer_rtt.labels(peer=str(peer)).observe(seconds)


__all__ = ["FSYNC_RING_MAX", "NodeObserver", "thresholds_of"]
