"""Mutual TLS between peers: settings validation, delivery, refusals, the `certs init` command."""

import asyncio
import gc
import logging
import random
import ssl
import stat
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from conclave.cli.certs import certs_app
from conclave.codec import encode_frame
from conclave.consensus.raft import (
    AppendEntriesResponse,
    RaftMessage,
    RequestVote,
)
from conclave.core.effects import Send
from conclave.runtime.tls import (
    TlsConfigError,
    TlsSettings,
    client_context,
    generate_dev_certs,
    server_context,
)
from conclave.runtime.transport import TcpPeerTransport, encode_hello

CLUSTER = "test-cluster"
HOST = "127.0.0.1"
LOG = logging.getLogger("conclave.test.tls")
TIMEOUT = 5.0


# -- helpers (the patterns of test_tcp_transport.py) -------------------------------------------


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


def settings(directory: Path, node_id: int) -> TlsSettings:
    return TlsSettings(
        cert_file=directory / f"node-{node_id}.pem",
        key_file=directory / f"node-{node_id}-key.pem",
        ca_file=directory / "ca.pem",
    )


class Node:
    def __init__(self, node_id: int, tls: TlsSettings | None, **kw: Any) -> None:
        self.received: list[RaftMessage] = []
        self.transport = TcpPeerTransport(
            node_id=node_id,
            cluster_id=CLUSTER,
            host=HOST,
            port=0,
            peers={},
            on_message=self.received.append,
            logger=LOG,
            rng=random.Random(node_id),
            backoff_initial=0.005,
            backoff_max=0.05,
            tls=tls,
            **kw,
        )
        self.id = node_id

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.transport.bound_port)

    def send(self, message: RaftMessage) -> None:
        self.transport.send(Send(to=message.dst, message=message))


@asynccontextmanager
async def started(*nodes: Node) -> AsyncIterator[None]:
    """Start the nodes, close them on exit, and make each a peer of every other."""
    async with AsyncExitStack() as stack:
        for node in nodes:
            await node.transport.start()
            stack.push_async_callback(node.transport.close)
        for node in nodes:
            for other in nodes:
                if other is not node:
                    node.transport.set_peer(other.id, other.address)
        yield


def vote(src: int, dst: int, term: int = 1) -> RequestVote:
    return RequestVote(src=src, dst=dst, term=term, last_log_index=3, last_log_term=1)


async def send_until_received(sender: Node, receiver: Node, message: RaftMessage) -> None:
    """Resend (as Raft would) until the receiver has the message: the first may be lost."""

    async def loop() -> None:
        while message not in receiver.received:
            sender.send(message)
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), TIMEOUT)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA with certificates for nodes 1..3 (generated once: EC keys are cheap, not free)."""
    directory = tmp_path_factory.mktemp("certs")
    generate_dev_certs(directory, [1, 2, 3])
    return directory


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another CA, with certificates for the same node ids."""
    directory = tmp_path_factory.mktemp("other-certs")
    generate_dev_certs(directory, [1, 2, 3])
    return directory


# -- transport --------------------------------------------------------------------------------


def test_two_tls_nodes_exchange_messages_both_ways(certs: Path) -> None:
    async def scenario() -> None:
        a, b = Node(1, settings(certs, 1)), Node(2, settings(certs, 2))
        reply = AppendEntriesResponse(src=2, dst=1, term=1, success=True, match_index=5)
        async with started(a, b):
            # Queued before any connection exists: delivered once TLS and hello are done.
            a.send(vote(1, 2))
            a.send(vote(1, 2, term=2))
            b.send(reply)
            await wait_until(lambda: len(a.received) == 1 and len(b.received) == 2)
            assert b.received == [vote(1, 2), vote(1, 2, term=2)]
            assert a.received == [reply]
            assert b.transport.stats.bytes_received == a.transport.stats.bytes_sent > 0
            assert a.transport.stats.tls_handshake_failures == 0
            assert b.transport.stats.tls_handshake_failures == 0

    run(scenario)


