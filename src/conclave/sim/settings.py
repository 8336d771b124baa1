"""Settings of one simulated run.

Rules: a run is a pure function of its `SimSettings`; everything random in it is drawn from
`seed`. Units are in the names (`_us` for simulated microseconds). The Raft node class is a
setting (`core_class`) so that tests can run deliberately broken subclasses (planted bugs).
With the default `raft_config` (and `vary_flow_control`), each seed draws the replication
flow-control limits of its nodes (`entries_per_message_max`, `inflight_appends_max`) from
`FLOW_CONTROL_CHOICES`: small limits split a log repair over many messages, which opens
windows that one big append closes (e.g. Raft paper Figure 8 needs a follower to hold an old
entry before it holds the new leader's). A custom `raft_config` is used exactly as given.

The disk model (`disk`): "memory" runs each node on a `MemoryStorage` (fast; a crash keeps a
prefix of the unsynced writes); "wal" runs the real `FileStorage` on a simulated disk
(`conclave.sim.disk.SimDisk`), so crashes tear the real WAL and restarts run its recovery,
self-checked against what was synced; "mixed" (the default) uses the WAL disk on every
`WAL_DISK_EVERY`-th seed (seed % 4 == 3), which keeps sweeps fast and still checks the WAL on
a quarter of them. The storage class is a setting too (`storage_class`), for planted bugs.

The workload (`workload`): "kv" (the default) runs the key-value clients on the bare KV state
machine, checked for linearizability; "decisions" runs every node on the router
(`conclave.apps.router.NodeStateMachine`: KV and decisions on one log) with the decision
workload and checkers of `conclave.sim.decisions`. The decision machine class is a setting
(`decision_machine_class`), for planted bugs in the decision layer. A "kv" run never draws
from the decision workload's rngs, so its output is unchanged by the option.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final, Literal

from conclave.consensus.raft import RaftConfig, RaftNode
from conclave.core.ids import NodeId
from conclave.decision.machine import DecisionMachine
from conclave.storage import FileStorage

TraceSink = Callable[[str], None]
ConfigFactory = Callable[[NodeId], RaftConfig]
DiskModel = Literal["memory", "wal", "mixed"]
DISK_MODELS: Final = ("memory", "wal", "mixed")
Workload = Literal["kv", "decisions"]
WORKLOADS: Final = ("kv", "decisions")
WAL_DISK_EVERY: Final = 4  # with disk="mixed", seeds S with S % 4 == 3 use the WAL disk


# (entries_per_message_max choices, inflight_appends_max choices), drawn per seed.
FLOW_CONTROL_CHOICES: Final = ((1, 1, 4, 64), (1, 2, 8))


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
    vary_flow_control: bool = True  # with the default raft_config only; see the docstring
    disk: DiskModel = "mixed"  # see the module docstring
    storage_class: type[FileStorage] = FileStorage  # the WAL under test (disk "wal" only)
    workload: Workload = "kv"  # see the module docstring
    decision_machine_class: type[DecisionMachine] = DecisionMachine  # workload "decisions"

    @property
    def uses_wal_disk(self) -> bool:
        """Whether this run's nodes store their state in the real WAL on a `SimDisk`."""
        if self.disk == "mixed":
            return self.seed % WAL_DISK_EVERY == WAL_DISK_EVERY - 1
        return self.disk == "wal"

    def node_configs(self, node_ids: tuple[NodeId, ...]) -> dict[NodeId, RaftConfig]:
        """The Raft settings of every node of this run (flow control drawn from the seed)."""
        configs = {node_id: self.raft_config(node_id) for node_id in node_ids}
        if not self.vary_flow_control or self.raft_config is not default_raft_config:
            return configs
        rng = random.Random(f"{self.seed}:flow")
        entries_choices, inflight_choices = FLOW_CONTROL_CHOICES
        entries_max = rng.choice(entries_choices)
        inflight_max = rng.choice(inflight_choices)
        return {
            node_id: replace(
                config, entries_per_message_max=entries_max, inflight_appends_max=inflight_max
            )
            for node_id, config in configs.items()
        }

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
        if self.disk not in DISK_MODELS:
            raise ValueError(f"disk must be one of {DISK_MODELS}")
        if self.workload not in WORKLOADS:
            raise ValueError(f"workload must be one of {WORKLOADS}")


__all__ = [
    "DISK_MODELS",
    "FLOW_CONTROL_CHOICES",
    "WAL_DISK_EVERY",
    "WORKLOADS",
    "ConfigFactory",
    "DiskModel",
    "SimSettings",
    "TraceSink",
    "Workload",
    "default_raft_config",
]
