"""`conclave sim decisions`: the decision layer under the simulator's faults, with teeth.

A fixed set of seeds passes with every decision checker on (and the workload really does
decide, execute, expire, roll back and refuse); a seed replays identically, whatever the
interpreter's hash seed; deliberately broken decision machines (tests/sim/planted_bugs.py)
are caught within a bounded number of seeds, by the expected checker, and the seed that
caught each passes with the correct machine. Larger sweeps run outside CI:
`conclave sim decisions --seeds 500 --nodes 3`.
"""

import functools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

import planted_bugs as bugs

import conclave.cli.sim as sim_cli
from conclave.cli.main import app
from conclave.decision.machine import DecisionMachine
from conclave.sim import SeedResult, SimSettings, run_seed
from conclave.sim.report import failure_lines, seed_line

SUMMARY = re.compile(r"^seeds=(\d+) ok=(\d+) violations=(\d+) events=(\d+) sim_events_per_s=(\d+)$")
SEEDS = {3: range(20), 5: range(500, 504)}


def _settings(seed: int, nodes: int = 3, **kwargs: object) -> SimSettings:
    return SimSettings(seed=seed, nodes=nodes, ops=150, workload="decisions", **kwargs)  # type: ignore[arg-type]


def test_fixed_seeds_pass_and_exercise_the_decision_layer() -> None:
    failures: list[str] = []
    totals: dict[str, int] = {}
    for nodes, seeds in sorted(SEEDS.items()):
        for seed in seeds:
            result = run_seed(_settings(seed, nodes))
            if not result.ok:
                failures.extend(failure_lines(result))
            for name, count in result.decisions.items():
                totals[name] = totals.get(name, 0) + count
    assert not failures, "\n".join(failures)
    for name in ("executed", "rejected", "expired", "rolled_back", "conflicts", "refusals"):
        assert totals.get(name, 0) > 0, (name, totals)
    assert totals["expires"] > 0  # the leader's expiry timer proposed Expire commands


def test_same_seed_same_line() -> None:
    first = run_seed(_settings(7))
    second = run_seed(_settings(7))
    assert first.ok, first.violation
    assert seed_line(first) == seed_line(second)
    assert first.decisions == second.decisions
    assert seed_line(first) != seed_line(run_seed(_settings(8)))


def test_runs_do_not_depend_on_the_interpreter_hash_seed() -> None:
    code = (
        "from conclave.sim import SimSettings, run_seed\n"
        "from conclave.sim.report import seed_line\n"
        "r = run_seed(SimSettings(seed=5, nodes=3, ops=100, workload='decisions'))\n"
        "print(seed_line(r), sorted(r.decisions.items()))\n"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(  # noqa: S603 (our own interpreter and code)
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_the_kv_workload_is_the_default_and_untouched() -> None:
    assert SimSettings().workload == "kv"
    result = run_seed(SimSettings(seed=3, nodes=3, ops=30))
    assert result.ok, result.violation
    assert (result.workload, result.decisions) == ("kv", {})
    assert "proposals=" not in seed_line(result)


@dataclass(frozen=True)
class PlantedBug:
    machine_class: type[DecisionMachine]
    seeds_max: int
    caught_by: frozenset[str]

    @property
    def name(self) -> str:
        return self.machine_class.__name__


PLANTED = [
    # The tally counts abstentions as approvals: re-tallying the recorded votes disagrees.
    PlantedBug(bugs.AbstainCountsAsApprove, 10, frozenset({"decision-tally"})),
    # Losers of a conflict are not rejected: both sides execute (the machine's own check).
    PlantedBug(bugs.ExecutesBothSides, 10, frozenset({"state-machine-invariant"})),
    # The same with the machine's self-check broken: the external conflict checker.
    PlantedBug(bugs.ExecutesBothSidesUnchecked, 10, frozenset({"decision-conflict"})),
    # Expiry in dict insertion order: replicas restored from a snapshot diverge.
    PlantedBug(bugs.ExpiresInInsertionOrder, 20, frozenset({"decision-agreement"})),
]


def _first_catch(bug: PlantedBug) -> SeedResult | None:
    for seed in range(bug.seeds_max):
        result = run_seed(_settings(seed, decision_machine_class=bug.machine_class))
        if not result.ok:
            return result
    return None


@pytest.mark.parametrize("bug", PLANTED, ids=lambda b: b.name)
def test_planted_decision_bug_is_caught_within_bounded_seeds(bug: PlantedBug) -> None:
    caught = _first_catch(bug)
    assert caught is not None, f"{bug.name} not caught in {bug.seeds_max} seeds"
    assert caught.invariant in bug.caught_by, caught.violation
    assert caught.trace_tail
    lines = failure_lines(caught)
    assert lines[-1].startswith(f"replay: conclave sim decisions --seed {caught.seed} --nodes 3")
    correct = run_seed(_settings(caught.seed))
    assert correct.ok, f"the correct machine fails seed {caught.seed} too: {correct.violation}"


def test_cli_prints_one_line_per_seed_and_a_summary() -> None:
    result = CliRunner().invoke(
        app, ["sim", "decisions", "--seeds", "2", "--seed-start", "30", "--nodes", "3"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["seed=30", "seed=31"]
    assert all(" ok " in line and " proposals=" in line for line in lines[:2])
    summary = SUMMARY.match(lines[-1])
    assert summary is not None, lines[-1]
    assert summary.group(1, 2, 3) == ("2", "2", "0")
    assert len(lines) == 3


def test_cli_violation_exits_1_and_prints_the_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sim_cli,
        "SimSettings",
        functools.partial(SimSettings, decision_machine_class=bugs.AbstainCountsAsApprove),
    )
    result = CliRunner().invoke(app, ["sim", "decisions", "--seeds", "1", "--seed-start", "0"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("seed=0 VIOLATION ")
    assert any(line.startswith("seed=0 violated decision-tally") for line in lines)
    assert any(line.startswith("replay: conclave sim decisions --seed 0 ") for line in lines)
    summary = SUMMARY.match(lines[-1])
    assert summary is not None
    assert summary.group(1, 2, 3) == ("1", "0", "1")
