import polars as pl
import pytest

from ingestlab.analysis.engine_health import stall_recovery_floor_s, stall_recovery_s

MS = 1_000_000


def _rows(lags_ms, *, every_ms=10, start_ns=0, dropped=()):
    intended = [start_ns + i * every_ms * MS for i in range(len(lags_ms))]
    pairs = enumerate(zip(intended, lags_ms, strict=True))
    actual = [None if i in dropped else t + round(lag * MS) for i, (t, lag) in pairs]
    return pl.DataFrame({"intended_start_ns": intended, "actual_start_ns": actual},
                        schema={"intended_start_ns": pl.Int64, "actual_start_ns": pl.Int64})


def test_recovery_is_the_start_of_the_first_window_that_stays_on_schedule():
    # 10 ms apart: windows of 100 ms hold 10 requests. Late for the first 250 ms, then fine.
    lags = [300.0 - i * 10 if i < 25 else 0.2 for i in range(100)]
    assert stall_recovery_s(_rows(lags), resumed_ns=0) == 0.3


def test_on_schedule_right_after_the_resume_is_zero():
    assert stall_recovery_s(_rows([0.1] * 50), resumed_ns=0) == 0.0


def test_never_recovered_within_the_run_is_none():
    assert stall_recovery_s(_rows([50.0] * 50), resumed_ns=0) is None


def test_drops_count_as_not_on_schedule_and_rows_before_the_resume_are_ignored():
    rows = _rows([900.0] * 20 + [0.1] * 80, dropped={35})
    # resume at 200 ms: the late rows before it do not count; the drop at 350 ms breaks the
    # hold that began at 200 ms, so the engine holds from 400 ms on
    assert stall_recovery_s(rows, resumed_ns=200 * MS) == 0.2


def test_a_later_excursion_after_the_hold_is_not_part_of_the_recovery():
    # caught up at 300 ms, on schedule for 1 s, then one late window at 1.3 s
    lags = [300.0 - i * 10 if i < 25 else 0.2 for i in range(200)]
    lags[130:140] = [30.0] * 10
    assert stall_recovery_s(_rows(lags), resumed_ns=0) == 0.3


def test_a_catch_up_that_does_not_hold_is_not_a_recovery():
    # on schedule for 200 ms (less than the 500 ms hold), late again, then fine from 600 ms
    lags = [50.0] * 10 + [0.2] * 20 + [50.0] * 30 + [0.2] * 100
    assert stall_recovery_s(_rows(lags), resumed_ns=0) == 0.6


def test_a_run_that_ends_before_the_hold_is_none():
    assert stall_recovery_s(_rows([50.0] * 40 + [0.1] * 20), resumed_ns=0) is None


@pytest.mark.parametrize(("stall_s", "rate", "capacity", "expected"),
                         [(0.4, 800, 1000, 1.6), (0.2, 800, 1000, 0.8), (0.2, 1000, 1000, None)])
def test_the_floor_is_the_backlog_over_the_headroom(stall_s, rate, capacity, expected):
    assert stall_recovery_floor_s(stall_s=stall_s, rate_rps=rate, capacity_rps=capacity) == (
        pytest.approx(expected) if expected else None)
