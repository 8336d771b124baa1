"""The same seed gives the identical run; different seeds give different runs."""

import os
import subprocess
import sys

from conclave.sim import SimSettings, run_seed


def test_same_seed_same_run() -> None:
    settings = SimSettings(seed=11, nodes=5, ops=80)
    first = run_seed(settings)
    second = run_seed(settings)
    assert first.ok, first.violation
    assert first.events == second.events
    assert first.sim_time_us == second.sim_time_us
    assert first.history == second.history
    assert first.faults == second.faults
    assert first.messages == second.messages


def test_tracing_does_not_change_the_run() -> None:
    settings = SimSettings(seed=12, nodes=3, ops=40)
    lines: list[str] = []
    plain = run_seed(settings)
    traced = run_seed(SimSettings(seed=12, nodes=3, ops=40, trace=True, trace_sink=lines.append))
    assert (plain.events, plain.history) == (traced.events, traced.history)
    assert len(lines) > 100
    assert len(traced.trace_tail) == 50
    assert traced.trace_tail == tuple(lines[-50:])


def test_different_seeds_differ() -> None:
    a = run_seed(SimSettings(seed=1, nodes=3, ops=40))
    b = run_seed(SimSettings(seed=2, nodes=3, ops=40))
    assert (a.events, a.history) != (b.events, b.history)


def test_runs_do_not_depend_on_the_interpreter_hash_seed() -> None:
    """Set iteration order of strings changes with PYTHONHASHSEED; a run must not."""
    code = (
        "from conclave.sim import SimSettings, run_seed\n"
        "from conclave.sim.history import operations_to_json_lines\n"
        "r = run_seed(SimSettings(seed=21, nodes=5, ops=60))\n"
        "print(r.ok, r.events, r.sim_time_us)\n"
        "print(operations_to_json_lines(r.history))\n"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(  # noqa: S603 (our own interpreter and code)
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
