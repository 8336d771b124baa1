"""Record codec: every payload round-trips through its explicit binary layout."""

from hypothesis import given
from hypothesis import strategies as st

from conclave.core.effects import ConfState, Entry, EntryKind, HardState, SnapshotMeta
from conclave.storage.records import (
    RECORD_HEADER,
    RecordType,
    decode_payload,
    encode_payload,
    record_crc,
)

u64 = st.integers(min_value=0, max_value=2**64 - 1)
ids = st.lists(st.integers(min_value=1, max_value=2**63), max_size=7).map(tuple)


def _decode(framed: bytes) -> object:
    length, crc, record_type = RECORD_HEADER.unpack_from(framed)
    payload = framed[RECORD_HEADER.size :]
    assert len(payload) == length
    assert record_crc(record_type, payload) == crc
    return decode_payload(record_type, payload)


@given(u64, u64, u64)
def test_hard_state_round_trips(term: int, vote: int, commit: int) -> None:
    hard_state = HardState(term=term, vote=vote, commit=commit)
    assert _decode(encode_payload(hard_state)) == hard_state


@given(u64, u64, st.sampled_from(list(EntryKind)), st.binary(max_size=64))
def test_entry_round_trips(term: int, index: int, kind: EntryKind, data: bytes) -> None:
    entry = Entry(term=term, index=index, kind=kind, data=data)
    framed = encode_payload(entry)
    assert framed[8] == RecordType.ENTRY
    assert _decode(framed) == entry


@given(u64, u64, ids, ids)
def test_snapshot_meta_round_trips(
    index: int, term: int, voters: tuple[int, ...], learners: tuple[int, ...]
) -> None:
    meta = SnapshotMeta(index=index, term=term, conf=ConfState(voters=voters, learners=learners))
    assert _decode(encode_payload(meta)) == meta


def test_crc_covers_the_type_byte() -> None:
    payload = b"\x00" * 24
    assert record_crc(RecordType.HARD_STATE, payload) != record_crc(RecordType.ENTRY, payload)
