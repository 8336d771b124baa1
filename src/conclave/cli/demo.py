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

import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from conclave.core.effects import Entry, EntryKind
from conclave.core.ids import NodeId, Term
from conclave.sim.client import ClientResultError
from conclave.sim.history import Operation
from conclave.sim.invariants import SafetyViolation
from conclave.sim.scenario import Call, Happening, Scenario, describe_entry

DEFAULT_SEED = 1  # verified to tell the whole story (tests/sim/test_demo.py)
NODES = 5
MAJORITY = NODES // 2 + 1
BOUND_US = 3_000_000  # every step must happen within 3 simulated seconds
STRANDED_TIMEOUT_US = 500_000  # the stranded client's patience
WIDTH_MAX = 88  # wrapped text stays readable on wide terminals
FACT_INDENT = 12  # "  123.4 ms  " before each fact


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
    """Prints the story: headings, explanations, facts and tables (never markup from text)."""

    console: Console
    width: int = 0  # of wrapped text; 0: the console's width, at most WIDTH_MAX

    def __post_init__(self) -> None:
        if self.width <= 0:
            self.width = min(self.console.width, WIDTH_MAX)

    def title(self, seed: int) -> None:
        self.console.rule(Text(f"Conclave demo: Raft on {NODES} simulated nodes (seed {seed})"))
        self.paragraph(
            "Simulated time (ms since start); every random choice comes from the seed, so the "
            "same seed tells the same story.",
            "",
        )

    def heading(self, number: int, text: str) -> None:
        self.console.print()
        self.console.rule(Text(f"{number}. {text}", style="bold"), align="left")

    def explain(self, text: str) -> None:
        self.paragraph(text, "italic")

    def paragraph(self, text: str, style: str) -> None:
        wrapped = textwrap.fill(text, self.width, break_on_hyphens=False)
        self.console.print(Text(wrapped, style=style))

    def fact(self, at_us: int | None, text: str) -> None:
        when = ms(at_us) if at_us is not None else ""
        lines = textwrap.wrap(text, self.width - FACT_INDENT, break_on_hyphens=False) or [""]
        out = Text()
        out.append(f"{when:>{FACT_INDENT - 2}}  ", style="cyan")
        out.append(lines[0])
        for line in lines[1:]:
            out.append("\n" + " " * FACT_INDENT + line)
        self.console.print(out)

    def nodes_table(self, scenario: Scenario) -> None:
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
        for column in ("node", "role", "term", "leader", "commit", "applied", "last entry"):
            table.add_column(column, justify="left" if column in ("node", "role") else "right")
        for status in scenario.statuses():
            table.add_row(
                f"n{status.node}",
                status.role.replace("_", "-"),
                str(status.term),
                f"n{status.leader}" if status.leader else "-",
                str(status.commit),
                str(status.applied),
                f"{status.last_index} (term {status.last_term})",
            )
        self.console.print(table)

    def log_repair_table(
        self,
        node: NodeId,
        before: tuple[Entry, ...],
        after: tuple[Entry, ...],
        commits: tuple[int, int],
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
            table.add_row(
                str(index),
                Text(_cell(old.get(index), commits[0])),
                Text(_cell(new.get(index), commits[1])),
            )
        self.console.print(table)


def _cell(entry: Entry | None, commit: int) -> str:
    if entry is None:
        return ""
    mark = " (uncommitted)" if entry.index > commit else ""
    return f"{entry.term}: {describe_entry(entry, client=False)}{mark}"


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
        self.partition_mark = 0  # happenings before the partition
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

    def timeout_range(self) -> str:
        """The election timeouts nodes draw from, in simulated ms (`100-200 ms`)."""
        config = self.sim.raft_config(self.sim.node_ids[0])
        tick_ms = self.sim.tick_interval_us / 1000
        low = config.election_timeout_ticks_min * tick_ms
        high = config.election_timeout_ticks_max * tick_ms
        return f"{low:g}-{high:g} ms"

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

    def tell(self, facts: list[Fact]) -> None:
        """Print facts in the order they happened."""
        for at_us, text in sorted(facts, key=lambda fact: fact[0]):
            self.say.fact(at_us, text)

    def holders(self, index: int, term: Term) -> int:
        """How many nodes hold the entry (index, term) in their log."""
        return sum(1 for n in self.sim.node_ids if self.holds(n, index, term))

    def holds(self, node: NodeId, index: int, term: Term) -> bool:
        """Whether `node`'s log has the entry (index, term)."""
        core = self.sim.nodes[node].core
        return core is not None and core.term_at(index) == term

    def election_facts(self, since: int, winner: NodeId, term: Term) -> list[Fact]:
        """`winner`'s pre-vote, election and no-op in `term`, from trace events since a mark."""
        pre = self.one("pre_vote_won", since, winner, f"n{winner} won a pre-vote")
        expect(pre.number("term") == term, f"n{winner}'s pre-vote was for term {term}")
        pre_votes = self.granted("pre_vote_granted", winner, term, since)
        won = self.one("election_won", since, winner, f"n{winner} won an election")
        expect(won.number("term") == term, f"n{winner} won the election of term {term}")
        voters = [winner, *self.granted("vote_granted", winner, term, since)]
        expect(len(set(voters)) >= MAJORITY, f"n{winner} had votes from a majority")
        became = self.one("became_leader", since, winner, f"n{winner} became leader")
        noop = became.number("last") or 0
        noops = [e for e in self.sim.log(winner) if e.kind is EntryKind.NOOP]
        expect(
            any(e.index == noop and e.term == term for e in noops),
            f"the new leader appended a no-op of term {term}",
        )
        return [
            (
                pre.at_us,
                (
                    f"pre-vote won ({nodes_text(pre_votes)} would vote for n{winner}): "
                    f"n{winner} becomes candidate in term {term}, asks for votes"
                ),
            ),
            (
                won.at_us,
                (
                    f"n{winner} wins term {term} with votes from {nodes_text(voters)} (itself "
                    f"included; {MAJORITY} of {NODES} needed) and appends a no-op at index {noop}"
                ),
            ),
        ]

    def write(self, call: Call) -> None:
        """Follow a write to its commit, then to its acknowledgement, and narrate both."""
        sim, what = self.sim, call.describe()
        self.wait(lambda: bool(call.proposals) or call.done, f"{what} reached the leader")
        expect(bool(call.proposals), f"{what} was appended to the leader's log")
        node, index, term = call.proposals[-1]
        self.wait(lambda: sim.status(node).commit >= index, f"{what} committed")
        committed_us, holders = sim.now_us, self.holders(index, term)
        expect(holders >= MAJORITY, f"{what} was on a majority when it committed")
        expect(not call.done, f"{what} was not acknowledged before it committed")
        self.wait(lambda: call.done, f"{what} got an answer")
        expect(call.status == "ok", f"{what} succeeded (status {call.status})")
        assert call.return_us is not None
        if call.value is not None and getattr(call.result, "succeeded", True):
            self.latest[call.key] = call.value
        self.say.fact(
            call.call_us,
            f"{what}: index {index} (term {term}), committed at {ms(committed_us)} "
            f"on {holders}/{NODES} logs, applied, acked at {ms(call.return_us)}",
        )

    # -- 1 ----------------------------------------------------------------------------------

    def election(self) -> None:
        sim, say = self.sim, self.say
        say.heading(1, "Electing a leader")
        say.explain(
            "All nodes start as followers. Each draws a random election timeout "
            f"({self.timeout_range()}) so they rarely expire together. The first to expire "
            "runs a pre-vote ('would you vote for me?'), which changes no term, then an "
            "election in the next term; each node votes once per term. A majority "
            f"({MAJORITY} of {NODES}) makes it leader; it appends a no-op of its term, whose "
            "commit tells it which entries are committed."
        )
        sim.start()
        self.wait(lambda: sim.leader_ready() is not None, "a leader was elected")
        leader = sim.leader()
        assert leader is not None
        self.leader, self.term = leader, sim.status(leader).term
        first = sim.happened("became_pre_candidate")[0]
        facts = [(first.at_us, f"n{first.node}'s election timeout expires first: pre-vote")]
        if first.node != leader:
            facts.append((first.at_us, f"(n{first.node} does not win; n{leader} tries later)"))
        facts += self.election_facts(0, leader, self.term)
        commit = self.one("commit", 0, leader, "the no-op was committed")
        facts.append(
            (commit.at_us, f"n{leader} commits the no-op: commit index {commit.get('index')}")
        )
        self.tell(facts)

    # -- 2 ----------------------------------------------------------------------------------

    def writes(self) -> None:
        sim, say = self.sim, self.say
        say.heading(2, "Replicating writes")
        say.explain(
            "A client sends writes to the leader, which appends each to its log and replicates "
            "it with AppendEntries. Once a majority has stored it, the entry is committed (no "
            "later leader can lack it); only then is it applied and the client answered."
        )
        leader = self.leader
        self.write(sim.put("color", "red", via=leader))
        self.write(sim.put("size", "large", via=leader))
        self.write(sim.cas("color", expected="red", value="blue", via=leader))
        self.wait(lambda: sim.converged() is None, "every node applied the writes")
        commit = sim.status(leader).commit
        say.fact(sim.now_us, f"all {NODES} nodes applied entries 1-{commit}:")
        say.nodes_table(sim)

    # -- 3 ----------------------------------------------------------------------------------

    def partition(self) -> None:
        sim, say = self.sim, self.say
        old = self.leader
        self.old_leader, self.old_term = old, self.term
        others = [n for n in sim.node_ids if n != old]
        say.heading(3, f"A partition isolates the leader n{old}")
        say.explain(
            f"n{old} is cut off from {nodes_text(others)}. A client still talking to n{old} "
            f"writes: n{old} appends the entry, but 1 of {NODES} is no majority, so it never "
            "commits and the client times out, not knowing if it happened. The others stop "
            "hearing heartbeats; one times out and wins an election in a higher term. With "
            f"check-quorum, n{old} steps down after an election timeout without a majority."
        )
        mark = self.partition_mark = sim.mark()
        sim.partition([old], others)
        stranded = sim.put(
            "color", "green", via=old, client=2, timeout_us=STRANDED_TIMEOUT_US, retry=False
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
        expect(self.term > self.old_term, "the new leader's term is higher")
        self.tell(self.partition_facts(mark, stranded))
        self.write(sim.put("color", "yellow", via=new))
        self.write(sim.cas("size", expected="large", value="small", via=new))
        say.nodes_table(sim)

    def partition_facts(self, mark: int, stranded: Call) -> list[Fact]:
        """What happened on both sides of the partition."""
        sim, old, new = self.sim, self.old_leader, self.leader
        expect(
            any(node == old and term == self.old_term for node, _, term in stranded.proposals),
            f"n{old} appended the stranded write to its log",
        )
        _, index, _ = stranded.proposals[0]
        expect(stranded.status == "unknown", "the stranded write's outcome is unknown")
        expect(sim.status(old).commit < index, f"the write at index {index} never committed")
        timeout = self.one("became_pre_candidate", mark, new, f"n{new} timed out")
        stepped = self.one("check_quorum_failed", mark, old, f"n{old} stepped down")
        others = nodes_text(n for n in sim.node_ids if n != old)
        return [
            (stranded.call_us, f"partition {{n{old}}} | {{{others}}}"),
            (
                stranded.call_us,
                (
                    f"client 2 -> n{old}: {stranded.describe()}, appended at index {index} "
                    f"(term {self.old_term})"
                ),
            ),
            (timeout.at_us, f"n{new}'s election timeout expires: pre-vote"),
            (stepped.at_us, f"n{old}: no majority heard for an election timeout; steps down"),
            (
                stranded.deadline_us,
                (
                    f"client 2 times out: outcome unknown (n{old} commit index still "
                    f"{sim.status(old).commit})"
                ),
            ),
            *self.election_facts(mark, new, self.term),
        ]

    # -- 4 ----------------------------------------------------------------------------------

    def heal(self) -> None:
        sim, say = self.sim, self.say
        old, new = self.old_leader, self.leader
        say.heading(4, f"Healing: n{old} rejoins and its log is repaired")
        say.explain(
            f"n{old} hears the higher term and follows n{new}. Each AppendEntries names the "
            "entry just before the new ones; a follower lacking it refuses and the leader "
            "backs up. Where a new entry conflicts with one the follower has (same index, other "
            f"term), the follower drops its entry and all after it. n{old} loses its "
            "uncommitted write. Safe: it was never committed, so no node applied it and no "
            "client was told it succeeded."
        )
        expect(sim.status(old).term == self.old_term, f"n{old} kept term {self.old_term}")
        attempts = len(sim.happened("became_pre_candidate", since=self.partition_mark, node=old))
        tries = "1 pre-vote" if attempts == 1 else f"{attempts} pre-votes"
        before, commit_before = sim.log(old), sim.status(old).commit
        mark = sim.mark()
        sim.heal()
        say.fact(
            sim.now_us,
            f"heal. n{old} is still in term {self.old_term}: its {tries} found "
            "no majority, so it never raised its term and does not disrupt the new leader",
        )
        self.wait(lambda: sim.status(old).term == self.term, f"n{old} learned term {self.term}")
        facts = [(sim.now_us, f"n{old} hears n{new}: term {self.term}, follower of n{new}")]
        self.wait(
            lambda: sim.log(old) == sim.log(new) and sim.converged() is None,
            f"n{old}'s log matches n{new}'s",
        )
        facts += self.repair_facts(mark)
        self.tell(facts)
        commits = (commit_before, sim.status(old).commit)
        say.log_repair_table(old, before, sim.log(old), commits)

    def repair_facts(self, mark: int) -> list[Fact]:
        """The rejected append, the truncation, and the lost write gone from every log."""
        sim, old, new, lost = self.sim, self.old_leader, self.leader, self.lost_write
        assert lost is not None
        truncated = self.one("log_truncated", mark, old, f"n{old}'s log was truncated")
        _, index, term = lost.proposals[0]
        expect(truncated.number("at") == index, f"n{old} replaced its log from index {index}")
        expect(self.holders(index, term) == 0, "the lost write's entry is in no log")
        expect(
            all(e.data != lost.data for n in sim.node_ids for e in sim.log(n)),
            "the lost write is in no node's log",
        )
        facts: list[Fact] = [
            (
                h.at_us,
                (
                    f"n{old} refuses entries after index {h.get('prev')} (term "
                    f"{h.get('prev_term')}): its log differs there; n{new} backs up"
                ),
            )
            for h in sim.happened("append_rejected", since=mark, node=old)
        ]
        return [
            *facts,
            (
                truncated.at_us,
                (
                    f"n{old} has the entry before index {index}, but its entry {index} is of term "
                    f"{term}, not {self.term}: it drops it and what follows, takes n{new}'s"
                ),
            ),
            (sim.now_us, f"n{old}'s log equals n{new}'s; all nodes applied the same entries"),
        ]

    # -- 5 ----------------------------------------------------------------------------------

    def linearizable_read(self) -> None:
        sim, say = self.sim, self.say
        old, leader = self.old_leader, self.leader
        say.heading(5, f"A linearizable read: ReadIndex on n{leader}")
        say.explain(
            "A read must never be stale, even from a leader deposed without knowing it. Only "
            "the leader serves it: it notes its commit index (the read index), confirms it "
            "still leads with a heartbeat round acknowledged by a majority, waits until it "
            "has applied that index, then answers from its store: no log entry is written."
        )
        last_before = sim.status(leader).last_index
        read = sim.get("color", via=old, client=3)
        self.wait(lambda: read.done, "the read got an answer")
        expect(read.status == "ok" and read.answered_by == leader, f"n{leader} served the read")
        expect(read.attempt >= 2, f"n{old} refused the read")
        assert read.return_us is not None
        value = getattr(read.result, "value", None)
        expect(value == self.latest["color"], "the read returned the last acknowledged write")
        expect(sim.status(leader).last_index == last_before, "the read added no log entry")
        say.fact(
            read.call_us,
            f"client 3 -> n{old}: get color; n{old} is a follower, points to n{leader}",
        )
        say.fact(
            read.return_us,
            f"n{leader}: read index {read.commit_at_arrival} (its commit index), leadership "
            f"confirmed, answers color={value}; log still ends at {last_before}",
        )

    # -- 6 ----------------------------------------------------------------------------------

    def verdict(self) -> None:
        sim, say = self.sim, self.say
        say.heading(6, "Checking the history and the replicas")
        say.explain(
            "Every client call was recorded with its invocation and response times. The "
            "checker looks for one order of all calls, each at an instant between its call "
            "and response, that a single copy of the store would produce; the unknown write "
            "may take effect at any time after its call, or never."
        )
        for op in sim.history:
            say.fact(op.call_us, describe_op(op))
        result = sim.check_history()
        expect(result.ok, f"the history is linearizable ({result.explanation})")
        statuses = [op.status for op in sim.history]
        say.fact(
            None,
            f"verdict: linearizable ({len(statuses)} operations: {statuses.count('ok')} ok, "
            f"{statuses.count('unknown')} unknown; {result.keys_checked} keys)",
        )
        expect(sim.converged() is None, "every replica converged")
        images = {sim.image(n) for n in sim.node_ids}
        expect(len(images) == 1, "the state machines are identical")
        state = ", ".join(f"{k}={v}" for k, v in sorted(self.latest.items()))
        say.fact(
            None,
            f"converged: all {NODES} nodes applied through index {sim.status(self.leader).commit}"
            f" with identical state ({state})",
        )


def describe_op(op: Operation) -> str:
    """`client 1: put color=red => ok, returned at 98.0 ms`."""
    what = {
        "get": f"get {op.key}",
        "put": f"put {op.key}={op.value}",
        "delete": f"delete {op.key}",
        "cas": f"cas {op.key} {op.expected} -> {op.value}",
    }[op.op]
    if op.status == "unknown":
        return f"client {op.client}: {what} => unknown (no answer)"
    if op.status == "fail" or op.return_us is None:
        return f"client {op.client}: {what} => failed (did not take effect)"
    outcome = {"get": f"{op.output}", "cas": "swapped" if op.output == "true" else "not swapped"}
    result = outcome.get(op.op, "ok")
    return f"client {op.client}: {what} => {result}, returned at {ms(op.return_us)}"


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
