"""Loading a node's settings from flags, a TOML file and `CONCLAVE_*` environment variables.

Rules:
- Precedence, lowest first: built-in defaults, the TOML file, the environment, the flags.
  A flag left unset (None) does not override anything.
- Every source uses the same names (`node_id`, `data_dir`, `members`, ...). The environment
  spells them `CONCLAVE_<NAME>` in capitals; list values (`members`) are separated by `;`.
- Unknown keys in the file, unknown `CONCLAVE_*` variables (except those of other commands:
  `CONCLAVE_ENDPOINTS`, `CONCLAVE_TOKEN`, `CONCLAVE_REWRITE`), and values
  of the wrong type are refused with a message naming the source and the key, and all
  problems are reported at once (`SettingsError`). Nothing starts on a bad configuration.
- With no configuration at all a node runs as a one-node cluster in `./conclave-data`
  (node 1, peers on 127.0.0.1:7101, API on 127.0.0.1:7001).
"""

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from conclave.runtime.settings import MemberAddress, NodeSettings, SettingsError
from conclave.runtime.tls import TlsSettings

DEFAULT_DATA_DIR: Final = Path("conclave-data")
DEFAULT_MEMBER: Final = "1=127.0.0.1:7101,127.0.0.1:7001"
ENV_PREFIX: Final = "CONCLAVE_"
# `CONCLAVE_*` variables of other commands, not node settings: a shell that exports them for
# `conclave kv ...` must still be able to run `conclave serve`.
OTHER_VARIABLES: Final = frozenset({"CONCLAVE_ENDPOINTS", "CONCLAVE_TOKEN", "CONCLAVE_REWRITE"})


@dataclass(frozen=True, slots=True)
class _Key:
    parse: Callable[[Any], Any]
    help: str


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError("expected an integer")


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value)
    raise ValueError("expected a number")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _path(value: Any) -> Path:
    return value if isinstance(value, Path) else Path(_text(value))


def _members(value: Any) -> tuple[MemberAddress, ...]:
    if isinstance(value, str):
        items: list[Any] = [part for part in value.replace(" ", ";").split(";") if part]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError("expected a list of ID=PEER,API entries")
    return tuple(_member(item) for item in items)


def _member(item: Any) -> MemberAddress:
    if isinstance(item, str):
        return MemberAddress.parse(item)
    if isinstance(item, dict) and set(item) == {"id", "peer", "api"}:
        return MemberAddress(
            id=_int(item["id"]), peer_address=item["peer"], api_address=item["api"]
        )
    raise ValueError("a member is 'ID=PEER_HOST:PORT,API_HOST:PORT' or {id, peer, api}")


def _tokens(value: Any) -> tuple[tuple[str, str], ...]:
    """`TOKEN=PRINCIPAL` items (a list, or `;`-separated text), or a TOML table."""
    if isinstance(value, dict):
        pairs = [(_text(t), _text(p)) for t, p in value.items()]
    else:
        items = value.split(";") if isinstance(value, str) else list(value)
        pairs = []
        for item in items:
            token, sep, principal = _text(item).partition("=")
            if not sep or not token or not principal:
                raise ValueError("a token is TOKEN=PRINCIPAL")
            pairs.append((token.strip(), principal.strip()))
    return tuple(sorted(pairs))


