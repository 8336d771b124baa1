"""Fixed seed ranges of the full simulation (faults, heal, liveness, linearizability) pass.

These are the CI-sized sweeps; larger ones run outside CI with `conclave sim raft --seeds N`.
A seed that ever fails here replays exactly: `conclave sim raft --seed S --nodes N --trace`.
"""

import pytest

from conclave.consensus.raft import RaftConfig, ReadOnlyOption
from conclave.sim import SimSettings, run_seed
from conclave.sim.report import failure_lines

RANGES = {3: range(100), 5: range(1_000, 1_100), 7: range(2_000, 2_050)}


@pytest.mark.slow
@pytest.mark.parametrize("nodes", sorted(RANGES))
def test_seed_range_passes(nodes: int) -> None:
    failures: list[str] = []
    events = 0
    for seed in RANGES[nodes]:
        result = run_seed(SimSettings(seed=seed, nodes=nodes, ops=200))
        events += result.events
        if not result.ok:
            failures.extend(failure_lines(result))
    assert not failures, "\n".join(failures)
    assert events > 1_000 * len(RANGES[nodes])


def test_membership_changes_happen_and_the_cluster_stays_safe() -> None:
    # Seeds whose plan weights membership changes; the spare node joins and is promoted.
    for seed in range(20):
        result = run_seed(SimSettings(seed=seed, nodes=3, ops=100))
        assert result.ok, result.violation
        if result.faults["membership"] >= 3:
            return
    pytest.fail("no seed in range exercised membership changes")


def test_no_fault_runs_complete_every_operation() -> None:
    result = run_seed(SimSettings(seed=3, nodes=5, ops=200, faults=False))
    assert result.ok, result.violation
    assert result.status_count("ok") == result.ops == 201


def _lease_config(node_id: int) -> RaftConfig:
    return RaftConfig(node_id=node_id, read_only=ReadOnlyOption.LEASE_BASED)


def test_lease_based_reads_pass_a_seed_range() -> None:
    # Slow-clock faults are left out automatically: they break the lease's drift bound.
    for seed in range(10):
        result = run_seed(SimSettings(seed=seed, nodes=3, ops=100, raft_config=_lease_config))
        assert result.ok, result.violation
        assert result.faults["slow_clock"] == 0
