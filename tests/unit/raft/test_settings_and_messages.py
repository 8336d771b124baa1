"""Settings validation and the message vocabulary (DESIGN.md rules 7 and 10)."""

import dataclasses

import pytest

from conclave.consensus import raft
from conclave.consensus.raft import MESSAGE_TYPES, RaftConfig, ReadOnlyOption


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"node_id": 0}, "node_id"),
        ({"election_timeout_ticks_min": 20, "election_timeout_ticks_max": 20}, "max must exceed"),
        ({"heartbeat_interval_ticks": 10}, "must exceed heartbeat"),
        ({"heartbeat_interval_ticks": 0}, "heartbeat_interval_ticks must be"),
        ({"lease_margin_ticks": 10}, "lease_margin_ticks"),
        ({"read_only": ReadOnlyOption.LEASE_BASED, "check_quorum": False}, "check_quorum"),
        ({"inflight_appends_max": 0}, "inflight_appends_max"),
        ({"entries_per_message_max": 0}, "entries_per_message_max"),
        ({"pending_proposals_max": 0}, "pending_proposals_max"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, object], problem: str) -> None:
    settings: dict[str, object] = {"node_id": 1, **overrides}
    with pytest.raises(ValueError, match=problem):
        RaftConfig(**settings)  # type: ignore[arg-type]


def test_defaults_are_valid_and_the_lease_is_shorter_than_the_timeout() -> None:
    config = RaftConfig(node_id=1)
    assert config.lease_ticks == config.election_timeout_ticks_min - config.lease_margin_ticks
    RaftConfig(node_id=1, read_only=ReadOnlyOption.LEASE_BASED)


def test_messages_are_frozen_slotted_kw_only_with_unique_stable_tags() -> None:
    tags = [cls.TAG for cls in MESSAGE_TYPES]
    assert len(set(tags)) == len(tags)
    assert all(tag.startswith("raft.") for tag in tags)
    for cls in MESSAGE_TYPES:
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen
        assert "__slots__" in vars(cls)
        assert all(f.kw_only for f in dataclasses.fields(cls))
        names = [f.name for f in dataclasses.fields(cls)]
        assert names[:3] == ["src", "dst", "term"]


def test_public_surface_is_curated() -> None:
    for name in raft.__all__:
        assert hasattr(raft, name), name
    for name in ("RaftNode", "RaftConfig", "RaftMessage", "Role", "ConfChange", "ProposalTicket"):
        assert name in raft.__all__
