"""Byzantine replicas of the PBFT simulator: a real core underneath, lies on the way out.

Rules:
- A Byzantine replica runs the real `PbftReplica` (so it follows the protocol well enough to
  be dangerous) and holds its own keys; `Liar` rewrites, drops, duplicates and invents what
  the core sends, and may answer what it receives. It never holds another replica's keys:
  "forged" messages claim another sender but are signed or MACed with the liar's own key or
  with junk, exactly what a real attacker can do.
- It never invents client requests: requests are not authenticated yet (client signatures
  are a later slice), so a made-up request would be indistinguishable from a real one.
  Every batch a liar builds holds requests it has seen.
- Behaviours (`BEHAVIOURS`), any subset drawn per seed: `equivocate` (as primary, different
  pre-prepares for one seq to different backups; as a backup, competing pre-prepares of its
  own), `wrong_digest` (prepares, commits, pre-prepares, checkpoints and replies with wrong
  digests or results, properly authenticated), `forge_auth` (copies claiming another replica
  as sender), `replay` (messages of earlier views sent again), `silent` (sends nothing),
  `subset` (talks to a fixed subset only), `lying_view_change` (view-changes that omit its
  certificates or claim a prepare without a valid certificate), `bogus_checkpoint`
  (checkpoints of a wrong state, and far-ahead ones). `twins` (one identity run by two
  processes) is structural and lives in the cluster.
- `exercised` counts, per behaviour, how many times it actually changed what was sent.
- Every choice comes from the liar's own `random.Random`, derived from the run seed.
"""

import hashlib
import random
from dataclasses import replace
from typing import TypeVar

from conclave.consensus.pbft import (
    Checkpoint,
    Commit,
    KeyRing,
    NewView,
    PbftConfig,
    PbftMessage,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    Reply,
    Request,
    ViewChange,
    auth_payload,
    digest_of,
)
from conclave.core.effects import Send
from conclave.core.ids import NodeId

BEHAVIOURS: tuple[str, ...] = (
    "equivocate",
    "wrong_digest",
    "forge_auth",
    "replay",
    "silent",
    "subset",
    "lying_view_change",
    "bogus_checkpoint",
    "twins",
)
REPLAY_BUFFER_MAX = 256
SEEN_REQUESTS_MAX = 64

Signed = TypeVar("Signed", PrePrepare, Prepare, Checkpoint, ViewChange, NewView)


