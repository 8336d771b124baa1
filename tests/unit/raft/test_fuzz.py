"""A few fixed seeds of the randomized checker (more: `python tests/unit/raft/raftfuzz.py N`)."""

import pytest
from raftfuzz import run_seed


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("nodes", [3, 5])
def test_random_faults_keep_raft_safe_and_live(seed: int, nodes: int) -> None:
    run_seed(seed, nodes=nodes, steps=1200)
