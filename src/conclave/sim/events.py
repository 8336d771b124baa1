"""Kinds of events on the simulator's heap.

Rules: an event is `(at_us, seq, kind, target, payload)` (see `conclave.sim.clock`); `target`
is a node id or a client id (or 0), `payload` is what the handler needs. Kinds are small
ints that index the cluster's handler table, so dispatch is one list lookup.
"""

from typing import Final

TICK: Final = 0  # target node, payload: incarnation the tick chain belongs to
DELIVER: Final = 1  # target node, payload: (src, message)
CLIENT_ARRIVE: Final = 2  # target node, payload: ClientRequest
CLIENT_REPLY: Final = 3  # target client, payload: ClientReply
CLIENT_TIMEOUT: Final = 4  # target client, payload: (op_no, attempt)
CLIENT_RETRY: Final = 5  # target client, payload: (op_no, attempt)
CLIENT_NEXT: Final = 6  # target client: invoke the next op
FAULT: Final = 7  # inject the next fault
RESTART: Final = 8  # target node
PARTITION_END: Final = 9  # payload: partition generation
MEMBERSHIP: Final = 10  # follow-up step of a membership change
CONTROL: Final = 11  # heal phase: the liveness controller
FAULT_PHASE_END: Final = 12  # the fault phase's time bound
HEAL_DEADLINE: Final = 13  # the liveness bound
CLOCK_RESTORE: Final = 14  # target node, payload: slowdown generation to end

KIND_COUNT: Final = 15

__all__ = [
    "CLIENT_ARRIVE",
    "CLIENT_NEXT",
    "CLIENT_REPLY",
    "CLIENT_RETRY",
    "CLIENT_TIMEOUT",
    "CLOCK_RESTORE",
    "CONTROL",
    "DELIVER",
    "FAULT",
    "FAULT_PHASE_END",
    "HEAL_DEADLINE",
    "KIND_COUNT",
    "MEMBERSHIP",
    "PARTITION_END",
    "RESTART",
    "TICK",
]
