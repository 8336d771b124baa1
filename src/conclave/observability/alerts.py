"""Alerts evaluated inside each node (issue 6, item 3); listed at `GET /v1/alerts`.

Rules:
- `AlertEvaluator` is synchronous and reads time only from its injected `clock` (wall-clock
  seconds), so its rules are tested with a fake clock and no sleeping. Each evaluation gets an
  `AlertInputs` snapshot (state and recent events gathered by the shell) and returns the
  transitions: an alert fires when its condition starts to hold and resolves when it stops.
  While active, its `value` and `message` follow the latest evaluation; `since` stays.
- One alert per name (its message names the peers or proposals involved). Resolved alerts are
  kept, newest first, up to `resolved_max`.
- The rules, with their thresholds from the node settings (`alert_*`):
  `no_leader` (no leader known for longer than `no_leader_seconds`), `leader_changes` (more
  than `leader_changes_max` changes within `leader_changes_window_seconds`), `wal_fsync_slow`
  (the p99 of the fsyncs of the last `fsync_window_seconds`, nearest rank, over
  `fsync_p99_seconds`), `follower_lag` (leader only: a follower more than
  `follower_lag_entries_max` entries behind), `decision_conflict_rate` (more than
  `conflicts_per_minute_max` conflicts detected in the last minute, by the leader's stamps),
  `proposal_stuck` (an open proposal more than `stuck_proposal_grace_seconds` past its
  deadline, or one that expired without quorum within `stuck_proposal_window_seconds`).
- `AlertManager` runs the evaluator on the event loop every `interval_seconds` and POSTs each
  transition to the webhook, if one is configured, from one sender task (in order, bounded
  queue, per-request timeout). A failed evaluation or delivery is logged, never fatal.
"""

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final, Literal

import aiohttp

RESOLVED_MAX_DEFAULT: Final = 50
WEBHOOK_QUEUE_MAX: Final = 1000
CONFLICT_RATE_WINDOW_SECONDS: Final = 60.0


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertThresholds:
    """The thresholds of the rules (see the module docstring); defaults as NodeSettings'."""

    no_leader_seconds: float = 5.0
    leader_changes_max: int = 3
    leader_changes_window_seconds: float = 900.0
    fsync_p99_seconds: float = 0.5
    fsync_window_seconds: float = 60.0
    follower_lag_entries_max: int = 1000
    conflicts_per_minute_max: int = 10
    stuck_proposal_grace_seconds: float = 5.0
    stuck_proposal_window_seconds: float = 900.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertInputs:
    """What one evaluation looks at; times are wall-clock seconds."""

    has_leader: bool = True
    is_leader: bool = False
    leader_change_times: Sequence[float] = ()
    fsyncs: Sequence[tuple[float, float]] = ()  # (when, duration seconds)
    follower_lag: Mapping[int, int] = field(default_factory=dict)  # leader only
    conflict_times: Sequence[float] = ()
    open_deadlines: Mapping[str, float] = field(default_factory=dict)  # proposal -> deadline
    expired_without_quorum: Sequence[tuple[float, str]] = ()  # (when, proposal)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    name: str
    severity: Severity
    since: float
    message: str
    value: float
    threshold: float
    resolved_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "severity": self.severity.value,
            "since": self.since,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "resolved_at": self.resolved_at,
        }


@dataclass(frozen=True, slots=True)
class AlertChange:
    status: Literal["firing", "resolved"]
    alert: Alert


@dataclass(frozen=True, slots=True)
class _Finding:
    message: str
    value: float
    threshold: float


_Rule = Callable[[AlertInputs, float], _Finding | None]


def p99(durations: Sequence[float]) -> float:
    """The 99th percentile by nearest rank (0 for no samples)."""
    if not durations:
        return 0.0
    ordered = sorted(durations)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


