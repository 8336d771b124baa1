"""The driver executes a Ready in the contract's order: persist -> send -> apply -> advance."""

from dataclasses import dataclass, field

from conclave.core import (
    ConfState,
    Entry,
    HardState,
    MemoryStorage,
    ReadState,
    Ready,
    Send,
    Snapshot,
    SnapshotMeta,
)
from conclave.runtime.driver import Driver


@dataclass
class Journal:
    events: list[str] = field(default_factory=list)


class JournalingStorage(MemoryStorage):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    def sync(self) -> None:
        self.journal.events.append("sync")
        super().sync()


@dataclass
class JournalingTransport:
    journal: Journal

    def send(self, envelope: Send[str]) -> None:
        self.journal.events.append(f"send:{envelope.message}")


@dataclass
class CountingMachine:
    journal: Journal
    applied: int = 0

    @property
    def applied_index(self) -> int:
        return self.applied

    def apply(self, entry: Entry) -> object:
        self.journal.events.append(f"apply:{entry.index}")
        self.applied = entry.index
        return entry.index

    def snapshot(self) -> bytes:
        return b""

    def restore(self, data: bytes, applied_index: int) -> None:
        self.journal.events.append(f"restore:{applied_index}")
        self.applied = applied_index


@dataclass
class ScriptedCore:
    journal: Journal
    readies: list[Ready[str]]

    def has_ready(self) -> bool:
        return bool(self.readies)

    def ready(self) -> Ready[str]:
        return self.readies[0]

    def advance(self, ready: Ready[str]) -> None:
        self.journal.events.append("advance")
        self.readies.pop(0)


def _driver(readies: list[Ready[str]]) -> tuple[Driver[str], Journal, list[int]]:
    journal = Journal()
    served: list[int] = []
    driver: Driver[str] = Driver(
        core=ScriptedCore(journal, readies),
        storage=JournalingStorage(journal),
        transport=JournalingTransport(journal),
        state_machine=CountingMachine(journal),
        on_read_ready=lambda read: served.append(read.request_ctx),
    )
    return driver, journal, served


def test_persist_then_send_then_apply_then_advance() -> None:
    ready: Ready[str] = Ready(
        hard_state=HardState(term=1, vote=1, commit=1),
        entries=(Entry(term=1, index=1),),
        must_sync=True,
        messages=(Send(to=2, message="vote"),),
        committed_entries=(Entry(term=1, index=1),),
    )
    driver, journal, _ = _driver([ready])
    assert driver.run() == 1
    assert journal.events == ["sync", "send:vote", "apply:1", "advance"]


def test_a_newer_snapshot_restores_the_machine_before_applying() -> None:
    meta = SnapshotMeta(index=5, term=2, conf=ConfState(voters=(1,)))
    ready: Ready[str] = Ready(
        snapshot=Snapshot(meta=meta),
        must_sync=True,
        committed_entries=(Entry(term=2, index=5), Entry(term=2, index=6)),
    )
    driver, journal, _ = _driver([ready])
    driver.run()
    assert journal.events == ["sync", "restore:5", "apply:6", "advance"]


def test_reads_wait_until_their_index_is_applied() -> None:
    first: Ready[str] = Ready(read_states=(ReadState(request_ctx=7, index=2),))
    second: Ready[str] = Ready(committed_entries=(Entry(term=1, index=1), Entry(term=1, index=2)))
    driver, _, served = _driver([first, second])
    driver.run(readies_max=1)
    assert served == []
    driver.run()
    assert served == [7]
