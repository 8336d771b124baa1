"""Global safety checkers: they watch the nodes from outside and never change them.

Rules (Raft paper, figure 3), each checked incrementally so that the run stays fast:
- Election safety: at most one leader per term over the whole run, restarts included
  (`leader_by_term`, filled whenever a node is seen leading).
- Log matching: an entry is identified by `(index, term)`; every copy of it, on any node, ever,
  must carry the same kind and data and follow an entry of the same term. By induction on the
  index this gives "same index and term => identical prefixes". Checked on every persisted
  entry (O(1) each); a pairwise comparison of live logs runs periodically as a second opinion.
- State machine safety: every node applies the same entry at each index (`committed`, index ->
  first applied entry), and each node applies indices in order without gaps.
- Leader completeness: when a node becomes leader of term t, every entry committed in a term
  below t is in its log (or covered by its snapshot: index and term of the snapshot agree with
  what was committed there). The commit term of an entry is the term of the first node seen
  applying it, an upper bound on the term in which it was committed, so the check never
  accuses a correct leader.
A broken rule raises `SafetyViolation(invariant, detail)`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from conclave.consensus.raft import RaftNode
from conclave.core.effects import Entry
from conclave.core.ids import LogIndex, NodeId, Term


class SafetyViolation(Exception):
    """A safety property of the replicated log does not hold."""

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CommittedEntry:
    """The entry applied at an index, and the term of its first applier."""

    entry: Entry
    commit_term: Term
    node: NodeId


def _describe(entry: Entry) -> str:
    data = entry.data[:40].decode(errors="replace")
    return f"{entry.index}/{entry.term} {entry.kind.value} {data!r}"


class SafetyChecker:
    """Accumulates what every node did and raises on the first contradiction."""

    def __init__(self) -> None:
        self.leader_by_term: dict[Term, NodeId] = {}
        # (index, term) -> (first copy seen, term of the entry before it or -1 if unknown)
        self._entries: dict[tuple[LogIndex, Term], tuple[Entry, Term]] = {}
        self.committed: dict[LogIndex, CommittedEntry] = {}
        self.committed_max: LogIndex = 0
        self.elections = 0

    # -- log matching ---------------------------------------------------------------------

    def on_persist(self, node: NodeId, prev_term: Term | None, entries: Sequence[Entry]) -> None:
        """`node` wrote `entries` (contiguous) after an entry of term `prev_term`."""
        known = self._entries
        before = -1 if prev_term is None else prev_term
        for entry in entries:
            key = (entry.index, entry.term)
            seen = known.get(key)
            if seen is None:
                known[key] = (entry, before)
            else:
                first, first_before = seen
                if first.data != entry.data or first.kind is not entry.kind:
                    raise SafetyViolation(
                        "log-matching",
                        f"n{node} wrote {_describe(entry)} but {_describe(first)} exists",
                    )
                if before != -1 and first_before not in (-1, before):
                    raise SafetyViolation(
                        "log-matching",
                        f"n{node} has {entry.index}/{entry.term} after term {before}, "
                        f"elsewhere after term {first_before}",
                    )
                if first_before == -1 and before != -1:
                    known[key] = (first, before)
            before = entry.term

    def check_log_pair(self, a: RaftNode, b: RaftNode) -> None:
        """Two in-memory logs agree on every index up to their last common (index, term)."""
        lo = max(a.first_index, b.first_index)
        hi = min(a.last_index, b.last_index)
        if hi < lo:
            return
        ea = a.entries(lo, hi + 1)
        eb = b.entries(lo, hi + 1)
        if len(ea) != len(eb) or not ea or ea[0].index != lo or eb[0].index != lo:
            return  # not both in memory: nothing to compare position by position
        top = len(ea) - 1
        while top >= 0 and ea[top].term != eb[top].term:
            top -= 1
        for i in range(top + 1):
            x, y = ea[i], eb[i]
            if x.term != y.term or x.data != y.data or x.kind is not y.kind:
                raise SafetyViolation(
                    "log-matching",
                    f"n{a.id} and n{b.id} agree at {ea[top].index}/{ea[top].term} "
                    f"but differ at {x.index}: {_describe(x)} vs {_describe(y)}",
                )

    # -- state machine safety -------------------------------------------------------------

    def on_applied(self, node: NodeId, node_term: Term, entry: Entry) -> None:
        """`node`, now in term `node_term`, applied `entry`."""
        seen = self.committed.get(entry.index)
        if seen is None:
            self.committed[entry.index] = CommittedEntry(entry, node_term, node)
            self.committed_max = max(self.committed_max, entry.index)
            return
        first = seen.entry
        if first.term != entry.term or first.data != entry.data or first.kind is not entry.kind:
            raise SafetyViolation(
                "state-machine-safety",
                f"n{node} applied {_describe(entry)} but n{seen.node} applied {_describe(first)}",
            )

    # -- elections ------------------------------------------------------------------------

    def on_leader(self, core: RaftNode) -> None:
        """`core` is leader of its term: check election safety and leader completeness."""
        term = core.term
        node = core.id
        holder = self.leader_by_term.setdefault(term, node)
        if holder != node:
            raise SafetyViolation(
                "election-safety", f"n{holder} and n{node} are both leaders of term {term}"
            )
        self.elections += 1
        self._check_completeness(core, term)

    def _check_completeness(self, core: RaftNode, term: Term) -> None:
        snap = core.snapshot_meta
        committed = self.committed
        if snap.index > 0:
            at_snap = committed.get(snap.index)
            if at_snap is not None and at_snap.entry.term != snap.term:
                raise SafetyViolation(
                    "leader-completeness",
                    f"leader n{core.id} (term {term}) has snapshot {snap.index}/{snap.term} "
                    f"but {_describe(at_snap.entry)} was committed",
                )
        for index in range(snap.index + 1, self.committed_max + 1):
            seen = committed.get(index)
            if seen is None or seen.commit_term >= term:
                continue
            have = core.term_at(index)
            if have != seen.entry.term:
                raise SafetyViolation(
                    "leader-completeness",
                    f"leader n{core.id} (term {term}) has term {have} at {index} "
                    f"but {_describe(seen.entry)} was committed by term {seen.commit_term}",
                )


__all__ = ["CommittedEntry", "SafetyChecker", "SafetyViolation"]
