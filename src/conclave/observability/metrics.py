"""Prometheus metrics of one node (issue 6, item 2), in a registry of its own.

Rules:
- Each `NodeMetrics` owns one `CollectorRegistry`; nothing is ever registered in
  prometheus_client's global default registry, so several nodes can run in one process
  (embedded clusters, tests) without clashing.
- Read at scrape time where the node already keeps the number: leadership, term, commit and
  applied indexes, pending proposals, follower lag and the transport's per-peer byte counters
  come from a `NodeSample` taken when Prometheus scrapes (`_StateCollector`). The transport's
  counters are exported as they are, never counted a second time.
- Where nothing keeps the number, a tiny hook does, outside the pure cores (DESIGN.md rule 12):
  fsync and snapshot durations are timed around the storage port (`TimedStorage`); round trips
  are sampled from AppendEntries (`RttProbe`); decision metrics are derived from the replicated
  audit trail as the node applies it (`DecisionFollower`); leader changes are noticed by the
  shell after each drain.
- Names follow etcd's where the meaning is the same (`etcd_server_has_leader` becomes
  `conclave_server_has_leader`, ...) and so do histogram buckets. Per-peer series carry the
  label `peer` (the peer's node id).
"""

import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from conclave.consensus.raft import AppendEntries, AppendEntriesResponse, RaftMessage
from conclave.core.effects import Entry, HardState, Send, Snapshot
from conclave.core.ports import StableState, Storage, Transport
from conclave.decision.machine import AuditEvent, DecisionMachine, ProposalRecord
from conclave.decision.policy import evaluate

# etcd: wal_fsync_duration_seconds, ExponentialBuckets(0.001, 2, 14): 1 ms .. 8.192 s.
FSYNC_BUCKETS: Final = tuple(round(0.001 * 2**i, 6) for i in range(14))
# etcd: disk_backend_snapshot_duration_seconds, ExponentialBuckets(0.01, 2, 14): 10 ms .. 82 s.
SNAPSHOT_BUCKETS: Final = tuple(round(0.01 * 2**i, 6) for i in range(14))
# etcd: network_peer_round_trip_time_seconds, ExponentialBuckets(0.0001, 2, 14): 0.1 ms .. 0.8 s.
RTT_BUCKETS: Final = tuple(round(0.0001 * 2**i, 7) for i in range(14))
# Decisions take human time: from a second to a week.
DECISION_BUCKETS: Final = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 604800.0)

RTT_PROBE_STALE_SECONDS: Final = 10.0  # a probe unanswered this long is dropped (message lost)
RECENT_EVENTS_MAX: Final = 10_000  # bound of each ring of recent times kept for the alerts
_DECIDED: Final = ("approved", "rejected", "expired")
_VOTE_DETAIL: Final = re.compile(r"^(?:.*?) (approve|reject|abstain)(?= \(was |: |$)")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSample:
    """The node's state as one scrape (or one alert evaluation) sees it."""

    leader_id: int  # 0: no leader known
    is_leader: bool
    term: int
    commit_index: int
    applied_index: int
    proposals_pending: int
    follower_lag: Mapping[int, int] = field(default_factory=dict)  # leader only
    peer_bytes_sent: Mapping[int, int] = field(default_factory=dict)
    peer_bytes_received: Mapping[int, int] = field(default_factory=dict)

    @property
    def has_leader(self) -> bool:
        return self.leader_id != 0


SampleFn = Callable[[], NodeSample | None]


class _StateCollector(Collector):
    """Metrics read from the node's state at scrape time (nothing is counted twice)."""

    def __init__(self, sample: SampleFn) -> None:
        self._sample = sample

    def collect(self) -> Iterable[Metric]:
        s = self._sample()
        if s is None:
            return  # not started, or stopping: only the instruments below are exported
        yield _gauge("conclave_server_has_leader", "1 if a leader is known, else 0.", s.has_leader)
        yield _gauge("conclave_server_is_leader", "1 if this node is the leader.", s.is_leader)
        yield _gauge("conclave_server_term", "The Raft term this node is in.", s.term)
        committed = CounterMetricFamily(
            "conclave_server_proposals_committed_total",
            "The number of consensus proposals committed (the commit index).",
            value=s.commit_index,
        )
        applied = CounterMetricFamily(
            "conclave_server_proposals_applied_total",
            "The number of consensus proposals applied (the applied index).",
            value=s.applied_index,
        )
        yield committed
        yield applied
        yield _gauge(
            "conclave_server_proposals_pending",
            "Proposals made on this node and not yet applied.",
            s.proposals_pending,
        )
        lag = GaugeMetricFamily(
            "conclave_server_follower_lag_entries",
            "Entries the leader holds that a follower has not matched (leader only).",
            labels=["peer"],
        )
        for peer, entries in sorted(s.follower_lag.items()):
            lag.add_metric([str(peer)], entries)
        yield lag
        sent = CounterMetricFamily(
            "conclave_network_peer_sent_bytes_total",
            "Bytes sent to a peer (frames written on the peer connection).",
            labels=["peer"],
        )
        for peer, count in sorted(s.peer_bytes_sent.items()):
            sent.add_metric([str(peer)], count)
        yield sent
        received = CounterMetricFamily(
            "conclave_network_peer_received_bytes_total",
            "Bytes received from a peer (frames read on the peer connection).",
            labels=["peer"],
        )
        for peer, count in sorted(s.peer_bytes_received.items()):
            received.add_metric([str(peer)], count)
        yield received


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


