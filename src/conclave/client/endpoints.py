"""The endpoints a client knows and the one it prefers (leader discovery).

Rules:
- An endpoint is written "host:port" or "http://host:port" (or "https://"); it is kept as a
  base URL without a trailing slash, and the same node is never listed twice.
- The preferred endpoint is the one that last answered a call successfully; every call starts
  there.
- A `421 not_leader` naming a `leader_api` makes that address preferred (added when unknown).
- A failed attempt moves the preference to the next endpoint in the list, but only if the
  preference is still the endpoint that failed: concurrent calls failing on the same node move
  it once, not once each.
- All methods hold a lock, so one ring may be shared by threads as well as tasks.
"""

import threading
from collections.abc import Sequence
from urllib.parse import urlsplit

from conclave.client.errors import InvalidRequestError


def normalize_endpoint(endpoint: str) -> str:
    """Return the base URL ("http://host:port") of an endpoint given with or without scheme."""
    text = endpoint.strip().rstrip("/")
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
        raise InvalidRequestError(
            f"endpoint {endpoint!r} is not host:port or http://host:port",
            code="invalid_argument",
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidRequestError(
            f"endpoint {endpoint!r} has a bad port", code="invalid_argument"
        ) from exc
    if port is None:
        raise InvalidRequestError(f"endpoint {endpoint!r} has no port", code="invalid_argument")
    return f"{parts.scheme}://{parts.netloc}"


class EndpointRing:
    """The known endpoints in order, with the preferred one."""

    def __init__(self, endpoints: Sequence[str]) -> None:
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        normalized: list[str] = []
        for endpoint in endpoints:
            base_url = normalize_endpoint(endpoint)
            if base_url not in normalized:
                normalized.append(base_url)
        if not normalized:
            raise InvalidRequestError("no endpoint given", code="invalid_argument")
        self._endpoints = normalized
        self._preferred_index = 0
        self._lock = threading.Lock()

    @property
    def endpoints(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._endpoints)

    def __len__(self) -> int:
        with self._lock:
            return len(self._endpoints)

    def preferred(self) -> str:
        with self._lock:
            return self._endpoints[self._preferred_index]

    def mark_answered(self, endpoint: str) -> None:
        """`endpoint` answered a call: prefer it from now on."""
        with self._lock:
            if endpoint in self._endpoints:
                self._preferred_index = self._endpoints.index(endpoint)

    def redirect(self, leader_api: str) -> str:
        """A node named the leader's API address: prefer it (adding it if new); return it."""
        base_url = normalize_endpoint(leader_api)
        with self._lock:
            if base_url not in self._endpoints:
                self._endpoints.append(base_url)
            self._preferred_index = self._endpoints.index(base_url)
        return base_url

    def advance_from(self, failed_endpoint: str) -> str:
        """`failed_endpoint` failed: if still preferred, prefer the next; return the preferred."""
        with self._lock:
            if self._endpoints[self._preferred_index] == failed_endpoint:
                self._preferred_index = (self._preferred_index + 1) % len(self._endpoints)
            return self._endpoints[self._preferred_index]
