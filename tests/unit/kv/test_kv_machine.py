"""The kv state machine: semantics, revisions, CAS, sessions, snapshots, queries, bad input."""

import json

import pytest

from conclave.apps.kv import (
    SESSIONLESS,
    CasResult,
    Command,
    CommandResult,
    CompareAndSet,
    Delete,
    DeleteResult,
    ErrorCode,
    ErrorResult,
    Get,
    GetResult,
    KeyValue,
    KVDecodeError,
    KVSettings,
    KVStateMachine,
    Put,
    PutResult,
    Range,
    Request,
    encode_request,
)
from conclave.core import Entry, EntryKind, InvariantViolation, StateMachine


class Replica:
    """A machine fed with consecutive entries, one client session per `client_id`."""

    def __init__(self, settings: KVSettings | None = None) -> None:
        self.machine = KVStateMachine(settings)
        self.seqs: dict[int, int] = {}

    def entry(self, data: bytes, kind: EntryKind = EntryKind.NORMAL) -> CommandResult | None:
        index = self.machine.applied_index + 1
        result = self.machine.apply(Entry(term=1, index=index, kind=kind, data=data))
        self.machine.check_invariants()
        return result

    def send(self, command: Command, client_id: int = 1, seq: int | None = None) -> CommandResult:
        if seq is None:
            seq = self.seqs.get(client_id, 0) + 1
        self.seqs[client_id] = max(seq, self.seqs.get(client_id, 0))
        request = Request(client_id=client_id, seq=seq, command=command)
        result = self.entry(encode_request(request))
        assert result is not None
        return result

    def cas(self, command: CompareAndSet, client_id: int = 1) -> CasResult:
        result = self.send(command, client_id)
        assert isinstance(result, CasResult)
        return result


@pytest.fixture
def kv() -> Replica:
    return Replica()


def test_satisfies_the_state_machine_port() -> None:
    machine: StateMachine = KVStateMachine()
    assert machine.applied_index == 0


# ---------------------------------------------------------------------------- semantics


def test_put_get_delete(kv: Replica) -> None:
    assert kv.send(Get(key="a")) == GetResult(
        revision=0, value=None, create_revision=None, mod_revision=None, version=None
    )
    assert kv.send(Put(key="a", value="1")) == PutResult(revision=1, prev_value=None)
    assert kv.send(Put(key="a", value="2")) == PutResult(revision=2, prev_value="1")
    assert kv.send(Get(key="a")) == GetResult(
        revision=2, value="2", create_revision=1, mod_revision=2, version=2
    )
    assert kv.send(Delete(key="a")) == DeleteResult(revision=3, deleted=True, prev_value="2")
    assert kv.send(Get(key="a")) == GetResult(
        revision=3, value=None, create_revision=None, mod_revision=None, version=None
    )


def test_revisions_follow_etcd(kv: Replica) -> None:
    kv.send(Put(key="a", value="1"))  # rev 1
    kv.send(Put(key="b", value="1"))  # rev 2
    kv.send(Put(key="a", value="2"))  # rev 3
    # Deleting an absent key is not a write: the revision does not move.
    assert kv.send(Delete(key="zzz")) == DeleteResult(revision=3, deleted=False, prev_value=None)
    kv.send(Delete(key="a"))  # rev 4
    assert kv.send(Put(key="a", value="3")) == PutResult(revision=5, prev_value=None)
    # Recreated: a fresh create_revision and version 1.
    assert kv.machine.query(Get(key="a")) == GetResult(
        revision=5, value="3", create_revision=5, mod_revision=5, version=1
    )
    assert kv.machine.query(Get(key="b")).mod_revision == 2
    assert kv.machine.revision == 5
    # Reads are not writes, through the log or not.
    kv.send(Get(key="a"))
    assert kv.machine.revision == 5


def test_empty_value_is_a_value_not_an_absence(kv: Replica) -> None:
    kv.send(Put(key="a", value=""))
    assert kv.machine.query(Get(key="a")).value == ""
    swap = CompareAndSet(key="a", new_value="x", expected_revision=0)
    assert kv.send(swap) == CasResult(
        succeeded=False, revision=1, current_value="", current_revision=1
    )


# ---------------------------------------------------------------------------- compare-and-set


def test_cas_on_value(kv: Replica) -> None:
    kv.send(Put(key="a", value="1"))
    wrong = kv.send(CompareAndSet(key="a", new_value="2", expected_value="0"))
    assert wrong == CasResult(succeeded=False, revision=1, current_value="1", current_revision=1)
    right = kv.send(CompareAndSet(key="a", new_value="2", expected_value="1"))
    assert right == CasResult(succeeded=True, revision=2, current_value="2", current_revision=2)
    assert kv.machine.query(Get(key="a")).version == 2


