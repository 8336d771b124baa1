"""Embedded mode: an application's object replicated by three in-process members."""

from pathlib import Path

import pytest

from conclave.embedded import EmbeddedNode, ReplicatedCallError, ReplicatedState, replicated
from conclave.runtime.local_cluster import free_port
from conclave.runtime.settings import MemberAddress, NodeSettings

pytestmark = pytest.mark.slow


class Ledger(ReplicatedState):
    def __init__(self) -> None:
        self.balance = 0
        self.entries: list[str] = []

    @replicated
    def deposit(self, amount: int, memo: str = "") -> int:
        if amount <= 0:
            raise ValueError("amount must be positive")
        self.balance += amount
        self.entries.append(memo)
        return self.balance


def _members(count: int) -> tuple[MemberAddress, ...]:
    return tuple(
        MemberAddress(
            id=i, peer_address=f"127.0.0.1:{free_port()}", api_address=f"127.0.0.1:{free_port()}"
        )
        for i in range(1, count + 1)
    )


def _settings(node_id: int, members: tuple[MemberAddress, ...], data: Path) -> NodeSettings:
    return NodeSettings(
        node_id=node_id,
        data_dir=data,
        members=members,
        tick_interval_ms=20,
        snapshot_entries=25,  # so that the restart below starts from a snapshot too
    )


def _wait_leader(nodes: list[EmbeddedNode]) -> None:
    for node in nodes:
        node.run(node.node.wait_for(lambda n=node: n.node.core.leader_id != 0, 20.0))


def test_three_members_apply_the_same_calls_in_the_same_order(tmp_path: Path) -> None:
    members = _members(3)
    nodes = [EmbeddedNode(Ledger(), _settings(m.id, members, tmp_path)) for m in members]
    try:
        for node in nodes:
            node.start()
        _wait_leader(nodes)
        futures = [node.state.deposit(n + 1, memo=f"n{n}") for n in range(30) for node in nodes]
        results = sorted(f.result(20) for f in futures)
        assert results[-1] == sum(range(1, 31)) * 3  # every call applied exactly once
        with pytest.raises(ReplicatedCallError, match="amount must be positive"):
            nodes[1].state.deposit(-5, sync=True, timeout=20)
        final = nodes[0].state.deposit(1, sync=True, timeout=20)
        for node in nodes:
            node.run(node.barrier())
            node.run(node.node.wait_for(lambda n=node: n.state.balance == final, 20.0))
        assert len({tuple(node.state.entries) for node in nodes}) == 1  # same order everywhere
    finally:
        for node in nodes:
            node.stop()

    # A member restarted from its WAL (and snapshot) comes back with the same state.
    again = EmbeddedNode(Ledger(), _settings(1, members, tmp_path))
    others = [EmbeddedNode(Ledger(), _settings(m.id, members, tmp_path)) for m in members[1:]]
    try:
        for node in [again, *others]:
            node.start()
        _wait_leader([again, *others])
        assert again.state.deposit(1, sync=True, timeout=20) == final + 1
        assert len(again.state.entries) == len(nodes[0].state.entries) + 1
    finally:
        for node in [again, *others]:
            node.stop()
