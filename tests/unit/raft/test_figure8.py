"""Raft paper Figure 8 (section 5.4.2), scripted step by step on three nodes.

The history: leader n1 (term a) appends x at index i while cut off; n2 wins term b > a with
n3's vote, and the no-op of its term lands at index i on its own log only; n1 comes back,
wins term c > b with n3's vote and replicates x to n3, one entry per message, but the append
carrying its own no-op of term c is lost; then n1 is cut off and n2 (last term b beats n3's
last term a) wins term d and overwrites index i everywhere with its no-op of term b.

A correct leader never commits x by counting replicas (x is not of its term), so nothing is
lost. `CommitsPreviousTermByCounting` commits and applies x as soon as n3 holds it, then
loses it: two nodes apply different entries at index i. The script is the same for both;
it also shows that the simulator's fault model can produce this history (every step is a
partition, a lost message or a timeout).
"""

import sys
from pathlib import Path

import pytest
import raftnet
from raftnet import Net

from conclave.consensus.raft import AppendEntries, RaftMessage, RaftNode, Role

sys.path.insert(0, str(Path(__file__).parents[2] / "sim"))

from planted_bugs import CommitsPreviousTermByCounting


def _figure8(monkeypatch: pytest.MonkeyPatch, core_class: type[RaftNode]) -> tuple[Net, int]:
    """Run the history; return the network and index i."""
    monkeypatch.setattr(raftnet, "RaftNode", core_class)
    net = Net(3, entries_per_message_max=1, inflight_appends_max=1)
    n1, n2, n3 = (net.nodes[k] for k in (1, 2, 3))
    net.elect(1)
    net.propose(1, b"a")
    net.tick(count=2)
    assert n3.commit_index == n1.last_index

    # n1 (term a) appends x while cut off.
    term_a = n1.term
    net.isolate(1)
    net.nodes[1].propose(b"x")
    net.deliver()
    i = n1.last_index
    assert n1.term_at(i) == term_a
    assert n2.last_index == n3.last_index == i - 1

    # n3 stops hearing from a leader; n2 wins term b, and its appends are all lost.
    ticks_min = net.config(3).election_timeout_ticks_min
    for _ in range(ticks_min):
        n3.tick()
    assert n3.role is Role.FOLLOWER
    net.drop = lambda m: isinstance(m, AppendEntries) and m.src == 2
    net.elect(2)
    term_b = n2.term
    assert term_b > term_a
    assert n2.term_at(i) == term_b
    assert n3.last_index == i - 1

    # n2 is cut off; n1 learns of term b from n3 and wins term c with n3's vote. Every
    # append from n1 to n3 that carries an entry of term c (its no-op), or a commit index
    # that covers x, is lost: as if n1 were cut off the moment it committed x.
    net.partitions = [{2}]
    net.drop = None
    net.tick([1], count=net.config(1).heartbeat_interval_ticks)
    assert n1.role is Role.FOLLOWER
    assert n1.term == term_b

    def loses_own_term_entries(m: RaftMessage) -> bool:
        return (
            isinstance(m, AppendEntries)
            and m.src == 1
            and m.dst == 3
            and (m.commit >= i or any(e.term == n1.term for e in m.entries))
        )

    net.drop = loses_own_term_entries
    net.elect(1)
    term_c = n1.term
    net.tick([1], count=2 * net.config(1).heartbeat_interval_ticks)
    assert term_c > term_b
    assert n3.term_at(i) == term_a
    assert n3.last_index == i
    assert n3.commit_index == i - 1
    assert n1.term_at(i + 1) == term_c

    # n1 is cut off; n2 (last term b > a) wins term d with n3's vote and repairs n3's log.
    net.partitions = [{1}]
    net.drop = None
    for _ in range(20 * ticks_min):
        net.tick([2, 3])
        if n2.role is Role.LEADER and n3.commit_index > i:
            break
    assert n2.role is Role.LEADER
    assert n2.term > term_c
    assert n3.term_at(i) == term_b
    return net, i


def test_the_correct_node_never_commits_an_older_term_entry_by_counting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net, i = _figure8(monkeypatch, RaftNode)
    n1 = net.nodes[1]
    assert n1.commit_index == i - 1  # x was on a majority, but not of n1's term
    assert b"x" not in net.applied_data(1)
    # Heal: everyone converges on n2's history; x was never acknowledged, so never lost.
    net.heal()
    net.tick(count=3 * net.config(1).election_timeout_ticks_max)
    leader = net.leader()
    assert leader is not None
    applied = [net.machines[n].entries for n in (1, 2, 3)]
    common = min(len(a) for a in applied)
    assert common > i
    assert applied[0][:common] == applied[1][:common] == applied[2][:common]
    assert all(b"x" not in net.applied_data(n) for n in (1, 2, 3))


def test_counting_replicas_of_an_older_term_commits_then_loses_the_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net, i = _figure8(monkeypatch, CommitsPreviousTermByCounting)
    n1, n2, n3 = (net.nodes[k] for k in (1, 2, 3))
    assert n1.commit_index >= i  # the bug: committed x, of an older term, by counting
    # Leader completeness is broken: n2 leads a later term without the committed x.
    assert n2.role is Role.LEADER
    assert n2.term > n1.term
    assert n2.term_at(i) != n1.term_at(i)
    applied_by_n1 = net.machines[1].entries[i - 1]
    applied_by_n3 = net.machines[3].entries[i - 1]
    assert applied_by_n1.index == applied_by_n3.index == i
    assert applied_by_n1.data == b"x"
    # State machine safety is broken: n3 applied n2's no-op of term b at the same index.
    assert applied_by_n3.term == n3.term_at(i) != applied_by_n1.term
    assert b"x" in net.applied_data(1)
    assert b"x" not in net.applied_data(3)