def test_cas_on_value_of_an_absent_key_fails(kv: Replica) -> None:
    result = kv.send(CompareAndSet(key="a", new_value="2", expected_value="1"))
    assert result == CasResult(succeeded=False, revision=0, current_value=None, current_revision=0)


def test_cas_on_revision(kv: Replica) -> None:
    kv.send(Put(key="a", value="1"))  # rev 1
    kv.send(Put(key="other", value="x"))  # rev 2: the store moved, key "a" did not
    assert not kv.cas(CompareAndSet(key="a", new_value="2", expected_revision=2)).succeeded
    result = kv.send(CompareAndSet(key="a", new_value="2", expected_revision=1))
    assert result == CasResult(succeeded=True, revision=3, current_value="2", current_revision=3)


def test_cas_expecting_absence_creates_once(kv: Replica) -> None:
    create = CompareAndSet(key="lock", new_value="me", expected_revision=0)
    assert kv.cas(create, client_id=1).succeeded
    other = CompareAndSet(key="lock", new_value="you", expected_revision=0)
    assert kv.send(other, client_id=2) == CasResult(
        succeeded=False, revision=1, current_value="me", current_revision=1
    )
    kv.send(Delete(key="lock"))
    assert kv.cas(other, client_id=2).succeeded


# ---------------------------------------------------------------------------- sessions


def test_retry_returns_the_cached_result_without_executing_again(kv: Replica) -> None:
    first = kv.send(Put(key="a", value="1"), client_id=7, seq=1)
    kv.send(Put(key="a", value="other"), client_id=8)
    retry = kv.send(Put(key="a", value="1"), client_id=7, seq=1)
    assert retry == first == PutResult(revision=1, prev_value=None)
    assert kv.machine.revision == 2
    assert kv.machine.query(Get(key="a")).value == "other"


def test_sessionless_requests_execute_every_time_and_open_no_session(kv: Replica) -> None:
    request = Request(client_id=SESSIONLESS, seq=1, command=Put(key="a", value="1"))
    first = kv.entry(encode_request(request))
    again = kv.entry(encode_request(request))
    assert first == PutResult(revision=1, prev_value=None)
    assert again == PutResult(revision=2, prev_value="1")
    assert kv.machine.session_count == 0


def test_retry_of_a_cas_does_not_swap_twice(kv: Replica) -> None:
    kv.send(Put(key="n", value="0"), client_id=1)
    swap = CompareAndSet(key="n", new_value="1", expected_value="0")
    first = kv.send(swap, client_id=2, seq=5)
    assert kv.send(swap, client_id=2, seq=5) == first
    assert first == CasResult(succeeded=True, revision=2, current_value="1", current_revision=2)


def test_stale_sequence_is_refused(kv: Replica) -> None:
    kv.send(Put(key="a", value="1"), client_id=1, seq=1)
    kv.send(Put(key="a", value="2"), client_id=1, seq=2)
    stale = kv.send(Put(key="a", value="1"), client_id=1, seq=1)
    assert isinstance(stale, ErrorResult)
    assert stale.code is ErrorCode.STALE_SEQUENCE
    assert kv.machine.query(Get(key="a")).value == "2"
    assert kv.machine.revision == 2


def test_sequence_gaps_are_allowed(kv: Replica) -> None:
    kv.send(Put(key="a", value="1"), client_id=1, seq=1)
    assert kv.send(Put(key="a", value="2"), client_id=1, seq=10) == PutResult(
        revision=2, prev_value="1"
    )


def test_sessions_are_per_client(kv: Replica) -> None:
    first = kv.send(Put(key="a", value="1"), client_id=1, seq=1)
    second = kv.send(Put(key="a", value="2"), client_id=2, seq=1)  # same seq, other client
    assert first == PutResult(revision=1, prev_value=None)
    assert second == PutResult(revision=2, prev_value="1")


def test_errors_of_known_requests_are_cached_too() -> None:
    kv = Replica(KVSettings(value_bytes_max=3))
    too_large = kv.send(Put(key="a", value="four"), client_id=1, seq=1)
    assert isinstance(too_large, ErrorResult)
    assert too_large.code is ErrorCode.TOO_LARGE
    assert kv.send(Put(key="a", value="four"), client_id=1, seq=1) == too_large
    assert kv.machine.revision == 0


