"""Fault injection during the fault phase, every parameter and choice drawn from the seed.

Rules:
- `FaultPlan.draw` fixes a run's fault mix from the plan rng: the weight of each fault kind
  (0 to 3, so some seeds are crash-heavy and others partition-heavy), the mean interval, how
  many nodes may be down at once (usually a minority, sometimes a majority), and how long
  crashes and partitions last. The injector then draws each fault from its own rng.
- Kinds: crash a node / the leader (torn tail of unsynced writes, restart later); symmetric
  partition into groups; asymmetric (one-way) link cuts; isolate the leader; a membership
  change; a leadership transfer; a slow clock (a node, often the leader, ticks 3-10 times
  slower for a while, like a paused or starved process: a deposed leader then believes in
  its leadership for longer); and, at "buggify" points checked after every delivered
  message, a leader crashing right after its commit index advanced, a node cut off the
  moment it wins an election, and a new leader cut off the moment it first commits (more
  likely when it inherited uncommitted entries of earlier terms). Together these produce
  the histories of Raft paper Figure 8, which random faults alone almost never do; each
  probability is drawn per seed, zero for some seeds. Slow clocks break the bounded-drift
  assumption of lease-based reads, so they are drawn only when every node uses ReadIndex
  (`ReadOnlyOption.SAFE`).
- A buggify cut replaces any partition in force (the cut-off majority-side leader and the
  rejoining old minority are the point) and, like every cut, drops messages in flight.
- At most one partition is active: while one lasts, partition faults are skipped, so that
  each stays stable long enough for elections to happen inside it (a deposed leader serving
  stale reads needs that). Each partition has a generation so that a stale "partition ends"
  event does nothing.
- During a symmetric partition every client is placed on one side and reaches only those
  nodes; clients stranded with a minority are what exposes a deposed leader.
- Membership stays within [n-1, n+1] voters and never below 3: remove a voter, or add a
  non-member (the spare, or a removed node) as a learner and promote it in a follow-up step.
  Changes go through the current leader, which may refuse them (one at a time, not caught
  up, not leader...): a refusal is not a failure, the next fault tries again.
- Nodes and groups are picked from sorted id tuples, never from sets.
- On the WAL disk only (`SimSettings.uses_wal_disk`), a node may also die inside a sync,
  after its writes and before their fsync ("crash_in_sync"), with a per-seed probability per
  sync, much higher when the sync covers a snapshot (a torn checkpoint is the interesting
  case, and compactions are rare); these draws use their own rng (`"<seed>:syncfault"`),
  so the other faults of a seed are drawn exactly as before.
"""

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from conclave.consensus.raft import ConfChangeOp, ReadOnlyOption, Role
from conclave.core.errors import Refusal
from conclave.core.ids import NodeId
from conclave.sim import events as ev
from conclave.sim.settings import SimSettings

if TYPE_CHECKING:
    from conclave.sim.cluster import Cluster
    from conclave.sim.node import SimNode

