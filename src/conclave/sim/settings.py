"""Settings of one simulated run.

Rules: a run is a pure function of its `SimSettings`; everything random in it is drawn from
`seed`. Units are in the names (`_us` for simulated microseconds). The Raft node class is a
setting (`core_class`) so that tests can run deliberately broken subclasses (planted bugs).
"""

from collections.abc import Callable
from dataclasses import dataclass

from conclave.consensus.raft import RaftConfig, RaftNode
from conclave.core.ids import NodeId

TraceSink = Callable[[str], None]
ConfigFactory = Callable[[NodeId], RaftConfig]


def default_raft_config(node_id: NodeId) -> RaftConfig:
    """The Raft settings of a simulated node: the core's defaults."""
    return RaftConfig(node_id=node_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimSettings:
    """One run of the simulator; see the module docstring."""

    seed: int = 0
    nodes: int = 5  # initial voters; one more node is kept as a spare for membership changes
    ops: int = 200  # client operations over the whole run, shared by the clients
    trace: bool = False  # record a readable event log (slower)
    trace_sink: TraceSink | None = None  # receives every trace line as it happens
    trace_tail: int = 50  # trace lines kept for a violation report
    trace_from_event: int = 0  # start tracing only after this many events (fast replays)
    # workload
    clients: int | None = None  # None: drawn in [clients_min, clients_max]
    clients_min: int = 3
    clients_max: int = 10
    keys: int = 5
    client_think_us_max: int = 30_000
    client_delay_us_max: int = 1_000  # one way, client <-> node
    attempt_timeout_us_min: int = 20_000  # a run draws its client timeout in [min, max]
    attempt_timeout_us_max: int = 150_000
    op_timeout_us_min: int = 300_000  # a run draws how long a client tries one op
    op_timeout_us_max: int = 2_000_000
    # time and network
    tick_interval_us: int = 10_000
    clock_drift_max: float = 0.05
    loss_max: float = 0.05
    duplicate_max: float = 0.05
    spike_max: float = 0.02
    # faults
    faults: bool = True
    fault_interval_us_mean: int = 150_000
    compaction_entries_min: int = 16
    compaction_entries_max: int = 128
    # phases
    fault_phase_us_max: int = 30_000_000
    heal_bound_us: int = 10_000_000
    control_interval_us: int = 20_000
    # checking
    check_linearizability: bool = True
    linearizability_states_max: int = 1_000_000
    log_pair_check_events: int = 2_000
    events_max: int = 500_000  # a typical run has 3k-30k events; more is a runaway
    pending_events_max: int = 200_000  # more events in flight is a message storm
    # the system under test
    core_class: type[RaftNode] = RaftNode
    raft_config: ConfigFactory = default_raft_config

    def __post_init__(self) -> None:
        if self.nodes < 3:
            raise ValueError("nodes must be at least 3")
        if self.ops < 0 or self.keys < 1:
            raise ValueError("ops must be >= 0 and keys >= 1")
        if not 1 <= self.clients_min <= self.clients_max:
            raise ValueError("need 1 <= clients_min <= clients_max")
        if self.clients is not None and self.clients < 1:
            raise ValueError("clients must be >= 1")
        if not 1 <= self.compaction_entries_min <= self.compaction_entries_max:
            raise ValueError("need 1 <= compaction_entries_min <= compaction_entries_max")
        if not 1 <= self.op_timeout_us_min <= self.op_timeout_us_max:
            raise ValueError("need 1 <= op_timeout_us_min <= op_timeout_us_max")
        if not 1 <= self.attempt_timeout_us_min <= self.attempt_timeout_us_max:
            raise ValueError("need 1 <= attempt_timeout_us_min <= attempt_timeout_us_max")
        if self.tick_interval_us < 1 or not 0.0 <= self.clock_drift_max < 0.5:
            raise ValueError("tick_interval_us must be >= 1 and clock_drift_max in [0, 0.5)")


__all__ = ["ConfigFactory", "SimSettings", "TraceSink", "default_raft_config"]
