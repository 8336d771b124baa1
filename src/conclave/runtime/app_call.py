"""The wire form of an embedded application's call: msgpack `[name, args, kwargs]`.

Rules: `decode_call` accepts exactly that shape (a str name, a list, a map with str keys) and
raises ValueError for anything else, so a malformed call is refused before it is proposed.
"""

from typing import Any, Final

import msgpack

APP_CALL_PATH: Final = "/v1/app/call"
APP_CONTENT_TYPE: Final = "application/msgpack"


def encode_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    data: bytes = msgpack.packb([name, list(args), kwargs], use_bin_type=True)
    return data


def decode_call(data: bytes) -> tuple[str, list[Any], dict[str, Any]]:
    """Parse a call; ValueError when it is not `[name, args, kwargs]`."""
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ValueError(f"not a msgpack call: {type(exc).__name__}") from None
    valid = (
        isinstance(obj, list)
        and len(obj) == 3
        and isinstance(obj[0], str)
        and isinstance(obj[1], list)
        and isinstance(obj[2], dict)
    )
    if not valid:
        raise ValueError("a call is [name, args, kwargs]")
    return obj[0], obj[1], obj[2]


__all__ = ["APP_CALL_PATH", "APP_CONTENT_TYPE", "decode_call", "encode_call"]
