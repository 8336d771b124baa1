"""The alert rules under a fake clock: each fires on its condition and resolves when it ends;
the manager queues webhook bodies and delivers them in order (no sleeping for conditions)."""

import asyncio
import logging
from typing import Any

from aiohttp import web

from conclave.observability.alerts import (
    AlertEvaluator,
    AlertInputs,
    AlertManager,
    AlertThresholds,
    Severity,
    p99,
)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _evaluator(**thresholds: Any) -> tuple[AlertEvaluator, FakeClock]:
    clock = FakeClock()
    return AlertEvaluator(AlertThresholds(**thresholds), clock), clock


def _active(evaluator: AlertEvaluator) -> list[str]:
    return [a.name for a in evaluator.active]


def test_no_leader_fires_only_after_the_threshold_and_resolves_with_a_leader() -> None:
    evaluator, clock = _evaluator(no_leader_seconds=5)
    assert evaluator.evaluate(AlertInputs(has_leader=False)) == []
    clock.advance(5)
    assert evaluator.evaluate(AlertInputs(has_leader=False)) == []  # not longer than 5 s yet
    clock.advance(1)
    [fired] = evaluator.evaluate(AlertInputs(has_leader=False))
    assert fired.status == "firing"
    assert fired.alert.name == "no_leader"
    assert fired.alert.severity is Severity.CRITICAL
    assert (fired.alert.value, fired.alert.threshold, fired.alert.since) == (6, 5, clock.now)
    clock.advance(3)
    assert evaluator.evaluate(AlertInputs(has_leader=False)) == []
    assert evaluator.active[0].value == 9  # the value follows; `since` stays
    assert evaluator.active[0].since == clock.now - 3
    [resolved] = evaluator.evaluate(AlertInputs(has_leader=True))
    assert resolved.status == "resolved"
    assert resolved.alert.resolved_at == clock.now
    assert evaluator.resolved == [resolved.alert]
    assert _active(evaluator) == []


def test_a_leader_in_between_restarts_the_no_leader_timer() -> None:
    evaluator, clock = _evaluator(no_leader_seconds=5)
    evaluator.evaluate(AlertInputs(has_leader=False))
    clock.advance(4)
    evaluator.evaluate(AlertInputs(has_leader=True))
    clock.advance(1)
    evaluator.evaluate(AlertInputs(has_leader=False))
    clock.advance(4)
    assert evaluator.evaluate(AlertInputs(has_leader=False)) == []


def test_leader_changes_count_only_inside_the_window() -> None:
    evaluator, clock = _evaluator(leader_changes_max=2, leader_changes_window_seconds=60)
    now = clock.now
    changes = (now - 100, now - 30, now - 20)
    assert evaluator.evaluate(AlertInputs(leader_change_times=changes)) == []
    changes += (now,)
    [fired] = evaluator.evaluate(AlertInputs(leader_change_times=changes))
    assert (fired.alert.name, fired.alert.value, fired.alert.threshold) == (
        "leader_changes",
        3,
        2,
    )
    clock.advance(35)  # the change at now-30 leaves the window
    [resolved] = evaluator.evaluate(AlertInputs(leader_change_times=changes))
    assert resolved.status == "resolved"


def test_fsync_p99_is_nearest_rank_over_the_recent_window() -> None:
    assert p99([]) == 0.0
    assert p99([0.1] * 99 + [9.0]) == 0.1  # 1 slow fsync of 100 is the 100th percentile
    assert p99([0.1] * 98 + [9.0, 9.0]) == 9.0
    evaluator, clock = _evaluator(fsync_p99_seconds=0.5, fsync_window_seconds=10)
    now = clock.now
    old_slow = [(now - 20, 2.0)] * 50
    fast = [(now - 1, 0.001)] * 200
    assert evaluator.evaluate(AlertInputs(fsyncs=old_slow + fast)) == []
    slow = [(now, 0.9)] * 5
    [fired] = evaluator.evaluate(AlertInputs(fsyncs=old_slow + fast + slow))
    assert fired.alert.name == "wal_fsync_slow"
    assert fired.alert.value == 0.9
    clock.advance(11)
    [resolved] = evaluator.evaluate(AlertInputs(fsyncs=old_slow + fast + slow))
    assert resolved.status == "resolved"


def test_follower_lag_is_a_leader_alert_naming_the_peers() -> None:
    evaluator, _ = _evaluator(follower_lag_entries_max=100)
    lag = {2: 5, 3: 150}
    assert evaluator.evaluate(AlertInputs(is_leader=False, follower_lag=lag)) == []
    [fired] = evaluator.evaluate(AlertInputs(is_leader=True, follower_lag=lag))
    assert fired.alert.value == 150
    assert "node 3 by 150" in fired.alert.message
    assert "node 2" not in fired.alert.message
    [resolved] = evaluator.evaluate(AlertInputs(is_leader=True, follower_lag={2: 0, 3: 100}))
    assert resolved.alert.name == "follower_lag"


