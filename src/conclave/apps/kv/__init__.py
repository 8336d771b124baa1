"""`conclave.apps.kv`: a replicated key-value state machine.

Pure and deterministic (DESIGN.md section 3). Clients wrap a command (`Put`, `Delete`,
`CompareAndSet`, `Get`) in a session `Request(client_id, seq, command)`, encode it with
`encode_request` and propose the bytes to the replicated log; every replica's
`KVStateMachine.apply` returns the same typed result. Reads at the applied index go through
`KVStateMachine.query` (`Get`, `Range`). Rules: revisions in `results`, sessions and limits in
`machine`, bytes in `codec`.
"""

from conclave.apps.kv.codec import (
    KVDecodeError,
    decode_request,
    decode_result,
    encode_request,
    encode_result,
)
from conclave.apps.kv.commands import (
    SESSIONLESS,
    Command,
    CompareAndSet,
    Delete,
    Get,
    Put,
    Range,
    Request,
)
from conclave.apps.kv.machine import KVSettings, KVStateMachine
from conclave.apps.kv.results import (
    CasResult,
    CommandResult,
    DeleteResult,
    ErrorCode,
    ErrorResult,
    GetResult,
    KeyValue,
    PutResult,
    RangeResult,
)

__all__ = [
    # the state machine
    "KVStateMachine",
    "KVSettings",
    # commands and queries
    "Request",
    "SESSIONLESS",
    "Command",
    "Put",
    "Delete",
    "CompareAndSet",
    "Get",
    "Range",
    # results
    "CommandResult",
    "PutResult",
    "DeleteResult",
    "CasResult",
    "GetResult",
    "RangeResult",
    "KeyValue",
    "ErrorResult",
    "ErrorCode",
    # bytes
    "encode_request",
    "decode_request",
    "encode_result",
    "decode_result",
    "KVDecodeError",
]