class AlertEvaluator:
    """The rules and the state between evaluations; see the module docstring."""

    def __init__(
        self,
        thresholds: AlertThresholds,
        clock: Callable[[], float],
        resolved_max: int = RESOLVED_MAX_DEFAULT,
    ) -> None:
        self.thresholds = thresholds
        self._clock = clock
        self._resolved_max = resolved_max
        self._active: dict[str, Alert] = {}
        self._resolved: list[Alert] = []
        self._leaderless_since: float | None = None
        self._rules: tuple[tuple[str, Severity, _Rule], ...] = (
            ("no_leader", Severity.CRITICAL, self._no_leader),
            ("leader_changes", Severity.WARNING, self._leader_changes),
            ("wal_fsync_slow", Severity.WARNING, self._fsync_slow),
            ("follower_lag", Severity.WARNING, self._follower_lag),
            ("decision_conflict_rate", Severity.WARNING, self._conflict_rate),
            ("proposal_stuck", Severity.WARNING, self._proposal_stuck),
        )

    @property
    def active(self) -> list[Alert]:
        return sorted(self._active.values(), key=lambda a: (a.since, a.name))

    @property
    def resolved(self) -> list[Alert]:
        return list(self._resolved)

    def evaluate(self, inputs: AlertInputs) -> list[AlertChange]:
        """Apply every rule at the clock's now; the alerts that fired or resolved."""
        now = self._clock()
        changes: list[AlertChange] = []
        for name, severity, rule in self._rules:
            finding = rule(inputs, now)
            current = self._active.get(name)
            if finding is not None and current is None:
                alert = Alert(
                    name=name,
                    severity=severity,
                    since=now,
                    message=finding.message,
                    value=finding.value,
                    threshold=finding.threshold,
                )
                self._active[name] = alert
                changes.append(AlertChange("firing", alert))
            elif finding is not None and current is not None:
                self._active[name] = replace(current, message=finding.message, value=finding.value)
            elif finding is None and current is not None:
                done = replace(self._active.pop(name), resolved_at=now)
                self._resolved.insert(0, done)
                del self._resolved[self._resolved_max :]
                changes.append(AlertChange("resolved", done))
        return changes

    # -- rules ----------------------------------------------------------------------------

    def _no_leader(self, inputs: AlertInputs, now: float) -> _Finding | None:
        if inputs.has_leader:
            self._leaderless_since = None
            return None
        if self._leaderless_since is None:
            self._leaderless_since = now
        waited = now - self._leaderless_since
        limit = self.thresholds.no_leader_seconds
        if waited <= limit:
            return None
        return _Finding(f"no leader known for {waited:.1f}s (over {limit:g}s)", waited, limit)

    def _leader_changes(self, inputs: AlertInputs, now: float) -> _Finding | None:
        window = self.thresholds.leader_changes_window_seconds
        count = sum(1 for t in inputs.leader_change_times if now - t <= window)
        limit = self.thresholds.leader_changes_max
        if count <= limit:
            return None
        return _Finding(
            f"{count} leader changes in the last {window:g}s (more than {limit})", count, limit
        )

    def _fsync_slow(self, inputs: AlertInputs, now: float) -> _Finding | None:
        window = self.thresholds.fsync_window_seconds
        recent = [seconds for t, seconds in inputs.fsyncs if now - t <= window]
        value = p99(recent)
        limit = self.thresholds.fsync_p99_seconds
        if not recent or value <= limit:
            return None
        return _Finding(
            f"WAL fsync p99 {value * 1000:.3f} ms over {len(recent)} fsyncs in the last "
            f"{window:g}s (over {limit * 1000:g} ms)",
            value,
            limit,
        )

    def _follower_lag(self, inputs: AlertInputs, now: float) -> _Finding | None:
        del now
        limit = self.thresholds.follower_lag_entries_max
        if not inputs.is_leader:
            return None
        behind = {peer: lag for peer, lag in sorted(inputs.follower_lag.items()) if lag > limit}
        if not behind:
            return None
        names = ", ".join(f"node {peer} by {lag}" for peer, lag in behind.items())
        return _Finding(
            f"followers lagging (over {limit} entries): {names}", max(behind.values()), limit
        )

    def _conflict_rate(self, inputs: AlertInputs, now: float) -> _Finding | None:
        window = CONFLICT_RATE_WINDOW_SECONDS
        count = sum(1 for t in inputs.conflict_times if now - t <= window)
        limit = self.thresholds.conflicts_per_minute_max
        if count <= limit:
            return None
        return _Finding(
            f"{count} decision conflicts detected in the last minute (more than {limit})",
            count,
            limit,
        )

    def _proposal_stuck(self, inputs: AlertInputs, now: float) -> _Finding | None:
        grace = self.thresholds.stuck_proposal_grace_seconds
        window = self.thresholds.stuck_proposal_window_seconds
        overdue = sorted(pid for pid, due in inputs.open_deadlines.items() if now - due > grace)
        expired = sorted(
            {pid for when, pid in inputs.expired_without_quorum if now - when <= window}
        )
        if not overdue and not expired:
            return None
        parts = []
        if overdue:
            parts.append(f"open past the deadline (+{grace:g}s): {', '.join(overdue)}")
        if expired:
            parts.append(f"expired without quorum: {', '.join(expired)}")
        return _Finding("proposals stuck: " + "; ".join(parts), len(overdue) + len(expired), 0)


