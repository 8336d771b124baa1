"""Settings of one real node, validated once at start (issue 3, item 5).

Rules:
- `NodeSettings` is complete and valid when constructed: `__post_init__` collects every problem
  and raises one `SettingsError` listing them all, so a user fixes a configuration in one go.
- Addresses are `host:port` text; `parse_address` is the only parser. IPv6 hosts are written in
  brackets (`[::1]:7001`).
- `members` is the initial cluster (ids with their peer and API addresses). A node that is not
  joining must find itself in it; a joining node finds the current members there (it needs
  their addresses to accept their connections before the member directory reaches it).
- Durations are seconds (floats) for the shell and ticks for the core; `tick_interval_ms`
  converts one into the other.
"""

from dataclasses import dataclass, field
from pathlib import Path

from conclave.apps.kv import KVSettings
from conclave.core.ids import NodeId
from conclave.runtime.tls import TlsSettings

Address = tuple[str, int]


class SettingsError(ValueError):
    """A configuration that cannot run; the message lists every problem."""


def parse_address(text: str) -> Address:
    """Parse `host:port` (`[v6]:port` for IPv6); raise ValueError with the reason."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"address {text!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"address {text!r} has no valid port (1-65535)")
    return host, int(port_text)


def format_address(address: Address) -> str:
    """The inverse of `parse_address`."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberAddress:
    """Where a member listens: the peer port (Raft traffic) and the HTTP API."""

    id: NodeId
    peer_address: str
    api_address: str

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id <= 0:
            raise ValueError(f"member id must be a positive integer, got {self.id!r}")
        parse_address(self.peer_address)
        parse_address(self.api_address)

    @classmethod
    def parse(cls, text: str) -> "MemberAddress":
        """Parse `ID=PEER_HOST:PORT,API_HOST:PORT`, e.g. `1=127.0.0.1:7101,127.0.0.1:7001`."""
        id_text, sep, rest = text.strip().partition("=")
        peer, comma, api = rest.partition(",")
        if not sep or not comma or not id_text.strip().isdigit():
            raise ValueError(f"member {text!r} is not ID=PEER_HOST:PORT,API_HOST:PORT")
        return cls(id=int(id_text), peer_address=peer.strip(), api_address=api.strip())

    def describe(self) -> str:
        return f"{self.id}={self.peer_address},{self.api_address}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSettings:
    """Everything one node needs; see the module docstring for the rules."""

    node_id: NodeId
    data_dir: Path
    members: tuple[MemberAddress, ...]
    cluster_id: str = "conclave"
    join: bool = False
    # Where to listen; default: this node's own addresses in `members`.
    peer_listen: str | None = None
    api_listen: str | None = None
    tick_interval_ms: int = 50
    election_timeout_ticks_min: int = 10
    election_timeout_ticks_max: int = 20
    heartbeat_interval_ticks: int = 2
    snapshot_entries: int = 10_000  # compact once this many entries are applied past the last
    request_timeout_seconds: float = 5.0
    member_catch_up_timeout_seconds: float = 60.0
    forward_to_leader: bool = True
    body_bytes_max: int = 1_200_000
    watch_history_events_max: int = 10_000
    watch_queue_events_max: int = 10_000
    tls: TlsSettings | None = None
    fsync: bool = True  # False: NOT durable (benchmarks only); a machine crash may lose writes
    # API tokens of the decision endpoints: (token, principal). Admins may declare kinds.
    tokens: tuple[tuple[str, str], ...] = ()
    admins: tuple[str, ...] = ()
    kv: KVSettings = field(default_factory=KVSettings)
    # Alerts evaluated inside the node (conclave.observability.alerts; docs/http-api.md).
    alert_interval_seconds: float = 1.0
    alert_no_leader_seconds: float = 5.0
    alert_leader_changes_max: int = 3
    alert_leader_changes_window_seconds: float = 900.0
    alert_fsync_p99_seconds: float = 0.5
    alert_fsync_window_seconds: float = 60.0
    alert_follower_lag_entries_max: int = 1000
    alert_conflicts_per_minute_max: int = 10
    alert_stuck_proposal_grace_seconds: float = 5.0
    alert_stuck_proposal_window_seconds: float = 900.0
    alert_webhook_url: str | None = None  # POSTed a JSON body when an alert fires or resolves
    alert_webhook_timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise SettingsError("invalid settings:\n  - " + "\n  - ".join(problems))

    def _problems(self) -> list[str]:
        out: list[str] = []
        if self.node_id <= 0:
            out.append(f"node id must be positive, got {self.node_id}")
        ids = [m.id for m in self.members]
        if len(set(ids)) != len(ids):
            out.append(f"member ids repeat: {sorted(ids)}")
        if not self.join and self.node_id not in ids:
            out.append(f"node {self.node_id} is not among the members {sorted(ids)}")
        if self.join and self.node_id not in ids and self.peer_listen is None:
            out.append("a joining node needs its own member entry or --peer-listen/--api-listen")
        if not self.cluster_id or len(self.cluster_id) > 64:
            out.append("cluster id must be 1-64 characters")
        for name in ("peer_listen", "api_listen"):
            value = getattr(self, name)
            if value is not None:
                try:
                    parse_address(value)
                except ValueError as exc:
                    out.append(f"{name}: {exc}")
        if not 1 <= self.tick_interval_ms <= 10_000:
            out.append("tick interval must be 1-10000 ms")
        if self.heartbeat_interval_ticks >= self.election_timeout_ticks_min:
            out.append("heartbeat interval must be shorter than the election timeout")
        if self.election_timeout_ticks_max <= self.election_timeout_ticks_min:
            out.append("election timeout max must exceed its min")
        for name in (
            "snapshot_entries",
            "body_bytes_max",
            "watch_history_events_max",
            "watch_queue_events_max",
        ):
            if getattr(self, name) < 1:
                out.append(f"{name} must be at least 1")
        tokens = [token for token, _ in self.tokens]
        if len(set(tokens)) != len(tokens):
            out.append("an API token is listed twice")
        if any(len(token) < 8 for token in tokens):
            out.append("API tokens must be at least 8 characters")
        for name in ("request_timeout_seconds", "member_catch_up_timeout_seconds"):
            if getattr(self, name) <= 0:
                out.append(f"{name} must be positive")
        out += self._alert_problems()
        return out

    def _alert_problems(self) -> list[str]:
        out: list[str] = []
        for name in (
            "alert_interval_seconds",
            "alert_leader_changes_window_seconds",
            "alert_fsync_window_seconds",
            "alert_webhook_timeout_seconds",
        ):
            if getattr(self, name) <= 0:
                out.append(f"{name} must be positive")
        for name in (
            "alert_no_leader_seconds",
            "alert_leader_changes_max",
            "alert_fsync_p99_seconds",
            "alert_follower_lag_entries_max",
            "alert_conflicts_per_minute_max",
            "alert_stuck_proposal_grace_seconds",
            "alert_stuck_proposal_window_seconds",
        ):
            if getattr(self, name) < 0:
                out.append(f"{name} must not be negative")
        url = self.alert_webhook_url
        if url is not None and not url.startswith(("http://", "https://")):
            out.append("alert_webhook_url must be an http:// or https:// URL")
        return out

    def principal_of(self, token: str) -> str | None:
        return next((principal for t, principal in self.tokens if t == token), None)

    def member(self, node_id: NodeId) -> MemberAddress | None:
        return next((m for m in self.members if m.id == node_id), None)

    @property
    def own(self) -> MemberAddress:
        """This node's advertised addresses."""
        found = self.member(self.node_id)
        if found is not None:
            return found
        assert self.peer_listen is not None  # checked in _problems
        return MemberAddress(
            id=self.node_id,
            peer_address=self.peer_listen,
            api_address=self.api_listen or self.peer_listen,
        )

    @property
    def peer_listen_address(self) -> Address:
        return parse_address(self.peer_listen or self.own.peer_address)

    @property
    def api_listen_address(self) -> Address:
        return parse_address(self.api_listen or self.own.api_address)


__all__ = [
    "Address",
    "MemberAddress",
    "NodeSettings",
    "SettingsError",
    "format_address",
    "parse_address",
]
