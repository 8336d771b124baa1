"""`conclave.sim.pbft`: the deterministic PBFT simulator with Byzantine replicas.

    from conclave.sim.pbft import PbftSimSettings, run_pbft_seed
    result = run_pbft_seed(PbftSimSettings(seed=7, f=1))
    assert result.ok, result.violation

Rules: as for `conclave.sim` (DESIGN.md section 4): one seed fixes every fault and every
choice; safety is checked from outside after every input, linearizability of the KV history
at the end, liveness after the heal. See `settings` (fault budget), `byzantine` (the liars)
and `cluster` (the world and its checks).
"""

from conclave.sim.pbft.byzantine import BEHAVIOURS, Liar
from conclave.sim.pbft.cluster import PbftCluster
from conclave.sim.pbft.runner import (
    PbftSeedResult,
    PbftSweepSummary,
    pbft_failure_lines,
    pbft_seed_line,
    run_pbft_seed,
    run_pbft_sweep,
)
from conclave.sim.pbft.settings import PbftSimSettings

__all__ = [
    "BEHAVIOURS",
    "Liar",
    "PbftCluster",
    "PbftSeedResult",
    "PbftSimSettings",
    "PbftSweepSummary",
    "pbft_failure_lines",
    "pbft_seed_line",
    "run_pbft_seed",
    "run_pbft_sweep",
]
