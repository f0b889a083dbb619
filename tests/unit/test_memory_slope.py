"""The memory trend (`analysis.memory.memory_slope`, `analysis.memory_parts.part_slopes`) on
hand-built series: a known slope recovered within its interval, a flat series whose interval
holds 0, a start-up climb that is no trend, too few windows."""

from __future__ import annotations

import random

import polars as pl
import pytest

from ingestlab.analysis.memory import memory_slope
from ingestlab.analysis.memory_parts import part_slopes
from ingestlab.units import MIB

T0_NS = 1_700_000_000_000_000_000


def series(seconds: float, value, *, every_s: float = 0.1, column: str = "rss_bytes") -> pl.DataFrame:
    """Samples every `every_s` for `seconds`, `value(t_s)` each."""
    count = round(seconds / every_s) + 1
    times = [i * every_s for i in range(count)]
    return pl.DataFrame({"t_ns": [T0_NS + round(t * 1e9) for t in times], column: [value(t) for t in times]})


def test_a_known_slope_is_recovered_within_its_interval():
    # An hour climbing 12 MiB/h, with noise of +-2 MiB per sample and a 20 s sawtooth of 5 MiB.
    rng = random.Random(7)
    slope_per_s = 12 * MIB / 3600
    found = memory_slope(series(3600, lambda t: 100 * MIB + slope_per_s * t + (t % 20) / 20 * 5 * MIB
                                + rng.uniform(-2, 2) * MIB))
    low, high = found["ci_per_h"]
    assert low < 12 * MIB < high
    assert found["slope_per_h"] / MIB == pytest.approx(12, abs=0.5)
    # the steady state: the last 80% of the hour, in minutes
    assert (found["windows"], found["window_s"], found["level"]) == (48, 60.0, 0.95)
    assert found["span_s"] == pytest.approx(2880)
    assert low > 0  # a leak of 12 MiB/h shows over an hour


def test_a_flat_series_has_an_interval_around_zero():
    rng = random.Random(1)
    found = memory_slope(series(1800, lambda t: 50 * MIB + rng.gauss(0, 1) * MIB))
    low, high = found["ci_per_h"]
    assert low < 0 < high
    assert found["windows"] == 24


def test_a_constant_series_has_slope_and_interval_zero():
    found = memory_slope(series(120, lambda t: 42.0 * MIB))
    assert found["slope_per_h"] == pytest.approx(0, abs=1e-6)
    assert found["ci_per_h"] == pytest.approx([0, 0], abs=1e-6)


def test_a_short_series_gets_ten_windows_of_a_tenth_of_its_steady_state():
    found = memory_slope(series(115, lambda t: 30 * MIB + t * 1000))
    assert found["windows"] == 10
    assert found["window_s"] == pytest.approx(9.2)  # 80% of 115 s, in tenths
    assert found["slope_per_h"] == pytest.approx(3600 * 1000, rel=1e-6)
    whole = memory_slope(series(115, lambda t: 30 * MIB + t * 1000), warmup_fraction=0.0)
    assert whole["window_s"] == pytest.approx(11.5) and whole["warmup_fraction"] == 0.0


def test_the_climb_to_its_level_is_no_trend():
    # an hour: from 60 to 300 MiB in the first minute, then flat with noise
    rng = random.Random(5)
    found = memory_slope(series(3600, lambda t: min(300, 60 + 4 * t) * MIB + rng.gauss(0, 2) * MIB))
    low, high = found["ci_per_h"]
    assert low < 0 < high
    with_the_climb = memory_slope(series(3600, lambda t: min(300, 60 + 4 * t) * MIB), warmup_fraction=0.0)
    assert with_the_climb["slope_per_h"] > 10 * MIB  # the climb alone reads as 11.8 MiB/h of growth
    with pytest.raises(ValueError, match="warmup_fraction"):
        memory_slope(series(60, lambda t: 1.0), warmup_fraction=1.0)


def test_a_last_partial_window_is_merged_into_the_one_before():
    found = memory_slope(series(659, lambda t: 1.0), warmup_fraction=0.0)  # 10 whole minutes and 59 s
    assert found["windows"] == 10 and found["window_s"] == 60.0


def test_too_few_windows_give_none():
    assert memory_slope(series(1, lambda t: 1.0, every_s=0.2)) is None  # 6 samples
    # samples 10 s apart over 50 s: 6 samples, fewer than 10 windows
    assert memory_slope(series(50, lambda t: 1.0, every_s=10)) is None
    assert memory_slope(series(600, lambda t: 1.0), window_s=120) is None  # 4 windows in the steady state
    assert memory_slope(pl.DataFrame({"t_ns": [], "rss_bytes": []}, schema={"t_ns": pl.Int64,
                                                                             "rss_bytes": pl.Int64})) is None


def test_nulls_are_left_out_and_the_column_is_chosen():
    frame = series(600, lambda t: t, column="heap_bytes").with_columns(
        heap_bytes=pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.col("heap_bytes")))
    found = memory_slope(frame, value="heap_bytes")
    assert found["slope_per_h"] == pytest.approx(3600, rel=1e-3)


def test_part_slopes_per_part_in_mib_per_hour():
    timeline = series(1500, lambda t: 0, every_s=1.0).drop("rss_bytes").with_columns(
        rss_bytes=pl.lit(100 * MIB),
        queue_bytes=pl.lit(5 * MIB),
        heap_total_bytes=(pl.col("t_ns") - T0_NS) / 1e9 * (6 * MIB / 3600),  # 6 MiB/h
        heap_used_bytes=pl.lit(None, pl.Float64),
        external_bytes=pl.lit(1 * MIB),
        rest_bytes=pl.lit(10 * MIB),
    )
    found = part_slopes(timeline)
    assert set(found) == {"queue", "heap_total", "external", "rest"}  # heap_used: no values
    assert found["heap_total"]["slope_mib_per_h"] == pytest.approx(6, rel=1e-6)
    low, high = found["queue"]["ci_mib_per_h"]
    assert low == pytest.approx(0, abs=1e-9) and high == pytest.approx(0, abs=1e-9)
    assert part_slopes(pl.DataFrame()) == {}
