"""The Raft node: a pure state machine from inputs (ticks, messages, proposals) to a `Ready`.

Rules (DESIGN.md section 3; citations are to the Raft paper and Ongaro's thesis):
- Pure: no I/O, clock, threads or global randomness. Time is `tick()`; the election timeout
  is drawn from `env.rng` in [min, max) on every reset (paper 5.2). Peers are visited in
  sorted order, never in set order.
- Persist before send: a vote, an append acknowledgement or an installed snapshot is only
  ever emitted in the same `Ready` as the state it depends on, and the driver persists a
  Ready before sending its messages. A leader counts its own log toward commit only up to
  what `advance` confirmed durable.
- Commit only by counting replicas of an entry of the current term (paper 5.4.2); a new
  leader appends a NOOP so that it can commit (and serve reads, thesis 6.4) soon.
- Nothing committed is ever truncated; commit never decreases; after a restart it is clamped
  to the log that survived.
- Membership changes are single-server (thesis 4.1): a change takes effect on a node as soon
  as its entry is in that node's log and is undone if the entry is truncated. Only one may be
  uncommitted, and only once the leader has committed an entry of its term (thesis 4.1's
  fix). Learners replicate but never count in a quorum and never campaign.
- Remote input is never trusted: impossible messages are dropped and traced. A broken local
  invariant raises `InvariantViolation`.
- Messages from nodes outside this node's configuration are still processed (thesis 4.1:
  "servers process incoming RPC requests without consulting their current configurations"),
  so that new members and reconfigured leaders work; responses from nodes the leader does not
  track are dropped.
"""

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from conclave.consensus.raft.log import RaftLog
from conclave.consensus.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    RaftMessage,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from conclave.consensus.raft.progress import PeerProgress, Progress, ProgressState
from conclave.consensus.raft.settings import RaftConfig, ReadOnlyOption
from conclave.consensus.raft.types import (
    ConfChange,
    ConfChangeOp,
    ProposalTicket,
    Role,
    apply_conf_change,
)
from conclave.consensus.raft.validation import invalid_reason
from conclave.core.effects import (
    ConfState,
    Entry,
    EntryKind,
    HardState,
    ReadState,
    Ready,
    Send,
    Snapshot,
    SnapshotMeta,
    TraceEvent,
)
from conclave.core.env import CoreEnv
from conclave.core.errors import InvariantViolation, NotLeader, ProposalDropped
from conclave.core.ids import NO_NODE, LogIndex, NodeId, Term
from conclave.core.ports import StableState
from conclave.core.quorum import VoteResult, committed_index, quorum_size, vote_result

_ALL_ACKED = 1 << 62  # the leader's own acknowledgement of any read round


@dataclass(frozen=True, slots=True)
class _PendingRead:
    ctx: int
    index: LogIndex
    seq: int


