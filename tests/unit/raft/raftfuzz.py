"""A small randomized checker for the Raft core (a unit-scale cousin of the simulator).

One seed drives everything: message loss, duplication and reordering, partitions, crashes
that lose unsynced writes, restarts, proposals, reads, compaction, membership changes and
leadership transfers. After every input it checks election safety, log matching of committed
entries, state-machine safety, leader completeness and that every ReadState index covers all
entries committed before the read began. Then it heals and requires progress.

Run many seeds by hand: `python tests/unit/raft/raftfuzz.py 500`.
"""

import contextlib
import random
import sys

from raftnet import Net

from conclave.consensus.raft import (
    ConfChange,
    ConfChangeOp,
    RaftMessage,
    RaftNode,
    ReadOnlyOption,
    Role,
)
from conclave.core import NotLeader, ProposalDropped


class SafetyError(AssertionError):
    pass


class Fuzz:
    def __init__(self, seed: int, *, nodes: int = 3, steps: int = 1500) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.steps = steps
        lease = self.rng.random() < 0.3
        settings: dict[str, object] = {
            "pre_vote": self.rng.random() < 0.7,
            "check_quorum": lease or self.rng.random() < 0.7,
            "read_only": ReadOnlyOption.LEASE_BASED if lease else ReadOnlyOption.SAFE,
            "entries_per_message_max": self.rng.choice([1, 2, 8, 64]),
            "inflight_appends_max": self.rng.choice([1, 2, 8]),
            "learner_catch_up_lag_max": 4,
        }
        self.net = Net(nodes, seed=seed, **settings)
        self.next_id = nodes + 1
        self.committed: dict[int, int] = {}  # index -> term, as seen committed anywhere
        self.commit_seen_term: dict[int, int] = {}  # index -> term of its first observer
        self.applied: dict[int, tuple[int, bytes]] = {}
        self.leaders: dict[int, int] = {}  # term -> leader
        self.read_floor: dict[tuple[int, int], int] = {}  # (node, ctx) -> floor
        self.read_ctx = 0
        self.crash_at: dict[int, int] = {}
        self.proposals = 0
        self.step = 0
        self.net.drop = self._drop
        self.loss = self.rng.choice([0.0, 0.05, 0.2])
        self.dup = self.rng.choice([0.0, 0.05])

    # -- network --------------------------------------------------------------------------

    def _drop(self, msg: RaftMessage) -> bool:
        return self.rng.random() < self.loss

    def deliver_some(self) -> None:
        net = self.net
        net.process_all()
        if not net.mailbox:
            return
        for _ in range(self.rng.randint(1, 6)):
            if not net.mailbox:
                break
            i = self.rng.randrange(len(net.mailbox))
            envelope = net.mailbox[i]
            if self.rng.random() >= self.dup:
                net.mailbox.pop(i)
            msg = envelope.message
            if not net.connected(msg.src, envelope.to) or self._drop(msg):
                continue
            net.nodes[envelope.to].step(msg)
            self.after(envelope.to)

    # -- checks ---------------------------------------------------------------------------

    def after(self, node_id: int) -> None:
        self.net.process(node_id)
        self.check_node(node_id)

    def check_node(self, node_id: int) -> None:
        node = self.net.nodes[node_id]
        node.check_invariants()
        if node.role is Role.LEADER:
            known = self.leaders.setdefault(node.term, node_id)
            if known != node_id:
                raise SafetyError(f"two leaders in term {node.term}: {known}, {node_id}")
            self.check_leader_completeness(node)
        lo = max(node.first_index, node.commit_index - 200)
        for index in range(lo, node.commit_index + 1):
            term = node.term_at(index)
            assert term is not None
            seen = self.committed.setdefault(index, term)
            self.commit_seen_term.setdefault(index, node.term)
            if seen != term:
                raise SafetyError(f"n{node_id} committed {index}/{term}, elsewhere {seen}")
        machine = self.net.machines[node_id]
        for entry in machine.entries[-50:]:
            seen_applied = self.applied.setdefault(entry.index, (entry.term, entry.data))
            if seen_applied != (entry.term, entry.data):
                raise SafetyError(f"n{node_id} applied {entry.index}/{entry.term} differently")
        states = self.net.read_states[node_id]
        while states:
            read = states.pop()
            floor = self.read_floor.pop((node_id, read.request_ctx))
            if read.index < floor:
                raise SafetyError(f"n{node_id} read at {read.index} < committed {floor}")

    def check_leader_completeness(self, leader: RaftNode) -> None:
        for index, term in self.committed.items():
            if index <= leader.snapshot_meta.index:
                continue
            if self.commit_seen_term[index] >= leader.term:
                continue  # leader completeness covers entries committed in earlier terms
            if leader.term_at(index) != term:
                raise SafetyError(
                    f"leader n{leader.id} t{leader.term} lacks committed {index}/{term}"
                )

    # -- actions --------------------------------------------------------------------------

    def members(self) -> list[int]:
        return self.net.live()

    def act(self, step: int) -> None:
        net = self.net
        roll = self.rng.random()
        leader = net.leader()
        for node_id, due in list(self.crash_at.items()):
            if due <= step:
                del self.crash_at[node_id]
                net.restart(node_id)
                self.check_node(node_id)
        if roll < 0.35:
            self.deliver_some()
        elif roll < 0.55:
            for node_id in net.live():
                net.nodes[node_id].tick()
                self.after(node_id)
        elif roll < 0.70 and leader is not None:
            self.proposals += 1
            with contextlib.suppress(NotLeader, ProposalDropped):
                leader.propose(b"p%d" % self.proposals)
            self.after(leader.id)
        elif roll < 0.76 and leader is not None:
            self.read(leader)
        elif roll < 0.785:
            self.crash()
        elif roll < 0.82:
            self.partition()
        elif roll < 0.86:
            self.compact()
        elif roll < 0.90 and leader is not None:
            self.conf_change(leader)
        elif roll < 0.91 and leader is not None:
            voters = [v for v in leader.conf.voters if v != leader.id]
            if voters:
                leader.transfer_leadership(self.rng.choice(voters))
                self.after(leader.id)
        else:
            self.deliver_some()

    def read(self, leader: RaftNode) -> None:
        self.read_ctx += 1
        floor = max(self.committed, default=0)
        self.read_floor[(leader.id, self.read_ctx)] = floor
        try:
            leader.read_index(self.read_ctx)
        except (NotLeader, ProposalDropped):
            del self.read_floor[(leader.id, self.read_ctx)]
        self.after(leader.id)

    def crash(self) -> None:
        live = self.net.live()
        if len(self.net.crashed) >= 2 or not live:
            return
        node_id = self.rng.choice(live)
        storage = self.net.storages[node_id]
        self.net.crash(node_id, self.rng.randint(0, storage.unsynced_write_count))
        self.net.read_states[node_id].clear()
        for key in [k for k in self.read_floor if k[0] == node_id]:
            del self.read_floor[key]
        self.crash_at[node_id] = self.step + self.rng.randint(1, 200)

    def partition(self) -> None:
        if self.net.partitions or self.rng.random() < 0.5:
            self.net.heal()
            return
        ids = sorted(self.net.nodes)
        side = {n for n in ids if self.rng.random() < 0.5}
        self.net.partitions = [side]

    def compact(self) -> None:
        live = self.net.live()
        if not live:
            return
        node_id = self.rng.choice(live)
        node = self.net.nodes[node_id]
        machine = self.net.machines[node_id]
        if node.applied_index > node.snapshot_meta.index:
            node.compact(node.applied_index, machine.snapshot())
            self.after(node_id)

    def conf_change(self, leader: RaftNode) -> None:
        conf = leader.conf
        op = self.rng.choice(list(ConfChangeOp))
        if op is ConfChangeOp.ADD_LEARNER:
            if len(conf.members()) >= 6:
                return
            node_id = self.next_id
            change = ConfChange(op=op, node_id=node_id)
        elif op is ConfChangeOp.PROMOTE_LEARNER:
            if not conf.learners:
                return
            change = ConfChange(op=op, node_id=self.rng.choice(conf.learners))
        else:
            if len(conf.voters) <= 2:
                return
            change = ConfChange(op=op, node_id=self.rng.choice(conf.members()))
        try:
            leader.propose_conf_change(change)
        except (NotLeader, ProposalDropped):
            return
        if op is ConfChangeOp.ADD_LEARNER:
            self.next_id += 1
            self.net.add_joiner(change.node_id)
        self.after(leader.id)

    # -- phases ---------------------------------------------------------------------------

    def run(self) -> None:
        for step in range(self.steps):
            self.step = step
            self.act(step)
        self.heal_and_check_progress()

    def heal_and_check_progress(self) -> None:
        net = self.net
        net.heal()
        self.loss = 0.0
        self.dup = 0.0
        for node_id in sorted(self.crash_at):
            net.restart(node_id)
        self.crash_at.clear()
        marker = b"final"
        proposed = False
        for _ in range(600):
            for node_id in net.live():
                net.nodes[node_id].tick()
            net.deliver()
            for node_id in net.live():
                self.check_node(node_id)
            leader = net.leader()
            if leader is None:
                continue
            if not proposed:
                try:
                    leader.propose(marker)
                    proposed = True
                except (NotLeader, ProposalDropped):
                    continue
                net.deliver()
                continue
            members = leader.conf.members()
            if all(marker in net.applied_data(m) for m in members):
                return
        raise SafetyError(f"seed {self.seed}: no progress after healing: {self.describe()}")

    def describe(self) -> str:
        parts = []
        for node_id in sorted(self.net.nodes):
            node = self.net.nodes[node_id]
            parts.append(
                f"n{node_id} {node.role.value} t{node.term} commit={node.commit_index} "
                f"last={node.last_index} conf={node.conf.voters}/{node.conf.learners}"
            )
        return "; ".join(parts)


def run_seed(seed: int, nodes: int = 3, steps: int = 1500) -> None:
    Fuzz(seed, nodes=nodes, steps=steps).run()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    first = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    sizes = [int(n) for n in sys.argv[4].split(",")] if len(sys.argv) > 4 else [3, 5]
    for seed in range(first, first + count):
        for size in sizes:
            try:
                run_seed(seed, nodes=size, steps=steps)
            except Exception as exc:
                print(f"seed {seed} nodes {size}: {type(exc).__name__}: {exc}")
                raise
    print("ok")
