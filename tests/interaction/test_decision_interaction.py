"""Run every interaction script under testdata/decision (rewrite with CONCLAVE_REWRITE=1)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from datadriven import run_script
from decision_harness import DecisionInteraction

SCRIPTS = sorted((Path(__file__).parent / "testdata" / "decision").glob("*.txt"))


def test_decision_scripts_exist() -> None:
    assert SCRIPTS, "no decision interaction scripts found"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_decision_interaction(script: Path) -> None:
    harness = DecisionInteraction()
    run_script(script, harness.execute)