class RaftNode:
    """One Raft node. Construct with `bootstrap`, `restore` or `join_as_learner`."""

    def __init__(
        self,
        config: RaftConfig,
        env: CoreEnv,
        log: RaftLog,
        hard_state: HardState,
        *,
        initialized: bool,
    ) -> None:
        self._config = config
        self._env = env
        self._log = log
        self._initialized = initialized
        self._term: Term = hard_state.term
        self._vote: NodeId = hard_state.vote
        self._prev_hard_state = hard_state
        self._role = Role.FOLLOWER
        self._leader_id: NodeId = NO_NODE
        self._conf_indices: list[LogIndex] = []
        self._conf = ConfState()
        # Timers (ticks). `_ticks` only grows; the others reset.
        self._ticks = 0
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = config.election_timeout_ticks_min
        self._vote_guard_until = 0
        # Candidate state.
        self._votes: dict[NodeId, bool] = {}
        # Leader state.
        self._prs: dict[NodeId, Progress] = {}
        self._lead_transferee: NodeId = NO_NODE
        self._transfer_elapsed = 0
        self._timeout_now_sent = False
        self._lease_tainted = False
        self._read_seq = 0
        self._seq_ticks: dict[int, int] = {}
        self._reads: deque[_PendingRead] = deque()
        self._deferred_reads: list[int] = []
        self._read_round_pending = False
        self._bcast_pending = False
        # Outputs waiting for the next Ready.
        self._msgs: list[Send[RaftMessage]] = []
        self._read_states: list[ReadState] = []
        self._traces: list[TraceEvent] = []
        self._step_role: Callable[[RaftMessage], None] = self._step_follower
        self._tick_role: Callable[[], None] = self._tick_election
        self._rebuild_conf_indices()
        self._refresh_conf(trace=False)
        self._reset_election_timer()

    # == construction (DESIGN.md rule 11) ==================================================

    @classmethod
    def bootstrap(
        cls, config: RaftConfig, env: CoreEnv, *, voters: tuple[NodeId, ...]
    ) -> "RaftNode":
        """A member of a fresh cluster: the membership is a snapshot at index 0."""
        members = tuple(sorted(set(voters)))
        if not members or any(v <= 0 for v in members):
            raise ValueError(f"voters must be positive node ids, got {voters!r}")
        meta = SnapshotMeta(index=0, term=0, conf=ConfState(voters=members))
        log = RaftLog.empty(Snapshot(meta=meta), snapshot_unstable=True)
        node = cls(config, env, log, HardState(), initialized=True)
        node._trace("bootstrap", voters=members)
        return node

    @classmethod
    def join_as_learner(cls, config: RaftConfig, env: CoreEnv) -> "RaftNode":
        """A new node with nothing: it waits for a leader's snapshot before anything else."""
        log = RaftLog.empty(Snapshot(meta=RaftLog.blank_meta()), snapshot_unstable=False)
        return cls(config, env, log, HardState(), initialized=False)

    @classmethod
    def restore(
        cls,
        config: RaftConfig,
        env: CoreEnv,
        stable: StableState,
        *,
        applied: LogIndex | None = None,
    ) -> "RaftNode":
        """Rebuild a node from what storage holds after a restart.

        The state machine is assumed restored from `stable.snapshot` (applied index = the
        snapshot's) unless `applied` says it kept more. Commit is clamped to the surviving
        log: writes that were never synced may be gone, and the core never relies on them.
        """
        hs = stable.hard_state
        snap = stable.snapshot
        initialized = snap is not None
        if snap is None:
            snap = Snapshot(meta=RaftLog.blank_meta())
        entries = [e for e in stable.entries if e.index > snap.meta.index]
        for n, entry in enumerate(entries):
            if entry.index != snap.meta.index + 1 + n:
                raise InvariantViolation(f"stored log has a hole before {entry.index}")
        if entries and not initialized:
            raise InvariantViolation("stored entries without a snapshot")
        last = snap.meta.index + len(entries)
        commit = max(snap.meta.index, min(hs.commit, last))
        applied_index = snap.meta.index if applied is None else applied
        applied_index = max(snap.meta.index, min(applied_index, commit))
        log = RaftLog(
            snapshot=snap,
            entries=entries,
            commit=commit,
            applied=applied_index,
            applying=applied_index,
            unstable_from=last + 1,
            persisted_index=last,
        )
        # Terms never go back: take the newest term that storage proves.
        term = max(hs.term, log.last_term)
        vote = hs.vote if term == hs.term else NO_NODE
        node = cls(
            config,
            env,
            log,
            HardState(term=term, vote=vote, commit=commit),
            initialized=initialized,
        )
        node._prev_hard_state = hs
        # Lease safety across restarts: we may have acknowledged a leader just before the
        # crash, so refuse non-transfer votes for one minimum election timeout (thesis 6.4.1).
        node._vote_guard_until = config.election_timeout_ticks_min
        node._trace("restored", term=term, commit=commit, last=last)
        return node

    # == observation =======================================================================

    @property
    def id(self) -> NodeId:
        return self._config.node_id

    @property
    def config(self) -> RaftConfig:
        return self._config

    @property
    def role(self) -> Role:
        return self._role

    @property
    def term(self) -> Term:
        return self._term

    @property
    def vote(self) -> NodeId:
        return self._vote

    @property
    def leader_id(self) -> NodeId:
        return self._leader_id

    @property
    def commit_index(self) -> LogIndex:
        return self._log.commit

    @property
    def applied_index(self) -> LogIndex:
        return self._log.applied

    @property
    def last_index(self) -> LogIndex:
        return self._log.last_index

    @property
    def first_index(self) -> LogIndex:
        return self._log.first_index

    @property
    def conf(self) -> ConfState:
        return self._conf

    @property
    def snapshot_meta(self) -> SnapshotMeta:
        return self._log.snapshot.meta

    @property
    def initialized(self) -> bool:
        """False for a joiner that has not received its first snapshot yet."""
        return self._initialized

    @property
    def is_learner(self) -> bool:
        return self.id in self._conf.learners

    @property
    def lead_transferee(self) -> NodeId:
        """The target of a leadership transfer in progress, or NO_NODE."""
        return self._lead_transferee

    def term_at(self, index: LogIndex) -> Term | None:
        return self._log.term_at(index)

    def entries(self, lo: LogIndex, hi: LogIndex) -> tuple[Entry, ...]:
        """Entries [lo, hi) that are still in memory (not compacted)."""
        return self._log.slice(lo, hi)

    def progress(self) -> Mapping[NodeId, PeerProgress]:
        """The leader's view of every member's log (empty on a non-leader)."""
        if self._role is not Role.LEADER:
            return {}
        last = self._log.last_index
        learners = self._conf.learners
        out = {p: pr.view(last, is_learner=p in learners) for p, pr in self._prs.items()}
        own = self._log.persisted_index
        out[self.id] = PeerProgress(
            match=own,
            next=last + 1,
            state=ProgressState.REPLICATE,
            inflight=0,
            lag=max(0, last - own),
            recent_active=True,
            is_learner=self.id in learners,
        )
        return dict(sorted(out.items()))

    # == inputs ============================================================================

    def tick(self) -> None:
        """One logical clock tick."""
        self._ticks += 1
        self._tick_role()

    def step(self, message: RaftMessage) -> None:
        """A message from a peer. Invalid or stale input is dropped and traced."""
        reason = invalid_reason(message, self.id)
        if reason is not None:
            self._drop(message, reason)
            return
        if message.term > self._term:
            if not self._step_higher_term(message):
                return
        elif message.term < self._term:
            self._step_lower_term(message)
            return
        if isinstance(message, RequestVote):
            self._handle_request_vote(message)
            return
        self._step_role(message)

    def propose(self, data: bytes) -> ProposalTicket:
        """Append a command; see the API doc for how a client learns its fate."""
        self._check_can_propose()
        entry = Entry(term=self._term, index=self._log.last_index + 1, data=data)
        self._log.append((entry,))
        self._bcast_pending = True
        return ProposalTicket(index=entry.index, term=entry.term)

    def propose_conf_change(self, change: ConfChange) -> ProposalTicket:
        """Append a single-server membership change (thesis 4.1)."""
        self._check_can_propose()
        self._validate_conf_change(change)
        if not self._committed_in_term():
            raise ProposalDropped("the leader has not committed an entry of its term yet")
        if self._conf_change_pending():
            raise ProposalDropped("another membership change is not committed yet")
        if change.op is ConfChangeOp.PROMOTE_LEARNER:
            pr = self._prs.get(change.node_id)
            lag_max = self._config.learner_catch_up_lag_max
            if pr is None or pr.match < self._log.last_index - lag_max:
                raise ProposalDropped(f"learner {change.node_id} has not caught up")
        index = self._log.last_index + 1
        entry = Entry(
            term=self._term, index=index, kind=EntryKind.CONF_CHANGE, data=change.encode()
        )
        self._log.append((entry,))
        self._conf_indices.append(index)
        self._refresh_conf(trace=True)
        self._bcast_pending = True
        # The new configuration counts at once (thesis 4.1); a smaller quorum may commit.
        if self._maybe_commit():
            self._bcast_pending = True
        return ProposalTicket(index=index, term=self._term)

    def read_index(self, request_ctx: int) -> None:
        """Linearizable read barrier (thesis 6.4); answered later as a ReadState."""
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if len(self._reads) + len(self._deferred_reads) >= self._config.pending_reads_max:
            raise ProposalDropped("too many pending reads")
        if not self._committed_in_term():
            # Thesis 6.4 step 1: until an entry of its term commits, the leader's commit
            # index may be behind what earlier leaders committed.
            self._deferred_reads.append(request_ctx)
            return
        self._register_read(request_ctx)

    def transfer_leadership(self, target: NodeId) -> None:
        """Hand leadership to `target` (thesis 3.10)."""
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if target == self.id:
            self._abort_transfer("transfer to self")
            return
        if target not in self._conf.voters:
            raise ValueError(f"node {target} is not a voter")
        if self._lead_transferee == target:
            return
        if self._lead_transferee != NO_NODE:
            self._abort_transfer("superseded")
        self._lead_transferee = target
        self._transfer_elapsed = 0
        self._timeout_now_sent = False
        self._trace("transfer_started", target=target)
        pr = self._prs[target]
        if pr.match == self._log.last_index:
            self._send_timeout_now(target)
        else:
            self._maybe_send_append(target, send_if_empty=True)

    def compact(self, index: LogIndex, data: bytes) -> None:
        """Make the state-machine image `data` (as of applied `index`) the snapshot."""
        if index <= self._log.snapshot.meta.index:
            return  # already covered by a newer snapshot (e.g. one installed from a leader)
        if index > self._log.applied:
            raise ValueError(f"cannot compact at {index}: applied index is {self._log.applied}")
        conf = self._conf_at(index)
        self._log.compact(index, data, conf)
        self._conf_indices = [i for i in self._conf_indices if i > index]
        self._trace("compacted", index=index)

    # == outputs ===========================================================================

    def has_ready(self) -> bool:
        """True when `ready()` would return something to do."""
        log = self._log
        return bool(
            self._msgs
            or self._traces
            or self._read_states
            or log.snapshot_unstable
            or log.has_unstable()
            or log.has_committed_to_apply()
            or self._hard_state() != self._prev_hard_state
            or (self._role is Role.LEADER and (self._bcast_pending or self._read_round_pending))
        )

    def ready(self) -> Ready[RaftMessage]:
        """Hand the driver everything to persist, send and apply (see `Ready`)."""
        self._flush()
        log = self._log
        hs = self._hard_state()
        prev = self._prev_hard_state
        snapshot = log.snapshot if log.snapshot_unstable else None
        log.snapshot_unstable = False
        entries = log.take_unstable()
        committed = log.next_committed(self._config.apply_entries_per_ready_max)
        must_sync = (
            bool(entries) or snapshot is not None or hs.term != prev.term or hs.vote != prev.vote
        )
        ready: Ready[RaftMessage] = Ready(
            hard_state=hs if hs != prev else None,
            snapshot=snapshot,
            entries=entries,
            must_sync=must_sync,
            messages=tuple(self._msgs),
            committed_entries=committed,
            read_states=tuple(self._read_states),
            traces=tuple(self._traces),
        )
        self._prev_hard_state = hs
        self._msgs = []
        self._read_states = []
        self._traces = []
        return ready

    def advance(self, ready: Ready[RaftMessage]) -> None:
        """Everything in `ready` was persisted, sent and applied."""
        log = self._log
        if ready.snapshot is not None:
            log.snapshot_stable(ready.snapshot.meta)
            log.applied_to(ready.snapshot.meta.index)
        if ready.entries:
            last = ready.entries[-1]
            log.stable_to(last.index, last.term)
        if ready.committed_entries:
            log.applied_to(ready.committed_entries[-1].index)
        if self._role is Role.LEADER:
            # The leader's own durable copy now counts (persist before counting).
            self._maybe_commit()

    # == invariants (DESIGN.md rule 9) =====================================================

    def check_invariants(self) -> None:
        """Raise InvariantViolation if a local invariant is broken."""
        self._log.check()
        if self._term < 0 or (self._vote != NO_NODE and self._term == 0):
            raise InvariantViolation(f"vote {self._vote} in term {self._term}")
        if self._log.last_term > self._term:
            raise InvariantViolation(f"log term {self._log.last_term} above term {self._term}")
        conf = self._conf
        if set(conf.voters) & set(conf.learners):
            raise InvariantViolation(f"voters and learners overlap: {conf}")
        if conf != self._conf_at(self._log.last_index):
            raise InvariantViolation(f"configuration {conf} does not match the log")
        if not self._initialized and (self._log.entries or self._log.commit):
            raise InvariantViolation("an uninitialized node holds log entries")
        if self._role in (Role.CANDIDATE, Role.LEADER) and self._vote != self.id:
            raise InvariantViolation(f"{self._role.value} voted for {self._vote}")
        if self._role is not Role.FOLLOWER and not self._initialized:
            raise InvariantViolation(f"uninitialized {self._role.value}")
        if self._role is Role.LEADER:
            self._check_leader_invariants()
        elif self._prs or self._reads or self._lead_transferee != NO_NODE:
            raise InvariantViolation("leader state on a non-leader")

    def _check_leader_invariants(self) -> None:
        log = self._log
        if self._leader_id != self.id:
            raise InvariantViolation(f"leader thinks {self._leader_id} leads")
        if log.last_term != self._term:
            raise InvariantViolation("leader's last entry is not of its term")
        for peer, pr in self._prs.items():
            if not 0 <= pr.match < pr.next <= log.last_index + 1:
                raise InvariantViolation(
                    f"progress of {peer}: match {pr.match} next {pr.next} last {log.last_index}"
                )
            if len(pr.inflights) > pr.inflight_max:
                raise InvariantViolation(f"progress of {peer}: {len(pr.inflights)} inflight")
        for member in self._conf.members():
            if member != self.id and member not in self._prs:
                raise InvariantViolation(f"leader does not track member {member}")
        if self._lead_transferee not in (NO_NODE, *self._conf.voters):
            raise InvariantViolation(f"transfer to non-voter {self._lead_transferee}")

    # == stepping: term rules (paper 5.1, thesis 9.6) ======================================

    def _step_higher_term(self, msg: RaftMessage) -> bool:
        """Adopt a higher term if the message allows; False when the message is ignored."""
        if isinstance(msg, RequestVote):
            if not msg.transfer and self._in_lease():
                # Thesis 4.2.3 / 6.4.1: a follower that recently heard from a leader ignores
                # vote requests, so removed or partitioned servers cannot disrupt, and
                # leases stay sound.
                self._trace("vote_ignored", candidate=msg.src, term=msg.term, reason="lease")
                return False
            if msg.pre_vote:
                return True  # a pre-vote never changes our term (thesis 9.6)
            self._become_follower(msg.term, NO_NODE)
            return True
        if isinstance(msg, RequestVoteResponse) and msg.pre_vote and msg.granted:
            return True  # a granted pre-vote echoes the term we would campaign in
        leader = msg.src if isinstance(msg, AppendEntries | InstallSnapshot) else NO_NODE
        self._become_follower(msg.term, leader)
        return True

    def _step_lower_term(self, msg: RaftMessage) -> None:
        """A stale message. Tell a stale leader or pre-candidate our term; drop the rest."""
        if isinstance(msg, AppendEntries | InstallSnapshot):
            # Without this a leader cut off from a node with a higher term would never learn
            # it (etcd does the same when check-quorum or pre-vote is on).
            prev = msg.prev_index if isinstance(msg, AppendEntries) else 0
            self._send(
                AppendEntriesResponse(
                    src=self.id, dst=msg.src, term=self._term, success=False, match_index=prev
                )
            )
        elif isinstance(msg, RequestVote) and msg.pre_vote:
            self._send(
                RequestVoteResponse(
                    src=self.id, dst=msg.src, term=self._term, pre_vote=True, granted=False
                )
            )
        self._drop(msg, f"stale term {msg.term} < {self._term}")

    def _in_lease(self) -> bool:
        """True while this node must not help elect another leader (check-quorum)."""
        if not self._config.check_quorum:
            return False
        return self._ticks < self._vote_guard_until or self._heard_from_leader_recently()

    def _heard_from_leader_recently(self) -> bool:
        return (
            self._leader_id != NO_NODE
            and self._election_elapsed < self._config.election_timeout_ticks_min
        )

    def _handle_request_vote(self, msg: RequestVote) -> None:
        """Grant a vote or pre-vote per paper 5.2/5.4.1 and thesis 9.6."""
        can_vote = (
            self._vote == msg.src
            or (self._vote == NO_NODE and self._leader_id == NO_NODE)
            or (msg.pre_vote and msg.term > self._term)
        )
        if msg.pre_vote and not msg.transfer and self._heard_from_leader_recently():
            # Thesis 9.6: no pre-vote while a leader's heartbeats arrive (check-quorum or not).
            can_vote = False
        # A joiner knows no configuration and may have lost its state: it never votes.
        granted = (
            can_vote
            and self._initialized
            and self._log.is_up_to_date(msg.last_log_term, msg.last_log_index)
        )
        kind = "pre_vote" if msg.pre_vote else "vote"
        if granted:
            if not msg.pre_vote:
                self._vote = msg.src
                self._election_elapsed = 0
            self._trace(f"{kind}_granted", candidate=msg.src, term=msg.term)
        else:
            self._trace(f"{kind}_refused", candidate=msg.src, term=msg.term)
        self._send(
            RequestVoteResponse(
                src=self.id,
                dst=msg.src,
                term=msg.term if granted else self._term,
                pre_vote=msg.pre_vote,
                granted=granted,
            )
        )

    # == stepping: roles ===================================================================

    def _step_follower(self, msg: RaftMessage) -> None:
        if isinstance(msg, AppendEntries):
            self._heard_from_leader(msg.src)
            self._handle_append(msg)
        elif isinstance(msg, InstallSnapshot):
            self._heard_from_leader(msg.src)
            self._handle_snapshot(msg)
        elif isinstance(msg, TimeoutNow):
            if self._promotable():
                self._trace("transfer_campaign", leader=msg.src)
                self._campaign(transfer=True)
            else:
                self._drop(msg, "not a voter")
        # Responses addressed to a former leader or candidate are simply late.

    def _step_candidate(self, msg: RaftMessage) -> None:
        if isinstance(msg, AppendEntries | InstallSnapshot):
            # Paper 5.2: a leader of our term exists; return to follower.
            self._become_follower(self._term, msg.src)
            self._step_follower(msg)
        elif isinstance(msg, RequestVoteResponse):
            self._handle_vote_response(msg)
        elif isinstance(msg, TimeoutNow) and self._role is Role.PRE_CANDIDATE:
            self._trace("transfer_campaign", leader=msg.src)  # our term is still the leader's
            self._campaign(transfer=True)

    def _step_leader(self, msg: RaftMessage) -> None:
        if isinstance(msg, AppendEntriesResponse):
            self._handle_append_response(msg)
        elif isinstance(msg, InstallSnapshotResponse):
            self._handle_snapshot_response(msg)
        elif isinstance(msg, AppendEntries | InstallSnapshot):
            self._drop(msg, "another leader in my term")

    def _heard_from_leader(self, leader: NodeId) -> None:
        self._election_elapsed = 0
        self._leader_id = leader

    # == elections (paper 5.2, thesis 9.6 pre-vote, 3.10 transfer) =========================

    def _promotable(self) -> bool:
        return self._initialized and self.id in self._conf.voters

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if not self._promotable():
            return
        if self._election_elapsed >= self._randomized_timeout:
            self._campaign(transfer=False)

    def _campaign(self, *, transfer: bool) -> None:
        if not self._promotable():
            return
        if self._config.pre_vote and not transfer:
            self._become_pre_candidate()
            self._solicit_votes(pre_vote=True, transfer=False)
        else:
            self._become_candidate()
            self._solicit_votes(pre_vote=False, transfer=transfer)

    def _solicit_votes(self, *, pre_vote: bool, transfer: bool) -> None:
        self._votes = {self.id: True}
        if self._tally() is VoteResult.WON:
            self._election_won(pre_vote=pre_vote)
            return
        term = self._term + 1 if pre_vote else self._term
        for voter in self._conf.voters:
            if voter == self.id:
                continue
            self._send(
                RequestVote(
                    src=self.id,
                    dst=voter,
                    term=term,
                    pre_vote=pre_vote,
                    last_log_index=self._log.last_index,
                    last_log_term=self._log.last_term,
                    transfer=transfer,
                )
            )

    def _tally(self) -> VoteResult:
        return vote_result(self._conf.voters, self._votes)

    def _handle_vote_response(self, msg: RequestVoteResponse) -> None:
        if self._role is Role.PRE_CANDIDATE:
            # Granted pre-votes echo term + 1; refusals carry the voter's (equal) term.
            expected = self._term + 1 if msg.granted else self._term
            if not msg.pre_vote or msg.term != expected:
                return
        elif msg.pre_vote or msg.term != self._term:
            return
        if msg.src in self._votes:
            return  # duplicate
        self._votes[msg.src] = msg.granted
        result = self._tally()
        if result is VoteResult.WON:
            self._election_won(pre_vote=self._role is Role.PRE_CANDIDATE)
        elif result is VoteResult.LOST:
            self._trace("election_lost", term=self._term, pre_vote=msg.pre_vote)
            self._become_follower(self._term, NO_NODE)

    def _election_won(self, *, pre_vote: bool) -> None:
        if pre_vote:
            self._trace("pre_vote_won", term=self._term + 1)
            self._become_candidate()
            self._solicit_votes(pre_vote=False, transfer=False)
        else:
            self._trace("election_won", term=self._term)
            self._become_leader()

    # == role changes ======================================================================

    def _reset(self, term: Term) -> None:
        if term != self._term:
            self._term = term
            self._vote = NO_NODE
        self._leader_id = NO_NODE
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._reset_election_timer()
        self._votes = {}
        if self._lead_transferee != NO_NODE:
            self._abort_transfer("role change")
        self._prs = {}
        dropped = len(self._reads) + len(self._deferred_reads)
        if dropped:
            self._trace("reads_dropped", count=dropped)
        self._reads.clear()
        self._deferred_reads = []
        self._read_round_pending = False
        self._bcast_pending = False

    def _reset_election_timer(self) -> None:
        cfg = self._config
        self._randomized_timeout = self._env.rng.randrange(
            cfg.election_timeout_ticks_min, cfg.election_timeout_ticks_max
        )

    def _become_follower(self, term: Term, leader: NodeId) -> None:
        was = self._role
        self._reset(term)
        self._role = Role.FOLLOWER
        self._leader_id = leader
        self._step_role = self._step_follower
        self._tick_role = self._tick_election
        if was is not Role.FOLLOWER:
            self._trace("became_follower", term=term, leader=leader, was=was.value)

    def _become_pre_candidate(self) -> None:
        # Thesis 9.6: the term and vote are left alone; only the role changes.
        self._votes = {}
        self._leader_id = NO_NODE
        self._election_elapsed = 0
        self._reset_election_timer()
        self._role = Role.PRE_CANDIDATE
        self._step_role = self._step_candidate
        self._tick_role = self._tick_election
        self._trace("became_pre_candidate", term=self._term)

    def _become_candidate(self) -> None:
        self._reset(self._term + 1)
        self._vote = self.id
        self._role = Role.CANDIDATE
        self._step_role = self._step_candidate
        self._tick_role = self._tick_election
        self._trace("became_candidate", term=self._term)

    def _become_leader(self) -> None:
        self._reset(self._term)
        self._role = Role.LEADER
        self._leader_id = self.id
        self._step_role = self._step_leader
        self._tick_role = self._tick_leader
        self._lease_tainted = False
        self._read_seq = 0
        self._seq_ticks = {0: self._ticks}
        nxt = self._log.last_index + 1
        for peer in self._conf.members():
            if peer != self.id:
                self._prs[peer] = self._new_progress(nxt)
        # Paper 5.4.2 / thesis 6.4: a NOOP of the new term lets the leader commit (and know
        # its commit index is current) without waiting for a client.
        noop = Entry(term=self._term, index=nxt, kind=EntryKind.NOOP)
        self._log.append((noop,))
        self._bcast_pending = True
        self._trace("became_leader", term=self._term, last=noop.index)

    def _new_progress(self, next_index: LogIndex) -> Progress:
        return Progress(match=0, next=next_index, inflight_max=self._config.inflight_appends_max)

    # == follower side of replication (paper 5.3, thesis 5) ================================

    def _handle_append(self, msg: AppendEntries) -> None:
        log = self._log
        if not self._initialized:
            # A joiner has no configuration yet; only a snapshot can give it one.
            self._reply_append(msg, success=False, index=msg.prev_index)
            return
        if msg.prev_index < log.commit:
            # Everything up to our commit matches any leader's log (leader completeness).
            self._reply_append(msg, success=True, index=log.commit)
            return
        if not log.matches(msg.prev_index, msg.prev_term):
            hint_index, hint_term = log.find_conflict_by_term(msg.prev_index, msg.prev_term)
            self._trace(
                "append_rejected", prev=msg.prev_index, prev_term=msg.prev_term, hint=hint_index
            )
            self._reply_append(
                msg, success=False, index=msg.prev_index, hint=(hint_index, hint_term)
            )
            return
        conflict = log.find_conflict(msg.entries)
        if conflict:
            fresh = msg.entries[conflict - msg.entries[0].index :]
            truncates = conflict <= log.last_index
            log.truncate_and_append(fresh)
            if truncates:
                self._trace("log_truncated", at=conflict)
            self._on_log_changed(conflict, fresh)
        last_new = msg.prev_index + len(msg.entries)
        log.commit_to(min(msg.commit, last_new))
        self._reply_append(msg, success=True, index=last_new)

    def _reply_append(
        self,
        msg: AppendEntries,
        *,
        success: bool,
        index: LogIndex,
        hint: tuple[LogIndex, Term] = (0, 0),
    ) -> None:
        self._send(
            AppendEntriesResponse(
                src=self.id,
                dst=msg.src,
                term=self._term,
                success=success,
                match_index=index,
                conflict_index=hint[0],
                conflict_term=hint[1],
                read_seq=msg.read_seq,
            )
        )

    def _handle_snapshot(self, msg: InstallSnapshot) -> None:
        snap = msg.snapshot
        meta = snap.meta
        if self._initialized and meta.index <= self._log.commit:
            self._send(self._snapshot_reply(msg.src, self._log.commit))
            return
        kept = self._log.install(snap)
        self._initialized = True
        self._conf_indices = [i for i in self._conf_indices if i > meta.index] if kept else []
        self._refresh_conf(trace=True)
        self._trace("snapshot_installed", index=meta.index, term=meta.term, kept_suffix=kept)
        self._send(self._snapshot_reply(msg.src, meta.index))

    def _snapshot_reply(self, leader: NodeId, match: LogIndex) -> InstallSnapshotResponse:
        return InstallSnapshotResponse(src=self.id, dst=leader, term=self._term, match_index=match)

    # == leader side of replication =========================================================

    def _handle_append_response(self, msg: AppendEntriesResponse) -> None:
        pr = self._prs.get(msg.src)
        if pr is None:
            self._drop(msg, "response from an untracked node")
            return
        if msg.match_index > self._log.last_index:
            self._drop(msg, f"index {msg.match_index} beyond my log")
            return
        pr.recent_active = True
        self._ack_read_seq(pr, msg.read_seq)
        if msg.success:
            self._on_append_success(msg.src, pr, msg.match_index)
        else:
            self._on_append_reject(msg.src, pr, msg)

    def _on_append_success(self, peer: NodeId, pr: Progress, match: LogIndex) -> None:
        if not pr.maybe_update(match):
            if pr.state is ProgressState.PROBE:
                # A heartbeat (or duplicate) answer: the follower is reachable, probe again.
                pr.probe_sent = False
                self._maybe_send_append(peer, send_if_empty=False)
            return
        if pr.state is ProgressState.PROBE or (
            pr.state is ProgressState.SNAPSHOT and pr.match + 1 >= self._log.first_index
        ):
            # A snapshot still outstanding is only abandoned once the log can serve it.
            pr.become_replicate()
        if self._maybe_commit():
            self._bcast_pending = True
            if self._role is not Role.LEADER:
                return  # the commit removed us (thesis 4.2.2)
        while self._maybe_send_append(peer, send_if_empty=False):
            pass
        self._maybe_send_timeout_now(peer, pr)

    def _on_append_reject(self, peer: NodeId, pr: Progress, msg: AppendEntriesResponse) -> None:
        hint = msg.conflict_index
        if msg.conflict_term > 0:
            # Thesis 5.3 optimisation: skip every entry of terms the follower cannot match.
            hint, _ = self._log.find_conflict_by_term(msg.conflict_index, msg.conflict_term)
        if not pr.maybe_decrease_to(msg.match_index, hint):
            # Stale (reordered, duplicated, or a heartbeat's): still proof that the follower
            # is reachable, so a lost probe is retried.
            if pr.state is ProgressState.PROBE and pr.probe_sent:
                pr.probe_sent = False
                self._maybe_send_append(peer, send_if_empty=True)
            return
        if msg.conflict_index == 0:
            self._send_snapshot(peer, pr)  # the follower holds nothing we can append to
            return
        if pr.state is ProgressState.REPLICATE:
            pr.become_probe()
        self._maybe_send_append(peer, send_if_empty=True)

    def _handle_snapshot_response(self, msg: InstallSnapshotResponse) -> None:
        pr = self._prs.get(msg.src)
        if pr is None:
            self._drop(msg, "response from an untracked node")
            return
        if msg.match_index > self._log.last_index:
            self._drop(msg, f"index {msg.match_index} beyond my log")
            return
        pr.recent_active = True
        pr.maybe_update(msg.match_index)
        if pr.state is ProgressState.SNAPSHOT:
            pr.become_probe()
        if self._maybe_commit():
            self._bcast_pending = True
            if self._role is not Role.LEADER:
                return
        self._maybe_send_append(msg.src, send_if_empty=False)
        self._maybe_send_timeout_now(msg.src, pr)

    def _maybe_send_append(self, peer: NodeId, *, send_if_empty: bool) -> bool:
        """Send the next append (or a snapshot) to `peer` if flow control allows."""
        pr = self._prs[peer]
        if pr.is_paused():
            return False
        log = self._log
        prev = pr.next - 1
        prev_term = log.term_at(prev)
        if prev_term is None:
            return self._send_snapshot(peer, pr)
        entries = log.slice(
            pr.next,
            log.last_index + 1,
            count_max=self._config.entries_per_message_max,
            bytes_max=self._config.bytes_per_message_max,
        )
        if not entries and not send_if_empty:
            return False
        self._send(
            AppendEntries(
                src=self.id,
                dst=peer,
                term=self._term,
                prev_index=prev,
                prev_term=prev_term,
                entries=entries,
                commit=log.commit,
                read_seq=self._read_seq,
            )
        )
        pr.commit_sent = max(pr.commit_sent, min(log.commit, prev + len(entries)))
        pr.sent_append(prev + len(entries), len(entries))
        return True

    def _send_snapshot(self, peer: NodeId, pr: Progress) -> bool:
        snap = self._log.snapshot
        self._send(InstallSnapshot(src=self.id, dst=peer, term=self._term, snapshot=snap))
        pr.become_snapshot(snap.meta.index)
        self._trace("snapshot_sent", to=peer, index=snap.meta.index)
        return True

    def _send_heartbeat(self, peer: NodeId, pr: Progress) -> None:
        """An empty append at the follower's known match: liveness, commit and read acks."""
        log = self._log
        prev = max(pr.match, log.snapshot.meta.index)
        prev_term = log.term_at(prev)
        if prev_term is None:
            raise InvariantViolation(f"no term at heartbeat index {prev}")
        self._send(
            AppendEntries(
                src=self.id,
                dst=peer,
                term=self._term,
                prev_index=prev,
                prev_term=prev_term,
                commit=log.commit,
                read_seq=self._read_seq,
            )
        )

    def _flush(self) -> None:
        """Send what proposals, commits and reads accumulated since the last Ready."""
        if self._role is not Role.LEADER:
            return
        if self._read_round_pending:
            self._start_read_round()
        if not self._bcast_pending:
            return
        self._bcast_pending = False
        commit = self._log.commit
        for peer, pr in sorted(self._prs.items()):
            sent = False
            while self._maybe_send_append(peer, send_if_empty=False):
                sent = True
            if not sent and pr.commit_sent < min(commit, pr.next - 1):
                self._maybe_send_append(peer, send_if_empty=True)  # carries the new commit

    def _maybe_commit(self) -> bool:
        """Advance commit to what a quorum of voters holds, if of the current term."""
        log = self._log
        matches = {voter: self._voter_match(voter) for voter in self._conf.voters}
        index = committed_index(matches)
        # Paper 5.4.2 (Figure 8): never commit an older term's entry by counting replicas.
        if index <= log.commit or log.term_at(index) != self._term:
            return False
        log.commit_to(index)
        self._trace("commit", index=index)
        self._after_leader_commit()
        return True

    def _voter_match(self, voter: NodeId) -> LogIndex:
        if voter == self.id:
            return min(self._log.persisted_index, self._log.last_index)
        pr = self._prs.get(voter)
        return pr.match if pr is not None else 0

    def _after_leader_commit(self) -> None:
        if self._deferred_reads and self._committed_in_term():
            deferred, self._deferred_reads = self._deferred_reads, []
            for ctx in deferred:
                self._register_read(ctx)
        if self._conf_change_pending():
            return
        # The latest configuration is committed: forget nodes it removed, and step down if
        # it removed us (thesis 4.2.2).
        members = set(self._conf.members())
        for peer in sorted(self._prs):
            if peer not in members:
                del self._prs[peer]
        if self.id not in self._conf.voters:
            self._trace("removed_self", term=self._term)
            self._become_follower(self._term, NO_NODE)

    def _committed_in_term(self) -> bool:
        return self._log.term_at(self._log.commit) == self._term

    # == leader timers =====================================================================

    def _tick_leader(self) -> None:
        cfg = self._config
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= cfg.election_timeout_ticks_min:
            self._election_elapsed = 0
            if cfg.check_quorum and not self._quorum_recently_active():
                # Thesis 6.2: a leader that cannot reach a quorum steps down.
                self._trace("check_quorum_failed", term=self._term)
                self._become_follower(self._term, NO_NODE)
                return
        if self._lead_transferee != NO_NODE:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= cfg.election_timeout_ticks_min:
                self._abort_transfer("timed out")
        self._tick_progress()
        if self._heartbeat_elapsed >= cfg.heartbeat_interval_ticks:
            self._heartbeat_elapsed = 0
            self._start_read_round()

    def _tick_progress(self) -> None:
        """Retry snapshots and stalled pipelines whose messages may have been lost."""
        timeout = self._config.election_timeout_ticks_min
        for peer, pr in sorted(self._prs.items()):
            if pr.state is ProgressState.SNAPSHOT:
                pr.snapshot_elapsed_ticks += 1
                if pr.snapshot_elapsed_ticks >= timeout:
                    self._send_snapshot(peer, pr)
            elif pr.state is ProgressState.REPLICATE and pr.match < pr.next - 1:
                pr.stall_elapsed_ticks += 1
                if pr.stall_elapsed_ticks >= timeout:
                    pr.become_probe()
                    self._maybe_send_append(peer, send_if_empty=True)

    def _quorum_recently_active(self) -> bool:
        voters = self._conf.voters
        active = 0
        for voter in voters:
            if voter == self.id:
                active += 1
                continue
            pr = self._prs.get(voter)
            if pr is not None and pr.recent_active:
                active += 1
        for pr in self._prs.values():
            pr.recent_active = False
        return active >= quorum_size(len(voters))

    # == linearizable reads (thesis 6.4) ===================================================

    def _register_read(self, ctx: int) -> None:
        if self._config.read_only is ReadOnlyOption.LEASE_BASED and self._lease_valid():
            self._read_states.append(ReadState(request_ctx=ctx, index=self._log.commit))
            return
        # SAFE: the read waits until a quorum acknowledges a round started after it.
        self._reads.append(_PendingRead(ctx=ctx, index=self._log.commit, seq=self._read_seq + 1))
        self._read_round_pending = True
        self._release_reads()

    def _start_read_round(self) -> None:
        """Begin read round `seq` with a heartbeat to every follower (also the heartbeat)."""
        self._read_round_pending = False
        self._read_seq += 1
        self._seq_ticks[self._read_seq] = self._ticks
        horizon = self._ticks - self._config.election_timeout_ticks_max
        while self._seq_ticks:
            oldest = next(iter(self._seq_ticks))
            if self._seq_ticks[oldest] >= horizon:
                break
            del self._seq_ticks[oldest]
        for peer, pr in sorted(self._prs.items()):
            self._send_heartbeat(peer, pr)
        self._release_reads()

    def _ack_read_seq(self, pr: Progress, seq: int) -> None:
        if seq <= pr.read_seq_acked or seq > self._read_seq:
            return
        pr.read_seq_acked = seq
        sent_tick = self._seq_ticks.get(seq)
        if sent_tick is not None:
            pr.lease_tick = max(pr.lease_tick, sent_tick)
        self._release_reads()

    def _release_reads(self) -> None:
        if not self._reads:
            return
        acked = sorted(
            (
                _ALL_ACKED
                if voter == self.id
                else (pr.read_seq_acked if (pr := self._prs.get(voter)) is not None else 0)
            )
            for voter in self._conf.voters
        )
        acked.reverse()
        confirmed = acked[quorum_size(len(acked)) - 1] if acked else 0
        while self._reads and self._reads[0].seq <= confirmed:
            read = self._reads.popleft()
            self._read_states.append(ReadState(request_ctx=read.ctx, index=read.index))

    def _lease_valid(self) -> bool:
        """Thesis 6.4.1: a quorum acknowledged messages sent within the last lease period.

        Followers refuse to vote for min election timeout after hearing from a leader, so no
        other leader can exist until (send tick of the acknowledged message + that timeout);
        the margin absorbs clock drift. A TimeoutNow voids this (voters bypass the check).
        """
        if self._lease_tainted or not self._config.check_quorum:
            return False
        horizon = self._ticks - self._config.lease_ticks
        ticks = sorted(
            (
                self._ticks
                if voter == self.id
                else (pr.lease_tick if (pr := self._prs.get(voter)) is not None else -1)
            )
            for voter in self._conf.voters
        )
        ticks.reverse()
        return bool(ticks) and ticks[quorum_size(len(ticks)) - 1] > horizon

    # == leadership transfer (thesis 3.10) =================================================

    def _maybe_send_timeout_now(self, peer: NodeId, pr: Progress) -> None:
        if (
            peer == self._lead_transferee
            and not self._timeout_now_sent
            and pr.match == self._log.last_index
        ):
            self._send_timeout_now(peer)

    def _send_timeout_now(self, target: NodeId) -> None:
        self._timeout_now_sent = True
        # A transfer campaign bypasses followers' lease check: no lease reads in this term.
        self._lease_tainted = True
        self._send(TimeoutNow(src=self.id, dst=target, term=self._term))
        self._trace("timeout_now_sent", to=target)

    def _abort_transfer(self, reason: str) -> None:
        if self._lead_transferee != NO_NODE:
            self._trace("transfer_aborted", target=self._lead_transferee, reason=reason)
        self._lead_transferee = NO_NODE
        self._transfer_elapsed = 0
        self._timeout_now_sent = False

    # == membership (thesis 4.1) ===========================================================

    def _check_can_propose(self) -> None:
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if self._lead_transferee != NO_NODE:
            raise ProposalDropped("leadership transfer in progress")
        if self._log.last_index - self._log.commit >= self._config.pending_proposals_max:
            raise ProposalDropped("too many uncommitted entries")

    def _validate_conf_change(self, change: ConfChange) -> None:
        conf = self._conf
        node = change.node_id
        if node <= 0:
            raise ValueError(f"invalid node id {node}")
        if change.op is ConfChangeOp.ADD_LEARNER and node in conf.members():
            raise ValueError(f"node {node} is already a member")
        if change.op is ConfChangeOp.PROMOTE_LEARNER and node not in conf.learners:
            raise ValueError(f"node {node} is not a learner")
        if change.op is ConfChangeOp.REMOVE_NODE:
            if node not in conf.members():
                raise ValueError(f"node {node} is not a member")
            if conf.voters == (node,):
                raise ValueError("cannot remove the last voter")

    def _conf_change_pending(self) -> bool:
        return bool(self._conf_indices) and self._conf_indices[-1] > self._log.commit

    def _rebuild_conf_indices(self) -> None:
        self._conf_indices = [e.index for e in self._log.entries if e.kind is EntryKind.CONF_CHANGE]

    def _on_log_changed(self, first_changed: LogIndex, appended: tuple[Entry, ...]) -> None:
        """A follower's log changed from `first_changed` on; redo the configuration."""
        before = len(self._conf_indices)
        while self._conf_indices and self._conf_indices[-1] >= first_changed:
            self._conf_indices.pop()
        removed = before != len(self._conf_indices)
        added = [e.index for e in appended if e.kind is EntryKind.CONF_CHANGE]
        self._conf_indices.extend(added)
        if removed or added:
            self._refresh_conf(trace=True)

    def _conf_at(self, index: LogIndex) -> ConfState:
        conf = self._log.snapshot.meta.conf
        for conf_index in self._conf_indices:
            if conf_index > index:
                break
            entry = self._log.entry_at(conf_index)
            if entry is None:
                raise InvariantViolation(f"conf change at {conf_index} not in the log")
            try:
                change = ConfChange.decode(entry.data)
            except ValueError:
                continue  # validated on receipt; a bad one from storage is a no-op everywhere
            conf = apply_conf_change(conf, change)
        return conf

    def _refresh_conf(self, *, trace: bool) -> None:
        conf = self._conf_at(self._log.last_index)
        if conf == self._conf:
            return
        self._conf = conf
        if trace:
            self._trace("conf_changed", voters=conf.voters, learners=conf.learners)
        if self._role is Role.LEADER:
            nxt = self._log.last_index + 1
            for peer in conf.members():
                if peer != self.id and peer not in self._prs:
                    self._prs[peer] = self._new_progress(nxt)
            if self._lead_transferee not in (NO_NODE, *conf.voters):
                self._abort_transfer("target left the voters")
        elif self._role is not Role.FOLLOWER and self.id not in conf.voters:
            self._become_follower(self._term, NO_NODE)

    # == plumbing ==========================================================================

    def _hard_state(self) -> HardState:
        return HardState(term=self._term, vote=self._vote, commit=self._log.commit)

    def _send(self, message: RaftMessage) -> None:
        self._msgs.append(Send(to=message.dst, message=message))

    def _trace(self, kind: str, **fields: object) -> None:
        if self._env.trace_enabled:
            self._traces.append(TraceEvent(node=self.id, kind=kind, fields=tuple(fields.items())))

    def _drop(self, message: object, reason: str) -> None:
        tag = getattr(type(message), "TAG", type(message).__name__)
        self._trace("drop", msg=tag, src=getattr(message, "src", "?"), reason=reason)


__all__ = ["RaftNode"]