Poster = Callable[[dict[str, Any]], Awaitable[None]]


class AlertManager:
    """Runs an `AlertEvaluator` on a timer and delivers its transitions to a webhook."""

    def __init__(
        self,
        evaluator: AlertEvaluator,
        inputs: Callable[[], AlertInputs | None],
        *,
        interval_seconds: float,
        logger: logging.Logger,
        webhook_url: str | None = None,
        webhook_timeout_seconds: float = 5.0,
        origin: Mapping[str, Any] | None = None,
    ) -> None:
        self.evaluator = evaluator
        self._inputs = inputs
        self._interval = interval_seconds
        self._log = logger
        self._url = webhook_url
        self._timeout = webhook_timeout_seconds
        self._origin = dict(origin or {})
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(WEBHOOK_QUEUE_MAX)
        self._tasks: list[asyncio.Task[None]] = []
        self.deliveries_failed = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._evaluate_forever(), name="conclave-alerts"))
        if self._url is not None:
            self._tasks.append(loop.create_task(self._deliver_forever(), name="conclave-webhook"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def evaluate_now(self) -> list[AlertChange]:
        """One evaluation (also what the timer runs); queue the transitions for the webhook."""
        inputs = self._inputs()
        if inputs is None:
            return []
        changes = self.evaluator.evaluate(inputs)
        for change in changes:
            alert = change.alert
            log = self._log.warning if change.status == "firing" else self._log.info
            log("alert %s %s: %s", alert.name, change.status, alert.message)
            if self._url is not None:
                body = {**self._origin, "status": change.status, "alert": alert.to_json()}
                try:
                    self._outbox.put_nowait(body)
                except asyncio.QueueFull:
                    self.deliveries_failed += 1
                    self._log.error("alert webhook queue full: dropped %s", alert.name)
        return changes

    def to_json(self) -> dict[str, Any]:
        return {
            "active": [a.to_json() for a in self.evaluator.active],
            "resolved": [a.to_json() for a in self.evaluator.resolved],
        }

    async def _evaluate_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                self.evaluate_now()
            except Exception:  # an alert must never take the node down
                self._log.exception("alert evaluation failed")

    async def _deliver_forever(self) -> None:
        assert self._url is not None
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                body = await self._outbox.get()
                try:
                    async with session.post(self._url, json=body) as response:
                        if response.status >= 300:
                            raise aiohttp.ClientError(f"answered HTTP {response.status}")
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    self.deliveries_failed += 1
                    self._log.warning(
                        "alert webhook %s failed for %s: %r", self._url, body["alert"]["name"], exc
                    )


__all__ = [
    "Alert",
    "AlertChange",
    "AlertEvaluator",
    "AlertInputs",
    "AlertManager",
    "AlertThresholds",
    "Severity",
    "p99",
]
