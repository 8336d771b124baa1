"""AsyncClient against fake nodes: discovery, failover, idempotent writes, answers, watch."""

import asyncio
import contextlib
import gc
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from fake_conclave_api import FakeNode, FakeStore, refused_address, serve_in_loop

from conclave.client import (
    AsyncClient,
    InvalidRequestError,
    NoLeaderError,
    OperationTimeout,
    RetryPolicy,
    UnavailableError,
    WatchEvent,
)

FAST_RETRY = RetryPolicy(
    backoff_initial_seconds=0.005, backoff_max_seconds=0.02, connect_timeout_seconds=0.5
)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        async with asyncio.timeout(20):
            await test()

    asyncio.run(main())
    gc.collect()  # an unclosed session or socket warns in this test, not in a later one


def client_of(addresses: list[str], *, timeout: float = 3.0) -> AsyncClient:
    return AsyncClient(addresses, timeout=timeout, retry=FAST_RETRY, watch_idle_seconds=2.0)


def test_put_get_delete_and_range_round_trip() -> None:
    async def scenario() -> None:
        node = FakeNode(FakeStore())
        async with serve_in_loop([node]) as addresses, client_of(addresses) as client:
            put = await client.put("a/1", "one")
            assert (put.key, put.revision, put.prev_value) == ("a/1", 1, None)
            assert (await client.put("a/1", "uno")).prev_value == "one"
            await client.put("a/2", "two")
            item = await client.get("a/1")
            assert item is not None
            assert (item.value, item.create_revision, item.mod_revision, item.version) == (
                "uno",
                1,
                2,
                2,
            )
            page = await client.range("a/", limit=1)
            assert [i.key for i in page.items] == ["a/1"]
            assert page.more
            assert [i.key async for i in client.items("a/", page_size=1)] == ["a/1", "a/2"]
            deleted = await client.delete("a/1")
            assert (deleted.deleted, deleted.prev_value) == (True, "uno")
            assert not (await client.delete("a/1")).deleted

    run(scenario)


def test_get_of_an_absent_key_returns_none() -> None:
    async def scenario() -> None:
        async with (
            serve_in_loop([FakeNode(FakeStore())]) as addresses,
            client_of(addresses) as client,
        ):
            assert await client.get("missing") is None

    run(scenario)


def test_keys_are_percent_encoded_and_keep_their_slashes() -> None:
    async def scenario() -> None:
        node = FakeNode(FakeStore())
        async with serve_in_loop([node]) as addresses, client_of(addresses) as client:
            key = "dir/with space/é?#%"
            await client.put(key, "v")
            item = await client.get(key)
            assert item is not None
            assert item.key == key
            assert node.requests[0].path == "/v1/kv/" + key

    run(scenario)


def test_a_failed_compare_is_an_answer_with_the_current_value() -> None:
    async def scenario() -> None:
        async with (
            serve_in_loop([FakeNode(FakeStore())]) as addresses,
            client_of(addresses) as client,
        ):
            put = await client.put("k", "old")
            failed = await client.cas("k", "new", prev_value="other")
            assert not failed.succeeded
            assert (failed.current_value, failed.current_revision) == ("old", put.revision)
            absent = await client.cas("nope", "x", prev_revision=5)
            assert (absent.succeeded, absent.current_value, absent.current_revision) == (
                False,
                None,
                0,
            )
            swapped = await client.cas("k", "new", prev_revision=put.revision)
            assert swapped.succeeded
            assert (swapped.value, swapped.current_value) == ("new", "new")

    run(scenario)


def test_cas_needs_exactly_one_compare() -> None:
    async def scenario() -> None:
        async with client_of(["127.0.0.1:1"]) as client:
            with pytest.raises(InvalidRequestError):
                await client.cas("k", "v")
            with pytest.raises(InvalidRequestError):
                await client.cas("k", "v", prev_revision=1, prev_value="x")
            with pytest.raises(InvalidRequestError):
                await client.put("", "v")

    run(scenario)


def test_not_leader_redirects_to_the_named_leader_which_is_then_preferred() -> None:
    async def scenario() -> None:
        store = FakeStore()
        follower = FakeNode(store, node_id=2, leader=False)
        leader = FakeNode(store, node_id=1)
        async with serve_in_loop([follower, leader]) as (follower_address, leader_address):
            follower.leader_api = leader_address
            async with client_of([follower_address]) as client:
                await client.put("k", "v")
                assert client.preferred_endpoint == f"http://{leader_address}"
                assert client.endpoints == (
                    f"http://{follower_address}",
                    f"http://{leader_address}",
                )
                await client.get("k")
            assert len(follower.requests) == 1
            assert len(leader.requests) == 2

    run(scenario)


def test_connection_refused_fails_over_to_the_next_endpoint() -> None:
    async def scenario() -> None:
        node = FakeNode(FakeStore())
        async with (
            serve_in_loop([node]) as (address,),
            client_of([refused_address(), address]) as client,
        ):
            assert (await client.put("k", "v")).revision == 1
            assert client.preferred_endpoint == f"http://{address}"

    run(scenario)


def test_a_retried_write_sends_the_same_request_id_and_runs_once() -> None:
    async def scenario() -> None:
        store = FakeStore()
        node = FakeNode(store)
        node.scripted.extend(
            [(504, {"code": "timeout", "message": "slow"}), (503, {"code": "no_leader"})]
        )
        async with serve_in_loop([node]) as addresses, client_of(addresses) as client:
            await client.put("k", "v")
            await client.put("k", "w")
        ids = [r.headers["Conclave-Request-Id"] for r in node.requests]
        assert len(ids) == 4
        assert ids[0] == ids[1] == ids[2] != ids[3]
        client_id, seq = ids[2].split("/")
        assert ids[3] == f"{client_id}/{int(seq) + 1}"
        assert store.executions == 2

    run(scenario)


