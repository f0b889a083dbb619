"""A segmented (long) soak end to end, in miniature: 6 s held as three 2 s engine runs on the
Node service (its GC path included), against the real broker. The hour itself is never part
of the tests (docs/experiments.md, "The long soak")."""

from __future__ import annotations

import polars as pl

from ingestlab.experiments.soak import soak
from ingestlab.experiments.steps import EngineLimits
from ingestlab.results import Run
from ingestlab.summaries import ComparisonRate

RATE_RPS = 300.0
# Room for the asyncio engine at this rate, as a calibration would give (none is measured here).
LIMITS = EngineLimits(asyncio_rps=5_000.0, oha_rps=10_000.0, asyncio_usable_rps=2_500.0,
                      oha_usable_rps=5_000.0, cpu_budget_pct=50.0, source="test_long_soak")


def test_a_segmented_soak_writes_parts_reports_its_gaps_and_loses_nothing(config):
    held = config.replace(services=("node",), soak={"duration_s": 6.0, "segment_s": 2.0, "warmup_s": 0.5})
    made = soak(held, rate=ComparisonRate(rate_rps=RATE_RPS, source="the test's"), limits=LIMITS)
    run = Run.open(made.path)
    s = run.summary.services["node"]

    parts = sorted(path.name for path in (run.path / "requests").glob("*.parquet"))
    assert parts == ["node-0000.parquet", "node-0001.parquet", "node-0002.parquet"]
    assert not (run.path / "requests.parquet").exists() and not (run.path / "steps").exists()
    requests = run.read_frame("requests")
    assert requests["request_id"].n_unique() == requests.height == 3 * 600  # unique across segments
    assert (requests.filter(pl.col("phase") == "warmup")["step"].unique().to_list()) == [0]

    # the segments add up to the hold, and nothing accepted is missing from Kafka
    segments = run.read_frame("segments")
    assert segments["segment"].to_list() == [0, 1, 2]
    # every slot has a row: sent, or dropped as too late when the machine stalled the engine
    assert segments["sent"].sum() + segments["dropped"].sum() == requests.height
    assert s.accepted == segments["accepted"].sum() == (requests["status"] == 202).sum() > 0
    assert s.delivered == s.accepted and s.lost == 0
    assert (s.segments, s.segment_s, s.duration_s) == (3, 2.0, 6.0)

    # the gaps: measured, a share of the hold, each a new engine process's start
    assert segments["gap_before_s"][0] == 0.0 and segments["gap_before_s"][1:].min() > 0
    assert s.segment_gap_s == segments["gap_before_s"].sum() > 0
    assert 0 < s.segment_gap_share < 1

    # latency from the parts, e2e from the last segment, the rig's memory, the trend
    assert s.p50_ms is not None and s.p50_ms <= s.p99_ms
    assert {"e2e_p50_ms", "e2e_p99_ms", "p99_outside_gc_ms"} <= set(s.last_segment_only)
    assert s.e2e_p50_ms is not None and s.e2e_p50_ms <= s.e2e_p99_ms
    assert s.rig_rss_peak_mib > 0 and s.engine_rss_peak_mib > 0 and s.rig_rss_growth_mib is not None
    # the trend of a 7 s hold has windows of 0.7 s: a stall of the sampler (this machine is
    # shared) can leave fewer than 10 of them, and then there is no trend to report
    if s.rss_slope_mib_per_h is not None:
        low, high = s.rss_slope_ci_mib_per_h
        assert low <= s.rss_slope_mib_per_h <= high and s.rss_slope_window_s > 0
    assert s.gc_events and s.gc_events > 0 and run.read_frame("gc").height >= s.gc_events
    assert run.meta["long_hold_topic_config"]["retention.bytes"] == str(2 * 2**30)
    assert s.attempts == 1  # a segmented hold is not held again