class Liar:
    """The misbehaviour of one Byzantine replica process."""

    def __init__(
        self,
        config: PbftConfig,
        behaviours: tuple[str, ...],
        rng: random.Random,
    ) -> None:
        self.id = config.replica_id
        self.config = config
        self.behaviours = behaviours
        self._ring = KeyRing(config.replica_id, config.keys)
        self._rng = rng
        self._peers = tuple(r for r in config.replica_ids if r != self.id)
        count = rng.randint(1, max(1, len(self._peers) - 1))
        self.subset: tuple[NodeId, ...] = tuple(sorted(rng.sample(self._peers, count)))
        self._old: list[tuple[int, PbftMessage]] = []  # (view, message) seen or sent
        self._requests: list[Request] = []
        self._view = 0
        self.exercised: dict[str, int] = {}

    def has(self, behaviour: str) -> bool:
        return behaviour in self.behaviours

    def _count(self, behaviour: str) -> None:
        self.exercised[behaviour] = self.exercised.get(behaviour, 0) + 1

    # -- signing with its own keys ---------------------------------------------------------

    def _sign(self, message: Signed) -> Signed:
        return replace(message, auth=self._ring.sign(auth_payload(message)))

    def _mac_for(self, message: Commit) -> Commit:
        return replace(message, auth=self._ring.mac(message.dst, auth_payload(message)))

    def _junk_digest(self) -> bytes:
        return hashlib.sha256(self._rng.randbytes(16)).digest()

    # -- what it receives ------------------------------------------------------------------

    def incoming(self, message: PbftMessage, view: int) -> list[Send[PbftMessage]]:
        """Remember what a replay or a competing batch may use; maybe answer at once."""
        self._view = view
        self._remember(message)
        if isinstance(message, Request):
            self._requests.append(message)
            del self._requests[:-SEEN_REQUESTS_MAX]
        if isinstance(message, PrePrepare):
            self._requests.extend(message.batch)
            del self._requests[:-SEEN_REQUESTS_MAX]
            if self.has("equivocate") and message.src != self.id and self._rng.random() < 0.5:
                return self._compete(message)
        return []

    def _remember(self, message: PbftMessage) -> None:
        view = _view_of(message)
        if view is None:
            return
        self._old.append((view, message))
        if len(self._old) > REPLAY_BUFFER_MAX:
            del self._old[: len(self._old) - REPLAY_BUFFER_MAX]

    def _compete(self, pre_prepare: PrePrepare) -> list[Send[PbftMessage]]:
        """A backup pretending to be the primary: its own pre-prepare for the same seq."""
        batch = self._variant(pre_prepare.batch)
        own = PrePrepare(
            src=self.id,
            view=pre_prepare.view,
            seq=pre_prepare.seq,
            digest=digest_of(batch),
            batch=batch,
        )
        signed = self._sign(own)
        self._count("equivocate")
        return [Send(to=peer, message=signed) for peer in self._peers]

    def _variant(self, batch: tuple[Request, ...]) -> tuple[Request, ...]:
        """Another batch made of requests it has seen (never an invented request)."""
        choice = self._rng.randrange(3)
        if choice == 0 and len(batch) > 1:
            return tuple(reversed(batch))
        if choice == 1 and self._requests:
            return (self._rng.choice(self._requests),)
        return () if batch else tuple(self._requests[-1:])

    # -- what it sends ---------------------------------------------------------------------

    def outgoing(self, envelope: Send[PbftMessage], view: int) -> list[Send[PbftMessage]]:
        """What actually leaves instead of `envelope` (possibly nothing, possibly more)."""
        self._view = view
        message, to = envelope.message, envelope.to
        self._remember(message)
        if self.has("silent"):
            self._count("silent")
            return []
        if self.has("subset") and to in self._peers and to not in self.subset:
            self._count("subset")
            return []
        out = [self._rewrite(envelope)]
        rng = self._rng
        if self.has("forge_auth") and to in self._peers and rng.random() < 0.15:
            forged = self._forged(message, to)
            if forged is not None:
                out.append(Send(to=to, message=forged))
                self._count("forge_auth")
        if self.has("replay") and to in self._peers and rng.random() < 0.1:
            older = [m for v, m in self._old if v < view]
            if older:
                out.append(Send(to=to, message=rng.choice(older)))
                self._count("replay")
        if self.has("bogus_checkpoint") and isinstance(message, Checkpoint) and rng.random() < 0.3:
            ahead = message.seq + self.config.checkpoint_interval_seqs * rng.randint(1, 40)
            bogus = Checkpoint(src=self.id, seq=ahead, state_digest=self._junk_digest())
            out.append(Send(to=to, message=self._sign(bogus)))
            self._count("bogus_checkpoint")
        return out

    def _rewrite(self, envelope: Send[PbftMessage]) -> Send[PbftMessage]:
        message, to, rng = envelope.message, envelope.to, self._rng
        if isinstance(message, PrePrepare) and self._equivocates_to(message, to):
            batch = self._variant(message.batch)
            twin = PrePrepare(
                src=self.id,
                view=message.view,
                seq=message.seq,
                digest=digest_of(batch),
                batch=batch,
            )
            self._count("equivocate")
            return Send(to=to, message=self._sign(twin))
        if self.has("wrong_digest") and rng.random() < 0.3:
            wrong = self._wrong_digest(message)
            if wrong is not None:
                self._count("wrong_digest")
                return Send(to=to, message=wrong)
        if isinstance(message, ViewChange) and self.has("lying_view_change"):
            self._count("lying_view_change")
            return Send(to=to, message=self._lying_view_change(message))
        if isinstance(message, Checkpoint) and self.has("bogus_checkpoint") and rng.random() < 0.5:
            self._count("bogus_checkpoint")
            bogus = replace(message, state_digest=self._junk_digest())
            return Send(to=to, message=self._sign(bogus))
        return envelope

    def _equivocates_to(self, message: PrePrepare, to: NodeId) -> bool:
        """As primary: every other backup (by seq parity) gets another batch."""
        mine = self.has("equivocate") and message.src == self.id
        return mine and to in self._peers and (to + message.seq) % 2 == 1

    def _wrong_digest(self, message: PbftMessage) -> PbftMessage | None:
        junk = self._junk_digest()
        if isinstance(message, Prepare | PrePrepare):
            wrong = replace(message, digest=junk)
            return replace(wrong, auth=self._ring.sign(auth_payload(wrong)))
        if isinstance(message, Commit):
            return self._mac_for(replace(message, digest=junk))
        if isinstance(message, Checkpoint):
            return self._sign(replace(message, state_digest=junk))
        if isinstance(message, Reply):
            return replace(message, result=message.result + b" ")
        return None

    def _forged(self, message: PbftMessage, to: NodeId) -> PbftMessage | None:
        """A copy claiming another replica as its sender (own key or junk as authentication)."""
        others = [r for r in self.config.replica_ids if r not in (self.id, to)]
        if not others:
            return None
        victim = self._rng.choice(others)
        junk = self._rng.random() < 0.5
        if isinstance(message, Commit):
            forged_commit = replace(message, src=victim)
            if junk:
                return replace(forged_commit, auth=self._rng.randbytes(32))
            return self._mac_for(forged_commit)
        if isinstance(message, Prepare | PrePrepare | Checkpoint | ViewChange | NewView):
            forged = replace(message, src=victim)
            if junk:
                return replace(forged, auth=self._rng.randbytes(64))
            return replace(forged, auth=self._ring.sign(auth_payload(forged)))
        return None

    def _lying_view_change(self, vc: ViewChange) -> ViewChange:
        """Omit every certificate, or claim a prepare that has no valid certificate."""
        if self._rng.random() < 0.5 or not self._requests:
            return self._sign(replace(vc, prepared=()))
        seq = vc.stable_seq + 1
        batch = (self._rng.choice(self._requests),)
        old_view = max(0, vc.new_view - 1)
        fake = self._sign(
            PrePrepare(src=self.id, view=old_view, seq=seq, digest=digest_of(batch), batch=batch)
        )
        backups = [r for r in self.config.replica_ids if r != self.config.primary_of(old_view)]
        prepares = tuple(
            self._sign(Prepare(src=self.id, view=old_view, seq=seq, digest=fake.digest))
            if r == self.id
            else replace(
                self._sign(Prepare(src=self.id, view=old_view, seq=seq, digest=fake.digest)),
                src=r,
            )
            for r in backups[: self.config.prepared_quorum]
        )
        certificate = PreparedCertificate(pre_prepare=fake, prepares=prepares)
        others = tuple(c for c in vc.prepared if c.pre_prepare.seq != seq)
        prepared = tuple(sorted((certificate, *others), key=lambda c: c.pre_prepare.seq))
        return self._sign(replace(vc, prepared=prepared))


def _view_of(message: PbftMessage) -> int | None:
    if isinstance(message, PrePrepare | Prepare | Commit):
        return message.view
    if isinstance(message, ViewChange):
        return message.new_view
    if isinstance(message, NewView):
        return message.view
    return None


__all__ = ["BEHAVIOURS", "Liar"]
