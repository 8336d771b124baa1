"""The HTTP/JSON API of a node (shell). See docs/http-api.md for the contract."""

from conclave.api.errors import STATUS_OF, ApiError
from conclave.api.server import FORWARDED_HEADER, REQUEST_ID_HEADER, NodeServer, build_app

__all__ = [
    "FORWARDED_HEADER",
    "REQUEST_ID_HEADER",
    "STATUS_OF",
    "ApiError",
    "NodeServer",
    "build_app",
]
