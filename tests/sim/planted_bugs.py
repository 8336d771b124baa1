"""Deliberately broken Raft nodes (planted bugs), one bug each, for the simulator to catch.

Each class overrides one small method of `RaftNode` to reintroduce a classic Raft mistake
(or, at the end, of `FileStorage` to reintroduce a durability mistake; see test_sim_disk.py).
`tests/sim/test_sim_planted_bugs.py` runs them through the simulator and requires every one
to be caught within a bounded number of seeds; the same seeds pass with the correct node.
"""

import dataclasses

from conclave.consensus.raft import (
    AppendEntries,
    RaftMessage,
    RaftNode,
    RequestVote,
    RequestVoteResponse,
)
from conclave.core import NO_NODE, ReadState, Ready
from conclave.core.effects import Entry, HardState, Snapshot
from conclave.core.quorum import committed_index
from conclave.decision.machine import DecisionMachine, ProposalRecord, Status
from conclave.decision.model import Outcome, VoteChoice
from conclave.decision.policy import evaluate
from conclave.storage import FileStorage


class CommitsPreviousTermByCounting(RaftNode):
    """(a) Raft paper Figure 8: commits an entry of an earlier term once a majority holds it.

    The correct node only advances commit to an index whose entry is of the current term.
    """

    def _maybe_commit(self) -> bool:
        log = self._log
        matches = {voter: self._voter_match(voter) for voter in self._conf.voters}
        index = committed_index(matches)
        if index <= log.commit:
            return False
        log.commit_to(index)  # BUG: no `log.term_at(index) == self._term` check
        self._after_leader_commit()
        return True


class RepliesToVoteBeforePersisting(RaftNode):
    """(b) Sends its vote before the vote is durable: a crash forgets it, it votes again.

    The correct node asks for fsync whenever term or vote changed; this one only when entries
    or a snapshot are written, so the vote reply leaves while the vote is still in a buffer.
    """

    def ready(self) -> Ready[RaftMessage]:
        ready = super().ready()
        if ready.entries or ready.snapshot is not None:
            return ready
        return dataclasses.replace(ready, must_sync=False)  # BUG


class GrantsVoteWithoutLogCheck(RaftNode):
    """(c) Grants votes without the up-to-date check (paper 5.4.1): stale logs can win."""

    def _handle_request_vote(self, msg: RequestVote) -> None:
        granted = (
            self._vote == msg.src
            or (self._vote == NO_NODE and self._leader_id == NO_NODE)
            or (msg.pre_vote and msg.term > self._term)
        )  # BUG: no `self._log.is_up_to_date(msg.last_log_term, msg.last_log_index)`
        if granted and not msg.pre_vote:
            self._vote = msg.src
            self._election_elapsed = 0
        term = msg.term if granted else self._term
        self._send(
            RequestVoteResponse(
                src=self.id, dst=msg.src, term=term, pre_vote=msg.pre_vote, granted=granted
            )
        )


class ReadsWithoutReadIndex(RaftNode):
    """(d) Serves a read from the leader's commit index at once: no quorum round, no lease.

    A deposed leader that has not noticed yet answers with stale data.
    """

    def read_index(self, request_ctx: int) -> None:
        super().read_index(request_ctx)  # still raises NotLeader on a follower
        self._reads.clear()
        self._deferred_reads = []
        self._read_states.append(ReadState(request_ctx=request_ctx, index=self._log.commit))


class AcceptsWithoutConsistencyCheck(RaftNode):
    """(e) A follower appends entries without checking the term of the previous entry.

    It only checks that the previous index exists, so entries are grafted onto a diverging
    prefix and logs that agree on (index, term) differ before it (Log Matching broken).
    """

    def _handle_append(self, msg: AppendEntries) -> None:
        log = self._log
        if not self._initialized or msg.prev_index > log.last_index:
            super()._handle_append(msg)
            return
        if msg.prev_index < log.first_index - 1:
            super()._handle_append(msg)
            return
        # BUG: pretend the previous entry matches whatever its term.
        conflict = log.find_conflict(msg.entries)
        if conflict:
            fresh = msg.entries[conflict - msg.entries[0].index :]
            if conflict <= log.commit:
                fresh = tuple(e for e in fresh if e.index > log.commit)
                if not fresh:
                    conflict = 0
            if conflict and fresh:
                log.truncate_and_append(fresh)
                self._on_log_changed(fresh[0].index, fresh)
        last_new = msg.prev_index + len(msg.entries)
        log.commit_to(min(msg.commit, last_new, log.last_index))
        self._reply_append(msg, success=True, index=last_new)