class NodeMetrics:
    """The instruments of one node, in `registry`; see the module docstring."""

    def __init__(self, sample: SampleFn) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.registry.register(_StateCollector(sample))
        self.leader_changes = Counter(
            "conclave_server_leader_changes_seen",
            "The number of leader changes seen by this node.",
            registry=r,
        )
        self.proposals_failed = Counter(
            "conclave_server_proposals_failed",
            "Proposals made on this node that failed (dropped, or timed out).",
            registry=r,
        )
        self.wal_fsync = Histogram(
            "conclave_disk_wal_fsync_duration_seconds",
            "The latency distribution of WAL fsyncs (one per Ready that must sync).",
            buckets=FSYNC_BUCKETS,
            registry=r,
        )
        self.snapshot_save = Histogram(
            "conclave_disk_snapshot_duration_seconds",
            "The time to persist a snapshot (written, fsynced and renamed into place).",
            buckets=SNAPSHOT_BUCKETS,
            registry=r,
        )
        self.peer_rtt = Histogram(
            "conclave_network_peer_round_trip_time_seconds",
            "Round-trip time to a peer, sampled from heartbeat -> AppendEntries response.",
            ["peer"],
            buckets=RTT_BUCKETS,
            registry=r,
        )
        self.decision_duration = Histogram(
            "conclave_decision_duration_seconds",
            "From a proposal's creation to its outcome (leader-stamped times).",
            ["outcome"],
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.votes = Counter(
            "conclave_decision_votes",
            "Votes applied, by proposal kind and choice.",
            ["kind", "choice"],
            registry=r,
        )
        self.proposals = Counter(
            "conclave_decision_proposals", "Proposals applied, by kind.", ["kind"], registry=r
        )
        self.conflicts = Counter(
            "conclave_decision_conflicts",
            "Conflicts detected between proposals, by conflict type.",
            ["type"],
            registry=r,
        )
        self.resolutions = Counter(
            "conclave_decision_conflict_resolutions",
            "Conflicts resolved, by conflict type and resolution strategy.",
            ["type", "strategy"],
            registry=r,
        )
        self.executions = Counter(
            "conclave_decision_executions",
            "Approved proposals executed or failed at execution.",
            ["result"],
            registry=r,
        )
        self.rollbacks = Counter(
            "conclave_decision_rollbacks",
            "Executed decisions rolled back by a later decision.",
            registry=r,
        )

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


# -- hooks around the ports ------------------------------------------------------------------


class TimedStorage:
    """The `Storage` port with fsyncs and snapshot saves timed (wraps the node's WAL)."""

    def __init__(
        self,
        inner: Storage,
        *,
        on_fsync: Callable[[float], None],
        on_snapshot: Callable[[float], None],
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.inner = inner
        self._on_fsync = on_fsync
        self._on_snapshot = on_snapshot
        self._timer = timer

    def load(self) -> StableState:
        return self.inner.load()

    def save(
        self, hard_state: HardState | None, snapshot: Snapshot | None, entries: tuple[Entry, ...]
    ) -> None:
        if snapshot is None:
            self.inner.save(hard_state, snapshot, entries)
            return
        started = self._timer()
        self.inner.save(hard_state, snapshot, entries)
        self._on_snapshot(self._timer() - started)

    def sync(self) -> None:
        started = self._timer()
        self.inner.sync()
        self._on_fsync(self._timer() - started)


class RttProbe:
    """Samples round-trip times to each peer from the leader's own replication traffic.

    A probe starts when a heartbeat (an AppendEntries without entries) is handed to the
    transport for a peer that has none outstanding, and ends at the next AppendEntriesResponse
    from that peer. One probe per peer is in flight; one unanswered for
    `RTT_PROBE_STALE_SECONDS` is replaced. The time includes batching in the sender's queue and
    the follower's handling of the heartbeat (a heartbeat needs no fsync), so it is a little
    above the network's own round trip; a response to an earlier append may end a probe early.
    """

    def __init__(
        self, observe: Callable[[int, float], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._observe = observe
        self._clock = clock
        self._outstanding: dict[int, float] = {}

    def sent(self, message: RaftMessage) -> None:
        if not isinstance(message, AppendEntries) or message.entries:
            return
        now = self._clock()
        started = self._outstanding.get(message.dst)
        if started is None or now - started > RTT_PROBE_STALE_SECONDS:
            self._outstanding[message.dst] = now

    def received(self, message: RaftMessage) -> None:
        if not isinstance(message, AppendEntriesResponse):
            return
        started = self._outstanding.pop(message.src, None)
        if started is not None:
            self._observe(message.src, self._clock() - started)


class ProbingTransport:
    """The `Transport` port with outgoing messages shown to an `RttProbe` first."""

    def __init__(self, inner: Transport[RaftMessage], probe: RttProbe) -> None:
        self.inner = inner
        self._probe = probe

    def send(self, envelope: Send[RaftMessage]) -> None:
        self._probe.sent(envelope.message)
        self.inner.send(envelope)


# -- decisions, from the audit trail ---------------------------------------------------------


class DecisionFollower:
    """Turns the audit trail, as this node applies it, into decision metrics and alert inputs.

    Each call to `follow` reads the events appended since the last call (by `seq`, so a
    snapshot that replaces the machine continues where the trail left off). A node that
    replays its log at start counts its history again: the counters describe what this
    process applied. Times kept for the alerts are the leader's stamps (`at_ms`), so a replay
    does not look like a burst of recent conflicts.
    """

    def __init__(self, metrics: NodeMetrics) -> None:
        self._metrics = metrics
        self.last_seq = 0
        self.conflict_times_ms: deque[int] = deque(maxlen=RECENT_EVENTS_MAX)
        self.expired_without_quorum: deque[tuple[int, str]] = deque(maxlen=RECENT_EVENTS_MAX)
        self.open_deadlines_ms: dict[str, int] = {}

    def follow(self, machine: DecisionMachine) -> None:
        audit = machine.audit
        if not audit or audit[-1].seq <= self.last_seq:
            if audit and audit[-1].seq < self.last_seq:
                self.last_seq = audit[-1].seq  # a different trail: start from its end
            return
        start = len(audit)
        while start > 0 and audit[start - 1].seq > self.last_seq:
            start -= 1
        for event in audit[start:]:
            self._on_event(machine, event)
        self.last_seq = audit[-1].seq

    def _on_event(self, machine: DecisionMachine, event: AuditEvent) -> None:
        record = machine.proposals.get(event.proposal_id)
        m = self._metrics
        match event.type:
            case "proposed" if record is not None:
                m.proposals.labels(kind=record.proposal.kind).inc()
                self.open_deadlines_ms[event.proposal_id] = record.proposal.deadline_ms
            case "voted" if record is not None:
                choice = _vote_choice(record, event)
                if choice is not None:
                    m.votes.labels(kind=record.proposal.kind, choice=choice).inc()
            case "approved" | "rejected" | "expired":
                self.open_deadlines_ms.pop(event.proposal_id, None)
                if record is not None:
                    seconds = max(0, event.at_ms - record.proposal.created_at_ms) / 1000
                    m.decision_duration.labels(outcome=event.type).observe(seconds)
                    if event.type == "expired" and not _quorum_met(machine, record):
                        self.expired_without_quorum.append((event.at_ms, event.proposal_id))
            case "conflict_detected":
                self.conflict_times_ms.append(event.at_ms)
                m.conflicts.labels(type=_conflict_type(machine, event, ": ")).inc()
            case "resolved":
                strategy = event.detail.partition(" by ")[2].partition(":")[0] or "unknown"
                kind = _conflict_type(machine, event, " by ")
                m.resolutions.labels(type=kind, strategy=strategy).inc()
            case "executed" | "failed":
                m.executions.labels(result=event.type).inc()
            case "rolled_back":
                m.rollbacks.inc()
            case _:
                pass


def _vote_choice(record: ProposalRecord, event: AuditEvent) -> str | None:
    for vote in record.votes.values():
        if vote.index == event.index:
            return vote.choice.value
    found = _VOTE_DETAIL.match(event.detail)  # the vote was changed since: read the trail
    return found.group(1) if found else None


def _conflict_type(machine: DecisionMachine, event: AuditEvent, separator: str) -> str:
    conflict_id = event.detail.split(separator, 1)[0]
    found = machine.conflicts.get(conflict_id)
    return found.conflict.type.value if found is not None else "unknown"


def _quorum_met(machine: DecisionMachine, record: ProposalRecord) -> bool:
    config = machine.kinds.get(record.proposal.kind)
    if config is None:
        return True
    votes = {voter: vote.choice for voter, vote in sorted(record.votes.items())}
    try:
        verdict = evaluate(
            machine.effective_policy(record), config.electorate, record.proposal.proposer, votes
        )
    except ValueError:
        return True  # the kind was redeclared since; do not guess
    return verdict.tally.quorum_met


__all__ = [
    "DECISION_BUCKETS",
    "FSYNC_BUCKETS",
    "RTT_BUCKETS",
    "SNAPSHOT_BUCKETS",
    "DecisionFollower",
    "NodeMetrics",
    "NodeSample",
    "ProbingTransport",
    "RttProbe",
    "TimedStorage",
]
