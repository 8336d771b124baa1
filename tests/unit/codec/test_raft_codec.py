"""The Raft wire codec: every message round-trips; no byte string crashes the decoder."""

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conclave.codec import (
    WIRE_VERSION,
    CodecError,
    decode_raft_message,
    encode_raft_message,
)
from conclave.consensus.raft import (
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    RaftMessage,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from conclave.core import ConfState, Entry, EntryKind, RemoteInputError, Snapshot, SnapshotMeta

nodes = st.integers(1, 2**31)
nats = st.integers(0, 2**62)


@st.composite
def entry_runs(draw: st.DrawFn) -> tuple[Entry, ...]:
    first = draw(st.integers(1, 2**40))
    count = draw(st.integers(0, 5))
    return tuple(
        Entry(
            term=draw(nats),
            index=first + i,
            kind=draw(st.sampled_from(list(EntryKind))),
            data=draw(st.binary(max_size=64)),
        )
        for i in range(count)
    )


snapshots = st.builds(
    lambda index, term, voters, learners, data: Snapshot(
        meta=SnapshotMeta(
            index=index,
            term=term,
            conf=ConfState(voters=tuple(voters), learners=tuple(learners)),
        ),
        data=data,
    ),
    nats,
    nats,
    st.lists(nodes, max_size=7),
    st.lists(nodes, max_size=3),
    st.binary(max_size=256),
)

head = {"src": nodes, "dst": nodes, "term": nats}
messages: st.SearchStrategy[RaftMessage] = st.one_of(
    st.builds(
        RequestVote,
        **head,
        pre_vote=st.booleans(),
        last_log_index=nats,
        last_log_term=nats,
        transfer=st.booleans(),
    ),
    st.builds(RequestVoteResponse, **head, pre_vote=st.booleans(), granted=st.booleans()),
    st.builds(
        AppendEntries,
        **head,
        prev_index=nats,
        prev_term=nats,
        entries=entry_runs(),
        commit=nats,
        read_seq=nats,
    ),
    st.builds(
        AppendEntriesResponse,
        **head,
        success=st.booleans(),
        match_index=nats,
        conflict_index=nats,
        conflict_term=nats,
        read_seq=nats,
    ),
    st.builds(InstallSnapshot, **head, snapshot=snapshots),
    st.builds(InstallSnapshotResponse, **head, match_index=nats),
    st.builds(TimeoutNow, **head),
)


@given(messages)
def test_every_message_round_trips(message: RaftMessage) -> None:
    assert decode_raft_message(encode_raft_message(message)) == message


@given(st.binary(max_size=200))
def test_garbage_is_refused_with_a_codec_error_only(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        decode_raft_message(data)


@given(messages, st.integers(0, 400), st.integers(0, 255))
def test_a_flipped_byte_decodes_or_is_refused_never_crashes(
    message: RaftMessage, position: int, value: int
) -> None:
    data = bytearray(encode_raft_message(message))
    data[position % len(data)] = value
    with contextlib.suppress(CodecError):
        decode_raft_message(bytes(data))


def _raw(*items: object) -> bytes:
    packed: bytes = msgpack.packb(list(items), use_bin_type=True)
    return packed


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_raw(WIRE_VERSION + 1, "raft.timeout_now", 1, 2, 3), "version"),
        (_raw(WIRE_VERSION, "raft.nope", 1, 2, 3), "unknown message tag"),
        (_raw(WIRE_VERSION, "raft.timeout_now", 1, 2), "expected 3 fields"),
        (_raw(WIRE_VERSION, "raft.timeout_now", 0, 2, 3), "node id 0"),
        (_raw(WIRE_VERSION, "raft.timeout_now", 1, 2, -3), "non-negative"),
        (_raw(WIRE_VERSION, "raft.timeout_now", 1, 2, True), "non-negative"),
        (_raw(WIRE_VERSION, "raft.request_vote_response", 1, 2, 3, 1, True), "boolean"),
        (
            _raw(
                WIRE_VERSION,
                "raft.append_entries",
                1,
                2,
                3,
                0,
                0,
                [[1, 1, 0, b""], [1, 3, 0, b""]],
                0,
                0,
            ),
            "consecutive",
        ),
        (_raw(WIRE_VERSION, "raft.append_entries", 1, 2, 3, 0, 0, [[1, 1, 9, b""]], 0, 0), "kind"),
        (_raw(WIRE_VERSION, "raft.append_entries", 1, 2, 3, 0, 0, [[1, 1, 0, "s"]], 0, 0), "bytes"),
        (msgpack.packb({"a": 1}), "array"),
        (b"\xc1", "msgpack"),
    ],
)
def test_invalid_messages_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(CodecError, match=reason):
        decode_raft_message(data)


def test_codec_errors_are_remote_input_errors() -> None:
    assert issubclass(CodecError, RemoteInputError)
