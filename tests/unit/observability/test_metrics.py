"""Metrics of one node without a node: the exposition parses, registries are per node, the
port wrappers time and probe, and the decision follower reads the audit trail once."""

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from conclave.consensus.raft import AppendEntries, AppendEntriesResponse
from conclave.core.effects import ConfState, Entry, HardState, Send, Snapshot, SnapshotMeta
from conclave.core.memory_storage import MemoryStorage
from conclave.decision.commands import CastVote, DeclareKind, Expire, Propose, Stamped
from conclave.decision.machine import DecisionMachine
from conclave.decision.model import Fraction, Member, Policy, Scope, VoteChoice
from conclave.observability.metrics import (
    DecisionFollower,
    NodeMetrics,
    NodeSample,
    ProbingTransport,
    RttProbe,
    TimedStorage,
)

A, R = VoteChoice.APPROVE, VoteChoice.REJECT
MEMBERS = (Member(principal="ann"), Member(principal="bob"), Member(principal="cyd"))


def _samples(metrics: NodeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _leader_sample() -> NodeSample:
    return NodeSample(
        leader_id=1,
        is_leader=True,
        term=4,
        commit_index=20,
        applied_index=19,
        proposals_pending=2,
        follower_lag={2: 0, 3: 7},
        peer_bytes_sent={2: 100, 3: 50},
        peer_bytes_received={2: 40, 3: 30},
    )


def test_state_is_read_at_scrape_time_and_parses() -> None:
    current: list[NodeSample | None] = [_leader_sample()]
    metrics = NodeMetrics(lambda: current[0])
    got = _samples(metrics)
    assert got["conclave_server_has_leader", ()] == 1
    assert got["conclave_server_is_leader", ()] == 1
    assert got["conclave_server_proposals_committed_total", ()] == 20
    assert got["conclave_server_proposals_applied_total", ()] == 19
    assert got["conclave_server_proposals_pending", ()] == 2
    assert got["conclave_server_follower_lag_entries", (("peer", "3"),)] == 7
    assert got["conclave_network_peer_sent_bytes_total", (("peer", "2"),)] == 100
    assert got["conclave_network_peer_received_bytes_total", (("peer", "3"),)] == 30
    current[0] = NodeSample(
        leader_id=0, is_leader=False, term=5, commit_index=20, applied_index=20, proposals_pending=0
    )
    got = _samples(metrics)
    assert got["conclave_server_has_leader", ()] == 0
    assert not any(name == "conclave_server_follower_lag_entries" for name, _ in got)
    current[0] = None  # a stopped node: the instruments remain
    assert ("conclave_server_leader_changes_seen_total", ()) in _samples(metrics)


def test_each_node_has_its_own_registry_and_the_global_one_is_untouched() -> None:
    before = {m.name for m in REGISTRY.collect()}
    first, second = NodeMetrics(lambda: None), NodeMetrics(lambda: None)
    first.leader_changes.inc()
    assert _samples(first)["conclave_server_leader_changes_seen_total", ()] == 1
    assert _samples(second)["conclave_server_leader_changes_seen_total", ()] == 0
    assert {m.name for m in REGISTRY.collect()} == before


def test_timed_storage_times_fsyncs_and_snapshot_saves_only() -> None:
    ticks = iter(range(100))
    fsyncs: list[float] = []
    snapshots: list[float] = []
    inner = MemoryStorage()
    storage = TimedStorage(
        inner, on_fsync=fsyncs.append, on_snapshot=snapshots.append, timer=lambda: next(ticks)
    )
    storage.save(HardState(term=1, vote=0, commit=0), None, (Entry(index=1, term=1, data=b"x"),))
    storage.sync()
    assert fsyncs == [1]
    assert snapshots == []
    snapshot = Snapshot(meta=SnapshotMeta(index=1, term=1, conf=ConfState(voters=(1,))), data=b"s")
    storage.save(None, snapshot, ())
    assert snapshots == [1]
    assert storage.load() == inner.load()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _heartbeat(dst: int, entries: tuple[Entry, ...] = ()) -> AppendEntries:
    return AppendEntries(
        src=1, dst=dst, term=1, prev_index=0, prev_term=0, entries=entries, commit=0
    )


def _response(src: int) -> AppendEntriesResponse:
    return AppendEntriesResponse(src=src, dst=1, term=1, success=True, match_index=0)


def test_rtt_probe_times_heartbeat_to_response_one_probe_per_peer() -> None:
    clock = FakeClock()
    observed: list[tuple[int, float]] = []
    probe = RttProbe(lambda peer, seconds: observed.append((peer, seconds)), clock)
    sent: list[Send[object]] = []

    class Inner:
        def send(self, envelope: Send[object]) -> None:
            sent.append(envelope)

    transport = ProbingTransport(Inner(), probe)  # type: ignore[arg-type]
    transport.send(Send(to=2, message=_heartbeat(2)))
    clock.now = 0.5
    transport.send(Send(to=2, message=_heartbeat(2)))  # one in flight: not restarted
    transport.send(Send(to=3, message=_heartbeat(3, (Entry(index=1, term=1, data=b""),))))
    clock.now = 1.0
    probe.received(_response(2))
    probe.received(_response(3))  # no probe: appends with entries do not start one
    probe.received(_response(2))  # answered already
    assert observed == [(2, 1.0)]
    assert len(sent) == 3


def _apply(machine: DecisionMachine, index: int, at_ms: int, command: object) -> None:
    machine.apply(Stamped(at_ms=at_ms, command=command), index)  # type: ignore[arg-type]


def test_the_follower_turns_the_audit_trail_into_decision_metrics_once() -> None:
    metrics = NodeMetrics(lambda: None)
    follower = DecisionFollower(metrics)
    machine = DecisionMachine()
    policy = Policy(threshold=Fraction(num=2, den=3), quorum=Fraction(num=2, den=3))
    _apply(machine, 1, 1_000, DeclareKind(kind="cfg", policy=policy, electorate=MEMBERS))
    scope = Scope(writes=("svc/a",))
    for index, proposer in ((2, "ann"), (3, "bob")):
        propose = Propose(proposer=proposer, kind="cfg", scope=scope, deadline_ms=60_000)
        _apply(machine, index, 2_000, propose)
    _apply(machine, 4, 3_000, Propose(proposer="cyd", kind="cfg", deadline_ms=10_000))
    follower.follow(machine)
    assert follower.open_deadlines_ms == {"p2": 60_000, "p3": 60_000, "p4": 10_000}
    assert list(follower.conflict_times_ms) == [2_000]
    _apply(machine, 5, 4_000, CastVote(proposal_id="p2", voter="bob", choice=A))
    _apply(machine, 6, 5_000, CastVote(proposal_id="p2", voter="cyd", choice=A))
    _apply(machine, 7, 20_000, Expire())  # p4 expires with no votes: no quorum
    follower.follow(machine)
    follower.follow(machine)  # nothing new: nothing counted twice
    got = _samples(metrics)
    assert got["conclave_decision_votes_total", (("choice", "approve"), ("kind", "cfg"))] == 2
    assert got["conclave_decision_proposals_total", (("kind", "cfg"),)] == 3
    assert got["conclave_decision_conflicts_total", (("type", "resource"),)] == 1
    resolved = (("strategy", "priority"), ("type", "resource"))
    assert got["conclave_decision_conflict_resolutions_total", resolved] == 1
    assert got["conclave_decision_duration_seconds_count", (("outcome", "approved"),)] == 1
    assert got["conclave_decision_duration_seconds_sum", (("outcome", "approved"),)] == 3.0
    assert got["conclave_decision_duration_seconds_count", (("outcome", "expired"),)] == 1
    assert got["conclave_decision_executions_total", (("result", "executed"),)] == 1
    assert list(follower.expired_without_quorum) == [(20_000, "p4")]
    assert "p4" not in follower.open_deadlines_ms
    assert "p2" not in follower.open_deadlines_ms
    rollback = Propose(proposer="ann", kind="cfg", deadline_ms=90_000, rollback_of="p2")
    _apply(machine, 8, 21_000, rollback)
    _apply(machine, 9, 21_500, CastVote(proposal_id="p8", voter="bob", choice=A))
    _apply(machine, 10, 22_000, CastVote(proposal_id="p8", voter="cyd", choice=R))
    _apply(machine, 11, 22_500, CastVote(proposal_id="p8", voter="ann", choice=A))
    follower.follow(machine)
    got = _samples(metrics)
    assert got["conclave_decision_rollbacks_total", ()] == 1
    assert got["conclave_decision_votes_total", (("choice", "reject"), ("kind", "cfg"))] == 1
