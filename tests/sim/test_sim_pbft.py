"""`conclave sim pbft`: correct replicas pass, broken ones (planted bugs) are caught.

Each planted bug is a test-only broken variant of `PbftReplica` with one classic mistake (or,
for the new-view computation shared by primary and backups, a monkeypatched `new_view_plan`).
Seeds are tried in order from 0; the bug must be caught within `SEEDS_MAX` seeds, and the
seed that caught it must pass with the correct replica, so the verdict is the bug's doing.
"""

from dataclasses import replace

import pytest
from typer.testing import CliRunner

import conclave.consensus.pbft.replica as replica_module
import conclave.consensus.pbft.viewchange as viewchange_module
from conclave.cli.sim import app
from conclave.consensus.pbft import (
    Commit,
    PbftMessage,
    PbftReplica,
    PreparedCertificate,
    PrePrepare,
    auth_payload,
    digest_of,
)
from conclave.consensus.pbft.messages import Seq
from conclave.consensus.pbft.replica import _Slot
from conclave.consensus.pbft.viewchange import NULL_BATCH, PlanItem
from conclave.sim.pbft import PbftSimSettings, pbft_seed_line, run_pbft_seed

SEEDS_MAX = 200
PASSING_SEEDS = range(12)

# -- planted bugs ---------------------------------------------------------------------------


class CommitsOn2f(PbftReplica):
    """Commits with 2f matching commits instead of 2f + 1."""

    def _maybe_committed(self, slot: _Slot) -> None:
        if slot.committed or not slot.prepared:
            return
        matching = sum(1 for c in slot.commits.values() if c.digest == slot.digest)
        if matching < self._config.commit_quorum - 1:
            return
        slot.committed = True
        self._mark_dirty(slot.seq)
        self._execute_committed()


class AcceptsPrePrepareFromBackup(PbftReplica):
    """Accepts a pre-prepare from any replica, not only the primary of the view."""

    def _dispatch_pre_prepare(self, message: PbftMessage) -> None:
        assert isinstance(message, PrePrepare)
        if not self._authentic(message) or not self._in_current_view(message):
            return
        slot = self._slots.get(message.seq)
        if slot is not None and slot.pre_prepare is not None:
            return
        self._accept_pre_prepare(message)


class ExecutesOutOfOrder(PbftReplica):
    """Executes any committed batch at once, without waiting for the seqs below it."""

    def _execute_committed(self) -> None:
        for seq in sorted(self._slots):
            slot = self._slots[seq]
            if self._pending_checkpoint is not None:
                return
            if seq > self._last_executed and slot.committed and slot.pre_prepare is not None:
                self._execute(seq, slot.pre_prepare)


class AcceptsMismatchedPrepares(PbftReplica):
    """Counts prepares toward `prepared` whatever digest they carry."""

    def _maybe_prepared(self, slot: _Slot) -> None:
        pre_prepare = slot.pre_prepare
        if slot.prepared or pre_prepare is None:
            return
        prepares = [p for _, p in sorted(slot.prepares.items())]
        if len(prepares) < self._config.prepared_quorum:
            return
        slot.prepared = True
        certificate = PreparedCertificate(
            pre_prepare=pre_prepare, prepares=tuple(prepares[: self._config.prepared_quorum])
        )
        self._certificates[slot.seq] = certificate
        self._mark_dirty(slot.seq)
        own = Commit(
            src=self.id, dst=self.id, view=self._view, seq=slot.seq, digest=pre_prepare.digest
        )
        slot.commits[self.id] = own
        for peer in self._peers:
            commit = replace(own, dst=peer)
            self._send(peer, replace(commit, auth=self._ring.mac(peer, auth_payload(commit))))
        self._maybe_committed(slot)


_real_plan = viewchange_module.new_view_plan


def _plan_dropping_a_certificate(
    view_changes: tuple[object, ...],
) -> tuple[Seq, tuple[PlanItem, ...]]:
    """The new-view set O with the lowest prepared request replaced by a null request."""
    min_seq, plan = _real_plan(view_changes)  # type: ignore[arg-type]
    items = list(plan)
    for i, (seq, _, batch) in enumerate(items):
        if batch:
            items[i] = (seq, digest_of(NULL_BATCH), NULL_BATCH)
            break
    return min_seq, tuple(items)


@pytest.fixture
def new_view_drops_a_certificate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(viewchange_module, "new_view_plan", _plan_dropping_a_certificate)
    monkeypatch.setattr(replica_module, "new_view_plan", _plan_dropping_a_certificate)


# A bug caught by liveness spends the whole bound spinning; a shorter bound keeps the search
# fast. The correct replica must pass the catching seed under the same settings.
LIVENESS_BOUND_US = 5_000_000


def _first_caught(replica_class: type[PbftReplica]) -> int:
    for seed in range(SEEDS_MAX):
        settings = PbftSimSettings(
            seed=seed, f=1, replica_class=replica_class, liveness_bound_us=LIVENESS_BOUND_US
        )
        if not run_pbft_seed(settings).ok:
            return seed
    raise AssertionError(f"{replica_class.__name__} not caught within {SEEDS_MAX} seeds")


def _passes_with_the_correct_replica(seed: int) -> None:
    result = run_pbft_seed(PbftSimSettings(seed=seed, f=1, liveness_bound_us=LIVENESS_BOUND_US))
    assert result.ok, result.violation


# -- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", PASSING_SEEDS)
def test_correct_replicas_pass_under_byzantine_and_network_faults(seed: int) -> None:
    result = run_pbft_seed(PbftSimSettings(seed=seed, f=1))
    assert result.ok, (result.violation, result.details)
    assert result.status_count("unknown") == 0  # every operation completed after the heal


def test_the_same_seed_gives_the_same_line() -> None:
    first = pbft_seed_line(run_pbft_seed(PbftSimSettings(seed=3, f=1)))
    again = pbft_seed_line(run_pbft_seed(PbftSimSettings(seed=3, f=1)))
    assert first == again


@pytest.mark.parametrize(
    "replica_class",
    [CommitsOn2f, AcceptsPrePrepareFromBackup, ExecutesOutOfOrder, AcceptsMismatchedPrepares],
)
def test_a_planted_bug_is_caught(replica_class: type[PbftReplica]) -> None:
    seed = _first_caught(replica_class)
    _passes_with_the_correct_replica(seed)


def test_a_new_view_that_drops_a_prepared_certificate_is_caught(
    new_view_drops_a_certificate: None,
) -> None:
    seed = _first_caught(PbftReplica)
    with pytest.MonkeyPatch.context() as restore:
        restore.setattr(viewchange_module, "new_view_plan", _real_plan)
        restore.setattr(replica_module, "new_view_plan", _real_plan)
        _passes_with_the_correct_replica(seed)


def test_the_cli_prints_one_line_per_seed_and_a_summary_ending_with_violations() -> None:
    result = CliRunner().invoke(app, ["pbft", "--seeds", "2", "--f", "1"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["seed=0", "seed=1"]
    assert lines[-1].startswith("seeds=2 ok=2 ")
    assert lines[-1].endswith("violations=0")
    assert "exercised=" in lines[-1]
