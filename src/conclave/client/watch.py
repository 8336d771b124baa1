"""Watch streams: Server-Sent Events parsing and resumption, shared by both clients.

Rules (docs/http-api.md, "Watch"):
- The stream is SSE: `field: value` lines, a blank line ends a message, lines starting with
  `:` are comments (keep-alives). Each message with `event: put|delete` carries one change as
  JSON `data`; `event: error` carries `{"code", "message"}` and the server then closes.
- A watch always asks with an explicit `from_revision` (the client reads the store revision
  from `/v1/status` when the caller gives none), so a resumed stream has no gap.
- After every delivered event the next request resumes at `revision + 1`, sent both as
  `from_revision` and as `Last-Event-ID: <revision>`; events at or below the last delivered
  revision are dropped, so a resumed stream never repeats one.
- Resumption: a stream that ends (an error event, the connection closing, no byte for
  `idle_seconds`) is reopened on the next endpoint after a back-off. The call's `timeout` is
  the longest time without a working stream: it restarts whenever a stream opens.
- `410 compacted` raises `CompactedError`; other refusals are judged like any call (4xx raise,
  421 and 503 are retried).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, replace

from conclave.client.errors import ConclaveClientError, ProtocolError, UnavailableError
from conclave.client.models import WatchEvent, watch_event_from_body
from conclave.client.protocol import Action, HttpRequest, judge_response, watch_request
from conclave.client.retry import RetryPlan


@dataclass(frozen=True, slots=True)
class SseMessage:
    event: str
    data: str
    id: str | None


class SseParser:
    """Turns SSE lines into messages (https://html.spec.whatwg.org/#event-stream-interpretation)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed_line(self, line: str) -> SseMessage | None:
        """Take one line (its end of line is ignored); return a message when one ends."""
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        return None

    def _dispatch(self) -> SseMessage | None:
        data, event = self._data, self._event or "message"
        self._data, self._event = [], ""
        if not data:
            return None
        return SseMessage(event=event, data="\n".join(data), id=self._last_id)


class LineSplitter:
    """Cuts a byte stream into text lines (`\n`-terminated, a trailing `\r` dropped)."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[str]:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        return [line.decode(errors="replace").rstrip("\r") for line in lines]


class WatchStreamEnded(UnavailableError):
    """The server ended a watch stream (`event: error`) or the connection was lost."""


def _decode_data(message: SseMessage) -> dict[str, object]:
    try:
        decoded = json.loads(message.data)
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        raise ProtocolError(
            f"watch data is not a JSON object: {message.data[:200]!r}", code="bad_response"
        )
    return decoded


class WatchState:
    """One watch: where it resumes, its SSE parser and the retry plan of its reconnections."""

    def __init__(self, prefix: str, from_revision: int, new_plan: Callable[[], RetryPlan]) -> None:
        self.prefix = prefix
        self.next_revision = max(1, from_revision)
        self._new_plan = new_plan
        self._plan = new_plan()
        self._parser = SseParser()
        self._opened_since_plan = False
        self._refusal_delay_seconds: float | None = None

    @property
    def endpoint(self) -> str:
        return self._plan.endpoint

    def connect_timeout_seconds(self) -> float:
        return self._plan.connect_timeout_seconds()

    def request(self) -> HttpRequest:
        return watch_request(self.prefix, from_revision=self.next_revision)

    def refused(self, status: int, body: dict[str, object]) -> None:
        """The node answered without a stream: raise, or plan the retry (see `closed`)."""
        verdict = judge_response(status, body, answer_codes=frozenset())
        if verdict.action is Action.ANSWER:
            raise ProtocolError(f"HTTP {status} without a stream", code="bad_response", body=body)
        self._refusal_delay_seconds = self._plan.refused(replace(verdict, maybe_took_effect=False))

    def closed(self) -> float:
        """The attempt ended without an exception: after a refusal, its back-off; else the
        server closed the stream (handled like a lost connection)."""
        delay_seconds, self._refusal_delay_seconds = self._refusal_delay_seconds, None
        if delay_seconds is not None:
            return delay_seconds
        return self.lost(WatchStreamEnded("the server closed the stream", code="closed"))

    def opened(self) -> None:
        """A stream is open: parse it from scratch."""
        self._parser = SseParser()
        self._opened_since_plan = True

    def line_received(self, line: str) -> WatchEvent | None:
        """Feed one line; return the event it completes, if new. Raises on `event: error`."""
        message = self._parser.feed_line(line)
        if message is None:
            return None
        if message.event == "error":
            data = _decode_data(message)
            code = str(data.get("code") or "stream_ended")
            raise WatchStreamEnded(str(data.get("message") or code), code=code, body=data)
        if message.event not in ("put", "delete"):
            return None
        event = watch_event_from_body(_decode_data(message))
        if event.revision < self.next_revision:
            return None
        self.next_revision = event.revision + 1
        return event

    def lost(self, error: ConclaveClientError) -> float:
        """The stream (or the attempt to open it) failed; return the back-off or raise."""
        if self._opened_since_plan:
            endpoint = self._plan.endpoint
            self._plan = self._new_plan()
            self._plan.endpoint = endpoint
            self._opened_since_plan = False
        return self._plan.failed(error, maybe_took_effect=False)
