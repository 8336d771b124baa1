"""The replicated key-value state machine (the `StateMachine` port of `conclave.core.ports`).

Rules:
- Pure and deterministic (DESIGN.md rules 3 and 6): `apply` reads only the entry and this
  machine's state. `KVSettings` are part of the replicated behaviour (a limit decides whether a
  command runs), so every replica of a group must use the same settings.
- Entries are applied in strictly increasing index order; anything else is a driver bug and
  raises `InvariantViolation`. NOOP and CONF_CHANGE entries advance the applied index and
  return None.
- Malformed entry data never crashes a replica: it yields `ErrorResult(MALFORMED)` (the same
  bytes on every replica) and changes nothing but the applied index.
- Revisions follow etcd (see `conclave.apps.kv.results`).
- Client sessions give exactly-once execution of retried requests (Raft thesis 6.3). Per
  client the machine keeps the last `seq` it executed and that result. A request whose seq
  equals the last returns the cached result without executing again; a smaller seq returns
  `ErrorResult(STALE_SEQUENCE)`; a larger one (gaps allowed) executes and is cached. Errors
  of a known request (too large) are cached like any result: a retry gets the same answer.
- The session table holds at most `sessions_max` clients. Opening a session beyond that evicts
  the least recently used one, i.e. the one whose last request has the smallest log index
  (a deterministic order, the same on every replica). Consequence: an evicted client is a
  stranger again, so a late retry of its last request executes a second time, and an even
  older duplicate is no longer recognised as stale. Size `sessions_max` well above the number
  of clients active within a retry horizon; idle clients are the ones evicted.
- A request with `client_id == SESSIONLESS` (0) bypasses the session table: it executes each
  time it is applied and is never deduplicated.
- `snapshot()` is canonical JSON of the whole state (revision, keys, sessions with their cached
  results): the same state gives the same bytes. `restore` validates the whole image before
  replacing anything; a bad image raises `KVDecodeError` and leaves the state untouched.
"""

from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, overload

from conclave.apps.kv.codec import (
    KVDecodeError,
    decode_request,
    dumps,
    expect_fields,
    loads,
    result_from_obj,
    result_to_obj,
)
from conclave.apps.kv.commands import (
    SESSIONLESS,
    Command,
    CompareAndSet,
    Delete,
    Get,
    Put,
    Range,
    Request,
    check_int,
    check_key,
    check_text,
)
from conclave.apps.kv.results import (
    CasResult,
    CommandResult,
    DeleteResult,
    ErrorCode,
    ErrorResult,
    GetResult,
    KeyValue,
    PutResult,
    RangeResult,
)
from conclave.core.effects import Entry, EntryKind
from conclave.core.errors import InvariantViolation
from conclave.core.ids import LogIndex

