"""API errors: every failure the HTTP API reports, with its stable `code` and status.

Rules:
- Handlers raise `ApiError`; one middleware turns it (and aiohttp's own 404/405/413) into a
  JSON body `{"code", "message", ...extra}`. The codes are part of the API contract
  (docs/http-api.md): never rename one.
- Bad input is always 4xx; a 5xx means the cluster could not do the work now (no leader,
  timeout, stopping), never that the request was malformed.
"""

from typing import Any, Final

from aiohttp import web

STATUS_OF: Final[dict[str, int]] = {
    "invalid_json": 400,
    "unknown_field": 400,
    "invalid_argument": 400,
    "invalid_key": 400,
    "reserved_key": 400,
    "invalid_request_id": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "key_not_found": 404,
    "unknown_proposal": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "stale_request": 409,
    "member_error": 409,
    "conflict": 409,
    "compacted": 410,
    "compare_failed": 412,
    "too_large": 413,
    "not_leader": 421,
    "internal": 500,
    "no_leader": 503,
    "proposal_dropped": 503,
    "unavailable": 503,
    "timeout": 504,
}


class ApiError(Exception):
    """An error answer: `code` picks the status; `extra` adds fields to the body."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        if code not in STATUS_OF:
            raise ValueError(f"unknown API error code {code!r}")
        self.code = code
        self.message = message
        self.extra = extra

    @property
    def status(self) -> int:
        return STATUS_OF[self.code]

    def response(self) -> web.Response:
        body = {"code": self.code, "message": self.message, **self.extra}
        return web.json_response(body, status=self.status)


__all__ = ["STATUS_OF", "ApiError"]
