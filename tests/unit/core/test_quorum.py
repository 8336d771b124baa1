"""Laws of quorum arithmetic (hypothesis)."""

from hypothesis import given
from hypothesis import strategies as st

from conclave.core.quorum import (
    VoteResult,
    committed_index,
    max_faults_crash,
    quorum_size,
    vote_result,
)

match_maps = st.dictionaries(st.integers(1, 9), st.integers(0, 1000), min_size=1, max_size=9)


@given(st.integers(1, 101))
def test_two_quorums_always_intersect(n: int) -> None:
    assert 2 * quorum_size(n) > n
    assert quorum_size(n) + max_faults_crash(n) == n


@given(match_maps)
def test_committed_index_is_held_by_a_quorum_and_is_the_largest_such(
    matches: dict[int, int],
) -> None:
    index = committed_index(matches)
    holders = sum(1 for m in matches.values() if m >= index)
    assert holders >= quorum_size(len(matches))
    above = sum(1 for m in matches.values() if m >= index + 1)
    assert above < quorum_size(len(matches))


@given(match_maps, st.integers(1, 9), st.integers(0, 1000))
def test_committed_index_is_monotonic_in_each_match(
    matches: dict[int, int], voter: int, raised_to: int
) -> None:
    if voter not in matches:
        return
    before = committed_index(matches)
    after = committed_index({**matches, voter: max(matches[voter], raised_to)})
    assert after >= before


def test_committed_index_of_no_voters_is_zero() -> None:
    assert committed_index({}) == 0


@given(st.lists(st.sampled_from([True, False, None]), min_size=1, max_size=9))
def test_vote_result_matches_counting(answers: list[bool | None]) -> None:
    voters = list(range(1, len(answers) + 1))
    granted = {v: a for v, a in zip(voters, answers, strict=True) if a is not None}
    result = vote_result(voters, granted)
    yes = answers.count(True)
    no = answers.count(False)
    need = quorum_size(len(voters))
    if yes >= need:
        assert result is VoteResult.WON
    elif len(voters) - no < need:
        assert result is VoteResult.LOST
    else:
        assert result is VoteResult.PENDING


def test_votes_from_non_voters_do_not_count() -> None:
    assert vote_result([1, 2, 3], {1: True, 7: True, 8: True}) is VoteResult.PENDING
