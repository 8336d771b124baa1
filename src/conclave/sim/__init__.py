"""`conclave.sim`: the deterministic simulator (DESIGN.md section 4).

One thread, one seeded event loop, a simulated network, disk and clock; faults drawn from the
seed; safety checked after every event, liveness after healing, linearizability of the client
history at the end. The same seed replays the same run exactly.

    from conclave.sim import SimSettings, run_seed
    result = run_seed(SimSettings(seed=7, nodes=5, ops=200))
    assert result.ok, result.violation
"""

from conclave.sim.history import History, Operation
from conclave.sim.linearizability import LinearizabilityResult, check_linearizability
from conclave.sim.runner import SeedResult, run_seed
from conclave.sim.settings import SimSettings
from conclave.sim.sweep import SweepSummary, run_sweep, seed_settings

__all__ = [
    "SimSettings",
    "SeedResult",
    "run_seed",
    "SweepSummary",
    "run_sweep",
    "seed_settings",
    "History",
    "Operation",
    "LinearizabilityResult",
    "check_linearizability",
]
