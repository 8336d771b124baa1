"""Settings of one PBFT simulation run (`conclave sim pbft`).

Rules:
- Everything a run does follows from these settings; `seed` draws every fault parameter.
- n = 3f + 1 replicas (f = 1: 4, f = 2: 7). The fault budget is f for Byzantine and crashed
  replicas together: a crashed replica never comes back (crash-stop; the core has no
  `restore` yet), so it counts as faulty, exactly like a Byzantine one. Network faults
  (loss, duplication, reordering, delay spikes, partitions) hit correct replicas too: they
  cost liveness only while they last, never safety.
- `replica_class` exists for test-only broken variants (planted bugs): the correct replicas
  of the run are instances of it. Byzantine replicas always run the real `PbftReplica`
  underneath their misbehaviour.
"""

from dataclasses import dataclass

from conclave.consensus.pbft import PbftReplica


@dataclass(frozen=True, slots=True, kw_only=True)
class PbftSimSettings:
    """One run of the PBFT simulator."""

    seed: int = 0
    f: int = 1
    clients: int = 4
    ops_per_client: int = 10  # operations each client issues during the fault phase
    heal_ops_per_client: int = 2  # and after the heal (these must complete within the bound)
    keys: int = 3
    tick_us: int = 10_000
    fault_phase_us: int = 3_000_000
    liveness_bound_us: int = 15_000_000  # after the heal, every operation completes by then
    think_us_max: int = 60_000
    loss_max: float = 0.2
    duplicate_max: float = 0.1
    spike_max: float = 0.05
    partitions: bool = True
    crashes: bool = True
    byzantine: bool = True
    checkpoint_interval_seqs: int = 4
    watermark_window_seqs: int = 16
    requests_per_batch_max: int = 4
    request_timeout_ticks: int = 15
    view_change_timeout_ticks: int = 15
    retransmit_interval_ticks: int = 6
    check_linearizability: bool = True
    linearizability_states_max: int = 200_000
    replica_class: type[PbftReplica] = PbftReplica

    def __post_init__(self) -> None:
        if self.f not in (1, 2):
            raise ValueError("f must be 1 or 2")
        if self.clients < 1 or self.ops_per_client < 0 or self.heal_ops_per_client < 1:
            raise ValueError("need at least one client and one operation after the heal")

    @property
    def n(self) -> int:
        """Number of replicas: 3f + 1."""
        return 3 * self.f + 1


__all__ = ["PbftSimSettings"]
