"""Open-loop schedules: counts, spacing, step labels, argument checks."""

from __future__ import annotations

import dataclasses
import math

import pytest

from ingestlab.load.schedules import Schedule, bursts, constant, step_ramp


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


def test_step_ramp_labels_each_step() -> None:
    schedule = step_ramp(100, 50, 3, 1.0)
    assert schedule.step_rates_rps == (100.0, 150.0, 200.0)
    assert schedule.step_starts_s == (0.0, 1.0, 2.0)
    assert schedule.duration_s == 3.0
    per_step = [list(schedule.step).count(k) for k in range(3)]
    assert per_step == [100, 150, 200]
    for offset, step in zip(schedule.offsets_s, schedule.step, strict=True):
        assert step == math.floor(offset)  # each request sits inside its own step
    # Inside step 2 the spacing is 1 / 200 s.
    third = [o for o, s in zip(schedule.offsets_s, schedule.step, strict=True) if s == 2]
    assert third[1] - third[0] == pytest.approx(1 / 200)
    assert _strictly_ascending(schedule)


def test_bursts_alternate_base_and_spike_and_cut_the_last_period() -> None:
    schedule = bursts(base_rps=10, spike_rps=100, period_s=1.0, spike_s=0.2, duration_s=2.5)
    # base 0.8 s, spike 0.2 s, base 0.8 s, spike 0.2 s, base 0.5 s (cut at 2.5 s)
    assert schedule.step_rates_rps == (10.0, 100.0, 10.0, 100.0, 10.0)
    assert schedule.step_starts_s == pytest.approx((0.0, 0.8, 1.0, 1.8, 2.0))
    assert [list(schedule.step).count(k) for k in range(5)] == [8, 20, 8, 20, 5]
    assert schedule.count == 61
    assert schedule.duration_s == pytest.approx(2.5)
    assert _strictly_ascending(schedule)
    spike = [o for o, s in zip(schedule.offsets_s, schedule.step, strict=True) if s == 1]
    assert all(0.8 <= o < 1.0 for o in spike)


def test_bursts_with_silent_base() -> None:
    schedule = bursts(base_rps=0, spike_rps=100, period_s=1.0, spike_s=0.1, duration_s=2)
    assert schedule.count == 20
    assert set(schedule.step) == {1, 3}  # only the spike steps hold requests


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
        (lambda: step_ramp(100, 50, 0, 1.0), "steps"),
        (lambda: step_ramp(100, -1, 3, 1.0), "step_rps"),
        (lambda: step_ramp(100, 50, 3, -1.0), "step_duration_s"),
        (lambda: bursts(10, 100, 1.0, 1.0, 5), "spike_s"),
        (lambda: bursts(-1, 100, 1.0, 0.2, 5), "base_rps"),
        (lambda: bursts(10, 0, 1.0, 0.2, 5), "spike_rps"),
    ],
)
def test_bad_arguments_are_refused(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
