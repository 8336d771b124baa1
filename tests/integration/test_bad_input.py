"""Real processes: bad input to the API and to the peer port gets a clear error and leaves the
node serving (issue 3, Done when)."""

import socket
import struct
import urllib.request

import msgpack
import pytest

from conclave.client import Client
from conclave.codec import encode_frame
from conclave.runtime.local_cluster import LocalCluster, http_json
from conclave.runtime.settings import parse_address

from .conftest import ClusterFactory

pytestmark = pytest.mark.slow


def _raw(url: str, method: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        content_type, code = error.headers["Content-Type"], error.code
    assert content_type.startswith("application/json")  # every error is JSON with a code
    return int(code)


API_CASES = [
    ("PUT", "/v1/kv/a", b"{not json", 400),
    ("PUT", "/v1/kv/a", b"[1, 2]", 400),
    ("PUT", "/v1/kv/a", b'{"value": 5}', 400),
    ("PUT", "/v1/kv/a", b'{"value": "x", "ttl": 3}', 400),
    ("PUT", "/v1/kv/a", b'{"value": "\\ud800"}', 400),
    ("PUT", "/v1/kv/a", b"\xff\xfe", 400),
    ("PUT", "/v1/kv/a?prev_revision=-1", b'{"value": "x"}', 400),
    ("PUT", "/v1/kv/a?prev_revision=1&prev_value=x", b'{"value": "x"}', 400),
    ("PUT", "/v1/kv/a?bogus=1", b'{"value": "x"}', 400),
    ("PUT", "/v1/kv/_conclave/members/9", b'{"value": "x"}', 400),
    ("PUT", "/v1/kv/" + "k" * 5000, b'{"value": "x"}', 413),
    ("PUT", "/v1/kv/big", b'{"value": "' + b"v" * 2_000_000 + b'"}', 413),
    ("GET", "/v1/kv/a?consistency=eventual", b"", 400),
    ("GET", "/v1/kv?limit=0", b"", 400),
    ("GET", "/v1/watch?from_revision=abc", b"", 400),
    ("POST", "/v1/members", b'{"id": "x"}', 400),
    ("POST", "/v1/members", b'{"id": 4, "peer_address": "nowhere", "api_address": "a:1"}', 400),
    ("DELETE", "/v1/members/abc", b"", 400),
    ("POST", "/v1/leader/transfer", b'{"to": true}', 400),
    ("PATCH", "/v1/kv/a", b"", 405),
    ("GET", "/v2/anything", b"", 404),
]


def test_bad_api_input_gets_4xx_json_and_the_node_keeps_serving(
    make_cluster: ClusterFactory,
) -> None:
    cluster = make_cluster(3)
    cluster.start()
    for node_id in cluster.running():
        for method, path, body, status in API_CASES:
            got = _raw(cluster.url(node_id, path), method, body)
            assert got == status, (node_id, method, path[:40], got)
        got = _raw(
            cluster.url(node_id, "/v1/kv/a"),
            "PUT",
            b'{"value":"x"}',
            {"Conclave-Request-Id": "0/1"},
        )
        assert got == 400
    _assert_serving(cluster)


def _assert_serving(cluster: LocalCluster) -> None:
    with Client(cluster.endpoints, timeout=10.0) as api:
        api.put("still", "serving")
        assert api.get("still").value == "serving"  # type: ignore[union-attr]
    for node_id in cluster.members:
        code, _ = http_json("GET", cluster.url(node_id.id, "/healthz"))
        assert code == 200


def _send_raw(address: tuple[str, int], payload: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(payload)
        sock.settimeout(2)
        try:
            return sock.recv(1024)
        except (TimeoutError, ConnectionResetError):
            return b""


def test_garbage_oversized_frames_and_strangers_on_the_peer_port_are_refused(
    make_cluster: ClusterFactory,
) -> None:
    cluster = make_cluster(3)
    cluster.start()
    leader = cluster.leader()
    for node_id in cluster.running():
        peer = parse_address(cluster.member(node_id).peer_address)
        _send_raw(peer, b"GET / HTTP/1.1\r\n\r\n" + bytes(range(256)))
        _send_raw(peer, struct.pack(">I", 0xFFFFFFF0) + b"x" * 100)  # a 4 GiB frame header
        wrong_cluster = {"magic": "conclave-peer", "version": 1, "cluster": "other", "node": 2}
        assert _send_raw(peer, encode_frame(msgpack.packb(wrong_cluster))) == b""
        stranger = {
            "magic": "conclave-peer",
            "version": 1,
            "cluster": cluster.cluster_id,
            "node": 99,
        }
        assert _send_raw(peer, encode_frame(msgpack.packb(stranger))) == b""
        # A valid hello followed by a frame that is not a Raft message.
        hello = {"magic": "conclave-peer", "version": 1, "cluster": cluster.cluster_id, "node": 2}
        _send_raw(peer, encode_frame(msgpack.packb(hello)) + encode_frame(b"\x93garbage"))
    assert cluster.leader() == leader  # nobody was disturbed enough to lose the leader
    _assert_serving(cluster)
    log = (cluster.data_dir / f"node-{leader}.log").read_text()
    assert "other" in log  # the refusal of the wrong cluster is logged with its reason