def test_session_table_evicts_the_least_recently_used_client() -> None:
    kv = Replica(KVSettings(sessions_max=2))
    kv.send(Put(key="a", value="1"), client_id=1, seq=1)
    kv.send(Put(key="b", value="1"), client_id=2, seq=1)
    kv.send(Put(key="a", value="1"), client_id=1, seq=1)  # a retry refreshes client 1
    kv.send(Put(key="c", value="1"), client_id=3, seq=1)  # evicts client 2
    assert kv.machine.session_count == 2
    # The documented consequence: client 2 is a stranger again, its retry executes again.
    assert kv.send(Put(key="b", value="1"), client_id=2, seq=1) == PutResult(
        revision=4, prev_value="1"
    )
    # Client 1 was evicted by client 2's return (3 touched after 1), client 3 remains.
    assert kv.send(Put(key="c", value="1"), client_id=3, seq=1) == PutResult(
        revision=3, prev_value=None
    )


# ---------------------------------------------------------------------------- entry kinds


def test_noop_and_conf_change_entries_advance_the_index_only(kv: Replica) -> None:
    before = kv.machine.snapshot()
    assert kv.entry(b"", EntryKind.NOOP) is None
    assert kv.entry(b"not-kv", EntryKind.CONF_CHANGE) is None
    assert kv.machine.applied_index == 2
    assert kv.machine.snapshot() == before


def test_entries_must_be_applied_in_increasing_index_order(kv: Replica) -> None:
    kv.send(Put(key="a", value="1"))
    with pytest.raises(InvariantViolation):
        kv.machine.apply(Entry(term=1, index=1, data=b""))
    # Gaps are fine: a router may give this machine only the entries that are its own.
    assert kv.machine.apply(Entry(term=1, index=5, kind=EntryKind.NOOP)) is None


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80abc", b"{}", b'{"v":1}', b"[" * 10_000, b"pickle\x80\x04"],
)
def test_malformed_entries_yield_an_error_and_change_nothing(kv: Replica, data: bytes) -> None:
    kv.send(Put(key="a", value="1"))
    before = kv.machine.snapshot()
    result = kv.entry(data)
    assert isinstance(result, ErrorResult)
    assert result.code is ErrorCode.MALFORMED
    assert kv.machine.snapshot() == before
    other = Replica()
    other.send(Put(key="a", value="1"))
    assert other.entry(data) == result  # the same answer on every replica


def test_oversized_entries_are_refused_before_parsing() -> None:
    kv = Replica(KVSettings(request_bytes_max=64))
    result = kv.entry(
        encode_request(Request(client_id=1, seq=1, command=Put(key="a", value="x" * 64)))
    )
    assert isinstance(result, ErrorResult)
    assert result.code is ErrorCode.TOO_LARGE
    assert kv.machine.session_count == 0


def test_oversized_keys_are_refused() -> None:
    kv = Replica(KVSettings(key_bytes_max=4))
    result = kv.send(Get(key="ééé"))  # 6 bytes of UTF-8
    assert isinstance(result, ErrorResult)
    assert result.code is ErrorCode.TOO_LARGE


# ---------------------------------------------------------------------------- queries


def test_range_by_prefix_in_key_order(kv: Replica) -> None:
    for key in ("app/b", "app/a", "apq", "ap", "app/c", "b"):
        kv.send(Put(key=key, value=key.upper()))
    kv.send(Delete(key="app/c"))
    result = kv.machine.query(Range(prefix="app/"))
    assert [item.key for item in result.items] == ["app/a", "app/b"]
    assert result.items[0] == KeyValue(
        key="app/a", value="APP/A", create_revision=2, mod_revision=2, version=1
    )
    assert not result.more
    assert result.revision == 7
    everything = kv.machine.query(Range())
    assert [item.key for item in everything.items] == ["ap", "app/a", "app/b", "apq", "b"]


def test_range_pages_with_limit_and_after(kv: Replica) -> None:
    for n in range(5):
        kv.send(Put(key=f"k{n}", value=str(n)))
    page = kv.machine.query(Range(prefix="k", limit=2))
    assert [i.key for i in page.items] == ["k0", "k1"]
    assert page.more
    page = kv.machine.query(Range(prefix="k", after="k1", limit=2))
    assert [i.key for i in page.items] == ["k2", "k3"]
    page = kv.machine.query(Range(prefix="k", after="k3", limit=2))
    assert [i.key for i in page.items] == ["k4"]
    assert not page.more


def test_range_is_capped_by_the_setting() -> None:
    kv = Replica(KVSettings(range_keys_max=2))
    for n in range(3):
        kv.send(Put(key=f"k{n}", value=""))
    page = kv.machine.query(Range(limit=100))
    assert len(page.items) == 2
    assert page.more


