"""Fixtures for real-process tests: clusters of `conclave serve` on 127.0.0.1.

Every cluster a test starts is stopped by the fixture, whatever the outcome.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conclave.runtime.local_cluster import LocalCluster

# Fast ticks so that failovers take a fraction of a second (elections: 10-20 ticks).
FAST_ARGS: tuple[str, ...] = ("--tick-interval-ms", "20", "--log-level", "info")

ClusterFactory = Callable[..., LocalCluster]


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[ClusterFactory]:
    clusters: list[LocalCluster] = []

    def make(size: int = 3, extra_args: tuple[str, ...] = (), **kwargs: object) -> LocalCluster:
        cluster = LocalCluster(
            data_dir=tmp_path / f"cluster-{len(clusters)}",
            size=size,
            extra_args=FAST_ARGS + extra_args,
            **kwargs,  # type: ignore[arg-type]
        )
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()
