"""Client sessions: the `Conclave-Request-Id: <client_id>/<seq>` of idempotent writes.

Rules (docs/http-api.md, "Idempotent writes"):
- A session is a random nonzero 63-bit `client_id` (from `secrets.randbits(63)`) and the last
  `seq` it used. A write takes a free session for its whole call and uses `seq + 1`; every
  retry of that call sends the same id, so the cluster executes it at most once.
- A session serves one call at a time (the server allows one request in flight per client_id)
  and its `seq` only grows. Concurrent calls take different sessions: the pool creates one
  when none is free, and a call gives its session back when it ends, whatever the outcome.
- The pool is guarded by a lock, so it may be shared by threads as well as tasks; the most
  recently returned session is reused first, keeping the number of sessions on the server
  close to the peak concurrency.
"""

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

REQUEST_ID_HEADER = "Conclave-Request-Id"
_ID_BITS = 63


@dataclass(slots=True)
class Session:
    """One client_id and the last seq it sent."""

    client_id: int
    last_seq: int = 0

    def next_request_id(self) -> str:
        """Advance to the next seq and return the header value for it."""
        self.last_seq += 1
        return format_request_id(self.client_id, self.last_seq)


def format_request_id(client_id: int, seq: int) -> str:
    return f"{client_id}/{seq}"


def new_client_id() -> int:
    """A random client id in [1, 2**63 - 1]."""
    while True:
        client_id = secrets.randbits(_ID_BITS)
        if client_id:
            return client_id


class SessionPool:
    """Free sessions waiting for a call; busy sessions are owned by exactly one call."""

    def __init__(self) -> None:
        self._free: list[Session] = []
        self._created = 0
        self._lock = threading.Lock()

    @property
    def sessions_created(self) -> int:
        return self._created

    def acquire(self) -> Session:
        with self._lock:
            if self._free:
                return self._free.pop()
            self._created += 1
        return Session(client_id=new_client_id())

    def release(self, session: Session) -> None:
        with self._lock:
            self._free.append(session)

    @contextmanager
    def request_id(self) -> Iterator[str]:
        """Hold a session for one call and yield the request id all its attempts send."""
        session = self.acquire()
        try:
            yield session.next_request_id()
        finally:
            self.release(session)
