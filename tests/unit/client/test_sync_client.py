"""The blocking Client against fake nodes served from a background thread."""

import contextlib
import gc
import threading
from collections.abc import Iterator

import pytest
from fake_conclave_api import FakeNode, FakeStore, refused_address, serve_in_thread

from conclave.client import (
    Client,
    InvalidRequestError,
    NoLeaderError,
    OperationTimeout,
    RetryPolicy,
    UnavailableError,
)

FAST_RETRY = RetryPolicy(
    backoff_initial_seconds=0.005, backoff_max_seconds=0.02, connect_timeout_seconds=0.5
)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    yield
    gc.collect()  # an unclosed socket warns in this test, not in a later one


def client_of(addresses: list[str], *, timeout: float = 3.0) -> Client:
    return Client(addresses, timeout=timeout, retry=FAST_RETRY, watch_idle_seconds=2.0)


def test_round_trip_and_answers() -> None:
    with serve_in_thread([FakeNode(FakeStore())]) as addresses, client_of(addresses) as client:
        assert client.put("a/1", "one").revision == 1
        item = client.get("a/1", consistency="serializable")
        assert item is not None
        assert item.value == "one"
        assert client.get("missing") is None
        failed = client.cas("a/1", "two", prev_value="zero")
        assert (failed.succeeded, failed.current_value, failed.current_revision) == (
            False,
            "one",
            1,
        )
        assert client.cas("a/1", "two", prev_revision=1).succeeded
        client.put("a/2", "x")
        assert [i.key for i in client.items("a/", page_size=1)] == ["a/1", "a/2"]
        assert client.delete("a/2").deleted
        assert client.status().id == 1


def test_not_leader_redirect_and_connection_refused_failover() -> None:
    store = FakeStore()
    follower, leader = FakeNode(store, node_id=2, leader=False), FakeNode(store, node_id=1)
    with serve_in_thread([follower, leader]) as (follower_address, leader_address):
        follower.leader_api = leader_address
        with client_of([refused_address(), follower_address]) as client:
            client.put("k", "v")
            assert client.preferred_endpoint == f"http://{leader_address}"
            client.put("k", "w")  # straight to the leader, on the kept-alive connection
    assert len(follower.requests) == 1
    assert len(leader.requests) == 2


def test_a_retried_write_sends_the_same_request_id() -> None:
    store = FakeStore()
    node = FakeNode(store)
    node.scripted.extend([(504, {"code": "timeout"}), (503, {"code": "proposal_dropped"})])
    with serve_in_thread([node]) as addresses, client_of(addresses) as client:
        client.delete("k")
    ids = {r.headers["Conclave-Request-Id"] for r in node.requests}
    assert len(node.requests) == 3
    assert len(ids) == 1
    assert store.executions == 1


def test_threads_sharing_a_client_never_share_a_session() -> None:
    store = FakeStore(write_delay_seconds=0.01)
    with serve_in_thread([FakeNode(store)]) as addresses, client_of(addresses) as client:

        def writer(n: int) -> None:
            for round_no in range(3):
                client.put(f"k{n}", str(round_no))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert store.violations == []
    assert store.executions == 12


def test_invalid_request_is_not_retried() -> None:
    node = FakeNode(FakeStore())
    node.scripted.append((413, {"code": "too_large", "message": "value over 1 MiB"}))
    with (
        serve_in_thread([node]) as addresses,
        client_of(addresses) as client,
        pytest.raises(InvalidRequestError) as caught,
    ):
        client.put("k", "v")
    assert caught.value.code == "too_large"
    assert len(node.requests) == 1


def test_deadline_expiry_raises_by_what_was_last_seen() -> None:
    node = FakeNode(FakeStore())
    with serve_in_thread([node]) as addresses, client_of(addresses, timeout=0.2) as client:
        node.scripted.extend([(503, {"code": "no_leader"})] * 1000)
        with pytest.raises(NoLeaderError):
            client.put("k", "v")
        node.scripted.clear()
        node.scripted.extend([(504, {"code": "timeout"})] * 1000)
        with pytest.raises(OperationTimeout):
            client.put("k", "v")
    with client_of([refused_address()], timeout=0.2) as client, pytest.raises(UnavailableError):
        client.get("k")


def test_watch_resumes_on_another_node_after_a_drop() -> None:
    store = FakeStore()
    for n in range(4):
        store.apply_put(f"w/{n}", str(n))
    first, second = FakeNode(store, node_id=1), FakeNode(store, node_id=2)
    first.drop_watch_after_events = 1
    with (
        serve_in_thread([first, second]) as addresses,
        client_of(addresses) as client,
        contextlib.closing(client.watch("w/", from_revision=1)) as events,
    ):
        revisions = [next(events).revision for _ in range(4)]
    assert revisions == [1, 2, 3, 4]
    assert second.requests[0].query["from_revision"] == "2"
    assert second.requests[0].headers["Last-Event-ID"] == "1"
