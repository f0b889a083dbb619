"""The rate search: never ends at nothing while a rate above the floor is left, never reports
an inconclusive step as the limit, and narrows to its resolution."""

import pytest

from ingestlab.experiments.search import SearchPolicy, nice_rate, run_search

POLICY = SearchPolicy(start_rps=1_000, floor_rps=50, cap_rps=64_000, resolution=1.1)


def _run(limit: float, policy: SearchPolicy = POLICY, rig_limit: float = float("inf")):
    """The search against a target that holds rates <= limit, with a generator that cannot
    drive rates above rig_limit."""
    history = []

    def try_rate(rate: float, k: int) -> str:
        assert k == len(history) < 40
        outcome = "inconclusive" if rate > rig_limit else ("pass" if rate <= limit else "fail")
        history.append((rate, outcome))
        return outcome

    found = run_search(policy, try_rate)
    return history, found


@pytest.mark.parametrize("limit", [60, 333, 999, 1_000, 2_500, 7_200, 16_800, 40_000])
def test_finds_the_limit_within_the_resolution(limit):
    history, found = _run(limit)
    assert found.best_rps is not None and found.best_rps <= limit
    assert found.limit_rps is not None and found.limit_rps > limit
    assert found.limit_rps / found.best_rps <= 1.1 * 1.05  # resolution, plus rounding to 2 digits
    assert not found.lower_bound
    assert len(history) <= 12


def test_a_first_step_that_fails_searches_down_instead_of_ending_at_zero():
    history, found = _run(300)
    assert history[0] == (1_000, "fail")
    assert history[1] == (500, "fail")
    assert found.best_rps and 250 <= found.best_rps <= 300


def test_below_the_floor_there_is_no_ceiling_and_the_reason_says_so():
    history, found = _run(10)
    assert found.best_rps is None and not found.lower_bound
    assert min(rate for rate, _ in history) >= 50
    assert "no rate held" in found.reason


def test_an_inconclusive_step_is_never_the_limit():
    history, found = _run(50_000, rig_limit=12_000)
    assert found.lower_bound and found.limit_rps is None
    assert found.best_rps <= 12_000 and found.best_rps >= 12_000 / 1.1 / 1.05
    assert "could not drive" in found.reason
    assert all(rate <= 16_000 for rate, _ in history)  # nothing above the first inconclusive step


def test_the_cap_makes_a_lower_bound():
    history, found = _run(10**9)
    assert found.best_rps == 64_000 and found.lower_bound and "cap" in found.reason


def test_rates_are_rounded_to_two_digits():
    assert nice_rate(2_349) == 2_300 and nice_rate(2_350) == 2_400 and nice_rate(87) == 87
    with pytest.raises(ValueError):
        SearchPolicy(start_rps=10, floor_rps=50, cap_rps=100)
