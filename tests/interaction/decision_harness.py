"""The interaction harness for the decision state machine: one machine, one dict target.

Every command that changes the machine is encoded and decoded through the log codec (as a
replica would see it), applied at the next log index (the first command is index 1, so a
proposal made by the fifth command is `p5`), and followed by `check_invariants()`. Its output
is the result, then every audit event it caused (indented), so a script shows side effects
such as an expiry triggered by a later command or a dependent executed by its dependency.

Commands (`[...]` optional; lists are comma-separated):

    kind name=config policy=majority|unanimity|2/3 [strict] [basis=cast] [quorum=1/2]
         [veto=security] [no-self-approve] [changes-allowed] [strategy=priority]
         voters=ann,bob:2,cyd[security/ops]
         [rules=allowed_values:svc/mode:on|off;max_keys:svc/:3;value_length_max:svc/:8]
    time ms=5000 | time +1000        set the stamp of the following commands
    target-set k=v [k2=v2 ...]       write the target directly (state outside the machine)
    propose by=ann kind=config [set=svc/a=1,svc/b=2] [del=svc/c] [writes=k] [reads=a,b]
            [priority=5] [deadline=+60000|70000] [depends=p3,p4] [rollback=p4]
            [window=1000-2000] [params={"a":1}]
    vote p7 bob approve|reject|abstain ["justification"]
    expire
    status [p7]                      statuses in id order with the last tally reason
    state                            the target's keys, sorted
    audit [p7]                       seq, log index, time, type, proposal, detail
    conflicts                        conflicts in id order with their resolutions
    explain p7                       `explain_lines`
    snapshot-roundtrip               encode, restore into a fresh machine (same target),
                                     re-encode and compare; the restored machine goes on

The default deadline is the stamp + 60000 ms. The target refuses the value "refuse".
An exception from the machine or its invariants is printed as `error: <type>: <message>`
so that a script can record a bug (keep a `# BUG:` comment next to such a case).
"""

from collections.abc import Callable

from datadriven import Command

from conclave.decision.commands import (
    CastVote,
    DecisionCommand,
    DecisionDecodeError,
    DeclareKind,
    Expire,
    Propose,
    Stamped,
    decode_stamped,
    encode_stamped,
)
from conclave.decision.conflicts import (
    AllowedValues,
    MaxKeys,
    PolicyRule,
    ValueLengthMax,
)
from conclave.decision.explain import explain_lines
from conclave.decision.machine import (
    DecisionMachine,
    MemoryTarget,
    Refused,
    Result,
)
from conclave.decision.model import (
    ApprovalBasis,
    Fraction,
    Member,
    Policy,
    Scope,
    VoteChoice,
    Window,
)
from conclave.decision.snapshot import encode_machine, restore_machine

DEFAULT_DEADLINE_MS = 60_000


def DictTarget() -> MemoryTarget:
    """A dict-backed target that refuses the value "refuse" (to make executions fail)."""
    return MemoryTarget(refused_values=("refuse",))


