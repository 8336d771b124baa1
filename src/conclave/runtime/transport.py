"""The asyncio peer transport: Raft messages between nodes over TCP (DESIGN.md section 5).

Rules:

- Framing: every frame is `conclave.codec.encode_frame` (4-byte big-endian length, payload);
  a payload is one `encode_raft_message`. Frames longer than `frame_bytes_max` are refused
  from their header alone.
- Connections are one-way: each node dials every peer it sends to and only writes on that
  connection; it only reads on connections it accepted. A pair of nodes uses two connections.
- Handshake: the dialling side's first frame is a hello, a msgpack map
  `{"magic": "conclave-peer", "version": 1, "cluster": <cluster id>, "node": <sender id>}`.
  The accepting side refuses (logs a warning naming the remote address and the reason,
  counts `connections_refused`, closes) a hello with the wrong magic, version or cluster, or
  from a node not in its peers; otherwise it replies with its own hello. The dialler checks
  that reply (same magic, version, cluster, and the node it meant to reach) or closes and
  backs off. Inbound messages whose `src` is not the handshake's node are dropped and counted.
- Sending never blocks and never raises: `send` appends to a per-peer queue bounded by
  `queued_messages_max` (the oldest message is dropped beyond it, counted in `queue_drops`).
  Raft copes with any loss.
- Batching: a per-peer writer task takes everything queued since it last ran (one loop turn)
  and writes it with one `writer.write` of concatenated frames and one `drain()`.
- Back-off: a failed connect, handshake or write is retried after
  `min(backoff_max, backoff_initial * 2**failures)` seconds scaled by a jitter factor in
  [0.5, 1) from the injected `random.Random`. Messages in flight on a lost connection may be
  lost; messages still queued are sent on the next connection.
- TLS (optional, `tls=TlsSettings(...)`): mutual TLS >= 1.2 against the cluster CA (see
  `conclave.runtime.tls`). The listener accepts raw sockets itself and runs each handshake with
  `loop.connect_accepted_socket(ssl=...)`, which raises on failure: `start_server(ssl=...)`
  drops a failed handshake silently, and upgrading an accepted stream with `start_tls` may
  lose the client's first bytes to the plain stream (uvloop starts reading at once). This
  needs a loop with `add_reader` (selector loops, uvloop). The dialler connects TCP, then
  upgrades with `StreamWriter.start_tls(server_hostname=<host of the peer address>)`, which
  the peer's certificate must name (subjectAltName). A TLS failure (wrong
  CA, no client certificate, a plain-TCP client on a TLS port, no handshake within
  `handshake_timeout`) closes that connection only, is logged as a warning and counted in
  `tls_handshake_failures` (accepting side: totals only, the peer is unknown before the hello;
  dialling side: also per peer, for a failed TLS step or any later `ssl.SSLError`). Under
  TLS 1.3 the dialler's handshake completes before the server has checked its certificate: a
  refused client certificate reaches the dialler only as the connection closing during the
  hello exchange, so it is counted by the accepting side alone (the dialler counts a
  `reconnect`). The hello handshake then runs inside TLS unchanged: TLS proves membership of the
  cluster CA, the hello still names the node.
- Failure isolation: a malformed frame (`CodecError`), an oversized frame
  (`FrameTooLargeError`) or any garbage closes that connection only (logged, counted in
  `frames_dropped_invalid`); the server, the other connections and the node keep running.
"""

import asyncio
import contextlib
import functools
import logging
import random
import socket
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import msgpack

from conclave.codec import (
    FRAME_BYTES_MAX_DEFAULT,
    CodecError,
    FrameDecoder,
    decode_raft_message,
    encode_frame,
    encode_raft_message,
)
from conclave.consensus.raft import RaftMessage
from conclave.core.effects import Send
from conclave.core.ids import NodeId
from conclave.runtime.tls import TlsSettings, client_context, server_context

