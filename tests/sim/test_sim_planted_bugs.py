"""The simulator catches deliberately broken Raft nodes (planted bugs) within bounded seeds.

Each planted bug (tests/sim/planted_bugs.py) is a subclass of `RaftNode` with one classic
mistake, run through `SimSettings.core_class`. For each, seeds are tried in order from 0; the
bug must be caught (a safety or liveness verdict, of the expected kind) within `seeds_max`
seeds, and the seed that caught it must pass with the correct node, so the verdict is the
bug's doing. If a change to the simulator makes one of these fail, it made the simulator
blind to a class of bugs.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import planted_bugs as bugs

from conclave.consensus.raft import RaftNode
from conclave.sim import SeedResult, SimSettings, run_seed


@dataclass(frozen=True)
class PlantedBug:
    core_class: type[RaftNode]
    nodes: int
    seeds_max: int
    caught_by: frozenset[str]

    @property
    def name(self) -> str:
        return self.core_class.__name__


SAFETY = frozenset(
    {"election-safety", "log-matching", "leader-completeness", "state-machine-safety"}
)

# The five bugs of the foundation issue, item 7, then a few more.
PLANTED = [
    # (a) Figure 8: an older term's entry committed by counting replicas.
    PlantedBug(bugs.CommitsPreviousTermByCounting, 3, 40, SAFETY | {"linearizability"}),
    # (b) a vote answered before it is durable (caught at the send, or as two leaders).
    PlantedBug(
        bugs.RepliesToVoteBeforePersisting, 5, 20, frozenset({"persist-before-send"}) | SAFETY
    ),
    # (c) a vote granted without the up-to-date log check.
    PlantedBug(bugs.GrantsVoteWithoutLogCheck, 5, 60, SAFETY | {"linearizability"}),
    # (d) a read served by a leader without ReadIndex or a lease.
    PlantedBug(bugs.ReadsWithoutReadIndex, 5, 150, frozenset({"linearizability"})),
    # (e) a follower that accepts entries without the consistency check.
    PlantedBug(bugs.AcceptsWithoutConsistencyCheck, 3, 80, SAFETY | {"linearizability"}),
    # More: two votes in one term, commit without a quorum, a starved follower (liveness).
    PlantedBug(bugs.VotesTwice, 5, 60, SAFETY | {"core-invariant"}),
    PlantedBug(bugs.CommitsAlone, 5, 40, SAFETY | {"linearizability"}),
    PlantedBug(bugs.StarvesOneFollower, 3, 10, frozenset({"liveness"})),
]


def _first_catch(bug: PlantedBug) -> SeedResult | None:
    for seed in range(bug.seeds_max):
        result = run_seed(SimSettings(seed=seed, nodes=bug.nodes, core_class=bug.core_class))
        if not result.ok:
            return result
    return None


@pytest.mark.parametrize("bug", PLANTED, ids=lambda b: b.name)
def test_planted_bug_is_caught_within_bounded_seeds(bug: PlantedBug) -> None:
    caught = _first_catch(bug)
    assert caught is not None, f"{bug.name} not caught in {bug.seeds_max} seeds"
    assert caught.invariant in bug.caught_by, caught.violation
    # The report replays the seed with tracing, to show how it happened.
    assert caught.trace_tail
    if caught.invariant == "linearizability":
        assert caught.key is not None
    correct = run_seed(SimSettings(seed=caught.seed, nodes=bug.nodes))
    assert correct.ok, f"the correct node fails seed {caught.seed} too: {correct.violation}"
