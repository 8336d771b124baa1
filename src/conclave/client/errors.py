"""Exceptions raised by the Conclave HTTP clients (docs/http-api.md, "Errors").

Rules:
- Every exception is a `ConclaveClientError` carrying the server's stable `code`, the HTTP
  `status` (None when the client refused the call itself or never got an answer) and the
  decoded JSON `body` (empty when there was none).
- Answers that are not failures never raise: a get of an absent key returns None and a failed
  compare-and-set returns `CasResult(succeeded=False)`.
- `InvalidRequestError` (a 4xx the caller must fix) is raised at once, never retried. It is
  also a `ValueError`, and is raised locally for arguments the server would refuse.
- `UnavailableError` / `NoLeaderError` are raised only when the call's deadline expired while
  every attempt was refused before it could take effect (connection refused, 503).
- `OperationTimeout` means the deadline expired after an attempt that may have taken effect
  (504, a lost connection after sending, `proposal_dropped`): a write's outcome is unknown.
"""

from collections.abc import Mapping
from typing import Any


class ConclaveClientError(Exception):
    """A call to the Conclave API failed; `code` is the server's stable error code."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.body: Mapping[str, Any] = body if body is not None else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status}, {self.message!r})"


class InvalidRequestError(ConclaveClientError, ValueError):
    """The request is wrong (400, 404 not_found, 405, 413): fix it, retrying cannot help."""


class StaleRequestError(ConclaveClientError):
    """409 stale_request: the request id is older than its session's last (a client bug)."""


class MemberChangeError(ConclaveClientError):
    """409 member_error: the membership change is not possible now (the message says why)."""


class CompactedError(ConclaveClientError):
    """410 compacted: a watch cannot replay from its revision; `oldest_revision` is given."""

    @property
    def oldest_revision(self) -> int | None:
        value = self.body.get("oldest_revision")
        return value if isinstance(value, int) else None


class UnavailableError(ConclaveClientError):
    """No node could serve the call before its deadline; nothing took effect."""


class NoLeaderError(UnavailableError):
    """The last node asked knew no leader when the deadline expired; nothing took effect."""


class OperationTimeout(ConclaveClientError):
    """The deadline expired after an attempt that may have taken effect: outcome unknown."""


class ProtocolError(ConclaveClientError):
    """The server answered something this client does not understand (or a 5xx it cannot retry)."""
