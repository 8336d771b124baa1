"""Python clients of a Conclave node's HTTP API (docs/http-api.md).

Rules:
- `AsyncClient` (asyncio, aiohttp) and `Client` (blocking, standard library) offer the same
  calls with the same behaviour; both are built from the pure pieces of this package:
  `protocol` (requests and what answers mean), `retry` (deadline, back-off, redirects),
  `endpoints` (leader discovery), `sessions` (request ids of idempotent writes), `watch`
  (SSE parsing and resumption) and `models` (typed results).
- Answers are values (a get of an absent key is None, a failed compare is
  `CasResult(succeeded=False)`); failures are `ConclaveClientError`s.

    async with AsyncClient(["127.0.0.1:7001", "127.0.0.1:7002"]) as client:
        await client.put("greeting", "hello")
        item = await client.get("greeting")
"""

from conclave.client.async_client import AsyncClient
from conclave.client.errors import (
    CompactedError,
    ConclaveClientError,
    InvalidRequestError,
    MemberChangeError,
    NoLeaderError,
    OperationTimeout,
    ProtocolError,
    StaleRequestError,
    UnavailableError,
)
from conclave.client.models import (
    CasResult,
    DeleteResult,
    KeyValue,
    Member,
    MemberAdded,
    PutResult,
    RangeResult,
    Status,
    WatchEvent,
)
from conclave.client.protocol import Consistency
from conclave.client.retry import RetryPolicy
from conclave.client.sessions import REQUEST_ID_HEADER
from conclave.client.sync_client import Client

__all__ = [
    "AsyncClient",
    "Client",
    "RetryPolicy",
    "Consistency",
    "REQUEST_ID_HEADER",
    "KeyValue",
    "PutResult",
    "CasResult",
    "DeleteResult",
    "RangeResult",
    "WatchEvent",
    "Status",
    "Member",
    "MemberAdded",
    "ConclaveClientError",
    "InvalidRequestError",
    "StaleRequestError",
    "MemberChangeError",
    "CompactedError",
    "UnavailableError",
    "NoLeaderError",
    "OperationTimeout",
    "ProtocolError",
]