def test_concurrent_writes_never_share_a_session_and_seqs_grow() -> None:
    async def scenario() -> None:
        store = FakeStore(write_delay_seconds=0.01)
        async with (
            serve_in_loop([FakeNode(store)]) as addresses,
            client_of(addresses) as client,
        ):
            for round_no in range(3):
                await asyncio.gather(*(client.put(f"k{i}", str(round_no)) for i in range(8)))
        assert store.violations == []
        seqs_by_client: dict[str, list[int]] = {}
        for request_id in store.request_ids:
            client_id, seq = request_id.split("/")
            seqs_by_client.setdefault(client_id, []).append(int(seq))
        assert 1 < len(seqs_by_client) <= 8
        for seqs in seqs_by_client.values():
            assert seqs == sorted(set(seqs))
        assert store.executions == 24

    run(scenario)


def test_an_invalid_request_is_raised_at_once_without_retry() -> None:
    async def scenario() -> None:
        node = FakeNode(FakeStore())
        node.scripted.append((400, {"code": "invalid_key", "message": "key too long"}))
        async with serve_in_loop([node]) as addresses, client_of(addresses) as client:
            with pytest.raises(InvalidRequestError) as caught:
                await client.put("k", "v")
        assert (caught.value.code, caught.value.status) == ("invalid_key", 400)
        assert len(node.requests) == 1

    run(scenario)


def test_no_leader_until_the_deadline_raises_no_leader_error() -> None:
    async def scenario() -> None:
        node = FakeNode(FakeStore())
        node.scripted.extend([(503, {"code": "no_leader", "message": "election"})] * 1000)
        async with (
            serve_in_loop([node]) as addresses,
            client_of(addresses, timeout=0.3) as client,
        ):
            started = asyncio.get_running_loop().time()
            with pytest.raises(NoLeaderError):
                await client.get("k")
            assert asyncio.get_running_loop().time() - started < 1.0
        assert len(node.requests) > 3

    run(scenario)


def test_a_write_timing_out_until_the_deadline_raises_operation_timeout() -> None:
    async def scenario() -> None:
        node = FakeNode(FakeStore())
        node.scripted.extend([(504, {"code": "timeout", "message": "slow"})] * 1000)
        async with (
            serve_in_loop([node]) as addresses,
            client_of(addresses, timeout=0.3) as client,
        ):
            with pytest.raises(OperationTimeout):
                await client.put("k", "v")

    run(scenario)


def test_nothing_listening_until_the_deadline_raises_unavailable() -> None:
    async def scenario() -> None:
        async with client_of([refused_address(), refused_address()], timeout=0.2) as client:
            with pytest.raises(UnavailableError) as caught:
                await client.put("k", "v")
        assert not isinstance(caught.value, OperationTimeout)
        assert caught.value.code == "connection_failed"

    run(scenario)


def test_status_is_typed() -> None:
    async def scenario() -> None:
        async with (
            serve_in_loop([FakeNode(FakeStore(), node_id=7)]) as addresses,
            client_of(addresses) as client,
        ):
            status = await client.status(addresses[0])
        assert (status.id, status.role, status.term, status.is_leader) == (7, "leader", 3, True)
        assert status.voters == (1, 2, 3)

    run(scenario)


@pytest.mark.parametrize("with_error_event", [False, True])
def test_watch_resumes_after_the_last_event_when_the_stream_drops(with_error_event: bool) -> None:
    async def scenario() -> None:
        store = FakeStore()
        for n in range(5):
            store.apply_put(f"w/{n}", str(n))
        store.apply_delete("w/0")
        first, second = FakeNode(store, node_id=1), FakeNode(store, node_id=2)
        first.drop_watch_after_events = 2
        first.drop_with_error_event = with_error_event
        async with (
            serve_in_loop([first, second]) as addresses,
            client_of(addresses) as client,
            contextlib.aclosing(client.watch("w/", from_revision=2)) as events,
        ):
            seen: list[WatchEvent] = []
            async for event in events:
                seen.append(event)
                if len(seen) == 5:
                    break
        assert [e.revision for e in seen] == [2, 3, 4, 5, 6]
        assert (seen[-1].type, seen[-1].key, seen[-1].value) == ("delete", "w/0", None)
        resumed = second.requests[0]
        assert resumed.query["from_revision"] == "4"
        assert resumed.headers["Last-Event-ID"] == "3"
        assert resumed.query["prefix"] == "w/"

    run(scenario)


def test_watch_from_now_starts_after_the_current_revision() -> None:
    async def scenario() -> None:
        store = FakeStore()
        store.apply_put("old", "x")
        node = FakeNode(store)
        async with (
            serve_in_loop([node]) as addresses,
            client_of(addresses) as client,
            contextlib.aclosing(client.watch()) as events,
        ):
            next_event = asyncio.ensure_future(anext(events))  # "now" is the first iteration
            while not any(r.path == "/v1/watch" for r in node.requests):
                await asyncio.sleep(0.005)
            await client.put("new", "y")
            event = await next_event
        assert (event.key, event.revision) == ("new", 2)
        assert node.requests[1].query["from_revision"] == "2"

    run(scenario)
