"""`conclave demo`: a narrated, deterministic run of a 5-node Raft cluster.

Rules:
- The story runs on a `conclave.sim.scenario.Scenario`: simulated time only, one seed, no
  wall clock and no sleeping, so the same seed prints the same story, in well under a second.
- The demo asserts its own story: each step states what Raft should do, runs the simulation
  until it has happened (within a bound), and checks the facts it is about to print. A fact
  that does not hold (no leader change, a write that commits without a majority, a history
  that is not linearizable, a safety violation) ends the demo with exit code 1 instead of
  printing something false.
- Facts come from outside the nodes: their status, their logs, the cores' trace events and
  the recorded client history. Times are simulated milliseconds since the cluster started.
- Output is plain text through `rich` (headings, small tables): colour on a terminal, none
  when piped.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from conclave.core.effects import Entry, EntryKind
from conclave.core.ids import NodeId, Term
from conclave.sim.client import ClientResultError
from conclave.sim.invariants import SafetyViolation
from conclave.sim.scenario import Call, Happening, Scenario, describe_entry

DEFAULT_SEED = 1  # verified to tell the whole story (tests/sim/test_demo.py)
NODES = 5
MAJORITY = NODES // 2 + 1
BOUND_US = 3_000_000  # every step must happen within 3 simulated seconds
STRANDED_TIMEOUT_US = 500_000  # the stranded client's patience


Fact = tuple[int, str]  # (simulated time in us, what happened)


class StoryError(Exception):
    """Something the story claims did not happen in the simulation."""


def expect(condition: bool, claim: str) -> None:
    """Raise `StoryError(claim)` unless `condition` holds."""
    if not condition:
        raise StoryError(claim)


def ms(at_us: int) -> str:
    """Simulated microseconds as `123.4 ms`."""
    return f"{at_us / 1000:.1f} ms"


def nodes_text(ids: Iterable[NodeId]) -> str:
    """`n1, n3, n4`."""
    return ", ".join(f"n{i}" for i in ids)


# ------------------------------------------------------------------------------ narration


@dataclass(slots=True)
class Narrator:
    """Prints the story: headings, explanations, facts and tables."""

    console: Console

    def title(self, seed: int) -> None:
        self.console.rule(f"[bold]Conclave demo: Raft on {NODES} simulated nodes (seed {seed})")
        self.console.print(
            "Simulated time (ms since start), seeded randomness: the same seed tells the "
            "same story. Clients talk to the key-value store replicated by Raft."
        )

    def heading(self, number: int, text: str) -> None:
        self.console.print()
        self.console.rule(f"[bold]{number}. {text}", align="left")

    def explain(self, text: str) -> None:
        self.console.print(text, style="italic")

    def fact(self, at_us: int | None, text: str) -> None:
        grid = Table.grid(padding=(0, 2), pad_edge=True)
        grid.add_column(justify="right", width=9, style="cyan")
        grid.add_column(ratio=1)
        grid.add_row(ms(at_us) if at_us is not None else "", text)
        self.console.print(grid)

    def nodes_table(self, scenario: Scenario) -> None:
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
        for column in ("node", "role", "term", "leader", "commit", "applied", "last entry"):
            table.add_column(column, justify="left" if column in ("node", "role") else "right")
        for status in scenario.statuses():
            table.add_row(
                f"n{status.node}",
                status.role,
                str(status.term),
                f"n{status.leader}" if status.leader else "-",
                str(status.commit),
                str(status.applied),
                f"{status.last_index} (term {status.last_term})",
            )
        self.console.print(table)

    def log_repair_table(
        self, node: NodeId, before: tuple[Entry, ...], after: tuple[Entry, ...], commit: int
    ) -> None:
        table = Table(
            title=f"n{node}'s log, before and after the repair",
            box=box.SIMPLE_HEAD,
            padding=(0, 1),
            show_edge=False,
        )
        table.add_column("index", justify="right")
        table.add_column("before (term: entry)")
        table.add_column("after (term: entry)")
        old = {e.index: e for e in before}
        new = {e.index: e for e in after}
        for index in sorted(old.keys() | new.keys()):
            table.add_row(str(index), _cell(old.get(index), commit), _cell(new.get(index), commit))
        self.console.print(table)


def _cell(entry: Entry | None, commit_before: int) -> str:
    if entry is None:
        return ""
    mark = "  [uncommitted]" if entry.index > commit_before else ""
    return f"{entry.term}: {describe_entry(entry)}{mark}"


# ------------------------------------------------------------------------------ the story


class Story:
    """The six steps, in order; each narrates and asserts what the simulation did."""

    def __init__(self, seed: int, narrator: Narrator) -> None:
        self.seed = seed
        self.sim = Scenario(seed=seed, nodes=NODES)
        self.say = narrator
        self.old_leader: NodeId = 0
        self.old_term: Term = 0
        self.leader: NodeId = 0
        self.term: Term = 0
        self.lost_write: Call | None = None
        self.latest: dict[str, str] = {}  # key -> value last acknowledged

    def run(self) -> None:
        """Tell the whole story; raises StoryError when a claim does not hold."""
        self.say.title(self.seed)
        self.election()
        self.writes()
        self.partition()
        self.heal()
        self.linearizable_read()
        self.verdict()

    # -- helpers --------------------------------------------------------------------------

    def wait(self, done: Callable[[], bool], claim: str) -> None:
        """Run the simulation until `done()`; StoryError if it takes over `BOUND_US`."""
        expect(self.sim.run_until(done, within_us=BOUND_US), claim)

    def granted(self, kind: str, candidate: NodeId, term: Term, since: int) -> list[NodeId]:
        """Nodes that granted `candidate` a (pre-)vote for `term` since the mark."""
        return [
            h.node
            for h in self.sim.happened(kind, since=since)
            if h.number("candidate") == candidate and h.number("term") == term
        ]

    def one(self, kind: str, since: int, node: NodeId, claim: str) -> Happening:
        """The first `kind` trace event of `node` since the mark."""
        found = self.sim.happened(kind, since=since, node=node)
        expect(bool(found), claim)
        return found[0]

    def election_facts(self, since: int, winner: NodeId, term: Term) -> list[Fact]:
        """`winner`'s pre-vote, election and no-op in `term`, from trace events since a mark."""
        sim = self.sim
        pre = self.one("pre_vote_won", since, winner, f"n{winner} won a pre-vote")
        expect(pre.number("term") == term, f"n{winner}'s pre-vote was for term {term}")
        pre_votes = self.granted("pre_vote_granted", winner, term, since)
        won = self.one("election_won", since, winner, f"n{winner} won an election")
        expect(won.number("term") == term, f"n{winner} won the election of term {term}")
        voters = [winner, *self.granted("vote_granted", winner, term, since)]
        expect(len(set(voters)) >= MAJORITY, f"n{winner} had votes from a majority")
        leader = self.one("became_leader", since, winner, f"n{winner} became leader")
        noop_index = leader.number("last") or 0
        log = sim.log(winner)
        expect(
            any(e.index == noop_index and e.term == term and e.kind is EntryKind.NOOP for e in log),
            f"the new leader appended a no-op of term {term}",
        )
        return [
            (
                pre.at_us,
                f"pre-vote won: {nodes_text(pre_votes)} would vote for n{winner} in term {term} "
                "(no term changed yet)",
            ),
            (
                won.at_us,
                f"n{winner}, candidate in term {term}, wins with votes from {nodes_text(voters)} "
                f"(itself included; {MAJORITY} of {NODES} needed)",
            ),
            (leader.at_us, f"n{winner} leads term {term}: appends a no-op at index {noop_index}"),
        ]

    def tell(self, facts: list[Fact]) -> None:
        """Print facts in the order they happened."""
        for at_us, text in sorted(facts, key=lambda fact: fact[0]):
            self.say.fact(at_us, text)

    def ack_facts(self, call: Call) -> tuple[int, int, int]:
        """At the instant a write is acknowledged: (index, leader commit, nodes holding it)."""
        expect(bool(call.proposals), f"{call.describe()} was appended to the leader's log")
        _, index, term = call.proposals[-1]
        holders = sum(1 for s in self.sim.statuses() if self.holds(s.node, index, term))
        commit = self.sim.status(self.leader).commit
        return index, commit, holders

    def holds(self, node: NodeId, index: int, term: Term) -> bool:
        """Whether `node`'s log has the entry (index, term)."""
        core = self.sim.nodes[node].core
        return core is not None and core.term_at(index) == term

    def write(self, call: Call) -> None:
        """Wait for a write's acknowledgement and narrate it: index, commit, replicas."""
        self.wait(lambda: call.done, f"{call.describe()} got an answer")
        expect(call.status == "ok", f"{call.describe()} succeeded (status {call.status})")
        assert call.return_us is not None
        index, commit, holders = self.ack_facts(call)
        expect(commit >= index, f"{call.describe()} was committed before it was acknowledged")
        expect(holders >= MAJORITY, f"{call.describe()} was on a majority when acknowledged")
        if call.value is not None:
            self.latest[call.key] = call.value
        swapped = getattr(call.result, "succeeded", None)
        outcome = "" if swapped is None else (" (swapped)" if swapped else " (not swapped)")
        self.say.fact(
            call.return_us,
            f"{call.describe()}{outcome}: entry {index} (term {self.term}), acknowledged "
            f"{ms(call.return_us - call.call_us)} after the call; then on {holders}/{NODES} "
            f"logs, commit index {commit}",
        )

    # -- 1 ----------------------------------------------------------------------------------

    def election(self) -> None:
        sim, say = self.sim, self.say
        say.heading(1, "Electing a leader")
        say.explain(
            "Every node starts as a follower, waiting to hear from a leader. Each draws a "
            "random election timeout (here 100-200 ms) so that they rarely time out together. "
            "The first to time out asks for a pre-vote ('would you vote for me?'), which "
            "changes nobody's term, so a node that is merely cut off cannot disrupt the "
            "cluster. With a majority of yeses it becomes a candidate in the next term and "
            "asks for real votes; each node votes at most once per term. A majority of votes "
            "makes it leader, and it appends a no-op entry of its term: once that commits, the "
            "leader knows which entries are committed."
        )
        sim.start()
        self.wait(lambda: sim.leader_ready() is not None, "a leader was elected")
        leader = sim.leader()
        assert leader is not None
        self.leader = leader
        self.term = sim.status(leader).term
        first = sim.happened("became_pre_candidate")[0]
        say.fact(first.at_us, f"n{first.node}'s election timeout expires first: pre-candidate")
        if first.node != leader:
            say.fact(None, f"(n{first.node}'s attempt did not win; n{leader} timed out later)")
        facts = self.election_facts(0, leader, self.term)
        commit = self.one("commit", 0, leader, "the no-op was committed")
        facts.append(
            (commit.at_us, f"n{leader} commits the no-op: commit index {commit.get('index')}")
        )
        self.tell(facts)
        say.nodes_table(sim)

    # -- 2 ----------------------------------------------------------------------------------

    def writes(self) -> None:
        sim, say = self.sim, self.say
        say.heading(2, "Replicating writes")
        say.explain(
            "A client sends each write to the leader. The leader appends it to its log and "
            "sends it to the followers (AppendEntries). Once a majority (3 of 5, the leader "
            "included) has stored it, the entry is committed: every future leader will have "
            "it. Only then is it applied to the key-value store and the client answered."
        )
        leader = self.leader
        self.write(sim.put("color", "red", via=leader))
        self.write(sim.put("size", "large", via=leader))
        self.write(sim.cas("color", expected="red", value="blue", via=leader))
        self.wait(lambda: sim.converged() is None, "every node applied the writes")
        commit = sim.status(leader).commit
        applied = [s.applied for s in sim.statuses()]
        expect(all(a == commit for a in applied), "all nodes applied through the commit index")
        say.fact(
            sim.now_us,
            f"all {NODES} nodes applied entries 1-{commit} (commit index {commit}): their "
            "key-value stores are identical",
        )

    # -- 3 ----------------------------------------------------------------------------------

    def partition(self) -> None:
        sim, say = self.sim, self.say
        old, old_term = self.leader, self.term
        self.old_leader, self.old_term = old, old_term
        others = [n for n in sim.node_ids if n != old]
        say.heading(3, f"A partition isolates the leader n{old}")
        say.explain(
            f"The network splits: n{old} alone on one side, {nodes_text(others)} on the other. "
            f"A client still talking to n{old} sends a write: n{old} appends it, but only 1 of "
            f"{NODES} nodes can store it, so it can never commit, and the client times out "
            "without knowing whether it happened. On the majority side heartbeats stop; when "
            "an election timeout expires, a follower runs a pre-vote and an election in a "
            f"higher term and wins with the votes it can reach. n{old}, thanks to check-quorum, "
            "steps down after an election timeout without hearing from a majority."
        )
        mark = sim.mark()
        sim.partition([old], others)
        say.fact(sim.now_us, f"partition: {{n{old}}} | {{{nodes_text(others)}}}")
        stranded = sim.put(
            "color", "green", via=old, client=2, timeout_us=STRANDED_TIMEOUT_US, follow_leader=False
        )
        self.lost_write = stranded
        self.wait(
            lambda: (
                stranded.done
                and sim.leader_ready() not in (None, old)
                and sim.status(old).role != "leader"
            ),
            "a new leader was elected and the old one stepped down",
        )
        new = sim.leader()
        assert new is not None
        self.leader, self.term = new, sim.status(new).term
        expect(self.term > old_term, "the new leader's term is higher")
        self.tell_partition(mark, stranded)
        self.write(sim.put("color", "yellow", via=new))
        self.write(sim.cas("size", expected="large", value="small", via=new))
        say.nodes_table(sim)

    def tell_partition(self, mark: int, stranded: Call) -> None:
        """Facts of step 3, in the order they happened."""
        sim, old, new = self.sim, self.old_leader, self.leader
        expect(
            any(node == old and term == self.old_term for node, _, term in stranded.proposals),
            f"n{old} appended the stranded write to its log",
        )
        _, index, _ = stranded.proposals[0]
        expect(stranded.status == "unknown", "the stranded write's outcome is unknown")
        facts: list[Fact] = [
            (
                stranded.call_us,
                f"client 2 -> n{old}: {stranded.describe()}; n{old} appends it at index {index} "
                f"(term {self.old_term})",
            ),
            (
                stranded.deadline_us,
                f"client 2 times out after {ms(STRANDED_TIMEOUT_US)}: outcome unknown "
                f"(n{old}'s commit index is still {sim.status(old).commit})",
            ),
        ]
        timeout = self.one("became_pre_candidate", mark, new, f"n{new} timed out")
        facts.append((timeout.at_us, f"n{new}'s election timeout expires: pre-candidate"))
        stepped = self.one("check_quorum_failed", mark, old, f"n{old} stepped down")
        facts.append(
            (stepped.at_us, f"n{old} heard from no majority for an election timeout: steps down")
        )
        expect(sim.status(old).commit < index, f"the write at index {index} never committed")
        self.tell(facts + self.election_facts(mark, new, self.term))

    # -- 4 ----------------------------------------------------------------------------------

    def heal(self) -> None:
        sim, say = self.sim, self.say
        old, new = self.old_leader, self.leader
        lost = self.lost_write
        assert lost is not None
        say.heading(4, "Healing the partition: the old leader's log is repaired")
        say.explain(
            f"The network heals. n{old} hears the new leader's higher term and becomes its "
            f"follower. Its log disagrees with n{new}'s: AppendEntries carries the index and "
            f"term of the entry before the new ones, n{old} rejects the mismatch, n{new} backs "
            f"up, and n{old} replaces its conflicting suffix with the leader's entries. Safe: "
            f"the discarded entry was never committed (it was on one node only), so no client "
            "was ever told it happened, and no node ever applied it."
        )
        expect(
            sim.status(old).term == self.old_term,
            f"n{old} kept term {self.old_term} while isolated (pre-vote)",
        )
        pre_votes = len(sim.happened("became_pre_candidate", node=old))
        before = sim.log(old)
        commit_before = sim.status(old).commit
        mark = sim.mark()
        sim.heal()
        say.fact(
            sim.now_us,
            f"heal; n{old} is at term {self.old_term} still: its {pre_votes} pre-vote attempt(s) "
            "found no majority, so it never raised its term and cannot disrupt the new leader",
        )
        self.wait(lambda: sim.status(old).term == self.term, f"n{old} learned term {self.term}")
        status = sim.status(old)
        say.fact(sim.now_us, f"n{old} hears n{new} in term {self.term}: {status.role} of n{new}")
        truncated = self.one("log_truncated", mark, old, f"n{old}'s log was truncated")
        at = truncated.number("at")
        say.fact(truncated.at_us, f"n{old} drops its entries from index {at} on, takes n{new}'s")
        self.wait(
            lambda: sim.log(old) == sim.log(new) and sim.converged() is None,
            f"n{old}'s log matches n{new}'s",
        )
        after = sim.log(old)
        say.log_repair_table(old, before, after, commit_before)
        _, index, term = lost.proposals[0]
        expect(all(not self.holds(n, index, term) for n in sim.node_ids), "the lost write is gone")
        expect(
            all(e.data != lost.data for n in sim.node_ids for e in sim.log(n)),
            "the lost write is in no node's log",
        )
        say.fact(
            sim.now_us,
            f"n{old}'s log equals n{new}'s; '{lost.describe()}' is in no node's log",
        )

    # -- 5 ----------------------------------------------------------------------------------

    def linearizable_read(self) -> None:
        sim, say = self.sim, self.say
        leader = self.leader
        say.heading(5, f"A linearizable read through ReadIndex on n{leader}")
        say.explain(
            "A read must not return stale data, e.g. from a deposed leader that does not know "
            "it yet. With ReadIndex the leader notes its commit index, confirms it is still "
            "leader with a round of heartbeats acknowledged by a majority, waits until it has "
            "applied that index, then answers from its store, without writing to the log."
        )
        last_before = sim.status(leader).last_index
        read = sim.get("color", via=leader, client=3)
        self.wait(lambda: read.done, "the read got an answer")
        expect(read.status == "ok" and read.answered_by == leader, f"n{leader} served the read")
        assert read.return_us is not None
        value = getattr(read.result, "value", None)
        expect(value == self.latest["color"], "the read returned the last acknowledged write")
        expect(sim.status(leader).last_index == last_before, "the read added no log entry")
        say.fact(
            read.call_us,
            f"client 3 -> n{leader}: get color; read index = n{leader}'s commit index "
            f"{read.commit_at_arrival}",
        )
        say.fact(
            read.return_us,
            f"answer color={value} after a heartbeat round ({ms(read.return_us - read.call_us)}); "
            f"the log did not grow (last index {last_before})",
        )

    # -- 6 ----------------------------------------------------------------------------------

    def verdict(self) -> None:
        sim, say = self.sim, self.say
        say.heading(6, "Checking the history and the replicas")
        say.explain(
            "Every client operation was recorded with its invocation and response times. The "
            "checker searches for one order of all operations, each placed at an instant "
            "between its call and its response, that a single copy of the store would "
            "produce. The unknown write may take effect at any time after its call, or never."
        )
        for op in sim.history:
            say.fact(None, op.describe())
        result = sim.check_history()
        expect(result.ok, f"the history is linearizable ({result.explanation})")
        ops = len(sim.history)
        statuses = [op.status for op in sim.history]
        say.fact(
            sim.now_us,
            f"verdict: linearizable, {ops} operations "
            f"({statuses.count('ok')} ok, {statuses.count('unknown')} unknown) on "
            f"{result.keys_checked} keys",
        )
        expect(sim.converged() is None, "every replica converged")
        images = {sim.image(n) for n in sim.node_ids}
        expect(len(images) == 1, "the state machines are identical")
        commit = sim.status(self.leader).commit
        say.fact(
            sim.now_us,
            f"all {NODES} state machines applied through index {commit} and have identical "
            f"snapshots ({len(next(iter(images)))} bytes): "
            + ", ".join(f"{k}={v}" for k, v in sorted(self.latest.items())),
        )
        say.nodes_table(sim)


def run_story(seed: int, console: Console) -> None:
    """Tell the story for `seed` on `console`; raises StoryError or SafetyViolation."""
    Story(seed, Narrator(console)).run()


def demo(
    seed: int = typer.Option(DEFAULT_SEED, "--seed", min=0, help="Seed of the simulated run."),
) -> None:
    """A narrated simulated run of a 5-node Raft cluster (deterministic, a few seconds)."""
    console = Console(highlight=False)
    try:
        run_story(seed, console)
    except (StoryError, SafetyViolation, ClientResultError) as exc:
        console.print(f"\n[bold red]demo failed[/bold red] (seed {seed}): {exc}")
        raise typer.Exit(code=1) from None
    console.print()
    console.print(f"[bold green]Demo complete[/bold green]: every claim above held (seed {seed}).")


__all__ = ["DEFAULT_SEED", "Narrator", "Story", "StoryError", "demo", "run_story"]