FAULT_KINDS: Final = (
    "crash",
    "crash_leader",
    "partition",
    "one_way",
    "isolate_leader",
    "membership",
    "transfer",
    "slow_clock",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultPlan:
    """The fault mix of one run."""

    weights: tuple[int, ...]  # one per FAULT_KINDS entry
    interval_us_mean: int
    down_max: int
    downtime_us_max: int
    partition_us_max: int
    # Probability that a leader crashes right after it advanced its commit index (a
    # "buggify" point: it opens the narrow windows of Raft paper Figure 8, where a commit
    # decision and the replication of the leader's own-term entries race with a crash).
    crash_after_commit_p: float = 0.0
    # Probability that a node is cut off the moment it wins an election, so that its first
    # entries (the no-op of its term) stay on its own log: the other half of Figure 8.
    isolate_new_leader_p: float = 0.0
    # Probability that a new leader that inherited uncommitted entries of earlier terms is
    # cut off the moment its commit index first advances, dropping what it just sent (the
    # appends carrying the entries of its term): the window between a new leader's first
    # commit decision and the replication of its own entries (Figure 8 again). A leader that
    # inherited none is cut off with a quarter of this probability.
    isolate_after_first_commit_p: float = 0.0

    @classmethod
    def draw(cls, rng: random.Random, settings: SimSettings) -> "FaultPlan":
        """Draw a plan; every kind has weight 0..3 and at least one is positive."""
        weights = [rng.choice((0, 1, 1, 2, 3)) for _ in FAULT_KINDS]
        n = settings.nodes
        node_ids = range(1, n + 2)
        if any(settings.raft_config(i).read_only is not ReadOnlyOption.SAFE for i in node_ids):
            weights[FAULT_KINDS.index("slow_clock")] = 0
        if not any(weights):
            weights[rng.randrange(len(weights))] = 1
        down_max = (n - 1) // 2 if rng.random() < 0.85 else n // 2 + 1
        return cls(
            weights=tuple(weights),
            interval_us_mean=round(settings.fault_interval_us_mean * rng.uniform(0.5, 2.0)),
            down_max=max(1, down_max),
            downtime_us_max=rng.choice((200_000, 600_000, 1_500_000)),
            partition_us_max=rng.choice((300_000, 1_000_000, 2_000_000)),
            # Drawn last so that adding it did not change the earlier draws of any seed.
            crash_after_commit_p=rng.choice((0.0, 0.0, 0.02, 0.1)) if settings.faults else 0.0,
            isolate_new_leader_p=rng.choice((0.0, 0.1, 0.3, 0.5)) if settings.faults else 0.0,
            isolate_after_first_commit_p=(
                rng.choice((0.0, 0.3, 0.6, 0.9)) if settings.faults else 0.0
            ),
        )


class FaultInjector:
    """Applies the plan to a cluster."""

    def __init__(self, cluster: "Cluster", rng: random.Random, plan: FaultPlan) -> None:
        self.cluster = cluster
        self.rng = rng
        self.plan = plan
        self.partition_generation = 0
        self.injected: dict[str, int] = dict.fromkeys(
            (
                *FAULT_KINDS,
                "crash_after_commit",
                "isolate_new_leader",
                "isolate_after_first_commit",
                "crash_in_sync",
            ),
            0,
        )
        settings = cluster.settings
        self.buggify_rng = random.Random(f"{settings.seed}:buggify")
        self.sync_rng = random.Random(f"{settings.seed}:syncfault")
        wal_faults = settings.faults and settings.uses_wal_disk
        self.crash_in_sync_p = self.sync_rng.choice((0.002, 0.01, 0.03)) if wal_faults else 0.0
        self.crash_in_snapshot_sync_p = self.sync_rng.choice((0.1, 0.3, 0.6)) if wal_faults else 0.0

    def schedule_next(self) -> None:
        """Schedule the next fault after an exponential delay."""
        delay = round(self.rng.expovariate(1.0 / self.plan.interval_us_mean))
        self.cluster.queue.after(max(1, delay), ev.FAULT, 0)

    def inject(self) -> None:
        """Draw one fault kind and apply it."""
        kind = self.rng.choices(FAULT_KINDS, self.plan.weights)[0]
        self.injected[kind] += 1
        getattr(self, f"_{kind}")()

    # -- crashes --------------------------------------------------------------------------

    def _live(self) -> list["SimNode"]:
        return [n for n in self.cluster.nodes.values() if n.core is not None]

    def _down_count(self) -> int:
        return sum(1 for n in self.cluster.nodes.values() if n.started and n.core is None)

    def _crash_node(self, node: "SimNode") -> None:
        if self._down_count() >= self.plan.down_max:
            return
        self.cluster.crash(node)
        downtime = self.rng.randint(10_000, self.plan.downtime_us_max)
        self.cluster.queue.after(downtime, ev.RESTART, node.id)

    def maybe_crash_after_commit(self, node: "SimNode", commit_before: int) -> None:
        """Buggify: crash a leader at the moment its commit index advanced (see FaultPlan)."""
        core = node.core
        if core is None or core.commit_index <= commit_before or core.role is not Role.LEADER:
            return
        if self.buggify_rng.random() < self.plan.crash_after_commit_p:
            self.injected["crash_after_commit"] += 1
            self._crash_node(node)

    def maybe_crash_in_sync(self, snapshot_pending: bool) -> bool:
        """Buggify (WAL disk): whether the sync a node is starting dies before its fsync."""
        p = self.crash_in_snapshot_sync_p if snapshot_pending else self.crash_in_sync_p
        if p == 0.0 or self._down_count() >= self.plan.down_max:
            return False
        if self.sync_rng.random() >= p:
            return False
        self.injected["crash_in_sync"] += 1
        return True

    def crash_in_sync(self, node: "SimNode") -> None:
        """The node died inside its sync: crash its disk now and restart it later."""
        self.cluster.crash(node, self.sync_rng, "crash in sync")
        downtime = self.sync_rng.randint(10_000, self.plan.downtime_us_max)
        self.cluster.queue.after(downtime, ev.RESTART, node.id)

    def _crash(self) -> None:
        live = self._live()
        if live:
            self._crash_node(self.rng.choice(live))

    def _crash_leader(self) -> None:
        leader = self.cluster.leader()
        if leader is not None:
            self._crash_node(leader)

    # -- partitions -----------------------------------------------------------------------

    def _begin_partition(self, what: str, duration_us_min: int = 20_000) -> int:
        self.partition_generation += 1
        duration = self.rng.randint(duration_us_min, self.plan.partition_us_max)
        self.cluster.queue.after(duration, ev.PARTITION_END, 0, self.partition_generation)
        if self.cluster.tracing:
            self.cluster.trace(0, f"fault {what} for {duration} us")
        return duration

    def end_partition(self, generation: object) -> None:
        """A partition's time is up (ignored if a newer one replaced it)."""
        if generation != self.partition_generation or self.cluster.phase != "faults":
            return
        self.cluster.network.heal()
        self.cluster.client_reach.clear()
        if self.cluster.tracing:
            self.cluster.trace(0, "partition healed")

    def _started_ids(self) -> list[NodeId]:
        return [n.id for n in self.cluster.nodes.values() if n.started]

    def _partition(self) -> None:
        ids = self._started_ids()
        if len(ids) < 2 or self.cluster.network.partitioned:
            return
        self.rng.shuffle(ids)
        parts = min(len(ids), self.rng.choice((2, 2, 3)))
        cuts = sorted(self.rng.sample(range(1, len(ids)), k=parts - 1))
        groups = [ids[a:b] for a, b in zip([0, *cuts], [*cuts, len(ids)], strict=True)]
        network = self.cluster.network
        network.heal()
        network.partition(groups)
        self._place_clients(groups)
        self._begin_partition(f"partition {' | '.join(str(sorted(g)) for g in groups)}")

    def _one_way(self) -> None:
        ids = self._started_ids()
        if len(ids) < 2 or self.cluster.network.partitioned:
            return
        network = self.cluster.network
        network.heal()
        self.cluster.client_reach.clear()
        cuts = []
        for _ in range(self.rng.randint(1, 3)):
            src, dst = self.rng.sample(ids, 2)
            network.block(src, dst)
            cuts.append(f"n{src}->n{dst}")
        self._begin_partition(f"one-way cut {' '.join(cuts)}")

    def maybe_isolate_new_leader(self, node: "SimNode", was_leader: bool) -> None:
        """Buggify: cut a node off the moment it becomes leader (see FaultPlan)."""
        core = node.core
        if core is None or was_leader or core.role is not Role.LEADER:
            return
        if self.buggify_rng.random() < self.plan.isolate_new_leader_p:
            self.injected["isolate_new_leader"] += 1
            # It replaces any partition in force: the interesting histories need a leader of
            # the majority side to be cut off while the old minority rejoins.
            self._isolate(node, replace_partition=True)

    def maybe_isolate_after_first_commit(self, node: "SimNode", commit_before: int) -> None:
        """Buggify: cut a leader off the moment it first commits in its term (see FaultPlan).

        The cut also drops its messages still in flight (SimNetwork checks partitions at
        delivery), among them the appends it sent in the same Ready as the commit.
        """
        core = node.core
        if core is None or core.role is not Role.LEADER or core.commit_index <= commit_before:
            return
        if core.term_at(commit_before) == core.term:
            return  # it had already committed in this term
        p = self.plan.isolate_after_first_commit_p
        if core.term_at(commit_before + 1) == core.term:
            p /= 4  # it inherited no uncommitted entries from earlier terms: less interesting
        if self.buggify_rng.random() < p:
            self.injected["isolate_after_first_commit"] += 1
            self._isolate(node, replace_partition=True)

    def _isolate_leader(self) -> None:
        leader = self.cluster.leader()
        if leader is not None:
            self._isolate(leader)

    def _isolate(self, leader: "SimNode", *, replace_partition: bool = False) -> None:
        if self.cluster.network.partitioned and not replace_partition:
            return
        network = self.cluster.network
        network.heal()
        network.isolate(leader.id, self.cluster.node_ids)
        others = [i for i in self.cluster.node_ids if i != leader.id]
        self._place_clients([[leader.id], others])
        # Long enough for the others to elect a new leader (about 2 election timeouts).
        duration = self._begin_partition(f"isolate leader n{leader.id}", 250_000)
        if self.rng.random() < 0.7:
            # A paused or starved leader cut off: it keeps believing it leads for longer.
            self._slow_down(leader, duration)

    def _place_clients(self, groups: list[list[NodeId]]) -> None:
        """Put every client on one side of a partition, each side getting some clients
        when there are enough (clients stranded with a deposed leader, while others write
        through the new one, are what exposes stale reads)."""
        clients = list(self.cluster.clients)
        self.rng.shuffle(clients)
        reach = self.cluster.client_reach
        reach.clear()
        for n, client_id in enumerate(clients):
            side = n if n < len(groups) else self.rng.randrange(len(groups))
            reach[client_id] = frozenset(groups[side])

    # -- membership and leadership --------------------------------------------------------

    def _membership(self) -> None:
        cluster = self.cluster
        leader = cluster.leader()
        if leader is None or leader.core is None:
            return
        conf = leader.core.conf
        if conf.learners:
            cluster.propose_conf_change(ConfChangeOp.PROMOTE_LEARNER, conf.learners[0])
            return
        n = cluster.settings.nodes
        members = conf.members()
        outsiders = [i for i in cluster.node_ids if i not in members]
        can_add = len(conf.voters) < n + 1 and bool(outsiders)
        can_remove = len(conf.voters) > max(3, n - 1)
        if can_add and (not can_remove or self.rng.random() < 0.5):
            target = self.rng.choice(outsiders)
            node = cluster.nodes[target]
            if not node.started:
                cluster.join(node)
            if cluster.propose_conf_change(ConfChangeOp.ADD_LEARNER, target):
                delay = self.rng.randint(50_000, 400_000)
                cluster.queue.after(delay, ev.MEMBERSHIP, target)
        elif can_remove:
            cluster.propose_conf_change(ConfChangeOp.REMOVE_NODE, self.rng.choice(conf.voters))

    def membership_follow_up(self, learner: NodeId) -> None:
        """Promote a learner added earlier; try again later while it is refused."""
        cluster = self.cluster
        leader = cluster.leader()
        if leader is None or leader.core is None or learner not in leader.core.conf.learners:
            return
        if not cluster.propose_conf_change(ConfChangeOp.PROMOTE_LEARNER, learner):
            cluster.queue.after(self.rng.randint(50_000, 200_000), ev.MEMBERSHIP, learner)

    def _slow_clock(self) -> None:
        leader = self.cluster.leader()
        live = self._live()
        if not live:
            return
        node = leader if leader is not None and self.rng.random() < 0.6 else self.rng.choice(live)
        self._slow_down(node, self.rng.randint(100_000, 2_000_000))

    def _slow_down(self, node: "SimNode", duration_us: int) -> None:
        if not self.plan.weights[FAULT_KINDS.index("slow_clock")]:
            return  # not allowed in this run (lease-based reads)
        cluster = self.cluster
        node.slowdown = self.rng.randint(3, 10)
        node.slowdown_generation += 1
        cluster.queue.after(duration_us, ev.CLOCK_RESTORE, node.id, node.slowdown_generation)
        if cluster.tracing:
            cluster.trace(node.id, f"fault clock {node.slowdown}x slower for {duration_us} us")

    def _transfer(self) -> None:
        cluster = self.cluster
        leader = cluster.leader()
        if leader is None or leader.core is None:
            return
        others = [v for v in leader.core.conf.voters if v != leader.id]
        if not others:
            return
        target = self.rng.choice(others)
        try:
            leader.core.transfer_leadership(target)
        except (Refusal, ValueError) as exc:
            if cluster.tracing:
                cluster.trace(leader.id, f"transfer to n{target} refused: {exc}")
            return
        if cluster.tracing:
            cluster.trace(leader.id, f"fault transfer leadership to n{target}")
        leader.process()


__all__ = ["FAULT_KINDS", "FaultInjector", "FaultPlan"]
