"""`conclave sim raft`: one line per seed (seed first), one summary line last, exit code."""

import functools
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import conclave.cli.sim as sim_cli
from conclave.cli.main import app
from conclave.consensus.raft import RaftNode
from conclave.sim.settings import SimSettings

SUMMARY = re.compile(r"^seeds=(\d+) ok=(\d+) violations=(\d+) events=(\d+) sim_events_per_s=(\d+)$")


class CommitsAlone(RaftNode):
    """A planted bug: the leader commits without a quorum."""

    def _maybe_commit(self) -> bool:
        log = self._log
        if log.last_index <= log.commit or log.term_at(log.last_index) != self._term:
            return False
        log.commit_to(log.last_index)
        self._after_leader_commit()
        return True


def test_sweep_prints_one_line_per_seed_and_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "histories"
    result = CliRunner().invoke(
        app,
        [
            "sim",
            "raft",
            "--seeds",
            "3",
            "--seed-start",
            "40",
            "--nodes",
            "3",
            "--ops",
            "30",
            "--export-history",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["seed=40", "seed=41", "seed=42"]
    assert all(" ok " in line for line in lines[:3])
    summary = SUMMARY.match(lines[-1])
    assert summary is not None, lines[-1]
    assert summary.group(1, 2, 3) == ("3", "3", "0")
    assert int(summary.group(4)) > 0
    assert int(summary.group(5)) > 0
    assert len(lines) == 4
    for seed in (40, 41, 42):
        exported = (out / f"seed-{seed}.jsonl").read_text().splitlines()
        assert len(exported) == 31  # the workload plus the liveness phase's fresh write
        assert set(json.loads(exported[0])) == {
            "client",
            "op",
            "key",
            "value",
            "expected",
            "call",
            "return",
            "status",
            "output",
        }


def test_single_seed_trace_prints_the_seed_first_then_the_event_log() -> None:
    result = CliRunner().invoke(
        app, ["sim", "raft", "--seed", "7", "--nodes", "3", "--ops", "10", "--trace"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("seed=7 ")
    assert any("became_leader" in line for line in lines)
    assert any("<- n" in line for line in lines)  # message deliveries
    assert lines[-2].startswith("seed=7 ok ")
    assert SUMMARY.match(lines[-1])


def test_a_violation_fails_the_command_and_explains_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sim_cli, "SimSettings", functools.partial(SimSettings, core_class=CommitsAlone)
    )
    result = CliRunner().invoke(app, ["sim", "raft", "--seeds", "1", "--seed-start", "0"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("seed=0 VIOLATION ")
    assert any(line.startswith("seed=0 violated state-machine-safety") for line in lines)
    assert any("last" in line and "events:" in line for line in lines)
    summary = SUMMARY.match(lines[-1])
    assert summary is not None
    assert summary.group(1, 2, 3) == ("1", "0", "1")


def test_bad_node_count_is_refused() -> None:
    result = CliRunner().invoke(app, ["sim", "raft", "--nodes", "4", "--seeds", "1"])
    assert result.exit_code != 0