def _items(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(part for part in raw.split(",") if part)


def _fraction(text: str) -> Fraction:
    num, den = text.split("/", 1)
    return Fraction(num=int(num), den=int(den))


def _member(text: str) -> Member:
    """`name`, `name:weight`, `name[role/role]` or `name:weight[role]`."""
    roles: tuple[str, ...] = ()
    if text.endswith("]"):
        text, raw_roles = text[:-1].split("[", 1)
        roles = tuple(r for r in raw_roles.split("/") if r)
    name, _, weight = text.partition(":")
    return Member(principal=name, weight=int(weight) if weight else 1, roles=roles)


def _rule(text: str) -> PolicyRule:
    """`allowed_values:prefix:a|b`, `max_keys:prefix:N` or `value_length_max:prefix:N`."""
    kind, prefix, arg = text.split(":", 2)
    if kind == "allowed_values":
        return AllowedValues(key_prefix=prefix, values=tuple(arg.split("|")))
    if kind == "max_keys":
        return MaxKeys(prefix=prefix, count_max=int(arg))
    if kind == "value_length_max":
        return ValueLengthMax(prefix=prefix, bytes_max=int(arg))
    raise ValueError(f"unknown rule {kind!r}")


def _policy(command: Command) -> Policy:
    name = command.keyword.get("policy", "majority")
    flags = set(command.positional)
    strict = "strict" in flags
    if name == "majority":
        threshold, strict = Fraction(num=1, den=2), True
    elif name == "unanimity":
        threshold = Fraction(num=1, den=1)
    else:
        threshold = _fraction(name)
    quorum = command.keyword.get("quorum")
    return Policy(
        threshold=threshold,
        strict=strict,
        basis=ApprovalBasis(command.keyword.get("basis", "electorate")),
        quorum=_fraction(quorum) if quorum else Fraction(num=0, den=1),
        veto_roles=_items(command.keyword.get("veto")),
        proposer_may_approve="no-self-approve" not in flags,
        vote_changes_allowed="changes-allowed" in flags,
    )


def _fmt_result(result: Result) -> str:
    if isinstance(result, Refused):
        return f"Refused({result.code}: {result.message})"
    if not result.proposal_id:
        return "Accepted"
    return f"Accepted({result.proposal_id}, {result.status.value})"


class DecisionInteraction:
    """Interprets one script over one `DecisionMachine` and a `DictTarget`."""

    def __init__(self) -> None:
        self.target = DictTarget()
        self.machine = DecisionMachine(self.target)
        self.index = 0
        self.stamp_ms = 0
        self.handlers: dict[str, Callable[[Command], str]] = {
            "kind": self.kind,
            "time": self.time,
            "target-set": self.target_set,
            "propose": self.propose,
            "vote": self.vote,
            "expire": self.expire,
            "status": self.status,
            "state": self.state,
            "audit": self.audit,
            "conflicts": self.conflicts,
            "explain": self.explain,
            "snapshot-roundtrip": self.snapshot_roundtrip,
        }

    def execute(self, command: Command) -> str:
        handler = self.handlers.get(command.name)
        if handler is None:
            raise KeyError(f"line {command.line}: unknown command {command.name}")
        return handler(command)

    # -- applying -------------------------------------------------------------------------

    def _apply(self, command: DecisionCommand) -> str:
        stamped = Stamped(at_ms=self.stamp_ms, command=command)
        try:
            decoded = decode_stamped(encode_stamped(stamped))
        except DecisionDecodeError as exc:
            return f"decode error: {exc}"  # never reaches the log: no index is used
        assert decoded == stamped, "the codec changed the command"
        self.index += 1
        seen = len(self.machine.audit)
        lines: list[str] = []
        try:
            result = self.machine.apply(decoded, self.index)
            lines.append(_fmt_result(result))
            self.machine.check_invariants()
        except AssertionError as exc:
            lines.append(f"error: AssertionError: {exc}")
        for event in self.machine.audit[seen:]:
            if event.type == "refused":
                continue  # the result line already says it
            pid = event.proposal_id or "-"
            lines.append(f"  {event.type} {pid}: {event.detail}")
        return "\n".join(lines)

    def kind(self, command: Command) -> str:
        rules = tuple(_rule(r) for r in command.keyword.get("rules", "").split(";") if r)
        return self._apply(
            DeclareKind(
                kind=command.keyword["name"],
                policy=_policy(command),
                electorate=tuple(_member(m) for m in _items(command.keyword["voters"])),
                strategy=command.keyword.get("strategy", "priority"),
                rules=rules,
            )
        )

    def time(self, command: Command) -> str:
        if command.positional and command.positional[0].startswith("+"):
            self.stamp_ms += int(command.positional[0][1:])
        else:
            self.stamp_ms = command.arg_int("ms")
        return f"stamp {self.stamp_ms} (machine now {self.machine.now_ms})"

    def target_set(self, command: Command) -> str:
        for key, value in sorted(command.keyword.items()):
            self.target.data[key] = value
        return self.state(command)

    def _time_arg(self, raw: str) -> int:
        return self.stamp_ms + int(raw[1:]) if raw.startswith("+") else int(raw)

    def propose(self, command: Command) -> str:
        kw = command.keyword
        changes: dict[str, str | None] = {}
        for item in _items(kw.get("set")):
            key, value = item.split("=", 1)
            changes[key] = value
        for key in _items(kw.get("del")):
            changes[key] = None
        writes = sorted({*changes, *_items(kw.get("writes"))})
        window = None
        if "window" in kw:
            start, end = kw["window"].split("-", 1)
            window = Window(start_ms=int(start), end_ms=int(end))
        return self._apply(
            Propose(
                proposer=kw["by"],
                kind=kw["kind"],
                params=kw.get("params", "{}"),
                scope=Scope(
                    reads=tuple(sorted(set(_items(kw.get("reads"))))), writes=tuple(writes)
                ),
                changes=tuple(sorted(changes.items())),
                depends_on=tuple(sorted(set(_items(kw.get("depends"))))),
                priority=command.arg_int("priority", 0),
                window=window,
                deadline_ms=self._time_arg(kw.get("deadline", f"+{DEFAULT_DEADLINE_MS}")),
                rollback_of=kw.get("rollback"),
            )
        )

    def vote(self, command: Command) -> str:
        pid, voter, choice, *rest = command.positional
        return self._apply(
            CastVote(
                proposal_id=pid,
                voter=voter,
                choice=VoteChoice(choice),
                justification=" ".join(rest),
            )
        )

    def expire(self, command: Command) -> str:
        return self._apply(Expire())

    # -- queries --------------------------------------------------------------------------

    def status(self, command: Command) -> str:
        wanted = set(command.positional)
        lines = [f"now {self.machine.now_ms}"]
        for pid, record in sorted(self.machine.proposals.items(), key=lambda i: _id_order(i[0])):
            if wanted and pid not in wanted:
                continue
            escalated = " (escalated)" if record.escalated else ""
            lines.append(f"{pid} {record.status.value}{escalated}: {record.verdict or '-'}")
        return "\n".join(lines)

    def state(self, command: Command) -> str:
        data = self.target.data
        return "\n".join(f"{k} = {data[k]}" for k in sorted(data)) or "(empty)"

    def audit(self, command: Command) -> str:
        wanted = set(command.positional)
        return "\n".join(
            f"{e.seq} [{e.index}] t={e.at_ms} {e.type} {e.proposal_id or '-'}: {e.detail}"
            for e in self.machine.audit
            if not wanted or e.proposal_id in wanted
        )

    def conflicts(self, command: Command) -> str:
        lines = []
        for cid, found in sorted(self.machine.conflicts.items()):
            c = found.conflict
            lines.append(
                f"{cid} {c.severity.value} [{found.detected_index}] "
                f"{' '.join(c.proposals)}: {c.reason}"
            )
            r = found.resolution
            if r is None:
                lines.append("  unresolved")
                continue
            merged = " merged" if r.merged else ""
            lines.append(
                f"  {r.strategy}{merged}: winners [{' '.join(r.winners)}] "
                f"losers [{' '.join(r.losers)}] escalated [{' '.join(r.escalations)}]"
            )
            lines.append(f"  {r.explanation}")
        return "\n".join(lines) or "(none)"

    def explain(self, command: Command) -> str:
        record = self.machine.proposals.get(command.positional[0])
        if record is None:
            return f"no proposal {command.positional[0]}"
        return "\n".join(explain_lines(self.machine, record))

    def snapshot_roundtrip(self, command: Command) -> str:
        image = encode_machine(self.machine)
        restored = DecisionMachine(self.target)
        restore_machine(restored, image)
        problems = []
        if encode_machine(restored) != image:
            problems.append("re-encoded bytes differ")
        for name in ("now_ms", "refusals", "kinds", "proposals", "conflicts", "audit"):
            if getattr(restored, name) != getattr(self.machine, name):
                problems.append(f"{name} differs after restore")
        restored.check_invariants()
        self.machine = restored
        return "\n".join(problems) or f"ok ({len(image)} bytes)"


def _id_order(pid: str) -> tuple[int, str]:
    """`p9` before `p10`: numeric order of log indexes."""
    digits = pid[1:]
    return (int(digits), pid) if digits.isdigit() else (0, pid)
