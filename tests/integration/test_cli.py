"""Real processes through the `conclave` command: the demo, and the operator commands."""

import json
import subprocess
import sys

import pytest

from .conftest import ClusterFactory

pytestmark = pytest.mark.slow


def _conclave(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "conclave", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cluster_demo_checks_its_story_and_stops_everything() -> None:
    done = _conclave("cluster", "demo", "--keys", "30")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "took over" in done.stdout
    assert "30/30 read back" in done.stdout
    assert "every process stopped cleanly" in done.stdout


def test_kv_status_and_leader_commands(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(3)
    cluster.start()
    endpoints = ",".join(cluster.endpoints)
    put = _conclave("kv", "put", "greeting", "hello", "--endpoints", endpoints)
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["revision"] == 1
    got = _conclave("kv", "get", "greeting", "--endpoints", endpoints)
    assert json.loads(got.stdout)["value"] == "hello"
    failed_cas = _conclave(
        "kv", "put", "greeting", "x", "--prev-value", "nope", "--endpoints", endpoints
    )
    assert failed_cas.returncode == 1
    assert json.loads(failed_cas.stdout)["succeeded"] is False
    missing = _conclave("kv", "get", "absent", "--endpoints", endpoints)
    assert missing.returncode == 1
    assert "key_not_found" in missing.stderr
    status = _conclave("status", "--endpoints", endpoints)
    assert status.returncode == 0
    assert "leader" in status.stdout
    old = cluster.leader()
    target = next(i for i in cluster.running() if i != old)
    moved = _conclave("leader", "transfer", "--to", str(target), "--endpoints", endpoints)
    assert moved.returncode == 0, moved.stderr
    assert cluster.leader() == target


def test_serve_refuses_a_bad_configuration_with_a_clear_message() -> None:
    done = _conclave("serve", "--id", "7", "--member", "1=nowhere", "--tick-interval-ms", "0")
    assert done.returncode == 2
    assert "member" in done.stderr
