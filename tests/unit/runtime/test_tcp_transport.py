"""The TCP peer transport: delivery, batching, reconnection, handshake refusal, isolation."""

import asyncio
import gc
import logging
import random
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any

import pytest

from conclave.codec import encode_frame, encode_raft_message
from conclave.consensus.raft import (
    AppendEntries,
    AppendEntriesResponse,
    RaftMessage,
    RequestVote,
    RequestVoteResponse,
)
from conclave.core import Entry, EntryKind
from conclave.core.effects import Send
from conclave.runtime.transport import TcpPeerTransport, encode_hello

CLUSTER = "test-cluster"
HOST = "127.0.0.1"
LOG = logging.getLogger("conclave.test.transport")
TIMEOUT = 5.0


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        async with asyncio.timeout(TIMEOUT * 2):
            await test()

    asyncio.run(main())
    gc.collect()  # an unclosed socket or transport now warns in this test, not in a later one


async def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Node:
    def __init__(self, node_id: int, *, cluster: str = CLUSTER, port: int = 0, **kw: Any):
        self.received: list[RaftMessage] = []
        self.transport = TcpPeerTransport(
            node_id=node_id,
            cluster_id=cluster,
            host=HOST,
            port=port,
            peers=kw.pop("peers", {}),
            on_message=self.received.append,
            logger=LOG,
            rng=random.Random(node_id),
            backoff_initial=0.005,
            backoff_max=0.05,
            **kw,
        )
        self.id = node_id

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.transport.bound_port)

    def send(self, message: RaftMessage) -> None:
        self.transport.send(Send(to=message.dst, message=message))


@asynccontextmanager
async def started(*nodes: Node, connect: bool = True) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for node in nodes:
            await node.transport.start()
            stack.push_async_callback(node.transport.close)
        if connect:
            for node in nodes:
                for other in nodes:
                    if other is not node:
                        node.transport.set_peer(other.id, other.address)
        yield


def vote(src: int, dst: int, term: int = 1) -> RequestVote:
    return RequestVote(src=src, dst=dst, term=term, last_log_index=3, last_log_term=1)


def append(src: int, dst: int, term: int = 1) -> AppendEntries:
    entries = (
        Entry(term=term, index=4, data=b"set x 1"),
        Entry(term=term, index=5, kind=EntryKind.NOOP),
    )
    return AppendEntries(
        src=src, dst=dst, term=term, prev_index=3, prev_term=1, entries=entries, commit=3
    )


async def send_until_received(sender: Node, receiver: Node, message: RaftMessage) -> None:
    """Resend (as Raft would) until the receiver has the message: the first may be lost."""

    async def loop() -> None:
        while message not in receiver.received:
            sender.send(message)
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), TIMEOUT)


async def raw_connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, port)


