"""One replicated log, several state machines: the KV store and the decision layer.

Rules (DESIGN.md section 2a, "a small router keyed by command kind"):
- A NORMAL entry whose data starts with `DECISION_PREFIX` (b"D") is a decision command
  (`conclave.decision.commands`, a `Stamped` envelope after the prefix); every other NORMAL
  entry is a KV request. KV requests are JSON objects and always start with b"{", so the two
  never collide.
- Approved decisions execute against the KV store inside their own entry (`KVTarget`), so a
  decision and its writes are one atomic step of the log. The writes are reported in the
  entry's result (`DecisionApplied.writes`) for watchers.
- A NORMAL entry starting with `APP_PREFIX` (b"A") goes to the embedded application's
  machine (`AppMachine`, see `conclave.embedded`); every replica must run the same
  application. Without one, such an entry yields `Refused("no_application", ...)`.
- A malformed decision command yields `Refused("malformed", ...)` with the same message on
  every replica and changes nothing but the applied index.
- The snapshot holds both machines (canonical JSON of the two images); `restore` validates
  both before replacing either.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Final, Protocol

from conclave.apps.kv import Get, KVSettings, KVStateMachine, Range
from conclave.apps.kv.codec import KVDecodeError
from conclave.core.effects import Entry, EntryKind
from conclave.core.errors import InvariantViolation
from conclave.core.ids import LogIndex
from conclave.decision.commands import DecisionDecodeError, Stamped, decode_stamped, encode_stamped
from conclave.decision.machine import DecisionMachine, ExecutionRefused, Refused, Result
from conclave.decision.snapshot import encode_machine, restore_machine

DECISION_PREFIX: Final = b"D"
APP_PREFIX: Final = b"A"
SNAPSHOT_TAG: Final = "router.snapshot"


def encode_decision(stamped: Stamped) -> bytes:
    """The entry data of a decision command."""
    return DECISION_PREFIX + encode_stamped(stamped)


class AppMachine(Protocol):
    """An application's replicated state: deterministic apply, snapshot and restore."""

    def apply(self, data: bytes) -> object: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...


@dataclass(slots=True)
class KVTarget:
    """Executes decided changes on the KV store; remembers what one entry wrote."""

    kv: KVStateMachine
    writes: list[tuple[str, str | None, int]] = field(default_factory=list)

    def read(self, key: str) -> str | None:
        return self.kv.query(Get(key=key)).value

    def scan(self, prefix: str) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        after: str | None = None
        while True:
            page = self.kv.query(Range(prefix=prefix, after=after))
            items.extend((kv.key, kv.value) for kv in page.items)
            if not page.more or not page.items:
                return items
            after = page.items[-1].key

    def write(self, key: str, value: str | None) -> None:
        try:
            revision = self.kv.write_change(key, value)
        except ValueError as exc:
            raise ExecutionRefused(str(exc)) from None
        self.writes.append((key, value, revision))


@dataclass(frozen=True, slots=True)
class DecisionApplied:
    """The result of a decision entry: the machine's answer and the KV writes it made."""

    result: Result
    writes: tuple[tuple[str, str | None, int], ...]


class NodeStateMachine:
    """The `StateMachine` port over the KV store and the decision machine."""

    def __init__(
        self, kv_settings: KVSettings | None = None, app: AppMachine | None = None
    ) -> None:
        self.app = app
        self.kv = KVStateMachine(kv_settings)
        self.target = KVTarget(self.kv)
        self.decisions = DecisionMachine(self.target)
        self._applied_index: LogIndex = 0

    @property
    def applied_index(self) -> LogIndex:
        return self._applied_index

    def apply(self, entry: Entry) -> object:
        if entry.index <= self._applied_index:
            raise InvariantViolation(
                f"router: entry {entry.index} applied at applied index {self._applied_index}"
            )
        self._applied_index = entry.index
        if entry.kind is EntryKind.NORMAL and entry.data.startswith(DECISION_PREFIX):
            return self._apply_decision(entry)
        if entry.kind is EntryKind.NORMAL and entry.data.startswith(APP_PREFIX):
            if self.app is None:
                return Refused("no_application", "no application runs on this cluster")
            return self.app.apply(entry.data[len(APP_PREFIX) :])
        return self.kv.apply(entry)

    def _apply_decision(self, entry: Entry) -> DecisionApplied:
        self.target.writes = []
        try:
            stamped = decode_stamped(entry.data[len(DECISION_PREFIX) :])
        except DecisionDecodeError as exc:
            return DecisionApplied(Refused("malformed", str(exc)), ())
        result = self.decisions.apply(stamped, entry.index)
        return DecisionApplied(result, tuple(self.target.writes))

    def snapshot(self) -> bytes:
        obj = {
            "tag": SNAPSHOT_TAG,
            "kv": self.kv.snapshot().decode(),
            "decisions": encode_machine(self.decisions).decode(),
            "app": None if self.app is None else base64.b64encode(self.app.snapshot()).decode(),
        }
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def restore(self, data: bytes, applied_index: LogIndex) -> None:
        try:
            obj = json.loads(data)
            if not isinstance(obj, dict) or obj.get("tag") != SNAPSHOT_TAG:
                raise KVDecodeError("not a router snapshot")
            kv_image, decision_image = obj["kv"].encode(), obj["decisions"].encode()
            app_text = obj.get("app")
            app_image = None if app_text is None else base64.b64decode(app_text, validate=True)
        except (ValueError, KeyError, AttributeError, UnicodeError, binascii.Error) as exc:
            raise KVDecodeError(f"router snapshot: {exc}") from None
        kv = KVStateMachine(self.kv.settings)
        kv.restore(kv_image, applied_index)  # validates; raises before anything is replaced
        target = KVTarget(kv)
        decisions = DecisionMachine(target)
        restore_machine(decisions, decision_image)
        if self.app is not None and app_image is not None:
            self.app.restore(app_image)
        self.kv, self.target, self.decisions = kv, target, decisions
        self._applied_index = applied_index

    def check_invariants(self) -> None:
        self.kv.check_invariants()
        self.decisions.check_invariants()


__all__ = [
    "APP_PREFIX",
    "AppMachine",
    "DECISION_PREFIX",
    "DecisionApplied",
    "KVTarget",
    "NodeStateMachine",
    "encode_decision",
]
