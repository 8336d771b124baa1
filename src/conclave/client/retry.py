"""The retry plan of one call: which endpoint to try, how long to wait, when to give up.

Rules:
- Pure apart from the injected clock and random generator; both clients drive it the same way:
  `endpoint` to try, `remaining_seconds()` to bound the attempt, then exactly one of
  `answered()`, `refused(verdict)` (a failure answer) or `failed(...)` (no answer), which
  return the seconds to wait before the next attempt or raise the call's final error.
- Every call has one deadline (`timeout_seconds` after it starts); no attempt and no back-off
  runs past it.
- Back-off after the n-th failure in a row: `min(backoff_max, backoff_initial * 2**n)` scaled
  by a jitter factor in [0.5, 1). A redirect to another endpoint is followed at once, as long
  as the call has not been redirected more times in a row than it knows endpoints (two nodes
  naming each other must not spin).
- A failed attempt moves to the next endpoint, except a 504 (the node is alive and working).
- Giving up: when the next attempt could not start before the deadline, the call raises
  `OperationTimeout` if any attempt may have taken effect, else the last failure
  (`UnavailableError`, `NoLeaderError`). An operation that must not be retried after an
  unknown outcome (membership changes) raises `OperationTimeout` at once instead. A plan made
  for a single attempt raises its first failure.
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from conclave.client.endpoints import EndpointRing
from conclave.client.errors import (
    ConclaveClientError,
    OperationTimeout,
    ProtocolError,
    UnavailableError,
)
from conclave.client.protocol import Action, Verdict


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a client retries: back-off bounds and the time allowed to open a connection."""

    backoff_initial_seconds: float = 0.02
    backoff_max_seconds: float = 0.5
    connect_timeout_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.backoff_initial_seconds <= self.backoff_max_seconds:
            raise ValueError("need 0 < backoff_initial_seconds <= backoff_max_seconds")
        if self.connect_timeout_seconds <= 0:
            raise ValueError("connect_timeout_seconds must be positive")

    def backoff_seconds(self, failures_in_a_row: int, rng: random.Random) -> float:
        exponent = min(failures_in_a_row, 30)
        growth = float(2**exponent)
        ceiling = min(self.backoff_max_seconds, self.backoff_initial_seconds * growth)
        return ceiling * rng.uniform(0.5, 1.0)


def connection_error(endpoint: str, exc: BaseException) -> UnavailableError:
    """The failure recorded for an attempt that got no HTTP answer."""
    detail = str(exc) or type(exc).__name__
    return UnavailableError(f"{endpoint}: {detail}", code="connection_failed")


class RetryPlan:
    """The attempts of one call."""

    def __init__(
        self,
        ring: EndpointRing,
        policy: RetryPolicy,
        *,
        timeout_seconds: float,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
        retry_after_unknown_outcome: bool = True,
        remember_endpoint: bool = True,
        single_endpoint: str | None = None,
    ) -> None:
        self._ring = ring
        self._policy = policy
        self._rng = rng
        self._clock = clock
        self._deadline = clock() + timeout_seconds
        self._retry_after_unknown_outcome = retry_after_unknown_outcome
        self._remember_endpoint = remember_endpoint
        self._single_attempt = single_endpoint is not None
        self.endpoint = single_endpoint if single_endpoint is not None else ring.preferred()
        self.attempts = 0
        self._failures_in_a_row = 0
        self._redirects_in_a_row = 0
        self._maybe_took_effect = False
        self._last_error: ConclaveClientError | None = None

    def remaining_seconds(self) -> float:
        return max(0.0, self._deadline - self._clock())

    def connect_timeout_seconds(self) -> float:
        return min(self.remaining_seconds(), self._policy.connect_timeout_seconds)

    def started(self) -> None:
        """An attempt is about to be sent to `endpoint`."""
        self.attempts += 1

    def answered(self) -> None:
        if self._remember_endpoint and not self._single_attempt:
            self._ring.mark_answered(self.endpoint)

    def redirected(self, leader_api: str, error: ConclaveClientError) -> float:
        """A 421 named the leader: go there (at once unless redirects keep going round)."""
        if self._single_attempt:
            raise error
        previous = self.endpoint
        self.endpoint = self._ring.redirect(leader_api)
        self._redirects_in_a_row += 1
        if self.endpoint != previous and self._redirects_in_a_row <= len(self._ring):
            self._last_error = error
            return 0.0
        return self._back_off(error)

    def refused(self, verdict: Verdict) -> float:
        """A node answered with a failure: raise it, or return the back-off before retrying."""
        error = verdict.error or ProtocolError("unexpected answer", code="bad_response")
        if verdict.action is Action.REDIRECT and verdict.leader_api:
            return self.redirected(verdict.leader_api, error)
        if verdict.action is Action.RETRY:
            return self.failed(
                error,
                maybe_took_effect=verdict.maybe_took_effect,
                switch_endpoint=verdict.switch_endpoint,
            )
        raise error

    def failed(
        self,
        error: ConclaveClientError,
        *,
        maybe_took_effect: bool,
        switch_endpoint: bool = True,
    ) -> float:
        """An attempt failed in a retryable way; return the back-off or raise the final error."""
        self._maybe_took_effect = self._maybe_took_effect or maybe_took_effect
        if self._single_attempt:
            raise self._final_error(error)
        if maybe_took_effect and not self._retry_after_unknown_outcome:
            raise self._unknown_outcome(error)
        self._redirects_in_a_row = 0
        if switch_endpoint:
            self.endpoint = self._ring.advance_from(self.endpoint)
        return self._back_off(error)

    def _back_off(self, error: ConclaveClientError) -> float:
        self._last_error = error
        delay_seconds = self._policy.backoff_seconds(self._failures_in_a_row, self._rng)
        self._failures_in_a_row += 1
        if delay_seconds >= self.remaining_seconds():
            raise self._final_error(error)
        return delay_seconds

    def _final_error(self, error: ConclaveClientError) -> ConclaveClientError:
        if self._maybe_took_effect:
            return self._unknown_outcome(error)
        return error

    def _unknown_outcome(self, error: ConclaveClientError) -> OperationTimeout:
        if isinstance(error, OperationTimeout):
            return error
        return OperationTimeout(
            f"no answer before the deadline; the outcome is unknown (last: {error.message})",
            code="timeout",
            status=error.status,
            body=error.body,
        )
