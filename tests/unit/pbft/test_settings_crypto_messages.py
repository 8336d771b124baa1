"""Settings validation, canonical encoding, keys, messages and the new-view computation."""

import dataclasses

import pytest
from pbftnet import KEY_SEED, Net, pre_prepare

from conclave.consensus.pbft import (
    MESSAGE_TYPES,
    NULL_BATCH,
    KeyRing,
    PbftConfig,
    PreparedCertificate,
    ViewChange,
    canonical_bytes,
    dev_keys,
    digest_of,
    new_view_plan,
)

IDS = (1, 2, 3, 4)
KEYS = dev_keys(IDS, KEY_SEED)


def config(**overrides: object) -> PbftConfig:
    fields: dict[str, object] = {"replica_id": 1, "replica_ids": IDS, "keys": KEYS[1]}
    fields.update(overrides)
    return PbftConfig(**fields)  # type: ignore[arg-type]


def test_f_is_derived_from_n_and_primaries_rotate() -> None:
    cfg = config()
    assert (cfg.n, cfg.f, cfg.prepared_quorum, cfg.commit_quorum) == (4, 1, 2, 3)
    assert [cfg.primary_of(v) for v in range(5)] == [1, 2, 3, 4, 1]
    seven = tuple(range(1, 8))
    assert config(replica_ids=seven, keys=dev_keys(seven, b"s")[1]).f == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"faults_tolerated": 2}, "cannot tolerate f = 2"),
        ({"replica_ids": (2, 1, 3, 4)}, "sorted"),
        ({"replica_id": 9}, "not in replica_ids"),
        ({"watermark_window_seqs": 24}, "multiple"),
        ({"checkpoint_interval_seqs": 0}, "checkpoint_interval_seqs"),
        ({"view_change_timeout_ticks_max": 1}, "view_change_timeout_ticks_max"),
        ({"requests_per_batch_max": 0}, "requests_per_batch_max"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**overrides)


def test_keys_never_appear_in_reprs() -> None:
    assert "signing_key" not in repr(config())
    assert KEYS[1].signing_key.hex() not in repr(KEYS[1])


def test_canonical_encoding_is_injective_on_tricky_values() -> None:
    values = [b"", (), (b"",), ((),), 0, False, None, "", (b"a", b"b"), (b"ab",), 1, True]
    encodings = [canonical_bytes(v) for v in values]
    assert len(set(encodings)) == len(values)
    with pytest.raises(TypeError):
        canonical_bytes(1.5)


def test_pairwise_mac_keys_are_shared_and_signatures_verify_everywhere() -> None:
    r1, r2 = KeyRing(1, KEYS[1]), KeyRing(2, KEYS[2])
    tag = r1.mac(2, b"payload")
    assert r2.mac_valid(1, b"payload", tag)
    assert not r2.mac_valid(3, b"payload", tag)
    signature = r1.sign(b"payload")
    assert r2.signature_valid(1, b"payload", signature)
    assert not r2.signature_valid(2, b"payload", signature)
    assert not r2.signature_valid(99, b"payload", signature)


def test_messages_are_frozen_slotted_keyword_only_with_unique_tags() -> None:
    tags = [m.TAG for m in MESSAGE_TYPES]
    assert len(set(tags)) == len(tags)
    assert all(t.startswith("pbft.") for t in tags)
    for message_type in MESSAGE_TYPES:
        params = message_type.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen
        assert hasattr(message_type, "__slots__")
        assert all(f.kw_only for f in dataclasses.fields(message_type))


def test_new_view_plan_takes_the_highest_view_and_fills_gaps_with_null_requests() -> None:
    net = Net(4, clients=0)
    old = pre_prepare(net, 1, 2, b"old", view=0)
    newer = pre_prepare(net, 2, 2, b"newer", view=1)
    at_four = pre_prepare(net, 1, 4, b"four", view=0)

    def vc(src: int, *certs: PreparedCertificate) -> ViewChange:
        return ViewChange(src=src, new_view=2, stable_seq=0, checkpoint_proof=(), prepared=certs)

    plan_low, plan = new_view_plan(
        (
            vc(1, PreparedCertificate(pre_prepare=old, prepares=())),
            vc(2, PreparedCertificate(pre_prepare=newer, prepares=())),
            vc(3, PreparedCertificate(pre_prepare=at_four, prepares=())),
        )
    )
    assert plan_low == 0
    assert [(seq, batch) for seq, _, batch in plan] == [
        (1, NULL_BATCH),
        (2, newer.batch),
        (3, NULL_BATCH),
        (4, at_four.batch),
    ]
    assert plan[0][1] == digest_of(NULL_BATCH)
