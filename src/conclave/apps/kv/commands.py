"""Commands of the replicated key-value store, its local queries, and the session envelope.

Rules:
- Every command is a frozen, slotted, keyword-only dataclass with a stable `TAG` (DESIGN.md
  rule 7). Tags are part of the wire format and of snapshots: never rename one, add a new one.
- Construction validates the shape (types, a non-empty key, exactly one CAS expectation,
  positive ids), so an invalid command cannot exist in memory and the codec only has to call
  the constructors. Size limits are not shape: they are settings of the state machine
  (`KVSettings`), checked when a command is applied.
- Keys and values are text that encodes to UTF-8 (no lone surrogates), so byte sizes are well
  defined and encodings are deterministic.
- A `Request` carries one command of one client session: `(client_id, seq)` identifies it for
  exactly-once retries (see `conclave.apps.kv.machine`). A client has at most one request in
  flight and retries it with the same `seq`; its next request uses a larger `seq`.
  `client_id == SESSIONLESS` (0) is a request outside any session: executed every time it is
  applied, never cached (an HTTP write that carries no request id).
- `Get` is a command (a read through the log, linearizable without a read barrier); `Range`
  is a local query only, served by `KVStateMachine.query` at the applied index.
"""

from dataclasses import dataclass
from typing import ClassVar, Final

# Ids and sequence numbers fit a signed 64-bit integer, so clients in any language can hold
# them and the codec can refuse absurd numbers before converting them.
ID_MAX: Final = 2**63 - 1
SESSIONLESS: Final = 0  # client_id of a request that belongs to no session


def check_text(name: str, text: object) -> None:
    """Raise unless `text` is a str that encodes to UTF-8."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid Unicode text (lone surrogate)") from None


def check_key(key: object) -> None:
    """Raise unless `key` is a non-empty UTF-8 encodable str."""
    check_text("key", key)
    if key == "":
        raise ValueError("key must not be empty")


def check_int(name: str, value: object, minimum: int) -> None:
    """Raise unless `value` is an int (not a bool) in [minimum, ID_MAX]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer")
    if not minimum <= value <= ID_MAX:
        raise ValueError(f"{name} must be in [{minimum}, {ID_MAX}]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Put:
    """Set `key` to `value`, creating the key when absent. Always a write."""

    TAG: ClassVar[str] = "kv.put"
    key: str
    value: str

    def __post_init__(self) -> None:
        check_key(self.key)
        check_text("value", self.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete:
    """Remove `key`. A write only when the key exists (etcd: deleting nothing is no revision)."""

    TAG: ClassVar[str] = "kv.delete"
    key: str

    def __post_init__(self) -> None:
        check_key(self.key)


@dataclass(frozen=True, slots=True, kw_only=True)
class CompareAndSet:
    """Set `key` to `new_value` if the key matches exactly one expectation.

    - `expected_value="v"`: the key exists and holds "v".
    - `expected_revision=n`: the key's mod_revision is n; 0 means "the key is absent"
      (an absent key has mod_revision 0, as in etcd).
    """

    TAG: ClassVar[str] = "kv.cas"
    key: str
    new_value: str
    expected_value: str | None = None
    expected_revision: int | None = None

    def __post_init__(self) -> None:
        check_key(self.key)
        check_text("new_value", self.new_value)
        if (self.expected_value is None) == (self.expected_revision is None):
            raise ValueError("exactly one of expected_value and expected_revision is required")
        if self.expected_value is not None:
            check_text("expected_value", self.expected_value)
        if self.expected_revision is not None:
            check_int("expected_revision", self.expected_revision, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Get:
    """Read `key`. As a command it goes through the log; as a query it reads locally."""

    TAG: ClassVar[str] = "kv.get"
    key: str

    def __post_init__(self) -> None:
        check_key(self.key)


@dataclass(frozen=True, slots=True, kw_only=True)
class Range:
    """Local query: keys starting with `prefix` and greater than `after`, in key order.

    At most `limit` keys are returned (None: the machine's `range_keys_max`, which also caps
    any larger limit). Page through a large range by passing the last key seen as `after`.
    """

    TAG: ClassVar[str] = "kv.range"
    prefix: str = ""
    after: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        check_text("prefix", self.prefix)
        if self.after is not None:
            check_text("after", self.after)
        if self.limit is not None:
            check_int("limit", self.limit, 1)


Command = Put | Delete | CompareAndSet | Get
COMMAND_TYPES: Final[tuple[type[Command], ...]] = (Put, Delete, CompareAndSet, Get)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One command of one client session; `(client_id, seq)` makes retries idempotent."""

    TAG: ClassVar[str] = "kv.request"
    client_id: int
    seq: int
    command: Command

    def __post_init__(self) -> None:
        check_int("client_id", self.client_id, SESSIONLESS)
        check_int("seq", self.seq, 1)
        if not isinstance(self.command, COMMAND_TYPES):
            raise TypeError("command must be a Put, Delete, CompareAndSet or Get")


__all__ = [
    "COMMAND_TYPES",
    "ID_MAX",
    "SESSIONLESS",
    "Command",
    "CompareAndSet",
    "Delete",
    "Get",
    "Put",
    "Range",
    "Request",
]