def _names(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(sorted({_text(item).strip() for item in items}))


KEYS: Final[dict[str, _Key]] = {
    "node_id": _Key(_int, "this node's id (a positive integer)"),
    "data_dir": _Key(_path, "the data folder (a node keeps its WAL in DATA/node-<id>)"),
    "members": _Key(_members, "the initial members, ID=PEER_HOST:PORT,API_HOST:PORT each"),
    "cluster_id": _Key(_text, "the cluster's name; nodes of other clusters are refused"),
    "join": _Key(_bool, "join an existing cluster as a new member"),
    "peer_listen": _Key(_text, "listen for peers here instead of the member address"),
    "api_listen": _Key(_text, "serve the API here instead of the member address"),
    "tick_interval_ms": _Key(_int, "one Raft tick"),
    "election_timeout_ticks_min": _Key(_int, "the shortest election timeout, in ticks"),
    "election_timeout_ticks_max": _Key(_int, "the longest election timeout, in ticks"),
    "heartbeat_interval_ticks": _Key(_int, "the leader's heartbeat interval, in ticks"),
    "snapshot_entries": _Key(_int, "compact the log after this many applied entries"),
    "request_timeout_seconds": _Key(_float, "how long a request may wait"),
    "forward_to_leader": _Key(_bool, "followers forward writes to the leader"),
    "tls_cert": _Key(_path, "this node's certificate (PEM) for mutual TLS between nodes"),
    "tls_key": _Key(_path, "this node's private key (PEM)"),
    "tls_ca": _Key(_path, "the CA certificate (PEM) that signs every node's certificate"),
    "fsync": _Key(_bool, "fsync the WAL (turn off only to measure; then nothing is durable)"),
    "tokens": _Key(_tokens, "API tokens of the decision endpoints, TOKEN=PRINCIPAL each"),
    "admins": _Key(_names, "principals allowed to declare decision kinds"),
    "alert_interval_seconds": _Key(_float, "how often the node evaluates its alerts"),
    "alert_no_leader_seconds": _Key(_float, "alert when no leader is known for longer"),
    "alert_leader_changes_max": _Key(_int, "alert on more leader changes than this in the window"),
    "alert_leader_changes_window_seconds": _Key(_float, "the window of alert_leader_changes_max"),
    "alert_fsync_p99_seconds": _Key(_float, "alert when the WAL fsync p99 of the window is over"),
    "alert_fsync_window_seconds": _Key(_float, "the window of recent fsyncs for the p99"),
    "alert_follower_lag_entries_max": _Key(_int, "alert (leader) when a follower lags more"),
    "alert_conflicts_per_minute_max": _Key(_int, "alert on more decision conflicts per minute"),
    "alert_stuck_proposal_grace_seconds": _Key(
        _float, "alert when an open proposal is this far past its deadline"
    ),
    "alert_stuck_proposal_window_seconds": _Key(
        _float, "how long a proposal that expired without quorum keeps its alert active"
    ),
    "alert_webhook_url": _Key(_text, "POST alerts (JSON) here when they fire and resolve"),
    "alert_webhook_timeout_seconds": _Key(_float, "timeout of one webhook POST"),
}
_TLS_KEYS: Final = ("tls_cert", "tls_key", "tls_ca")


def _merge(layers: list[tuple[str, Mapping[str, Any]]], problems: list[str]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for source, values in layers:
        for name, raw in values.items():
            if raw is None:
                continue
            key = KEYS.get(name)
            if key is None:
                problems.append(f"{source}: unknown setting {name!r}")
                continue
            try:
                merged[name] = key.parse(raw)
            except ValueError as exc:
                problems.append(f"{source}: {name}: {exc}")
    return merged


def _file_layer(config_file: Path | None, problems: list[str]) -> dict[str, Any]:
    if config_file is None:
        return {}
    try:
        with config_file.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        problems.append(f"{config_file}: cannot read: {exc.strerror}")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{config_file}: not valid TOML: {exc}")
    return {}


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        name[len(ENV_PREFIX) :].lower(): value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name not in OTHER_VARIABLES
    }


def _tls(merged: dict[str, Any], problems: list[str]) -> TlsSettings | None:
    given = [name for name in _TLS_KEYS if name in merged]
    if not given:
        return None
    if len(given) != len(_TLS_KEYS):
        missing = ", ".join(sorted(set(_TLS_KEYS) - set(given)))
        problems.append(f"TLS needs tls_cert, tls_key and tls_ca together (missing: {missing})")
        return None
    try:
        return TlsSettings(
            cert_file=merged["tls_cert"], key_file=merged["tls_key"], ca_file=merged["tls_ca"]
        )
    except ValueError as exc:
        problems.append(str(exc))
        return None


def load_settings(
    flags: Mapping[str, Any],
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> NodeSettings:
    """Merge the sources (see the module docstring) into validated `NodeSettings`."""
    problems: list[str] = []
    layers = [
        (str(config_file), _file_layer(config_file, problems)),
        ("environment", _env_layer(environ or {})),
        ("flags", flags),
    ]
    merged = _merge(layers, problems)
    tls = _tls(merged, problems)
    if problems:
        raise SettingsError("invalid settings:\n  - " + "\n  - ".join(problems))
    for name in _TLS_KEYS:
        merged.pop(name, None)
    merged.setdefault("node_id", 1)
    merged.setdefault("data_dir", DEFAULT_DATA_DIR)
    if "members" not in merged and not merged.get("join"):
        merged["members"] = (MemberAddress.parse(DEFAULT_MEMBER),)
    merged.setdefault("members", ())
    return NodeSettings(tls=tls, **merged)


__all__ = ["DEFAULT_DATA_DIR", "KEYS", "load_settings"]
