"""The interaction harness for the Raft core: commands that drive a cluster step by step.

Each node runs the Ready contract by hand so that every persisted write, message and applied
entry is printed. Messages wait in a mailbox until `stabilize` or `deliver-msgs` moves them,
so a script controls every interleaving exactly (as in etcd's raft `testdata/*.txt`).
"""

import dataclasses
import random
from collections.abc import Callable

from datadriven import Command

from conclave.consensus.raft import (
    ConfChange,
    ConfChangeOp,
    RaftConfig,
    RaftNode,
    ReadOnlyOption,
)
from conclave.core import (
    CoreEnv,
    Entry,
    MemoryStorage,
    NotLeader,
    ProposalDropped,
    Ready,
    Send,
)


def _fmt_value(value: object) -> str:
    if isinstance(value, bytes):
        return repr(value.decode(errors="replace"))
    if isinstance(value, Entry):
        return _fmt_entry(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_fmt_value(v) for v in value) + "]"
    if hasattr(value, "value") and type(value).__module__.startswith("conclave"):
        return str(getattr(value, "value", value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        inner = " ".join(
            f"{f.name}={_fmt_value(getattr(value, f.name))}"
            for f in dataclasses.fields(value)
            if f.name != "data"
        )
        return f"{{{inner}}}"
    return str(value)


def _fmt_entry(entry: Entry) -> str:
    data = entry.data.decode(errors="replace")
    suffix = f" {data!r}" if data else ""
    return f"{entry.index}/{entry.term} {entry.kind.value}{suffix}"


def fmt_message(message: object) -> str:
    tag = getattr(message, "TAG", type(message).__name__)
    src = getattr(message, "src", "?")
    dst = getattr(message, "dst", "?")
    parts = [
        f"{f.name}={_fmt_value(getattr(message, f.name))}"
        for f in dataclasses.fields(message)  # type: ignore[arg-type]
        if f.name not in ("src", "dst")
    ]
    return f"{src}->{dst} {tag} " + " ".join(parts)


class RecordingMachine:
    """A state machine that only remembers what it applied."""

    def __init__(self) -> None:
        self.applied = 0
        self.applied_data: list[bytes] = []

    @property
    def applied_index(self) -> int:
        return self.applied

    def apply(self, entry: Entry) -> object:
        self.applied = entry.index
        self.applied_data.append(entry.data)
        return None

    def snapshot(self) -> bytes:
        return b"|".join(self.applied_data)

    def restore(self, data: bytes, applied_index: int) -> None:
        self.applied = applied_index
        self.applied_data = [d for d in data.split(b"|") if d]


class RaftInteraction:
    """A scripted cluster of Raft cores with a controllable mailbox."""

    def __init__(self) -> None:
        self.nodes: dict[int, RaftNode] = {}
        self.configs: dict[int, RaftConfig] = {}
        self.storages: dict[int, MemoryStorage] = {}
        self.machines: dict[int, RecordingMachine] = {}
        self.mailbox: list[Send[object]] = []
        self.isolated: set[int] = set()
        self.crashed: set[int] = set()
        self.read_results: list[str] = []
        self.handlers: dict[str, Callable[[Command], str]] = {
            "add-nodes": self.add_nodes,
            "campaign": self.campaign,
            "tick": self.tick,
            "tick-heartbeat": self.tick_heartbeat,
            "stabilize": self.stabilize,
            "process-ready": self.process_ready,
            "deliver-msgs": self.deliver_msgs,
            "propose": self.propose,
            "propose-conf-change": self.propose_conf_change,
            "transfer-leadership": self.transfer_leadership,
            "read-index": self.read_index,
            "compact": self.compact,
            "isolate": self.isolate,
            "recover": self.recover,
            "crash": self.crash,
            "restart": self.restart,
            "raft-state": self.raft_state,
            "raft-log": self.raft_log,
            "applied": self.applied,
        }

    def execute(self, command: Command) -> str:
        handler = self.handlers.get(command.name)
        if handler is None:
            raise KeyError(f"line {command.line}: unknown command {command.name}")
        return handler(command)

    # -- set-up ---------------------------------------------------------------------------

    def _config(self, node_id: int, command: Command) -> RaftConfig:
        read_only = ReadOnlyOption(command.keyword.get("read-only", "safe"))
        return RaftConfig(
            node_id=node_id,
            election_timeout_ticks_min=command.arg_int("election-min", 10),
            election_timeout_ticks_max=command.arg_int("election-max", 20),
            heartbeat_interval_ticks=command.arg_int("heartbeat", 2),
            pre_vote=command.arg_bool("prevote", True),
            check_quorum=command.arg_bool("checkquorum", True),
            read_only=read_only,
            entries_per_message_max=command.arg_int("entries-max", 64),
            inflight_appends_max=command.arg_int("inflight-max", 8),
        )

    def add_nodes(self, command: Command) -> str:
        count = int(command.positional[0])
        voters = command.arg_ints("voters")
        first = max(self.nodes, default=0) + 1
        for node_id in range(first, first + count):
            config = self._config(node_id, command)
            env = CoreEnv(rng=random.Random(node_id))
            if node_id in voters:
                node = RaftNode.bootstrap(config, env, voters=voters)
            else:
                node = RaftNode.join_as_learner(config, env)
            self.nodes[node_id] = node
            self.configs[node_id] = config
            self.storages[node_id] = MemoryStorage()
            self.machines[node_id] = RecordingMachine()
        return "ok"

    # -- time -----------------------------------------------------------------------------

    def campaign(self, command: Command) -> str:
        """Tick a node until it starts an election (pre-vote or vote)."""
        node = self.nodes[int(command.positional[0])]
        before = node.role
        for _ in range(10 * node_max_ticks(self.configs[node.id])):
            node.tick()
            if node.role != before:
                break
        return f"{node.id} is {node.role.value} at term {node.term}"

    def tick(self, command: Command) -> str:
        node_id = int(command.positional[0])
        for _ in range(command.arg_int("count", 1)):
            self.nodes[node_id].tick()
        return "ok"

    def tick_heartbeat(self, command: Command) -> str:
        node_id = int(command.positional[0])
        for _ in range(self.configs[node_id].heartbeat_interval_ticks):
            self.nodes[node_id].tick()
        return "ok"

    # -- the Ready loop -------------------------------------------------------------------

    def _handle_ready(self, node_id: int, out: list[str]) -> None:
        node = self.nodes[node_id]
        ready: Ready[object] = node.ready()  # type: ignore[assignment]
        out.append(f"> {node_id} handling Ready")
        if ready.hard_state is not None:
            hs = ready.hard_state
            out.append(f"  HardState term={hs.term} vote={hs.vote} commit={hs.commit}")
        if ready.snapshot is not None:
            meta = ready.snapshot.meta
            out.append(f"  Snapshot index={meta.index} term={meta.term} voters={meta.conf.voters}")
        if ready.entries:
            out.append("  Entries: " + ", ".join(_fmt_entry(e) for e in ready.entries))
        storage = self.storages[node_id]
        storage.save(ready.hard_state, ready.snapshot, ready.entries)
        if ready.must_sync:
            storage.sync()
        for envelope in ready.messages:
            out.append(f"  send {fmt_message(envelope.message)}")
            self.mailbox.append(envelope)  # type: ignore[arg-type]
        self._apply(node_id, ready, out)
        for event in ready.traces:
            out.append(f"  trace {event.describe()}")
        node.advance(ready)  # type: ignore[arg-type]

    def _apply(self, node_id: int, ready: Ready[object], out: list[str]) -> None:
        machine = self.machines[node_id]
        snap = ready.snapshot
        if snap is not None and snap.meta.index > machine.applied_index:
            machine.restore(snap.data, snap.meta.index)
        applied = [e for e in ready.committed_entries if e.index > machine.applied_index]
        for entry in applied:
            machine.apply(entry)
        if applied:
            out.append("  Applied: " + ", ".join(_fmt_entry(e) for e in applied))
        for read in ready.read_states:
            out.append(f"  ReadState ctx={read.request_ctx} index={read.index}")

    def _deliver(self, node_id: int, out: list[str], drop: bool = False) -> int:
        inbox = [m for m in self.mailbox if m.to == node_id]
        self.mailbox = [m for m in self.mailbox if m.to != node_id]
        delivered = 0
        for envelope in inbox:
            src = getattr(envelope.message, "src", 0)
            lost = drop or src in self.isolated or node_id in self.isolated
            if lost or node_id in self.crashed:
                out.append(f"  dropped {fmt_message(envelope.message)}")
                continue
            self.nodes[node_id].step(envelope.message)  # type: ignore[arg-type]
            delivered += 1
        return delivered

    def _live(self) -> list[int]:
        return [n for n in sorted(self.nodes) if n not in self.crashed]

    def stabilize(self, command: Command) -> str:
        out: list[str] = []
        for _ in range(1000):
            progressed = False
            for node_id in self._live():
                if self.nodes[node_id].has_ready():
                    self._handle_ready(node_id, out)
                    progressed = True
            for node_id in sorted({m.to for m in self.mailbox}):
                if self._deliver(node_id, out) or any(m.to == node_id for m in self.mailbox):
                    progressed = True
            if not progressed and not self.mailbox:
                break
        return "\n".join(out)

    def process_ready(self, command: Command) -> str:
        out: list[str] = []
        node_id = int(command.positional[0])
        if self.nodes[node_id].has_ready():
            self._handle_ready(node_id, out)
        return "\n".join(out)

    def deliver_msgs(self, command: Command) -> str:
        out: list[str] = []
        drop = command.arg_bool("drop", False)
        targets = [int(p) for p in command.positional] or sorted({m.to for m in self.mailbox})
        for node_id in targets:
            self._deliver(node_id, out, drop=drop)
        return "\n".join(out)

    # -- requests -------------------------------------------------------------------------

    def propose(self, command: Command) -> str:
        node = self.nodes[int(command.positional[0])]
        try:
            ticket = node.propose(command.positional[1].encode())
        except (NotLeader, ProposalDropped) as refusal:
            return f"refused: {refusal}"
        return f"index={ticket.index} term={ticket.term}"

    def propose_conf_change(self, command: Command) -> str:
        node = self.nodes[int(command.positional[0])]
        change = ConfChange(op=ConfChangeOp(command.keyword["op"]), node_id=command.arg_int("node"))
        try:
            ticket = node.propose_conf_change(change)
        except (NotLeader, ProposalDropped) as refusal:
            return f"refused: {refusal}"
        return f"index={ticket.index} term={ticket.term}"

    def transfer_leadership(self, command: Command) -> str:
        node = self.nodes[int(command.positional[0])]
        try:
            node.transfer_leadership(command.arg_int("to"))
        except (NotLeader, ValueError) as refusal:
            return f"refused: {refusal}"
        return "ok"

    def read_index(self, command: Command) -> str:
        node = self.nodes[int(command.positional[0])]
        try:
            node.read_index(command.arg_int("ctx"))
        except NotLeader as refusal:
            return f"refused: {refusal}"
        return "ok"

    def compact(self, command: Command) -> str:
        node_id = int(command.positional[0])
        index = command.arg_int("index")
        self.nodes[node_id].compact(index, self.machines[node_id].snapshot())
        return "ok"

    # -- faults ---------------------------------------------------------------------------

    def isolate(self, command: Command) -> str:
        self.isolated.add(int(command.positional[0]))
        return "ok"

    def recover(self, command: Command) -> str:
        self.isolated.clear()
        return "ok"

    def crash(self, command: Command) -> str:
        node_id = int(command.positional[0])
        self.crashed.add(node_id)
        self.storages[node_id].crash()
        self.mailbox = [m for m in self.mailbox if m.to != node_id]
        return "ok"

    def restart(self, command: Command) -> str:
        node_id = int(command.positional[0])
        self.crashed.discard(node_id)
        stable = self.storages[node_id].load()
        env = CoreEnv(rng=random.Random(node_id * 7919))
        self.nodes[node_id] = RaftNode.restore(self.configs[node_id], env, stable)
        machine = RecordingMachine()
        if stable.snapshot is not None:
            machine.restore(stable.snapshot.data, stable.snapshot.meta.index)
        self.machines[node_id] = machine
        return self._describe(node_id)

    # -- observation ----------------------------------------------------------------------

    def _describe(self, node_id: int) -> str:
        node = self.nodes[node_id]
        state = "crashed" if node_id in self.crashed else node.role.value
        return (
            f"{node_id}: {state} term={node.term} leader={node.leader_id} "
            f"commit={node.commit_index} applied={node.applied_index} last={node.last_index} "
            f"voters={node.conf.voters} learners={node.conf.learners}"
        )

    def raft_state(self, command: Command) -> str:
        return "\n".join(self._describe(n) for n in sorted(self.nodes))

    def raft_log(self, command: Command) -> str:
        node = self.nodes[int(command.positional[0])]
        entries = node.entries(node.first_index, node.last_index + 1)
        lines = [f"snapshot index={node.snapshot_meta.index} term={node.snapshot_meta.term}"]
        lines += [_fmt_entry(e) for e in entries]
        return "\n".join(lines)

    def applied(self, command: Command) -> str:
        node_id = int(command.positional[0])
        data = [d.decode(errors="replace") for d in self.machines[node_id].applied_data if d]
        return f"{node_id}: applied={self.machines[node_id].applied_index} data={data}"


def node_max_ticks(config: RaftConfig) -> int:
    return config.election_timeout_ticks_max


__all__ = ["RaftInteraction", "fmt_message"]