class VotesTwice(RaftNode):
    """Forgets whom it voted for in the current term: two leaders in one term."""

    def _handle_request_vote(self, msg: RequestVote) -> None:
        granted = self._log.is_up_to_date(msg.last_log_term, msg.last_log_index)
        if granted and not msg.pre_vote:
            self._vote = msg.src
            self._election_elapsed = 0
        term = msg.term if granted else self._term
        self._send(
            RequestVoteResponse(
                src=self.id, dst=msg.src, term=term, pre_vote=msg.pre_vote, granted=granted
            )
        )


class CommitsAlone(RaftNode):
    """A leader that commits its own entries without waiting for a quorum."""

    def _maybe_commit(self) -> bool:
        log = self._log
        index = log.last_index
        if index <= log.commit or log.term_at(index) != self._term:
            return False
        log.commit_to(index)
        self._after_leader_commit()
        return True


class StarvesOneFollower(RaftNode):
    """Never replicates to the member with the highest id: safe, but never converges."""

    def _maybe_send_append(self, peer: int, *, send_if_empty: bool) -> bool:
        if peer == max(self._conf.members()):
            return False
        return super()._maybe_send_append(peer, send_if_empty=send_if_empty)


__all__ = [
    "AbstainCountsAsApprove",
    "AcceptsWithoutConsistencyCheck",
    "CommitsAlone",
    "CommitsPreviousTermByCounting",
    "ExecutesBothSides",
    "ExecutesBothSidesUnchecked",
    "ExpiresInInsertionOrder",
    "GrantsVoteWithoutLogCheck",
    "ReadsWithoutReadIndex",
    "RepliesToVoteBeforePersisting",
    "SkipsWalFsync",
    "StarvesOneFollower",
    "VotesTwice",
    "WritesHardStateFirst",
]


# -- planted storage bugs (run with SimSettings(disk="wal", storage_class=...)) -------------


class SkipsWalFsync(FileStorage):
    """`sync` forgets to fsync the WAL segment: the node acknowledges writes a crash loses."""

    def sync(self) -> None:
        self._dirty = False  # BUG: the segment's fsync is skipped
        super().sync()


class WritesHardStateFirst(FileStorage):
    """Writes the hard state before the entries of the same save (the order before the fix).

    A torn tail can then keep a new commit index with the old entries it was replacing.
    """

    def save(
        self, hard_state: HardState | None, snapshot: Snapshot | None, entries: tuple[Entry, ...]
    ) -> None:
        if hard_state is not None and snapshot is None and entries:
            super().save(hard_state, None, ())  # BUG: commit before the entries it covers
            super().save(None, None, entries)
            return
        super().save(hard_state, snapshot, entries)


# -- planted decision-layer bugs (run with SimSettings(workload="decisions",
#    decision_machine_class=...)); see test_sim_decisions.py -------------------------------


class AbstainCountsAsApprove(DecisionMachine):
    """The tally counts an abstention as an approval (the proposer's barred approval aside).

    Proposals are approved (and executed) that their recorded votes do not approve.
    """

    def _evaluate(self, record: ProposalRecord) -> None:
        config = self.kinds[record.proposal.kind]
        policy = self.effective_policy(record)
        votes = {
            voter: (
                VoteChoice.APPROVE  # BUG: an abstention is not an approval
                if vote.choice is VoteChoice.ABSTAIN
                and (voter != record.proposal.proposer or policy.proposer_may_approve)
                else vote.choice
            )
            for voter, vote in sorted(record.votes.items())
        }
        verdict = evaluate(policy, config.electorate, record.proposal.proposer, votes)
        record.verdict = verdict.reason
        if verdict.outcome is Outcome.APPROVED:
            self._approve(record)
        elif verdict.outcome is Outcome.REJECTED:
            self._finish(record, Status.REJECTED, verdict.reason)

    def _still_approved(self, record: ProposalRecord) -> bool:
        return True  # consistent with the buggy tally above (escalation checks nothing)


class ExecutesBothSides(DecisionMachine):
    """A proposal that loses a conflict is not rejected: both sides may execute."""

    def _finish(self, record: ProposalRecord, status: Status, reason: str) -> None:
        if reason.startswith("lost "):
            return  # BUG: the loser stays open (or approved) and may execute later
        super()._finish(record, status, reason)


class ExpiresInInsertionOrder(DecisionMachine):
    """Expires due proposals in the order they were inserted, not in sorted id order.

    A replica restored from a snapshot holds its proposals in sorted id order ("p10" before
    "p9"), one that applied the log in index order: their audit trails then differ.
    """

    def _expire_due(self) -> None:
        for record in list(self.proposals.values()):  # BUG: not sorted
            if record.status is Status.OPEN and record.proposal.deadline_ms < self.now_ms:
                self._finish(
                    record, Status.EXPIRED, f"deadline {record.proposal.deadline_ms} passed"
                )


class ExecutesBothSidesUnchecked(ExecutesBothSides):
    """The same bug, with the machine's own invariant check broken too: only the
    simulator's external checkers are left to catch it."""

    def check_invariants(self) -> None:
        return  # BUG: checks nothing