def test_a_node_with_a_certificate_of_another_ca_is_refused_and_the_server_keeps_serving(
    certs: Path, other_certs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        a = Node(1, settings(certs, 1))
        stranger = Node(2, settings(other_certs, 2))
        good = Node(3, settings(certs, 3))
        async with started(a, stranger, good):
            stranger.send(vote(2, 1))
            await wait_until(lambda: a.transport.stats.tls_handshake_failures >= 1)
            await wait_until(lambda: stranger.transport.stats.peers[1].tls_handshake_failures >= 1)
            await send_until_received(good, a, vote(3, 1))
            await send_until_received(a, good, vote(1, 3))
            assert all(m.src == 3 for m in a.received)
            assert stranger.received == []
            assert a.transport.stats.peers[2].messages_received == 0

    with caplog.at_level(logging.WARNING, logger=LOG.name):
        run(scenario)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("TLS handshake failed" in m and "127.0.0.1:" in m for m in messages)


def test_a_plain_tcp_peer_dialling_a_tls_port_is_refused_without_harm(
    certs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        a, good = Node(1, settings(certs, 1)), Node(3, settings(certs, 3))
        plain = Node(2, None)
        async with started(a, plain, good):
            plain.send(vote(2, 1))
            await wait_until(lambda: a.transport.stats.tls_handshake_failures >= 1)
            await wait_until(lambda: plain.transport.stats.peers[1].reconnects >= 1)
            # A raw client that sends a hello frame instead of a TLS ClientHello.
            reader, writer = await asyncio.open_connection(HOST, a.transport.bound_port)
            writer.write(encode_frame(encode_hello(CLUSTER, 2)))
            with suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()
            await send_until_received(good, a, vote(3, 1))
            assert all(m.src == 3 for m in a.received)
            assert a.transport.stats.frames_dropped_invalid == 0

    with caplog.at_level(logging.WARNING, logger=LOG.name):
        run(scenario)
    assert any("TLS handshake failed" in r.getMessage() for r in caplog.records)


def test_a_tls_dialler_reaching_a_plain_port_fails_and_counts(certs: Path) -> None:
    async def scenario() -> None:
        a, plain = Node(1, settings(certs, 1)), Node(2, None)
        async with started(a, plain):
            a.send(vote(1, 2))
            await wait_until(lambda: a.transport.stats.peers[2].tls_handshake_failures >= 2)
            assert a.transport.stats.peers[2].reconnects >= 2
            assert plain.received == []

    run(scenario)


def test_close_during_pending_tls_handshakes_leaves_nothing_behind(certs: Path) -> None:
    async def scenario() -> None:
        a = Node(1, settings(certs, 1))
        async with started(a):
            # Raw TCP clients that never start TLS: their handshakes are still pending.
            clients = [await asyncio.open_connection(*a.address) for _ in range(3)]
            await asyncio.sleep(0.05)
        with pytest.raises(RuntimeError, match="not listening"):
            _ = a.transport.bound_port
        for reader, writer in clients:
            with suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()
        assert a.transport.stats.tls_handshake_failures == 0  # closing is no failure
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(scenario)


# -- settings and contexts --------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["cert_file", "key_file", "ca_file"])
def test_settings_with_a_missing_file_name_it(certs: Path, tmp_path: Path, missing: str) -> None:
    files = {"cert_file": certs / "node-1.pem", "key_file": certs / "node-1-key.pem"}
    files["ca_file"] = certs / "ca.pem"
    files[missing] = tmp_path / "nowhere.pem"
    with pytest.raises(TlsConfigError, match=r"nowhere\.pem does not exist"):
        TlsSettings(**files)


def test_settings_refuse_garbage_and_a_key_of_another_certificate(
    certs: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(TlsConfigError, match=r"garbage\.pem holds no valid PEM certificate"):
        TlsSettings(garbage, certs / "node-1-key.pem", certs / "ca.pem")
    with pytest.raises(TlsConfigError, match=r"garbage\.pem holds no unencrypted PEM private"):
        TlsSettings(certs / "node-1.pem", garbage, certs / "ca.pem")
    with pytest.raises(TlsConfigError, match=r"node-2-key\.pem does not match .*node-1\.pem"):
        TlsSettings(certs / "node-1.pem", certs / "node-2-key.pem", certs / "ca.pem")
    with pytest.raises(TlsConfigError, match=r"is not a regular file"):
        TlsSettings(certs / "node-1.pem", certs / "node-1-key.pem", tmp_path)


def test_contexts_require_tls_1_2_and_mutual_verification(certs: Path) -> None:
    tls = settings(certs, 1)
    server, client = server_context(tls), client_context(tls)
    assert server.verify_mode == client.verify_mode == ssl.CERT_REQUIRED
    assert client.check_hostname
    assert server.minimum_version == client.minimum_version == ssl.TLSVersion.TLSv1_2


def test_node_certificates_name_the_node_and_carry_both_usages(tmp_path: Path) -> None:
    generate_dev_certs(tmp_path, [1, 2], hosts=["10.0.0.7", "node.example", "localhost"], days=7)
    cert = x509.load_pem_x509_certificate((tmp_path / "node-2.pem").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "conclave-node-2"
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "10.0.0.7",
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "node.example"]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 7 * 86400 <= lifetime.total_seconds() <= 7 * 86400 + 3600


# -- the `certs init` command -----------------------------------------------------------------


def test_certs_init_writes_the_files_with_private_keys_0600(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    result = CliRunner().invoke(certs_app, ["init", "--dir", str(directory), "--nodes", "2"])
    assert result.exit_code == 0, result.output
    expected = ["ca.pem", "ca-key.pem", "node-1.pem", "node-1-key.pem"]
    expected += ["node-2.pem", "node-2-key.pem"]
    assert sorted(p.name for p in directory.iterdir()) == sorted(expected)
    for name in expected:
        assert f"wrote {directory / name}" in result.output
        mode = stat.S_IMODE((directory / name).stat().st_mode)
        if name.endswith("-key.pem"):
            assert mode == 0o600, name
        else:
            assert mode & 0o600 == 0o600, name  # public: the umask decides the rest
    assert f"--tls-cert {directory / 'node-1.pem'}" in result.output
    assert f"--tls-ca {directory / 'ca.pem'}" in result.output
    settings(directory, 2)  # what it wrote loads


def test_certs_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["init", "--dir", str(tmp_path), "--nodes", "1"]
    assert runner.invoke(certs_app, args).exit_code == 0
    key = tmp_path / "node-1-key.pem"
    before = key.read_bytes()
    key.chmod(0o644)

    refused = runner.invoke(certs_app, args)
    assert refused.exit_code == 1
    assert "refusing to overwrite" in refused.output
    assert "--force" in refused.output
    assert key.read_bytes() == before

    forced = runner.invoke(certs_app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert key.read_bytes() != before
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_client_certificate_of_another_ca_or_none_is_refused_by_the_server(
    certs: Path, other_certs: Path
) -> None:
    async def scenario() -> None:
        # Trusts the right CA, so it accepts the server; presents a certificate of another CA.
        impostor_tls = TlsSettings(
            other_certs / "node-2.pem", other_certs / "node-2-key.pem", certs / "ca.pem"
        )
        a, impostor, good = (
            Node(1, settings(certs, 1)),
            Node(2, impostor_tls),
            Node(3, settings(certs, 3)),
        )
        async with started(a, impostor, good):
            impostor.send(vote(2, 1))
            await wait_until(lambda: a.transport.stats.tls_handshake_failures >= 1)
            # Under TLS 1.3 the dialler only sees the connection close (see the module rules).
            await wait_until(lambda: impostor.transport.stats.peers[1].reconnects >= 1)
            # A TLS client with no certificate at all.
            anonymous = ssl.create_default_context(cafile=certs / "ca.pem")
            failures = a.transport.stats.tls_handshake_failures
            with suppress(OSError):
                reader, writer = await asyncio.open_connection(
                    HOST, a.transport.bound_port, ssl=anonymous, server_hostname=HOST
                )
                try:
                    writer.write(encode_frame(encode_hello(CLUSTER, 2)))
                    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
                finally:
                    writer.close()
                    with suppress(OSError):
                        await writer.wait_closed()
            await wait_until(lambda: a.transport.stats.tls_handshake_failures > failures)
            await send_until_received(good, a, vote(3, 1))
            assert all(m.src == 3 for m in a.received)

    run(scenario)