def test_query_rejects_other_requests(kv: Replica) -> None:
    with pytest.raises(TypeError):
        kv.machine.query(Put(key="a", value="b"))  # type: ignore[call-overload]


# ---------------------------------------------------------------------------- snapshots


def _busy_replica() -> Replica:
    kv = Replica(KVSettings(sessions_max=3))
    for n in range(6):
        kv.send(Put(key=f"k{n % 3}", value=f"v{n}"), client_id=n % 4 + 1)
    kv.send(Delete(key="k1"), client_id=2)
    kv.send(CompareAndSet(key="k0", new_value="c", expected_value="v3"), client_id=3)
    kv.entry(b"junk")
    return kv


def test_snapshot_restore_round_trip() -> None:
    source = _busy_replica()
    image = source.machine.snapshot()
    target = Replica(KVSettings(sessions_max=3))
    target.machine.restore(image, source.machine.applied_index)
    target.machine.check_invariants()
    assert target.machine.snapshot() == image
    assert target.machine.applied_index == source.machine.applied_index
    assert target.machine.revision == source.machine.revision
    assert target.machine.query(Range()) == source.machine.query(Range())
    # Sessions survived, with their results and their LRU order.
    target.seqs = dict(source.seqs)
    for replica in (source, target):
        retry = replica.send(CompareAndSet(key="k0", new_value="c", expected_value="v3"), 3, 2)
        assert retry == CasResult(succeeded=True, revision=8, current_value="c", current_revision=8)
        replica.send(Put(key="new", value="x"), client_id=9)  # evicts the same session
    assert source.machine.snapshot() == target.machine.snapshot()


def test_restore_trims_sessions_to_a_smaller_table() -> None:
    source = _busy_replica()
    target = KVStateMachine(KVSettings(sessions_max=1))
    target.restore(source.machine.snapshot(), source.machine.applied_index)
    target.check_invariants()
    assert target.session_count == 1


def test_snapshot_bytes_are_deterministic() -> None:
    assert _busy_replica().machine.snapshot() == _busy_replica().machine.snapshot()
    a, b = Replica(), Replica()
    a.send(Put(key="x", value="1"))
    a.send(Put(key="y", value="1"))
    b.send(Put(key="x", value="1"))
    b.send(Put(key="y", value="1"))
    assert a.machine.snapshot() == b.machine.snapshot()
    assert a.machine.snapshot().startswith(b'{"keys":[["x","1",1,1,1],["y","1",2,2,1]]')


def _image(**fields: object) -> bytes:
    obj: dict[str, object] = {"v": 1, "tag": "kv.snapshot", "revision": 2, "keys": []}
    obj["sessions"] = []
    obj.update(fields)
    return json.dumps(obj).encode()


PUT_RESULT = {"tag": "kv.put_result", "revision": 1, "prev_value": None}
ERROR_RESULT = {"tag": "kv.error", "code": "malformed", "message": ""}


@pytest.mark.parametrize(
    "image",
    [
        b"",
        b"{}",
        _image(revision=-1),
        _image(v=True),
        _image(v=2),
        _image(tag="kv.other"),
        _image(keys={}),
        _image(keys=[["a", "b", 1, 1]]),
        _image(keys=[["a", "b", 3, 3, 1]]),  # modified above the store revision
        _image(keys=[["a", "", 2, 1, 1]]),  # modified before created
        _image(keys=[["a", "", 1, 1, 0]]),  # version 0
        _image(keys=[["", "", 1, 1, 1]]),
        _image(keys=[["b", "", 1, 1, 1], ["a", "", 2, 2, 1]]),  # unsorted
        _image(keys=[["a", "", 1, 1, 1], ["a", "", 2, 2, 1]]),  # duplicate
        _image(sessions=[[1, 1, 99, PUT_RESULT]]),  # from the future
        _image(sessions=[[0, 1, 1, PUT_RESULT]]),
        _image(
            sessions=[
                [1, 1, 1, {"tag": "kv.range_result", "revision": 1, "items": [], "more": False}]
            ]
        ),
        _image(sessions=[[2, 1, 1, ERROR_RESULT], [1, 1, 2, ERROR_RESULT]]),  # unsorted
    ],
)
def test_bad_snapshots_are_refused_and_leave_the_state_untouched(image: bytes) -> None:
    kv = _busy_replica()
    before = kv.machine.snapshot()
    with pytest.raises(KVDecodeError):
        kv.machine.restore(image, 10)
    assert kv.machine.snapshot() == before
