"""Embedded mode: replicate a Python object's state with the same core, WAL and transport.

As PySyncObj users expect: the application's state is a class; methods marked `@replicated`
change it and are applied, in the same order, on every member; a call returns a future (or
blocks with `sync=True`) that resolves with the method's return value once the call is
committed and applied on the member that made it.

    class Counter(ReplicatedState):
        def __init__(self) -> None:
            self.value = 0

        @replicated
        def add(self, n: int) -> int:
            self.value += n
            return self.value

    node = EmbeddedNode(Counter(), settings)      # settings: conclave.runtime.NodeSettings
    node.start()                                  # runs the node in a background thread
    node.state.add(5, sync=True)                  # -> 5 on every member, fsynced on a majority
    node.stop()

Rules:
- Replicated methods must be deterministic (same state and arguments -> same result and new
  state on every member): no clocks, randomness, I/O or iteration over sets of strings.
  Arguments and results must be msgpack-serializable (they travel in the log and between
  members).
- A replicated method that raises is applied everywhere as "raised": the state it had changed
  before raising stays changed (as in PySyncObj), and the caller gets `ReplicatedCallError`.
- Reading state (`node.state.value`) is local and may lag the leader (serializable). For a
  linearizable read, call a replicated method that returns the value, or `node.barrier()`.
- A call made on a follower is forwarded to the leader through the node's HTTP API
  (`POST /v1/app/call`), so every member must run the API (on by default).
- The default snapshot is the object's public attributes (`vars`, names not starting with
  `_`) as msgpack; override `snapshot`/`restore` for anything else. Never pickle.
"""

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Final, ParamSpec, TypeVar

import aiohttp
import msgpack

from conclave.api.server import NodeServer
from conclave.core.errors import NotLeader
from conclave.runtime.app_call import APP_CALL_PATH, APP_CONTENT_TYPE, decode_call, encode_call
from conclave.runtime.node import ConclaveNode
from conclave.runtime.settings import NodeSettings

P = ParamSpec("P")
R = TypeVar("R")
_MARK: Final = "__conclave_replicated__"


class ReplicatedCallError(Exception):
    """The replicated method raised; `remote` is its deterministic description."""

    def __init__(self, remote: str) -> None:
        super().__init__(remote)
        self.remote = remote


def replicated(method: Callable[..., R]) -> Callable[..., Any]:
    """Mark a method of a `ReplicatedState` as a replicated command."""

    @functools.wraps(method)
    def call(self: "ReplicatedState", *args: Any, **kwargs: Any) -> Any:
        sync = bool(kwargs.pop("sync", False))
        timeout = kwargs.pop("timeout", None)
        node = self._conclave_node
        if node is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to an EmbeddedNode")
        future = node.submit(method.__name__, args, kwargs)
        return future.result(timeout) if sync else future

    setattr(call, _MARK, method)
    return call


class ReplicatedState:
    """Base class of an application's replicated state (see the module docstring)."""

    _conclave_node: "EmbeddedNode | None" = None

    def snapshot(self) -> bytes:
        public = {k: v for k, v in sorted(vars(self).items()) if not k.startswith("_")}
        data: bytes = msgpack.packb(public, use_bin_type=True)
        return data

    def restore(self, data: bytes) -> None:
        for key, value in msgpack.unpackb(data, raw=False).items():
            setattr(self, key, value)


class StateDispatcher:
    """The `AppMachine` over a `ReplicatedState`: decodes a call and runs the method."""

    def __init__(self, state: ReplicatedState) -> None:
        self.state = state
        self.methods: dict[str, Callable[..., Any]] = {}
        for name in dir(type(state)):
            original = getattr(getattr(type(state), name), _MARK, None)
            if original is not None:
                self.methods[name] = original

    def apply(self, data: bytes) -> object:
        try:
            name, args, kwargs = decode_call(data)
        except ValueError as exc:
            return ["error", f"malformed call: {exc}"]
        method = self.methods.get(name)
        if method is None:
            return ["error", f"no replicated method {name!r}"]
        try:
            return ["ok", method(self.state, *args, **kwargs)]
        except Exception as exc:  # the same exception on every member: a deterministic answer
            return ["error", f"{type(exc).__name__}: {exc}"]

    def snapshot(self) -> bytes:
        return self.state.snapshot()

    def restore(self, data: bytes) -> None:
        self.state.restore(data)