HELLO_MAGIC: Final = "conclave-peer"
PROTOCOL_VERSION: Final = 1
_READ_CHUNK: Final = 64 * 1024
_FRAME_HEADER_BYTES: Final = 4
_ACCEPT_SETTLE_TURNS: Final = 4
_LISTEN_BACKLOG: Final = 100  # as asyncio.start_server
_ACCEPTS_PER_WAKEUP: Final = 100  # bounded: accepting must not starve the other tasks
_ACCEPT_RETRY_DELAY: Final = 1.0  # after e.g. EMFILE, as asyncio's own servers do

Address = tuple[str, int]
MessageCallback = Callable[[RaftMessage], None]


@dataclass(slots=True)
class PeerStats:
    """Counters for the traffic with one peer (both directions)."""

    messages_sent: int = 0
    bytes_sent: int = 0
    queue_drops: int = 0
    reconnects: int = 0  # failed or lost outbound connections (each is followed by back-off)
    messages_received: int = 0
    bytes_received: int = 0
    messages_dropped_spoofed: int = 0
    tls_handshake_failures: int = 0  # outbound TLS failures (also counted in `reconnects`)


@dataclass(slots=True)
class TransportStats:
    """Totals over all peers, plus per-peer counters in `peers`."""

    messages_sent: int = 0
    bytes_sent: int = 0
    queue_drops: int = 0
    reconnects: int = 0
    messages_received: int = 0
    bytes_received: int = 0
    messages_dropped_spoofed: int = 0
    messages_dropped_unroutable: int = 0  # unknown destination, transport closed, too large
    frames_dropped_invalid: int = 0
    connections_refused: int = 0
    tls_handshake_failures: int = 0  # inbound (unknown peer) plus outbound; see module docstring
    peers: dict[NodeId, PeerStats] = field(default_factory=dict)

    def count(self, peer: NodeId, name: str, amount: int = 1) -> None:
        """Add `amount` to counter `name`, in the totals and for `peer`."""
        setattr(self, name, getattr(self, name) + amount)
        per_peer = self.peers.setdefault(peer, PeerStats())
        setattr(per_peer, name, getattr(per_peer, name) + amount)


class HandshakeError(CodecError):
    """A hello is malformed or names another protocol, cluster or node."""


class _TlsHandshakeError(OSError):
    """The dialler's TLS handshake failed (the cause is chained)."""


def encode_hello(cluster_id: str, node_id: NodeId) -> bytes:
    """The payload of a hello frame."""
    packed: bytes = msgpack.packb(
        {"magic": HELLO_MAGIC, "version": PROTOCOL_VERSION, "cluster": cluster_id, "node": node_id},
        use_bin_type=True,
    )
    return packed


def decode_hello(data: bytes, cluster_id: str) -> NodeId:
    """Validate a hello for `cluster_id`; return the sender's node id or raise HandshakeError."""
    try:
        hello = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, TypeError) as error:
        raise HandshakeError(f"malformed hello: {error}") from error
    if not isinstance(hello, dict):
        raise HandshakeError("malformed hello: not a map")
    if hello.get("magic") != HELLO_MAGIC:
        raise HandshakeError(f"wrong magic {hello.get('magic')!r:.40}")
    if hello.get("version") != PROTOCOL_VERSION:
        raise HandshakeError(f"unsupported protocol version {hello.get('version')!r:.20}")
    if hello.get("cluster") != cluster_id:
        raise HandshakeError(
            f"wrong cluster {hello.get('cluster')!r:.80} (expected {cluster_id!r})"
        )
    node = hello.get("node")
    if not isinstance(node, int) or isinstance(node, bool) or node < 1:
        raise HandshakeError(f"invalid node id {node!r:.20}")
    return node


class _FrameReader:
    """Reads whole frames from a stream."""

    def __init__(self, reader: asyncio.StreamReader, frame_bytes_max: int) -> None:
        self._reader = reader
        self._decoder = FrameDecoder(frame_bytes_max)
        self._pending: deque[bytes] = deque()

    async def next_frame(self) -> bytes | None:
        """The next frame, or None at end of stream. Raises CodecError for a bad stream."""
        while not self._pending:
            data = await self._reader.read(_READ_CHUNK)
            if not data:
                return None
            self._pending.extend(self._decoder.feed(data))
        return self._pending.popleft()