def test_conflict_rate_counts_conflicts_of_the_last_minute() -> None:
    evaluator, clock = _evaluator(conflicts_per_minute_max=0)
    assert evaluator.evaluate(AlertInputs(conflict_times=(clock.now - 61,))) == []
    [fired] = evaluator.evaluate(AlertInputs(conflict_times=(clock.now - 61, clock.now - 2)))
    assert (fired.alert.name, fired.alert.value, fired.alert.threshold) == (
        "decision_conflict_rate",
        1,
        0,
    )
    clock.advance(60)
    [resolved] = evaluator.evaluate(AlertInputs(conflict_times=(clock.now - 62,)))
    assert resolved.status == "resolved"


def test_a_proposal_open_past_its_deadline_or_expired_without_quorum_is_stuck() -> None:
    evaluator, clock = _evaluator(stuck_proposal_grace_seconds=5, stuck_proposal_window_seconds=60)
    now = clock.now
    assert evaluator.evaluate(AlertInputs(open_deadlines={"p3": now - 5})) == []
    [fired] = evaluator.evaluate(AlertInputs(open_deadlines={"p3": now - 6}))
    assert fired.alert.name == "proposal_stuck"
    assert "p3" in fired.alert.message
    inputs = AlertInputs(expired_without_quorum=((now - 1, "p9"),))
    assert evaluator.evaluate(inputs) == []  # still active: now p9, expired without quorum
    assert "expired without quorum: p9" in evaluator.active[0].message
    clock.advance(60)
    [resolved] = evaluator.evaluate(inputs)
    assert resolved.status == "resolved"


def test_resolved_alerts_are_kept_newest_first_and_bounded() -> None:
    clock = FakeClock()
    evaluator = AlertEvaluator(AlertThresholds(no_leader_seconds=0), clock, resolved_max=3)
    for _ in range(5):
        clock.advance(1)
        evaluator.evaluate(AlertInputs(has_leader=False))
        clock.advance(1)
        evaluator.evaluate(AlertInputs(has_leader=False))
        clock.advance(1)
        evaluator.evaluate(AlertInputs(has_leader=True))
    resolved = evaluator.resolved
    assert len(resolved) == 3
    assert [a.resolved_at for a in resolved] == sorted(
        (a.resolved_at for a in resolved if a.resolved_at is not None), reverse=True
    )


def test_the_manager_posts_fire_and_resolve_to_the_webhook_in_order() -> None:
    async def scenario() -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        both = asyncio.Event()

        async def hook(request: web.Request) -> web.Response:
            received.append(await request.json())
            if len(received) == 2:
                both.set()
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        clock = FakeClock()
        state = {"inputs": AlertInputs(has_leader=False)}
        manager = AlertManager(
            AlertEvaluator(AlertThresholds(no_leader_seconds=1), clock),
            lambda: state["inputs"],
            interval_seconds=3600,  # the test evaluates by hand
            logger=logging.getLogger("test.alerts"),
            webhook_url=f"http://127.0.0.1:{port}/hook",
            origin={"node": 7},
        )
        manager.start()
        try:
            manager.evaluate_now()
            clock.advance(2)
            assert [c.status for c in manager.evaluate_now()] == ["firing"]
            state["inputs"] = AlertInputs(has_leader=True)
            assert [c.status for c in manager.evaluate_now()] == ["resolved"]
            await asyncio.wait_for(both.wait(), 10)
            assert manager.to_json()["active"] == []
            assert manager.to_json()["resolved"][0]["name"] == "no_leader"
        finally:
            await manager.stop()
            await runner.cleanup()
        return received

    received = asyncio.run(scenario())
    assert [(b["status"], b["node"], b["alert"]["name"]) for b in received] == [
        ("firing", 7, "no_leader"),
        ("resolved", 7, "no_leader"),
    ]
    assert received[1]["alert"]["resolved_at"] is not None


def test_a_failing_webhook_is_logged_and_counted_never_raised() -> None:
    async def scenario() -> int:
        clock = FakeClock()
        manager = AlertManager(
            AlertEvaluator(AlertThresholds(no_leader_seconds=0), clock),
            lambda: AlertInputs(has_leader=False),
            interval_seconds=3600,
            logger=logging.getLogger("test.alerts"),
            webhook_url="http://127.0.0.1:9/nobody-listens",
            webhook_timeout_seconds=2,
        )
        manager.start()
        try:
            manager.evaluate_now()
            clock.advance(1)
            manager.evaluate_now()
            for _ in range(200):
                if manager.deliveries_failed:
                    break
                await asyncio.sleep(0.05)  # waits for the refused connection, not a condition
        finally:
            await manager.stop()
        return manager.deliveries_failed

    assert asyncio.run(scenario()) == 1
