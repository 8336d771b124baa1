"""Parsing and validating API input: query parameters and JSON bodies.

Rules: every failure is an `ApiError` with a 4xx code (`unknown_field`, `invalid_json`,
`invalid_argument`); nothing here ever raises anything else for bad input.
"""

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from conclave.api.errors import ApiError
from conclave.apps.kv.commands import ID_MAX


def check_query(request: web.Request, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise ApiError("unknown_field", f"unknown query parameter(s): {', '.join(unknown)}")


def query_int(request: web.Request, name: str, minimum: int) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    if not text.isdigit() or not minimum <= int(text) <= ID_MAX:
        raise ApiError("invalid_argument", f"{name} must be an integer in [{minimum}, {ID_MAX}]")
    return int(text)


def consistency(request: web.Request) -> bool:
    """True for linearizable (the default)."""
    value = request.query.get("consistency", "linearizable")
    if value not in ("linearizable", "serializable"):
        raise ApiError("invalid_argument", "consistency must be linearizable or serializable")
    return value == "linearizable"


async def json_body(request: web.Request, allowed: Mapping[str, type | tuple[type, ...]]) -> Any:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError("invalid_json", "the body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError("unknown_field", f"unknown field(s): {', '.join(unknown)}")
    for name, kinds in allowed.items():
        if name in body and body[name] is not None:
            value = body[name]
            if isinstance(value, bool) and bool not in as_tuple(kinds):
                raise ApiError("invalid_argument", f"{name} has the wrong type")
            if not isinstance(value, kinds):
                raise ApiError("invalid_argument", f"{name} has the wrong type")
    return body


def as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)
