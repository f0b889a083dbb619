"""Memory pattern classification and heap growth per request, on hand-built series."""

from __future__ import annotations

import random

import polars as pl
import pytest

from ingestlab.analysis.memory import heap_growth_per_1000_requests_mib, memory_pattern
from ingestlab.load.rows import REQUEST_SCHEMA
from ingestlab.telemetry.gc_trace import GC_SCHEMA

T0_NS = 1_700_000_000_000_000_000
INTERVAL_NS = 100_000_000  # samples every 100 ms
MB = 1_000_000


def series(values: list[float], column: str = "rss_bytes") -> pl.DataFrame:
    return pl.DataFrame({"t_ns": [T0_NS + i * INTERVAL_NS for i in range(len(values))], column: values})


def test_sawtooth_with_its_period():
    # Climbs 2 MB per sample for 20 samples (2 s), then falls back; +-0.5% noise.
    rng = random.Random(3)
    values = [100 * MB * (1 + rng.uniform(-0.005, 0.005)) + (i % 20) * 2 * MB for i in range(300)]
    result = memory_pattern(series(values))
    assert result["classification"] == "sawtooth"
    assert result["period_s"] == pytest.approx(2.0)
    assert result["drops"] == 11  # in the steady state: samples 60..299
    assert result["amplitude_pct"] > result["flat_bound_pct"]


def test_sawtooth_in_another_column():
    values = [50.0 + (i % 10) * 3.0 for i in range(200)]  # heap MB, 1 s period
    result = memory_pattern(series(values, "heap_used_mb"), value="heap_used_mb")
    assert (result["value"], result["classification"]) == ("heap_used_mb", "sawtooth")
    assert result["period_s"] == 1.0


def test_flat_noisy_line():
    rng = random.Random(5)
    values = [200 * MB * (1 + rng.uniform(-0.03, 0.03)) for _ in range(300)]
    result = memory_pattern(series(values))
    assert result["classification"] == "flat"
    assert result["period_s"] is None
    assert result["amplitude_pct"] < 10.0
    assert result["mean"] == pytest.approx(200 * MB, rel=0.01)


def test_large_noise_is_not_a_sawtooth():
    # +-20%: over the flat bound, with many sharp falls, but rises are as sharp as falls.
    for seed in range(5):
        rng = random.Random(seed)
        values = [100 * MB * (1 + rng.uniform(-0.2, 0.2)) for _ in range(300)]
        result = memory_pattern(series(values))
        assert result["drops"] > 3
        assert result["classification"] == "irregular"


def test_isolated_spikes_are_not_teeth():
    # A jump up and straight back every 4 samples: rises are as sharp as the drops.
    values = [100 * MB + (30 * MB if i % 4 == 0 else 0) for i in range(200)]
    result = memory_pattern(series(values))
    assert result["drops"] >= 3
    assert result["classification"] == "irregular"


def test_steady_growth_is_irregular_without_period():
    result = memory_pattern(series([100 * MB + i * MB for i in range(300)]))
    assert (result["classification"], result["drops"], result["period_s"]) == ("irregular", 0, None)


def test_warm_up_is_left_out_but_counts_for_the_peak():
    # A start-up climb to 500 MB in the first 10% of the run, then a flat 100 MB.
    values = [500 * MB] * 10 + [100 * MB] * 90
    result = memory_pattern(series(values))
    assert result["classification"] == "flat"
    assert (result["min"], result["mean"], result["amplitude"]) == (100 * MB, 100 * MB, 0.0)
    assert result["peak"] == 500 * MB
    assert result["steady_samples"] == 80  # from 20% of the span on: samples 20..99
    assert result["steady_start_ns"] == T0_NS + round(0.2 * 99 * INTERVAL_NS)


def test_bounds_are_reported_and_change_the_verdict():
    values = [100 * MB + (i % 20) * 0.4 * MB for i in range(300)]  # 7.6% swing
    assert memory_pattern(series(values))["classification"] == "flat"
    result = memory_pattern(series(values), flat_bound_pct=5.0, drop_pct=3.0)
    assert (result["classification"], result["flat_bound_pct"], result["drop_pct"]) == ("sawtooth", 5.0, 3.0)
    assert (result["min_drops"], result["warmup_fraction"]) == (3, 0.2)


def test_too_few_samples():
    with pytest.raises(ValueError, match="steady-state samples"):
        memory_pattern(series([1.0] * 8))


# --- heap growth per 1000 requests ---------------------------------------------------------
def gc_events(events: list[tuple[float, str, float]]) -> pl.DataFrame:
    """GC rows from (wall ms after T0, kind, heap_after_mib)."""
    rows = [{"wall_ns": T0_NS + round(t * 1e6), "kind": kind, "heap_after_mib": heap,
             "generation": "young" if kind == "Scavenge" else "full"} for t, kind, heap in events]
    return pl.DataFrame(rows).with_columns(
        *(pl.lit(None).alias(c) for c in GC_SCHEMA if c not in rows[0])
    ).select(*GC_SCHEMA).cast(GC_SCHEMA)


def answered(n: int, *, every_ms: float = 1.0) -> pl.DataFrame:
    """n requests, request i answered at (i + 1) * every_ms after T0."""
    ends = [T0_NS + round((i + 1) * every_ms * 1e6) for i in range(n)]
    return pl.DataFrame(
        {"request_id": [f"r-{i}" for i in range(n)], "step": [0] * n, "phase": ["measure"] * n,
         "intended_start_ns": [e - 500_000 for e in ends], "actual_start_ns": [e - 500_000 for e in ends],
         "end_ns": ends, "status": [202] * n, "bytes_sent": [0] * n, "error_class": [None] * n},
        schema=REQUEST_SCHEMA,
    )


def test_heap_growth_from_full_collections_only():
    gc = gc_events([
        (1000.0, "Mark-Compact", 10.0),  # 1000 requests answered by then
        (1500.0, "Scavenge", 40.0),  # young collections leave old-space garbage: ignored
        (2000.0, "Mark-Compact", 11.0),
        (3000.0, "Mark-Compact", 12.0),
        (9000.0, "Mark-Compact", 99.0),  # after the last request: outside the span
    ])
    assert heap_growth_per_1000_requests_mib(gc, answered(4000)) == pytest.approx(1.0)


def test_heap_growth_needs_two_full_collections():
    gc = gc_events([(1000.0, "Mark-Compact", 10.0), (2000.0, "Scavenge", 30.0)])
    assert heap_growth_per_1000_requests_mib(gc, answered(4000)) is None
