"""Properties: replicas fed the same entries agree byte for byte, snapshots resume exactly,
and values match a plain reference model."""

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from conclave.apps.kv import (
    CompareAndSet,
    Delete,
    Get,
    KVSettings,
    KVStateMachine,
    Put,
    Range,
    Request,
    decode_request,
    encode_request,
)
from conclave.core import Entry, EntryKind

KEYS = st.sampled_from(["a", "b", "c"])
VALUES = st.sampled_from(["", "1", "2"])
COMMANDS = st.one_of(
    st.builds(Put, key=KEYS, value=VALUES),
    st.builds(Delete, key=KEYS),
    st.builds(Get, key=KEYS),
    st.builds(CompareAndSet, key=KEYS, new_value=VALUES, expected_value=VALUES),
    st.builds(CompareAndSet, key=KEYS, new_value=VALUES, expected_revision=st.integers(0, 6)),
)


@dataclass(frozen=True)
class Step:
    """One log entry: a request (seq relative to the client's last), a noop or junk."""

    kind: str
    client_id: int = 0
    seq_delta: int = 0
    command: Put | Delete | Get | CompareAndSet | None = None
    junk: bytes = b""


STEPS = st.one_of(
    st.builds(
        Step,
        kind=st.just("request"),
        client_id=st.integers(1, 4),
        seq_delta=st.sampled_from([-1, 0, 1, 1, 1, 2]),
        command=COMMANDS,
    ),
    st.builds(Step, kind=st.just("noop")),
    st.builds(Step, kind=st.just("junk"), junk=st.binary(max_size=12)),
)


def _entries(steps: list[Step]) -> list[Entry]:
    last_seq: dict[int, int] = {}
    entries = []
    for index, step in enumerate(steps, start=1):
        if step.kind == "noop":
            entries.append(Entry(term=1, index=index, kind=EntryKind.NOOP))
        elif step.kind == "junk":
            entries.append(Entry(term=1, index=index, data=step.junk))
        else:
            assert step.command is not None
            seq = max(1, last_seq.get(step.client_id, 0) + step.seq_delta)
            last_seq[step.client_id] = max(seq, last_seq.get(step.client_id, 0))
            request = Request(client_id=step.client_id, seq=seq, command=step.command)
            entries.append(Entry(term=1, index=index, data=encode_request(request)))
    return entries


def _run(machine: KVStateMachine, entries: list[Entry]) -> list[object]:
    results: list[object] = []
    for entry in entries:
        results.append(machine.apply(entry))
        machine.check_invariants()
    return results


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEPS, max_size=40), sessions_max=st.integers(1, 5))
def test_replicas_applying_the_same_entries_have_identical_snapshots(
    steps: list[Step], sessions_max: int
) -> None:
    entries = _entries(steps)
    one = KVStateMachine(KVSettings(sessions_max=sessions_max))
    two = KVStateMachine(KVSettings(sessions_max=sessions_max))
    assert _run(one, entries) == _run(two, entries)
    assert one.snapshot() == two.snapshot()


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEPS, max_size=40), cut=st.integers(0, 40))
def test_a_replica_restored_from_a_snapshot_continues_identically(
    steps: list[Step], cut: int
) -> None:
    entries = _entries(steps)
    cut = min(cut, len(entries))
    original = KVStateMachine(KVSettings(sessions_max=3))
    _run(original, entries[:cut])
    restored = KVStateMachine(KVSettings(sessions_max=3))
    restored.restore(original.snapshot(), original.applied_index)
    restored.check_invariants()
    assert _run(restored, entries[cut:]) == _run(original, entries[cut:])
    assert restored.snapshot() == original.snapshot()


class _Model:
    """A plain dict with sessions that never evict: what the store must compute."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.mod: dict[str, int] = {}
        self.revision = 0
        self.last_seq: dict[int, int] = {}

    def apply(self, request: Request) -> None:
        last = self.last_seq.get(request.client_id, 0)
        if request.seq <= last:
            return  # a retry or a stale duplicate: executed at most once
        self.last_seq[request.client_id] = request.seq
        command = request.command
        if isinstance(command, Put):
            self._write(command.key, command.value)
        elif isinstance(command, Delete) and command.key in self.data:
            del self.data[command.key], self.mod[command.key]
            self.revision += 1
        elif isinstance(command, CompareAndSet) and self._matches(command):
            self._write(command.key, command.new_value)

    def _matches(self, cas: CompareAndSet) -> bool:
        if cas.expected_revision is not None:
            return self.mod.get(cas.key, 0) == cas.expected_revision
        return self.data.get(cas.key) == cas.expected_value  # never None here: absent fails

    def _write(self, key: str, value: str) -> None:
        self.revision += 1
        self.data[key] = value
        self.mod[key] = self.revision


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEPS, max_size=40))
def test_values_and_revisions_match_a_reference_model(steps: list[Step]) -> None:
    entries = _entries(steps)
    machine = KVStateMachine()
    model = _Model()
    for entry, step in zip(entries, steps, strict=True):
        machine.apply(entry)
        if step.kind == "request":
            model.apply(decode_request(entry.data))
    assert machine.revision == model.revision
    items = machine.query(Range()).items
    assert {i.key: i.value for i in items} == model.data
    assert {i.key: i.mod_revision for i in items} == model.mod
