"""A concurrent write/read workload against a real cluster that records a checkable history.

Each client is one `AsyncClient` (its writes carry request ids, so a retried write applies at
most once). An operation is recorded with the wall time of its call and of its answer; a
write that ends without an answer is "unknown" (it may or may not have happened), a read
without an answer "fail". Besides the shared keys, which clients overwrite, every client
writes unique keys that nobody overwrites: afterwards every acknowledged one must be there.
"""

import asyncio
import random
import time
from dataclasses import dataclass, field

from conclave.client import AsyncClient, OperationTimeout, UnavailableError
from conclave.sim.history import History

# The only errors that mean "no answer"; anything else (a 4xx, a protocol error) is a bug.
NO_ANSWER = (OperationTimeout, UnavailableError)
SHARED_KEYS = tuple(f"k{i}" for i in range(4))


def now_us() -> int:
    return time.monotonic_ns() // 1000


@dataclass
class Workload:
    endpoints: list[str]
    clients: int = 4
    seed: int = 1
    history: History = field(default_factory=History)
    acknowledged_unique: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    async def run(self) -> None:
        await asyncio.gather(*(self._client(n) for n in range(1, self.clients + 1)))

    def stop(self) -> None:
        self._stop.set()

    async def _client(self, client: int) -> None:
        rng = random.Random(self.seed * 1000 + client)
        async with AsyncClient(self.endpoints, timeout=3.0) as api:
            n = 0
            while not self._stop.is_set():
                n += 1
                roll = rng.random()
                key = rng.choice(SHARED_KEYS)
                if roll < 0.35:
                    await self._put(api, client, key, f"c{client}-{n}")
                elif roll < 0.5:
                    await self._put(api, client, f"u/{client}/{n}", f"c{client}-{n}", unique=True)
                elif roll < 0.65:
                    await self._cas(api, client, key, rng)
                else:
                    await self._get(api, client, key)

    async def _put(
        self, api: AsyncClient, client: int, key: str, value: str, unique: bool = False
    ) -> None:
        op = self.history.invoke_put(client=client, key=key, value=value, at_us=now_us())
        try:
            await api.put(key, value)
        except NO_ANSWER:
            self.history.unknown(op)
            self.count("write_unknown")
            return
        self.history.ok(op, at_us=now_us())
        self.count("write_ok")
        if unique:
            self.acknowledged_unique[key] = value

    async def _cas(self, api: AsyncClient, client: int, key: str, rng: random.Random) -> None:
        expected = f"c{rng.randint(1, self.clients)}-{rng.randint(1, 30)}"
        new = f"cas{client}-{rng.random():.6f}"
        op = self.history.invoke_cas(
            client=client, key=key, expected=expected, value=new, at_us=now_us()
        )
        try:
            result = await api.cas(key, new, prev_value=expected)
        except NO_ANSWER:
            self.history.unknown(op)
            self.count("write_unknown")
            return
        self.history.ok_cas(op, at_us=now_us(), swapped=result.succeeded)
        self.count("cas_ok")

    async def _get(self, api: AsyncClient, client: int, key: str) -> None:
        op = self.history.invoke_get(client=client, key=key, at_us=now_us())
        try:
            found = await api.get(key)
        except NO_ANSWER:
            self.history.fail(op, at_us=now_us())
            self.count("read_failed")
            return
        self.history.ok(op, at_us=now_us(), output=None if found is None else found.value)
        self.count("read_ok")