def _unwrap(answer: object) -> Any:
    if isinstance(answer, list) and len(answer) == 2 and answer[0] == "ok":
        return answer[1]
    if isinstance(answer, list) and len(answer) == 2 and answer[0] == "error":
        raise ReplicatedCallError(str(answer[1]))
    raise ReplicatedCallError(f"unexpected answer {answer!r}")


class EmbeddedNode:
    """A full member (WAL, transport, HTTP API) whose application state is `state`."""

    def __init__(self, state: ReplicatedState, settings: NodeSettings) -> None:
        self.state = state
        self.settings = settings
        self.dispatcher = StateDispatcher(state)
        self.node = ConclaveNode(settings, app=self.dispatcher)
        self.server = NodeServer(self.node)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        state._conclave_node = self

    # -- life cycle: in a background thread, or inside the caller's event loop ---------------

    def start(self, timeout_seconds: float = 30.0) -> None:
        """Run the node in a background thread with its own event loop."""
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = _new_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start_in_loop())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_in_loop())
            loop.close()

        self._thread = threading.Thread(target=run, name="conclave-embedded", daemon=True)
        self._thread.start()
        if not started.wait(timeout_seconds):
            raise TimeoutError("the embedded node did not start in time")
        if failure:
            raise failure[0]

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._loop = self._thread = None

    async def start_in_loop(self) -> None:
        """Start inside the running event loop (for asyncio applications)."""
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession()
        await self.server.start()

    async def stop_in_loop(self) -> None:
        await self.server.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- calls ------------------------------------------------------------------------------

    def submit(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> "concurrent.futures.Future[Any]":
        """Propose a call from any thread; a future of the method's result."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the embedded node is not running")
        coroutine = self.call(name, *args, **kwargs)
        return asyncio.run_coroutine_threadsafe(coroutine, loop)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Propose a call from the node's event loop; its result once applied."""
        if name not in self.dispatcher.methods:
            raise AttributeError(f"{type(self.state).__name__} has no replicated method {name!r}")
        data = encode_call(name, args, kwargs)
        try:
            return _unwrap(await self.node.call_app(data))
        except NotLeader:
            return _unwrap(await self._forward(data))

    async def _forward(self, data: bytes) -> object:
        _, leader_api = self.node.leader_address()
        if leader_api is None or self._session is None:
            raise NotLeader(self.node.core.leader_id)
        async with self._session.post(
            f"http://{leader_api}{APP_CALL_PATH}",
            data=data,
            headers={"Content-Type": APP_CONTENT_TYPE},
            timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout_seconds + 1),
        ) as response:
            body = await response.read()
            if response.status != 200:
                raise ReplicatedCallError(f"leader answered {response.status}: {body[:200]!r}")
        return msgpack.unpackb(body, raw=False)

    async def barrier(self) -> None:
        """Wait until local reads are linearizable (ReadIndex, through the leader if need be)."""
        try:
            await self.node.read_barrier()
            return
        except NotLeader:
            pass
        _, leader_api = self.node.leader_address()
        if leader_api is None or self._session is None:
            raise NotLeader(self.node.core.leader_id)
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_seconds + 1)
        url = f"http://{leader_api}/v1/read_index"
        async with self._session.get(url, timeout=timeout) as response:
            if response.status != 200:
                raise ReplicatedCallError(f"leader answered {response.status} to read_index")
            index = int((await response.json())["index"])
        reached = await self.node.wait_for(
            lambda: self.node.machine.applied_index >= index,
            self.settings.request_timeout_seconds,
        )
        if not reached:
            raise TimeoutError(f"did not apply up to {index} in time")

    def run(self, coroutine: Coroutine[Any, Any, R]) -> R:
        """Run a coroutine on the node's loop from another thread and wait for it."""
        if self._loop is None:
            raise RuntimeError("the embedded node is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


def _new_loop() -> asyncio.AbstractEventLoop:
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415 - optional accelerator

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


__all__ = [
    "APP_CALL_PATH",
    "EmbeddedNode",
    "ReplicatedCallError",
    "ReplicatedState",
    "StateDispatcher",
    "decode_call",
    "encode_call",
    "replicated",
]
