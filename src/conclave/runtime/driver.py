"""The driver: the one place that executes a core's `Ready` (DESIGN.md section 2a, rule 5).

Order, identical in production and in the simulator:
persist (and fsync when `must_sync`) -> send -> apply (restore a newer snapshot first, then the
committed entries; then serve reads whose index is applied) -> `advance`.
With a `send_early` predicate (the core's `may_send_before_persist`), the messages it accepts
are sent before persisting, so the leader's fsync overlaps replication (effects.py, step 2).

The driver is synchronous and talks only to ports, so the simulator runs it unchanged.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from conclave.core.effects import Entry, ReadState, Ready, Send, TraceEvent
from conclave.core.ports import ReadyCore, StateMachine, Storage, Transport

M = TypeVar("M")

AppliedCallback = Callable[[Entry, object], None]
ReadCallback = Callable[[ReadState], None]
TraceCallback = Callable[[TraceEvent], None]


def _ignore_applied(entry: Entry, result: object) -> None:
    del entry, result


def _ignore_read(read: ReadState) -> None:
    del read


def _ignore_trace(event: TraceEvent) -> None:
    del event


@dataclass(slots=True)
class DriverStats:
    """Counters of work done, for benchmarks and the simulator's report."""

    readies: int = 0
    syncs: int = 0
    messages_sent: int = 0
    entries_persisted: int = 0
    entries_applied: int = 0


@dataclass(slots=True)
class Driver(Generic[M]):
    """Executes Readies of one core against its storage, transport and state machine."""

    core: ReadyCore[M]
    storage: Storage
    transport: Transport[M]
    state_machine: StateMachine
    on_applied: AppliedCallback = _ignore_applied
    on_read_ready: ReadCallback = _ignore_read
    on_trace: TraceCallback = _ignore_trace
    send_early: Callable[[M], bool] | None = None
    stats: DriverStats = field(default_factory=DriverStats)
    _pending_reads: list[ReadState] = field(default_factory=list)

    def run(self, readies_max: int = 1_000) -> int:
        """Execute Readies until the core has none left (bounded); return how many ran."""
        executed = 0
        while executed < readies_max and self.core.has_ready():
            self.execute(self.core.ready())
            executed += 1
        return executed

    def execute(self, ready: Ready[M]) -> None:
        """Execute one Ready in the contract's order, then acknowledge it to the core."""
        early = self.send_early
        if early is None:
            self._persist(ready)
            self._send(ready.messages)
        else:
            self._send(tuple(m for m in ready.messages if early(m.message)))
            self._persist(ready)
            self._send(tuple(m for m in ready.messages if not early(m.message)))
        self._apply(ready)
        for event in ready.traces:
            self.on_trace(event)
        self.core.advance(ready)
        self.stats.readies += 1

    def _persist(self, ready: Ready[M]) -> None:
        self.storage.save(ready.hard_state, ready.snapshot, ready.entries)
        self.stats.entries_persisted += len(ready.entries)
        if ready.must_sync:
            self.storage.sync()
            self.stats.syncs += 1

    def _send(self, messages: tuple[Send[M], ...]) -> None:
        for envelope in messages:
            self.transport.send(envelope)
        self.stats.messages_sent += len(messages)

    def _apply(self, ready: Ready[M]) -> None:
        snapshot = ready.snapshot
        if snapshot is not None and snapshot.meta.index > self.state_machine.applied_index:
            self.state_machine.restore(snapshot.data, snapshot.meta.index)
        for entry in ready.committed_entries:
            if entry.index <= self.state_machine.applied_index:
                continue  # already covered by a restored snapshot
            result = self.state_machine.apply(entry)
            self.stats.entries_applied += 1
            self.on_applied(entry, result)
        self._pending_reads.extend(ready.read_states)
        self._serve_applied_reads()

    def _serve_applied_reads(self) -> None:
        applied = self.state_machine.applied_index
        still_pending: list[ReadState] = []
        for read in self._pending_reads:
            if read.index <= applied:
                self.on_read_ready(read)
            else:
                still_pending.append(read)
        self._pending_reads = still_pending

    def drop_pending_reads(self) -> list[ReadState]:
        """Forget reads not yet served (on crash or loss of leadership); return them."""
        dropped, self._pending_reads = self._pending_reads, []
        return dropped


__all__ = ["Driver", "DriverStats"]
