"""Settings of the PBFT core.

Rules:
- n = len(replica_ids) replicas tolerate f Byzantine ones, with n >= 3f + 1 (Castro and Liskov,
  OSDI 1999, section 4). By default f is the largest that n allows, (n - 1) // 3.
- Every duration is in ticks; every limit is a named `*_max` setting (DESIGN.md rule 10).
- The checkpoint interval K and the watermark window L are counted in sequence numbers; L is a
  multiple of K and at least 2K, so that a replica can keep ordering requests while the next
  checkpoint becomes stable (OSDI 1999, section 4.3).
- Settings that change the replicated behaviour (K, L, batch size, request size) must be the
  same on every replica: pre-prepares and view changes are validated against them.
- Retransmission (`retransmit_*`) and state transfer (`state_transfer_*`) are local liveness
  knobs; they may differ between replicas.
- `PbftConfig` validates itself; a bad combination raises `ValueError` at construction.
"""

from dataclasses import dataclass, field

from conclave.consensus.pbft.crypto import ReplicaKeys
from conclave.core.ids import NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class PbftConfig:
    """Settings of one PBFT replica. All durations are in ticks."""

    replica_id: NodeId
    replica_ids: tuple[NodeId, ...]
    keys: ReplicaKeys = field(repr=False)
    faults_tolerated: int | None = None  # f; None means (n - 1) // 3
    checkpoint_interval_seqs: int = 16  # K
    watermark_window_seqs: int = 64  # L: sequence numbers in (h, h + L] may be ordered
    request_timeout_ticks: int = 20  # a backup waiting this long for a request suspects the primary
    view_change_timeout_ticks: int = 20  # first wait for a new-view; doubles per failed attempt
    view_change_timeout_ticks_max: int = 640  # cap of the exponential back-off
    requests_per_batch_max: int = 16  # requests one pre-prepare orders
    operation_bytes_max: int = 1 << 16  # size of one request's operation
    pending_requests_max: int = 4096  # requests waiting for a sequence number or execution
    clients_max: int = 10_000  # clients whose last reply is cached (exactly-once)
    future_messages_max: int = 1024  # messages of a later view kept until that view starts
    view_change_views_ahead_max: int = 16  # how far ahead of its view a replica tracks votes
    retransmit_interval_ticks: int = 10  # how often a replica re-sends what peers may miss
    retransmit_messages_max: int = 96  # messages one retransmission round may send
    state_transfer_retry_ticks: int = 10  # wait before (re-)asking peers for a checkpoint's state
    snapshot_bytes_max: int = 1 << 26  # size of a state-transfer snapshot

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid PbftConfig: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        out: list[str] = []
        ids = self.replica_ids
        if len(set(ids)) != len(ids) or any(r <= 0 for r in ids):
            out.append("replica_ids must be distinct positive node ids")
        if tuple(sorted(ids)) != ids:
            out.append("replica_ids must be sorted (the primary of view v is replica_ids[v % n])")
        if self.replica_id not in ids:
            out.append(f"replica_id {self.replica_id} is not in replica_ids")
        if self.faults_tolerated is not None and self.faults_tolerated < 0:
            out.append("faults_tolerated must be >= 0")
        elif len(ids) < 3 * self.f + 1:
            out.append(f"n = {len(ids)} replicas cannot tolerate f = {self.f}: need n >= 3f + 1")
        k, window = self.checkpoint_interval_seqs, self.watermark_window_seqs
        if k < 1:
            out.append("checkpoint_interval_seqs must be >= 1")
        elif window < 2 * k or window % k != 0:
            out.append("watermark_window_seqs must be a multiple of and >= 2 * checkpoint interval")
        if self.view_change_timeout_ticks_max < self.view_change_timeout_ticks:
            out.append("view_change_timeout_ticks_max must be >= view_change_timeout_ticks")
        for name in (
            "request_timeout_ticks",
            "view_change_timeout_ticks",
            "requests_per_batch_max",
            "operation_bytes_max",
            "pending_requests_max",
            "clients_max",
            "future_messages_max",
            "view_change_views_ahead_max",
            "retransmit_interval_ticks",
            "retransmit_messages_max",
            "state_transfer_retry_ticks",
            "snapshot_bytes_max",
        ):
            if getattr(self, name) < 1:
                out.append(f"{name} must be >= 1")
        return out

    @property
    def n(self) -> int:
        """Number of replicas."""
        return len(self.replica_ids)

    @property
    def f(self) -> int:
        """Number of Byzantine replicas tolerated."""
        if self.faults_tolerated is not None:
            return self.faults_tolerated
        return (len(self.replica_ids) - 1) // 3

    @property
    def prepared_quorum(self) -> int:
        """Matching prepares from distinct backups that, with the pre-prepare, prepare: 2f."""
        return 2 * self.f

    @property
    def commit_quorum(self) -> int:
        """Matching commits (or checkpoints, or view changes) that make a quorum: 2f + 1."""
        return 2 * self.f + 1

    def primary_of(self, view: int) -> NodeId:
        """The primary of `view`: replica_ids[view mod n] (OSDI 1999, section 4.1)."""
        return self.replica_ids[view % len(self.replica_ids)]


__all__ = ["PbftConfig"]