@dataclass(slots=True, eq=False)
class _Peer:
    node_id: NodeId
    address: Address
    queue: deque[RaftMessage] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: "asyncio.Task[None] | None" = None
    failures: int = 0  # consecutive failed connections, reset by a successful handshake


@dataclass(slots=True, eq=False)
class _Inbound:
    writer: asyncio.StreamWriter
    node: NodeId | None = None  # known once the handshake succeeded


@dataclass(slots=True, eq=False)
class _TlsHandshake:
    sock: socket.socket
    remote: str
    handed_over: bool = False  # the socket belongs to a transport: not ours to close


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


class TcpPeerTransport:
    """Implements the `Transport[RaftMessage]` port over TCP; see the module docstring."""

    def __init__(
        self,
        *,
        node_id: NodeId,
        cluster_id: str,
        host: str,
        port: int,
        peers: Mapping[NodeId, Address],
        on_message: MessageCallback,
        logger: logging.Logger,
        rng: random.Random,
        frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
        queued_messages_max: int = 1024,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        connect_timeout: float = 5.0,
        handshake_timeout: float = 5.0,
        tls: TlsSettings | None = None,
    ) -> None:
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.stats = TransportStats()
        self._host = host
        self._port = port
        self._on_message = on_message
        self._log = logger
        self._rng = rng
        self._frame_bytes_max = frame_bytes_max
        self._queued_messages_max = queued_messages_max
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._connect_timeout = connect_timeout
        self._handshake_timeout = handshake_timeout
        # Built here, not in start(): a certificate that does not load stops the node at once.
        self._server_ssl = server_context(tls) if tls is not None else None
        self._client_ssl = client_context(tls) if tls is not None else None
        self._peers: dict[NodeId, _Peer] = {
            peer: _Peer(peer, address) for peer, address in peers.items()
        }
        for peer_id in self._peers:
            self.stats.peers[peer_id] = PeerStats()
        self._server: asyncio.Server | None = None  # without TLS
        self._listeners: list[socket.socket] = []  # with TLS, see `_listen_tls`
        self._handshakes: set[asyncio.Task[None]] = set()
        self._inbound: dict[asyncio.Task[None], _Inbound] = {}
        self._retired: set[asyncio.Task[None]] = set()  # cancelled writers, awaited by close
        self._started = False
        self._closed = False

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, and start one writer task per peer."""
        if self._started:
            raise RuntimeError("transport already started")
        self._started = True
        if self._server_ssl is None:
            self._server = await asyncio.start_server(self._accept, self._host, self._port)
        else:
            await self._listen_tls()
        for peer in self._peers.values():
            self._start_writer(peer)

    @property
    def bound_port(self) -> int:
        """The port actually listened on (useful with port 0)."""
        sockets = list(self._server.sockets) if self._server is not None else self._listeners
        if not sockets:
            raise RuntimeError("transport not listening")
        port: int = sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        """Stop listening, close every connection, cancel every task. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            # Stop accepting, then let accepts already under way reach `_accept` (which now
            # closes them) before closing the server: Python 3.11 leaks the socket of an accept
            # still in progress when `Server.close()` runs.
            loop = asyncio.get_running_loop()
            for sock in self._server.sockets:
                with contextlib.suppress(NotImplementedError):
                    loop.remove_reader(sock.fileno())
            for _ in range(_ACCEPT_SETTLE_TURNS):
                await asyncio.sleep(0)
            self._server.close()
        self._stop_listening_tls()
        tasks = [peer.task for peer in self._peers.values() if peer.task is not None]
        tasks.extend(self._inbound)
        tasks.extend(self._retired)
        tasks.extend(self._handshakes)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for inbound in self._inbound.values():  # a task cancelled before it ran closed nothing
            inbound.writer.close()
        self._inbound.clear()
        if self._server is not None:
            await self._server.wait_closed()
        for peer in self._peers.values():
            peer.task = None
            peer.queue.clear()

    # -- membership ---------------------------------------------------------------------------

    def set_peer(self, node_id: NodeId, address: Address) -> None:
        """Add a peer or change its address (reconnects; queued messages are kept)."""
        peer = self._peers.get(node_id)
        if peer is not None and peer.address == address:
            return
        if peer is None:
            peer = self._peers[node_id] = _Peer(node_id, address)
            self.stats.peers.setdefault(node_id, PeerStats())
        else:
            peer.address = address
            if peer.task is not None:
                self._retire(peer.task)
                peer.task = None
        if self._started and not self._closed:
            self._start_writer(peer)

    def remove_peer(self, node_id: NodeId) -> None:
        """Forget a peer: drop its queue, close its outbound and inbound connections."""
        peer = self._peers.pop(node_id, None)
        if peer is not None and peer.task is not None:
            self._retire(peer.task)
        for task, inbound in self._inbound.items():
            if inbound.node == node_id:
                task.cancel()

    def _retire(self, task: "asyncio.Task[None]") -> None:
        task.cancel()
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    # -- outbound -----------------------------------------------------------------------------

    def send(self, envelope: Send[RaftMessage]) -> None:
        """Queue a message for its peer; never blocks, never raises."""
        peer = self._peers.get(envelope.to)
        if peer is None or self._closed:
            self.stats.messages_dropped_unroutable += 1
            return
        if len(peer.queue) >= self._queued_messages_max:
            peer.queue.popleft()
            self.stats.count(peer.node_id, "queue_drops")
        peer.queue.append(envelope.message)
        peer.wakeup.set()

    def _start_writer(self, peer: _Peer) -> None:
        peer.task = asyncio.get_running_loop().create_task(
            self._run_writer(peer), name=f"conclave-peer-writer-{self.node_id}->{peer.node_id}"
        )

    def _backoff_delay(self, failures: int) -> float:
        base: float = min(self._backoff_max, self._backoff_initial * 2.0 ** min(failures, 32))
        return base * (0.5 + 0.5 * self._rng.random())

    async def _run_writer(self, peer: _Peer) -> None:
        while not self._closed and peer.task is asyncio.current_task():
            if not peer.queue:
                await peer.wakeup.wait()  # connect only when there is something to send
            try:
                await self._connect_and_write(peer)
            except (_TlsHandshakeError, ssl.SSLError) as error:  # OSErrors: caught first
                self.stats.count(peer.node_id, "tls_handshake_failures")
                self._log.warning(
                    "peer %d at %s:%d: TLS failure: %s",
                    peer.node_id,
                    *peer.address,
                    str(error) or type(error).__name__,
                )
            except (OSError, EOFError, TimeoutError, CodecError) as error:
                self._log.info(
                    "peer %d at %s:%d: connection failed or lost: %s",
                    peer.node_id,
                    *peer.address,
                    error or type(error).__name__,
                )
            self.stats.count(peer.node_id, "reconnects")
            await asyncio.sleep(self._backoff_delay(peer.failures))
            peer.failures += 1

    async def _connect_and_write(self, peer: _Peer) -> None:
        host, port = peer.address
        # asyncio.timeout, not wait_for: wait_for of Python 3.11 may swallow a cancellation.
        async with asyncio.timeout(self._connect_timeout):
            reader, writer = await asyncio.open_connection(host, port)
        if self._client_ssl is not None:
            await self._start_client_tls(host, writer)  # on failure, closes the connection
        try:
            writer.write(encode_frame(encode_hello(self.cluster_id, self.node_id)))
            await writer.drain()
            frames = _FrameReader(reader, self._frame_bytes_max)
            async with asyncio.timeout(self._handshake_timeout):
                reply = await frames.next_frame()
            if reply is None:
                raise EOFError(
                    "peer closed the connection during the handshake"
                    # TLS 1.3: how a server's refusal of our certificate looks from here.
                    + (" (did it refuse our TLS certificate?)" if self._client_ssl else "")
                )
            remote = decode_hello(reply, self.cluster_id)
            if remote != peer.node_id:
                raise HandshakeError(f"reached node {remote}, expected {peer.node_id}")
            self._log.debug("peer %d at %s:%d: connected", peer.node_id, host, port)
            peer.failures = 0
            await self._write_batches(peer, reader, writer)
        finally:
            await _close_writer(writer)

    async def _start_client_tls(self, host: str, writer: asyncio.StreamWriter) -> None:
        # TCP first, then TLS on it (not `open_connection(ssl=...)`): a failure of this step,
        # even a plain reset by a peer that does not speak TLS, is then known to be TLS's.
        assert self._client_ssl is not None
        try:
            # server_hostname: the peer's certificate must name the host we dial.
            await writer.start_tls(
                self._client_ssl,
                server_hostname=host,
                ssl_handshake_timeout=self._handshake_timeout,
            )
        except (OSError, EOFError) as error:
            writer.transport.abort()  # see below
            raise _TlsHandshakeError(str(error) or type(error).__name__) from error
        except asyncio.CancelledError:
            # A connection lost in mid-handshake is never reported to the stream's protocol,
            # so `wait_closed()` would never return (Python 3.11): abort, never wait.
            writer.transport.abort()
            raise

    async def _write_batches(
        self, peer: _Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # The acceptor never writes after its hello: any read completing means the end.
        watcher = asyncio.get_running_loop().create_task(reader.read(1))
        watcher.add_done_callback(lambda _: peer.wakeup.set())
        try:
            while True:
                await peer.wakeup.wait()
                peer.wakeup.clear()
                if watcher.done():
                    raise EOFError("peer closed the connection")
                batch = self._encode_batch(peer)
                if not batch:
                    continue
                payload = b"".join(batch)
                writer.write(payload)
                await writer.drain()
                self.stats.count(peer.node_id, "messages_sent", len(batch))
                self.stats.count(peer.node_id, "bytes_sent", len(payload))
        finally:
            watcher.cancel()
            await asyncio.wait([watcher])  # unlike `await watcher`, never eats our cancellation
            if not watcher.cancelled():
                watcher.exception()  # retrieved: a reset connection is not worth a log line

    def _encode_batch(self, peer: _Peer) -> list[bytes]:
        batch: list[bytes] = []
        while peer.queue:
            message = peer.queue.popleft()
            try:
                batch.append(encode_frame(encode_raft_message(message), self._frame_bytes_max))
            except CodecError as error:
                self.stats.messages_dropped_unroutable += 1
                self._log.error("peer %d: dropping unsendable message: %s", peer.node_id, error)
        return batch

    # -- TLS listener -------------------------------------------------------------------------

    async def _listen_tls(self) -> None:
        """Bind every address of the host (as start_server does); accept via `add_reader`."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            self._host or None, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        try:
            for family, _, _, _, address in dict.fromkeys(infos):
                listener = socket.create_server(address, family=family, backlog=_LISTEN_BACKLOG)
                self._listeners.append(listener)
                listener.setblocking(False)
                loop.add_reader(listener.fileno(), self._accept_tls, listener)
        except (OSError, NotImplementedError):  # NotImplementedError: a loop without add_reader
            self._stop_listening_tls()
            raise

    def _stop_listening_tls(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            with contextlib.suppress(NotImplementedError):
                loop.remove_reader(listener.fileno())
            listener.close()
        self._listeners.clear()

    def _accept_tls(self, listener: socket.socket) -> None:
        # Synchronous accept: an accepted socket is owned by a tracked handshake at once, so
        # closing the transport can never strand one (as a cancelled `sock_accept` could).
        loop = asyncio.get_running_loop()
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. out of file descriptors: pause, keep the backlog
                self._log.error("accepting a peer connection failed: %s", error)
                loop.remove_reader(listener.fileno())
                loop.call_later(_ACCEPT_RETRY_DELAY, self._resume_accepting_tls, listener)
                return
            sock.setblocking(False)
            handshake = _TlsHandshake(sock, f"{address[0]}:{address[1]}")
            task = loop.create_task(self._handshake_tls(handshake))
            self._handshakes.add(task)
            task.add_done_callback(functools.partial(self._handshake_done, handshake))

    def _resume_accepting_tls(self, listener: socket.socket) -> None:
        if listener in self._listeners:  # not closed meanwhile
            asyncio.get_running_loop().add_reader(listener.fileno(), self._accept_tls, listener)

    async def _handshake_tls(self, handshake: _TlsHandshake) -> None:
        assert self._server_ssl is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            # ssl_handshake_timeout: a client that never speaks TLS is dropped in time.
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol,
                handshake.sock,
                ssl=self._server_ssl,
                ssl_handshake_timeout=self._handshake_timeout,
            )
        except (OSError, EOFError) as error:  # ssl.SSLError, reset, handshake timeout
            self.stats.tls_handshake_failures += 1
            self._log.warning(
                "refused peer connection from %s: TLS handshake failed: %s",
                handshake.remote,
                str(error) or type(error).__name__,
            )
            return
        handshake.handed_over = True
        self._accept(reader, asyncio.StreamWriter(transport, protocol, reader, loop))

    def _handshake_done(self, handshake: _TlsHandshake, task: "asyncio.Task[None]") -> None:
        # Also runs for a task cancelled before it started, which never saw its socket.
        self._handshakes.discard(task)
        if not handshake.handed_over:
            handshake.sock.close()

    # -- inbound ------------------------------------------------------------------------------

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback (not a coroutine): the connection is tracked from its first moment.
        if self._closed:
            writer.close()
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._inbound[task] = _Inbound(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        host, port = writer.get_extra_info("peername", ("?", "?"))[:2]
        remote = f"{host}:{port}"
        try:
            await self._serve_connection(task, remote, reader, writer)
        except (OSError, EOFError) as error:
            self._log.info("inbound connection from %s lost: %s", remote, error)
        finally:
            self._inbound.pop(task, None)
            await _close_writer(writer)

    async def _serve_connection(
        self,
        task: "asyncio.Task[None]",
        remote: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        frames = _FrameReader(reader, self._frame_bytes_max)
        try:
            async with asyncio.timeout(self._handshake_timeout):
                hello = await frames.next_frame()
            if hello is None:
                return
            node = decode_hello(hello, self.cluster_id)
            if node not in self._peers:
                raise HandshakeError(f"unknown node id {node}")
        except HandshakeError as error:
            self.stats.connections_refused += 1
            self._log.warning("refused peer connection from %s: %s", remote, error)
            return
        except TimeoutError:
            self.stats.connections_refused += 1
            self._log.warning("refused peer connection from %s: no hello in time", remote)
            return
        except CodecError as error:
            self.stats.frames_dropped_invalid += 1
            self._log.warning("closing connection from %s: invalid frame: %s", remote, error)
            return
        self._inbound[task].node = node
        writer.write(encode_frame(encode_hello(self.cluster_id, self.node_id)))
        await writer.drain()
        try:
            while (frame := await frames.next_frame()) is not None:
                self.stats.count(node, "bytes_received", len(frame) + _FRAME_HEADER_BYTES)
                message = decode_raft_message(frame)
                if message.src != node:
                    self.stats.count(node, "messages_dropped_spoofed")
                    self._log.warning(
                        "dropped message from %s (node %d) claiming src %d",
                        remote,
                        node,
                        message.src,
                    )
                    continue
                self.stats.count(node, "messages_received")
                self._on_message(message)
        except CodecError as error:
            self.stats.frames_dropped_invalid += 1
            self._log.warning(
                "closing connection from %s (node %d): invalid frame: %s", remote, node, error
            )


__all__ = [
    "HELLO_MAGIC",
    "PROTOCOL_VERSION",
    "HandshakeError",
    "PeerStats",
    "TcpPeerTransport",
    "TransportStats",
    "decode_hello",
    "encode_hello",
]
