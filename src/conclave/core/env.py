"""The environment injected into every core.

Rules: a core's only source of randomness is `CoreEnv.rng`, a `random.Random` instance that
the simulator seeds from the run's seed and production seeds from the OS. Cores never import
`random` functions, `time`, `os` or `uuid` (DESIGN.md rule 3).
"""

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class CoreEnv:
    """Injected capabilities of a core: a seeded random generator and tracing switch."""

    rng: random.Random = field(default_factory=lambda: random.Random(0))
    trace_enabled: bool = True


__all__ = ["CoreEnv"]
