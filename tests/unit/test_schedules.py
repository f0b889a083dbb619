"""Open-loop schedules: counts, spacing, step labels, argument checks."""

from __future__ import annotations

import dataclasses

import pytest

from ingestlab.load.schedules import Schedule, constant


def _strictly_ascending(schedule: Schedule) -> bool:
    offsets = schedule.offsets_s
    return all(a < b for a, b in zip(offsets, offsets[1:], strict=False))


def test_constant_is_evenly_spaced_at_the_rate() -> None:
    schedule = constant(200, 2)
    assert schedule.count == len(schedule) == 400
    assert schedule.duration_s == 2
    assert schedule.offered_rps == 200
    assert schedule.offsets_s[0] == 0
    assert all(offset == pytest.approx(k / 200) for k, offset in enumerate(schedule.offsets_s))
    assert set(schedule.step) == {0}
    assert schedule.step_rates_rps == (200.0,)
    assert schedule.kind == "constant"


@pytest.mark.parametrize(
    ("rate_rps", "duration_s", "count"),
    [
        (3, 0.5, 2),  # 1.5 arrivals: the second starts at 1/3 s, still inside the step
        (0.1, 30, 3),  # 0.1 * 30 = 3.0000000000000004 must not become 4
        (1000, 0.0005, 1),
    ],
)
def test_constant_counts_arrivals_inside_the_step(rate_rps: float, duration_s: float, count: int) -> None:
    schedule = constant(rate_rps, duration_s)
    assert schedule.count == count
    assert schedule.offsets_s[-1] < duration_s


def test_schedule_is_frozen() -> None:
    schedule = constant(10, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.duration_s = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: constant(0, 1), "rate_rps"),
        (lambda: constant(-5, 1), "rate_rps"),
        (lambda: constant(float("nan"), 1), "rate_rps"),
        (lambda: constant(float("inf"), 1), "rate_rps"),
        (lambda: constant(10, 0), "duration_s"),
    ],
)
def test_bad_arguments_are_refused(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
