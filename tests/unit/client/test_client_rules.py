"""The pure pieces shared by both clients: SSE parsing, verdicts, endpoints, retries, sessions."""

import random

import pytest

from conclave.client import (
    CompactedError,
    InvalidRequestError,
    MemberChangeError,
    NoLeaderError,
    OperationTimeout,
    StaleRequestError,
    UnavailableError,
)
from conclave.client.endpoints import EndpointRing, normalize_endpoint
from conclave.client.protocol import Action, judge_response, watch_request
from conclave.client.retry import RetryPlan, RetryPolicy
from conclave.client.sessions import SessionPool
from conclave.client.watch import LineSplitter, SseMessage, SseParser, WatchState

POLICY = RetryPolicy(backoff_initial_seconds=0.01, backoff_max_seconds=0.04)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plan_for(ring: EndpointRing, clock: FakeClock, **kw: bool) -> RetryPlan:
    return RetryPlan(ring, POLICY, timeout_seconds=1.0, rng=random.Random(1), clock=clock, **kw)


def test_sse_parser_handles_comments_multiline_data_and_crlf() -> None:
    parser = SseParser()
    lines = [": keep-alive", "", "id: 7", "event: put", 'data: {"a":', "data:  1}\r", ""]
    messages = [m for m in map(parser.feed_line, lines) if m is not None]
    assert messages == [SseMessage(event="put", data='{"a":\n 1}', id="7")]


def test_line_splitter_joins_lines_cut_across_chunks() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'data: {"k') == []
    assert splitter.feed(b'": 1}\r\n\nid') == ['data: {"k": 1}', ""]


def test_watch_state_skips_replayed_events_and_raises_on_error_events() -> None:
    ring, clock = EndpointRing(["h:1"]), FakeClock()
    state = WatchState("", 5, lambda: plan_for(ring, clock))
    event_lines = ["event: put", 'data: {"type":"put","key":"k","value":"v","revision":4}', ""]
    assert [state.line_received(line) for line in event_lines] == [None, None, None]
    event_lines[1] = event_lines[1].replace('"revision":4', '"revision":5')
    assert state.line_received(event_lines[0]) is None
    assert state.line_received(event_lines[1]) is None
    event = state.line_received("")
    assert event is not None
    assert event.revision == 5
    assert state.next_revision == 6
    state.line_received("event: error")
    state.line_received('data: {"code": "slow_watcher", "message": "m"}')
    with pytest.raises(UnavailableError) as caught:
        state.line_received("")
    assert caught.value.code == "slow_watcher"


def test_watch_request_resumes_with_both_from_revision_and_last_event_id() -> None:
    request = watch_request("a b/", from_revision=18)
    assert request.target == "/v1/watch?prefix=a%20b%2F&from_revision=18"
    assert request.headers["Last-Event-ID"] == "17"


@pytest.mark.parametrize(
    ("status", "code", "error_class", "action"),
    [
        (400, "invalid_key", InvalidRequestError, Action.FAIL),
        (404, "not_found", InvalidRequestError, Action.FAIL),
        (409, "stale_request", StaleRequestError, Action.FAIL),
        (409, "member_error", MemberChangeError, Action.FAIL),
        (410, "compacted", CompactedError, Action.FAIL),
        (421, "not_leader", NoLeaderError, Action.RETRY),  # no leader_api given
        (503, "no_leader", NoLeaderError, Action.RETRY),
        (503, "unavailable", UnavailableError, Action.RETRY),
        (504, "timeout", OperationTimeout, Action.RETRY),
    ],
)
def test_judge_response(
    status: int, code: str, error_class: type[Exception], action: Action
) -> None:
    verdict = judge_response(status, {"code": code, "message": "m"}, answer_codes=frozenset())
    assert verdict.action is action
    assert type(verdict.error) is error_class


def test_judge_response_answers_and_redirects() -> None:
    answers = frozenset({"key_not_found"})
    assert judge_response(404, {"code": "key_not_found"}, answer_codes=answers).action is (
        Action.ANSWER
    )
    body = {"code": "not_leader", "leader": 1, "leader_api": "h:1"}
    verdict = judge_response(421, body, answer_codes=frozenset())
    assert (verdict.action, verdict.leader_api) == (Action.REDIRECT, "h:1")
    dropped = judge_response(503, {"code": "proposal_dropped"}, answer_codes=frozenset())
    assert dropped.maybe_took_effect


def test_endpoints_are_normalized_and_deduplicated() -> None:
    assert normalize_endpoint("127.0.0.1:7001") == "http://127.0.0.1:7001"
    assert normalize_endpoint("http://h:1/") == "http://h:1"
    ring = EndpointRing(["h:1", "http://h:1", "h:2"])
    assert ring.endpoints == ("http://h:1", "http://h:2")
    with pytest.raises(InvalidRequestError):
        normalize_endpoint("no-port")


def test_concurrent_failures_on_one_endpoint_move_the_preference_once() -> None:
    ring = EndpointRing(["h:1", "h:2", "h:3"])
    assert ring.advance_from("http://h:1") == "http://h:2"
    assert ring.advance_from("http://h:1") == "http://h:2"


def test_redirects_between_two_nodes_naming_each_other_back_off() -> None:
    ring, clock = EndpointRing(["h:1", "h:2"]), FakeClock()
    plan = plan_for(ring, clock)
    error = NoLeaderError("m", code="not_leader")
    delays = [plan.redirected(f"h:{2 - n % 2}", error) for n in range(4)]
    assert delays[:2] == [0.0, 0.0]
    assert all(delay > 0 for delay in delays[2:])


def test_backoff_grows_is_bounded_and_gives_up_at_the_deadline() -> None:
    ring, clock = EndpointRing(["h:1"]), FakeClock()
    plan = plan_for(ring, clock)
    error = UnavailableError("m", code="unavailable")
    delays: list[float] = []

    def fail_until_the_deadline() -> None:
        while True:
            delays.append(plan.failed(error, maybe_took_effect=False))
            clock.now += delays[-1]

    with pytest.raises(UnavailableError):
        fail_until_the_deadline()
    assert delays[0] < 0.01 <= max(delays) <= 0.04
    assert 100.9 < clock.now <= 101.0


def test_unknown_outcome_at_the_deadline_is_an_operation_timeout() -> None:
    ring, clock = EndpointRing(["h:1"]), FakeClock()
    plan = plan_for(ring, clock)
    plan.failed(OperationTimeout("m", code="timeout"), maybe_took_effect=True)
    clock.now += 5
    with pytest.raises(OperationTimeout):
        plan.failed(NoLeaderError("m", code="no_leader"), maybe_took_effect=False)


def test_a_non_idempotent_call_is_not_retried_after_an_unknown_outcome() -> None:
    ring, clock = EndpointRing(["h:1"]), FakeClock()
    plan = plan_for(ring, clock, retry_after_unknown_outcome=False)
    assert plan.failed(UnavailableError("m", code="x"), maybe_took_effect=False) > 0
    with pytest.raises(OperationTimeout):
        plan.failed(UnavailableError("m", code="x"), maybe_took_effect=True)


def test_session_pool_reuses_free_sessions_and_ids_grow() -> None:
    pool = SessionPool()
    with pool.request_id() as first, pool.request_id() as concurrent:
        assert first.split("/")[0] != concurrent.split("/")[0]
    with pool.request_id() as later:
        client_id, seq = later.split("/")
    assert client_id in (first.split("/")[0], concurrent.split("/")[0])
    assert int(seq) == 2
    assert 0 < int(client_id) < 2**63
    assert pool.sessions_created == 2