async def raw_hello(port: int, node_id: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await raw_connect(port)
    writer.write(encode_frame(encode_hello(CLUSTER, node_id)))
    header = await asyncio.wait_for(reader.readexactly(4), TIMEOUT)
    await reader.readexactly(int.from_bytes(header, "big"))
    return reader, writer


async def assert_closed_by_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with suppress(ConnectionResetError):
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    writer.close()
    with suppress(OSError):
        await writer.wait_closed()


def test_two_nodes_exchange_messages_both_ways() -> None:
    async def scenario() -> None:
        a, b = Node(1), Node(2)
        async with started(a, b):
            a.send(append(1, 2))
            a.send(vote(1, 2))
            b.send(AppendEntriesResponse(src=2, dst=1, term=1, success=True, match_index=5))
            b.send(RequestVoteResponse(src=2, dst=1, term=1, granted=True))
            await wait_until(lambda: len(a.received) == 2 and len(b.received) == 2)
            assert b.received == [append(1, 2), vote(1, 2)]
            assert a.received == [
                AppendEntriesResponse(src=2, dst=1, term=1, success=True, match_index=5),
                RequestVoteResponse(src=2, dst=1, term=1, granted=True),
            ]
            assert a.transport.stats.messages_sent == 2
            assert a.transport.stats.peers[2].messages_sent == 2
            assert b.transport.stats.peers[1].messages_received == 2
            assert b.transport.stats.bytes_received == a.transport.stats.bytes_sent > 0

    run(scenario)


def test_three_nodes_all_talk_to_all() -> None:
    async def scenario() -> None:
        nodes = [Node(1), Node(2), Node(3)]
        async with started(*nodes):
            for node in nodes:
                for other in nodes:
                    if other is not node:
                        node.send(vote(node.id, other.id, term=node.id))
            await wait_until(lambda: all(len(n.received) == 2 for n in nodes))
            for node in nodes:
                assert sorted(m.src for m in node.received) == sorted(
                    o.id for o in nodes if o is not node
                )
                assert all(m.dst == node.id for m in node.received)

    run(scenario)


def test_messages_sent_in_one_turn_are_written_in_one_batch_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        a, b = Node(1), Node(2)
        async with started(a, b):
            await send_until_received(a, b, vote(1, 2, term=0))
            writes: list[int] = []
            original = asyncio.StreamWriter.write

            def counting_write(self: asyncio.StreamWriter, data: Any) -> None:
                writes.append(len(data))
                original(self, data)

            monkeypatch.setattr(asyncio.StreamWriter, "write", counting_write)
            start = len(b.received)
            for term in range(1, 201):
                a.send(append(1, 2, term=term))
            await wait_until(lambda: len(b.received) == start + 200)
            assert [m.term for m in b.received[start:]] == list(range(1, 201))
            assert len(writes) == 1

    run(scenario)


def test_a_peer_that_starts_later_is_reached_after_back_off() -> None:
    async def scenario() -> None:
        port = free_port()
        a = Node(1, peers={2: (HOST, port)})
        async with started(a, connect=False):
            a.send(vote(1, 2))
            await wait_until(lambda: a.transport.stats.reconnects >= 3)
            b = Node(2, port=port, peers={1: a.address})
            async with started(b, connect=False):
                await wait_until(lambda: b.received == [vote(1, 2)])

    run(scenario)


def test_a_restarted_peer_is_reconnected() -> None:
    async def scenario() -> None:
        a = Node(1)
        async with started(a, connect=False):
            b = Node(2, peers={1: a.address})
            async with started(b, connect=False):
                a.transport.set_peer(2, b.address)
                await send_until_received(a, b, vote(1, 2, term=1))
                port = b.transport.bound_port
            b2 = Node(2, port=port, peers={1: a.address})
            async with started(b2, connect=False):
                await send_until_received(a, b2, vote(1, 2, term=2))
                b2.send(vote(2, 1, term=2))
                await wait_until(lambda: vote(2, 1, term=2) in a.received)
            assert a.transport.stats.peers[2].reconnects >= 1

    run(scenario)


def test_a_node_of_another_cluster_is_refused_and_the_node_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        a, stranger, c = Node(1), Node(2, cluster="other-cluster"), Node(3)
        async with started(a, stranger, c):
            stranger.send(vote(2, 1))
            await wait_until(lambda: a.transport.stats.connections_refused >= 1)
            await wait_until(lambda: stranger.transport.stats.reconnects >= 1)
            await send_until_received(c, a, vote(3, 1))
            assert all(m.src == 3 for m in a.received)

    with caplog.at_level(logging.WARNING, logger=LOG.name):
        run(scenario)
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any("wrong cluster 'other-cluster'" in m and "127.0.0.1:" in m for m in refusals)


def test_an_unknown_node_id_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        a = Node(1)
        async with started(a):
            intruder = Node(9, peers={1: a.address})
            async with started(intruder, connect=False):
                intruder.send(vote(9, 1))
                await wait_until(lambda: a.transport.stats.connections_refused >= 1)
            assert a.received == []

    with caplog.at_level(logging.WARNING, logger=LOG.name):
        run(scenario)
    assert any("unknown node id 9" in r.getMessage() for r in caplog.records)


def test_garbage_and_oversized_frames_close_that_connection_only() -> None:
    async def scenario() -> None:
        a, b = Node(1, frame_bytes_max=1024), Node(2)
        async with started(a, b):
            port = a.transport.bound_port
            # Garbage instead of a hello.
            await assert_closed_by_peer(*await _raw_write(port, b"\x00\x00\x00\x05hello"))
            # An oversized frame header instead of a hello.
            await assert_closed_by_peer(*await _raw_write(port, (10**6).to_bytes(4, "big")))
            # A valid handshake, then a frame that is not a Raft message.
            reader, writer = await raw_hello(port, 2)
            writer.write(encode_frame(b"\xc1not msgpack"))
            await assert_closed_by_peer(reader, writer)
            # A valid handshake, then an oversized frame header.
            reader, writer = await raw_hello(port, 2)
            writer.write((10**6).to_bytes(4, "big") + b"xx")
            await assert_closed_by_peer(reader, writer)

            assert a.transport.stats.frames_dropped_invalid == 3
            assert a.transport.stats.connections_refused == 1
            await send_until_received(b, a, append(2, 1))
            await send_until_received(a, b, vote(1, 2))

    run(scenario)


async def _raw_write(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await raw_connect(port)
    writer.write(data)
    return reader, writer


def test_a_message_with_a_spoofed_source_is_dropped() -> None:
    async def scenario() -> None:
        a = Node(1, peers={2: (HOST, 1), 3: (HOST, 1)})
        async with started(a, connect=False):
            reader, writer = await raw_hello(a.transport.bound_port, 2)
            writer.write(encode_frame(encode_raft_message(vote(3, 1))))
            writer.write(encode_frame(encode_raft_message(vote(2, 1))))
            await wait_until(lambda: len(a.received) == 1)
            assert a.received == [vote(2, 1)]
            assert a.transport.stats.peers[2].messages_dropped_spoofed == 1
            writer.close()
            await writer.wait_closed()
            del reader

    run(scenario)


def test_the_queue_of_an_unreachable_peer_drops_the_oldest_messages() -> None:
    async def scenario() -> None:
        port = free_port()
        a = Node(1, peers={2: (HOST, port)}, queued_messages_max=3)
        async with started(a, connect=False):
            for term in range(1, 11):
                a.send(vote(1, 2, term=term))
            assert a.transport.stats.queue_drops == 7
            assert a.transport.stats.peers[2].queue_drops == 7
            await wait_until(lambda: a.transport.stats.reconnects >= 2)
            b = Node(2, port=port, peers={1: a.address})
            async with started(b, connect=False):
                await wait_until(lambda: len(b.received) == 3)
                assert [m.term for m in b.received] == [8, 9, 10]

    run(scenario)


def test_close_is_idempotent_and_leaves_no_task_behind() -> None:
    async def scenario() -> None:
        a, b = Node(1), Node(2)
        async with started(a, b):
            await send_until_received(a, b, vote(1, 2))
            await send_until_received(b, a, vote(2, 1))
        await a.transport.close()
        await b.transport.close()
        a.send(vote(1, 2))  # after close: dropped, never raises
        assert a.transport.stats.messages_dropped_unroutable == 1
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(scenario)


def test_peers_can_be_removed_and_added_back() -> None:
    async def scenario() -> None:
        a, b = Node(1), Node(2)
        async with started(a, b):
            await send_until_received(a, b, vote(1, 2))
            a.transport.remove_peer(2)
            a.send(vote(1, 2, term=2))
            assert a.transport.stats.messages_dropped_unroutable == 1
            a.transport.set_peer(2, b.address)
            await send_until_received(a, b, vote(1, 2, term=3))
            assert vote(1, 2, term=2) not in b.received

    run(scenario)


def test_the_dialler_closes_a_connection_that_reached_the_wrong_node(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        a, c = Node(1), Node(3)
        async with started(a, c):
            a.transport.set_peer(2, c.address)  # a stale address: node 3 now listens there
            a.send(vote(1, 2))
            await wait_until(lambda: a.transport.stats.peers[2].reconnects >= 2)
            assert c.received == []
            assert a.transport.stats.peers[2].messages_sent == 0

    with caplog.at_level(logging.INFO, logger=LOG.name):
        run(scenario)
    assert any("reached node 3, expected 2" in r.getMessage() for r in caplog.records)
