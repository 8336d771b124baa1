"""The pure PBFT client (Castro and Liskov, OSDI 1999, section 4.1).

Rules:
- One request outstanding at a time; timestamps grow per client, which is what lets replicas
  execute each request at most once and answer retransmissions from their reply cache.
- A request goes first to the replica believed to be the primary. A result is accepted once
  f + 1 distinct replicas sent matching replies (same timestamp, same result): at least one of
  them is correct. Replies for other timestamps, or a second reply of one replica, are ignored.
- When no result is accepted within `retransmit_timeout_ticks`, the request is retransmitted to
  every replica (backups then forward it and start their timers, which is what replaces a
  faulty primary); the timeout doubles up to `retransmit_timeout_ticks_max`.
- Pure: ticks for time, no I/O. Outputs are collected with `ready()`.
"""

from dataclasses import dataclass, field

from conclave.consensus.pbft.messages import PbftMessage, Reply, Request
from conclave.core.effects import Send, TraceEvent
from conclave.core.errors import ProposalDropped
from conclave.core.ids import NodeId

_BACKOFF_DOUBLINGS_MAX = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class PbftClientConfig:
    """Settings of one client. Durations in ticks."""

    client_id: NodeId
    replica_ids: tuple[NodeId, ...]
    faults_tolerated: int | None = None  # f; None means (n - 1) // 3
    retransmit_timeout_ticks: int = 30
    retransmit_timeout_ticks_max: int = 960

    def __post_init__(self) -> None:
        ids = self.replica_ids
        if not ids or tuple(sorted(set(ids))) != ids:
            raise ValueError("replica_ids must be distinct and sorted")
        if self.client_id <= 0 or self.client_id in ids:
            raise ValueError("client_id must be positive and differ from every replica id")
        if len(ids) < 3 * self.f + 1:
            raise ValueError(f"n = {len(ids)} replicas cannot tolerate f = {self.f}")
        if not 1 <= self.retransmit_timeout_ticks <= self.retransmit_timeout_ticks_max:
            raise ValueError("need 1 <= retransmit_timeout_ticks <= retransmit_timeout_ticks_max")

    @property
    def f(self) -> int:
        if self.faults_tolerated is not None:
            return self.faults_tolerated
        return (len(self.replica_ids) - 1) // 3


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientResult:
    """The accepted result of one request."""

    timestamp: int
    result: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientReady:
    """What a client wants done: requests to send, results accepted, traces."""

    messages: tuple[Send[PbftMessage], ...] = ()
    results: tuple[ClientResult, ...] = ()
    traces: tuple[TraceEvent, ...] = ()


@dataclass(slots=True)
class _Outstanding:
    request: Request
    waited_ticks: int = 0
    retransmissions: int = 0
    results_by_replica: dict[NodeId, bytes] = field(default_factory=dict)


class PbftClient:
    """A PBFT client: submit one request at a time, accept on f + 1 matching replies."""

    def __init__(self, config: PbftClientConfig, *, first_timestamp: int = 1) -> None:
        self._config = config
        self._next_timestamp = first_timestamp
        self._view_hint = 0
        self._outstanding: _Outstanding | None = None
        self._msgs: list[Send[PbftMessage]] = []
        self._results: list[ClientResult] = []
        self._traces: list[TraceEvent] = []

    @property
    def busy(self) -> bool:
        """True while a request waits for its result."""
        return self._outstanding is not None

    @property
    def view_hint(self) -> int:
        """The latest view that f + 1 matching replies reported."""
        return self._view_hint

    def submit(self, operation: bytes) -> Request:
        """Send a new request to the believed primary. Raises ProposalDropped when busy."""
        if self._outstanding is not None:
            raise ProposalDropped("a request is already outstanding")
        request = Request(
            client_id=self._config.client_id, timestamp=self._next_timestamp, operation=operation
        )
        self._next_timestamp += 1
        self._outstanding = _Outstanding(request=request)
        ids = self._config.replica_ids
        self._msgs.append(Send(to=ids[self._view_hint % len(ids)], message=request))
        return request

    def tick(self) -> None:
        """One tick; retransmit to every replica when the timeout expires."""
        waiting = self._outstanding
        if waiting is None:
            return
        waiting.waited_ticks += 1
        doublings = min(waiting.retransmissions, _BACKOFF_DOUBLINGS_MAX)
        timeout = min(
            self._config.retransmit_timeout_ticks << doublings,
            self._config.retransmit_timeout_ticks_max,
        )
        if waiting.waited_ticks < timeout:
            return
        waiting.waited_ticks = 0
        waiting.retransmissions += 1
        self._trace("retransmit", timestamp=waiting.request.timestamp)
        for replica in self._config.replica_ids:
            self._msgs.append(Send(to=replica, message=waiting.request))

    def step(self, reply: Reply) -> None:
        """A reply from a replica; accept the result on f + 1 matching ones."""
        waiting = self._outstanding
        if (
            not isinstance(reply, Reply)
            or waiting is None
            or reply.client_id != self._config.client_id
            or reply.timestamp != waiting.request.timestamp
            or reply.src not in self._config.replica_ids
        ):
            return
        waiting.results_by_replica.setdefault(reply.src, reply.result)
        matching = sum(1 for r in waiting.results_by_replica.values() if r == reply.result)
        if matching < self._config.f + 1:
            return
        self._view_hint = max(self._view_hint, reply.view)
        self._outstanding = None
        self._results.append(ClientResult(timestamp=reply.timestamp, result=reply.result))
        self._trace("accepted", timestamp=reply.timestamp, replies=matching)

    def ready(self) -> ClientReady:
        """Collect requests to send and results accepted since the last call."""
        out = ClientReady(
            messages=tuple(self._msgs), results=tuple(self._results), traces=tuple(self._traces)
        )
        self._msgs, self._results, self._traces = [], [], []
        return out

    def _trace(self, kind: str, **fields: object) -> None:
        self._traces.append(
            TraceEvent(node=self._config.client_id, kind=kind, fields=tuple(fields.items()))
        )


__all__ = ["ClientReady", "ClientResult", "PbftClient", "PbftClientConfig"]
