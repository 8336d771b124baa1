"""Run every interaction script under testdata/raft (rewrite with CONCLAVE_REWRITE=1)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from datadriven import run_script
from raft_harness import RaftInteraction

SCRIPTS = sorted((Path(__file__).parent / "testdata" / "raft").glob("*.txt"))


def test_scripts_exist() -> None:
    assert SCRIPTS, "no interaction scripts found"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_raft_interaction(script: Path) -> None:
    harness = RaftInteraction()
    run_script(script, harness.execute)