SNAPSHOT_TAG: Final = "kv.snapshot"
SNAPSHOT_VERSION: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class KVSettings:
    """Limits of one kv state machine; identical on every replica of a group."""

    sessions_max: int = 10_000
    key_bytes_max: int = 4_096
    value_bytes_max: int = 1_048_576
    # Bounds parsing work per entry. JSON escapes can make a request several times longer
    # than its key and value, so keep this well above key_bytes_max + value_bytes_max.
    request_bytes_max: int = 8_388_608
    range_keys_max: int = 1_000

    def __post_init__(self) -> None:
        for name in (
            "sessions_max",
            "key_bytes_max",
            "value_bytes_max",
            "request_bytes_max",
            "range_keys_max",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass(frozen=True, slots=True)
class _Session:
    last_seq: int
    last_index: LogIndex
    result: CommandResult


@dataclass(slots=True)
class _State:
    """Everything a snapshot holds. Replaced as a whole by `restore`."""

    revision: int = 0
    keys: dict[str, KeyValue] = field(default_factory=dict)
    sorted_keys: list[str] = field(default_factory=list)  # for range queries
    # Insertion order is least-recently-used first: a session moves to the end whenever a
    # request touches it, and requests arrive in log order.
    sessions: OrderedDict[int, _Session] = field(default_factory=OrderedDict)


class KVStateMachine:
    """A replicated key-value store with etcd-style revisions and client sessions."""

    def __init__(self, settings: KVSettings | None = None) -> None:
        self.settings = settings if settings is not None else KVSettings()
        self._applied_index: LogIndex = 0
        self._state = _State()
        # The command of the last request `apply` decoded (None: not a kv request), so the
        # shell can describe a change without decoding the entry a second time.
        self.last_command: Command | None = None

    # ------------------------------------------------------------------------ introspection

    @property
    def applied_index(self) -> LogIndex:
        """Index of the last entry applied (or of the snapshot restored)."""
        return self._applied_index

    @property
    def revision(self) -> int:
        """The store revision: the number of successful writes so far."""
        return self._state.revision

    @property
    def key_count(self) -> int:
        """How many keys exist."""
        return len(self._state.keys)

    @property
    def session_count(self) -> int:
        """How many client sessions are remembered."""
        return len(self._state.sessions)

    # ------------------------------------------------------------------------ apply

    def apply(self, entry: Entry) -> CommandResult | None:
        """Apply one committed entry; return the result for its proposer (None: not kv)."""
        if entry.index <= self._applied_index:
            raise InvariantViolation(
                f"kv: entry {entry.index} applied at applied index {self._applied_index}"
            )
        self._applied_index = entry.index
        self.last_command = None
        if entry.kind is not EntryKind.NORMAL:
            return None
        if len(entry.data) > self.settings.request_bytes_max:
            return ErrorResult(
                code=ErrorCode.TOO_LARGE,
                message=f"request over {self.settings.request_bytes_max} bytes",
            )
        try:
            request = decode_request(entry.data)
        except KVDecodeError as exc:
            return ErrorResult(code=ErrorCode.MALFORMED, message=str(exc))
        self.last_command = request.command
        return self._apply_request(request, entry.index)

    def _apply_request(self, request: Request, index: LogIndex) -> CommandResult:
        if request.client_id == SESSIONLESS:
            return self._execute(request.command)
        session = self._state.sessions.get(request.client_id)
        if session is not None and request.seq == session.last_seq:
            self._remember(request.client_id, request.seq, index, session.result)
            return session.result  # a retry: answered, not executed again
        if session is not None and request.seq < session.last_seq:
            return ErrorResult(
                code=ErrorCode.STALE_SEQUENCE,
                message=f"seq {request.seq} is below the session's last seq {session.last_seq}",
            )
        result = self._execute(request.command)
        self._remember(request.client_id, request.seq, index, result)
        return result

    def _remember(self, client_id: int, seq: int, index: LogIndex, result: CommandResult) -> None:
        sessions = self._state.sessions
        sessions[client_id] = _Session(seq, index, result)
        sessions.move_to_end(client_id)
        while len(sessions) > self.settings.sessions_max:
            sessions.popitem(last=False)  # least recently used (see the module docstring)

    def _execute(self, command: Command) -> CommandResult:
        too_large = self._check_sizes(command)
        if too_large is not None:
            return too_large
        match command:
            case Put(key=key, value=value):
                return self._put(key, value)
            case Delete(key=key):
                return self._delete(key)
            case CompareAndSet():
                return self._compare_and_set(command)
            case Get(key=key):
                return self._get(key)

    def _check_sizes(self, command: Command) -> ErrorResult | None:
        limits = self.settings
        if len(command.key.encode("utf-8")) > limits.key_bytes_max:
            return ErrorResult(
                code=ErrorCode.TOO_LARGE, message=f"key over {limits.key_bytes_max} bytes"
            )
        value = command.value if isinstance(command, Put) else None
        if isinstance(command, CompareAndSet):
            value = command.new_value
        if value is not None and len(value.encode("utf-8")) > limits.value_bytes_max:
            return ErrorResult(
                code=ErrorCode.TOO_LARGE, message=f"value over {limits.value_bytes_max} bytes"
            )
        return None

    # ------------------------------------------------------------------------ commands

    def _put(self, key: str, value: str) -> PutResult:
        state = self._state
        old = state.keys.get(key)
        state.revision += 1
        if old is None:
            insort(state.sorted_keys, key)
            created, version = state.revision, 1
        else:
            created, version = old.create_revision, old.version + 1
        state.keys[key] = KeyValue(
            key=key,
            value=value,
            create_revision=created,
            mod_revision=state.revision,
            version=version,
        )
        return PutResult(revision=state.revision, prev_value=old.value if old else None)

    def _delete(self, key: str) -> DeleteResult:
        state = self._state
        old = state.keys.pop(key, None)
        if old is None:
            return DeleteResult(revision=state.revision, deleted=False, prev_value=None)
        state.revision += 1
        del state.sorted_keys[bisect_left(state.sorted_keys, key)]
        return DeleteResult(revision=state.revision, deleted=True, prev_value=old.value)

    def _compare_and_set(self, command: CompareAndSet) -> CasResult:
        current = self._state.keys.get(command.key)
        if command.expected_revision is not None:
            matches = (current.mod_revision if current else 0) == command.expected_revision
        else:
            matches = current is not None and current.value == command.expected_value
        if not matches:
            return CasResult(
                succeeded=False,
                revision=self._state.revision,
                current_value=current.value if current else None,
                current_revision=current.mod_revision if current else 0,
            )
        put = self._put(command.key, command.new_value)
        return CasResult(
            succeeded=True,
            revision=put.revision,
            current_value=command.new_value,
            current_revision=put.revision,
        )

    def _get(self, key: str) -> GetResult:
        current = self._state.keys.get(key)
        return GetResult(
            revision=self._state.revision,
            value=current.value if current else None,
            create_revision=current.create_revision if current else None,
            mod_revision=current.mod_revision if current else None,
            version=current.version if current else None,
        )

    def write_change(self, key: str, value: str | None) -> int:
        """Put (or delete, for None) one key on behalf of another replicated machine.

        Used by the decision layer to execute an approved change inside its own log entry (no
        session, no result cache). Raises ValueError when the key or value breaks a limit;
        returns the store revision afterwards.
        """
        command: Command = Put(key=key, value=value) if value is not None else Delete(key=key)
        too_large = self._check_sizes(command)
        if too_large is not None:
            raise ValueError(too_large.message)
        if value is None:
            self._delete(key)
        else:
            self._put(key, value)
        return self._state.revision

    # ------------------------------------------------------------------------ queries

    @overload
    def query(self, request: Get) -> GetResult: ...
    @overload
    def query(self, request: Range) -> RangeResult: ...
    def query(self, request: Get | Range) -> GetResult | RangeResult:
        """Serve a read at the applied index (linearizable once a read barrier reached it)."""
        if isinstance(request, Get):
            return self._get(request.key)
        if isinstance(request, Range):
            return self._range(request)
        raise TypeError(f"kv query must be a Get or a Range, not {type(request).__name__}")

    def _range(self, request: Range) -> RangeResult:
        state = self._state
        limit = self.settings.range_keys_max
        if request.limit is not None:
            limit = min(limit, request.limit)
        position = bisect_left(state.sorted_keys, request.prefix)
        if request.after is not None:
            position = max(position, bisect_right(state.sorted_keys, request.after))
        items: list[KeyValue] = []
        for key in state.sorted_keys[position : position + limit + 1]:
            if not key.startswith(request.prefix):
                break
            items.append(state.keys[key])
        more = len(items) > limit
        return RangeResult(revision=state.revision, items=tuple(items[:limit]), more=more)

    # ------------------------------------------------------------------------ snapshots

    def snapshot(self) -> bytes:
        """Canonical bytes of the whole state as of `applied_index`."""
        state = self._state
        keys = [
            [kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version]
            for kv in (state.keys[key] for key in state.sorted_keys)
        ]
        sessions = [
            [client_id, s.last_seq, s.last_index, result_to_obj(s.result)]
            for client_id, s in sorted(state.sessions.items())
        ]
        return dumps(
            {
                "v": SNAPSHOT_VERSION,
                "tag": SNAPSHOT_TAG,
                "revision": state.revision,
                "keys": keys,
                "sessions": sessions,
            }
        )

    def restore(self, data: bytes, applied_index: LogIndex) -> None:
        """Replace the whole state with a snapshot image taken at `applied_index`."""
        self._state = _decode_snapshot(data, applied_index, self.settings.sessions_max)
        self._applied_index = applied_index

    # ------------------------------------------------------------------------ invariants

    def check_invariants(self) -> None:
        """Raise InvariantViolation when the state is inconsistent (called by the simulator)."""
        _check_state(self._state, self._applied_index, self.settings.sessions_max)


# ---------------------------------------------------------------------------- snapshot decoding


@contextmanager
def _refusing(what: str) -> Iterator[None]:
    """Turn the validation errors of the `check_*` helpers into KVDecodeError."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise KVDecodeError(f"snapshot {what}: {exc}") from None


def _rows(obj: object, what: str, width: int) -> list[list[Any]]:
    if not isinstance(obj, list) or not all(
        isinstance(row, list) and len(row) == width for row in obj
    ):
        raise KVDecodeError(f"snapshot {what} must be a list of {width}-element lists")
    return obj


def _decode_key_row(row: list[Any], revision: int) -> KeyValue:
    key, value, created, modified, version = row
    with _refusing("key row"):
        check_key(key)
        check_text("value", value)
        check_int("create_revision", created, 1)
        check_int("mod_revision", modified, created)
        check_int("version", version, 1)
    if modified > revision:
        raise KVDecodeError("snapshot key row: mod_revision above the store revision")
    return KeyValue(
        key=key, value=value, create_revision=created, mod_revision=modified, version=version
    )


def _decode_session_row(row: list[Any], applied_index: LogIndex) -> tuple[int, _Session]:
    client_id, seq, last_index, result_obj = row
    with _refusing("session row"):
        check_int("client_id", client_id, 1)
        check_int("seq", seq, 1)
        check_int("last_index", last_index, 0)
    if last_index > applied_index:
        raise KVDecodeError("snapshot session row: last_index above the applied index")
    result = result_from_obj(result_obj)
    if isinstance(result, RangeResult):
        raise KVDecodeError("snapshot session row: a range result is never cached")
    return client_id, _Session(seq, last_index, result)


def _decode_snapshot(data: bytes, applied_index: LogIndex, sessions_max: int) -> _State:
    obj = expect_fields(
        loads(data, "snapshot"), "snapshot", ("v", "tag", "revision", "keys", "sessions")
    )
    if type(obj["v"]) is not int or obj["v"] != SNAPSHOT_VERSION or obj["tag"] != SNAPSHOT_TAG:
        raise KVDecodeError(f"not a v{SNAPSHOT_VERSION} {SNAPSHOT_TAG} image")
    revision = obj["revision"]
    with _refusing("revision"):
        check_int("revision", revision, 0)
    state = _State(revision=revision)
    for row in _rows(obj["keys"], "keys", 5):
        kv = _decode_key_row(row, revision)
        if state.sorted_keys and kv.key <= state.sorted_keys[-1]:
            raise KVDecodeError("snapshot keys must be sorted and unique")
        state.keys[kv.key] = kv
        state.sorted_keys.append(kv.key)
    sessions = [
        _decode_session_row(row, applied_index) for row in _rows(obj["sessions"], "sessions", 4)
    ]
    client_ids = [client_id for client_id, _ in sessions]
    if client_ids != sorted(set(client_ids)):
        raise KVDecodeError("snapshot sessions must be sorted by unique client id")
    # Rebuild the LRU order from the log index of each session's last request.
    for client_id, session in sorted(sessions, key=lambda cs: (cs[1].last_index, cs[0])):
        state.sessions[client_id] = session
    while len(state.sessions) > sessions_max:  # this replica was configured smaller
        state.sessions.popitem(last=False)
    return state


# ---------------------------------------------------------------------------- invariants


def _check_state(state: _State, applied_index: LogIndex, sessions_max: int) -> None:
    def fail(why: str) -> None:
        raise InvariantViolation(f"kv: {why}")

    if state.sorted_keys != sorted(state.keys):
        fail("sorted key index differs from the key table")
    for key in state.sorted_keys:
        kv = state.keys[key]
        if kv.key != key:
            fail(f"record of {key!r} names {kv.key!r}")
        if not 1 <= kv.create_revision <= kv.mod_revision <= state.revision:
            fail(f"revisions of {key!r} out of order")
        if kv.version < 1 or kv.version > kv.mod_revision - kv.create_revision + 1:
            fail(f"version of {key!r} impossible for its revisions")
    if len(state.sessions) > sessions_max:
        fail("session table over sessions_max")
    last_indexes = [s.last_index for s in state.sessions.values()]
    if last_indexes != sorted(last_indexes) or any(i > applied_index for i in last_indexes):
        fail("session LRU order broken or a session from the future")


__all__ = ["KVSettings", "KVStateMachine"]
