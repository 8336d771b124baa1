"""`conclave demo` tells its story and asserts it; `Scenario` drives the simulator by hand."""

import functools
import re

import pytest
from typer.testing import CliRunner

import conclave.cli.demo as demo_cli
from conclave.cli.main import app
from conclave.consensus.raft import RaftConfig
from conclave.core.ids import NodeId
from conclave.sim.scenario import Scenario, parse_happening

WINS = re.compile(r"n(\d) wins term (\d+) with votes from ([n\d, ]+)")


@pytest.fixture(scope="module")
def output() -> str:
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def text(output: str) -> str:
    """The output with its line wrapping undone."""
    return " ".join(output.split())


def test_demo_tells_a_leader_change_to_a_higher_term(text: str) -> None:
    wins = [(int(n), int(term), votes.count("n")) for n, term, votes in WINS.findall(text)]
    assert len(wins) == 2, text
    (first, first_term, first_votes), (second, second_term, second_votes) = wins
    assert first != second
    assert second_term > first_term
    assert min(first_votes, second_votes) >= 3  # a majority of 5
    assert f"n{first}: no majority heard for an election timeout; steps down" in text


def test_demo_shows_the_unknown_write_and_the_repaired_log(text: str) -> None:
    assert "client 2 times out: outcome unknown" in text
    assert "log, before and after the repair" in text
    assert re.search(r"1: put color=green \(uncommitted\) 2: no-op", text), text
    assert "drops it and what follows" in text
    assert re.search(r"log equals n\d's", text)


def test_demo_reads_through_read_index_and_checks_linearizability(text: str) -> None:
    assert re.search(r"read index \d+ \(its commit index\)", text)
    assert "answers color=yellow" in text
    assert "verdict: linearizable (7 operations: 6 ok, 1 unknown; 2 keys)" in text
    assert "identical state (color=yellow, size=small)" in text
    assert text.endswith("every claim above held (seed 1).")


def test_demo_is_plain_text_when_piped_and_about_a_hundred_lines(output: str) -> None:
    assert "\x1b[" not in output
    assert 60 <= len(output.splitlines()) <= 120


def test_demo_is_deterministic(output: str) -> None:
    again = CliRunner().invoke(app, ["demo", "--seed", "1"])
    assert again.output == output


def test_demo_fails_when_its_story_does_not_happen(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without check-quorum the isolated leader never steps down: the story must not pretend.
    def no_check_quorum(node_id: NodeId) -> RaftConfig:
        return RaftConfig(node_id=node_id, check_quorum=False)

    monkeypatch.setattr(
        demo_cli, "Scenario", functools.partial(Scenario, raft_config=no_check_quorum)
    )
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert "demo failed (seed 1): a new leader was elected and the old one stepped down" in flat


def test_scenario_recovers_from_a_leader_crash() -> None:
    sim = Scenario(seed=3, nodes=3)
    sim.start()
    assert sim.run_until(lambda: sim.leader_ready() is not None, within_us=2_000_000)
    leader = sim.leader()
    assert leader is not None
    first = sim.put("k", "a", via=leader)
    assert sim.run_until(lambda: first.done, within_us=1_000_000)
    sim.crash(leader)
    other = next(n for n in sim.node_ids if n != leader)
    second = sim.put("k", "b", via=other)  # follows the leader hint once there is a leader
    assert sim.run_until(lambda: second.done, within_us=2_000_000)
    assert (first.status, second.status) == ("ok", "ok")
    assert second.answered_by != leader
    sim.restart(leader)
    assert sim.run_until(lambda: sim.converged() is None, within_us=2_000_000)
    assert sim.check_history().ok
    assert sim.now_us < 2_000_000


def test_run_for_advances_time_exactly_and_the_same_seed_replays() -> None:
    def run() -> tuple[int, int, tuple[str, ...]]:
        sim = Scenario(seed=9)
        sim.start()
        sim.run_for(300_000)
        return (
            sim.now_us,
            sim.events,
            tuple(f"{h.at_us} n{h.node} {h.kind}" for h in sim.happened()),
        )

    first = run()
    assert first[0] == 300_000
    assert first == run()


def test_parse_happening_keeps_values_with_spaces() -> None:
    happening = parse_happening(5, 2, "conf_changed voters=(1, 2, 3) learners=()")
    assert happening.kind == "conf_changed"
    assert happening.get("voters") == "(1, 2, 3)"
    assert happening.get("learners") == "()"
    assert parse_happening(0, 1, "commit index=7").number("index") == 7
