"""The simulated network: per-link delay, loss, duplication, reordering, and partitions.

Rules:
- Every draw comes from the network's own `random.Random` (derived from the run seed), in the
  order messages are sent, so a run replays exactly.
- A message is scheduled on the event queue as a delivery `(dst, (src, message))`. Reordering
  is not a separate mechanism: each copy's delay is drawn independently (base delay plus
  jitter, and rarely a long spike), so later messages may overtake earlier ones.
- Partitions are a set of blocked directed links `(src, dst)`: symmetric partitions block both
  directions between groups, asymmetric ones a single direction. A blocked link drops the
  message when it is sent and when it would be delivered (a cut also drops what is in flight).
- The set of blocked links is only ever tested for membership, never iterated.
- `heal()` removes every partition; `set_lossless()` also turns off loss, duplication and
  spikes (the liveness phase).
"""

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from conclave.core.effects import Send
from conclave.core.ids import NodeId
from conclave.sim.clock import EventQueue

M = TypeVar("M")

TraceFn = Callable[[NodeId, str], None]
Link = tuple[NodeId, NodeId]


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkProfile:
    """Delivery behaviour of one directed link."""

    delay_us_min: int = 200
    jitter_us: int = 1_000
    loss: float = 0.0
    duplicate: float = 0.0
    spike: float = 0.0  # probability of a long extra delay (strong reordering)
    spike_us_max: int = 50_000

    def __post_init__(self) -> None:
        if self.delay_us_min < 0 or self.jitter_us < 0 or self.spike_us_max < 0:
            raise ValueError("delays must be >= 0")
        for name, p in (("loss", self.loss), ("duplicate", self.duplicate), ("spike", self.spike)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability")

    @classmethod
    def draw(
        cls, rng: random.Random, *, loss_max: float, duplicate_max: float, spike_max: float
    ) -> "LinkProfile":
        """A link with its own base delay, jitter and fault rates, drawn from `rng`."""
        return cls(
            delay_us_min=rng.randrange(100, 1_500),
            jitter_us=rng.randrange(0, 3_000),
            loss=rng.uniform(0.0, loss_max),
            duplicate=rng.uniform(0.0, duplicate_max),
            spike=rng.uniform(0.0, spike_max),
        )


@dataclass(slots=True)
class NetworkStats:
    """Counters of what happened to messages."""

    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    partitioned: int = 0


class SimNetwork(Generic[M]):
    """Carries messages between nodes through the event queue."""

    def __init__(
        self,
        rng: random.Random,
        queue: EventQueue,
        deliver_kind: int,
        default: LinkProfile | None = None,
        trace: TraceFn | None = None,
    ) -> None:
        self._rng = rng
        self._queue = queue
        self._deliver_kind = deliver_kind
        self._default = default if default is not None else LinkProfile()
        self._links: dict[Link, LinkProfile] = {}
        self._blocked: set[Link] = set()
        self._trace = trace
        self.stats = NetworkStats()

    # -- configuration -------------------------------------------------------------------

    def set_link(self, src: NodeId, dst: NodeId, profile: LinkProfile) -> None:
        """Give the directed link `src -> dst` its own profile."""
        self._links[(src, dst)] = profile

    def link(self, src: NodeId, dst: NodeId) -> LinkProfile:
        """The profile of `src -> dst`."""
        return self._links.get((src, dst), self._default)

    def set_trace(self, trace: TraceFn | None) -> None:
        """Report dropped and duplicated messages to `trace` (None: stop)."""
        self._trace = trace

    def set_lossless(self) -> None:
        """Keep delays and jitter, drop loss, duplication and spikes on every link."""
        self._default = replace(self._default, loss=0.0, duplicate=0.0, spike=0.0)
        for key in list(self._links):
            self._links[key] = replace(self._links[key], loss=0.0, duplicate=0.0, spike=0.0)

    # -- partitions ----------------------------------------------------------------------

    def partition(self, groups: Sequence[Iterable[NodeId]]) -> None:
        """Symmetric partition: nodes in different groups cannot talk, both ways."""
        members = [tuple(group) for group in groups]
        for i, group in enumerate(members):
            for other in members[i + 1 :]:
                for a in group:
                    for b in other:
                        self._blocked.add((a, b))
                        self._blocked.add((b, a))

    def block(self, src: NodeId, dst: NodeId) -> None:
        """Asymmetric partition: drop `src -> dst`, keep `dst -> src`."""
        self._blocked.add((src, dst))

    def isolate(self, node: NodeId, others: Iterable[NodeId]) -> None:
        """Cut `node` off from every node in `others`, both ways."""
        self.partition([(node,), tuple(o for o in others if o != node)])

    def heal(self) -> None:
        """Remove every partition."""
        self._blocked.clear()

    def is_blocked(self, src: NodeId, dst: NodeId) -> bool:
        """True when `src -> dst` is cut."""
        return (src, dst) in self._blocked

    @property
    def partitioned(self) -> bool:
        """True when any link is cut."""
        return bool(self._blocked)

    # -- traffic -------------------------------------------------------------------------

    def send(self, src: NodeId, dst: NodeId, message: M) -> int:
        """Schedule delivery of `message`; return how many copies are in flight (0, 1 or 2)."""
        stats = self.stats
        stats.sent += 1
        if (src, dst) in self._blocked:
            stats.partitioned += 1
            self._note(src, dst, message, "dropped (partition)")
            return 0
        profile = self._links.get((src, dst), self._default)
        rng = self._rng
        if profile.loss and rng.random() < profile.loss:
            stats.lost += 1
            self._note(src, dst, message, "lost")
            return 0
        self._schedule(src, dst, message, profile)
        if profile.duplicate and rng.random() < profile.duplicate:
            stats.duplicated += 1
            self._note(src, dst, message, "duplicated")
            self._schedule(src, dst, message, profile)
            return 2
        return 1

    def admit(self, src: NodeId, dst: NodeId) -> bool:
        """At delivery time: False (and counted) when the link was cut while in flight."""
        if (src, dst) in self._blocked:
            self.stats.partitioned += 1
            return False
        self.stats.delivered += 1
        return True

    def _schedule(self, src: NodeId, dst: NodeId, message: M, profile: LinkProfile) -> None:
        rng = self._rng
        delay = profile.delay_us_min
        if profile.jitter_us:
            delay += rng.randrange(profile.jitter_us + 1)
        if profile.spike and rng.random() < profile.spike:
            delay += rng.randrange(profile.spike_us_max + 1)
        self._queue.after(delay, self._deliver_kind, dst, (src, message))

    def _note(self, src: NodeId, dst: NodeId, message: M, what: str) -> None:
        if self._trace is not None:
            self._trace(src, f"net {what}: -> n{dst} {describe_message(message)}")


class NodeTransport(Generic[M]):
    """The `Transport` port of one node: stamps the sender and hands over to the network."""

    __slots__ = ("_network", "node_id")

    def __init__(self, network: SimNetwork[M], node_id: NodeId) -> None:
        self._network = network
        self.node_id = node_id

    def send(self, envelope: Send[M]) -> None:
        self._network.send(self.node_id, envelope.to, envelope.message)


def describe_message(message: object) -> str:
    """A short readable form of a protocol message (for traces only; not fast)."""
    name = type(message).__name__
    slots = getattr(type(message), "__slots__", ())
    parts: list[str] = []
    for field_name in slots:
        if field_name in ("src", "dst") or field_name.startswith("_"):
            continue
        value = getattr(message, field_name, None)
        if field_name == "entries" and isinstance(value, tuple):
            if value:
                first = getattr(value[0], "index", "?")
                last = getattr(value[-1], "index", "?")
                parts.append(f"entries=[{first}..{last}]x{len(value)}")
            else:
                parts.append("entries=[]")
        elif field_name == "snapshot":
            meta = getattr(value, "meta", None)
            parts.append(f"snapshot@{getattr(meta, 'index', '?')}/{getattr(meta, 'term', '?')}")
        else:
            parts.append(f"{field_name}={value}")
    return f"{name}({' '.join(parts)})"


__all__ = ["LinkProfile", "NetworkStats", "NodeTransport", "SimNetwork", "describe_message"]
